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
