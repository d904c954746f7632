//! The synqc command line: each subcommand, its flags and its help. The
//! appliance itself lives in the library; these are its front door.

mod flags;
mod help;
mod local;
mod physics;
mod remote;

use synqc::say;

use help::{help_of, usage};

/// Runs the subcommand `args` (the words after `synqc`) names.
pub fn run(args: &[String]) -> Result<(), String> {
    // Asked anywhere on the line, help wins over running the command.
    let asks_help = args.iter().any(|a| a == "--help" || a == "-h");
    match args.first().map(String::as_str) {
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
        Some("serve") => local::serve(&args[1..]),
        Some("healthcheck") => remote::healthcheck(&args[1..]),
        Some("submit") => remote::submit(&args[1..]),
        Some("status") => remote::status(&args[1..]),
        Some("pause") => remote::pause(&args[1..], false),
        Some("resume") => remote::pause(&args[1..], true),
        Some("loadtest") => remote::loadtest(&args[1..]),
        Some("backup") => remote::backup(&args[1..]),
        Some("restore") => local::restore(&args[1..]),
        Some("config") => local::config_cmd(&args[1..]),
        Some("bench") => local::bench(&args[1..]),
        Some("physics") => physics::physics(&args[1..]),
        Some("version" | "--version" | "-V") => {
            say!(
                "synqc {} (engine {})",
                env!("CARGO_PKG_VERSION"),
                synqc::sim::ENGINE_VERSION
            );
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{}", usage())),
    }
}
