//! The health preset: qubit-0 characterization (docs/physics.md "Presets").
//! T1 (x, delay, measure), Ramsey T2* (h, delay, h) and Hahn echo (h, d/2,
//! x, d/2, h) over log-spaced delays up to 3x the nominal time, plus
//! single-qubit Clifford randomized benchmarking. The budget is split evenly
//! over all circuits; parameters come from least-squares fits and their
//! uncertainty from a bootstrap over every circuit's counts.
//! Longer than the other presets: it is four protocols (T1, Ramsey, echo,
//! randomized benchmarking) and their reduced variants, sharing one shot
//! split, one set of fits and one bootstrap.

use rand::RngExt;
use serde_json::{json, Value};

use super::observed::{CircuitJob, Observed};
use super::{assemble, backaction_kpi, count_map, dist_map, kpi, latency_model_kpi, model_of, trace, Parts};
use crate::sim::engine::{hadamard, phase, u_dagger, u_mul, Model, Op, C, U2};
use crate::sim::estimators::{
    binomial, fit_exp_decay, fit_rb, rng_for, spread, ExpFit, RbFit, SimRng, BOOTSTRAP_RESAMPLES,
};
use crate::sim::{SimError, SimOutcome, SimRequest};

/// Shortest delay as a fraction of the nominal time; the longest is 3x.
const DELAY_MIN_FRACTION: f64 = 0.02;
const DELAY_MAX_FRACTION: f64 = 3.0;
/// Fewer shots than this per circuit leaves single points too coarse
/// (1/12 resolution) for the fits to mean anything.
pub const MIN_SHOTS_PER_CIRCUIT: u64 = 12;

/// The circuits one health run executes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Protocol {
    /// Delay points per decay curve (T1, Ramsey, echo).
    pub delay_points: usize,
    /// RB sequence lengths, in Cliffords.
    pub rb_lengths: &'static [u32],
    /// Random sequences per length; each runs twice (inverted to |0> and to |1>).
    pub rb_sequences: usize,
}

impl Protocol {
    pub fn circuits(&self) -> u64 {
        (3 * self.delay_points + self.rb_lengths.len() * self.rb_sequences * 2) as u64
    }

    /// The budget that gives every circuit MIN_SHOTS_PER_CIRCUIT.
    pub fn min_shots(&self) -> u64 {
        self.circuits() * MIN_SHOTS_PER_CIRCUIT
    }
}

pub const FULL: Protocol = Protocol {
    delay_points: 9,
    rb_lengths: &[1, 2, 4, 8, 16, 32, 64, 128],
    rb_sequences: 3,
};

/// The protocols for budgets too small to spread MIN_SHOTS_PER_CIRCUIT
/// over the full one, largest first. Each keeps the full span of every
/// curve (delays from 0.02x to 3x the nominal time, RB from 1 to 128
/// Cliffords), so each fit still sees its whole decay; what goes is the
/// density of points and the number of random sequences averaged per
/// length. Fewer points carry fewer shots in all, so the bootstrap
/// intervals widen by themselves. The smallest keeps four points per decay
/// (one more than the three parameters of A exp(-t/tau) + B) and three RB
/// lengths, six survival points for the shared A, p, B: below it a fit has
/// nothing left to test itself against, which is the true floor.
pub const REDUCED: [Protocol; 4] = [
    Protocol {
        delay_points: 7,
        rb_lengths: &[1, 2, 4, 8, 16, 32, 64, 128],
        rb_sequences: 2,
    },
    Protocol {
        delay_points: 6,
        rb_lengths: &[1, 4, 16, 64, 128],
        rb_sequences: 2,
    },
    Protocol {
        delay_points: 5,
        rb_lengths: &[1, 4, 16, 64, 128],
        rb_sequences: 1,
    },
    Protocol {
        delay_points: 4,
        rb_lengths: &[1, 16, 128],
        rb_sequences: 1,
    },
];

/// The largest protocol a budget can run with MIN_SHOTS_PER_CIRCUIT per
/// circuit; None below the smallest.
pub fn protocol_for(shots: u64) -> Option<Protocol> {
    std::iter::once(FULL)
        .chain(REDUCED)
        .find(|p| shots >= p.min_shots())
}

/// Circuits of the full protocol (what the default budget runs).
pub fn circuit_count() -> u64 {
    FULL.circuits()
}

pub fn min_shots() -> u64 {
    REDUCED
        .iter()
        .map(Protocol::min_shots)
        .min()
        .unwrap_or(FULL.min_shots())
}

/// Whether two unitaries are equal up to a global phase.
fn same_up_to_phase(a: &U2, b: &U2) -> bool {
    let t = u_mul(&u_dagger(a), b);
    ((t[0][0] + t[1][1]).norm_sqr().sqrt() - 2.0).abs() < 1e-9
}

/// The single-qubit Clifford group modulo phase, generated from H and S by
/// closure (breadth first, so index 0 is the identity).
pub fn clifford_group() -> Vec<U2> {
    let id: U2 = [[C::ONE, C::ZERO], [C::ZERO, C::ONE]];
    let gens = [hadamard(), phase(std::f64::consts::FRAC_PI_2)];
    let mut group = vec![id];
    let mut i = 0;
    while i < group.len() {
        for g in &gens {
            let next = u_mul(g, &group[i]);
            if !group.iter().any(|e| same_up_to_phase(e, &next)) {
                group.push(next);
            }
        }
        i += 1;
    }
    group
}

fn find(group: &[U2], u: &U2) -> usize {
    group
        .iter()
        .position(|e| same_up_to_phase(e, u))
        .expect("the Clifford group is closed under products")
}

/// The Clifford that takes the sequence's product to identity (to_one:
/// to X, so the ideal outcome is |1>).
pub fn inverting_clifford(group: &[U2], seq: &[usize], to_one: bool) -> usize {
    let mut total = group[0];
    for &k in seq {
        total = u_mul(&group[k], &total);
    }
    let mut inv = u_dagger(&total);
    if to_one {
        let x: U2 = [[C::ZERO, C::ONE], [C::ONE, C::ZERO]];
        inv = u_mul(&x, &inv);
    }
    find(group, &inv)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    T1,
    Ramsey,
    Echo,
    Rb { to_one: bool },
}

struct Circuit {
    kind: Kind,
    /// Delay in us, or the RB length.
    x: f64,
    ops: Vec<Op>,
    seq: Vec<usize>,
}

fn delays_ns(nominal_us: f64, points: usize) -> Vec<f64> {
    let ratio = DELAY_MAX_FRACTION / DELAY_MIN_FRACTION;
    (0..points)
        .map(|i| nominal_us * 1e3 * DELAY_MIN_FRACTION * ratio.powf(i as f64 / (points - 1) as f64))
        .collect()
}

fn protocol_circuits(
    req: &SimRequest,
    rng: &mut crate::sim::estimators::SimRng,
    group: &[U2],
    proto: &Protocol,
) -> Vec<Circuit> {
    let noise = &req.plant.noise;
    let points = proto.delay_points;
    let mut out = Vec::new();
    for t in delays_ns(noise.t1_us, points) {
        out.push(Circuit {
            kind: Kind::T1,
            x: t / 1e3,
            ops: vec![Op::X(0), Op::Delay(0, t)],
            seq: vec![],
        });
    }
    for t in delays_ns(noise.t2_us, points) {
        let ops = vec![Op::H(0), Op::Delay(0, t), Op::H(0)];
        out.push(Circuit {
            kind: Kind::Ramsey,
            x: t / 1e3,
            ops,
            seq: vec![],
        });
    }
    for t in delays_ns(noise.t2_us, points) {
        let ops = vec![
            Op::H(0),
            Op::Delay(0, t / 2.0),
            Op::X(0),
            Op::Delay(0, t / 2.0),
            Op::H(0),
        ];
        out.push(Circuit {
            kind: Kind::Echo,
            x: t / 1e3,
            ops,
            seq: vec![],
        });
    }
    for &m in proto.rb_lengths {
        for _ in 0..proto.rb_sequences {
            let seq: Vec<usize> = (0..m).map(|_| rng.random_range(0..group.len())).collect();
            for to_one in [false, true] {
                let mut full = seq.clone();
                full.push(inverting_clifford(group, &seq, to_one));
                let ops = full.iter().map(|&k| Op::Pulse(0, group[k])).collect();
                out.push(Circuit {
                    kind: Kind::Rb { to_one },
                    x: f64::from(m),
                    ops,
                    seq: full,
                });
            }
        }
    }
    out
}

/// The fitted quantities of one data set.
#[derive(Clone, Copy, Debug)]
struct Fits {
    t1: ExpFit,
    ramsey: ExpFit,
    echo: ExpFit,
    rb: RbFit,
}

/// Per-curve observations extracted from the circuits' P(0) estimates.
struct Curves {
    t1: (Vec<f64>, Vec<f64>),
    ramsey: (Vec<f64>, Vec<f64>),
    echo: (Vec<f64>, Vec<f64>),
    rb_lengths: Vec<f64>,
    rb_y0: Vec<f64>,
    rb_y1: Vec<f64>,
}

fn curves(circs: &[Circuit], p0: &[f64], rb_lengths: &[u32]) -> Curves {
    let pick = |k: Kind, one: bool| -> (Vec<f64>, Vec<f64>) {
        circs
            .iter()
            .zip(p0)
            .filter(|(c, _)| c.kind == k)
            .map(|(c, &p)| (c.x, if one { 1.0 - p } else { p }))
            .unzip()
    };
    let rb_mean = |to_one: bool| -> Vec<f64> {
        rb_lengths
            .iter()
            .map(|&m| {
                let v: Vec<f64> = circs
                    .iter()
                    .zip(p0)
                    .filter(|(c, _)| c.kind == Kind::Rb { to_one } && c.x == f64::from(m))
                    .map(|(_, &p)| p)
                    .collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            })
            .collect()
    };
    Curves {
        t1: pick(Kind::T1, true),
        ramsey: pick(Kind::Ramsey, false),
        echo: pick(Kind::Echo, false),
        rb_lengths: rb_lengths.iter().map(|&m| f64::from(m)).collect(),
        rb_y0: rb_mean(false),
        rb_y1: rb_mean(true),
    }
}

fn fit_all(c: &Curves, req: &SimRequest, start: Option<&Fits>) -> Fits {
    let n = &req.plant.noise;
    Fits {
        t1: fit_exp_decay(&c.t1.0, &c.t1.1, n.t1_us, start.map(|s| s.t1)),
        ramsey: fit_exp_decay(&c.ramsey.0, &c.ramsey.1, n.t2_us, start.map(|s| s.ramsey)),
        echo: fit_exp_decay(&c.echo.0, &c.echo.1, n.t2_us, start.map(|s| s.echo)),
        rb: fit_rb(&c.rb_lengths, &c.rb_y0, &c.rb_y1, start.map(|s| s.rb)),
    }
}

fn curve_json(
    xs: &[f64],
    ys: &[f64],
    shots: &[u64],
    f: &ExpFit,
    x_name: &str,
    y_name: &str,
) -> serde_json::Value {
    let fit: Vec<f64> = xs.iter().map(|&t| f.eval(t)).collect();
    json!({
        x_name: xs,
        y_name: ys,
        "fit_curve": fit,
        "shots": shots,
        "fit": {"a": f.a, "tau_us": f.tau, "b": f.b, "model": "A exp(-t/tau) + B", "at_bound": f.at_bound},
    })
}

/// The protocol a request's budget runs.
fn protocol(req: &SimRequest) -> Result<Protocol, SimError> {
    protocol_for(req.shots).ok_or_else(|| {
        SimError::Invalid(format!(
            "health needs at least {} shots: with fewer, the smallest protocol's circuits get under {MIN_SHOTS_PER_CIRCUIT} shots each, too coarse to fit",
            min_shots()
        ))
    })
}

/// Everything a health run's circuits are built from. The RB sequences are
/// the first draws of the run's generator, so the same seed rebuilds the
/// same circuits whether they are simulated or sent to an executor; the
/// generator comes back beside the plan, advanced past them.
pub(super) struct Plan {
    proto: Protocol,
    group: Vec<U2>,
    circs: Vec<Circuit>,
    jobs: Vec<CircuitJob>,
}

pub(super) fn plan(req: &SimRequest) -> Result<(Plan, SimRng), SimError> {
    let proto = protocol(req)?;
    let group = clifford_group();
    let mut rng = rng_for(req.seed);
    let circs = protocol_circuits(req, &mut rng, &group, &proto);
    let nc = circs.len() as u64;
    let mut seen = [0usize; 3];
    let mut rb_index = 0usize;
    let jobs = circs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let name = match c.kind {
                Kind::Rb { to_one } => {
                    // Each random sequence runs twice: inverted to |0>, then to |1>.
                    let seq = rb_index / 2;
                    rb_index += 1;
                    format!("rb_m{}_s{seq}_to{}", c.x, u8::from(to_one))
                }
                k => {
                    let (slot, prefix) = match k {
                        Kind::T1 => (0, "t1"),
                        Kind::Ramsey => (1, "ramsey"),
                        _ => (2, "echo"),
                    };
                    seen[slot] += 1;
                    format!("{prefix}_d{}", seen[slot] - 1)
                }
            };
            CircuitJob {
                name,
                target: req.plant.target.clone(),
                qubits: 1,
                ops: c.ops.clone(),
                // The budget split evenly, the remainder to the first circuits.
                shots: req.shots / nc + u64::from((i as u64) < req.shots % nc),
            }
        })
        .collect();
    Ok((
        Plan {
            proto,
            group,
            circs,
            jobs,
        },
        rng,
    ))
}

/// One circuit per delay point of T1 (x, delay), Ramsey (h, delay, h) and
/// echo (h, delay/2, x, delay/2, h), then per RB sequence one circuit
/// inverted to |0> and one to |1>, its Cliffords as single pulses.
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    Ok(plan(req)?.0.jobs)
}

pub(in crate::sim) fn health(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let (plan, rng) = plan(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::on_engine(&plan.jobs, |_| model.clone(), rng, cancelled)?;
    Ok(estimate(req, &plan, &model, obs))
}

pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let (plan, rng) = plan(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::from_executor(&plan.jobs, counts, |_| model.clone(), rng, plant)?;
    Ok(estimate(req, &plan, &model, obs))
}

fn estimate(req: &SimRequest, plan: &Plan, _model: &Model, mut obs: Observed) -> SimOutcome {
    let (proto, group, circs) = (plan.proto, &plan.group, &plan.circs);
    let reduced = proto != FULL;
    let nc = circs.len() as u64;
    let shots: Vec<u64> = plan.jobs.iter().map(|j| j.shots).collect();
    let counts = &obs.counts;
    let ideal_one: Vec<f64> = obs.refs.iter().map(|r| r.ideal[1]).collect();
    let mut time_weighted = 0.0;
    for (&n, r) in shots.iter().zip(&obs.refs) {
        time_weighted += n as f64 * r.shot_ns;
    }
    let rng = &mut obs.rng;
    let p0: Vec<f64> = counts
        .iter()
        .zip(&shots)
        .map(|(c, &n)| c[0] as f64 / n.max(1) as f64)
        .collect();
    let data = curves(circs, &p0, proto.rb_lengths);
    let fits = fit_all(&data, req, None);

    // Bootstrap: resample every circuit's counts from its own p_hat and refit,
    // warm-started at the point estimate (same minimum, far fewer iterations).
    let timer = crate::sim::estimators::BootstrapTimer::start();
    let mut reps: [Vec<f64>; 4] = Default::default();
    // Refits that ended on the tau search bound, per decay curve: their
    // values pile up there, so the percentiles cannot show how wide the
    // interval really is.
    let mut clipped = [0usize; 3];
    let mut p_rep = vec![0.0; circs.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for ((pr, &p), &n) in p_rep.iter_mut().zip(&p0).zip(&shots) {
            *pr = binomial(rng, n, p) as f64 / n.max(1) as f64;
        }
        let f = fit_all(&curves(circs, &p_rep, proto.rb_lengths), req, Some(&fits));
        for (n, fit) in clipped.iter_mut().zip([f.t1, f.ramsey, f.echo]) {
            *n += usize::from(fit.at_bound);
        }
        reps[0].push(f.t1.tau);
        reps[1].push(f.ramsey.tau);
        reps[2].push(f.echo.tau);
        reps[3].push(f.rb.epc());
    }
    drop(timer);
    let [r_t1, r_t2s, r_t2e, r_epc] = reps;
    let fid_reps: Vec<f64> = r_epc.iter().map(|e| 1.0 - e).collect();
    let epc = fits.rb.epc();
    let fidelity = 1.0 - epc;
    let latency_us = time_weighted / req.shots.max(1) as f64 / 1e3;

    // raw_counts: the RB circuits pooled (their ideal outcomes are known).
    let mut pooled = [0u64; 2];
    let mut expected = [0.0; 2];
    let mut rb_shots = 0u64;
    for ((c, cnt), (&n, &one)) in circs.iter().zip(counts).zip(shots.iter().zip(&ideal_one)) {
        if matches!(c.kind, Kind::Rb { .. }) {
            pooled[0] += cnt[0];
            pooled[1] += cnt[1];
            expected[1] += n as f64 * one;
            expected[0] += n as f64 * (1.0 - one);
            rb_shots += n;
        }
    }
    let expected = expected.map(|e| e / rb_shots.max(1) as f64);

    let mut warnings = Vec::new();
    for (name, f) in [("T1", fits.t1), ("Ramsey", fits.ramsey), ("echo", fits.echo)] {
        if f.at_bound {
            warnings.push(format!(
                "{name} fit hit its search bound; the decay is not resolved"
            ));
        }
    }
    let per_circuit = req.shots / nc;
    if per_circuit < 50 {
        warnings.push(format!(
            "{per_circuit} shots per circuit over {nc} circuits: fitted values carry wide intervals"
        ));
    }
    // The full protocol's output stays what it always was; these speak only
    // for the reduced ones.
    if reduced {
        warnings.push(format!(
            "reduced health protocol for a {}-shot budget: {nc} circuits ({} delays per decay curve, \
             RB lengths {:?} with {} sequence(s) each) instead of the full {}; the fits rest on fewer \
             points and their intervals are wider. Submit at least {} shots for the full protocol.",
            req.shots,
            proto.delay_points,
            proto.rb_lengths,
            proto.rb_sequences,
            FULL.circuits(),
            FULL.min_shots()
        ));
        for (name, n) in ["T1", "Ramsey", "echo"].into_iter().zip(clipped) {
            if n > 0 {
                warnings.push(format!(
                    "{n} of {BOOTSTRAP_RESAMPLES} bootstrap refits of the {name} curve ended on the fit's \
                     search bound: its ci95 is clipped there and understates the uncertainty"
                ));
            }
        }
    }

    let pick = |k: Kind| -> Vec<u64> {
        circs
            .iter()
            .zip(&shots)
            .filter(|(c, _)| c.kind == k)
            .map(|(_, &n)| n)
            .collect()
    };
    let rb_seqs: Vec<serde_json::Value> = circs
        .iter()
        .zip(&p0)
        .filter(|(c, _)| matches!(c.kind, Kind::Rb { .. }))
        .map(|(c, &p)| {
            let to_one = c.kind == Kind::Rb { to_one: true };
            json!({"length": c.x, "inverts_to": if to_one { "1" } else { "0" }, "cliffords": c.seq,
                   "survival": if to_one { 1.0 - p } else { p }})
        })
        .collect();
    let rb_fit: Vec<f64> = data
        .rb_lengths
        .iter()
        .map(|m| fits.rb.b + fits.rb.a * fits.rb.p.powf(*m))
        .collect();
    let mut artifacts = json!({
        "t1": curve_json(&data.t1.0, &data.t1.1, &pick(Kind::T1), &fits.t1, "delays_us", "p1_observed"),
        "ramsey": curve_json(&data.ramsey.0, &data.ramsey.1, &pick(Kind::Ramsey), &fits.ramsey, "delays_us", "p0_observed"),
        "echo": curve_json(&data.echo.0, &data.echo.1, &pick(Kind::Echo), &fits.echo, "delays_us", "p0_observed"),
        "rb": {
            "clifford_group_size": group.len(),
            "lengths": data.rb_lengths,
            "sequences_per_length": proto.rb_sequences,
            "survival_to_0": data.rb_y0,
            "p0_to_1": data.rb_y1,
            "fit_curve_to_0": rb_fit,
            "fit": {"a": fits.rb.a, "p": fits.rb.p, "b": fits.rb.b, "epc": epc,
                    "model": "P0 = B + A p^m (to |0>), B - A p^m (to |1>), shared A, p, B"},
            "epc_implied_by_p1q": req.plant.noise.p1q,
            "sequences": rb_seqs,
        },
        "circuits": nc,
        "shots_per_circuit": per_circuit,
        "latency_model_note": "health latency_us is the shot-weighted mean plant time per shot over all circuits",
    });
    if reduced {
        artifacts["protocol"] = json!({
            "name": "reduced",
            "delay_points": proto.delay_points,
            "rb_lengths": proto.rb_lengths,
            "rb_sequences": proto.rb_sequences,
            "full_protocol_min_shots": FULL.min_shots(),
        });
    }
    let on_engine = obs.on_engine_ran();
    let mut details = vec![
        kpi(
            "fidelity",
            fidelity,
            "fidelity_rb_v1",
            "estimate",
            "ratio",
            spread(fid_reps),
        ),
        kpi("epc", epc, "fidelity_rb_v1", "estimate", "ratio", spread(r_epc)),
        kpi(
            "t1_us",
            fits.t1.tau,
            "health_t1_fit_v1",
            "estimate",
            "us",
            spread(r_t1),
        ),
        kpi(
            "t2star_us",
            fits.ramsey.tau,
            "health_t2star_fit_v1",
            "estimate",
            "us",
            spread(r_t2s),
        ),
        kpi(
            "t2echo_us",
            fits.echo.tau,
            "health_t2echo_fit_v1",
            "estimate",
            "us",
            spread(r_t2e),
        ),
    ];
    if on_engine {
        details.push(backaction_kpi(0.0));
    }
    details.push(latency_model_kpi(latency_us));
    assemble(
        req,
        Parts {
            qubits: 1,
            fidelity,
            latency_us,
            backaction: 0.0,
            raw_counts: count_map(&pooled, 1),
            expected: dist_map(&expected, 1),
            details,
            measurement: json!({
                "model": "projective_z_with_readout_confusion",
                "basis": "Z",
                "povm": "Z projectors on qubit 0 followed by the confusion matrix [[1-p10, p01], [p10, 1-p01]]",
                "descriptor": format!("{nc} single-qubit circuits: T1, Ramsey, Hahn echo and Clifford RB"),
            }),
            sim_only: if on_engine {
                vec![]
            } else {
                vec!["SIM_ONLY_BACKACTION"]
            },
            artifacts,
            warnings,
            trace: trace(&[
                ("t1", "T1", "x, delay, measure over log-spaced delays", 0.0),
                ("ramsey", "Ramsey", "h, delay, h", 0.0),
                ("echo", "Hahn echo", "h, delay/2, x, delay/2, h", 0.0),
                (
                    "rb",
                    "Randomized benchmarking",
                    "Clifford sequences 1..128 with inversion",
                    0.0,
                ),
                (
                    "fit",
                    "Fit",
                    "least squares and a 200-resample bootstrap",
                    time_weighted / 1e6,
                ),
            ]),
            executor_plant: obs.plant,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::engine::Register;
    use crate::sim::noise::NoiseProfile;

    #[test]
    fn clifford_group_has_24_elements_and_inverses_return_to_zero() {
        let g = clifford_group();
        assert_eq!(g.len(), 24);
        let model = Model::new(
            &NoiseProfile::builtin("sim_local").expect("builtin"),
            &Default::default(),
        )
        .ideal();
        let mut rng = rng_for(3);
        for m in [1usize, 2, 7, 128] {
            for _ in 0..20 {
                let seq: Vec<usize> = (0..m).map(|_| rng.random_range(0..24)).collect();
                for to_one in [false, true] {
                    let mut full = seq.clone();
                    full.push(inverting_clifford(&g, &seq, to_one));
                    let mut r = Register::new(1, model.clone());
                    r.run(&full.iter().map(|&k| Op::Pulse(0, g[k])).collect::<Vec<_>>());
                    let p1 = r.populations()[1];
                    let want = if to_one { 1.0 } else { 0.0 };
                    assert!((p1 - want).abs() < 1e-9, "m={m} to_one={to_one} p1={p1}");
                }
            }
        }
    }

    fn request(target: &str, shots: u64, seed: u64) -> SimRequest {
        SimRequest {
            preset: crate::sim::Preset::Health,
            plant: crate::sim::Plant {
                target: target.into(),
                kind: "sim".into(),
                noise: NoiseProfile::builtin(target).expect("builtin"),
            },
            compare_with: None,
            shots,
            seed,
            controls: Default::default(),
            marked: None,
            program: None,
        }
    }

    fn digest(o: &SimOutcome) -> String {
        use sha2::Digest;
        let text = serde_json::to_string(o).expect("outcome serializes");
        crate::budget::hex(&sha2::Sha256::digest(text.as_bytes()))
    }

    /// Pins the full protocol's output as it was before the reduced
    /// protocols existed: same request and seed, same bytes. A deliberate
    /// change of the physics bumps ENGINE_VERSION and these digests; so
    /// does a change of the text (the KPI definitions moving to
    /// docs/physics.md changed only `definition_ref`).
    #[test]
    fn full_protocol_output_is_unchanged() {
        for (target, shots, seed, want) in [
            (
                "sim_local",
                900,
                1,
                "3977259c7416bd8bac2ba1228c8e99293a32764a91c8df05c68d19b1a6149785",
            ),
            (
                "aws_braket",
                2048,
                99,
                "ba81ab60917465482b5f216a105264730e2f790e31ebd817f854319d3f8d66fe",
            ),
            (
                "rigetti_forest",
                5000,
                7,
                "8500280b7f29354a0fec8c10d84772894e0baf41a7e13318cceca1e3a9707f7a",
            ),
        ] {
            let o = health(&request(target, shots, seed), &|| false).expect("runs");
            assert_eq!(digest(&o), want, "{target} {shots} {seed}");
        }
    }

    #[test]
    fn budgets_pick_the_largest_protocol_that_fits() {
        assert_eq!(FULL.circuits(), 75);
        assert_eq!(protocol_for(FULL.min_shots()), Some(FULL));
        assert_eq!(protocol_for(200_000), Some(FULL));
        let mut last = FULL.min_shots();
        for p in REDUCED {
            // Strictly smaller, and each keeps every curve's whole span.
            assert!(p.min_shots() < last, "{p:?}");
            last = p.min_shots();
            assert!(p.delay_points >= 4);
            assert!(p.rb_lengths.len() >= 3 && p.rb_sequences >= 1);
            assert_eq!(p.rb_lengths.first(), Some(&1));
            assert_eq!(p.rb_lengths.last(), FULL.rb_lengths.last());
            assert_eq!(protocol_for(p.min_shots()), Some(p));
        }
        assert_eq!(min_shots(), last);
        assert_eq!(protocol_for(min_shots() - 1), None);
        assert_eq!(protocol_for(FULL.min_shots() - 1), Some(REDUCED[0]));
    }

    #[test]
    fn a_small_budget_runs_the_reduced_protocol_and_says_so() {
        let o = health(&request("sim_local", 256, 5), &|| false).expect("runs");
        let proto = REDUCED[REDUCED.len() - 1];
        assert_eq!(o.artifacts["circuits"], proto.circuits());
        assert_eq!(o.artifacts["protocol"]["name"], "reduced");
        assert_eq!(
            o.artifacts["protocol"]["full_protocol_min_shots"],
            FULL.min_shots()
        );
        assert_eq!(
            o.artifacts["t1"]["delays_us"].as_array().map(Vec::len),
            Some(proto.delay_points)
        );
        let per_curve: u64 = ["t1", "ramsey", "echo"]
            .iter()
            .flat_map(|c| o.artifacts[c]["shots"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_u64())
            .sum();
        let rb: u64 = o.kpis.raw_counts.values().sum();
        assert_eq!(per_curve + rb, 256, "every shot is spent");
        assert!(
            o.warnings
                .iter()
                .any(|w| w.starts_with("reduced health protocol for a 256-shot budget")),
            "{:?}",
            o.warnings
        );
        for name in ["t1_us", "t2star_us", "t2echo_us", "epc", "fidelity"] {
            let d = o.kpi_details.iter().find(|d| d.name == name).expect("kpi");
            assert!(d.value.is_finite(), "{name}");
            let [lo, hi] = d.ci95.expect("sampled kpi has ci95");
            assert!(lo <= hi, "{name}");
        }
        let err = health(&request("sim_local", min_shots() - 1, 5), &|| false).unwrap_err();
        assert!(
            matches!(&err, SimError::Invalid(m) if m.contains(&format!("at least {}", min_shots()))),
            "{err:?}"
        );
    }

    /// The reduced protocol's intervals come from the same bootstrap over
    /// fewer shots: wider than the full protocol's, and still covering the
    /// profile's T1 about as often as a 95% interval should.
    #[test]
    fn reduced_intervals_are_wider_and_still_cover() {
        let truth = NoiseProfile::builtin("ibm_quantum").expect("builtin").t1_us;
        let median_width = |shots: u64| {
            let mut w: Vec<f64> = (0..9)
                .map(|seed| {
                    let o = health(&request("ibm_quantum", shots, seed), &|| false).expect("runs");
                    let d = o.kpi_details.iter().find(|d| d.name == "t1_us").expect("t1");
                    let [lo, hi] = d.ci95.expect("ci95");
                    hi - lo
                })
                .collect();
            w.sort_by(f64::total_cmp);
            w[w.len() / 2]
        };
        let (small, full) = (median_width(256), median_width(2048));
        assert!(small > 1.5 * full, "256 shots: {small}, 2048 shots: {full}");
        let covered = (100..130)
            .filter(|&seed| {
                let o = health(&request("ibm_quantum", 256, seed), &|| false).expect("runs");
                let d = o.kpi_details.iter().find(|d| d.name == "t1_us").expect("t1");
                let [lo, hi] = d.ci95.expect("ci95");
                lo <= truth && truth <= hi
            })
            .count();
        assert!(
            covered >= 24,
            "T1 ci95 covered the profile in {covered} of 30 seeds"
        );
    }

    #[test]
    fn delays_are_log_spaced_up_to_three_times_nominal() {
        let d = delays_ns(100.0, FULL.delay_points);
        assert_eq!(d.len(), FULL.delay_points);
        assert!((d[FULL.delay_points - 1] - 300_000.0).abs() < 1e-6);
        let r = d[1] / d[0];
        assert!(d.windows(2).all(|w| (w[1] / w[0] - r).abs() < 1e-9));
    }
}
