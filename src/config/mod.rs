//! Configuration: one struct that is the file format, the environment
//! (`SYNQC_*`) and the command-line flags (`--key-name`). Precedence:
//! flags > environment > TOML file > defaults. Unknown keys in the file or
//! on the command line are refused by name.
//!
//! Each setting is declared once, in `settings!`, which yields the struct
//! field, its default, and its entry in [`KEYS`] (kind and help text).
//! How a setting's text is read is in kind.rs, loading and precedence in
//! load.rs, the file-only noise overrides in noise.rs and executor
//! bindings in executors.rs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::NoiseProfile;
pub use executors::{qiskit_env_bindings, ExecutorConfig};
pub use kind::Kind;
use kind::{doc_line, listen_address, metrics_address, whole_seconds, HasKind};
pub use load::{default_file, Loaded, Sources, CLIENT_SESSION_VAR, DEFAULT_CONFIG_FILE};
pub use noise::NoiseOverride;

mod executors;
mod kind;
mod load;
mod noise;

/// sled's page cache for the two databases together, unless configured
/// (store_cache_bytes). sled's own default is 1 GiB per database, and the
/// process grew with the store towards it; with a few MiB it stays flat
/// however large the store grows (tests/soak.sh measures it).
pub const DEFAULT_STORE_CACHE_BYTES: u64 = 8 << 20;

/// The largest circuit register the engine is allowed: its density matrix
/// takes 256 MiB, and one more qubit would take 1 GiB per run.
const MAX_CIRCUIT_QUBITS: usize = 12;

/// Below this sled's caches would hold too few pages to be of use.
const MIN_STORE_CACHE_BYTES: u64 = 1 << 20;

/// Declares every setting once: its doc line is its help, its name is the
/// TOML key (env `SYNQC_NAME`, flag `--name-with-dashes`), its type gives
/// the struct field and how env and flag text is read, and its expression
/// is the default. From that come [`Config`], its `Default` and [`KEYS`].
/// `noise` and `executors` tables exist only in the file, so they are
/// declared apart.
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
            /// Targets bound to an executor (docs/circuits.md).
            pub executors: BTreeMap<String, ExecutorConfig>,
        }

        impl Default for Config {
            fn default() -> Self {
                Config {
                    $($key: $default,)*
                    noise: BTreeMap::new(),
                    executors: BTreeMap::new(),
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
    /// qubits a circuit run may declare (1 to 12; memory grows 16x per 2 qubits)
    max_circuit_qubits: usize = 10;
    /// operations a circuit run may have once its gates are expanded
    max_circuit_ops: usize = 10_000;
    /// a keep-alive connection with no request this long is closed
    #[serde(with = "whole_seconds")]
    idle_timeout_seconds: Duration = Duration::from_secs(30);
    /// log level: error, warn, info, debug, trace
    log: String = "info".into();
    /// text or json
    log_format: String = "text".into();
}

impl Config {
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
        if !(1..=MAX_CIRCUIT_QUBITS).contains(&self.max_circuit_qubits) {
            bad.push(format!(
                "max_circuit_qubits: must be 1 to {MAX_CIRCUIT_QUBITS} (a density matrix of {MAX_CIRCUIT_QUBITS} qubits \
                 holds 4^{MAX_CIRCUIT_QUBITS} complex numbers)"
            ));
        }
        if self.max_circuit_ops == 0 {
            bad.push("max_circuit_ops: must be at least 1".into());
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
        for (target, binding) in &self.executors {
            if NoiseProfile::builtin(target).is_none() {
                bad.push(format!(
                    "executors.{target}: unknown hardware target; bind one listed in /hardware/targets"
                ));
            }
            bad.extend(
                binding
                    .validate()
                    .into_iter()
                    .map(|p| format!("executors.{target}.{p}")),
            );
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

#[cfg(test)]
mod tests;
