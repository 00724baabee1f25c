//! `SSH_ORIGINAL_COMMAND`, split by berth itself: never handed to a shell.
//! Words are separated by spaces; single quotes (as git sends them) group;
//! anything a shell would treat specially is refused outright.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("no command given: use `ssh berth@host help` to see what berth can do")]
    Empty,
    #[error("the command contains {0:?}, which berth does not accept over ssh")]
    Forbidden(char),
    #[error("the command has an unterminated quote")]
    Unterminated,
}

const FORBIDDEN: &[char] = &[';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '\\', '\n', '\r', '\0', '*', '?', '!', '"'];

pub fn split(line: &str) -> Result<Vec<String>, CommandError> {
    if let Some(c) = line.chars().find(|c| FORBIDDEN.contains(c)) {
        return Err(CommandError::Forbidden(c));
    }
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' | '\t' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(CommandError::Unterminated);
    }
    if in_word {
        words.push(current);
    }
    if words.is_empty() { Err(CommandError::Empty) } else { Ok(words) }
}

/// The app a git command names: `'app'`, `'/app'`, `'app.git'`, `/app.git`.
pub fn repo_name(raw: &str) -> &str {
    raw.trim_start_matches('/').trim_end_matches('/').trim_end_matches(".git")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_git_sends_it() {
        assert_eq!(split("git-receive-pack 'catmeow'").unwrap(), ["git-receive-pack", "catmeow"]);
        assert_eq!(split("config:set catmeow 'GREETING=hello world'").unwrap(), ["config:set", "catmeow", "GREETING=hello world"]);
        assert_eq!(repo_name("/catmeow.git"), "catmeow");
    }

    #[test]
    fn refuses_shell_syntax() {
        for bad in ["apps:list; id", "apps:list | sh", "apps:create $(id)", "apps:create `id`", "a && b", "x > /etc/passwd", "a\nb"] {
            assert!(matches!(split(bad), Err(CommandError::Forbidden(_))), "{bad}");
        }
        assert_eq!(split("   "), Err(CommandError::Empty));
        assert_eq!(split("a 'b"), Err(CommandError::Unterminated));
    }
}
