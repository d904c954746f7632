//! The commands that work on this machine without a running appliance:
//! serve itself, restore, config check and keys, and the benches.

use synqc::config;
use synqc::say;

use super::flags::{load_config, no_leftovers, number, parse_flags, take};
use super::help::help_of;

pub(super) fn serve(args: &[String]) -> Result<(), String> {
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

pub(super) fn restore(args: &[String]) -> Result<(), String> {
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

pub(super) fn config_cmd(args: &[String]) -> Result<(), String> {
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

pub(super) fn bench(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("sim") => {
            print!("{}", synqc::sim::bench::bench_report());
            Ok(())
        }
        Some("circuits") => synqc::sim::bench::circuits_command(&args[1..]),
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
