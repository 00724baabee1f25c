//! Shell completions and the man page, written from the command tables
//! (`berth help --completions bash|zsh`, `berth help --man`), so they list
//! exactly the commands and flags the parser accepts. install.sh installs
//! them where bash-completion, zsh and man look.

use super::{Command, UsageError};

/// Flags every command takes (the parser reads them anywhere on the line).
const GLOBAL_FLAGS: &[&str] = &["--app", "--quiet", "--trace", "--force", "--help"];

fn flags(command: &Command) -> Vec<&'static str> {
    let mut all: Vec<&str> = command.switches.iter().chain(command.options).copied().chain(GLOBAL_FLAGS.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The script for `shell` (`bash` or `zsh`).
pub fn script(shell: &str, commands: &[&Command]) -> Result<String, UsageError> {
    match shell {
        "bash" => Ok(bash(commands)),
        "zsh" => Ok(zsh(commands)),
        other => Err(UsageError(format!("completions are written for bash or zsh, not {other:?}"))),
    }
}

/// Completes the command word, then that command's flags.
fn bash(commands: &[&Command]) -> String {
    let names: Vec<&str> = commands.iter().map(|c| c.name).collect();
    let mut out = String::from("# bash completion for berth, written by 'berth help --completions bash'\n_berth() {\n");
    out.push_str("    local cur=${COMP_WORDS[COMP_CWORD]}\n");
    out.push_str(&format!("    if [ \"$COMP_CWORD\" -eq 1 ]; then\n        COMPREPLY=($(compgen -W \"help version {}\" -- \"$cur\"))\n        return\n    fi\n", names.join(" ")));
    out.push_str("    local flags\n    case ${COMP_WORDS[1]} in\n");
    for c in commands {
        out.push_str(&format!("        {}) flags=\"{}\" ;;\n", c.name, flags(c).join(" ")));
    }
    out.push_str("        *) flags=\"\" ;;\n    esac\n");
    out.push_str("    case $cur in\n        -*) COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\")) ;;\n        *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n    esac\n}\n");
    out.push_str("complete -F _berth berth\n");
    out
}

/// zsh's own completion: commands with their descriptions, then flags.
fn zsh(commands: &[&Command]) -> String {
    let quote = |text: &str| text.replace('\'', "'\\''").replace(':', "\\:");
    let mut out = String::from("#compdef berth\n# zsh completion for berth, written by 'berth help --completions zsh'\n_berth() {\n");
    out.push_str("  local -a commands\n  commands=(\n");
    for c in commands {
        out.push_str(&format!("    '{}:{}'\n", quote(c.name), quote(c.about)));
    }
    out.push_str("  )\n  if (( CURRENT == 2 )); then\n    _describe -t commands 'berth command' commands\n    return\n  fi\n");
    out.push_str("  local -a flags\n  case ${words[2]} in\n");
    for c in commands {
        out.push_str(&format!("    {}) flags=({}) ;;\n", c.name, flags(c).join(" ")));
    }
    out.push_str("  esac\n  _alternative 'flags:flag:compadd -a flags' 'files:file:_files'\n}\n_berth \"$@\"\n");
    out
}

/// A man page (roff) with every command's synopsis and description.
pub fn man(commands: &[&Command]) -> String {
    let roff = |text: &str| text.replace('\\', "\\e").replace('-', "\\-").replace("\n.", "\n\\&.");
    let mut out =
        String::from(".TH BERTH 1 \"\" \"berth\" \"User Commands\"\n.ad l\n.SH NAME\nberth \\- a Docker\\-free, Dokku\\-style PaaS\n");
    out.push_str(".SH SYNOPSIS\n.B berth\n[\\-\\-quiet] [\\-\\-trace] [\\-\\-app APP]\n.I NAMESPACE:VERB\n[ARGS]\n");
    out.push_str(".SH DESCRIPTION\n`git push` over ssh deploys an app: berth builds it with buildpacks in a sandbox, stores it as an OCI image, runs its processes as containers and routes to them with nginx. Every command also runs over ssh as \\fBssh berth@HOST COMMAND\\fR, for the keys allowed to run it.\n");
    out.push_str(".SH COMMANDS\n");
    for c in commands {
        out.push_str(&format!(".TP\n.B {}\n{}\n", roff(format!("{} {}", c.name, c.usage).trim_end()), roff(c.about)));
    }
    out.push_str(".SH ENVIRONMENT\n.TP\n.B BERTH_ROOT\nWhere berth keeps its state (default /var/lib/berth).\n.TP\n.B BERTH_LOG\nLog filter (debug, trace), as \\-\\-trace.\n");
    out.push_str(".SH SEE ALSO\n\\fBgit\\fR(1), \\fBnginx\\fR(8)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_flag_is_offered() {
        let all: Vec<&Command> = super::super::all_commands().collect();
        let bash = script("bash", &all).unwrap();
        let zsh = script("zsh", &all).unwrap();
        for c in &all {
            assert!(bash.contains(&format!("        {}) flags=", c.name)), "{}", c.name);
            assert!(zsh.contains(&format!("    {}) flags=", c.name)), "{}", c.name);
        }
        assert!(bash.contains("storage:create) flags=\"--app --chown --force --help --mode --quiet --reclaim-policy --trace\""));
        assert!(script("fish", &all).is_err());
        assert!(man(&all).contains(".B storage:create NAME"));
    }
}
