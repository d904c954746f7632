//! synqc: the lab appliance that accepts quantum experiment runs over HTTP,
//! keeps them in a durable sled queue, executes them on a built-in noisy
//! simulator, enforces shot budgets and exports Prometheus metrics.
//!
//! `main.rs` parses the command line; this crate holds the appliance:
//! [`State`] is built once from a [`config::Config`], [`api::app`] turns it
//! into the HTTP application, [`server::serve`] runs it.

/// `println!` for a command's output: a reader that went away
/// (`synqc status ID | head`) ends the command quietly, where `println!`
/// would panic (and abort, in the release profile).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::emit_line(format_args!($($arg)*)) };
}

/// Writes one line of a command's output (see [`say!`]).
pub fn emit_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("synqc: cannot write the output: {e}");
        std::process::exit(1);
    }
}

pub mod api;
pub mod assets;
pub mod budget;
pub mod client;
pub mod clock;
pub mod config;
pub mod controls;
pub mod error;
pub mod events;
pub mod executor;
pub mod run;
pub mod schedule;
pub mod server;
pub mod sim;
pub mod store;
pub mod targets;
pub mod telemetry;
#[cfg(test)]
mod testutil;
pub mod validation;

use std::ops::Deref;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};

use crate::budget::Budget;
use crate::config::Config;
use crate::events::Events;
// Up to the executor, whose workers run through State: State holds its
// registry of claimed runs so that a cancel from the API and the worker
// holding the run meet in one place.
use crate::executor::Executor;
use crate::store::{Store, StoreError};
use crate::targets::{HardwareTarget, Targets};

/// Where the server is in its life: /health/ready answers 200 only when
/// Ready, and new runs are refused while Draining.
#[derive(Default)]
pub struct Lifecycle(AtomicU8);

impl Lifecycle {
    const STARTING: u8 = 0;
    const READY: u8 = 1;
    const DRAINING: u8 = 2;

    pub fn set_ready(&self) {
        let _ = self
            .0
            .compare_exchange(Self::STARTING, Self::READY, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn set_draining(&self) {
        self.0.store(Self::DRAINING, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst) == Self::READY
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst) == Self::DRAINING
    }
}

/// Everything a request or a worker needs, built once.
pub struct AppState {
    pub config: Config,
    pub store: Arc<Store>,
    pub targets: Targets,
    pub executor: Executor,
    /// The child processes of targets bound to an executor.
    pub external: executor::external::Bindings,
    pub events: Events,
    pub lifecycle: Lifecycle,
    pub metrics: PrometheusHandle,
    /// The HTTP layer's per-session limiter, an import back up from the
    /// crate root: it is carried here so that every listener and every
    /// connection share one count, as they share the store.
    pub rate_limiter: api::RateLimiter,
    /// SHA-256 digests of the accepted API keys; the keys themselves are
    /// not kept.
    pub key_digests: Vec<[u8; 32]>,
    pub started: Instant,
}

impl AppState {
    /// Whether `t` can run now, and why: a bound target follows its
    /// executor's health, every other target its configuration.
    pub fn availability(&self, t: &HardwareTarget) -> (bool, String) {
        let Some(handle) = self.external.get(t.id) else {
            return (t.available, t.availability_reason.clone());
        };
        let status = handle.status();
        match (status.up, status.reason, status.backend) {
            (true, _, Some(b)) => (true, format!("Runs on its executor, {} {}.", b.name, b.version)),
            (true, _, None) => (true, "Runs on its executor.".to_string()),
            (false, Some(why), _) => (false, why),
            (false, None, _) => (false, "Its executor is down.".to_string()),
        }
    }

    /// What admission checks a run request against, from the config.
    pub fn admission_limits(&self) -> run::admission::Limits {
        let cfg = &self.config;
        run::admission::Limits {
            default_shot_budget: cfg.default_shot_budget,
            max_shots_per_experiment: cfg.max_shots_per_experiment,
            circuit: sim::circuit::CircuitLimits {
                max_qubits: cfg.max_circuit_qubits,
                max_ops: cfg.max_circuit_ops,
            },
        }
    }

    /// Whether the queue and the disk have room for one more run: the
    /// checks of a submit that only the live store can answer.
    pub fn room_for_a_run(&self) -> Result<(), error::ApiError> {
        let cfg = &self.config;
        if self.store.counts.get(run::RunStatus::Queued) >= cfg.max_pending {
            return Err(error::ApiError::Backpressure {
                message: format!(
                    "The queue is full: it holds max_pending ({}) queued runs; nothing was submitted.",
                    cfg.max_pending
                ),
                retry_after_s: 5,
            });
        }
        // Refuse before the disk is full, not at it: sled 0.34 can hang in a
        // flush after a write fails for lack of space.
        if let Some(free) = self.store.free_bytes().filter(|f| *f < cfg.min_free_disk_bytes) {
            return Err(error::ApiError::StoreUnavailable(format!(
                "disk space low: {free} bytes free on the data directory's file system, min_free_disk_bytes is {}",
                cfg.min_free_disk_bytes
            )));
        }
        Ok(())
    }

    /// When this process started, in milliseconds since the Unix epoch:
    /// a schedule's period that began before it was missed while synqc
    /// was down.
    pub fn up_since_ms(&self) -> u64 {
        let up = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        clock::now_ms().saturating_sub(up)
    }

    /// A target as /hardware/targets and /health show it: its registry
    /// entry with the live availability, and its executor's status when
    /// it is bound.
    pub fn target_view(&self, t: &HardwareTarget) -> serde_json::Value {
        let (available, reason) = self.availability(t);
        let mut view = serde_json::to_value(t).unwrap_or_default();
        view["available"] = available.into();
        view["availability_reason"] = reason.into();
        view["paused"] = serde_json::to_value(self.store.pauses().get(t.id)).unwrap_or_default();
        if let Some((profile, version)) = self.targets.noise_profile(t.id) {
            view["noise_profile"] = serde_json::to_value(profile).unwrap_or_default();
            view["noise_profile_version"] = version.into();
        }
        if let Some(handle) = self.external.get(t.id) {
            view["executor"] = serde_json::to_value(handle.status()).unwrap_or_default();
        }
        view
    }
}

/// The shared handle to [`AppState`] that tide hands to every endpoint.
#[derive(Clone)]
pub struct State(Arc<AppState>);

impl Deref for State {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// Why the appliance could not start; each reads as a sentence that says
/// what to do.
#[derive(Debug)]
pub enum StartError {
    Config(String),
    /// A listener's address could not be bound.
    Bind(std::net::SocketAddr, std::io::Error),
    Store(StoreError),
    /// The process could not set itself up (signal handlers, threads).
    Runtime(String),
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind(_, e) => Some(e),
            StartError::Store(e) => Some(e),
            StartError::Config(_) | StartError::Runtime(_) => None,
        }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "configuration: {e}"),
            StartError::Bind(addr, e) if e.kind() == std::io::ErrorKind::AddrInUse => write!(
                f,
                "cannot listen on {addr}: the address is already in use (another synqc, or another \
                 service, holds it); stop that process or choose another address with --listen"
            ),
            StartError::Bind(addr, e) if e.kind() == std::io::ErrorKind::PermissionDenied => write!(
                f,
                "cannot listen on {addr}: permission denied (ports below 1024 need privileges); \
                 choose a port above 1024 with --listen"
            ),
            StartError::Bind(addr, e) => write!(
                f,
                "cannot listen on {addr}: {e}; check that the address belongs to this machine"
            ),
            StartError::Store(e) => write!(f, "store: {e}"),
            StartError::Runtime(e) => write!(f, "cannot start: {e}"),
        }
    }
}

impl State {
    /// Opens the store and takes back every run a previous process left
    /// running. The state starts in Starting; the server marks it Ready.
    pub fn open(config: Config) -> Result<State, StartError> {
        let keys = config.api_keys().map_err(StartError::Config)?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StartError::Config(format!("data_dir {}: {e}", config.data_dir.display())))?;
        let budget = Budget {
            max_per_session: config.max_shots_per_session,
            ttl_ms: config.session_budget_ttl_seconds.as_millis() as u64,
        };
        let store = Store::open_with_cache(&config.data_dir, budget, config.store_cache_bytes)
            .map_err(StartError::Store)?;
        let state = State(Arc::new(AppState {
            targets: Targets::new(&config),
            executor: Executor::new(config.workers),
            external: Default::default(),
            events: Events::default(),
            lifecycle: Lifecycle::default(),
            metrics: telemetry::registry(),
            rate_limiter: api::RateLimiter::new(config.rate_limit_per_minute),
            key_digests: keys.iter().map(|k| Sha256::digest(k.as_bytes()).into()).collect(),
            started: Instant::now(),
            store,
            config,
        }));
        // The calibration gauges from each target's latest entry: one key
        // per target, never the run history.
        for c in state.store.latest_calibrations().map_err(StartError::Store)? {
            executor::show_calibration(&c);
        }
        // Noise profiles written back from calibrations, last version each.
        for p in state.store.current_profiles().map_err(StartError::Store)? {
            state.targets.set_calibrated(&p.hardware_target, p.calibrated());
        }
        let recovered = executor::recover_leases(&state, true).map_err(StartError::Store)?;
        if recovered > 0 {
            log::warn!("recovered {recovered} runs left running by a previous process");
        }
        Ok(state)
    }

    /// Starts the bound targets' executors, the workers and the
    /// maintenance loop on `ex`.
    pub fn spawn_workers(&self, ex: &smol::Executor<'static>) {
        if let Err(e) = self.external.start(&self.config.executors) {
            log::error!("cannot start the executor supervisors ({e}); their targets stay unavailable");
        }
        for _ in 0..self.config.workers {
            ex.spawn(executor::worker_loop(self.clone())).detach();
        }
        ex.spawn(executor::maintenance_loop(self.clone())).detach();
        ex.spawn(executor::scheduler_loop(self.clone())).detach();
    }
}
