//! The health preset: qubit-0 characterization (physics.md "Presets").
//! T1 (x, delay, measure), Ramsey T2* (h, delay, h) and Hahn echo (h, d/2,
//! x, d/2, h) over log-spaced delays up to 3x the nominal time, plus
//! single-qubit Clifford randomized benchmarking. The budget is split evenly
//! over all circuits; parameters come from least-squares fits and their
//! uncertainty from a bootstrap over every circuit's counts.

use rand::RngExt;
use serde_json::json;

use super::engine::{hadamard, phase, u_dagger, u_mul, Model, Op, Register, C, U2};
use super::estimators::{
    binomial, fit_exp_decay, fit_rb, multinomial, rng_for, spread, ExpFit, RbFit, BOOTSTRAP_RESAMPLES,
};
use super::presets::{
    assemble, backaction_kpi, check, count_map, dist_map, kpi, latency_model_kpi, trace, Parts,
};
use super::{SimError, SimOutcome, SimRequest};

/// Delay points per decay curve (T1, Ramsey, echo).
pub const DELAY_POINTS: usize = 9;
/// Shortest delay as a fraction of the nominal time; the longest is 3x.
const DELAY_MIN_FRACTION: f64 = 0.02;
const DELAY_MAX_FRACTION: f64 = 3.0;
pub const RB_LENGTHS: [u32; 8] = [1, 2, 4, 8, 16, 32, 64, 128];
/// Random sequences per length; each runs twice (inverted to |0> and to |1>).
pub const RB_SEQUENCES: usize = 3;
/// Fewer shots than this per circuit leaves single points too coarse
/// (1/12 resolution) for the fits to mean anything.
pub const MIN_SHOTS_PER_CIRCUIT: u64 = 12;

pub fn circuit_count() -> u64 {
    (3 * DELAY_POINTS + RB_LENGTHS.len() * RB_SEQUENCES * 2) as u64
}

pub fn min_shots() -> u64 {
    circuit_count() * MIN_SHOTS_PER_CIRCUIT
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

fn delays_ns(nominal_us: f64) -> Vec<f64> {
    let ratio = DELAY_MAX_FRACTION / DELAY_MIN_FRACTION;
    (0..DELAY_POINTS)
        .map(|i| nominal_us * 1e3 * DELAY_MIN_FRACTION * ratio.powf(i as f64 / (DELAY_POINTS - 1) as f64))
        .collect()
}

fn circuits(req: &SimRequest, rng: &mut super::estimators::SimRng, group: &[U2]) -> Vec<Circuit> {
    let noise = &req.plant.noise;
    let mut out = Vec::new();
    for t in delays_ns(noise.t1_us) {
        out.push(Circuit {
            kind: Kind::T1,
            x: t / 1e3,
            ops: vec![Op::X(0), Op::Delay(0, t)],
            seq: vec![],
        });
    }
    for t in delays_ns(noise.t2_us) {
        let ops = vec![Op::H(0), Op::Delay(0, t), Op::H(0)];
        out.push(Circuit {
            kind: Kind::Ramsey,
            x: t / 1e3,
            ops,
            seq: vec![],
        });
    }
    for t in delays_ns(noise.t2_us) {
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
    for &m in &RB_LENGTHS {
        for _ in 0..RB_SEQUENCES {
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

fn curves(circs: &[Circuit], p0: &[f64]) -> Curves {
    let pick = |k: Kind, one: bool| -> (Vec<f64>, Vec<f64>) {
        circs
            .iter()
            .zip(p0)
            .filter(|(c, _)| c.kind == k)
            .map(|(c, &p)| (c.x, if one { 1.0 - p } else { p }))
            .unzip()
    };
    let rb_mean = |to_one: bool| -> Vec<f64> {
        RB_LENGTHS
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
        rb_lengths: RB_LENGTHS.iter().map(|&m| f64::from(m)).collect(),
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

pub(super) fn health(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    if req.shots < min_shots() {
        return Err(SimError::Invalid(format!(
            "health needs at least {} shots",
            min_shots()
        )));
    }
    let model = Model::new(&req.plant.noise, &req.controls);
    let group = clifford_group();
    let mut rng = rng_for(req.seed);
    let circs = circuits(req, &mut rng, &group);
    let nc = circs.len() as u64;
    let mut shots = Vec::with_capacity(circs.len());
    let mut counts = Vec::with_capacity(circs.len());
    let mut ideal_one = Vec::with_capacity(circs.len());
    let mut time_weighted = 0.0;
    for (i, c) in circs.iter().enumerate() {
        check(cancelled)?;
        let mut reg = Register::new(1, model.clone());
        reg.run(&c.ops);
        reg.sync_all();
        let mut ideal = Register::new(1, model.ideal());
        ideal.run(&c.ops);
        let n = req.shots / nc + u64::from((i as u64) < req.shots % nc);
        time_weighted += n as f64 * reg.shot_time_ns();
        shots.push(n);
        counts.push(multinomial(&mut rng, n, &reg.readout_distribution()));
        ideal_one.push(ideal.populations()[1]);
    }
    let p0: Vec<f64> = counts
        .iter()
        .zip(&shots)
        .map(|(c, &n)| c[0] as f64 / n.max(1) as f64)
        .collect();
    let data = curves(&circs, &p0);
    let fits = fit_all(&data, req, None);

    // Bootstrap: resample every circuit's counts from its own p_hat and refit,
    // warm-started at the point estimate (same minimum, far fewer iterations).
    let timer = super::bench::BootstrapTimer::start();
    let mut reps: [Vec<f64>; 4] = Default::default();
    let mut p_rep = vec![0.0; circs.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for ((pr, &p), &n) in p_rep.iter_mut().zip(&p0).zip(&shots) {
            *pr = binomial(&mut rng, n, p) as f64 / n.max(1) as f64;
        }
        let f = fit_all(&curves(&circs, &p_rep), req, Some(&fits));
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
    for ((c, cnt), (&n, &one)) in circs.iter().zip(&counts).zip(shots.iter().zip(&ideal_one)) {
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
    let artifacts = json!({
        "t1": curve_json(&data.t1.0, &data.t1.1, &pick(Kind::T1), &fits.t1, "delays_us", "p1_observed"),
        "ramsey": curve_json(&data.ramsey.0, &data.ramsey.1, &pick(Kind::Ramsey), &fits.ramsey, "delays_us", "p0_observed"),
        "echo": curve_json(&data.echo.0, &data.echo.1, &pick(Kind::Echo), &fits.echo, "delays_us", "p0_observed"),
        "rb": {
            "clifford_group_size": group.len(),
            "lengths": data.rb_lengths,
            "sequences_per_length": RB_SEQUENCES,
            "survival_to_0": data.rb_y0,
            "p0_to_1": data.rb_y1,
            "fit_curve_to_0": rb_fit,
            "fit": {"a": fits.rb.a, "p": fits.rb.p, "b": fits.rb.b, "epc": epc,
                    "model": "P0 = B + A p^m (to |0>), B - A p^m (to |1>), shared A, p, B"},
            "epc_implied_by_p1q": model.p1q / 2.0,
            "sequences": rb_seqs,
        },
        "circuits": nc,
        "shots_per_circuit": per_circuit,
        "latency_model_note": "health latency_us is the shot-weighted mean plant time per shot over all circuits",
    });
    Ok(assemble(
        req,
        Parts {
            qubits: 1,
            fidelity,
            latency_us,
            backaction: 0.0,
            raw_counts: count_map(&pooled, 1),
            expected: dist_map(&expected, 1),
            details: vec![
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
                backaction_kpi(0.0),
                latency_model_kpi(latency_us),
            ],
            measurement: json!({
                "model": "projective_z_with_readout_confusion",
                "basis": "Z",
                "povm": "Z projectors on qubit 0 followed by the confusion matrix [[1-p10, p01], [p10, 1-p01]]",
                "descriptor": format!("{nc} single-qubit circuits: T1, Ramsey, Hahn echo and Clifford RB"),
            }),
            sim_only: vec![],
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
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn delays_are_log_spaced_up_to_three_times_nominal() {
        let d = delays_ns(100.0);
        assert_eq!(d.len(), DELAY_POINTS);
        assert!((d[DELAY_POINTS - 1] - 300_000.0).abs() < 1e-6);
        let r = d[1] / d[0];
        assert!(d.windows(2).all(|w| (w[1] / w[0] - r).abs() < 1e-9));
    }
}
