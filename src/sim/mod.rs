//! The built-in noisy quantum simulator and the KPI estimators
//! (docs/physics.md). Everything here is pure computation: no I/O, no clock
//! except where the latency preset measures the appliance's own loop
//! through the [`LoopProbe`] the caller hands in.
//!
//! Contract with the rest of the appliance:
//! - [`min_shots`] is asked at submit time, so a budget too small for a
//!   protocol is refused up front (422 BUDGET_GUARDRAIL).
//! - [`run`] executes one request; it is CPU-bound and is called from a
//!   blocking thread. It calls `cancelled()` between circuits and stops
//!   with [`SimError::Cancelled`] when that says so.
//! - The same [`SimRequest`] (seed included) gives the same [`SimOutcome`],
//!   byte for byte, except the measured loop latencies of the latency preset.
//!
//! # KPIs, in plain words (definition ids in brackets)
//! - `fidelity` [fidelity_dist_v1]: how close the measured outcome
//!   histogram is to the ideal one: (sum_x sqrt(p_hat(x) q(x)))^2, with
//!   p_hat = counts / shots and q the noise-free, calibrated (drive_bias 1)
//!   distribution of the same circuit. 1 = indistinguishable.
//!   health reports 1 - EPC instead [fidelity_rb_v1]: one minus the error
//!   per Clifford gate from randomized benchmarking, EPC = (1 - p)/2 where p
//!   is the fitted decay per Clifford of A p^m + B.
//! - `state_fidelity` [fidelity_state_v1], simulator only: <psi|rho|psi>,
//!   the overlap of the noisy state just before readout with the ideal
//!   state. Real hardware cannot report it (SIM_ONLY_STATE_FIDELITY).
//! - `backaction` [backaction_trace_v1], simulator only: how much the
//!   monitoring probe disturbs the state it meets, as the trace distance
//!   (1/2)||rho - sum_k M_k rho M_k^dagger||_1 (0 = untouched, 0.5 = a full
//!   projective measurement of an equal superposition). 0 without a probe.
//! - `latency_us` [latency_model_v1]: modeled plant time of one shot: the
//!   critical path of gate, idle, probe and readout durations of the target
//!   (dpd_demo: the probe-and-correct loop scaled by 1 - min(0.04 gain, 0.25);
//!   health: the shot-weighted mean over its circuits). The latency preset
//!   instead measures the appliance's own queue-execute-store round trip
//!   [latency_loop_v1]: p50 as `latency_us`, p95 as `latency_p95_us`.
//! - health: `t1_us` [health_t1_fit_v2] from A exp(-t/T1) + B with B held
//!   at the measured p(1|prep 0); `t2echo_us` [health_t2echo_fit_v2] and
//!   `t2star_us` [health_t2star_fit_v2] from one joint fit of the echo and
//!   the Ramsey fringe (T2*: the 1/e time of its envelope); `epc`; and
//!   `readout_assignment_fidelity` [readout_assignment_v1].
//! - backend_compare: `fidelity_compare` (the second target) and
//!   `fidelity_difference` (first minus second, paired bootstrap).
//! - grover_demo: `success_probability` [grover_success_v1], the share of
//!   shots that read the marked string.
//!
//! Every sampled KPI carries `stderr`, the standard deviation of a
//! 200-resample multinomial bootstrap drawn from the run's own seeded
//! generator, and `ci95`: the 95% score (Wilson) interval for `fidelity`
//! and `success_probability`, the bootstrap's 2.5/97.5 percentiles for the
//! rest (docs/physics.md "Uncertainty"); both shrink like 1/sqrt(shots).
//! Model and simulator-only KPIs have no sampling error: `ci95` is null.

pub mod bench;
pub mod circuit;
pub mod engine;
pub mod estimators;
pub mod noise;
pub mod presets;
mod registry;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::controls::ControlProfile;
pub use noise::NoiseProfile;
// Up, on purpose: the registry stands above this file, since its rows call
// the presets, which take the request and outcome types declared here; the
// re-export keeps `sim::Preset` the one name the rest of the crate uses.
pub use registry::Preset;

/// Names the physical model. Bump whenever any output for a given request
/// and seed would change.
pub const ENGINE_VERSION: &str = "synqc-dm-2";

/// Version of the KPI definitions table in docs/physics.md.
pub const KPI_DEFINITIONS_VERSION: &str = "kpi-defs-2";

/// How backend_compare splits its shots over its two targets: the first
/// gets the odd one.
pub fn compare_split(shots: u64) -> (u64, u64) {
    let first = shots.div_ceil(2);
    (first, shots - first)
}

/// The shots a run executes on each target it runs on: backend_compare
/// splits them over its two targets ([`compare_split`]); every other
/// preset runs on one.
pub fn shots_per_target<'a>(
    preset: Preset,
    target: &'a str,
    compare_with: Option<&'a str>,
    shots: u64,
) -> Vec<(&'a str, u64)> {
    match (preset, compare_with) {
        (Preset::BackendCompare, Some(second)) => {
            let (first, rest) = compare_split(shots);
            vec![(target, first), (second, rest)]
        }
        _ => vec![(target, shots)],
    }
}

/// One target as the simulator sees it: its id and the noise in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Plant {
    pub target: String,
    /// "sim" for sim_local, else the provider's hardware kind.
    pub kind: String,
    pub noise: NoiseProfile,
}

/// Everything that determines a run's physics.
#[derive(Clone, Debug)]
pub struct SimRequest {
    pub preset: Preset,
    pub plant: Plant,
    /// backend_compare only: the second target.
    pub compare_with: Option<Plant>,
    /// Shots to execute, already clamped by the caller.
    pub shots: u64,
    pub seed: u64,
    pub controls: ControlProfile,
    /// grover_demo only: the marked 3-bit string (default "101").
    pub marked: Option<String>,
    /// circuit only: the client's program, parsed and lowered.
    pub program: Option<circuit::Circuit>,
}

/// The appliance's own queue-execute-store loop, measured by the latency
/// preset. One call = one tiny probe circuit's round trip, in microseconds.
pub trait LoopProbe {
    fn round_trip_us(&mut self) -> Result<f64, SimError>;
}

/// Why a run stopped without a result.
#[derive(Clone, Debug, PartialEq)]
pub enum SimError {
    /// `cancelled()` said so between circuits.
    Cancelled,
    /// The request cannot be executed as given (found at run time).
    Invalid(String),
    /// The loop probe of the latency preset failed (store or queue error).
    Loop(String),
}

/// Headline KPIs (docs/api.md `kpis`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kpis {
    pub fidelity: f64,
    pub latency_us: f64,
    pub backaction: f64,
    /// Outcome bit strings (qubit 0 leftmost) to counts.
    pub raw_counts: BTreeMap<String, u64>,
    pub expected_distribution: BTreeMap<String, f64>,
    pub shots_used: u64,
    pub shot_budget: u64,
    /// ok | warn | fail (docs/physics.md thresholds).
    pub status: String,
}

/// One KPI with its definition and uncertainty (docs/api.md `kpi_details`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KpiDetail {
    pub name: String,
    pub value: f64,
    pub definition_id: String,
    /// Where the definition is written down, e.g. "docs/physics.md#kpis".
    pub definition_ref: String,
    /// "estimate" (sampled), "sim_only" (needs the simulator's state),
    /// "model" (computed from the plant model) or "measured" (wall clock).
    pub kind: String,
    pub units: String,
    /// [low, high]; null when the KPI has no sampling uncertainty.
    pub ci95: Option<[f64; 2]>,
    /// Same as ci95 (older clients read this spelling).
    pub ci_95: Option<[f64; 2]>,
    pub stderr: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shots {
    pub requested: u64,
    pub executed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    pub id: String,
    pub label: String,
    pub description: String,
    pub percent_complete: f64,
    pub dwell_ms: f64,
}

/// The physics part of a result (RunExperimentResponse minus the run's
/// identity, which the caller adds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimOutcome {
    pub engine_version: String,
    pub qubits_used: u32,
    pub kpis: Kpis,
    pub shots: Shots,
    /// {model, basis, povm, descriptor}
    pub measurement: serde_json::Value,
    /// {model, params, descriptor}
    pub noise: serde_json::Value,
    pub assumptions: Vec<String>,
    /// {version, plant{kind,target,backend_id}, state{model,n_qubits,hilbert_dim},
    ///  measurement{..}, sampling{model, shots_requested, shots_executed},
    ///  noise{..}, assumptions, kpi_definitions_version}
    pub physics_contract: serde_json::Value,
    pub kpi_details: Vec<KpiDetail>,
    pub artifacts: serde_json::Value,
    pub warnings: Vec<String>,
    pub workflow_trace: Vec<TraceStep>,
}

/// Smallest shot budget a preset's protocol can run with: see
/// [`Preset::min_shots`].
pub fn min_shots(preset: Preset) -> u64 {
    preset.min_shots()
}

/// A grover_demo marked state: exactly three characters, each 0 or 1.
pub fn valid_marked(s: &str) -> bool {
    s.len() == 3 && s.chars().all(|c| c == '0' || c == '1')
}

/// Execute one request. CPU-bound; call from a blocking thread. `probe` is
/// required by the latency preset (and ignored by the others); `cancelled`
/// is polled between circuits.
pub fn run(
    req: &SimRequest,
    probe: Option<&mut dyn LoopProbe>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    presets::validate(req)?;
    req.preset.execute(req, probe, cancelled)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stats_tests;

#[cfg(test)]
mod usage_tests {
    use super::*;

    /// The usage counters take qubits and shots from these two functions;
    /// they must agree with what the presets really execute.
    #[test]
    fn qubits_and_target_shares_match_the_outcomes() {
        let plant = |t: &str| Plant {
            target: t.into(),
            kind: "sim".into(),
            noise: NoiseProfile::builtin(t).expect("builtin"),
        };
        for preset in Preset::ALL
            .into_iter()
            .filter(|p| !matches!(p, Preset::Latency | Preset::Circuit))
        {
            let req = SimRequest {
                preset,
                plant: plant("sim_local"),
                compare_with: Some(plant("ibm_quantum")),
                shots: 1025,
                seed: 3,
                controls: ControlProfile::default(),
                marked: None,
                program: None,
            };
            let out = run(&req, None, &|| false).expect("runs");
            assert_eq!(out.qubits_used, preset.qubits(), "{preset:?}");
            let shares = shots_per_target(preset, "sim_local", Some("ibm_quantum"), 1025);
            assert_eq!(shares.iter().map(|s| s.1).sum::<u64>(), out.shots.executed);
            if preset == Preset::BackendCompare {
                for (target, n) in shares {
                    assert_eq!(out.artifacts["per_target"][target]["shots"], n, "{target}");
                }
            } else {
                assert_eq!(shares, [("sim_local", 1025)]);
            }
        }
        // The latency preset's circuit is one X on qubit 0.
        assert_eq!(Preset::Latency.qubits(), 1);
    }
}
