//! Execution: workers on the smol executor claim runs from the durable
//! queue in the store, run the simulator on a blocking thread, keep their
//! lease alive while it runs, and write the outcome in one transaction.
//! A maintenance loop takes back runs whose lease expired, prunes old runs
//! and expires budget sessions.
//!
//! control.rs holds what this process knows of the runs it claimed;
//! worker.rs executes them; cancel.rs stops them; recovery.rs takes back
//! the runs whose worker is gone.

mod cancel;
mod control;
pub mod external;
mod recovery;
mod remote;
mod scheduler;
mod worker;

pub use cancel::{cancel, Cancel};
pub use control::{Executor, RunControl};
pub use recovery::{give_back_leases, maintenance_loop, recover_leases};
pub use scheduler::scheduler_loop;
pub use worker::worker_loop;

use crate::run::{RunRecord, RunStatus};
use crate::store::Calibration;
// Up to the crate root, which holds the executor: a worker needs the
// store, the config, the targets and the event bus it was started with,
// and State is the one handle to all of them.
use crate::State;

/// Everything that must happen once a new run is in the queue, whoever
/// submitted it (a client, a schedule): metrics, events, a worker's wake-up.
pub fn on_submitted(state: &State, rec: &RunRecord) {
    metrics::counter!(
        "synqc_runs_submitted_total",
        "preset" => rec.preset.as_str(),
        "hardware_target" => rec.hardware_target.clone(),
        "mode" => rec.mode.as_str()
    )
    .increment(1);
    state.events.publish(rec);
    state.executor.wake();
}

/// Everything that must happen when a run reaches a final state, whoever
/// ended it (worker, cancel, recovery): metrics, events, waiters.
pub fn on_finished(state: &State, rec: &RunRecord) {
    let labels = [
        ("preset", rec.preset.as_str().to_string()),
        ("hardware_target", rec.hardware_target.clone()),
        ("status", rec.status.as_str().to_string()),
    ];
    metrics::counter!("synqc_runs_finished_total", &labels).increment(1);
    if let Some(e) = &rec.error {
        if rec.status == RunStatus::Failed {
            metrics::counter!("synqc_run_failures_total", "error_code" => e.code.as_str()).increment(1);
            state.executor.count_failure(e.code);
        }
    }
    if let (Some(start), Some(end)) = (rec.started_at, rec.finished_at) {
        metrics::histogram!("synqc_run_duration_seconds", "preset" => rec.preset.as_str())
            .record((end - start).max(0.0));
    }
    if Calibration::of(rec).is_some() {
        // The store's latest, not this run's: of two health runs finishing
        // at once, the gauges must end on the one the store kept.
        match state.store.latest_calibration(&rec.hardware_target) {
            Ok(Some(c)) => show_calibration(&c),
            Ok(None) => {}
            Err(e) => {
                log::warn!(
                    "cannot read {}'s latest calibration for its gauges: {e}",
                    rec.hardware_target
                );
                metrics::counter!("synqc_metrics_collection_errors_total").increment(1);
            }
        }
    }
    if let (Some(by), RunStatus::Succeeded) = (&rec.schedule, rec.status) {
        scheduler::succeeded(state, &by.name, rec);
    }
    state.events.publish(rec);
    state.executor.notify_finished(&rec.id);
}

/// A target's calibration gauges (docs/metrics.md), from a stored
/// calibration: its fits are in microseconds, the gauges in seconds.
pub fn show_calibration(c: &Calibration) {
    crate::telemetry::set_calibration(
        &c.hardware_target,
        [
            c.t1_us.value / 1e6,
            c.t2star_us.value / 1e6,
            c.t2echo_us.value / 1e6,
            c.epc.value,
            // Health runs before model version 2 did not measure it.
            c.readout_assignment_fidelity
                .as_ref()
                .map_or(f64::NAN, |f| f.value),
            c.calibrated_at,
        ],
    );
}

#[cfg(test)]
mod tests;
