//! Loading: the file, the `SYNQC_*` environment and the flags merged in
//! that order of precedence into one TOML table, read as a [`Config`] and
//! checked.

use std::path::{Path, PathBuf};

use super::kind::typed;
use super::{qiskit_env_bindings, Config, Kind, KEYS};

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
                // The old service's executor bindings, read below.
                None if is_binding_var(var) => {}
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
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| match &file {
                Some(f) => format!("{}: {}", f.display(), e.message()),
                None => e.message().to_string(),
            })?;
        let (bound, problems) = qiskit_env_bindings(sources.env.clone());
        warnings.extend(problems);
        for (target, binding) in bound {
            match config.executors.entry(target) {
                std::collections::btree_map::Entry::Occupied(file) => warnings.push(format!(
                    "SYNQC_QISKIT_BACKEND_{} is ignored: the config file binds {} itself",
                    file.key().to_uppercase(),
                    file.key()
                )),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert(binding);
                }
            }
        }
        config.validate()?;
        Ok(Loaded {
            config,
            file,
            warnings,
        })
    }
}

/// The variables [`qiskit_env_bindings`] reads.
fn is_binding_var(var: &str) -> bool {
    var.starts_with("SYNQC_QISKIT_BACKEND_") || var == "SYNQC_PYTHON" || var == "SYNQC_EXECUTORS_DIR"
}

fn key_kind(key: &str) -> Option<Kind> {
    KEYS.iter().find(|(k, _, _)| *k == key).map(|(_, kind, _)| *kind)
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}
