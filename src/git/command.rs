//! `SSH_ORIGINAL_COMMAND`, split by berth itself: never handed to a shell.
//! Words split as a POSIX shell splits them: blanks separate, single quotes
//! keep everything, double quotes keep everything but `\` escapes, a
//! backslash outside quotes escapes the next character. So Dokku users'
//! `config:set APP K=\"a b\"` arrives as `K=a b`. Whatever a shell would
//! expand or act on is refused instead: `$` and backticks outside single
//! quotes; `; | & < > ( ) { } * ? [ ] !` outside quotes; `#` or `~` at the
//! start of a word; newlines and NUL anywhere.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("no command given: use `ssh berth@host help` to see what berth can do")]
    Empty,
    #[error("the command contains {0:?}, which berth does not accept over ssh")]
    Forbidden(char),
    #[error("the command has an unterminated quote")]
    Unterminated,
}

/// Characters a shell acts on when they are not quoted.
const UNQUOTED: &[char] = &[';', '|', '&', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']', '!'];
/// Characters a shell expands even inside double quotes.
const EXPANDING: &[char] = &['$', '`'];

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Single,
    Double,
}

pub fn split(line: &str) -> Result<Vec<String>, CommandError> {
    if let Some(c) = line.chars().find(|c| matches!(c, '\n' | '\r' | '\0')) {
        return Err(CommandError::Forbidden(c));
    }
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut quote = Quote::None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Quote::Single, '\'') | (Quote::Double, '"') => quote = Quote::None,
            (Quote::Single, c) => current.get_or_insert_default().push(c),
            (Quote::Double, '\\') => {
                // Inside double quotes a backslash escapes only these.
                match chars.peek() {
                    Some(&next @ ('$' | '`' | '"' | '\\')) => {
                        chars.next();
                        current.get_or_insert_default().push(next);
                    }
                    _ => current.get_or_insert_default().push('\\'),
                }
            }
            (_, c) if EXPANDING.contains(&c) => return Err(CommandError::Forbidden(c)),
            (Quote::Double, c) => current.get_or_insert_default().push(c),
            (Quote::None, ' ' | '\t') => words.extend(current.take()),
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None, '\\') => {
                let escaped = chars.next().ok_or(CommandError::Unterminated)?;
                current.get_or_insert_default().push(escaped);
            }
            (Quote::None, c @ ('#' | '~')) if current.is_none() => return Err(CommandError::Forbidden(c)),
            (Quote::None, c) if UNQUOTED.contains(&c) => return Err(CommandError::Forbidden(c)),
            (Quote::None, c) => current.get_or_insert_default().push(c),
        }
        if quote != Quote::None {
            current.get_or_insert_default();
        }
    }
    if quote != Quote::None {
        return Err(CommandError::Unterminated);
    }
    words.extend(current);
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
    fn splits_quotes_and_escapes_as_a_shell_would() {
        assert_eq!(split(r#"config:set app K=\"a b\""#).unwrap(), ["config:set", "app", "K=\"a", "b\""]);
        assert_eq!(split(r#"config:set app K="a b""#).unwrap(), ["config:set", "app", "K=a b"]);
        assert_eq!(split(r#"config:set app 'K="a b"'"#).unwrap(), ["config:set", "app", "K=\"a b\""]);
        assert_eq!(split(r#"config:set app K=a\ b"#).unwrap(), ["config:set", "app", "K=a b"]);
        assert_eq!(split(r#"config:set app K="it's \"x\"""#).unwrap(), ["config:set", "app", "K=it's \"x\""]);
        assert_eq!(split(r#"config:set app K='$HOME'"#).unwrap(), ["config:set", "app", "K=$HOME"]);
        assert_eq!(split(r#"run app echo '' x"#).unwrap(), ["run", "app", "echo", "", "x"]);
        assert_eq!(split("config:set app K=a~b#c").unwrap(), ["config:set", "app", "K=a~b#c"]);
    }

    #[test]
    fn refuses_shell_syntax() {
        for bad in [r#"config:set app K="$HOME""#, "a ~/x", "a #x", "a *", "a [x]", "a !x", "a \\"] {
            assert!(split(bad).is_err(), "{bad}");
        }
        for bad in ["apps:list; id", "apps:list | sh", "apps:create $(id)", "apps:create `id`", "a && b", "x > /etc/passwd", "a\nb"] {
            assert!(matches!(split(bad), Err(CommandError::Forbidden(_))), "{bad}");
        }
        assert_eq!(split("   "), Err(CommandError::Empty));
        assert_eq!(split("a 'b"), Err(CommandError::Unterminated));
    }
}
