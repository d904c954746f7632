//! Configuration: one struct that is the file format, the environment
//! (`SYNQC_*`) and the command-line flags (`--key-name`). Precedence:
//! flags > environment > TOML file > defaults. Unknown keys in the file or
//! on the command line are refused by name.
//!
//! Each setting is declared once, in `settings!`, which yields the struct
//! field, its default, and its entry in [`KEYS`] (kind and help text).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::sim::NoiseProfile;

/// Declares every setting once: its doc line is its help, its name is the
/// TOML key (env `SYNQC_NAME`, flag `--name-with-dashes`), its type gives
/// the struct field and how env and flag text is read, and its expression
/// is the default. From that come [`Config`], its `Default` and [`KEYS`].
/// `noise` tables exist only in the file, so they are declared apart.
/// sled's page cache for the two databases together, unless configured
/// (store_cache_bytes). sled's own default is 1 GiB per database, and the
/// process grew with the store towards it; with a few MiB it stays flat
/// however large the store grows (tests/soak.sh measures it).
pub const DEFAULT_STORE_CACHE_BYTES: u64 = 8 << 20;

macro_rules! settings {
    ($(
        #[doc = $help:literal]
        $(#[$attr:meta])*
        $key:ident: $ty:ty = $default:expr;
    )*) => {
        /// The settings of one appliance.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Config {
            $(
                #[doc = $help]
                $(#[$attr])*
                pub $key: $ty,
            )*
            /// Per-target overrides of the built-in noise profiles.
            pub noise: BTreeMap<String, NoiseOverride>,
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($key: $default,)*
                    noise: BTreeMap::new(),
                }
            }
        }

        /// Every setting but `noise`: name (TOML key; env SYNQC_NAME; flag
        /// --name-with-dashes), kind and one line of help.
        pub const KEYS: &[(&str, Kind, &str)] = &[
            $((stringify!($key), <$ty as HasKind>::KIND, doc_line($help)),)*
        ];
    };
}

settings! {
    /// API listen address (container: 0.0.0.0:8001)
    #[serde(deserialize_with = "listen_address")]
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8001));
    /// optional second listener serving only /metrics
    #[serde(deserialize_with = "metrics_address")]
    metrics_listen: Option<SocketAddr> = None;
    /// sled store directory (packaged: /var/lib/synqc)
    data_dir: PathBuf = PathBuf::from("./synqc-data");
    /// require this key on every route but public_paths
    api_key: Option<String> = None;
    /// file with one API key per line (# comments)
    api_keys_file: Option<PathBuf> = None;
    /// routes served without a key
    // The console and API reference pages hold no data (what they show is
    // fetched with the key), and a browser cannot send a header when it
    // opens a page.
    public_paths: Vec<String> = [
        "/health",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/",
        "/docs",
        "/openapi.json",
    ]
    .map(String::from)
    .to_vec();
    /// concurrent simulations (default: number of cores)
    workers: usize = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    /// a run still executing after this fails with TIMEOUT
    #[serde(with = "whole_seconds")]
    job_timeout_seconds: Duration = Duration::from_secs(90);
    /// a running run whose lease is not renewed this long is requeued
    #[serde(with = "whole_seconds")]
    lease_seconds: Duration = Duration::from_secs(30);
    /// attempts for transient failures and worker crashes
    max_attempts: u32 = 3;
    /// queued runs beyond this are refused with 503
    max_pending: u64 = 10_000;
    /// per-run shot cap (clamped, or 422 in prod mode)
    max_shots_per_experiment: u64 = 200_000;
    /// shots one budget session may reserve per TTL window
    max_shots_per_session: u64 = 1_000_000;
    /// shot_budget when a request names none
    default_shot_budget: u64 = 2048;
    /// idle time after which a session's budget resets (>= 60)
    #[serde(with = "whole_seconds")]
    session_budget_ttl_seconds: Duration = Duration::from_secs(3600);
    /// run provider targets as simulations of their noise
    allow_provider_simulation: bool = false;
    /// finished runs kept; the oldest beyond this are pruned
    retention_runs: u64 = 100_000;
    /// request bodies above this get 413
    max_request_bytes: u64 = 1_048_576;
    /// new runs get 503 while the data dir's disk has less free space
    min_free_disk_bytes: u64 = 64 * 1024 * 1024;
    /// memory for the store's page caches (both databases, >= 1 MiB)
    store_cache_bytes: u64 = DEFAULT_STORE_CACHE_BYTES;
    /// requests per minute per session (0 = off)
    rate_limit_per_minute: u64 = 0;
    /// origins allowed to call the API from a browser
    cors_allow_origins: Vec<String> = Vec::new();
    /// let those origins send cookies and auth (explicit origins only, never *)
    cors_allow_credentials: bool = false;
    /// deployment label reported by /health (e.g. lab, staging)
    // A packaged appliance serves a lab's real runs; staging or a
    // developer's copy names itself.
    env: String = "production".into();
    /// on SIGTERM, how long running runs may finish
    #[serde(with = "whole_seconds")]
    shutdown_grace_seconds: Duration = Duration::from_secs(10);
    /// open HTTP connections at most (lowered to fit the fd limit); idle ones are closed first
    max_connections: u64 = 1024;
    /// a request's line and headers must arrive within this
    #[serde(with = "whole_seconds")]
    header_timeout_seconds: Duration = Duration::from_secs(10);
    /// a keep-alive connection with no request this long is closed
    #[serde(with = "whole_seconds")]
    idle_timeout_seconds: Duration = Duration::from_secs(30);
    /// log level: error, warn, info, debug, trace
    log: String = "info".into();
    /// text or json
    log_format: String = "text".into();
}

/// Any subset of a [`NoiseProfile`]'s fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseOverride {
    pub t1_us: Option<f64>,
    pub t2_us: Option<f64>,
    pub p1q: Option<f64>,
    pub p2q: Option<f64>,
    pub readout_p10: Option<f64>,
    pub readout_p01: Option<f64>,
    pub gate_1q_ns: Option<f64>,
    pub gate_2q_ns: Option<f64>,
    pub readout_ns: Option<f64>,
}

impl NoiseOverride {
    pub fn apply(&self, base: &NoiseProfile) -> NoiseProfile {
        NoiseProfile {
            t1_us: self.t1_us.unwrap_or(base.t1_us),
            t2_us: self.t2_us.unwrap_or(base.t2_us),
            p1q: self.p1q.unwrap_or(base.p1q),
            p2q: self.p2q.unwrap_or(base.p2q),
            readout_p10: self.readout_p10.unwrap_or(base.readout_p10),
            readout_p01: self.readout_p01.unwrap_or(base.readout_p01),
            gate_1q_ns: self.gate_1q_ns.unwrap_or(base.gate_1q_ns),
            gate_2q_ns: self.gate_2q_ns.unwrap_or(base.gate_2q_ns),
            readout_ns: self.readout_ns.unwrap_or(base.readout_ns),
        }
    }
}

/// How a setting's text (from the environment or a flag) is read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated in the environment and on the command line.
    List,
    /// A socket address, host:port; checked where it is read, so a bad one
    /// is reported with the variable or flag that gave it.
    Addr,
}

/// The [`Kind`] of a field's type, so a setting's declaration names its
/// type only once.
trait HasKind {
    const KIND: Kind;
}

macro_rules! has_kind {
    ($kind:ident: $($ty:ty),*) => {
        $(impl HasKind for $ty {
            const KIND: Kind = Kind::$kind;
        })*
    };
}

has_kind!(Str: String, PathBuf);
has_kind!(Addr: SocketAddr);
has_kind!(Int: u32, u64, usize, Duration);
has_kind!(Bool: bool);
has_kind!(List: Vec<String>);

impl<T: HasKind> HasKind for Option<T> {
    const KIND: Kind = T::KIND;
}

/// A `///` line as the help shows it: without the space after the slashes.
const fn doc_line(doc: &'static str) -> &'static str {
    match doc.as_bytes() {
        [b' ', rest @ ..] => match std::str::from_utf8(rest) {
            Ok(line) => line,
            Err(_) => doc,
        },
        _ => doc,
    }
}

/// A duration as the file, environment and flags give it: whole seconds
/// (the key says so: `*_seconds`).
mod whole_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// `listen` as the file gives it, refused with the form it takes.
fn listen_address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    address(&String::deserialize(d)?, "127.0.0.1:8001").map_err(|e| D::Error::custom(format!("listen: {e}")))
}

fn metrics_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|text| {
            address(&text, "127.0.0.1:9000").map_err(|e| D::Error::custom(format!("metrics_listen: {e}")))
        })
        .transpose()
}

fn address(text: &str, example: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("'{text}' is not an address like {example}"))
}

/// Where the configuration comes from, besides the defaults.
#[derive(Debug, Default)]
pub struct Sources {
    /// The TOML file, if any (see [`default_file`]).
    pub file: Option<PathBuf>,
    /// `SYNQC_*` variables (name, value).
    pub env: Vec<(String, String)>,
    /// `--key value` pairs from the command line, key with dashes.
    pub flags: Vec<(String, String)>,
}

/// The budget session the command-line client sends (`--session`'s
/// default); the appliance itself has no such setting.
pub const CLIENT_SESSION_VAR: &str = "SYNQC_SESSION";

pub const DEFAULT_CONFIG_FILE: &str = "/etc/synqc/synqc.toml";

/// Below this sled's caches would hold too few pages to be of use.
const MIN_STORE_CACHE_BYTES: u64 = 1 << 20;

/// The file to read when `--config` is not given: the packaged one, when it
/// exists, so a plain `synqc serve` on an installed system uses it.
pub fn default_file() -> Option<PathBuf> {
    Path::new(DEFAULT_CONFIG_FILE)
        .exists()
        .then(|| PathBuf::from(DEFAULT_CONFIG_FILE))
}

impl Sources {
    /// The real process environment's SYNQC_* variables.
    pub fn from_env(file: Option<PathBuf>, flags: Vec<(String, String)>) -> Sources {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("SYNQC_"))
            .collect();
        Sources { file, env, flags }
    }
}

/// The outcome of loading: the config, the file it read, and warnings that
/// are worth a log line but not a refusal.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Loaded, String> {
        let mut warnings = Vec::new();
        let (mut table, file) = match &sources.file {
            Some(path) => (read_table(path)?, Some(path.clone())),
            None => (toml::Table::new(), None),
        };
        for (var, value) in &sources.env {
            let key = var.trim_start_matches("SYNQC_").to_ascii_lowercase();
            match key_kind(&key) {
                // The CLI's own variable, not a setting of the appliance.
                None if var == CLIENT_SESSION_VAR => {}
                // Other tools share the environment (SYNQC_BIN in scripts),
                // so an unknown variable is reported, not fatal.
                None => warnings.push(format!("ignoring unknown environment variable {var}")),
                Some(kind) => {
                    table.insert(key, typed(kind, value).map_err(|e| format!("{var}: {e}"))?);
                }
            }
        }
        for (flag, value) in &sources.flags {
            let key = flag.replace('-', "_");
            let kind = key_kind(&key).ok_or_else(|| format!("unknown option --{flag}"))?;
            table.insert(key, typed(kind, value).map_err(|e| format!("--{flag}: {e}"))?);
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| match &file {
                    Some(f) => format!("{}: {}", f.display(), e.message()),
                    None => e.message().to_string(),
                })?;
        config.validate()?;
        Ok(Loaded {
            config,
            file,
            warnings,
        })
    }

    /// Cross-field and range rules that serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let mut bad = Vec::new();
        for (name, v) in [
            ("job_timeout_seconds", self.job_timeout_seconds.as_secs()),
            ("lease_seconds", self.lease_seconds.as_secs()),
            ("max_attempts", u64::from(self.max_attempts)),
            ("max_pending", self.max_pending),
            ("max_shots_per_experiment", self.max_shots_per_experiment),
            ("max_shots_per_session", self.max_shots_per_session),
            ("default_shot_budget", self.default_shot_budget),
            ("max_request_bytes", self.max_request_bytes),
            ("max_connections", self.max_connections),
            ("header_timeout_seconds", self.header_timeout_seconds.as_secs()),
            ("idle_timeout_seconds", self.idle_timeout_seconds.as_secs()),
        ] {
            if v == 0 {
                bad.push(format!("{name}: must be at least 1"));
            }
        }
        if self.store_cache_bytes < MIN_STORE_CACHE_BYTES {
            bad.push(format!(
                "store_cache_bytes: must be at least {MIN_STORE_CACHE_BYTES} (1 MiB)"
            ));
        }
        if self.session_budget_ttl_seconds < Duration::from_secs(60) {
            bad.push("session_budget_ttl_seconds: must be at least 60".into());
        }
        if self.default_shot_budget > self.max_shots_per_experiment {
            bad.push("default_shot_budget: must not exceed max_shots_per_experiment".into());
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log.as_str()) {
            bad.push(format!(
                "log: '{}' is not one of error, warn, info, debug, trace",
                self.log
            ));
        }
        if !["text", "json"].contains(&self.log_format.as_str()) {
            bad.push(format!("log_format: '{}' is not text or json", self.log_format));
        }
        if self.cors_allow_credentials && self.cors_allow_origins.iter().any(|o| o == "*") {
            bad.push(
                "cors_allow_credentials: browsers refuse credentials with the wildcard origin; \
                 list the console's origins in cors_allow_origins instead of *"
                    .into(),
            );
        }
        if self.env.trim().is_empty() || self.env.len() > 64 || self.env.chars().any(char::is_control) {
            bad.push(format!(
                "env: '{}' must be a short label (1 to 64 printable characters) such as lab or staging",
                self.env.escape_default()
            ));
        }
        if self.api_key.as_deref() == Some("") {
            bad.push("api_key: must not be empty (leave it unset for no auth)".into());
        }
        for (target, o) in &self.noise {
            match NoiseProfile::builtin(target) {
                None => bad.push(format!("noise.{target}: unknown hardware target")),
                Some(base) => {
                    for p in o.apply(&base).problems() {
                        bad.push(format!("noise.{target}.{p}"));
                    }
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join("; "))
        }
    }

    /// Raw API keys: `api_key` plus every line of `api_keys_file`.
    pub fn api_keys(&self) -> Result<Vec<String>, String> {
        let mut keys: Vec<String> = self.api_key.iter().cloned().collect();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("api_keys_file {}: {e}", path.display()))?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from),
            );
        }
        Ok(keys)
    }

    /// The effective settings as TOML, keys masked, for `config check`.
    pub fn to_display_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.api_key.is_some() {
            shown.api_key = Some("<set>".into());
        }
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn key_kind(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, kind, _)| *kind)
}

fn typed(kind: Kind, text: &str) -> Result<toml::Value, String> {
    Ok(match kind {
        Kind::Str => toml::Value::String(text.to_string()),
        Kind::Int => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("'{text}' is not a whole number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("'{text}' is not true or false")),
        }),
        Kind::Addr => {
            address(text, "127.0.0.1:8001")?;
            toml::Value::String(text.to_string())
        }
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
    })
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file_with(text: &str) -> (tempdir::Dir, PathBuf) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("synqc.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    /// A scratch directory removed on drop (std only; no tempfile crate).
    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!(
                    "synqc-cfg-{}-{}",
                    std::process::id(),
                    rand::random::<u64>()
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn keys_table_matches_the_struct() {
        let json = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        fields.retain(|f| *f != "noise");
        fields.sort();
        let mut keys: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let (_d, path) = file_with("workers = 3\nlisten = \"127.0.0.1:9100\"\nmax_pending = 7\n");
        let sources = Sources {
            file: Some(path),
            env: flags(&[("SYNQC_WORKERS", "5"), ("SYNQC_LISTEN", "127.0.0.1:9200")]),
            flags: flags(&[("listen", "127.0.0.1:9300")]),
        };
        let c = Config::load(&sources).unwrap().config;
        assert_eq!(c.listen.to_string(), "127.0.0.1:9300");
        assert_eq!(c.workers, 5);
        assert_eq!(c.max_pending, 7);
        assert_eq!(c.lease_seconds, Duration::from_secs(30));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let (_d, path) = file_with("wokers = 3\n");
        let err = Config::load(&Sources {
            file: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("wokers"), "{err}");
        let err = Config::load(&Sources {
            flags: flags(&[("lisen", "x")]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains("--lisen"), "{err}");
        let loaded = Config::load(&Sources {
            env: flags(&[("SYNQC_BIN", "/x")]),
            ..Default::default()
        })
        .unwrap();
        assert!(loaded.warnings[0].contains("SYNQC_BIN"));
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        for (k, v, expect) in [
            ("workers", "many", "--workers"),
            ("session-budget-ttl-seconds", "59", "at least 60"),
            ("listen", "nowhere", "listen"),
            ("log-format", "xml", "log_format"),
            ("allow-provider-simulation", "maybe", "true or false"),
            ("env", " ", "env: "),
        ] {
            let err = Config::load(&Sources {
                flags: flags(&[(k, v)]),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains(expect), "{k}={v}: {err}");
        }
    }

    #[test]
    fn noise_overrides_apply_and_are_checked() {
        let (_d, path) = file_with("[noise.ibm_quantum]\nt1_us = 300.0\n");
        let c = Config::load(&Sources {
            file: Some(path),
            ..Default::default()
        })
        .unwrap()
        .config;
        let base = NoiseProfile::builtin("ibm_quantum").unwrap();
        assert_eq!(c.noise["ibm_quantum"].apply(&base).t1_us, 300.0);
        let (_d, path) = file_with("[noise.nowhere]\nt1_us = 3.0\n");
        assert!(Config::load(&Sources {
            file: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .contains("nowhere"));
        let (_d, path) = file_with("[noise.sim_local]\np1q = 2.0\n");
        assert!(Config::load(&Sources {
            file: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .contains("p1q"));
    }

    #[test]
    fn list_settings_split_on_commas() {
        let sources = Sources {
            env: flags(&[("SYNQC_CORS_ALLOW_ORIGINS", "http://a, http://b")]),
            ..Default::default()
        };
        assert_eq!(
            Config::load(&sources).unwrap().config.cors_allow_origins,
            ["http://a", "http://b"]
        );
    }

    #[test]
    fn credentials_need_explicit_origins() {
        let load = |origins: &str, credentials: &str| {
            Config::load(&Sources {
                flags: flags(&[
                    ("cors-allow-origins", origins),
                    ("cors-allow-credentials", credentials),
                ]),
                ..Default::default()
            })
        };
        let err = load("http://a,*", "true").unwrap_err();
        assert!(
            err.contains("cors_allow_credentials") && err.contains("instead of *"),
            "{err}"
        );
        assert!(load("http://a,*", "false").is_ok());
        let c = load("http://a", "true").unwrap().config;
        assert!(c.cors_allow_credentials);
        assert_eq!(c.env, "production");
    }
}
