//! The health preset: qubit-0 characterization (docs/physics.md "Presets").
//! Readout assignment (prepare 0 and 1, measure), T1 (x, delay, measure),
//! Ramsey (h, delay, virtual detuning phase, h) and Hahn echo (h, d/2, x,
//! d/2, h) with delays up to 5x the nominal time, plus single-qubit
//! Clifford randomized benchmarking. The budget is split evenly over all
//! circuits; parameters come from least-squares fits whose offsets are
//! fixed by the measured readout, and their uncertainty from a bootstrap
//! over every circuit's counts.
//! Longer than the other presets: it is five protocols and their reduced
//! variants, sharing one shot split, one set of fits and one bootstrap.

use rand::RngExt;
use serde_json::{json, Value};

use super::observed::{CircuitJob, Observed};
use super::{assemble, backaction_kpi, count_map, dist_map, kpi, latency_model_kpi, model_of, trace, Parts};
use crate::sim::engine::{hadamard, phase, u_dagger, u_mul, Op, C, U2};
use crate::sim::estimators::{
    binomial, fit_coherence, fit_exp_decay, fit_rb, rng_for, spread, CoherenceFit, ExpFit, RbFit, SimRng,
    BOOTSTRAP_RESAMPLES,
};
use crate::sim::{KpiDetail, NoiseProfile, SimError, SimOutcome, SimRequest};

/// Every decay curve reaches this many times its nominal time (T1, T2*,
/// T2): by then the signal is gone (e^-5 of it or less), so the fit sees
/// the whole decay and the fixed offset is tested against the tail.
const SPAN: f64 = 5.0;
/// T1 and echo delays: one at 0 (pins the amplitude), one at SPAN, the rest
/// evenly over the range of the nominal time where, with the amplitude
/// fitted as well, they pin the decay time best: the Cramer-Rao bound of
/// the two-parameter fit (A and tau, the offset fixed) is near its lowest
/// with them between 1 and 2.5 tau for T1 (whose variance shrinks with the
/// signal as it decays from 1 towards p(1|0)) and between 1 and 2 tau for
/// the echo (whose variance stays near its largest at the midpoint). Log
/// spacing would spend most points where the curve has hardly moved.
const T1_DENSE: (f64, f64) = (1.0, 2.5);
const ECHO_DENSE: (f64, f64) = (1.0, 2.0);
/// Ramsey delays are evenly spaced (an oscillation needs even sampling)
/// from 0 to RAMSEY_DENSE_TO x the nominal T2*, where the envelope still
/// holds signal, and the artificial detuning is chosen so that every
/// period there holds SAMPLES_PER_PERIOD points: twice the Nyquist minimum
/// of two, so the fitted frequency cannot alias. Beyond it the envelope of
/// every built-in profile is under 3% of its start (below the shot noise of
/// a point), so RAMSEY_TAIL points evenly out to SPAN suffice to test the
/// fixed offset; spending the even spacing there would take points from
/// where the decay is measured. With the full protocol's points the
/// detuning is 1.8 periods per nominal T2*: enough turns inside the
/// envelope that the oscillation and the Gaussian decay, which look alike
/// over a fraction of a period, come apart in the fit.
const RAMSEY_DENSE_TO: f64 = 2.5;
const RAMSEY_TAIL: usize = 2;
const SAMPLES_PER_PERIOD: f64 = 4.0;
/// Fewer shots than this per circuit leaves single points too coarse
/// (1/12 resolution) for the fits to mean anything: the protocols are
/// chosen so every circuit gets at least this many.
pub const MIN_SHOTS_PER_CIRCUIT: u64 = 12;
/// The smallest protocol still runs down to this many shots per circuit.
/// The old service's quickstart sends 256 shots for a health check, and its
/// clients must keep working; at 1/8 resolution the fits still converge,
/// with intervals as wide as they should be (and a warning says so).
pub const FLOOR_SHOTS_PER_CIRCUIT: u64 = 8;

/// The circuits one health run executes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Protocol {
    /// Circuits per readout preparation (0 and 1). Their mean P(0) is the
    /// offset every decay fit holds fixed, so its noise enters every fitted
    /// time: it gets several circuits' shots.
    pub readout_repeats: usize,
    /// Delay points of the T1 curve.
    pub delay_points: usize,
    /// Delay points of the echo curve.
    pub echo_points: usize,
    /// Delay points of the Ramsey curve.
    pub ramsey_points: usize,
    /// RB sequence lengths, in Cliffords.
    pub rb_lengths: &'static [u32],
    /// Random sequences per length; each runs twice (inverted to |0> and to |1>).
    pub rb_sequences: usize,
}

impl Protocol {
    pub fn circuits(&self) -> u64 {
        (2 * self.readout_repeats
            + self.delay_points
            + self.echo_points
            + self.ramsey_points
            + self.rb_lengths.len() * self.rb_sequences * 2) as u64
    }

    /// The budget that gives every circuit MIN_SHOTS_PER_CIRCUIT.
    pub fn min_shots(&self) -> u64 {
        self.circuits() * MIN_SHOTS_PER_CIRCUIT
    }

    /// The Ramsey curve's artificial detuning for a nominal T2*, in MHz:
    /// SAMPLES_PER_PERIOD points per period over the evenly spaced delays.
    pub fn detuning_mhz(&self, t2star_us: f64) -> f64 {
        1.0 / (SAMPLES_PER_PERIOD * ramsey_step_us(t2star_us, self.ramsey_points))
    }
}

pub const FULL: Protocol = Protocol {
    readout_repeats: 4,
    delay_points: 7,
    echo_points: 17,
    ramsey_points: 21,
    rb_lengths: &[1, 2, 4, 8, 16, 32, 64, 128],
    rb_sequences: 2,
};

/// The protocols for budgets too small to spread MIN_SHOTS_PER_CIRCUIT
/// over the full one, largest first. Each keeps the full span of every
/// curve (delays from 0 to 5x the nominal time, RB from 1 to 128
/// Cliffords), so each fit still sees its whole decay; what goes is the
/// density of points and the number of random sequences averaged per
/// length. Fewer points carry fewer shots in all, so the bootstrap
/// intervals widen by themselves. The smallest keeps four T1 points (two
/// more than the fit's two free parameters), six echo and thirteen Ramsey
/// points for the five of the joint coherence fit (a detuning of one
/// period per T2*, so the frequency does not stand in for the Gaussian
/// decay) and three RB lengths, six survival points for the shared
/// A, p, B: below it a fit has nothing left to test itself against.
pub const REDUCED: [Protocol; 4] = [
    Protocol {
        readout_repeats: 3,
        delay_points: 6,
        echo_points: 13,
        ramsey_points: 17,
        rb_lengths: &[1, 2, 4, 8, 16, 32, 64, 128],
        rb_sequences: 2,
    },
    Protocol {
        readout_repeats: 2,
        delay_points: 5,
        echo_points: 10,
        ramsey_points: 15,
        rb_lengths: &[1, 4, 16, 64, 128],
        rb_sequences: 2,
    },
    Protocol {
        readout_repeats: 1,
        delay_points: 5,
        echo_points: 8,
        ramsey_points: 13,
        rb_lengths: &[1, 4, 16, 64, 128],
        rb_sequences: 1,
    },
    Protocol {
        readout_repeats: 1,
        delay_points: 4,
        echo_points: 6,
        ramsey_points: 13,
        rb_lengths: &[1, 16, 128],
        rb_sequences: 1,
    },
];

/// The largest protocol a budget can run with MIN_SHOTS_PER_CIRCUIT per
/// circuit; below them all the smallest, down to FLOOR_SHOTS_PER_CIRCUIT;
/// None below that.
pub fn protocol_for(shots: u64) -> Option<Protocol> {
    std::iter::once(FULL)
        .chain(REDUCED)
        .find(|p| shots >= p.min_shots())
        .or_else(|| (shots >= min_shots()).then_some(SMALLEST))
}

/// Circuits of the full protocol (what the default budget runs).
pub fn circuit_count() -> u64 {
    FULL.circuits()
}

/// The last of [`REDUCED`].
const SMALLEST: Protocol = REDUCED[REDUCED.len() - 1];

/// The smallest budget health runs with: the smallest protocol at
/// FLOOR_SHOTS_PER_CIRCUIT.
pub fn min_shots() -> u64 {
    SMALLEST.circuits() * FLOOR_SHOTS_PER_CIRCUIT
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
    Readout { one: bool },
    T1,
    Ramsey,
    Echo,
    Rb { to_one: bool },
}

struct Circuit {
    kind: Kind,
    /// Delay in us, or the RB length (0 for readout).
    x: f64,
    ops: Vec<Op>,
    seq: Vec<usize>,
}

/// T1 and echo delays in ns: 0, evenly over `from..to`, SPAN
/// (times the nominal time).
fn decay_delays_ns(nominal_us: f64, points: usize, (from, to): (f64, f64)) -> Vec<f64> {
    let inner = points.saturating_sub(2);
    let step = (to - from) / inner.saturating_sub(1).max(1) as f64;
    std::iter::once(0.0)
        .chain((0..inner).map(|i| from + step * i as f64))
        .chain(std::iter::once(SPAN))
        .map(|f| f * nominal_us * 1e3)
        .collect()
}

/// Ramsey delays in ns: evenly spaced from 0 to RAMSEY_DENSE_TO x the
/// nominal T2*, then RAMSEY_TAIL evenly out to SPAN x.
fn ramsey_delays_ns(t2star_us: f64, points: usize) -> Vec<f64> {
    let step = ramsey_step_us(t2star_us, points) * 1e3;
    let dense = points - RAMSEY_TAIL;
    let tail_step = (SPAN - RAMSEY_DENSE_TO) * t2star_us * 1e3 / RAMSEY_TAIL as f64;
    let last = step * (dense - 1) as f64;
    (0..dense)
        .map(|i| step * i as f64)
        .chain((1..=RAMSEY_TAIL).map(|k| last + tail_step * k as f64))
        .collect()
}

/// The even spacing of the Ramsey delays inside the envelope, in us.
fn ramsey_step_us(t2star_us: f64, points: usize) -> f64 {
    RAMSEY_DENSE_TO * t2star_us / (points - RAMSEY_TAIL - 1) as f64
}

/// A delay, left out at 0 (the circuit then is the gates alone).
fn delay(t_ns: f64) -> Option<Op> {
    (t_ns > 0.0).then_some(Op::Delay(0, t_ns))
}

fn protocol_circuits(req: &SimRequest, rng: &mut SimRng, group: &[U2], proto: &Protocol) -> Vec<Circuit> {
    let noise = &req.plant.noise;
    let mut out = Vec::new();
    for one in [false, true] {
        for k in 0..proto.readout_repeats {
            out.push(Circuit {
                kind: Kind::Readout { one },
                x: k as f64,
                ops: if one { vec![Op::X(0)] } else { vec![] },
                seq: vec![],
            });
        }
    }
    for t in decay_delays_ns(noise.t1_us, proto.delay_points, T1_DENSE) {
        out.push(Circuit {
            kind: Kind::T1,
            x: t / 1e3,
            ops: [Some(Op::X(0)), delay(t)].into_iter().flatten().collect(),
            seq: vec![],
        });
    }
    let f_mhz = proto.detuning_mhz(noise.t2star_us);
    for t in ramsey_delays_ns(noise.t2star_us, proto.ramsey_points) {
        // The detuning is a virtual phase advancing with the delay: the
        // frame rotates at f against the qubit, whatever its own frequency.
        let turn = std::f64::consts::TAU * f_mhz * t / 1e3;
        let ops = [Some(Op::H(0)), delay(t), Some(Op::Rz(0, turn)), Some(Op::H(0))];
        out.push(Circuit {
            kind: Kind::Ramsey,
            x: t / 1e3,
            ops: ops.into_iter().flatten().collect(),
            seq: vec![],
        });
    }
    for t in decay_delays_ns(noise.t2_us, proto.echo_points, ECHO_DENSE) {
        let ops = [
            Some(Op::H(0)),
            delay(t / 2.0),
            Some(Op::X(0)),
            delay(t / 2.0),
            Some(Op::H(0)),
        ];
        out.push(Circuit {
            kind: Kind::Echo,
            x: t / 1e3,
            ops: ops.into_iter().flatten().collect(),
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
    coherence: CoherenceFit,
    rb: RbFit,
}

/// Per-curve observations extracted from the circuits' P(0) estimates.
struct Curves {
    /// P(0) of the prepare-0 and prepare-1 circuits.
    p0_prep0: f64,
    p0_prep1: f64,
    t1: (Vec<f64>, Vec<f64>),
    ramsey: (Vec<f64>, Vec<f64>),
    echo: (Vec<f64>, Vec<f64>),
    rb_lengths: Vec<f64>,
    rb_y0: Vec<f64>,
    rb_y1: Vec<f64>,
}

impl Curves {
    /// p(1|0): where T1 relaxation ends, since relaxation returns the
    /// qubit to the state it started in.
    fn p1_given_0(&self) -> f64 {
        1.0 - self.p0_prep0
    }

    fn p0_given_1(&self) -> f64 {
        self.p0_prep1
    }

    /// P(0) of a fully dephased qubit as read out: what Ramsey and echo
    /// decay to.
    fn midpoint(&self) -> f64 {
        (self.p0_prep0 + self.p0_prep1) / 2.0
    }

    fn assignment_fidelity(&self) -> f64 {
        1.0 - (self.p1_given_0() + self.p0_given_1()) / 2.0
    }
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
    let readout = |one: bool| -> f64 {
        let v: Vec<f64> = circs
            .iter()
            .zip(p0)
            .filter(|(c, _)| c.kind == Kind::Readout { one })
            .map(|(_, &p)| p)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    Curves {
        p0_prep0: readout(false),
        p0_prep1: readout(true),
        t1: pick(Kind::T1, true),
        ramsey: pick(Kind::Ramsey, false),
        echo: pick(Kind::Echo, false),
        rb_lengths: rb_lengths.iter().map(|&m| f64::from(m)).collect(),
        rb_y0: rb_mean(false),
        rb_y1: rb_mean(true),
    }
}

/// The coherence fit's start when there is no earlier fit: amplitudes from
/// the first points, T2, the Gaussian coefficient and the frequency from
/// the profile and the programmed detuning.
fn coherence_guess(c: &Curves, noise: &NoiseProfile, f_mhz: f64) -> CoherenceFit {
    let m = c.midpoint();
    let first = |ys: &[f64]| ys.first().map_or(0.5, |y| y - m);
    let (t2, t2s) = (noise.t2_us, noise.t2star_us.min(noise.t2_us));
    CoherenceFit {
        offset: m,
        a_echo: first(&c.echo.1),
        a_ramsey: first(&c.ramsey.1),
        t2,
        // sigma^2 / 2 of the profile's quasi-static detuning, in 1/us^2.
        s: (1.0 - t2s / t2) / (t2s * t2s),
        freq: f_mhz,
        at_bound: false,
    }
}

fn fit_all(c: &Curves, req: &SimRequest, f_mhz: f64, start: Option<&Fits>) -> Fits {
    let n = &req.plant.noise;
    let coherence_start = match start {
        Some(s) => CoherenceFit {
            offset: c.midpoint(),
            ..s.coherence
        },
        None => coherence_guess(c, n, f_mhz),
    };
    let (echo, ramsey) = ((&c.echo.0[..], &c.echo.1[..]), (&c.ramsey.0[..], &c.ramsey.1[..]));
    // Weighted least squares: a point's binomial variance p (1 - p) / n
    // is several times smaller near P(0) = 0 or 1 than at the midpoint, so
    // equal weights waste the precise points. The weights come from a
    // fitted curve, never from the noisy points themselves (that would
    // bias the fit): the main fit takes them from an unweighted first
    // pass, the bootstrap refits from the main fit.
    let coherence = match start {
        Some(s) => fit_coherence(echo, ramsey, coherence_start, &binomial_weights(c, &s.coherence)),
        None => {
            let first = fit_coherence(echo, ramsey, coherence_start, &[]);
            fit_coherence(echo, ramsey, first, &binomial_weights(c, &first))
        }
    };
    Fits {
        t1: fit_exp_decay(&c.t1.0, &c.t1.1, c.p1_given_0(), n.t1_us, start.map(|s| s.t1)),
        coherence,
        rb: fit_rb(&c.rb_lengths, &c.rb_y0, &c.rb_y1, start.map(|s| s.rb)),
    }
}

/// 1 / (p (1 - p)) of every echo then Ramsey point, p the fitted curve's
/// P(0) there (kept off 0 and 1: a point is never infinitely precise). The
/// circuits' shots differ by at most one, so they do not enter.
fn binomial_weights(c: &Curves, fit: &CoherenceFit) -> Vec<f64> {
    let echo = c.echo.0.iter().map(|&t| fit.echo(t));
    let ramsey = c.ramsey.0.iter().map(|&t| fit.ramsey(t));
    echo.chain(ramsey)
        .map(|p| {
            let p = p.clamp(0.01, 0.99);
            1.0 / (p * (1.0 - p))
        })
        .collect()
}

/// One decay curve for artifacts: the points, the fit at each point, and
/// the fit's parameters (`a`, `tau_us`, `b` as every curve has them).
fn curve_json(xs: &[f64], ys: &[f64], shots: &[u64], fit_curve: Vec<f64>, y_name: &str, fit: Value) -> Value {
    json!({
        "delays_us": xs,
        y_name: ys,
        "fit_curve": fit_curve,
        "shots": shots,
        "fit": fit,
    })
}

/// The protocol a request's budget runs.
fn protocol(req: &SimRequest) -> Result<Protocol, SimError> {
    protocol_for(req.shots).ok_or_else(|| {
        SimError::Invalid(format!(
            "health needs at least {} shots: with fewer, the smallest protocol's circuits get under {FLOOR_SHOTS_PER_CIRCUIT} shots each, too coarse to fit",
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
                Kind::Readout { one } => format!("readout_prep{}_r{}", u8::from(one), c.x),
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

/// The prepare-0 (nothing) and prepare-1 (x) readout circuits, one circuit
/// per delay point of T1 (x, delay), Ramsey (h, delay, rz(2 pi f delay),
/// h) and echo (h, delay/2, x, delay/2, h), then per RB sequence one
/// circuit inverted to |0> and one to |1>, its Cliffords as single pulses.
pub(in crate::sim) fn circuits(req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
    Ok(plan(req)?.0.jobs)
}

pub(in crate::sim) fn health(req: &SimRequest, cancelled: &dyn Fn() -> bool) -> Result<SimOutcome, SimError> {
    let (plan, rng) = plan(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::on_engine(&plan.jobs, |_| model.clone(), rng, cancelled)?;
    Ok(estimate(req, &plan, obs))
}

pub(in crate::sim) fn from_counts(
    req: &SimRequest,
    counts: &[Vec<u64>],
    plant: Value,
) -> Result<SimOutcome, SimError> {
    let (plan, rng) = plan(req)?;
    let model = model_of(&req.plant, &req.controls);
    let obs = Observed::from_executor(&plan.jobs, counts, |_| model.clone(), rng, plant)?;
    Ok(estimate(req, &plan, obs))
}

/// How far a fitted coherence time may fall below the profile's before
/// health warns / fails.
const TIME_WARN_RATIO: f64 = 0.85;
const TIME_FAIL_RATIO: f64 = 0.5;
/// How many times the profile's error (EPC against p1q, readout assignment
/// error against (p10 + p01)/2) before health warns / fails.
const ERROR_WARN_RATIO: f64 = 2.0;
const ERROR_FAIL_RATIO: f64 = 4.0;

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Severity {
    Warn,
    Fail,
}

/// What the fits say against the profile: one finding per quantity whose
/// whole ci95 lies past a threshold, so a run is flagged only when its
/// data are confident of the shortfall (sampling noise alone, at any
/// budget, raises a finding in at most about 2.5% of runs per quantity,
/// and far fewer while the truth is the profile's).
fn profile_findings(noise: &NoiseProfile, details: &[KpiDetail]) -> Vec<(Severity, String)> {
    let find = |name: &str| details.iter().find(|d| d.name == name);
    let mut out = Vec::new();
    for (name, label, nominal) in [
        ("t1_us", "T1", noise.t1_us),
        ("t2star_us", "T2*", noise.t2star_us),
        ("t2echo_us", "T2echo", noise.t2_us),
    ] {
        let Some(d) = find(name) else { continue };
        if !(nominal.is_finite() && nominal > 0.0) {
            continue;
        }
        let hi = d.ci95.map_or(d.value, |c| c[1]);
        let sev = if hi < TIME_FAIL_RATIO * nominal {
            Severity::Fail
        } else if hi < TIME_WARN_RATIO * nominal {
            Severity::Warn
        } else {
            continue;
        };
        out.push((
            sev,
            format!(
                "fitted {label} is {:.0}% of the profile's {nominal} us (ci95 ends at {hi:.4} us): \
                 the qubit's coherence is below its calibration; recalibrate or check the target",
                100.0 * d.value / nominal
            ),
        ));
    }
    let errors = [
        ("epc", "error per Clifford", noise.p1q, false),
        (
            "readout_assignment_fidelity",
            "readout assignment error",
            (noise.readout_p10 + noise.readout_p01) / 2.0,
            true,
        ),
    ];
    for (name, label, nominal, is_fidelity) in errors {
        let Some(d) = find(name) else { continue };
        if nominal.is_nan() || nominal <= 0.0 {
            continue;
        }
        // The error and the low end of its ci95.
        let (value, lo) = if is_fidelity {
            (1.0 - d.value, 1.0 - d.ci95.map_or(d.value, |c| c[1]))
        } else {
            (d.value, d.ci95.map_or(d.value, |c| c[0]))
        };
        let sev = if lo > ERROR_FAIL_RATIO * nominal {
            Severity::Fail
        } else if lo > ERROR_WARN_RATIO * nominal {
            Severity::Warn
        } else {
            continue;
        };
        out.push((
            sev,
            format!(
                "{label} is {:.1}x the profile's {nominal} (ci95 starts at {lo:.3e}): \
                 the target performs below its calibration; recalibrate or check the target",
                value / nominal
            ),
        ));
    }
    out
}

/// Health's status: its fits against the profile (docs/physics.md
/// "Presets"): fail when a coherence time's whole ci95 lies under half the
/// profile's or an error's over four times it, warn at 85% / twice; else ok.
fn health_status(noise: &NoiseProfile, details: &[KpiDetail]) -> &'static str {
    match profile_findings(noise, details)
        .iter()
        .map(|f| f.0)
        .reduce(|a, b| if b > a { b } else { a })
    {
        Some(Severity::Fail) => "fail",
        Some(Severity::Warn) => "warn",
        None => "ok",
    }
}

fn estimate(req: &SimRequest, plan: &Plan, mut obs: Observed) -> SimOutcome {
    let (proto, group, circs) = (plan.proto, &plan.group, &plan.circs);
    let noise = &req.plant.noise;
    let reduced = proto != FULL;
    let nc = circs.len() as u64;
    let f_mhz = proto.detuning_mhz(noise.t2star_us);
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
    let fits = fit_all(&data, req, f_mhz, None);

    let timer = crate::sim::estimators::BootstrapTimer::start();
    let mut reps: [Vec<f64>; 6] = Default::default();
    // Refits that ended on a search bound, per fit (T1, coherence): their
    // values pile up there, so the percentiles cannot show how wide the
    // interval really is.
    let mut clipped = [0usize; 2];
    let mut p_rep = vec![0.0; circs.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        for ((pr, &p), &n) in p_rep.iter_mut().zip(&p0).zip(&shots) {
            *pr = binomial(rng, n, p) as f64 / n.max(1) as f64;
        }
        let c = curves(circs, &p_rep, proto.rb_lengths);
        let f = fit_all(&c, req, f_mhz, Some(&fits));
        clipped[0] += usize::from(f.t1.at_bound);
        clipped[1] += usize::from(f.coherence.at_bound);
        reps[0].push(f.t1.tau);
        reps[1].push(f.coherence.t2star());
        reps[2].push(f.coherence.t2);
        reps[3].push(f.rb.epc());
        reps[4].push(c.assignment_fidelity());
        reps[5].push(f.coherence.freq);
    }
    drop(timer);
    let [r_t1, r_t2s, r_t2e, r_epc, r_ro, r_freq] = reps;
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
    for (name, at_bound) in [
        ("T1", fits.t1.at_bound),
        ("Ramsey and echo", fits.coherence.at_bound),
    ] {
        if at_bound {
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
    if reduced {
        warnings.push(format!(
            "reduced health protocol for a {}-shot budget: {nc} circuits ({} T1, {} echo and \
             {} Ramsey delays, RB lengths {:?} with {} sequence(s) each) instead of the full {}; the fits \
             rest on fewer points and their intervals are wider. Submit at least {} shots for the full protocol.",
            req.shots,
            proto.delay_points,
            proto.echo_points,
            proto.ramsey_points,
            proto.rb_lengths,
            proto.rb_sequences,
            FULL.circuits(),
            FULL.min_shots()
        ));
    }
    for (name, n) in ["T1", "Ramsey and echo"].into_iter().zip(clipped) {
        if n > 0 {
            warnings.push(format!(
                "{n} of {BOOTSTRAP_RESAMPLES} bootstrap refits of the {name} curves ended on the fit's \
                 search bound: its ci95 is clipped there and understates the uncertainty"
            ));
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
    let rb_seqs: Vec<Value> = circs
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
    let (t1f, co) = (fits.t1, fits.coherence);
    let t1_curve = curve_json(
        &data.t1.0,
        &data.t1.1,
        &pick(Kind::T1),
        data.t1.0.iter().map(|&t| t1f.eval(t)).collect(),
        "p1_observed",
        json!({"a": t1f.a, "tau_us": t1f.tau, "b": t1f.b, "at_bound": t1f.at_bound,
               "model": "P1 = A exp(-t/tau) + B", "fixed": {"b": "p(1|prepared 0) of the readout circuits"}}),
    );
    let coherence_fit = json!({
        "model": "echo P0 = m + A_echo exp(-t/T2); Ramsey P0 = m + A_ramsey exp(-t/T2 - s t^2) cos(2 pi f t), T2 shared",
        "fixed": {"m": "readout midpoint (p(0|prepared 0) + p(0|prepared 1))/2", "ramsey_phase": 0.0},
        "m": co.offset, "a_echo": co.a_echo, "a_ramsey": co.a_ramsey, "t2_us": co.t2,
        "s_per_us2": co.s, "freq_mhz": co.freq, "t2star_us": co.t2star(), "at_bound": co.at_bound,
    });
    let mut ramsey = curve_json(
        &data.ramsey.0,
        &data.ramsey.1,
        &pick(Kind::Ramsey),
        data.ramsey.0.iter().map(|&t| co.ramsey(t)).collect(),
        "p0_observed",
        // tau_us: the envelope's 1/e time, T2*.
        json!({"a": co.a_ramsey, "tau_us": co.t2star(), "b": co.offset, "t2_us": co.t2, "s_per_us2": co.s,
               "freq_mhz": co.freq, "phase": 0.0, "at_bound": co.at_bound,
               "model": "P0 = B + A exp(-t/T2 - s t^2) cos(2 pi f t); tau_us is the envelope's 1/e time"}),
    );
    ramsey["detuning_mhz"] = json!(f_mhz);
    ramsey["envelope_curve"] = json!(data
        .ramsey
        .0
        .iter()
        .map(|&t| co.offset + co.a_ramsey * co.envelope(t))
        .collect::<Vec<f64>>());
    let echo = curve_json(
        &data.echo.0,
        &data.echo.1,
        &pick(Kind::Echo),
        data.echo.0.iter().map(|&t| co.echo(t)).collect(),
        "p0_observed",
        json!({"a": co.a_echo, "tau_us": co.t2, "b": co.offset, "at_bound": co.at_bound,
               "model": "P0 = B + A exp(-t/tau)"}),
    );
    let assignment = data.assignment_fidelity();
    let readout_shots = [
        pick(Kind::Readout { one: false }),
        pick(Kind::Readout { one: true }),
    ]
    .concat();
    let mut artifacts = json!({
        "readout": {
            "p1_given_0": data.p1_given_0(),
            "p0_given_1": data.p0_given_1(),
            "assignment_fidelity": assignment,
            "midpoint_p0": data.midpoint(),
            "shots": readout_shots,
            "repeats": proto.readout_repeats,
            "profile_assignment_fidelity": 1.0 - (noise.readout_p10 + noise.readout_p01) / 2.0,
        },
        "t1": t1_curve,
        "ramsey": ramsey,
        "echo": echo,
        "coherence_fit": coherence_fit,
        "rb": {
            "clifford_group_size": group.len(),
            "lengths": data.rb_lengths,
            "sequences_per_length": proto.rb_sequences,
            "survival_to_0": data.rb_y0,
            "p0_to_1": data.rb_y1,
            "fit_curve_to_0": rb_fit,
            "fit": {"a": fits.rb.a, "p": fits.rb.p, "b": fits.rb.b, "epc": epc,
                    "model": "P0 = B + A p^m (to |0>), B - A p^m (to |1>), shared A, p, B"},
            "epc_implied_by_p1q": noise.p1q,
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
            "echo_points": proto.echo_points,
            "ramsey_points": proto.ramsey_points,
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
            t1f.tau,
            "health_t1_fit_v2",
            "estimate",
            "us",
            spread(r_t1),
        ),
        kpi(
            "t2star_us",
            co.t2star(),
            "health_t2star_fit_v2",
            "estimate",
            "us",
            spread(r_t2s),
        ),
        kpi(
            "t2echo_us",
            co.t2,
            "health_t2echo_fit_v2",
            "estimate",
            "us",
            spread(r_t2e),
        ),
        kpi(
            "readout_assignment_fidelity",
            assignment,
            "readout_assignment_v1",
            "estimate",
            "ratio",
            spread(r_ro),
        ),
    ];
    if let Some(s) = spread(r_freq) {
        artifacts["ramsey"]["freq_mhz_ci95"] = json!(s.ci95);
    }
    let findings = profile_findings(noise, &details);
    let status = health_status(noise, &details);
    artifacts["profile_check"] = json!({
        "status": status,
        "findings": findings.iter().map(|f| &f.1).collect::<Vec<_>>(),
    });
    warnings.extend(findings.into_iter().map(|f| f.1));
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
            status,
            raw_counts: count_map(&pooled, 1),
            expected: dist_map(&expected, 1),
            details,
            measurement: json!({
                "model": "projective_z_with_readout_confusion",
                "basis": "Z",
                "povm": "Z projectors on qubit 0 followed by the confusion matrix [[1-p10, p01], [p10, 1-p01]]",
                "descriptor": format!("{nc} single-qubit circuits: readout assignment, T1, Ramsey, Hahn echo and Clifford RB"),
            }),
            sim_only: if on_engine {
                vec![]
            } else {
                vec!["SIM_ONLY_BACKACTION"]
            },
            artifacts,
            warnings,
            trace: trace(&[
                ("readout", "Readout", "prepare 0 and 1, measure", 0.0),
                ("t1", "T1", "x, delay, measure; delays up to 5 T1", 0.0),
                (
                    "ramsey",
                    "Ramsey",
                    "h, delay, rz(2 pi f delay), h; delays up to 5 T2*",
                    0.0,
                ),
                (
                    "echo",
                    "Hahn echo",
                    "h, delay/2, x, delay/2, h; delays up to 5 T2",
                    0.0,
                ),
                (
                    "rb",
                    "Randomized benchmarking",
                    "Clifford sequences 1..128 with inversion",
                    0.0,
                ),
                (
                    "fit",
                    "Fit",
                    "least squares with offsets fixed by the readout, and a 200-resample bootstrap",
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
    use crate::sim::engine::{Model, Register};
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

    /// Pins health's output (sim_local's 900 shots run a reduced
    /// protocol, the other two the full one): same request and seed, same
    /// bytes. A deliberate change of the physics bumps ENGINE_VERSION and
    /// these digests (retaken for noise model v2 and the v2 health
    /// protocol); so does a change of the text.
    #[test]
    fn full_protocol_output_is_unchanged() {
        for (target, shots, seed, want) in [
            (
                "sim_local",
                900,
                1,
                "7e04c258fee5051aa489bb09a1691b414bf85002b192f536c78e0187d1d625fb",
            ),
            (
                "aws_braket",
                2048,
                99,
                "a7b7e10ef376c472b8b4afb569c275c74a3191ea873e7b95ae07a68a59bf2c49",
            ),
            (
                "rigetti_forest",
                5000,
                7,
                "01df738f4c25c377346b4f110eb587f352311e184defd9079e306187784790ad",
            ),
        ] {
            let o = health(&request(target, shots, seed), &|| false).expect("runs");
            assert_eq!(digest(&o), want, "{target} {shots} {seed}");
        }
    }

    #[test]
    fn budgets_pick_the_largest_protocol_that_fits() {
        assert_eq!(FULL.circuits(), 85);
        assert_eq!(protocol_for(FULL.min_shots()), Some(FULL));
        assert_eq!(protocol_for(200_000), Some(FULL));
        let mut last = FULL.min_shots();
        for p in REDUCED {
            // Strictly smaller, and each keeps every curve's whole span.
            assert!(p.min_shots() < last, "{p:?}");
            last = p.min_shots();
            assert!(p.delay_points >= 4);
            // At least one detuning period per T2*.
            assert!(p.detuning_mhz(1.0) >= 1.0 - 1e-12, "{p:?}");
            assert!(p.rb_lengths.len() >= 3 && p.rb_sequences >= 1);
            assert_eq!(p.rb_lengths.first(), Some(&1));
            assert_eq!(p.rb_lengths.last(), FULL.rb_lengths.last());
            assert_eq!(protocol_for(p.min_shots()), Some(p));
        }
        // Below the smallest protocol's comfortable budget it still runs,
        // down to the floor the old quickstart's 256 shots stay above.
        assert_eq!(last, SMALLEST.min_shots());
        assert_eq!(min_shots(), SMALLEST.circuits() * FLOOR_SHOTS_PER_CIRCUIT);
        assert!(min_shots() <= 256 && min_shots() < last);
        assert_eq!(protocol_for(last - 1), Some(SMALLEST));
        assert_eq!(protocol_for(min_shots()), Some(SMALLEST));
        assert_eq!(protocol_for(min_shots() - 1), None);
        assert_eq!(protocol_for(FULL.min_shots() - 1), Some(REDUCED[0]));
    }

    #[test]
    fn a_small_budget_runs_the_reduced_protocol_and_says_so() {
        let budget = min_shots() + 7;
        let o = health(&request("sim_local", budget, 5), &|| false).expect("runs");
        let proto = REDUCED[REDUCED.len() - 1];
        assert_eq!(o.artifacts["circuits"], proto.circuits());
        assert_eq!(o.artifacts["protocol"]["name"], "reduced");
        assert_eq!(
            o.artifacts["protocol"]["full_protocol_min_shots"],
            FULL.min_shots()
        );
        for (curve, points) in [
            ("t1", proto.delay_points),
            ("echo", proto.echo_points),
            ("ramsey", proto.ramsey_points),
        ] {
            assert_eq!(
                o.artifacts[curve]["delays_us"].as_array().map(Vec::len),
                Some(points),
                "{curve}"
            );
        }
        let per_curve: u64 = ["t1", "ramsey", "echo", "readout"]
            .iter()
            .flat_map(|c| o.artifacts[c]["shots"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_u64())
            .sum();
        let rb: u64 = o.kpis.raw_counts.values().sum();
        assert_eq!(per_curve + rb, budget, "every shot is spent");
        assert!(
            o.warnings
                .iter()
                .any(|w| w.starts_with(&format!("reduced health protocol for a {budget}-shot budget"))),
            "{:?}",
            o.warnings
        );
        for name in [
            "t1_us",
            "t2star_us",
            "t2echo_us",
            "epc",
            "fidelity",
            "readout_assignment_fidelity",
        ] {
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
        let small_budget = min_shots();
        let (small, full) = (median_width(small_budget), median_width(2048));
        assert!(
            small > 1.5 * full,
            "{small_budget} shots: {small}, 2048 shots: {full}"
        );
        let covered = (100..130)
            .filter(|&seed| {
                let o = health(&request("ibm_quantum", small_budget, seed), &|| false).expect("runs");
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
    fn decay_delays_run_from_zero_to_five_times_nominal_dense_in_between() {
        for (points, (from, to)) in [(4, T1_DENSE), (5, ECHO_DENSE), (17, ECHO_DENSE)] {
            let d = decay_delays_ns(100.0, points, (from, to));
            assert_eq!(d.len(), points);
            assert_eq!(d[0], 0.0);
            assert!((d[points - 1] - 500_000.0).abs() < 1e-6);
            // The rest evenly over the dense range.
            let inner = &d[1..points - 1];
            assert!((inner[0] - from * 1e5).abs() < 1e-6 && (inner[inner.len() - 1] - to * 1e5).abs() < 1e-6);
            let step = inner[1] - inner[0];
            assert!(inner.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-6));
        }
    }

    /// Evenly spaced Ramsey delays up to 2.5 T2* with four of them per
    /// detuning period (twice Nyquist), two more out to 5 T2*, and the
    /// phase of each circuit's virtual rz is 2 pi f t.
    #[test]
    fn ramsey_delays_sample_the_detuning_twice_over_nyquist() {
        for proto in std::iter::once(FULL).chain(REDUCED) {
            let d = ramsey_delays_ns(60.0, proto.ramsey_points);
            assert_eq!(d.len(), proto.ramsey_points);
            assert_eq!(d[0], 0.0);
            assert!((d[d.len() - 1] - 300_000.0).abs() < 1e-6);
            let dense = &d[..d.len() - RAMSEY_TAIL];
            assert!((dense[dense.len() - 1] - 150_000.0).abs() < 1e-6);
            assert!((d[d.len() - 2] - 225_000.0).abs() < 1e-6);
            let f_per_ns = proto.detuning_mhz(60.0) / 1e3;
            let step = d[1] - d[0];
            assert!(dense.windows(2).all(|w| (w[1] - w[0] - step).abs() < 1e-6));
            assert!((step * f_per_ns - 0.25).abs() < 1e-12, "{proto:?}");
        }
        assert!((FULL.detuning_mhz(60.0) - 1.8 / 60.0).abs() < 1e-15);
        let r = request("sim_local", 2048, 1);
        let (plan, _) = plan(&r).expect("plan");
        let f = FULL.detuning_mhz(r.plant.noise.t2star_us);
        for c in plan.circs.iter().filter(|c| c.kind == Kind::Ramsey) {
            let want = std::f64::consts::TAU * f * c.x;
            match c.ops.as_slice() {
                [Op::H(0), Op::Rz(0, phi), Op::H(0)] => assert_eq!((c.x, *phi), (0.0, 0.0)),
                [Op::H(0), Op::Delay(0, t), Op::Rz(0, phi), Op::H(0)] => {
                    assert!(
                        (t / 1e3 - c.x).abs() < 1e-9 && (phi - want).abs() < 1e-9,
                        "{:?}",
                        c.ops
                    )
                }
                other => panic!("Ramsey circuit {other:?}"),
            }
        }
    }

    /// Prepare 0 is the empty circuit, prepare 1 a single x; their P(0)
    /// give the assignment fidelity and the offsets the fits hold fixed.
    #[test]
    fn readout_circuits_fix_the_offsets() {
        let r = request("rigetti_forest", 2048, 4);
        let (plan, _) = plan(&r).expect("plan");
        let reps = FULL.readout_repeats;
        let mut p0 = vec![0.5; plan.circs.len()];
        for k in 0..reps {
            assert_eq!(plan.jobs[k].name, format!("readout_prep0_r{k}"));
            assert!(plan.jobs[k].ops.is_empty());
            assert_eq!(plan.jobs[reps + k].name, format!("readout_prep1_r{k}"));
            assert_eq!(plan.jobs[reps + k].ops, vec![Op::X(0)]);
            // Repeats average: 0.95 and 0.07 in the mean.
            let d = if k % 2 == 0 { 0.01 } else { -0.01 };
            p0[k] = 0.95 + d;
            p0[reps + k] = 0.07 - d;
        }
        let c = curves(&plan.circs, &p0, plan.proto.rb_lengths);
        assert!((c.assignment_fidelity() - 0.94).abs() < 1e-12);
        assert!((c.midpoint() - 0.51).abs() < 1e-12);
        let f = fit_all(&c, &r, FULL.detuning_mhz(r.plant.noise.t2star_us), None);
        assert!((f.t1.b - 0.05).abs() < 1e-12 && (f.coherence.offset - 0.51).abs() < 1e-12);
    }

    fn detail(name: &str, value: f64, ci95: [f64; 2]) -> KpiDetail {
        let s = crate::sim::estimators::Spread { ci95, stderr: 0.0 };
        kpi(name, value, "test", "estimate", "ratio", Some(s))
    }

    /// Status follows the fits against the profile; it moves only when the
    /// whole ci95 lies past a threshold.
    #[test]
    fn status_follows_the_fits_against_the_profile() {
        let n = NoiseProfile::builtin("sim_local").expect("builtin");
        let good = vec![
            detail("t1_us", n.t1_us * 0.97, [n.t1_us * 0.9, n.t1_us * 1.05]),
            detail("t2star_us", n.t2star_us, [n.t2star_us * 0.9, n.t2star_us * 1.1]),
            detail("t2echo_us", n.t2_us * 1.02, [n.t2_us * 0.95, n.t2_us * 1.1]),
            detail("epc", n.p1q * 1.1, [n.p1q * 0.5, n.p1q * 1.5]),
            detail("readout_assignment_fidelity", 0.984, [0.98, 0.988]),
        ];
        assert_eq!(health_status(&n, &good), "ok");
        let (t1, t2s, r) = (n.t1_us, n.t2star_us, n.p1q);
        // (which detail replaces good's, its value and ci95, the status)
        let cases = [
            (1, "t2star_us", t2s * 0.8, [t2s * 0.75, t2s * 0.84], "warn"),
            // As low, but the interval reaches past 85%: no finding.
            (1, "t2star_us", t2s * 0.8, [t2s * 0.7, t2s * 0.9], "ok"),
            (1, "t2star_us", t2s * 0.8, [t2s * 0.5, t2s * 1.1], "ok"),
            (0, "t1_us", t1 * 0.4, [t1 * 0.3, t1 * 0.49], "fail"),
            (0, "t1_us", t1 * 0.4, [t1 * 0.3, t1 * 0.6], "warn"),
            (3, "epc", r * 3.0, [r * 2.5, r * 3.5], "warn"),
            (3, "epc", r * 5.0, [r * 4.5, r * 5.5], "fail"),
            (3, "epc", r * 5.0, [0.0, r * 9.0], "ok"),
            // Assignment error 0.04 against the profile's 0.015: over twice.
            (4, "readout_assignment_fidelity", 0.96, [0.955, 0.965], "warn"),
            (4, "readout_assignment_fidelity", 0.9, [0.89, 0.91], "fail"),
        ];
        for (i, name, value, ci95, want) in cases {
            let mut details = good.clone();
            details[i] = detail(name, value, ci95);
            assert_eq!(health_status(&n, &details), want, "{name} {value} {ci95:?}");
        }
    }
}
