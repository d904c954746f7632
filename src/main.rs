//! The synqc command line: parse, set up logging, dispatch. The appliance
//! itself lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use synqc::client::Client;
use synqc::config::{self, Config, Sources};

/// glibc's malloc took about 14% of the CPU under a submit load (arena
/// locks, consolidation); with mimalloc a submit costs about a fifth less
/// server CPU, and an executed run about a sixth less.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
synqc: lab appliance for quantum experiment runs

usage:
  synqc serve [--config FILE] [--KEY VALUE ...]   run the appliance (keys: synqc config keys)
  synqc healthcheck [--url URL]                   exit 0 when /health/ready answers 200
  synqc submit [--url URL] [--api-key K] --preset P [--shots N] [--target T] [--mode M] [--seed S]
  synqc status [--url URL] [--api-key K] RUN_ID
  synqc loadtest [--url URL] [--api-key K] [--runs N] [--concurrency C] [--preset P]
                 [--timeout-seconds S] [--no-strict]
  synqc backup [--url URL] [--api-key K] --out FILE   consistent export, safe while serving
  synqc restore --in FILE --data-dir DIR          into a new data dir (server stopped)
  synqc config check [--config FILE] [--KEY VALUE ...]
  synqc config keys                               list every setting
  synqc bench sim                                 simulator throughput per preset
  synqc bench fill --data-dir DIR --runs N        write N finished runs (store not served)
  synqc version

Settings come from flags > SYNQC_* environment > the config file
(/etc/synqc/synqc.toml when present, or --config) > defaults.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("healthcheck") => healthcheck(&args[1..]),
        Some("submit") => submit(&args[1..]),
        Some("status") => status(&args[1..]),
        Some("loadtest") => synqc::client::loadtest::run(&args[1..]),
        Some("backup") => backup(&args[1..]),
        Some("restore") => restore(&args[1..]),
        Some("config") => config_cmd(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("version" | "--version" | "-V") => {
            println!(
                "synqc {} (engine {})",
                env!("CARGO_PKG_VERSION"),
                synqc::sim::ENGINE_VERSION
            );
            Ok(())
        }
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synqc: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--key value` pairs, in order.
type Flags = Vec<(String, String)>;

/// `--key value` / `--key=value` pairs, plus positional words.
fn parse_flags(args: &[String]) -> Result<(Flags, Vec<String>), String> {
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
fn load_config(args: &[String]) -> Result<config::Loaded, String> {
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

fn serve(args: &[String]) -> Result<(), String> {
    let loaded = load_config(args)?;
    synqc::telemetry::init_logging(&loaded.config.log, &loaded.config.log_format);
    if let Some(f) = &loaded.file {
        log::info!("configuration from {}", f.display());
    }
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    synqc::server::serve(loaded.config).map_err(|e| e.to_string())
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
            .map(|l| l.config.listen)
    });
    let listen = listen
        .unwrap_or_else(|| Config::default().listen)
        .replace("0.0.0.0", "127.0.0.1");
    Ok(format!("http://{listen}"))
}

fn take(flags: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    flags
        .iter()
        .position(|(k, _)| k == key)
        .map(|i| flags.remove(i).1)
}

fn client_from(flags: &mut Vec<(String, String)>) -> Result<Client, String> {
    let mut c = Client::new(&base_url(flags)?)?;
    c.api_key = take(flags, "api-key").or_else(|| std::env::var("SYNQC_API_KEY").ok());
    Ok(c)
}

fn no_leftovers(flags: &[(String, String)]) -> Result<(), String> {
    match flags.first() {
        Some((k, _)) => Err(format!("unknown option --{k}")),
        None => Ok(()),
    }
}

fn healthcheck(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    no_leftovers(&flags)?;
    client.timeout = std::time::Duration::from_secs(5);
    let reply = client.get("/health/ready")?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("not ready: {} {}", reply.status, reply.body.trim()))
    }
}

fn submit(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    let preset = take(&mut flags, "preset").ok_or("--preset is required")?;
    let mut body = json!({ "preset": preset });
    for (flag, field) in [
        ("target", "hardware_target"),
        ("mode", "mode"),
        ("notes", "notes"),
    ] {
        if let Some(v) = take(&mut flags, flag) {
            body[field] = json!(v);
        }
    }
    for (flag, field) in [("shots", "shot_budget"), ("seed", "seed")] {
        if let Some(v) = take(&mut flags, flag) {
            body[field] = json!(v
                .parse::<u64>()
                .map_err(|_| format!("--{flag} must be a whole number"))?);
        }
    }
    no_leftovers(&flags)?;
    let reply = client.post("/runs", &body)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 202 || reply.status == 200 {
        Ok(())
    } else {
        Err(format!("submit refused with HTTP {}", reply.status))
    }
}

fn status(args: &[String]) -> Result<(), String> {
    let (mut flags, words) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    no_leftovers(&flags)?;
    let id = words.first().ok_or("status needs a run id")?;
    let reply = client.get(&format!("/runs/{id}"))?;
    println!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {}", reply.status))
    }
}

fn backup(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    let out = take(&mut flags, "out").ok_or("--out FILE is required")?;
    no_leftovers(&flags)?;
    client.timeout = std::time::Duration::from_secs(3600);
    let bytes = client.download("/admin/backup", std::path::Path::new(&out))?;
    // The server ends a complete backup with an end marker; check it here
    // so a cut stream is reported now, not at restore time.
    let tail = {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&out).map_err(|e| format!("{out}: {e}"))?;
        f.seek(SeekFrom::Start(bytes.saturating_sub(64 * 1024)))
            .map_err(|e| format!("{out}: {e}"))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| format!("{out}: {e}"))?;
        String::from_utf8_lossy(&buf).into_owned()
    };
    let last = tail.lines().last().unwrap_or("");
    if !last.starts_with("{\"end\"") {
        return Err(format!(
            "{out}: the backup stream was cut short ({bytes} bytes); try again"
        ));
    }
    println!("backup written to {out} ({bytes} bytes): {last}");
    Ok(())
}

fn restore(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let input = take(&mut flags, "in").ok_or("--in FILE is required")?;
    let dir = take(&mut flags, "data-dir").ok_or("--data-dir DIR is required")?;
    no_leftovers(&flags)?;
    let file = std::fs::File::open(&input).map_err(|e| format!("{input}: {e}"))?;
    let done = synqc::store::restore(std::path::Path::new(&dir), &mut std::io::BufReader::new(file))
        .map_err(|e| e.to_string())?;
    println!(
        "restored {} runs ({} back in the queue) and {} budget sessions into {dir}",
        done.runs, done.requeued, done.sessions
    );
    Ok(())
}

fn config_cmd(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("check") => {
            let loaded = load_config(&args[1..])?;
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            match &loaded.file {
                Some(f) => println!("# configuration OK: {}", f.display()),
                None => println!("# configuration OK (no file; defaults, environment and flags)"),
            }
            print!("{}", loaded.config.to_display_toml());
            Ok(())
        }
        Some("keys") => {
            for (key, _, help) in config::KEYS {
                println!("{key:28} SYNQC_{:28} {help}", key.to_ascii_uppercase());
            }
            Ok(())
        }
        _ => Err("usage: synqc config check [--config FILE] | synqc config keys".into()),
    }
}

fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("sim") => {
            print!("{}", synqc::sim::bench::bench_report());
            Ok(())
        }
        Some("fill") => {
            let (mut flags, _) = parse_flags(&args[1..])?;
            let dir = take(&mut flags, "data-dir").ok_or("--data-dir is required")?;
            let runs: u64 = take(&mut flags, "runs")
                .ok_or("--runs is required")?
                .parse()
                .map_err(|_| "--runs must be a number")?;
            no_leftovers(&flags)?;
            synqc::store::fill(std::path::Path::new(&dir), runs).map_err(|e| e.to_string())
        }
        _ => Err("usage: synqc bench sim | synqc bench fill --data-dir DIR --runs N".into()),
    }
}
