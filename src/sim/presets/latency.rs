//! latency: the appliance's own queue-execute-store round trip, measured
//! through the LoopProbe the caller hands in, between probe circuits.

use serde_json::json;

use super::{
    assemble, backaction_kpi, check, count_map, dist_map, fidelity_with_spread, judge, kpi,
    projective_measurement, reference_distribution, simulate, state_fidelity_kpi, trace, Parts,
};
use crate::sim::engine::{Model, Op};
use crate::sim::estimators::{
    bootstrap_samples, fidelity_of, median, multinomial, quantile, rng_for, spread,
};
use crate::sim::{LoopProbe, SimError, SimOutcome, SimRequest};

/// Shots each latency probe circuit carries, and the most probes one run
/// makes (each is a full trip through the appliance's queue and store).
pub const LATENCY_SHOTS_PER_PROBE: u64 = 64;
pub const LATENCY_MAX_PROBES: u64 = 32;
pub const LATENCY_MIN_PROBES: u64 = 8;

/// Number of loop probes a latency run makes for a budget.
pub fn latency_probes(shots: u64) -> u64 {
    (shots / LATENCY_SHOTS_PER_PROBE).clamp(LATENCY_MIN_PROBES, LATENCY_MAX_PROBES)
}

/// Why the latency preset does not run on a target bound to an executor.
/// Its KPI is the appliance's own queue-execute-store round trip, timed one
/// probe circuit at a time between circuits; an executor gets all of a run's
/// circuits in one request, so no per-probe round trip exists to time, and
/// timing the executor instead would report the provider's latency under
/// this KPI's definition.
pub(in crate::sim) fn executor_refusal() -> SimError {
    SimError::Invalid(
        "latency measures synqc's own queue-execute-store loop, which does not pass through an executor; \
         submit it to an unbound target such as sim_local, and read the executor's own latency from \
         synqc_executor_request_duration_seconds"
            .into(),
    )
}

pub(in crate::sim) fn latency(
    req: &SimRequest,
    probe: Option<&mut dyn LoopProbe>,
    cancelled: &dyn Fn() -> bool,
) -> Result<SimOutcome, SimError> {
    let Some(probe) = probe else {
        return Err(SimError::Invalid(
            "the latency preset needs the appliance loop probe".into(),
        ));
    };
    let k = latency_probes(req.shots);
    let model = Model::new(&req.plant.noise, &req.controls);
    let ops = [Op::X(0)];
    let sim = simulate(1, &ops, &model);
    let mut rng = rng_for(req.seed);
    let mut samples = Vec::with_capacity(k as usize);
    let mut counts = vec![0u64; 2];
    for i in 0..k {
        check(cancelled)?;
        samples.push(probe.round_trip_us()?);
        // Shots are spread over the K probe circuits, remainder to the first.
        let n = req.shots / k + u64::from(i < req.shots % k);
        for (t, c) in counts.iter_mut().zip(multinomial(&mut rng, n, &sim.dist)) {
            *t += c;
        }
    }
    let (fid, fs) = fidelity_with_spread(&mut rng, &counts, &sim.ideal);
    let p50 = median(&mut samples.clone());
    let p95 = quantile(&mut samples.clone(), 95.0);
    let s50 = spread(bootstrap_samples(&mut rng, &samples, median));
    let s95 = spread(bootstrap_samples(&mut rng, &samples, |x| quantile(x, 95.0)));
    let model_us = sim.shot_ns / 1e3;
    let total_ms: f64 = samples.iter().sum::<f64>() / 1e3;
    // The probe circuit is judged like every other circuit: its fidelity
    // against what the target's profile predicts (docs/physics.md "Status").
    let predicted = reference_distribution(1, &ops, &req.plant, &req.controls, Some(&sim.dist));
    let verdict = judge(
        "fidelity",
        fid,
        fs.map(|s| s.stderr),
        fidelity_of(&predicted, &sim.ideal),
    );
    let mut artifacts = json!({
        "probes": k,
        "probe_circuit": ["x q0", "measure q0"],
        "shots_per_probe": req.shots / k,
        "loop_samples_us": samples,
        "p50_us": p50,
        "p95_us": p95,
        "k_rule": "K = clamp(shots / 64, 8, 32): one 64-shot probe circuit per round trip",
    });
    let mut warnings = vec![];
    let status = verdict.record(&mut artifacts, &mut warnings);
    Ok(assemble(
        req,
        Parts {
            qubits: 1,
            fidelity: fid,
            latency_us: p50,
            backaction: 0.0,
            status,
            raw_counts: count_map(&counts, 1),
            expected: dist_map(&sim.ideal, 1),
            details: vec![
                kpi("fidelity", fid, "fidelity_dist_v1", "estimate", "ratio", fs),
                kpi("latency_us", p50, "latency_loop_v1", "measured", "us", s50),
                kpi("latency_p95_us", p95, "latency_loop_v1", "measured", "us", s95),
                kpi(
                    "latency_model_us",
                    model_us,
                    "latency_model_v1",
                    "model",
                    "us",
                    None,
                ),
                state_fidelity_kpi(sim.state_fidelity),
                backaction_kpi(0.0),
            ],
            measurement: projective_measurement(1),
            sim_only: vec!["SIM_ONLY_STATE_FIDELITY"],
            artifacts,
            warnings,
            trace: trace(&[
                (
                    "probe",
                    "Loop probes",
                    "tiny circuits through the queue-execute-store loop",
                    total_ms,
                ),
                (
                    "estimate",
                    "Estimate",
                    "p50/p95 with a bootstrap over the round trips",
                    0.0,
                ),
            ]),
            executor_plant: None,
        },
    ))
}
