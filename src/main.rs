//! The synqc command line: parse, set up logging, dispatch. The appliance
//! itself lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;
use synqc::client::Client;
use synqc::config::{self, Config, Sources};
use synqc::say;

/// glibc's malloc took about 14% of the CPU under a submit load (arena
/// locks, consolidation); with mimalloc a submit costs about a fifth less
/// server CPU, and an executed run about a sixth less.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One subcommand, as the help describes it.
struct Command {
    /// The words after `synqc`.
    name: &'static str,
    /// What follows the name on the usage line.
    usage: &'static str,
    about: &'static str,
    /// Its own options; [`options_of`] adds the shared and generated ones.
    options: &'static [(&'static str, &'static str)],
    /// Whether it talks to a running appliance (--url, --api-key, --session).
    client: bool,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "serve",
        usage: "[--config FILE] [--KEY VALUE ...]",
        about: "run the appliance: HTTP API, durable queue, workers",
        options: &[],
        client: false,
    },
    Command {
        name: "healthcheck",
        usage: "[--url URL] [OPTIONS]",
        about: "exit 0 when GET /health/ready answers 200, else 1 with the reason",
        options: &[],
        client: true,
    },
    Command {
        name: "submit",
        usage: "--preset P [--shots N] [OPTIONS]",
        about: "submit one run and print the server's JSON answer (the run id is in \"id\")",
        options: &[
            ("--preset P", "experiment preset (required; see the list below)"),
            (
                "--shots N",
                "the run's shot_budget (default: the server's default_shot_budget)",
            ),
            ("--target T", "hardware_target (default: sim_local)"),
            (
                "--mode M",
                "explore, calibrate or prod (prod refuses rather than clamps too many shots)",
            ),
            ("--seed S", "simulator seed: the same seed gives the same result"),
            ("--notes TEXT", "free text kept with the run"),
        ],
        client: true,
    },
    Command {
        name: "status",
        usage: "RUN_ID [OPTIONS]",
        about: "print a run's status document (JSON); exit 1 unless the server answers 200",
        options: &[],
        client: true,
    },
    Command {
        name: "loadtest",
        usage: "[--runs N] [--concurrency C] [OPTIONS]",
        about: "submit runs concurrently, wait for them all, then check the queue, store and metrics",
        options: &[],
        client: true,
    },
    Command {
        name: "backup",
        usage: "--out FILE [OPTIONS]",
        about: "write a consistent export of the store to FILE; safe while serving",
        options: &[("--out FILE", "where to write the backup (required)")],
        client: true,
    },
    Command {
        name: "restore",
        usage: "--in FILE --data-dir DIR",
        about: "load a backup into a new, empty data dir (with the server stopped)",
        options: &[
            ("--in FILE", "a file written by synqc backup (required)"),
            (
                "--data-dir DIR",
                "the new store; must not exist or be empty (required)",
            ),
        ],
        client: false,
    },
    Command {
        name: "config check",
        usage: "[--config FILE] [--KEY VALUE ...]",
        about: "load the settings as serve would and print them (secrets hidden), or the error",
        options: &[],
        client: false,
    },
    Command {
        name: "config keys",
        usage: "",
        about: "list every setting with its environment variable and help",
        options: &[],
        client: false,
    },
    Command {
        name: "bench sim",
        usage: "",
        about: "measure simulator throughput per preset (no server needed)",
        options: &[],
        client: false,
    },
    Command {
        name: "bench fill",
        usage: "--data-dir DIR --runs N",
        about: "write N finished runs into a store that is not being served (sizing tests)",
        options: &[
            ("--data-dir DIR", "the store to fill (required)"),
            ("--runs N", "how many runs to write (required)"),
        ],
        client: false,
    },
    Command {
        name: "version",
        usage: "",
        about: "print the synqc and simulator engine versions",
        options: &[],
        client: false,
    },
    Command {
        name: "help",
        usage: "[COMMAND]",
        about: "this list, or a command's options (same as synqc COMMAND --help)",
        options: &[],
        client: false,
    },
];

/// How a client command reaches the appliance; the environment variables
/// are the ones `serve` reads too, so one shell setting serves both.
fn client_options() -> [(String, String); 2] {
    [
        (
            "--url URL".into(),
            format!(
                "the appliance (default: http:// + SYNQC_LISTEN, else the config file's listen, \
                 else http://{})",
                Config::default().listen
            ),
        ),
        (
            "--api-key KEY".into(),
            "sent as X-Api-Key (default: SYNQC_API_KEY)".into(),
        ),
    ]
}

const SESSION_OPTION: (&str, &str) = (
    "--session NAME",
    "budget session, sent as X-Session-Id (default: SYNQC_SESSION, else the server's choice: \
     the key's session or local-session)",
);

fn settings_order() -> String {
    format!(
        "Settings come from flags > SYNQC_* environment > the config file ({} when present, \
         or --config) > defaults.",
        config::DEFAULT_CONFIG_FILE
    )
}

/// The options of `cmd`, each with one line of help.
fn options_of(cmd: &Command) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = cmd
        .options
        .iter()
        .map(|(o, h)| (o.to_string(), h.to_string()))
        .collect();
    match cmd.name {
        "serve" | "config check" => {
            out.push((
                "--config FILE".into(),
                format!(
                    "TOML settings file (default: {} when present)",
                    config::DEFAULT_CONFIG_FILE
                ),
            ));
            out.extend(setting_options());
        }
        "loadtest" => out.extend(loadtest_options()),
        _ if cmd.client => out.push((SESSION_OPTION.0.into(), SESSION_OPTION.1.into())),
        _ => {}
    }
    if cmd.client {
        out.extend(client_options());
    }
    out.push(("-h, --help".into(), "print this help".into()));
    out
}

/// Every configuration key as a flag, with its help, environment variable
/// and built-in default.
fn setting_options() -> Vec<(String, String)> {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    config::KEYS
        .iter()
        .map(|(key, kind, help)| {
            let value = match kind {
                config::Kind::Str | config::Kind::Addr => "VALUE",
                config::Kind::Int => "N",
                config::Kind::Bool => "true|false",
                config::Kind::List => "A,B,...",
            };
            let default = match defaults.get(*key) {
                Some(toml::Value::String(s)) => format!(", default {s}"),
                Some(toml::Value::Array(items)) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect();
                    format!(", default {}", items.join(","))
                }
                Some(v) => format!(", default {v}"),
                None => String::new(),
            };
            // A default that depends on the machine is described by the
            // help itself; an empty one is no default.
            let default = if help.contains("(default") || default.ends_with("default ") {
                String::new()
            } else {
                default
            };
            (
                format!("--{} {value}", key.replace('_', "-")),
                format!("{help} [SYNQC_{}{default}]", key.to_ascii_uppercase()),
            )
        })
        .collect()
}

fn loadtest_options() -> Vec<(String, String)> {
    let d = synqc::client::loadtest::Options::default();
    [
        ("--runs N", format!("runs to submit (default {})", d.runs)),
        (
            "--concurrency C",
            format!(
                "submits (then polls) in flight at once (default {})",
                d.concurrency
            ),
        ),
        (
            "--preset P",
            format!("preset of every run (default {})", d.preset),
        ),
        (
            "--shots N",
            "shots per run (default: the server's default_shot_budget, lowered so that runs x shots \
             fits max_shots_per_session); a load that cannot fit is refused before any submit"
                .into(),
        ),
        (
            "--session NAME",
            "budget session the load spends, sent as X-Session-Id (default: a fresh \
             loadtest-<hex>, so other clients keep their budget; SYNQC_SESSION is not used)"
                .into(),
        ),
        (
            "--timeout-seconds S",
            format!(
                "how long runs may take to finish and the queue to drain (default {})",
                d.timeout.as_secs()
            ),
        ),
        (
            "--strict",
            "exit 1 when a submit is refused, runs stay unfinished, the queue does not drain, \
             the store is down or metrics are unreachable (the default)"
                .into(),
        ),
        ("--no-strict", "report those problems but exit 0".into()),
    ]
    .into_iter()
    .map(|(o, h)| (o.to_string(), h))
    .collect()
}

/// Two aligned columns.
fn columns(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    rows.iter().map(|(a, b)| format!("  {a:width$}  {b}\n")).collect()
}

fn presets() -> String {
    let names: Vec<&str> = synqc::sim::Preset::ALL.iter().map(|p| p.as_str()).collect();
    names.join(", ")
}

/// `synqc --help`: every command.
fn usage() -> String {
    let rows: Vec<(String, String)> = COMMANDS
        .iter()
        .map(|c| (c.name.to_string(), c.about.to_string()))
        .collect();
    format!(
        "synqc: lab appliance for quantum experiment runs\n\n\
         usage: synqc COMMAND [OPTIONS]\n\n\
         commands:\n{}\n\
         synqc COMMAND --help lists a command's options.\n{}",
        columns(&rows),
        settings_order()
    )
}

/// The help of the command `words` names (the longest match, so `config
/// check` over `config`), of a group (`config`: its commands), or None.
fn help_of(words: &[String]) -> Option<String> {
    let named = |c: &&Command| {
        let n: Vec<&str> = c.name.split(' ').collect();
        words.len() >= n.len() && words.iter().zip(&n).all(|(w, n)| w == n)
    };
    if let Some(cmd) = COMMANDS.iter().filter(named).max_by_key(|c| c.name.len()) {
        let mut text = format!(
            "synqc {}: {}\n\nusage: {}\n\noptions:\n{}",
            cmd.name,
            cmd.about,
            format!("synqc {} {}", cmd.name, cmd.usage).trim_end(),
            columns(&options_of(cmd))
        );
        if matches!(cmd.name, "submit" | "loadtest") {
            text.push_str(&format!("\npresets: {}\n", presets()));
        }
        if matches!(cmd.name, "serve" | "config check") {
            text.push_str(&format!("\n{}\n", settings_order()));
        }
        return Some(text.trim_end().to_string());
    }
    let group: Vec<(String, String)> = COMMANDS
        .iter()
        .filter(|c| {
            words
                .first()
                .is_some_and(|w| c.name.split(' ').next() == Some(w.as_str()))
        })
        .map(|c| (format!("{} {}", c.name, c.usage), c.about.to_string()))
        .collect();
    (!group.is_empty()).then(|| {
        format!(
            "commands:\n{}\nsynqc COMMAND --help lists a command's options.",
            columns(&group)
        )
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Asked anywhere on the line, help wins over running the command.
    let asks_help = args.iter().any(|a| a == "--help" || a == "-h");
    let outcome = match args.first().map(String::as_str) {
        Some("help" | "--help" | "-h") | None => match args.get(1).filter(|w| !w.starts_with('-')) {
            Some(_) => help_of(&args[1..])
                .map(|text| say!("{text}"))
                .ok_or_else(|| format!("unknown command '{}'\n\n{}", args[1..].join(" "), usage())),
            None => {
                say!("{}", usage());
                Ok(())
            }
        },
        Some(_) if asks_help => {
            let words: Vec<String> = args.iter().take_while(|a| !a.starts_with('-')).cloned().collect();
            help_of(&words)
                .map(|text| say!("{text}"))
                .ok_or_else(|| format!("unknown command '{}'\n\n{}", words.join(" "), usage()))
        }
        Some("serve") => serve(&args[1..]),
        Some("healthcheck") => healthcheck(&args[1..]),
        Some("submit") => submit(&args[1..]),
        Some("status") => status(&args[1..]),
        Some("loadtest") => loadtest(&args[1..]),
        Some("backup") => backup(&args[1..]),
        Some("restore") => restore(&args[1..]),
        Some("config") => config_cmd(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("version" | "--version" | "-V") => {
            say!(
                "synqc {} (engine {})",
                env!("CARGO_PKG_VERSION"),
                synqc::sim::ENGINE_VERSION
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{}", usage())),
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
            .map(|l| l.config.listen.to_string())
    });
    let listen = listen
        .unwrap_or_else(|| Config::default().listen.to_string())
        .replace("0.0.0.0", "127.0.0.1");
    Ok(format!("http://{listen}"))
}

fn take(flags: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    flags
        .iter()
        .position(|(k, _)| k == key)
        .map(|i| flags.remove(i).1)
}

/// A client from --url, --api-key (else SYNQC_API_KEY) and --session
/// (else SYNQC_SESSION).
fn client_from(flags: &mut Vec<(String, String)>) -> Result<Client, String> {
    let mut c = Client::new(&base_url(flags)?)?;
    c.api_key = take(flags, "api-key").or_else(|| std::env::var("SYNQC_API_KEY").ok());
    c.session = take(flags, "session").or_else(|| std::env::var(config::CLIENT_SESSION_VAR).ok());
    Ok(c)
}

/// Refuses an option `command` did not take.
fn no_leftovers(flags: &[(String, String)], command: &str) -> Result<(), String> {
    match flags.first() {
        Some((k, _)) => Err(format!(
            "unknown option --{k}; synqc {command} --help lists the options"
        )),
        None => Ok(()),
    }
}

fn number<T: std::str::FromStr>(flags: &mut Vec<(String, String)>, key: &str) -> Result<Option<T>, String> {
    take(flags, key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("--{key} must be a whole number, not '{v}'"))
        })
        .transpose()
}

fn healthcheck(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    no_leftovers(&flags, "healthcheck")?;
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
        if let Some(v) = number::<u64>(&mut flags, flag)? {
            body[field] = json!(v);
        }
    }
    no_leftovers(&flags, "submit")?;
    let reply = client.post("/runs", &body)?;
    say!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 202 || reply.status == 200 {
        Ok(())
    } else {
        let detail = &reply.json()["detail"];
        Err(format!(
            "submit refused: HTTP {} {} {}",
            reply.status,
            detail["error_code"].as_str().unwrap_or(""),
            detail["error_message"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string())
    }
}

fn status(args: &[String]) -> Result<(), String> {
    let (mut flags, words) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    no_leftovers(&flags, "status")?;
    let id = words.first().ok_or("status needs a run id")?;
    let reply = client.get(&format!("/runs/{id}"))?;
    say!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {}", reply.status))
    }
}

fn loadtest(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    // The load's session is its own unless named here: SYNQC_SESSION is
    // the operator's interactive session, which the load must not spend.
    let session = take(&mut flags, "session");
    let mut client = client_from(&mut flags)?;
    client.session = None;
    let mut o = synqc::client::loadtest::Options {
        session,
        ..Default::default()
    };
    if let Some(runs) = number::<usize>(&mut flags, "runs")? {
        if runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        o.runs = runs;
    }
    if let Some(c) = number::<usize>(&mut flags, "concurrency")? {
        o.concurrency = c.max(1);
    }
    if let Some(p) = take(&mut flags, "preset") {
        o.preset = p;
    }
    o.shots = number(&mut flags, "shots")?;
    if let Some(s) = number(&mut flags, "timeout-seconds")? {
        o.timeout = std::time::Duration::from_secs(s);
    }
    // The last of --strict / --no-strict wins.
    while let Some(i) = flags.iter().position(|(k, _)| k == "strict" || k == "no-strict") {
        o.strict = flags.remove(i).0 == "strict";
    }
    no_leftovers(&flags, "loadtest")?;
    synqc::client::loadtest::run(&client, &o)
}

fn backup(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    let out = take(&mut flags, "out").ok_or("--out FILE is required")?;
    no_leftovers(&flags, "backup")?;
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
    say!("backup written to {out} ({bytes} bytes): {last}");
    Ok(())
}

fn restore(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let input = take(&mut flags, "in").ok_or("--in FILE is required")?;
    let dir = take(&mut flags, "data-dir").ok_or("--data-dir DIR is required")?;
    no_leftovers(&flags, "restore")?;
    let file = std::fs::File::open(&input).map_err(|e| format!("{input}: {e}"))?;
    let done = synqc::store::restore(std::path::Path::new(&dir), &mut std::io::BufReader::new(file))
        .map_err(|e| e.to_string())?;
    say!(
        "restored {} runs ({} back in the queue) and {} budget sessions into {dir}",
        done.runs,
        done.requeued,
        done.sessions
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
                Some(f) => say!("# configuration OK: {}", f.display()),
                None => say!("# configuration OK (no file; defaults, environment and flags)"),
            }
            print!("{}", loaded.config.to_display_toml());
            Ok(())
        }
        Some("keys") => {
            for (key, _, help) in config::KEYS {
                say!("{key:28} SYNQC_{:28} {help}", key.to_ascii_uppercase());
            }
            Ok(())
        }
        _ => Err(format!(
            "config needs a subcommand\n\n{}",
            help_of(&["config".to_string()]).unwrap_or_default()
        )),
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
            let runs: u64 = number(&mut flags, "runs")?.ok_or("--runs is required")?;
            no_leftovers(&flags, "bench fill")?;
            synqc::store::fill(std::path::Path::new(&dir), runs).map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "bench needs a subcommand\n\n{}",
            help_of(&["bench".to_string()]).unwrap_or_default()
        )),
    }
}
