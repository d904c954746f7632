//! Observability: the Prometheus registry (docs/metrics.md), process figures
//! read from /proc, and the log.
//!
//! The `metrics` crate keeps one recorder per process, so the registry is
//! installed once and its handle shared by every listener and every State
//! built in the same process (tests build several).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use once_cell::sync::OnceCell;

use crate::run::{Mode, RunStatus};
use crate::sim::{Preset, ENGINE_VERSION};
// Up to the crate root: a scrape reads its gauges from the live parts
// (store, executor, lifecycle) at the moment it is answered.
use crate::State;

static HANDLE: OnceCell<PrometheusHandle> = OnceCell::new();

const TARGET_IDS: [&str; 6] = [
    "sim_local",
    "aws_braket",
    "ibm_quantum",
    "azure_quantum",
    "ionq_cloud",
    "rigetti_forest",
];

/// Route templates, the only values the `route` label takes (plus
/// "unmatched" for anything else).
pub const ROUTES: [&str; 27] = [
    "/",
    "/runs",
    "/runs/:id",
    "/runs/:id/cancel",
    "/experiments/run",
    "/experiments/recent",
    "/experiments/:id",
    "/hardware/targets",
    "/schedules",
    "/schedules/:name",
    "/controls/profile",
    "/queue/pause",
    "/queue/resume",
    "/health",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/events",
    "/telemetry/qubits",
    "/calibrations",
    "/hardware/targets/:id/calibration",
    "/openapi.json",
    "/docs",
    "/assets/*path",
    "/admin/backup",
    "unmatched",
    "OPTIONS",
];

/// The process-wide registry, installed on first use.
pub fn registry() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            once_cell::sync::Lazy::force(&process::REGISTRY_INSTALLED_S);
            let http_buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let run_buckets = [
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
            ];
            let flush_buckets = [
                0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
            ];
            let builder = PrometheusBuilder::new();
            let built = builder
                .set_buckets_for_metric(
                    Matcher::Full("synqc_http_request_duration_seconds".into()),
                    &http_buckets,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("synqc_run_queue_wait_seconds".into()),
                        &run_buckets,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("synqc_run_duration_seconds".into()), &run_buckets)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("synqc_executor_request_duration_seconds".into()),
                        &run_buckets,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("synqc_store_flush_duration_seconds".into()),
                        &flush_buckets,
                    )
                });
            let recorder = match built {
                Ok(b) => b.build_recorder(),
                Err(e) => {
                    log::error!("metric buckets rejected ({e}); histograms fall back to summaries");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = recorder.handle();
            if let Err(e) = metrics::set_global_recorder(recorder) {
                log::error!("another metrics recorder is installed: {e}");
            }
            describe_all();
            zero_series();
            handle
        })
        .clone()
}

fn describe_all() {
    // Up to the executor: its series' names and help text live beside
    // the code that records them, and the registry is built here once.
    crate::executor::external::describe();
    describe_gauge!(
        "synqc_build_info",
        "Build of this synqc (always 1): version and simulator engine_version labels."
    );
    describe_gauge!(
        "synqc_store_up",
        "1 when the sled store answers a read and a write, else 0."
    );
    describe_gauge!(
        "synqc_redis_connected",
        "DEPRECATED: same value as synqc_store_up; kept for boards built for the Redis-based service."
    );
    describe_gauge!(
        "synqc_store_size_bytes",
        Unit::Bytes,
        "On-disk size of the sled store."
    );
    describe_histogram!(
        "synqc_store_flush_duration_seconds",
        Unit::Seconds,
        "Durable-commit (group fsync) latency."
    );
    describe_gauge!(
        "synqc_queue_jobs",
        "Runs in the store, all states (was synqc_queue_jobs_total in the old service)."
    );
    for s in RunStatus::ALL {
        let name = format!("synqc_queue_jobs_{}", s.as_str());
        describe_gauge!(name, format!("Runs in state {}.", s.as_str()));
    }
    describe_gauge!(
        "synqc_queue_depth",
        "Runs per state, as one series labelled by status."
    );
    describe_gauge!(
        "synqc_queue_ready_depth",
        "Queued runs due to run now and not held back by a pause."
    );
    describe_gauge!(
        "synqc_queue_future_depth",
        "Queued runs waiting for their earliest start: a retry backoff or the request's not_before."
    );
    describe_gauge!(
        "synqc_queue_paused",
        "1 while a hardware target (target=\"all\": the whole queue) is paused and starts no new run."
    );
    describe_gauge!(
        "synqc_queue_oldest_queued_age_seconds",
        Unit::Seconds,
        "Age of the oldest queued run that could start now (not scheduled for later, not paused); 0 when none."
    );
    describe_gauge!(
        "synqc_queue_max_workers",
        "Configured number of concurrent simulations."
    );
    describe_gauge!("synqc_queue_max_pending", "Configured limit of queued runs.");
    describe_gauge!(
        "synqc_queue_running_with_active_lease",
        "Running runs whose lease is current."
    );
    describe_gauge!(
        "synqc_queue_running_with_expired_lease",
        "Running runs whose lease expired: a worker died holding them."
    );
    describe_counter!(
        "synqc_runs_submitted_total",
        "Runs accepted (202) by preset, target and mode."
    );
    describe_counter!(
        "synqc_runs_finished_total",
        "Runs that reached a final state, by preset, target and status."
    );
    describe_counter!("synqc_run_failures_total", "Failed runs by error code.");
    describe_counter!("synqc_runs_retried_total", "Retries after transient errors.");
    describe_counter!(
        "synqc_runs_recovered_total",
        "Runs taken back from expired leases."
    );
    describe_histogram!(
        "synqc_run_queue_wait_seconds",
        Unit::Seconds,
        "Time from submit to start of execution."
    );
    describe_histogram!(
        "synqc_run_duration_seconds",
        Unit::Seconds,
        "Time from start of execution to final state."
    );
    describe_gauge!(
        "synqc_run_fidelity",
        "Fidelity of the last finished run per preset and target (NaN until one finishes)."
    );
    describe_counter!(
        "synqc_shots_executed_total",
        "Shots executed by the simulator, by target."
    );
    describe_gauge!("synqc_budget_session_keys", "Budget sessions with a live window.");
    describe_counter!(
        "synqc_budget_session_key_churn_total",
        "Budget sessions created plus expired."
    );
    describe_counter!(
        "synqc_budget_rejections_total",
        "Submits refused with 429, by reason."
    );
    describe_counter!(
        "synqc_http_requests_total",
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        "synqc_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route template."
    );
    describe_counter!(
        "synqc_metrics_collection_errors_total",
        "Failures while refreshing gauges or during housekeeping."
    );
    describe_gauge!(
        "synqc_target_up",
        "Per hardware target: 1 usable, 0 disabled, 2 not configured."
    );
    // Per schedule: the series appear when a schedule is created (or at
    // start-up for the stored ones), not before.
    describe_counter!(
        "synqc_schedule_fires_total",
        "Periods fired per schedule, by outcome: submitted (a run was queued) or refused."
    );
    describe_gauge!(
        "synqc_schedule_last_success_timestamp_seconds",
        "Per schedule: when one of its runs last succeeded (or when it was armed, if none has since)."
    );
    describe_gauge!(
        "synqc_schedule_period_seconds",
        "Per schedule: its period (for a cron expression, the gap between its next two times)."
    );
    describe_gauge!(
        "synqc_schedule_enabled",
        "Per schedule: 1 enabled, 0 disabled or deleted."
    );
    describe_calibration();
}

/// The calibration gauges: a target's latest health run's fits (NaN until
/// its first one), each in the unit its name ends with.
const CALIBRATION_GAUGES: [(&str, &str); 6] = [
    (
        "synqc_calibration_t1_seconds",
        "T1 of the target's latest succeeded health run, in seconds (NaN until one succeeds).",
    ),
    (
        "synqc_calibration_t2star_seconds",
        "Ramsey T2* of the target's latest succeeded health run, in seconds (NaN until one succeeds).",
    ),
    (
        "synqc_calibration_t2echo_seconds",
        "Hahn-echo T2 of the target's latest succeeded health run, in seconds (NaN until one succeeds).",
    ),
    (
        "synqc_calibration_epc",
        "Error per Clifford from randomized benchmarking in the target's latest succeeded health run (NaN until one succeeds).",
    ),
    (
        "synqc_calibration_readout_assignment_fidelity",
        "Readout assignment fidelity 1 - (p(1|0) + p(0|1))/2 measured by the target's latest succeeded health run (NaN until one reports it).",
    ),
    (
        "synqc_calibration_timestamp_seconds",
        "When the target's latest succeeded health run finished, Unix seconds (NaN until one succeeds).",
    ),
];

fn describe_calibration() {
    for (name, help) in CALIBRATION_GAUGES {
        describe_gauge!(name, help);
    }
}

/// Sets a target's calibration gauges: T1, T2* and T2echo in seconds,
/// EPC, readout assignment fidelity, and the time of the run they come
/// from, in that order.
pub fn set_calibration(target: &str, values: [f64; 6]) {
    for ((name, _), v) in CALIBRATION_GAUGES.iter().zip(values) {
        metrics::gauge!(*name, "target" => target.to_string()).set(v);
    }
}

/// Creates every labelled series with its zero value, so panels and alerts
/// have data from the first scrape.
fn zero_series() {
    metrics::gauge!("synqc_build_info", "version" => env!("CARGO_PKG_VERSION"), "engine_version" => ENGINE_VERSION).set(1.0);
    for p in Preset::ALL {
        for t in TARGET_IDS {
            for m in [Mode::Explore, Mode::Calibrate, Mode::Prod] {
                metrics::counter!("synqc_runs_submitted_total", "preset" => p.as_str(), "hardware_target" => t, "mode" => m.as_str()).absolute(0);
            }
            for s in [RunStatus::Succeeded, RunStatus::Failed, RunStatus::Cancelled] {
                metrics::counter!("synqc_runs_finished_total", "preset" => p.as_str(), "hardware_target" => t, "status" => s.as_str()).absolute(0);
            }
            metrics::gauge!("synqc_run_fidelity", "preset" => p.as_str(), "hardware_target" => t)
                .set(f64::NAN);
        }
        let _ = metrics::histogram!("synqc_run_queue_wait_seconds", "preset" => p.as_str());
        let _ = metrics::histogram!("synqc_run_duration_seconds", "preset" => p.as_str());
    }
    for t in TARGET_IDS {
        metrics::counter!("synqc_shots_executed_total", "hardware_target" => t).absolute(0);
        for (name, _) in CALIBRATION_GAUGES {
            metrics::gauge!(name, "target" => t).set(f64::NAN);
        }
    }
    // Every code, so failure series exist from start-up.
    for code in crate::run::ErrorCode::ALL.map(crate::run::ErrorCode::as_str) {
        metrics::counter!("synqc_run_failures_total", "error_code" => code).absolute(0);
    }
    for reason in ["budget_exhausted", "rate_limited"] {
        metrics::counter!("synqc_budget_rejections_total", "reason" => reason).absolute(0);
    }
    metrics::counter!("synqc_budget_session_key_churn_total", "backend" => "sled").absolute(0);
    for name in [
        "synqc_runs_retried_total",
        "synqc_runs_recovered_total",
        "synqc_metrics_collection_errors_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    for route in ROUTES {
        let _ =
            metrics::histogram!("synqc_http_request_duration_seconds", "method" => "GET", "route" => route);
    }
    metrics::counter!("synqc_http_requests_total", "method" => "GET", "route" => "/health", "status" => "200").absolute(0);
    let _ = metrics::histogram!("synqc_store_flush_duration_seconds");
}

/// The whole exposition: the registry, then the process_* series.
pub fn render(state: &State) -> String {
    refresh(state);
    let mut text = state.metrics.render();
    if let Some(p) = Process::read() {
        text.push_str(&p.exposition());
    } else {
        metrics::counter!("synqc_metrics_collection_errors_total").increment(1);
    }
    text
}

/// Sets the gauges from the in-memory counts: O(1) in the number of runs.
fn refresh(state: &State) {
    let store = &state.store;
    let up = if store.probe().is_ok() { 1.0 } else { 0.0 };
    metrics::gauge!("synqc_store_up", "backend" => "sled").set(up);
    metrics::gauge!("synqc_redis_connected", "backend" => "sled").set(up);
    match store.size_on_disk() {
        Ok(size) => metrics::gauge!("synqc_store_size_bytes").set(size as f64),
        Err(_) => metrics::counter!("synqc_metrics_collection_errors_total").increment(1),
    }
    let counts = &store.counts;
    metrics::gauge!("synqc_queue_jobs").set(counts.total() as f64);
    for s in RunStatus::ALL {
        let n = counts.get(s) as f64;
        metrics::gauge!(format!("synqc_queue_jobs_{}", s.as_str())).set(n);
        metrics::gauge!("synqc_queue_depth", "status" => s.as_str()).set(n);
    }
    let now = crate::clock::now_ms();
    // Runs held back by a pause are not ready: the worker alerts must not
    // fire for a pause (SynqcQueuePaused is about that).
    let (_, future) = store.ready_and_future(now);
    metrics::gauge!("synqc_queue_ready_depth").set(store.startable(now) as f64);
    metrics::gauge!("synqc_queue_future_depth").set(future as f64);
    let oldest = store.oldest_queued_ms(now);
    metrics::gauge!("synqc_queue_oldest_queued_age_seconds").set(
        oldest
            .map(|t| now.saturating_sub(t) as f64 / 1000.0)
            .unwrap_or(0.0),
    );
    metrics::gauge!("synqc_queue_max_workers").set(state.config.workers as f64);
    metrics::gauge!("synqc_queue_max_pending").set(state.config.max_pending as f64);
    match store.leases() {
        Ok(leases) => {
            let expired = leases.iter().filter(|(_, l)| l.expires_ms <= now).count();
            metrics::gauge!("synqc_queue_running_with_active_lease").set((leases.len() - expired) as f64);
            metrics::gauge!("synqc_queue_running_with_expired_lease").set(expired as f64);
        }
        Err(_) => metrics::counter!("synqc_metrics_collection_errors_total").increment(1),
    }
    metrics::gauge!("synqc_budget_session_keys", "backend" => "sled")
        .set(counts.sessions.load(std::sync::atomic::Ordering::Relaxed) as f64);
    for t in state.targets.all() {
        metrics::gauge!("synqc_target_up", "hardware_target" => t.id).set(if state.availability(t).0 {
            1.0
        } else {
            0.0
        });
    }
    // Every target and the whole queue ("all", which no target is called).
    let pauses = store.pauses();
    let paused = |key: &str| if pauses.contains_key(key) { 1.0 } else { 0.0 };
    metrics::gauge!("synqc_queue_paused", "target" => "all").set(paused(crate::store::WHOLE_QUEUE));
    for t in state.targets.all() {
        metrics::gauge!("synqc_queue_paused", "target" => t.id).set(paused(t.id));
    }
}

/// A minimal logger for the `log` facade (tide and sled log through it):
/// one line per record on stderr, as text or JSON.
struct Logger {
    json: bool,
}

impl log::Log for Logger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let line = if self.json {
            serde_json::json!({
                "ts": ts, "level": record.level().as_str().to_ascii_lowercase(),
                "target": record.target(), "msg": record.args().to_string(),
            })
            .to_string()
        } else {
            format!(
                "{} {:5} {}: {}",
                crate::clock::rfc3339(ts),
                record.level(),
                record.target(),
                record.args()
            )
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn flush(&self) {}
}

pub fn init_logging(level: &str, format: &str) {
    let filter = level.parse().unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Logger {
        json: format == "json",
    }))
    .is_ok()
    {
        log::set_max_level(filter);
    }
}

mod process;

pub use process::Process;

#[cfg(test)]
mod tests;
