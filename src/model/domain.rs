//! Host names apps answer to: RFC 1123 names (letters, digits, '-',
//! dot-separated labels of 1-63, at most 253 in all), lowercased, and a
//! wildcard only as a whole first label (`*.example.com`, which nginx
//! matches as a wildcard server name). Nothing else reaches nginx's config.

use std::fmt;

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a domain name: use labels of a-z, 0-9 and '-' separated by dots (a leading `*.` allowed), at most 253 characters")]
pub struct InvalidDomain(pub String);

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(raw: &str) -> Result<Domain, InvalidDomain> {
        let lower = raw.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let rest = lower.strip_prefix("*.").unwrap_or(&lower);
        let labels: Vec<&str> = rest.split('.').collect();
        // A wildcard must have at least two labels after it: `*.com` would take a whole TLD.
        let enough = !lower.starts_with("*.") || labels.len() >= 2;
        if lower.len() <= 253
            && enough
            && labels.iter().all(|l| label_ok(l))
            && !labels.last().is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
        {
            Ok(Domain(lower))
        } else {
            Err(InvalidDomain(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }
}

impl TryFrom<String> for Domain {
    type Error = InvalidDomain;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Domain::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_and_deliberate_wildcards() {
        for ok in ["example.com", "Cat-Meow.example.com", "a.b.c.d.example.org", "*.example.com", "localhost", "xn--bcher-kva.example"] {
            assert!(Domain::parse(ok).is_ok(), "{ok} refused");
        }
        assert_eq!(Domain::parse("Example.COM").unwrap().as_str(), "example.com");
    }

    #[test]
    fn refuses_what_could_break_nginx() {
        for bad in [
            "a.com; include /etc/passwd",
            "a.com\n",
            "a.com\nserver { }",
            "*.com",
            "a.*.com",
            "*",
            "-a.com",
            "a-.com",
            "a..com",
            "",
            ".a.com",
            "a.com.",
            "a_b.com",
            "a.com:80",
            "10.0.0.1",
            "a{b}.com",
            "ex ample.com",
            "é.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
