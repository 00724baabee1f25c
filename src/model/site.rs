//! The nginx options an app sets for its server block.

/// nginx settings an app may change (`nginx:set`), each validated when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SiteOptions {
    pub client_max_body_size: Option<String>,
    pub proxy_read_timeout: Option<String>,
    pub proxy_connect_timeout: Option<String>,
    pub proxy_send_timeout: Option<String>,
    pub access_log: Option<String>,
    pub error_log: Option<String>,
}
