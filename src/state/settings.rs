//! Host settings in `$BERTH_ROOT/config.toml`. Every field has a default,
//! so a missing file or section means "use the defaults".

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::model::repo_path::RepoPath;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is invalid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path} is invalid: {why}")]
    Invalid { path: PathBuf, why: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub network: NetworkSettings,
    pub proxy: ProxySettings,
    pub ssh: SshSettings,
    pub deploy: DeploySettings,
    pub storage: StorageSettings,
    pub logs: LogSettings,
    pub letsencrypt: LetsencryptSettings,
    pub limits: LimitSettings,
    pub git: GitGlobals,
    pub ps: PsGlobals,
    pub checks: ChecksGlobals,
    /// `nginx:set --global`: every app's server block options, unless it sets its own.
    pub nginx: crate::model::site::SiteOptions,
    pub registry: RegistryGlobals,
    pub builder: BuilderGlobals,
    pub app_json: AppJsonGlobals,
    pub builds: BuildsGlobals,
    pub events: EventsSettings,
    pub apps: AppsGlobals,
    pub cron: CronGlobals,
    pub buildpacks: BuildpacksGlobals,
    pub plugins: PluginSettings,
}

/// `[plugins]`: how long one trigger may run before it is stopped.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    pub trigger_timeout_secs: u64,
}

impl Default for PluginSettings {
    fn default() -> Self {
        PluginSettings { trigger_timeout_secs: 60 }
    }
}

/// `buildpacks:set-property --global stack`: the stack apps build on.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildpacksGlobals {
    pub stack: Option<String>,
}

/// `cron:set --global maintenance`: no app's jobs run on schedule.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CronGlobals {
    pub maintenance: Option<bool>,
}

/// `apps:set --global disable-autocreation`: pushes never make an app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppsGlobals {
    pub disable_autocreation: Option<bool>,
}

/// `events:on`/`events:off`: whether the event log is written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSettings {
    pub enabled: bool,
}

// Dokku's global properties (`NAMESPACE:set --global KEY VALUE`): what an
// app uses when it sets nothing itself.

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuilderGlobals {
    /// `builder:set --global build-dir`: the subdirectory every app builds from.
    pub build_dir: Option<RepoPath>,
    /// `builder:set --global selected` (berth has one builder: herokuish).
    pub selected: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildsGlobals {
    /// `builds:set --global retention`: build records each app keeps.
    pub retention: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppJsonGlobals {
    /// `app-json:set --global appjson-path`.
    pub appjson_path: Option<RepoPath>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GitGlobals {
    /// `git:set --global deploy-branch`.
    pub deploy_branch: Option<String>,
    /// `git:set --global rev-env-var|keep-git-dir|archive-max-*|source-image`.
    #[serde(flatten)]
    pub props: crate::model::git_props::GitProps,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PsGlobals {
    /// `ps:set --global restart-policy`, as Dokku writes it (`on-failure:10`).
    pub restart_policy: Option<String>,
    /// `ps:set --global stop-timeout-seconds`.
    pub stop_timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksGlobals {
    /// `checks:set --global wait-to-retire`, in seconds.
    pub wait_to_retire: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryGlobals {
    /// `registry:set --global server`.
    pub server: Option<String>,
}

/// Caps on what outside data may expand to, so a small hostile gzip cannot
/// fill the disk: one image layer unpacked, one source archive unpacked.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub layer_bytes: u64,
    pub archive_bytes: u64,
    /// Memory of an app container whose app and type set none (`resource:limit`); unset: no limit.
    pub container_memory_bytes: Option<i64>,
    /// CPUs of such a container; unset: no limit.
    pub container_cpus: Option<f64>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings { layer_bytes: 4 << 30, archive_bytes: 4 << 30, container_memory_bytes: None, container_cpus: None }
    }
}

/// How large a container's log grows before it is rotated, unless set.
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// Where `letsencrypt:*` gets certificates: an ACME directory, the CA
/// that signs its HTTPS certificate when it is not a public one (a test
/// server), the contact address, and how early to renew.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LetsencryptSettings {
    pub server: String,
    /// A PEM root to trust for the ACME server's HTTPS; empty: the system's roots.
    pub ca_file: String,
    pub email: String,
    /// Certificates are renewed this many days before they expire.
    pub renew_days_before: u32,
    /// `letsencrypt:set --global graceperiod`: seconds, over renew_days_before.
    pub graceperiod: Option<u64>,
}

impl LetsencryptSettings {
    /// How long before expiry a certificate is renewed, in seconds.
    pub fn grace_secs(&self) -> u64 {
        self.graceperiod.unwrap_or(u64::from(self.renew_days_before) * 86_400)
    }

    /// The settings for one app: its own properties over the host's.
    pub fn for_app(&self, own: &crate::model::acme::LetsencryptProps) -> LetsencryptSettings {
        let mut merged = self.clone();
        if let Some(email) = &own.email {
            merged.email = email.clone();
        }
        if let Some(server) = &own.server {
            merged.server = crate::model::acme::server_url(server);
        }
        merged.graceperiod = own.graceperiod.or(self.graceperiod);
        merged
    }
}

impl Default for LetsencryptSettings {
    fn default() -> Self {
        LetsencryptSettings {
            server: crate::model::acme::DEFAULT_SERVER.into(),
            ca_file: String::new(),
            email: String::new(),
            renew_days_before: 30,
            graceperiod: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A container log is rotated (one old file kept) past this size
    /// (`logs:set --global max-size`); 0: never; unset: 10 MiB.
    pub max_bytes: Option<u64>,
}

impl LogSettings {
    /// The size at which a container's log rotates: the app's own setting,
    /// else this host's, else 10 MiB. Unlimited is `u64::MAX`.
    pub fn rotation_bytes(&self, own: Option<u64>) -> u64 {
        match own.or(self.max_bytes).unwrap_or(DEFAULT_LOG_MAX_BYTES) {
            0 => u64::MAX,
            bytes => bytes.max(4096),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Host directories apps may mount besides `$BERTH_ROOT/storage`.
    pub allowed_roots: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeploySettings {
    /// How long a new web process has to accept connections on $PORT.
    pub boot_timeout_secs: u64,
    /// How long a new process with nothing to check (a worker) must stay
    /// up before the one it replaces stops (Dokku's default check, 10 s).
    pub uptime_secs: u64,
}

impl Default for DeploySettings {
    fn default() -> Self {
        DeploySettings { boot_timeout_secs: 60, uptime_secs: 10 }
    }
}

/// How berth drives nginx. The defaults fit Debian's nginx package; tests
/// point these at a private nginx.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    pub nginx: String,
    /// The main config nginx runs with (for `nginx -t -c` and reload).
    pub nginx_conf: String,
    pub listen_port: u16,
    /// nginx's pid file, to see its new workers take over after a reload.
    pub pid_file: String,
    /// Apps are served at APP.<global_domain>; empty: this host's name.
    /// Kept for configs that name one domain; `global_domains` wins.
    pub global_domain: String,
    /// Apps are served at APP.<each of these> (`domains:set-global`).
    pub global_domains: Vec<String>,
    /// HTTPS port for apps with a certificate.
    pub tls_listen_port: u16,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            nginx: "nginx".into(),
            nginx_conf: "/etc/nginx/nginx.conf".into(),
            listen_port: 80,
            pid_file: "/run/nginx.pid".into(),
            global_domain: String::new(),
            global_domains: Vec::new(),
            tls_listen_port: 443,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SshSettings {
    /// The authorized_keys file of the user pushes arrive as.
    pub authorized_keys: String,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings { authorized_keys: "/home/berth/.ssh/authorized_keys".into() }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// The bridge every bridged container's veth joins.
    pub bridge: String,
    /// The containers' subnet in CIDR form; the bridge takes its first address.
    pub subnet: String,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings { bridge: "berth0".into(), subnet: "10.88.0.0/16".into() }
    }
}

/// A parsed IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(text: &str) -> Option<Subnet> {
        let (addr, prefix) = text.split_once('/')?;
        let network: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if !(8..=30).contains(&prefix) || u32::from(network) & !Self::mask(prefix) != 0 {
            return None;
        }
        Some(Subnet { network, prefix })
    }

    fn mask(prefix: u8) -> u32 {
        u32::MAX << (32 - prefix)
    }

    /// The bridge's own address: the subnet's first host.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Host addresses containers may take, in order: all but network,
    /// gateway and broadcast.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.network);
        let size = 1u32 << (32 - self.prefix);
        (2..size - 1).map(move |i| Ipv4Addr::from(base + i))
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Settings {
    pub fn load(root: &Path) -> Result<Settings, SettingsError> {
        let path = root.join("config.toml");
        let settings: Settings = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| SettingsError::Parse { path: path.clone(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings::default(),
            Err(source) => return Err(SettingsError::Read { path, source }),
        };
        settings.checked(path)
    }

    /// Changes the settings (a `--global` setting) and writes them back,
    /// only when the result passes the checks a load makes.
    pub fn update(root: &Path, change: impl FnOnce(&mut Settings)) -> Result<(), SettingsError> {
        let mut settings = Settings::load(root)?;
        change(&mut settings);
        let settings = settings.checked(root.join("config.toml"))?;
        settings.save(root).map_err(|e| SettingsError::Write { path: e.path.clone(), source: e.source })
    }

    fn checked(self, path: PathBuf) -> Result<Settings, SettingsError> {
        let settings = self;
        let invalid = |why: String| SettingsError::Invalid { path: path.clone(), why };
        let bridge = &settings.network.bridge;
        // Interface names: at most 15 bytes, nothing ip(8) could read as syntax.
        if bridge.is_empty() || bridge.len() > 15 || !bridge.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid(format!("network.bridge {bridge:?} is not an interface name (a-z, 0-9, - and _, at most 15)")));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        for domain in std::iter::once(&settings.proxy.global_domain).filter(|d| !d.is_empty()).chain(&settings.proxy.global_domains) {
            // Apps get APP.<domain>: that must stay a host name too.
            if domain.len() > 200 || !domain.split('.').all(label_ok) {
                return Err(invalid(format!("global domain {domain:?} is not a host name")));
            }
        }
        if let Some(policy) = &settings.ps.restart_policy
            && policy.parse::<crate::model::container::RestartPolicy>().is_err()
        {
            return Err(invalid(format!("ps.restart_policy {policy:?} is not no, on-failure[:N], always or unless-stopped")));
        }
        if settings.ps.stop_timeout_seconds.is_some_and(|s| s > 3600) || settings.checks.wait_to_retire.is_some_and(|s| s > 86400) {
            return Err(invalid("ps.stop_timeout_seconds is at most 3600 and checks.wait_to_retire at most 86400".into()));
        }
        if Subnet::parse(&settings.network.subnet).is_none() {
            return Err(invalid(format!("network.subnet {:?} is not an IPv4 network like 10.88.0.0/16", settings.network.subnet)));
        }
        Ok(settings)
    }

    /// The domains apps live under: the settings, else the host's name.
    pub fn global_domains(&self) -> Vec<String> {
        if !self.proxy.global_domains.is_empty() {
            return self.proxy.global_domains.clone();
        }
        if !self.proxy.global_domain.is_empty() {
            return vec![self.proxy.global_domain.clone()];
        }
        vec![std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".into())]
    }

    /// Writes the settings back to `$BERTH_ROOT/config.toml` (atomically).
    pub fn save(&self, root: &Path) -> Result<(), crate::state::atomic::WriteError> {
        let text = toml::to_string(self).expect("settings serialise");
        crate::state::atomic::write_atomic(&root.join("config.toml"), text.as_bytes())
    }

    pub fn subnet(&self) -> Subnet {
        Subnet::parse(&self.network.subnet).expect("checked on load")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.88.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.hosts().next(), Some(Ipv4Addr::new(10, 88, 0, 2)));
        assert_eq!(Subnet::parse("10.0.0.0/30").unwrap().hosts().count(), 1);
        for bad in ["10.88.0.1/16", "10.88.0.0", "10.88.0.0/33", "x/16", "10.0.0.0/31"] {
            assert!(Subnet::parse(bad).is_none(), "{bad}");
        }
    }
}
