//! The help: every subcommand with its usage and options, the setting
//! flags generated from the configuration's table, and the text of
//! `synqc help`, `synqc COMMAND --help` and a group's `synqc config`.

use synqc::config::{self, Config};

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
            (
                "--priority N",
                "queue priority 0-9, higher runs first (default 7 in calibrate mode, 4 otherwise)",
            ),
            (
                "--not-before T",
                "earliest start: an RFC 3339 date-time such as 2030-01-31T08:00:00Z",
            ),
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
        name: "pause",
        usage: "[--target T] [--reason TEXT] [OPTIONS]",
        about: "start no new run on target T, or on the whole queue: running runs finish, submits wait",
        options: &[
            ("--target T", "the hardware target to pause (default: the whole queue)"),
            ("--reason TEXT", "why, shown in /health and the console"),
        ],
        client: true,
    },
    Command {
        name: "resume",
        usage: "[--target T] [OPTIONS]",
        about: "end the pause of target T, or of the whole queue: its queued runs start in turn",
        options: &[
            ("--target T", "the hardware target to resume (default: the whole queue)"),
            ("--reason TEXT", "why, logged by the server"),
        ],
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
        name: "bench circuits",
        usage: "[--qubits 2-10] [--depth 20] [--circuits 10] [--seed 1] [--qasm-dir DIR]",
        about: "time the density-matrix engine on seeded random circuits per width: circuits/s and peak memory",
        options: &[
            ("--qubits N|MIN-MAX", "widths to run, 2-14 (default 2-10)"),
            ("--depth D", "layers per circuit (default 20)"),
            ("--circuits K", "circuits per width (default 10)"),
            ("--seed S", "generator seed (default 1)"),
            (
                "--qasm-dir DIR",
                "also write each circuit as OpenQASM 3 (q<width>_c<index>.qasm) to time Aer on the same circuits",
            ),
        ],
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
        name: "physics circuits",
        usage: "--preset P --target T [--seed S] [--shots N] [--compare-with T2] [--control KEY=VALUE ...]",
        about: "print every circuit a preset runs on a built-in target as OpenQASM 3, with its noise \
                parameters and the engine's exact outcome distribution (JSON; no server needed)",
        options: &[
            ("--preset P", "the preset (required; any but circuit)"),
            ("--target T", "a built-in hardware target, simulated with its built-in profile (required)"),
            ("--seed S", "the run's seed (default 1); sets the circuits of randomized presets"),
            (
                "--shots N",
                "the run's shot budget (default: the default_shot_budget default, at least the preset's minimum)",
            ),
            (
                "--compare-with T2",
                "backend_compare's second target, or ideal (default: the first other target)",
            ),
            (
                "--control KEY=VALUE",
                "a control setting, repeatable (e.g. drive_bias=1.08, thermal_guard_enabled=false)",
            ),
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
pub(super) fn usage() -> String {
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
pub(super) fn help_of(words: &[String]) -> Option<String> {
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
        if matches!(cmd.name, "submit" | "loadtest" | "physics circuits") {
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
