//! One executor binding as the config file declares it
//! (`[executors.<target>]`), its checks, and the bindings the old
//! service's `SYNQC_QISKIT_BACKEND_<TARGET>` variables stand for.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the packaged reference executors live, unless
/// `SYNQC_EXECUTORS_DIR` says otherwise.
const EXECUTORS_DIR: &str = "/usr/share/synqc/executors";
/// The interpreter that runs the shipped executor, unless `SYNQC_PYTHON`
/// says otherwise.
const PYTHON: &str = "/usr/bin/python3";
/// The old service's binding variables: this prefix, then the target.
const QISKIT_PREFIX: &str = "SYNQC_QISKIT_BACKEND_";

/// `[executors.<target>]`: the program that runs this target's circuits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Program and arguments of the long-lived child process. The program
    /// is an absolute path, or a bare name looked up in PATH.
    pub command: Vec<String>,
    /// Longest wait for one request (all of a run's circuits), and for
    /// the hello handshake after a start.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Requests outstanding at once.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Seconds between liveness pings while the executor is idle.
    #[serde(default = "default_ping_seconds")]
    pub ping_seconds: u64,
}

fn default_timeout_seconds() -> u64 {
    120
}

fn default_max_in_flight() -> usize {
    1
}

fn default_ping_seconds() -> u64 {
    10
}

impl ExecutorConfig {
    /// A binding of `command` with every other setting at its default.
    pub fn new(command: Vec<String>) -> ExecutorConfig {
        ExecutorConfig {
            command,
            timeout_seconds: default_timeout_seconds(),
            max_in_flight: default_max_in_flight(),
            ping_seconds: default_ping_seconds(),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_seconds)
    }

    /// What is wrong with this binding, each a sentence with its key and
    /// what to do; the caller prefixes `executors.<target>.`. A program
    /// that does not exist yet is not among them: the supervisor reports
    /// it as the reason the target is down and starts it once it appears.
    pub fn validate(&self) -> Vec<String> {
        let mut bad = Vec::new();
        match self.command.first().map(String::as_str) {
            None => bad.push(
                "command: must name the program to start, as in \
                 [\"/usr/bin/python3\", \"/usr/share/synqc/executors/qiskit_aer.py\"]"
                    .to_string(),
            ),
            Some(p) if p.trim().is_empty() => {
                bad.push("command: the program (first element) is empty; give its absolute path".to_string())
            }
            // synqc's working directory is the service's, not the
            // operator's, so a relative path would point somewhere else.
            Some(p) if p.contains('/') && !Path::new(p).is_absolute() => bad.push(format!(
                "command: the program '{p}' is a relative path; give its absolute path, \
                 or a bare name found in PATH"
            )),
            Some(_) => {}
        }
        if self.command.iter().any(|a| a.contains('\0')) {
            bad.push("command: an argument contains a NUL character; remove it".to_string());
        }
        for (key, value) in [
            ("timeout_seconds", self.timeout_seconds),
            ("max_in_flight", self.max_in_flight as u64),
            ("ping_seconds", self.ping_seconds),
        ] {
            if value == 0 {
                bad.push(format!("{key}: must be at least 1"));
            }
        }
        bad
    }
}

/// The bindings the old service's variables stand for:
/// `SYNQC_QISKIT_BACKEND_<TARGET>=<Aer backend name>` binds the target
/// named by the suffix, lowercased (`..._IBM_QUANTUM` is `ibm_quantum`),
/// to the shipped Aer executor: `SYNQC_PYTHON` (else /usr/bin/python3)
/// running `qiskit_aer.py` from `SYNQC_EXECUTORS_DIR` (else
/// /usr/share/synqc/executors), with `--backend <name>` appended so the
/// executor can report and honour the backend the operator named.
/// Returns the bindings and, for variables that cannot be honoured, a
/// sentence each. `vars` is the process environment in production.
pub fn qiskit_env_bindings(
    vars: impl IntoIterator<Item = (String, String)>,
) -> (BTreeMap<String, ExecutorConfig>, Vec<String>) {
    let vars: BTreeMap<String, String> = vars.into_iter().collect();
    let python = vars
        .get("SYNQC_PYTHON")
        .filter(|v| !v.is_empty())
        .map_or(PYTHON, String::as_str);
    let dir = vars
        .get("SYNQC_EXECUTORS_DIR")
        .filter(|v| !v.is_empty())
        .map_or(EXECUTORS_DIR, String::as_str);
    let script = Path::new(dir)
        .join("qiskit_aer.py")
        .to_string_lossy()
        .into_owned();
    let mut bindings = BTreeMap::new();
    let mut warnings = Vec::new();
    for (name, backend) in &vars {
        let Some(target) = name.strip_prefix(QISKIT_PREFIX) else {
            continue;
        };
        let backend = backend.trim();
        if target.is_empty() {
            warnings.push(format!(
                "{name}: names no target; use {QISKIT_PREFIX}<TARGET>, as in {QISKIT_PREFIX}IBM_QUANTUM"
            ));
        } else if backend.is_empty() {
            warnings.push(format!(
                "{name} is empty, so target {} is not bound; set it to an Aer backend name \
                 such as aer_simulator, or unset it",
                target.to_lowercase()
            ));
        } else {
            let command = vec![
                python.to_string(),
                script.clone(),
                "--backend".into(),
                backend.into(),
            ];
            bindings.insert(target.to_lowercase(), ExecutorConfig::new(command));
        }
    }
    (bindings, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_table_with_only_the_command_takes_the_defaults() {
        let c: ExecutorConfig =
            toml::from_str(r#"command = ["/usr/bin/python3", "/x/qiskit_aer.py"]"#).unwrap();
        assert_eq!(
            c,
            ExecutorConfig::new(vec!["/usr/bin/python3".into(), "/x/qiskit_aer.py".into()])
        );
        assert_eq!((c.timeout_seconds, c.max_in_flight, c.ping_seconds), (120, 1, 10));
        assert!(c.validate().is_empty());
    }

    #[test]
    fn unknown_keys_and_a_missing_command_are_refused() {
        let e = toml::from_str::<ExecutorConfig>("command = [\"/bin/x\"]\ntimeout = 5").unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
        assert!(toml::from_str::<ExecutorConfig>("timeout_seconds = 5").is_err());
    }

    #[test]
    fn validate_names_each_bad_key_with_what_to_do() {
        let mut c = ExecutorConfig::new(Vec::new());
        c.timeout_seconds = 0;
        c.max_in_flight = 0;
        c.ping_seconds = 0;
        let bad = c.validate();
        assert_eq!(bad.len(), 4, "{bad:?}");
        assert!(bad[0].starts_with("command: must name the program"));
        assert_eq!(
            bad[1..],
            [
                "timeout_seconds: must be at least 1",
                "max_in_flight: must be at least 1",
                "ping_seconds: must be at least 1"
            ]
        );
        let relative = ExecutorConfig::new(vec!["executors/run.py".into()]).validate();
        assert!(
            relative[0].contains("relative path; give its absolute path"),
            "{relative:?}"
        );
        assert!(ExecutorConfig::new(vec![" ".into()]).validate()[0].contains("empty"));
        assert!(ExecutorConfig::new(vec!["python3".into(), "/x.py".into()])
            .validate()
            .is_empty());
    }

    #[test]
    fn qiskit_variables_bind_their_lowercased_target_to_the_shipped_executor() {
        let (b, w) = qiskit_env_bindings(vars(&[
            ("SYNQC_QISKIT_BACKEND_IBM_QUANTUM", "aer_simulator"),
            ("SYNQC_QISKIT_BACKEND_IONQ_CLOUD", " "),
            ("SYNQC_QISKIT_BACKEND_", "aer_simulator"),
            ("PATH", "/usr/bin"),
        ]));
        assert_eq!(b.keys().collect::<Vec<_>>(), ["ibm_quantum"]);
        assert_eq!(
            b["ibm_quantum"].command,
            [
                "/usr/bin/python3",
                "/usr/share/synqc/executors/qiskit_aer.py",
                "--backend",
                "aer_simulator"
            ]
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|s| s.contains("ionq_cloud is not bound")));
        assert!(w.iter().any(|s| s.contains("names no target")));
    }

    #[test]
    fn python_and_the_executors_dir_can_be_moved() {
        let (b, w) = qiskit_env_bindings(vars(&[
            ("SYNQC_QISKIT_BACKEND_AWS_BRAKET", "aer_simulator_density_matrix"),
            ("SYNQC_PYTHON", "/opt/venv/bin/python"),
            ("SYNQC_EXECUTORS_DIR", "/opt/synqc/executors"),
        ]));
        assert!(w.is_empty());
        assert_eq!(
            b["aws_braket"].command[..2],
            ["/opt/venv/bin/python", "/opt/synqc/executors/qiskit_aer.py"]
        );
    }
}
