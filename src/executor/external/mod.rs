//! Executors: programs outside synqc that run a bound target's circuits
//! on a real device or another simulator (docs/operations.md). synqc
//! stays the queue, budget, store and estimator; an executor only turns
//! circuits into counts, over JSON lines on its stdin and stdout.
//!
//! What synqc expects of an executor, beyond the line formats:
//! - stdout carries protocol lines only; a stray line fails the requests
//!   outstanding (their answers may be lost), and diagnostics belong on
//!   stderr, which goes to synqc's log;
//! - it answers the hello within timeout_seconds of its start;
//! - pings come only while no request is outstanding, so an executor may
//!   handle one line at a time; a request's timeout covers a hang;
//! - it exits at the end of its input (synqc closes it to stop it, then
//!   kills its process group).
//!
//! A binding as the config file gives it is crate::config::ExecutorConfig;
//! protocol.rs holds the lines exchanged and the checks an answer passes;
//! supervisor.rs keeps one child per bound target alive and sends it
//! requests.

mod protocol;
mod supervisor;

pub use protocol::{BackendInfo, ExecCircuit, ExecFailure, ExecRequest, ExecResponse, ProviderFailure};
pub use supervisor::{ExecutorHandle, ExecutorStatus};

use std::collections::BTreeMap;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use once_cell::sync::OnceCell;

use crate::config::ExecutorConfig;

const REQUESTS: &str = "synqc_executor_requests_total";
const REQUEST_SECONDS: &str = "synqc_executor_request_duration_seconds";
const RESTARTS: &str = "synqc_executor_restarts_total";
const UP: &str = "synqc_executor_up";

/// How a request ended: the `outcome` label of REQUESTS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The executor answered with its own error.
    ExecutorError,
    /// An answer that failed the checks, or a line that was not one.
    BadAnswer,
    Timeout,
    /// The child died while the request was outstanding.
    Exited,
    Cancelled,
    /// Not sent: the executor was down, or synqc is stopping.
    Unavailable,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::ExecutorError,
        Outcome::BadAnswer,
        Outcome::Timeout,
        Outcome::Exited,
        Outcome::Cancelled,
        Outcome::Unavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ExecutorError => "executor_error",
            Outcome::BadAnswer => "bad_answer",
            Outcome::Timeout => "timeout",
            Outcome::Exited => "exited",
            Outcome::Cancelled => "cancelled",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// The executors of the bound targets. Empty until [`Bindings::start`]:
/// only a serving appliance starts child processes, never a CLI command
/// that opens the store.
#[derive(Default)]
pub struct Bindings {
    handles: OnceCell<BTreeMap<String, ExecutorHandle>>,
}

impl Bindings {
    /// Starts one supervisor per binding (each starts its child at once).
    pub fn start(&self, config: &BTreeMap<String, ExecutorConfig>) -> std::io::Result<()> {
        let mut handles = BTreeMap::new();
        for (target, binding) in config {
            log::info!(
                "target {target} is bound to the executor {}",
                binding.command.join(" ")
            );
            handles.insert(target.clone(), ExecutorHandle::start(target, binding.clone())?);
        }
        // A second start (there is none) would keep the first set running.
        let _ = self.handles.set(handles);
        Ok(())
    }

    /// The executor of `target`, when it is bound and started.
    pub fn get(&self, target: &str) -> Option<&ExecutorHandle> {
        self.handles.get()?.get(target)
    }

    /// Stops every child; runs still waiting on one go back to the queue.
    pub fn shutdown(&self) {
        for handle in self.handles.get().into_iter().flat_map(BTreeMap::values) {
            handle.shutdown();
        }
    }
}

/// Help text of the executor metrics, for the registry.
pub fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests sent to a bound target's executor, by target and outcome \
         (ok, executor_error, bad_answer, timeout, exited, cancelled, unavailable)."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Time from sending a request to an executor to its answer, timeout or end."
    );
    describe_counter!(
        RESTARTS,
        "Starts of a bound target's executor after its first one (it died, hung or failed to start)."
    );
    describe_gauge!(
        UP,
        "1 when a bound target's executor answered its handshake and pings, else 0."
    );
}

#[cfg(test)]
mod tests;
