//! What every subcommand reads from its words: `--key value` flags, the
//! configuration `serve` and `config check` load, and the client the
//! commands that talk to a running appliance use.

use std::path::PathBuf;

use synqc::client::Client;
use synqc::config::{self, Config, Sources};

/// `--key value` pairs, in order.
pub(super) type Flags = Vec<(String, String)>;

/// `--key value` / `--key=value` pairs, plus positional words.
pub(super) fn parse_flags(args: &[String]) -> Result<(Flags, Vec<String>), String> {
    let mut flags = Vec::new();
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.strip_prefix("--") {
            Some(f) if f.contains('=') => {
                let (k, v) = f.split_once('=').unwrap_or((f, ""));
                flags.push((k.to_string(), v.to_string()));
            }
            Some(f @ ("no-strict" | "strict" | "wait")) => flags.push((f.to_string(), "true".to_string())),
            Some(f) => {
                let v = it.next().ok_or_else(|| format!("--{f} needs a value"))?;
                flags.push((f.to_string(), v.clone()));
            }
            None => words.push(a.clone()),
        }
    }
    Ok((flags, words))
}

/// Loads the configuration from --config (or the packaged file), the
/// environment and the remaining flags.
pub(super) fn load_config(args: &[String]) -> Result<config::Loaded, String> {
    let (mut flags, words) = parse_flags(args)?;
    if let Some(w) = words.first() {
        return Err(format!("unexpected argument '{w}'"));
    }
    let file = match flags.iter().position(|(k, _)| k == "config") {
        Some(i) => Some(PathBuf::from(flags.remove(i).1)),
        None => config::default_file(),
    };
    Config::load(&Sources::from_env(file, flags))
}

/// The base URL of a local appliance: --url, else the configured listen
/// address (0.0.0.0 means "this host" for a client).
fn base_url(flags: &mut Vec<(String, String)>) -> Result<String, String> {
    if let Some(i) = flags.iter().position(|(k, _)| k == "url") {
        return Ok(flags.remove(i).1);
    }
    let listen = std::env::var("SYNQC_LISTEN").ok().or_else(|| {
        config::default_file()
            .and_then(|f| {
                Config::load(&Sources {
                    file: Some(f),
                    ..Default::default()
                })
                .ok()
            })
            .map(|l| l.config.listen.to_string())
    });
    let listen = listen
        .unwrap_or_else(|| Config::default().listen.to_string())
        .replace("0.0.0.0", "127.0.0.1");
    Ok(format!("http://{listen}"))
}

pub(super) fn take(flags: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    flags
        .iter()
        .position(|(k, _)| k == key)
        .map(|i| flags.remove(i).1)
}

/// A client from --url, --api-key (else SYNQC_API_KEY) and --session
/// (else SYNQC_SESSION).
pub(super) fn client_from(flags: &mut Vec<(String, String)>) -> Result<Client, String> {
    let mut c = Client::new(&base_url(flags)?)?;
    c.api_key = take(flags, "api-key").or_else(|| std::env::var("SYNQC_API_KEY").ok());
    c.session = take(flags, "session").or_else(|| std::env::var(config::CLIENT_SESSION_VAR).ok());
    Ok(c)
}

/// Refuses an option `command` did not take.
pub(super) fn no_leftovers(flags: &[(String, String)], command: &str) -> Result<(), String> {
    match flags.first() {
        Some((k, _)) => Err(format!(
            "unknown option --{k}; synqc {command} --help lists the options"
        )),
        None => Ok(()),
    }
}

pub(super) fn number<T: std::str::FromStr>(
    flags: &mut Vec<(String, String)>,
    key: &str,
) -> Result<Option<T>, String> {
    take(flags, key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("--{key} must be a whole number, not '{v}'"))
        })
        .transpose()
}
