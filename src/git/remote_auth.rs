//! What berth's own fetches from other git servers (`git:sync`) present:
//! netrc logins (`git:auth`), the ssh host keys it trusts
//! (`git:allow-host`) and one deploy key (`git:generate-deploy-key`).
//! They live in `$BERTH_ROOT/git-home`, HOME for those fetches, never in
//! root's own home; the netrc and the key are 0600.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::state::{PathIo, atomic};

/// The most a netrc or known_hosts file berth keeps may hold.
const FILE_CAP: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0:?} is not a host name berth accepts (letters, digits, '.', '-'; an optional :PORT)")]
    BadHost(String),
    #[error("the {0} must be 1 to 1024 characters without spaces or control characters")]
    BadToken(&'static str),
    #[error("missing password for the netrc entry (give it as an argument or on stdin)")]
    NoPassword,
    #[error("ssh-keyscan found no host key for {0}")]
    NoHostKey(String),
    #[error("there is no deploy key: run `berth git:generate-deploy-key`, or give a login with git:auth")]
    NoKey,
    #[error("cannot run {tool}: {source}")]
    Tool {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("ssh-keygen failed to make the deploy key")]
    Keygen,
    #[error(transparent)]
    Io(#[from] PathIo),
    #[error(transparent)]
    Write(#[from] atomic::WriteError),
}

/// A git server's host name with an optional port (`github.com`, `git.example.test:2222`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHost {
    pub name: String,
    pub port: Option<u16>,
}

impl GitHost {
    pub fn parse(text: &str) -> Result<GitHost, AuthError> {
        let bad = || AuthError::BadHost(text.chars().take(64).collect());
        let (name, port) = match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?)),
            None => (text, None),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && !name.starts_with(['-', '.'])
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if valid { Ok(GitHost { name: name.to_owned(), port }) } else { Err(bad()) }
    }

    /// As known_hosts names it: `name`, or `[name]:port`.
    fn known_name(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// A netrc login or password: one token, as netrc splits on whitespace.
pub fn check_token(what: &'static str, text: &str) -> Result<(), AuthError> {
    let ok = !text.is_empty() && text.len() <= 1024 && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(AuthError::BadToken(what)) }
}

/// `$BERTH_ROOT/git-home`: HOME for berth's fetches.
pub struct GitHome(PathBuf);

impl GitHome {
    pub fn of(root: &Path) -> GitHome {
        GitHome(root.join("git-home"))
    }

    fn netrc(&self) -> PathBuf {
        self.0.join(".netrc")
    }

    fn known_hosts(&self) -> PathBuf {
        self.0.join(".ssh/known_hosts")
    }

    fn key(&self) -> PathBuf {
        self.0.join(".ssh/id_ed25519")
    }

    /// The environment of a fetch: this HOME (curl reads its .netrc) and
    /// an ssh that trusts only the hosts allowed here and offers only the
    /// deploy key. The paths go through git's shell, so they are quoted.
    pub fn fetch_env(&self) -> Vec<(&'static str, OsString)> {
        let quote = |p: PathBuf| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        let ssh = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o IdentitiesOnly=yes -i {}",
            quote(self.known_hosts()),
            quote(self.key())
        );
        vec![("HOME", self.0.clone().into_os_string()), ("GIT_SSH_COMMAND", ssh.into())]
    }

    fn entries(&self) -> Result<Vec<(String, String, String)>, AuthError> {
        let text = read_capped(&self.netrc())?;
        let mut entries = Vec::new();
        for line in text.lines() {
            if let ["machine", host, "login", login, "password", password] = line.split_whitespace().collect::<Vec<_>>()[..] {
                entries.push((host.to_owned(), login.to_owned(), password.to_owned()));
            }
        }
        Ok(entries)
    }

    /// `git:auth HOST [USER PASSWORD]`: sets the host's login, or removes it.
    pub fn set_login(&self, host: &GitHost, login: Option<(&str, &str)>) -> Result<(), AuthError> {
        let mut entries = self.entries()?;
        entries.retain(|(h, _, _)| h != &host.name);
        entries.extend(login.map(|(user, password)| (host.name.clone(), user.to_owned(), password.to_owned())));
        let text: String = entries.iter().map(|(h, u, p)| format!("machine {h} login {u} password {p}\n")).collect();
        self.make_dirs()?;
        Ok(atomic::write_secret(&self.netrc(), text.as_bytes())?)
    }

    /// `git:auth-status`: whether the host's login is exactly this (or absent).
    pub fn login_is(&self, host: &GitHost, login: Option<(&str, &str)>) -> Result<bool, AuthError> {
        let current = self.entries()?.into_iter().find(|(h, _, _)| h == &host.name);
        Ok(match (current, login) {
            (None, None) => true,
            (Some((_, u, p)), Some((user, password))) => u == user && p == password,
            _ => false,
        })
    }

    /// `git:allow-host`: adds the host's keys as ssh-keyscan reports them;
    /// keys already known are not added twice. Returns how many were new.
    pub fn allow_host(&self, host: &GitHost) -> Result<usize, AuthError> {
        let mut scan = Command::new("ssh-keyscan");
        scan.args(["-T", "10"]);
        if let Some(port) = host.port {
            scan.args(["-p", &port.to_string()]);
        }
        let out = scan.arg("--").arg(&host.name).output().map_err(|source| AuthError::Tool { tool: "ssh-keyscan", source })?;
        let known = host.known_name();
        // Only well-formed `NAME TYPE BASE64` lines for the host asked about.
        let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, kind, key] if name == known && kind.len() < 64 && key_text(kind) && key_text(key) => {
                    Some(format!("{name} {kind} {key}"))
                }
                _ => None,
            })
            .collect();
        if keys.is_empty() {
            return Err(AuthError::NoHostKey(known));
        }
        let mut text = read_capped(&self.known_hosts())?;
        let before: Vec<String> = text.lines().map(str::to_owned).collect();
        let new: Vec<&String> = keys.iter().filter(|k| !before.contains(k)).collect();
        for key in &new {
            text.push_str(key);
            text.push('\n');
        }
        self.make_dirs()?;
        atomic::write_atomic(&self.known_hosts(), text.as_bytes())?;
        Ok(new.len())
    }

    /// `git:generate-deploy-key`: an ed25519 key without a passphrase.
    /// Returns false when one exists already (it is kept).
    pub fn generate_key(&self) -> Result<bool, AuthError> {
        if self.key().exists() {
            return Ok(false);
        }
        self.make_dirs()?;
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_owned();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("berth@{host}"), "-f"])
            .arg(self.key())
            .status()
            .map_err(|source| AuthError::Tool { tool: "ssh-keygen", source })?;
        if status.success() { Ok(true) } else { Err(AuthError::Keygen) }
    }

    /// `git:public-key`: the deploy key's public half.
    pub fn public_key(&self) -> Result<String, AuthError> {
        let path = self.key().with_extension("pub");
        if !path.exists() {
            return Err(AuthError::NoKey);
        }
        Ok(read_capped(&path)?.trim().to_owned())
    }

    fn make_dirs(&self) -> Result<(), AuthError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.0.join(".ssh");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| PathIo {
            action: "create",
            path: dir,
            source,
        })?;
        Ok(())
    }
}

fn key_text(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_alphanumeric() || "+/=-@.".contains(c))
}

/// A file berth wrote, read with a cap; missing reads as empty.
fn read_capped(path: &Path) -> Result<String, AuthError> {
    match crate::state::read_capped(path, FILE_CAP) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.source.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_tokens_are_checked() {
        assert_eq!(GitHost::parse("git.example.test:2222").unwrap().known_name(), "[git.example.test]:2222");
        assert_eq!(GitHost::parse("github.com").unwrap().known_name(), "github.com");
        for bad in ["", "-oProxyCommand=x", "a b", "host:0", "host:x", "a;b", ".x"] {
            assert!(GitHost::parse(bad).is_err(), "{bad}");
        }
        assert!(check_token("login", "bot").is_ok());
        assert!(check_token("password", "a b").is_err() && check_token("password", "").is_err());
    }
}
