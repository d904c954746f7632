//! Density-matrix engine (docs/physics.md "Engine"): a register of up to a few
//! qubits, the gate set, the Kraus channels and the probe instrument.
//! One file, though long: gates, channels, the probe and the register all
//! index into the same density-matrix layout and time model, and splitting
//! them would spread those two conventions over several files.
//!
//! Conventions:
//! - Basis index bit `n-1-q` is qubit `q`, so a bit string printed with the
//!   most significant bit first has qubit 0 leftmost (docs/api.md).
//! - Time is tracked per qubit (critical-path model): a gate starts when all
//!   its qubits are free; a qubit waiting for that moment idles. Idle noise
//!   is applied lazily (when the qubit is next used, or at readout); that is
//!   exact because channels on different qubits commute.
//! - T1 and T2 act all the time: while idle and for every physical gate's
//!   duration. A gate is its unitary, then relaxation for its duration,
//!   then a depolarizing channel whose parameter the noise profile derives
//!   so that the whole gate has the published error (sim/noise.rs).
//! - Quasi-static dephasing: each qubit has a detuning that is constant
//!   within a shot and Gaussian across shots. It turns the qubit's phase
//!   while it evolves freely (idles), not during pulses. A shot-to-shot
//!   average of a unitary that differs per shot is not a channel applied
//!   gate by gate, so it is simulated exactly by running the circuit once
//!   per point of a Gauss-Hermite grid of detunings and averaging the
//!   density matrices ([`Grid`], [`averaged`]).
//! - z, s, sdg, t, tdg and rz are virtual (frame changes): no duration, no
//!   error, and drive_bias does not touch them, as on real control stacks.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use once_cell::sync::Lazy;

use crate::controls::ControlProfile;

use super::noise::NoiseProfile;

/// A complex number; the engine needs only arithmetic, so no crate for it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct C {
    pub re: f64,
    pub im: f64,
}

impl C {
    pub const ZERO: C = C { re: 0.0, im: 0.0 };
    pub const ONE: C = C { re: 1.0, im: 0.0 };

    pub const fn new(re: f64, im: f64) -> C {
        C { re, im }
    }
    pub fn conj(self) -> C {
        C {
            re: self.re,
            im: -self.im,
        }
    }
    pub fn scale(self, k: f64) -> C {
        C {
            re: self.re * k,
            im: self.im * k,
        }
    }
    pub fn norm_sqr(self) -> f64 {
        self.re * self.re + self.im * self.im
    }
    /// e^{i phi}
    pub fn cis(phi: f64) -> C {
        C {
            re: phi.cos(),
            im: phi.sin(),
        }
    }
    /// Principal square root.
    pub fn sqrt(self) -> C {
        let r = self.norm_sqr().sqrt();
        let re = ((r + self.re) / 2.0).max(0.0).sqrt();
        let im = ((r - self.re) / 2.0).max(0.0).sqrt().copysign(self.im);
        C { re, im }
    }
}

impl Add for C {
    type Output = C;
    fn add(self, o: C) -> C {
        C {
            re: self.re + o.re,
            im: self.im + o.im,
        }
    }
}
impl Sub for C {
    type Output = C;
    fn sub(self, o: C) -> C {
        C {
            re: self.re - o.re,
            im: self.im - o.im,
        }
    }
}
impl Mul for C {
    type Output = C;
    fn mul(self, o: C) -> C {
        C {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
}
impl Div for C {
    type Output = C;
    fn div(self, o: C) -> C {
        let d = o.norm_sqr();
        let n = self * o.conj();
        C {
            re: n.re / d,
            im: n.im / d,
        }
    }
}
impl Neg for C {
    type Output = C;
    fn neg(self) -> C {
        C {
            re: -self.re,
            im: -self.im,
        }
    }
}
impl AddAssign for C {
    fn add_assign(&mut self, o: C) {
        self.re += o.re;
        self.im += o.im;
    }
}

/// A single-qubit unitary, row-major.
pub type U2 = [[C; 2]; 2];

#[inline]
pub fn u_mul(a: &U2, b: &U2) -> U2 {
    let mut r = [[C::ZERO; 2]; 2];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    r
}

#[inline]
pub fn u_dagger(a: &U2) -> U2 {
    [[a[0][0].conj(), a[1][0].conj()], [a[0][1].conj(), a[1][1].conj()]]
}

/// Rotation by `theta` about the unit Bloch axis `n`: exp(-i theta/2 n.sigma).
pub fn rotation(n: [f64; 3], theta: f64) -> U2 {
    let (c, s) = ((theta / 2.0).cos(), (theta / 2.0).sin());
    [
        [C::new(c, -s * n[2]), C::new(-s * n[1], -s * n[0])],
        [C::new(s * n[1], -s * n[0]), C::new(c, s * n[2])],
    ]
}

pub fn rx(theta: f64) -> U2 {
    rotation([1.0, 0.0, 0.0], theta)
}
pub fn ry(theta: f64) -> U2 {
    rotation([0.0, 1.0, 0.0], theta)
}
pub fn phase(phi: f64) -> U2 {
    [[C::ONE, C::ZERO], [C::ZERO, C::cis(phi)]]
}
pub fn hadamard() -> U2 {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    [
        [C::new(h, 0.0), C::new(h, 0.0)],
        [C::new(h, 0.0), C::new(-h, 0.0)],
    ]
}

/// Axis and angle of a unitary (global phase dropped): U ~ exp(-i theta/2 n.sigma)
/// with theta in [0, pi]. Used to apply drive_bias to a compiled
/// Clifford pulse, which over-rotates about its own axis.
pub fn axis_angle(u: &U2) -> ([f64; 3], f64) {
    let det = u[0][0] * u[1][1] - u[0][1] * u[1][0];
    let k = det.sqrt();
    let mut a = u[0][0] / k;
    let mut b = u[0][1] / k;
    if a.re < 0.0 {
        // -U is the same physical operation; pick the branch with cos >= 0.
        a = -a;
        b = -b;
    }
    let v = [-b.im, -b.re, -a.im];
    let s = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if s < 1e-12 {
        return ([0.0, 0.0, 1.0], 0.0);
    }
    ([v[0] / s, v[1] / s, v[2] / s], 2.0 * s.atan2(a.re))
}

/// The circuit instructions. Drive angles here are the calibrated ones;
/// the register applies drive_bias when it executes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    X(usize),
    Y(usize),
    Z(usize),
    H(usize),
    S(usize),
    Sdg(usize),
    T(usize),
    Tdg(usize),
    Rx(usize, f64),
    Ry(usize, f64),
    Rz(usize, f64),
    Cx(usize, usize),
    Cz(usize, usize),
    Swap(usize, usize),
    /// Idle for the given nanoseconds.
    Delay(usize, f64),
    /// One calibrated physical pulse implementing this unitary (RB Cliffords).
    Pulse(usize, U2),
    /// Ideal, instantaneous reset to |0> once the qubit is free.
    Reset(usize),
    /// Scheduling barrier: the listed qubits wait for the latest of them,
    /// idling as they wait.
    Barrier(Vec<usize>),
}

/// The physical model a register runs under, resolved from a noise profile
/// and the control profile in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub t1_ns: f64,
    /// The Markovian coherence time (what an echo measures).
    pub t2_ns: f64,
    /// Standard deviation of each qubit's quasi-static detuning, rad/ns.
    pub sigma_rad_per_ns: f64,
    /// Depolarizing parameter after a single-qubit gate (derived from the
    /// published error, see [`NoiseProfile::depolarizing_1q`]).
    pub dep_1q: f64,
    /// Depolarizing parameter after a two-qubit gate.
    pub dep_2q: f64,
    /// Residual excited population: the initial state and the fixed point of
    /// relaxation (generalized amplitude damping).
    pub p_excited: f64,
    pub readout_p10: f64,
    pub readout_p01: f64,
    pub gate_1q_ns: f64,
    pub gate_2q_ns: f64,
    pub readout_ns: f64,
    pub drive_bias: f64,
}

/// Residual excited population with the thermal guard on / off (docs/physics.md).
pub const P_EXCITED_GUARD_ON: f64 = 0.002;
pub const P_EXCITED_GUARD_OFF: f64 = 0.02;
/// Extra readout error on both confusion entries with the guard off.
pub const READOUT_PENALTY_GUARD_OFF: f64 = 0.01;

impl Model {
    pub fn new(noise: &NoiseProfile, controls: &ControlProfile) -> Model {
        let guard = controls.thermal_guard_enabled;
        let extra = if guard { 0.0 } else { READOUT_PENALTY_GUARD_OFF };
        Model {
            t1_ns: noise.t1_us * 1e3,
            t2_ns: noise.t2_us * 1e3,
            sigma_rad_per_ns: noise.detuning_sigma_rad_per_ns(),
            dep_1q: noise.depolarizing_1q(),
            dep_2q: noise.depolarizing_2q(),
            p_excited: if guard {
                P_EXCITED_GUARD_ON
            } else {
                P_EXCITED_GUARD_OFF
            },
            readout_p10: (noise.readout_p10 + extra).min(1.0),
            readout_p01: (noise.readout_p01 + extra).min(1.0),
            gate_1q_ns: noise.gate_1q_ns,
            gate_2q_ns: noise.gate_2q_ns,
            readout_ns: noise.readout_ns,
            drive_bias: controls.drive_bias,
        }
    }

    /// The noise-free, calibrated (drive_bias 1) model with the same
    /// durations: what the ideal reference distribution q is computed on.
    pub fn ideal(&self) -> Model {
        Model {
            t1_ns: f64::INFINITY,
            t2_ns: f64::INFINITY,
            sigma_rad_per_ns: 0.0,
            dep_1q: 0.0,
            dep_2q: 0.0,
            p_excited: 0.0,
            readout_p10: 0.0,
            readout_p01: 0.0,
            drive_bias: 1.0,
            ..self.clone()
        }
    }

    /// Markovian relaxation for `t_ns`: generalized amplitude damping with
    /// gamma = 1 - exp(-t/T1) towards the residual excited population,
    /// and pure dephasing with lambda = exp(-t/T_phi),
    /// 1/T_phi = 1/T2 - 1/(2 T1), so coherences decay as exp(-t/T2).
    fn relaxation(&self, t_ns: f64) -> Relax {
        let gamma = 1.0 - (-t_ns / self.t1_ns).exp();
        let lambda = (-t_ns * (1.0 / self.t2_ns - 0.5 / self.t1_ns).max(0.0)).exp();
        Relax {
            gamma,
            coh: (1.0 - gamma).sqrt() * lambda,
            p_excited: self.p_excited,
        }
    }
}

/// One qubit's relaxation over some time: how much population decays
/// (towards `p_excited`) and the factor left on its coherences.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Relax {
    gamma: f64,
    coh: f64,
    p_excited: f64,
}

impl Relax {
    fn is_identity(&self) -> bool {
        self.gamma <= 0.0 && self.coh >= 1.0
    }

    /// The channel on one 2x2 block [00, 01, 10, 11]; `turn` is the phase
    /// e^{i phi} a detuning adds over the same time (ONE for none):
    /// diag(1, e^{i phi}) rho diag(1, e^{-i phi}).
    #[inline(always)]
    fn block(&self, turn: C, b: [C; 4]) -> [C; 4] {
        let (g, pe) = (self.gamma, self.p_excited);
        let p00 = b[0].scale(1.0 - pe * g) + b[3].scale((1.0 - pe) * g);
        let p11 = b[3].scale(1.0 - (1.0 - pe) * g) + b[0].scale(pe * g);
        [
            p00,
            (b[1] * turn.conj()).scale(self.coh),
            (b[2] * turn).scale(self.coh),
            p11,
        ]
    }
}

/// A noisy register: density matrix plus each qubit's clock.
#[derive(Clone, Debug)]
pub struct Register {
    n: usize,
    dim: usize,
    rho: Vec<C>,
    clock_ns: Vec<f64>,
    model: Model,
    /// Each qubit's detuning in this shot, rad/ns (one point of a [`Grid`]).
    detuning: Vec<f64>,
}

impl Register {
    /// `n` qubits, each in diag(1 - p_excited, p_excited).
    pub fn new(n: usize, model: Model) -> Register {
        Register::with_detuning(n, model, vec![0.0; n])
    }

    /// `n` qubits whose free evolution turns at `detuning` (rad/ns per qubit).
    pub fn with_detuning(n: usize, model: Model, detuning: Vec<f64>) -> Register {
        let dim = 1usize << n;
        let mut rho = vec![C::ZERO; dim * dim];
        let pe = model.p_excited;
        for i in 0..dim {
            let ones = i.count_ones() as i32;
            let p = pe.powi(ones) * (1.0 - pe).powi(n as i32 - ones);
            rho[i * dim + i] = C::new(p, 0.0);
        }
        Register {
            n,
            dim,
            rho,
            clock_ns: vec![0.0; n],
            model,
            detuning,
        }
    }

    pub fn qubits(&self) -> usize {
        self.n
    }
    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn rho(&self) -> &[C] {
        &self.rho
    }

    fn mask(&self, q: usize) -> usize {
        1 << (self.n - 1 - q)
    }

    /// Apply `f` to every 2x2 block of qubit `q` ([00, 01, 10, 11] in the
    /// qubit's row/column bits). Any single-qubit linear map is one of these.
    /// One pass, in place: rows come in bands of 2m rows whose first m have
    /// the qubit's bit clear, and within a row columns come the same way, so
    /// the four entries of a block are walked as four slices side by side.
    #[inline(always)]
    fn map_blocks(&mut self, q: usize, mut f: impl FnMut([C; 4]) -> [C; 4]) {
        let (m, d) = (self.mask(q), self.dim);
        for band in self.rho.chunks_exact_mut(2 * m * d) {
            let (top, bottom) = band.split_at_mut(m * d);
            for (row0, row1) in top.chunks_exact_mut(d).zip(bottom.chunks_exact_mut(d)) {
                for (c0, c1) in row0.chunks_exact_mut(2 * m).zip(row1.chunks_exact_mut(2 * m)) {
                    let (b00, b01) = c0.split_at_mut(m);
                    let (b10, b11) = c1.split_at_mut(m);
                    let blocks = b00
                        .iter_mut()
                        .zip(b01.iter_mut())
                        .zip(b10.iter_mut())
                        .zip(b11.iter_mut());
                    for (((e00, e01), e10), e11) in blocks {
                        [*e00, *e01, *e10, *e11] = f([*e00, *e01, *e10, *e11]);
                    }
                }
            }
        }
    }

    /// rho -> U rho U^dagger on qubit q (exact, no noise, no time).
    pub fn unitary_1q(&mut self, q: usize, u: &U2) {
        let ud = u_dagger(u);
        self.map_blocks(q, |b| conjugate_block(u, &ud, b));
    }

    /// Depolarizing channel rho -> (1-p) rho + p I/2 (x) Tr_q rho.
    pub fn depolarize_1q(&mut self, q: usize, p: f64) {
        if p <= 0.0 {
            return;
        }
        self.map_blocks(q, |b| depolarize_block(p, b));
    }

    /// Two-qubit depolarizing rho -> (1-p) rho + p I/4 (x) Tr_ab rho.
    pub fn depolarize_2q(&mut self, a: usize, b: usize, p: f64) {
        if p <= 0.0 {
            return;
        }
        let identity = Pair::new(a < b, |x, y| (x, y, 1.0));
        self.map_blocks_2q(a, b, |blk| identity.depolarize(blk, p));
    }

    /// Apply `f` to every 4x4 block of qubits `a`, `b`: the entries whose
    /// row and column indices differ from a base index (both bits clear)
    /// only in those two bits. Any two-qubit linear map is one of these.
    /// Within a block, local index t has bit 1 = the higher of the two
    /// masks and bit 0 = the lower one (see [`Pair`]).
    /// `a == b` names no pair and leaves the state alone (the circuit
    /// parser refuses a gate repeating a qubit).
    #[inline(always)]
    fn map_blocks_2q(&mut self, a: usize, b: usize, mut f: impl FnMut(&mut [[C; 4]; 4])) {
        debug_assert_ne!(a, b, "a two-qubit gate needs two qubits");
        if a == b {
            return;
        }
        let d = self.dim;
        let (lo, hi) = {
            let (ma, mb) = (self.mask(a), self.mask(b));
            (ma.min(mb), ma.max(mb))
        };
        let offs = [0, lo, hi, hi + lo];
        // Base indices (both bits clear): bands of 2*hi, within them runs of
        // lo after every 2*lo.
        let bases = move || {
            (0..d)
                .step_by(2 * hi)
                .flat_map(move |h| (h..h + hi).step_by(2 * lo))
                .flat_map(move |l| l..l + lo)
        };
        for i0 in bases() {
            let span = &mut self.rho[i0 * d..(i0 + hi + lo + 1) * d];
            let (s0, rest) = span.split_at_mut(lo * d);
            let (s1, rest) = rest.split_at_mut((hi - lo) * d);
            let (s2, s3) = rest.split_at_mut(lo * d);
            let mut rows: [&mut [C]; 4] = [&mut s0[..d], &mut s1[..d], &mut s2[..d], &mut s3[..d]];
            for j0 in bases() {
                let mut blk = [[C::ZERO; 4]; 4];
                for (r, row) in blk.iter_mut().zip(rows.iter()) {
                    for (v, o) in r.iter_mut().zip(offs) {
                        *v = row[j0 + o];
                    }
                }
                f(&mut blk);
                for (r, row) in blk.iter().zip(rows.iter_mut()) {
                    for (v, o) in r.iter().zip(offs) {
                        row[j0 + o] = *v;
                    }
                }
            }
        }
    }

    /// Idle qubit q for `t_ns`: Markovian relaxation (generalized amplitude
    /// damping and pure dephasing, [`Model::relaxation`]) and the turn of
    /// the qubit's detuning, diag(1, e^{i delta t}). The two commute.
    pub fn idle(&mut self, q: usize, t_ns: f64) {
        if t_ns <= 0.0 {
            return;
        }
        let relax = self.model.relaxation(t_ns);
        let phi = self.detuning[q] * t_ns;
        if relax.is_identity() && phi == 0.0 {
            return;
        }
        let turn = C::cis(phi);
        self.map_blocks(q, |b| relax.block(turn, b));
    }

    /// rho -> |0><0| (x) Tr_q rho: the qubit's populations move to |0> and
    /// its coherences with the rest vanish.
    pub fn reset(&mut self, q: usize) {
        self.map_blocks(q, |b| [b[0] + b[3], C::ZERO, C::ZERO, C::ZERO]);
    }

    /// Bring qubits to a common start time, idling the early ones.
    fn sync(&mut self, qs: &[usize]) -> f64 {
        let start = qs.iter().map(|&q| self.clock_ns[q]).fold(0.0, f64::max);
        for &q in qs {
            let wait = start - self.clock_ns[q];
            self.idle(q, wait);
            self.clock_ns[q] = start;
        }
        start
    }

    /// A physical single-qubit pulse: waits, rotates, relaxes for the
    /// gate's duration, depolarizes; `frame` is a virtual gate applied just
    /// before (h's Z). A single qubit never waits for itself, so the frame
    /// change, rotation, relaxation and depolarizing are one pass over the
    /// matrix, each block going through them in order.
    fn pulse(&mut self, q: usize, frame: Option<&U2>, u: &U2) {
        let start = self.sync(&[q]);
        let frame = frame.map(|f| (*f, u_dagger(f)));
        let (ud, p) = (u_dagger(u), self.model.dep_1q);
        let relax = self.model.relaxation(self.model.gate_1q_ns);
        let relax = (!relax.is_identity()).then_some(relax);
        self.map_blocks(q, |b| {
            let b = match &frame {
                Some((f, fd)) => conjugate_block(f, fd, b),
                None => b,
            };
            let b = conjugate_block(u, &ud, b);
            let b = match &relax {
                Some(r) => r.block(C::ONE, b),
                None => b,
            };
            if p > 0.0 {
                depolarize_block(p, b)
            } else {
                b
            }
        });
        self.clock_ns[q] = start + self.model.gate_1q_ns;
    }

    /// A drive rotation about `axis` by the calibrated angle `theta`; the
    /// hardware turns it by drive_bias * theta.
    fn drive(&mut self, q: usize, frame: Option<&U2>, axis: [f64; 3], theta: f64) {
        let u = rotation(axis, theta * self.model.drive_bias);
        self.pulse(q, frame, &u);
    }

    /// A two-qubit gate that permutes basis states up to a sign (cx, cz,
    /// swap), relaxation of both qubits for its duration, then its
    /// depolarizing, in one pass over the 4x4 blocks.
    fn permute_2q(&mut self, a: usize, b: usize, gate: Pair) {
        let start = self.sync(&[a, b]);
        let p = self.model.dep_2q;
        let relax = self.model.relaxation(self.model.gate_2q_ns);
        let relax = (!relax.is_identity()).then_some(relax);
        self.map_blocks_2q(a, b, |blk| {
            gate.permute(blk);
            if let Some(r) = &relax {
                relax_in_block(blk, 1, r);
                relax_in_block(blk, 2, r);
            }
            if p > 0.0 {
                gate.depolarize(blk, p);
            }
        });
        self.clock_ns[a] = start + self.model.gate_2q_ns;
        self.clock_ns[b] = start + self.model.gate_2q_ns;
    }

    pub fn apply(&mut self, op: &Op) {
        use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};
        const XA: [f64; 3] = [1.0, 0.0, 0.0];
        const YA: [f64; 3] = [0.0, 1.0, 0.0];
        match *op {
            Op::X(q) => self.drive(q, None, XA, PI),
            Op::Y(q) => self.drive(q, None, YA, PI),
            // H = ry(pi/2) . Z exactly: a virtual Z then a (biased) pi/2 drive.
            Op::H(q) => self.drive(q, Some(&phase(PI)), YA, FRAC_PI_2),
            Op::Rx(q, th) => self.drive(q, None, XA, th),
            Op::Ry(q, th) => self.drive(q, None, YA, th),
            Op::Z(q) => self.unitary_1q(q, &phase(PI)),
            Op::S(q) => self.unitary_1q(q, &phase(FRAC_PI_2)),
            Op::Sdg(q) => self.unitary_1q(q, &phase(-FRAC_PI_2)),
            Op::T(q) => self.unitary_1q(q, &phase(FRAC_PI_4)),
            Op::Tdg(q) => self.unitary_1q(q, &phase(-FRAC_PI_4)),
            Op::Rz(q, th) => self.unitary_1q(q, &phase(th)),
            Op::Cx(c, t) => {
                let gate = Pair::new(c < t, |c_bit, t_bit| (c_bit, t_bit ^ c_bit, 1.0));
                self.permute_2q(c, t, gate);
            }
            Op::Cz(a, b) => {
                let gate = Pair::new(a < b, |x, y| (x, y, if x && y { -1.0 } else { 1.0 }));
                self.permute_2q(a, b, gate);
            }
            Op::Swap(a, b) => {
                let gate = Pair::new(a < b, |x, y| (y, x, 1.0));
                self.permute_2q(a, b, gate);
            }
            Op::Delay(q, ns) => {
                let start = self.sync(&[q]);
                self.idle(q, ns);
                self.clock_ns[q] = start + ns.max(0.0);
            }
            Op::Pulse(q, ref u) => {
                if self.model.drive_bias == 1.0 {
                    self.pulse(q, None, u);
                } else {
                    let (axis, th) = axis_angle(u);
                    self.drive(q, None, axis, th);
                }
            }
            Op::Reset(q) => {
                self.sync(&[q]);
                self.reset(q);
            }
            Op::Barrier(ref qs) => {
                self.sync(qs);
            }
        }
    }

    pub fn run(&mut self, ops: &[Op]) {
        for op in ops {
            self.apply(op);
        }
    }

    /// Idle every qubit up to the latest clock (the readout starts together).
    pub fn sync_all(&mut self) -> f64 {
        let all: Vec<usize> = (0..self.n).collect();
        self.sync(&all)
    }

    /// Modeled plant time of one shot so far plus readout, in ns.
    pub fn shot_time_ns(&self) -> f64 {
        self.duration_ns() + self.model.readout_ns
    }

    pub fn trace(&self) -> f64 {
        (0..self.dim).map(|i| self.rho[i * self.dim + i].re).sum()
    }

    /// Z-basis populations before readout (unnormalized for an instrument branch).
    pub fn populations(&self) -> Vec<f64> {
        (0..self.dim)
            .map(|i| self.rho[i * self.dim + i].re.max(0.0))
            .collect()
    }

    /// Outcome distribution after the readout confusion matrix of each qubit.
    pub fn readout_distribution(&self) -> Vec<f64> {
        let mut p = self.populations();
        let (e10, e01) = (self.model.readout_p10, self.model.readout_p01);
        for q in 0..self.n {
            let m = self.mask(q);
            for i in (0..self.dim).filter(|i| i & m == 0) {
                let (p0, p1) = (p[i], p[i | m]);
                p[i] = (1.0 - e10) * p0 + e01 * p1;
                p[i | m] = e10 * p0 + (1.0 - e01) * p1;
            }
        }
        p
    }

    /// Tr(sigma rho): the state fidelity against a pure reference sigma = |psi><psi|.
    pub fn overlap(&self, sigma: &Register) -> f64 {
        let d = self.dim;
        let mut s = 0.0;
        for i in 0..d {
            for j in 0..d {
                s += (sigma.rho[i * d + j] * self.rho[j * d + i]).re;
            }
        }
        s
    }

    /// Probe instrument branch k (0 or 1) on qubit q: M_k rho M_k^dagger.
    pub fn probe_branch(&self, q: usize, kappa: f64, k: usize) -> Register {
        let lo = ((1.0 - kappa) / 2.0).max(0.0).sqrt();
        let hi = ((1.0 + kappa) / 2.0).sqrt();
        let m = if k == 0 { [hi, lo] } else { [lo, hi] };
        let mut out = self.clone();
        out.map_blocks(q, |b| {
            [
                b[0].scale(m[0] * m[0]),
                b[1].scale(m[0] * m[1]),
                b[2].scale(m[1] * m[0]),
                b[3].scale(m[1] * m[1]),
            ]
        });
        out
    }

    /// Weak Z measurement of qubit q: waits for the qubit, applies the
    /// instrument and idles it for the window. Returns the two unnormalized
    /// branches (their traces are the outcome probabilities).
    pub fn probe(&mut self, q: usize, kappa: f64, window_ns: f64) -> [Register; 2] {
        self.sync(&[q]);
        [0, 1].map(|k| {
            let mut b = self.probe_branch(q, kappa, k);
            b.apply(&Op::Delay(q, window_ns));
            b
        })
    }

    /// backaction_trace_v1: (1/2) || rho - sum_k M_k rho M_k^dagger ||_1 on
    /// this (the met) state.
    pub fn probe_backaction(&self, q: usize, kappa: f64) -> f64 {
        let (b0, b1) = (self.probe_branch(q, kappa, 0), self.probe_branch(q, kappa, 1));
        let diff: Vec<C> = (0..self.rho.len())
            .map(|i| self.rho[i] - b0.rho[i] - b1.rho[i])
            .collect();
        0.5 * trace_norm(&diff, self.dim)
    }

    /// Sum of two instrument branches (the unconditional state).
    pub fn add(&mut self, other: &Register) {
        self.add_scaled(other, 1.0);
    }

    /// This state with rho multiplied by `w` (a grid point's share of an
    /// average).
    pub fn scaled(mut self, w: f64) -> Register {
        self.rho.iter_mut().for_each(|v| *v = v.scale(w));
        self
    }

    /// rho += w rho_other (a grid point's share of the average).
    pub fn add_scaled(&mut self, other: &Register, w: f64) {
        for (a, b) in self.rho.iter_mut().zip(&other.rho) {
            *a += b.scale(w);
        }
    }

    /// The latest qubit clock: when a readout started now would begin.
    pub fn duration_ns(&self) -> f64 {
        self.clock_ns.iter().copied().fold(0.0, f64::max)
    }
}

/// The one-qubit channel of `r` on the qubit whose bit in the local index of
/// a 4x4 block (see [`Register::map_blocks_2q`]) is `bit` (1 or 2).
#[inline(always)]
fn relax_in_block(blk: &mut [[C; 4]; 4], bit: usize, r: &Relax) {
    for row in (0..4).filter(|t| t & bit == 0) {
        for col in (0..4).filter(|u| u & bit == 0) {
            let [e00, e01, e10, e11] = r.block(
                C::ONE,
                [
                    blk[row][col],
                    blk[row][col | bit],
                    blk[row | bit][col],
                    blk[row | bit][col | bit],
                ],
            );
            blk[row][col] = e00;
            blk[row][col | bit] = e01;
            blk[row | bit][col] = e10;
            blk[row | bit][col | bit] = e11;
        }
    }
}

/// Most Gauss-Hermite nodes per qubit: enough for a coherence that has
/// decayed to nothing, far past where any protocol measures.
pub const MAX_NODES: usize = 32;
/// A grid of K^n points on n qubits is run only while K^n 4^n stays within
/// this (a bound on the work of averaging, 4^n being a density matrix's
/// size): every point of a single-qubit circuit, a coarser grid on a few
/// qubits, and one point (no quasi-static dephasing) from nine qubits up.
pub const GRID_WORK: u64 = 1 << 16;
/// How far the K-node average of e^{i delta T} may sit from the Gaussian's
/// exp(-sigma^2 T^2 / 2) when the grid is not capped.
pub const QUADRATURE_TOLERANCE: f64 = 1e-10;

/// Gauss-Hermite rules for 1..=MAX_NODES nodes (weight e^{-x^2}), with the
/// weights divided by sqrt(pi) so they sum to 1: (node, weight) pairs.
static RULES: Lazy<Vec<Vec<(f64, f64)>>> = Lazy::new(|| (1..=MAX_NODES).map(gauss_hermite).collect());

/// Nodes and normalized weights of the k-point Gauss-Hermite rule: the
/// roots of the Hermite polynomial by Newton's method on its normalized
/// recurrence (stable for any k here), weights 2 / H'_k(x)^2 likewise.
fn gauss_hermite(k: usize) -> Vec<(f64, f64)> {
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let n = k as f64;
    let mut x = vec![0.0; k];
    let mut w = vec![0.0; k];
    let mut z = 0.0f64;
    for i in 0..k.div_ceil(2) {
        z = match i {
            0 => (2.0 * n + 1.0).sqrt() - 1.85575 * (2.0 * n + 1.0).powf(-1.0 / 6.0),
            1 => z - 1.14 * n.powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 1.0;
        for _ in 0..100 {
            let (mut p1, mut p2) = (pim4, 0.0);
            for j in 0..k {
                let p3 = p2;
                p2 = p1;
                let j = j as f64;
                p1 = z * (2.0 / (j + 1.0)).sqrt() * p2 - (j / (j + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * n).sqrt() * p2;
            let step = p1 / pp;
            z -= step;
            if step.abs() <= 1e-15 * z.abs().max(1.0) {
                break;
            }
        }
        x[i] = z;
        x[k - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[k - 1 - i] = w[i];
    }
    let norm = std::f64::consts::PI.sqrt();
    x.into_iter().zip(w).map(|(x, w)| (x, w / norm)).collect()
}

/// |K-node average of cos(sqrt(2) a x) - exp(-a^2/2)|: how far the rule
/// is from the Gaussian average of e^{i delta T} for a = sigma T.
fn rule_error(k: usize, a: f64) -> f64 {
    let avg: f64 = RULES[k - 1]
        .iter()
        .map(|&(x, w)| w * (std::f64::consts::SQRT_2 * a * x).cos())
        .sum();
    (avg - (-a * a / 2.0).exp()).abs()
}

/// The points at which a circuit's quasi-static detuning is sampled, and
/// their weights: K Gauss-Hermite nodes per qubit, delta = sqrt(2) sigma x,
/// the product grid over the qubits (docs/physics.md "Quasi-static
/// dephasing"). K is the fewest nodes that average e^{i delta T} over the
/// Gaussian to QUADRATURE_TOLERANCE for the circuit's duration T, capped by
/// GRID_WORK; `error` says how far the chosen K is from that average.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub nodes: usize,
    pub error: f64,
    points: Vec<(Vec<f64>, f64)>,
}

impl Grid {
    pub fn new(model: &Model, n: usize, duration_ns: f64) -> Grid {
        let a = model.sigma_rad_per_ns * duration_ns;
        if a.is_nan() || a <= 0.0 || n == 0 {
            return Grid {
                nodes: 1,
                error: 0.0,
                points: vec![(vec![0.0; n], 1.0)],
            };
        }
        let need = (1..=MAX_NODES)
            .find(|&k| rule_error(k, a) <= QUADRATURE_TOLERANCE)
            .unwrap_or(MAX_NODES);
        let cap = (1..=MAX_NODES)
            .take_while(|&k| {
                (k as u64 * 4)
                    .checked_pow(n as u32)
                    .is_some_and(|work| work <= GRID_WORK)
            })
            .last()
            .unwrap_or(1);
        let k = need.min(cap);
        let rule = &RULES[k - 1];
        let scale = std::f64::consts::SQRT_2 * model.sigma_rad_per_ns;
        // Mixed-radix count over n digits in 0..k: every combination once.
        let mut points = Vec::with_capacity(k.pow(n as u32));
        let mut digits = vec![0usize; n];
        loop {
            let detuning = digits.iter().map(|&d| scale * rule[d].0).collect();
            let weight = digits.iter().map(|&d| rule[d].1).product();
            points.push((detuning, weight));
            let Some(q) = digits.iter().rposition(|&d| d + 1 < k) else {
                break;
            };
            digits[q] += 1;
            digits[q + 1..].iter_mut().for_each(|d| *d = 0);
        }
        // An endless free evolution (a = inf) leaves no rule accurate.
        let error = rule_error(k, a);
        Grid {
            nodes: k,
            error: if error.is_finite() { error } else { 1.0 },
            points,
        }
    }

    /// (per-qubit detuning in rad/ns, weight) of every point; weights sum to 1.
    pub fn points(&self) -> &[(Vec<f64>, f64)] {
        &self.points
    }
}

/// The shot-averaged state: `run` executes a circuit on a fresh register of
/// `n` qubits under `model` once per point of `grid`, and the states are
/// averaged with the points' weights.
pub fn averaged(n: usize, model: &Model, grid: &Grid, run: impl Fn(&mut Register)) -> Register {
    let mut total: Option<Register> = None;
    for (detuning, w) in grid.points() {
        let mut r = Register::with_detuning(n, model.clone(), detuning.clone());
        run(&mut r);
        match &mut total {
            None => total = Some(r.scaled(*w)),
            Some(t) => t.add_scaled(&r, *w),
        }
    }
    total.unwrap_or_else(|| Register::new(n, model.clone()))
}

/// U B U^dagger of one 2x2 block [00, 01, 10, 11].
#[inline(always)]
fn conjugate_block(u: &U2, ud: &U2, b: [C; 4]) -> [C; 4] {
    let blk = [[b[0], b[1]], [b[2], b[3]]];
    let r = u_mul(&u_mul(u, &blk), ud);
    [r[0][0], r[0][1], r[1][0], r[1][1]]
}

/// (1-p) B + p I/2 Tr B of one 2x2 block.
#[inline(always)]
fn depolarize_block(p: f64, b: [C; 4]) -> [C; 4] {
    let avg = (b[0] + b[3]).scale(0.5 * p);
    [
        b[0].scale(1.0 - p) + avg,
        b[1].scale(1.0 - p),
        b[2].scale(1.0 - p),
        b[3].scale(1.0 - p) + avg,
    ]
}

/// A signed permutation of the four basis states of a qubit pair, in the
/// local indexing of [`Register::map_blocks_2q`] (bit 1 = the pair's lower
/// qubit number, whose mask is the higher one).
#[derive(Clone, Copy, Debug)]
struct Pair {
    /// New local state t takes the amplitude of `from[t]`, times `sign[t]`.
    from: [usize; 4],
    sign: [f64; 4],
    /// Local indices of |a b> = 00, 01, 10, 11: the order in which the
    /// depolarizing trace sums the block diagonal.
    order: [usize; 4],
}

impl Pair {
    /// `f(a_bit, b_bit) -> (a_bit', b_bit', sign)` gives, for each new
    /// state, the old state it takes its amplitude from; `a_first` says
    /// whether qubit a has the lower number (so the higher mask).
    fn new(a_first: bool, f: impl Fn(bool, bool) -> (bool, bool, f64)) -> Pair {
        // Local index of the state with these bits of a and b.
        let local = |x: bool, y: bool| {
            let (hi, lo) = if a_first { (x, y) } else { (y, x) };
            usize::from(hi) << 1 | usize::from(lo)
        };
        let mut from = [0; 4];
        let mut sign = [1.0; 4];
        for x in [false, true] {
            for y in [false, true] {
                let (fx, fy, s) = f(x, y);
                from[local(x, y)] = local(fx, fy);
                sign[local(x, y)] = s;
            }
        }
        Pair {
            from,
            sign,
            order: [0, local(false, true), local(true, false), 3],
        }
    }

    /// B -> P B P^T with the signs: entry (t, u) takes (from[t], from[u]).
    #[inline(always)]
    fn permute(&self, blk: &mut [[C; 4]; 4]) {
        let old = *blk;
        for (t, row) in blk.iter_mut().enumerate() {
            for (u, v) in row.iter_mut().enumerate() {
                *v = old[self.from[t]][self.from[u]].scale(self.sign[t] * self.sign[u]);
            }
        }
    }

    /// (1-p) B + p I/4 Tr B of one 4x4 block.
    #[inline(always)]
    fn depolarize(&self, blk: &mut [[C; 4]; 4], p: f64) {
        let mut tr = C::ZERO;
        for t in self.order {
            tr += blk[t][t];
        }
        let add = tr.scale(p / 4.0);
        for (t, row) in blk.iter_mut().enumerate() {
            for (u, v) in row.iter_mut().enumerate() {
                *v = v.scale(1.0 - p);
                if t == u {
                    *v += add;
                }
            }
        }
    }
}

/// Eigenvalues of a Hermitian matrix (row-major, dim x dim), ascending.
/// Uses the real symmetric embedding [[Re, -Im], [Im, Re]], whose spectrum is
/// the Hermitian one with every eigenvalue doubled, and cyclic Jacobi
/// rotations (robust and plenty fast for dim <= 8).
pub fn hermitian_eigenvalues(h: &[C], dim: usize) -> Vec<f64> {
    let n = 2 * dim;
    let mut a = vec![0.0; n * n];
    for i in 0..dim {
        for j in 0..dim {
            let v = h[i * dim + j];
            a[i * n + j] = v.re;
            a[(i + dim) * n + (j + dim)] = v.re;
            a[i * n + (j + dim)] = -v.im;
            a[(i + dim) * n + j] = v.im;
        }
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    ev.sort_by(f64::total_cmp);
    ev.into_iter().step_by(2).collect()
}

/// Trace norm ||H||_1 = sum |eigenvalue| of a Hermitian matrix.
pub fn trace_norm(h: &[C], dim: usize) -> f64 {
    hermitian_eigenvalues(h, dim).iter().map(|v| v.abs()).sum()
}

/// Bit string of a basis index, qubit 0 leftmost.
pub fn bitstring(index: usize, n: usize) -> String {
    (0..n)
        .map(|q| if index >> (n - 1 - q) & 1 == 1 { '1' } else { '0' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::estimators::{rng_for, SimRng};

    fn model() -> Model {
        let noise = NoiseProfile::builtin("sim_local").expect("builtin");
        Model::new(&noise, &ControlProfile::default())
    }

    /// The engine's first, straightforward kernels (full-matrix filters and
    /// clones), kept as the reference the in-place kernels must match.
    mod reference {
        use super::super::*;

        fn map_blocks(r: &mut Register, q: usize, f: impl Fn([C; 4]) -> [C; 4]) {
            let (m, d) = (r.mask(q), r.dim);
            for i in (0..d).filter(|i| i & m == 0) {
                for j in (0..d).filter(|j| j & m == 0) {
                    let idx = [i * d + j, i * d + (j | m), (i | m) * d + j, (i | m) * d + (j | m)];
                    let out = f([r.rho[idx[0]], r.rho[idx[1]], r.rho[idx[2]], r.rho[idx[3]]]);
                    for (k, v) in idx.into_iter().zip(out) {
                        r.rho[k] = v;
                    }
                }
            }
        }

        pub fn unitary_1q(r: &mut Register, q: usize, u: &U2) {
            let ud = u_dagger(u);
            map_blocks(r, q, |b| {
                let blk = [[b[0], b[1]], [b[2], b[3]]];
                let x = u_mul(&u_mul(u, &blk), &ud);
                [x[0][0], x[0][1], x[1][0], x[1][1]]
            });
        }

        pub fn depolarize_1q(r: &mut Register, q: usize, p: f64) {
            if p <= 0.0 {
                return;
            }
            map_blocks(r, q, |b| {
                let avg = (b[0] + b[3]).scale(0.5 * p);
                [
                    b[0].scale(1.0 - p) + avg,
                    b[1].scale(1.0 - p),
                    b[2].scale(1.0 - p),
                    b[3].scale(1.0 - p) + avg,
                ]
            });
        }

        pub fn depolarize_2q(r: &mut Register, a: usize, b: usize, p: f64) {
            if p <= 0.0 {
                return;
            }
            let (ma, mb, d) = (r.mask(a), r.mask(b), r.dim);
            let subs = [0, mb, ma, ma | mb];
            let old = r.rho.clone();
            for v in r.rho.iter_mut() {
                *v = v.scale(1.0 - p);
            }
            for i in (0..d).filter(|i| i & (ma | mb) == 0) {
                for j in (0..d).filter(|j| j & (ma | mb) == 0) {
                    let mut tr = C::ZERO;
                    for s in subs {
                        tr += old[(i | s) * d + (j | s)];
                    }
                    for s in subs {
                        r.rho[(i | s) * d + (j | s)] += tr.scale(p / 4.0);
                    }
                }
            }
        }

        /// Relaxation for t_ns written out from T1, T2 and the residual
        /// excited population, without the engine's Relax.
        fn relax(r: &mut Register, q: usize, t_ns: f64) {
            if t_ns <= 0.0 {
                return;
            }
            let (t1, t2, pe) = (r.model.t1_ns, r.model.t2_ns, r.model.p_excited);
            let gamma = 1.0 - (-t_ns / t1).exp();
            let lambda = (-t_ns * (1.0 / t2 - 0.5 / t1).max(0.0)).exp();
            let coh = (1.0 - gamma).sqrt() * lambda;
            map_blocks(r, q, |b| {
                let p00 = b[0].scale(1.0 - pe * gamma) + b[3].scale((1.0 - pe) * gamma);
                let p11 = b[3].scale(1.0 - (1.0 - pe) * gamma) + b[0].scale(pe * gamma);
                [p00, b[1].scale(coh), b[2].scale(coh), p11]
            });
        }

        /// Idling: relaxation, then the detuning's turn as a phase gate.
        fn idle(r: &mut Register, q: usize, t_ns: f64) {
            if t_ns <= 0.0 {
                return;
            }
            relax(r, q, t_ns);
            let phi = r.detuning[q] * t_ns;
            unitary_1q(r, q, &phase(phi));
        }

        fn sync(r: &mut Register, qs: &[usize]) -> f64 {
            let start = qs.iter().map(|&q| r.clock_ns[q]).fold(0.0, f64::max);
            for &q in qs {
                idle(r, q, start - r.clock_ns[q]);
                r.clock_ns[q] = start;
            }
            start
        }

        fn pulse(r: &mut Register, q: usize, u: &U2) {
            let start = sync(r, &[q]);
            unitary_1q(r, q, u);
            relax(r, q, r.model.gate_1q_ns);
            depolarize_1q(r, q, r.model.dep_1q);
            r.clock_ns[q] = start + r.model.gate_1q_ns;
        }

        fn drive(r: &mut Register, q: usize, axis: [f64; 3], theta: f64) {
            let u = rotation(axis, theta * r.model.drive_bias);
            pulse(r, q, &u);
        }

        fn permute_2q(r: &mut Register, a: usize, b: usize, f: impl Fn(usize) -> (usize, f64)) {
            let start = sync(r, &[a, b]);
            let d = r.dim;
            let old = r.rho.clone();
            for i in 0..d {
                let (pi, si) = f(i);
                for j in 0..d {
                    let (pj, sj) = f(j);
                    r.rho[i * d + j] = old[pi * d + pj].scale(si * sj);
                }
            }
            relax(r, a, r.model.gate_2q_ns);
            relax(r, b, r.model.gate_2q_ns);
            depolarize_2q(r, a, b, r.model.dep_2q);
            r.clock_ns[a] = start + r.model.gate_2q_ns;
            r.clock_ns[b] = start + r.model.gate_2q_ns;
        }

        pub fn apply(r: &mut Register, op: &Op) {
            use std::f64::consts::{FRAC_PI_2, FRAC_PI_4, PI};
            const XA: [f64; 3] = [1.0, 0.0, 0.0];
            const YA: [f64; 3] = [0.0, 1.0, 0.0];
            match *op {
                Op::X(q) => drive(r, q, XA, PI),
                Op::Y(q) => drive(r, q, YA, PI),
                Op::H(q) => {
                    unitary_1q(r, q, &phase(PI));
                    drive(r, q, YA, FRAC_PI_2);
                }
                Op::Rx(q, th) => drive(r, q, XA, th),
                Op::Ry(q, th) => drive(r, q, YA, th),
                Op::Z(q) => unitary_1q(r, q, &phase(PI)),
                Op::S(q) => unitary_1q(r, q, &phase(FRAC_PI_2)),
                Op::Sdg(q) => unitary_1q(r, q, &phase(-FRAC_PI_2)),
                Op::T(q) => unitary_1q(r, q, &phase(FRAC_PI_4)),
                Op::Tdg(q) => unitary_1q(r, q, &phase(-FRAC_PI_4)),
                Op::Rz(q, th) => unitary_1q(r, q, &phase(th)),
                Op::Cx(c, t) => {
                    let (mc, mt) = (r.mask(c), r.mask(t));
                    permute_2q(r, c, t, |i| (if i & mc != 0 { i ^ mt } else { i }, 1.0));
                }
                Op::Cz(a, b) => {
                    let m = r.mask(a) | r.mask(b);
                    permute_2q(r, a, b, |i| (i, if i & m == m { -1.0 } else { 1.0 }));
                }
                Op::Swap(a, b) => {
                    let (ma, mb) = (r.mask(a), r.mask(b));
                    permute_2q(r, a, b, |i| {
                        let mut j = i & !(ma | mb);
                        if i & ma != 0 {
                            j |= mb;
                        }
                        if i & mb != 0 {
                            j |= ma;
                        }
                        (j, 1.0)
                    });
                }
                Op::Delay(q, ns) => {
                    let start = sync(r, &[q]);
                    idle(r, q, ns);
                    r.clock_ns[q] = start + ns.max(0.0);
                }
                Op::Pulse(q, ref u) => {
                    if r.model.drive_bias == 1.0 {
                        pulse(r, q, u);
                    } else {
                        let (axis, th) = axis_angle(u);
                        drive(r, q, axis, th);
                    }
                }
                Op::Reset(q) => {
                    sync(r, &[q]);
                    map_blocks(r, q, |b| [b[0] + b[3], C::ZERO, C::ZERO, C::ZERO]);
                }
                Op::Barrier(ref qs) => {
                    sync(r, qs);
                }
            }
        }
    }

    /// A random mixed state A A^dagger / Tr of a complex Gaussian-ish A.
    fn random_state(n: usize, model: Model, rng: &mut SimRng) -> Register {
        use rand::RngExt;
        let mut r = Register::new(n, model);
        let d = r.dim;
        let a: Vec<C> = (0..d * d)
            .map(|_| C::new(rng.random::<f64>() - 0.5, rng.random::<f64>() - 0.5))
            .collect();
        for i in 0..d {
            for j in 0..d {
                let mut v = C::ZERO;
                for k in 0..d {
                    v += a[i * d + k] * a[j * d + k].conj();
                }
                r.rho[i * d + j] = v;
            }
        }
        let tr = r.trace();
        for v in r.rho.iter_mut() {
            *v = v.scale(1.0 / tr);
        }
        r
    }

    fn random_op(n: usize, rng: &mut SimRng) -> Op {
        use rand::RngExt;
        let q = rng.random_range(0..n);
        let other = (q + rng.random_range(1..n.max(2))) % n;
        let th = rng.random::<f64>() * std::f64::consts::TAU;
        let two_q = n > 1 && rng.random_range(0..3) == 0;
        if two_q {
            return match rng.random_range(0..3) {
                0 => Op::Cx(q, other),
                1 => Op::Cz(q, other),
                _ => Op::Swap(q, other),
            };
        }
        match rng.random_range(0..15) {
            0 => Op::X(q),
            1 => Op::Y(q),
            2 => Op::Z(q),
            3 => Op::H(q),
            4 => Op::S(q),
            5 => Op::Sdg(q),
            6 => Op::T(q),
            7 => Op::Tdg(q),
            8 => Op::Rx(q, th),
            9 => Op::Ry(q, th),
            10 => Op::Rz(q, th),
            11 => Op::Delay(q, th * 100.0),
            12 => Op::Pulse(q, u_mul(&rotation([0.6, 0.0, 0.8], th), &phase(th / 3.0))),
            13 => Op::Reset(q),
            _ => Op::Barrier((0..n).filter(|_| rng.random::<bool>()).collect()),
        }
    }

    fn assert_same(got: &Register, want: &Register, what: &str) {
        assert_eq!(got.clock_ns, want.clock_ns, "{what}: clocks");
        for (k, (g, w)) in got.rho.iter().zip(&want.rho).enumerate() {
            assert!(
                (g.re - w.re).abs() < 1e-13 && (g.im - w.im).abs() < 1e-13,
                "{what}: entry {k}: {g:?} vs {w:?}"
            );
        }
    }

    #[test]
    fn in_place_kernels_match_the_reference_on_random_states() {
        use rand::RngExt;
        let mut rng = rng_for(19);
        let models = [
            model(),
            Model {
                drive_bias: 1.07,
                p_excited: P_EXCITED_GUARD_OFF,
                ..model()
            },
            model().ideal(),
        ];
        for n in 1..=6 {
            for m in &models {
                let mut got = random_state(n, m.clone(), &mut rng);
                // Staggered clocks, so gates and barriers make qubits idle,
                // and a detuning on every qubit, so idles turn the phase.
                for c in got.clock_ns.iter_mut() {
                    *c = rng.random_range(0..4) as f64 * 150.0;
                }
                for d in got.detuning.iter_mut() {
                    *d = (rng.random::<f64>() - 0.5) * 0.01;
                }
                let mut want = got.clone();
                for step in 0..40 {
                    let op = random_op(n, &mut rng);
                    got.apply(&op);
                    reference::apply(&mut want, &op);
                    assert_same(&got, &want, &format!("n={n} step {step} {op:?}"));
                }
                let (q, p) = (rng.random_range(0..n), rng.random::<f64>());
                got.depolarize_1q(q, p);
                reference::depolarize_1q(&mut want, q, p);
                let u = u_mul(&rotation([0.0, 0.6, 0.8], p * 5.0), &phase(p));
                got.unitary_1q(q, &u);
                reference::unitary_1q(&mut want, q, &u);
                if n > 1 {
                    let b = (q + 1 + rng.random_range(0..n - 1)) % n;
                    got.depolarize_2q(q, b, p);
                    reference::depolarize_2q(&mut want, q, b, p);
                }
                assert_same(&got, &want, &format!("n={n} direct kernels"));
            }
        }
    }

    #[test]
    fn ideal_bell_pair() {
        let ideal = model().ideal();
        let mut r = Register::new(2, ideal);
        r.run(&[Op::H(0), Op::Cx(0, 1)]);
        let p = r.readout_distribution();
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[3] - 0.5).abs() < 1e-12, "{p:?}");
        assert!(p[1].abs() < 1e-12 && p[2].abs() < 1e-12);
        assert!((r.overlap(&r) - 1.0).abs() < 1e-12, "pure state has purity 1");
    }

    #[test]
    fn pure_amplitude_damping_gives_exp_decay() {
        let m = Model {
            p_excited: 0.0,
            t2_ns: 2.0 * 50_000.0,
            t1_ns: 50_000.0,
            ..model().ideal()
        };
        for t in [0.0, 10_000.0, 50_000.0, 120_000.0] {
            let mut r = Register::new(1, m.clone());
            r.unitary_1q(0, &rx(std::f64::consts::PI));
            r.apply(&Op::Delay(0, t));
            let p1 = r.populations()[1];
            assert!((p1 - (-t / 50_000.0).exp()).abs() < 1e-12, "t={t} p1={p1}");
        }
    }

    #[test]
    fn coherence_decays_with_t2_and_relaxes_to_residual_population() {
        let m = Model {
            t1_ns: 100.0,
            t2_ns: 80.0,
            p_excited: 0.02,
            ..model().ideal()
        };
        let mut r = Register::new(1, m);
        r.unitary_1q(0, &hadamard());
        let c0 = r.rho()[1].re;
        r.apply(&Op::Delay(0, 40.0));
        assert!((r.rho()[1].re - c0 * (-0.5f64).exp()).abs() < 1e-12);
        r.apply(&Op::Delay(0, 1e5));
        assert!((r.populations()[1] - 0.02).abs() < 1e-9);
        assert!((r.trace() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn reset_returns_an_entangled_qubit_to_ground_and_leaves_its_partner_mixed() {
        let mut r = Register::new(2, model().ideal());
        r.run(&[Op::H(0), Op::Cx(0, 1), Op::Reset(0)]);
        let p = r.populations();
        // |00> and |01> (qubit 0 leftmost) each half; the partner lost its coherence.
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.5).abs() < 1e-12, "{p:?}");
        assert!(r.rho()[1].norm_sqr() < 1e-24 && r.rho()[3].norm_sqr() < 1e-24);
        assert!((r.trace() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn barrier_idles_the_early_qubit_until_the_latest_is_free() {
        let m = model();
        let mut r = Register::new(2, m.clone());
        r.run(&[Op::X(0), Op::Barrier(vec![0, 1])]);
        assert_eq!(r.clock_ns, vec![m.gate_1q_ns; 2]);
        let mut free = Register::new(2, m);
        free.run(&[Op::X(0)]);
        assert_eq!(free.clock_ns[1], 0.0, "no barrier: qubit 1 has not moved");
    }

    #[test]
    fn projective_probe_on_plus_has_backaction_half_and_kappa_zero_none() {
        let mut r = Register::new(1, model().ideal());
        r.unitary_1q(0, &hadamard());
        assert!((r.probe_backaction(0, 1.0) - 0.5).abs() < 1e-12);
        assert!(r.probe_backaction(0, 0.0).abs() < 1e-12);
        let k: f64 = 0.6;
        let expect = 0.5 * (1.0 - (1.0 - k * k).sqrt());
        assert!((r.probe_backaction(0, k) - expect).abs() < 1e-12);
    }

    #[test]
    fn depolarizing_and_readout_are_trace_preserving() {
        let mut r = Register::new(3, model());
        r.run(&[
            Op::H(0),
            Op::Cx(0, 1),
            Op::Swap(1, 2),
            Op::Cz(0, 2),
            Op::Ry(1, 0.3),
            Op::Delay(2, 500.0),
        ]);
        r.depolarize_2q(0, 2, 0.3);
        r.depolarize_1q(1, 0.2);
        assert!((r.trace() - 1.0).abs() < 1e-12);
        let s: f64 = r.readout_distribution().iter().sum();
        assert!((s - 1.0).abs() < 1e-12);
        // Hermitian with a non-negative spectrum: still a state.
        let ev = hermitian_eigenvalues(r.rho(), 8);
        assert!(ev.iter().all(|&v| v > -1e-12), "{ev:?}");
    }

    #[test]
    fn full_two_qubit_depolarizing_gives_maximally_mixed() {
        let mut r = Register::new(2, model().ideal());
        r.run(&[Op::H(0), Op::Cx(0, 1)]);
        r.depolarize_2q(0, 1, 1.0);
        for (i, p) in r.populations().into_iter().enumerate() {
            assert!((p - 0.25).abs() < 1e-12, "{i}");
        }
    }

    #[test]
    fn eigenvalues_of_known_hermitian_matrix() {
        // sigma_y has eigenvalues -1, 1; diag(2, -3) shifted by it.
        let h = [
            C::new(2.0, 0.0),
            C::new(0.0, -1.0),
            C::new(0.0, 1.0),
            C::new(-3.0, 0.0),
        ];
        let ev = hermitian_eigenvalues(&h, 2);
        let disc = (25.0f64 / 4.0 + 1.0).sqrt();
        assert!(
            (ev[0] - (-0.5 - disc)).abs() < 1e-10 && (ev[1] - (-0.5 + disc)).abs() < 1e-10,
            "{ev:?}"
        );
        assert!((trace_norm(&h, 2) - 2.0 * disc).abs() < 1e-10);
    }

    #[test]
    fn axis_angle_round_trips_and_bias_scales_rotation() {
        let u = u_mul(&hadamard(), &phase(std::f64::consts::FRAC_PI_2));
        let (n, th) = axis_angle(&u);
        let v = rotation(n, th);
        // Equal up to global phase: |Tr(U^dagger V)| = 2.
        let t = u_mul(&u_dagger(&u), &v);
        assert!(((t[0][0] + t[1][1]).norm_sqr().sqrt() - 2.0).abs() < 1e-12);
        let x = [[C::ZERO, C::ONE], [C::ONE, C::ZERO]];
        let (n, th) = axis_angle(&x);
        assert!((th - std::f64::consts::PI).abs() < 1e-12 && (n[0].abs() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn drive_bias_over_rotates() {
        let m = Model {
            drive_bias: 1.2,
            ..model().ideal()
        };
        let mut r = Register::new(1, m);
        r.apply(&Op::X(0));
        assert!((r.populations()[1] - (0.6 * std::f64::consts::PI).sin().powi(2)).abs() < 1e-12);
    }

    #[test]
    fn critical_path_times_gates_and_idles() {
        let m = model();
        let mut r = Register::new(2, m.clone());
        r.run(&[Op::H(0), Op::Cx(0, 1), Op::X(1), Op::S(0)]);
        r.sync_all();
        let expect = m.gate_1q_ns + m.gate_2q_ns + m.gate_1q_ns + m.readout_ns;
        assert!((r.shot_time_ns() - expect).abs() < 1e-9);
        assert_eq!(bitstring(0b011, 3), "011");
        assert_eq!(bitstring(0b100, 3), "100");
    }

    /// A register whose qubits start in |0> exactly (no residual excitation)
    /// under `m`, holding a Bell pair of each system qubit q < n with its
    /// reference qubit q + n.
    fn choi_state(n: usize, m: &Model) -> Register {
        let mut r = Register::new(
            2 * n,
            Model {
                p_excited: 0.0,
                ..m.clone()
            },
        );
        let mut pair = Register::new(2 * n, m.ideal());
        for q in 0..n {
            pair.apply(&Op::H(q));
            pair.apply(&Op::Cx(q, q + n));
        }
        r.rho.clone_from(&pair.rho);
        r
    }

    /// Process fidelity of a noisy gate against its ideal unitary, from
    /// the Choi state: <Phi| (U^dagger x I) (E x I)(Phi) (U x I) |Phi>.
    fn process_fidelity(n: usize, m: &Model, gate: &Op) -> f64 {
        let mut noisy = choi_state(n, m);
        noisy.apply(gate);
        let mut ideal = choi_state(n, &m.ideal());
        ideal.apply(gate);
        noisy.overlap(&ideal)
    }

    /// Relaxation during the gate composed with the derived depolarizing
    /// part gives every physical gate the profile's published average
    /// error r = d (1 - F) / (d + 1), whatever the residual excitation.
    #[test]
    fn every_physical_gate_has_the_published_average_error() {
        for id in ["sim_local", "rigetti_forest", "ionq_cloud"] {
            let noise = NoiseProfile::builtin(id).expect("builtin");
            for guard in [true, false] {
                let controls = ControlProfile {
                    thermal_guard_enabled: guard,
                    ..Default::default()
                };
                let m = Model::new(&noise, &controls);
                for gate in [Op::X(0), Op::Ry(0, 0.3), Op::Pulse(0, hadamard())] {
                    let r = 2.0 / 3.0 * (1.0 - process_fidelity(1, &m, &gate));
                    assert!((r - noise.p1q).abs() < 1e-12, "{id} {gate:?}: {r}");
                }
                for gate in [Op::Cx(0, 1), Op::Cz(1, 0), Op::Swap(0, 1)] {
                    let r = 4.0 / 5.0 * (1.0 - process_fidelity(2, &m, &gate));
                    assert!((r - noise.p2q).abs() < 1e-12, "{id} {gate:?}: {r}");
                }
                // Virtual gates stay exact.
                assert!((process_fidelity(1, &m, &Op::T(0)) - 1.0).abs() < 1e-12);
            }
        }
    }

    /// A model whose gates take no time and have no error, and whose
    /// qubits start in |0>: only idles and the detuning act.
    fn free_evolution_model() -> Model {
        Model {
            gate_1q_ns: 0.0,
            dep_1q: 0.0,
            p_excited: 0.0,
            readout_p10: 0.0,
            readout_p01: 0.0,
            ..model()
        }
    }

    fn p0_averaged(ops: &[Op], m: &Model) -> (f64, Grid) {
        let grid = Grid::new(
            m,
            1,
            ops.iter()
                .map(|op| if let Op::Delay(_, t) = op { *t } else { 0.0 })
                .sum(),
        );
        let r = averaged(1, m, &grid, |r| {
            r.run(ops);
            r.sync_all();
        });
        (r.populations()[0], grid)
    }

    /// Ramsey sees T2 and the quasi-static detuning: the envelope is
    /// exp(-t/T2 - sigma^2 t^2 / 2), 1/e at T2*; an echo refocuses the
    /// detuning and decays as exp(-t/T2) alone.
    #[test]
    fn quasi_static_detuning_dephases_ramsey_and_an_echo_refocuses_it() {
        let noise = NoiseProfile::builtin("sim_local").expect("builtin");
        let m = free_evolution_model();
        let (t2, s) = (m.t2_ns, m.sigma_rad_per_ns);
        assert!(s > 0.0);
        for t in [0.3, 1.0, 2.0, 5.0].map(|f| f * noise.t2star_us * 1e3) {
            let (ramsey, grid) = p0_averaged(&[Op::H(0), Op::Delay(0, t), Op::H(0)], &m);
            let envelope = (-t / t2 - s * s * t * t / 2.0).exp();
            assert!(grid.error <= QUADRATURE_TOLERANCE, "{grid:?}");
            assert!(grid.nodes > 1 && grid.nodes <= MAX_NODES);
            assert!(
                (ramsey - (1.0 + envelope) / 2.0).abs() < 1e-9,
                "t={t}: {ramsey} vs {envelope}"
            );
            let echo = [
                Op::H(0),
                Op::Delay(0, t / 2.0),
                Op::X(0),
                Op::Delay(0, t / 2.0),
                Op::H(0),
            ];
            // x leaves |+> alone, so the echo ends in |0> like Ramsey.
            let (echo_p0, _) = p0_averaged(&echo, &m);
            let decay = (-t / t2).exp();
            assert!((echo_p0 - (1.0 + decay) / 2.0).abs() < 1e-9, "t={t}: {echo_p0}");
        }
        let at_t2star =
            (-noise.t2star_us / noise.t2_us - s * s * (noise.t2star_us * 1e3).powi(2) / 2.0).exp();
        assert!((at_t2star - (-1f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn gauss_hermite_rules_integrate_the_gaussian_moments() {
        for k in 1..=MAX_NODES {
            let rule = &RULES[k - 1];
            assert_eq!(rule.len(), k);
            // E[x^(2j)] under exp(-x^2)/sqrt(pi) is (2j-1)!!/2^j, exact for 2j <= 2k-1.
            let mut want = 1.0;
            for j in 0..k {
                let got: f64 = rule.iter().map(|&(x, w)| w * x.powi(2 * j as i32)).sum();
                assert!(
                    (got - want).abs() <= 1e-11 * want.max(1.0),
                    "k={k} j={j}: {got} vs {want}"
                );
                want *= (2 * j + 1) as f64 / 2.0;
            }
            let odd: f64 = rule.iter().map(|&(x, w)| w * x.powi(3)).sum();
            assert!(odd.abs() < 1e-12);
        }
    }

    #[test]
    fn grids_are_fine_enough_until_the_work_cap() {
        let m = model();
        let dur = 3.0 * m.t2_ns;
        // One qubit: as many nodes as the duration needs.
        let one = Grid::new(&m, 1, dur);
        assert!(one.error <= QUADRATURE_TOLERANCE && one.nodes > 4);
        let total: f64 = one.points().iter().map(|p| p.1).sum();
        assert!((total - 1.0).abs() < 1e-12);
        // More qubits: the product grid within the work budget.
        for (n, k) in [(2, 64), (3, 10), (4, 4), (5, 2), (6, 1), (9, 1)] {
            let g = Grid::new(&m, n, dur);
            assert_eq!(g.nodes, k.min(one.nodes), "n={n}");
            assert_eq!(g.points().len(), g.nodes.pow(n as u32));
            let total: f64 = g.points().iter().map(|p| p.1).sum();
            assert!((total - 1.0).abs() < 1e-12, "n={n}");
        }
        // A short circuit needs few nodes; none without quasi-static noise.
        assert!(Grid::new(&m, 3, 500.0).nodes < 6);
        assert_eq!(Grid::new(&m.ideal(), 1, dur).nodes, 1);
        assert_eq!(Grid::new(&m, 1, 0.0).points(), &[(vec![0.0], 1.0)]);
    }
}
