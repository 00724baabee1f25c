//! An ACME HTTP-01 answer as plain data: what nginx serves while a
//! certificate is issued. Checked on the way in, so a hostile ACME server
//! cannot write nginx syntax.

/// One HTTP-01 answer: nginx returns `key_authorization` at
/// `/.well-known/acme-challenge/<token>`. Both are base64url (the key
/// authorization joins two with a dot), checked here so a hostile server
/// cannot write nginx syntax.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Challenge {
    token: String,
    key_authorization: String,
}

fn base64url(text: &str) -> bool {
    !text.is_empty() && text.len() <= 256 && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Challenge {
    pub fn new(token: &str, key_authorization: &str) -> Option<Challenge> {
        let (prefix, thumbprint) = key_authorization.split_once('.')?;
        (base64url(token) && prefix == token && base64url(thumbprint))
            .then(|| Challenge { token: token.to_owned(), key_authorization: key_authorization.to_owned() })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn key_authorization(&self) -> &str {
        &self.key_authorization
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_hold_base64url_only() {
        assert!(Challenge::new("abc-_1", "abc-_1.Thumb-_9").is_some());
        for (token, answer) in [("a;b", "a;b.t"), ("abc", "abd.t"), ("abc", "abc"), ("abc", "abc.t\"; }"), ("", ".t"), ("abc", "abc.t.u")] {
            assert!(Challenge::new(token, answer).is_none(), "{token} {answer}");
        }
    }
}

/// An app's own Let's Encrypt properties (`letsencrypt:set APP KEY VALUE`);
/// unset ones fall back to the host's `[letsencrypt]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LetsencryptProps {
    pub email: Option<String>,
    /// An ACME directory URL, or Dokku's `default` / `staging`.
    pub server: Option<String>,
    /// Seconds before expiry at which renewal starts.
    pub graceperiod: Option<u64>,
}

/// Let's Encrypt's production directory (Dokku's `default`).
pub const DEFAULT_SERVER: &str = "https://acme-v02.api.letsencrypt.org/directory";
const STAGING_SERVER: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The directory URL a `server` value names: Dokku's aliases resolved.
pub fn server_url(value: &str) -> String {
    match value {
        "default" | "" => DEFAULT_SERVER.to_owned(),
        "staging" => STAGING_SERVER.to_owned(),
        url => url.to_owned(),
    }
}

/// Why a `letsencrypt:set` value is refused, if it is.
pub fn check_property(key: &str, value: &str) -> Result<(), String> {
    let printable = |v: &str| !v.is_empty() && v.len() <= 254 && v.chars().all(|c| c.is_ascii_graphic());
    match key {
        "email" if printable(value) && value.split('@').count() == 2 && !value.starts_with('@') && !value.ends_with('@') => Ok(()),
        "email" => Err("email takes one address (name@domain)".into()),
        "server" if value == "default" || value == "staging" => Ok(()),
        "server" if printable(value) && (value.starts_with("https://") || value.starts_with("http://")) => Ok(()),
        "server" => Err("server takes default, staging or an http(s):// ACME directory URL".into()),
        "graceperiod" if value.parse::<u64>().is_ok_and(|s| s > 0) => Ok(()),
        "graceperiod" => Err("graceperiod takes a number of seconds".into()),
        "dns-provider" | "lego-args" | "lego-docker-options" => {
            Err(format!("{key} configures Dokku's lego container; berth speaks ACME itself over HTTP-01"))
        }
        other => Err(format!("unknown letsencrypt property {other:?}: use email, server or graceperiod")),
    }
}
