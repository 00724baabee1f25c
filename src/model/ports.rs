//! Port mappings (`proxy:ports-*`), Dokku's `SCHEME:HOST_PORT:CONTAINER_PORT`:
//! nginx listens on the host port and forwards to that port of every web
//! container. Parsed strictly, so nothing but two numbers and a known
//! scheme ever reaches a server block.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("{0:?} is not a port mapping: use SCHEME:HOST_PORT:CONTAINER_PORT, e.g. http:80:5000")]
    Shape(String),
    #[error("{0:?} is not a scheme berth proxies: use http or https")]
    Scheme(String),
    #[error("{0:?} is not a port (1 to 65535)")]
    Port(String),
    #[error("host port {0} is mapped twice")]
    Twice(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortMap {
    pub scheme: Scheme,
    pub host: u16,
    pub container: u16,
}

fn port(text: &str) -> Result<u16, PortError> {
    // Digits only: u16's parser would take "+80".
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::Port(text.to_owned()));
    }
    text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| PortError::Port(text.to_owned()))
}

impl PortMap {
    pub fn parse(text: &str) -> Result<PortMap, PortError> {
        let parts: Vec<&str> = text.split(':').collect();
        let [scheme, host, container] = parts[..] else {
            return Err(PortError::Shape(text.to_owned()));
        };
        let scheme = match scheme {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(PortError::Scheme(other.to_owned())),
        };
        Ok(PortMap { scheme, host: port(host)?, container: port(container)? })
    }

    /// A list where no host port appears twice (one server block per port).
    pub fn parse_all<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<PortMap>, PortError> {
        let mut maps: Vec<PortMap> = Vec::new();
        for text in texts {
            let map = PortMap::parse(text)?;
            if maps.iter().any(|m| m.host == map.host) {
                return Err(PortError::Twice(map.host));
            }
            maps.push(map);
        }
        Ok(maps)
    }
}

impl fmt::Display for PortMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        write!(f, "{scheme}:{}:{}", self.host, self.container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_clean_mappings() {
        assert_eq!(PortMap::parse("http:80:5000").unwrap(), PortMap { scheme: Scheme::Http, host: 80, container: 5000 });
        assert_eq!(PortMap::parse("https:8443:3000").unwrap().to_string(), "https:8443:3000");
        for bad in
            ["http:80", "ftp:21:21", "http:0:5000", "http:65536:5000", "http:+80:5000", "http:80:5000;", "http:80:5000:1", "http: 80:5000"]
        {
            assert!(PortMap::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(PortMap::parse_all(["http:80:5000", "https:80:5000"]), Err(PortError::Twice(80))));
    }
}
