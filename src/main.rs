//! The synqc command line: parse, set up logging, dispatch (in `cli/`).
//! The appliance itself lives in the library.

mod cli;

use std::process::ExitCode;

/// glibc's malloc took about 14% of the CPU under a submit load (arena
/// locks, consolidation); with mimalloc a submit costs about a fifth less
/// server CPU, and an executed run about a sixth less.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    synqc::sim::circuit::abort_on_unguarded_panic();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synqc: {e}");
            ExitCode::FAILURE
        }
    }
}
