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
//!   its qubits are free; a qubit waiting for that moment idles, and idling is
//!   where T1/T2 act. Idle noise is applied lazily (when the qubit is next
//!   used, or at readout); that is exact because channels on different
//!   qubits commute.
//! - Gate errors are depolarizing only: the table's 1q/2q error rates are the
//!   total per-gate error (decoherence during the pulse included), so adding
//!   T1/T2 during a pulse would count it twice.
//! - z, s, sdg, t, tdg and rz are virtual (frame changes): no duration, no
//!   error, and drive_bias does not touch them, as on real control stacks.

use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

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
    pub t2_ns: f64,
    pub p1q: f64,
    pub p2q: f64,
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
            p1q: noise.p1q,
            p2q: noise.p2q,
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
            p1q: 0.0,
            p2q: 0.0,
            p_excited: 0.0,
            readout_p10: 0.0,
            readout_p01: 0.0,
            drive_bias: 1.0,
            ..self.clone()
        }
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
}

impl Register {
    /// `n` qubits, each in diag(1 - p_excited, p_excited).
    pub fn new(n: usize, model: Model) -> Register {
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

    /// Idle qubit q for `t_ns`: generalized amplitude damping with
    /// gamma = 1 - exp(-t/T1) towards the residual excited population, then
    /// pure dephasing (phase-flip Kraus pair sqrt((1+l)/2) I, sqrt((1-l)/2) Z,
    /// which scales coherences by l) with l = exp(-t/T_phi),
    /// 1/T_phi = 1/T2 - 1/(2 T1), so coherences decay as exp(-t/T2) overall.
    pub fn idle(&mut self, q: usize, t_ns: f64) {
        if t_ns <= 0.0 {
            return;
        }
        let (t1, t2, pe) = (self.model.t1_ns, self.model.t2_ns, self.model.p_excited);
        let gamma = 1.0 - (-t_ns / t1).exp();
        let rate_phi = (1.0 / t2 - 0.5 / t1).max(0.0);
        let lambda = (-t_ns * rate_phi).exp();
        if gamma <= 0.0 && lambda >= 1.0 {
            return;
        }
        let coh = (1.0 - gamma).sqrt() * lambda;
        self.map_blocks(q, |b| {
            let p00 = b[0].scale(1.0 - pe * gamma) + b[3].scale((1.0 - pe) * gamma);
            let p11 = b[3].scale(1.0 - (1.0 - pe) * gamma) + b[0].scale(pe * gamma);
            [p00, b[1].scale(coh), b[2].scale(coh), p11]
        });
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

    /// A physical single-qubit pulse: waits, rotates, depolarizes; `frame`
    /// is a virtual gate applied just before (h's Z). A single qubit never
    /// waits for itself, so the frame change, rotation and depolarizing are
    /// one pass over the matrix, each block going through them in order.
    fn pulse(&mut self, q: usize, frame: Option<&U2>, u: &U2) {
        let start = self.sync(&[q]);
        let frame = frame.map(|f| (*f, u_dagger(f)));
        let (ud, p) = (u_dagger(u), self.model.p1q);
        self.map_blocks(q, |b| {
            let b = match &frame {
                Some((f, fd)) => conjugate_block(f, fd, b),
                None => b,
            };
            let b = conjugate_block(u, &ud, b);
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
    /// swap), then its depolarizing, in one pass over the 4x4 blocks.
    fn permute_2q(&mut self, a: usize, b: usize, gate: Pair) {
        let start = self.sync(&[a, b]);
        let p = self.model.p2q;
        self.map_blocks_2q(a, b, |blk| {
            gate.permute(blk);
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
        self.clock_ns.iter().copied().fold(0.0, f64::max) + self.model.readout_ns
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
        for (a, b) in self.rho.iter_mut().zip(&other.rho) {
            *a += *b;
        }
    }
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

        fn idle(r: &mut Register, q: usize, t_ns: f64) {
            if t_ns <= 0.0 {
                return;
            }
            let (t1, t2, pe) = (r.model.t1_ns, r.model.t2_ns, r.model.p_excited);
            let gamma = 1.0 - (-t_ns / t1).exp();
            let lambda = (-t_ns * (1.0 / t2 - 0.5 / t1).max(0.0)).exp();
            if gamma <= 0.0 && lambda >= 1.0 {
                return;
            }
            let coh = (1.0 - gamma).sqrt() * lambda;
            map_blocks(r, q, |b| {
                let p00 = b[0].scale(1.0 - pe * gamma) + b[3].scale((1.0 - pe) * gamma);
                let p11 = b[3].scale(1.0 - (1.0 - pe) * gamma) + b[0].scale(pe * gamma);
                [p00, b[1].scale(coh), b[2].scale(coh), p11]
            });
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
            depolarize_1q(r, q, r.model.p1q);
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
            depolarize_2q(r, a, b, r.model.p2q);
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
                // Staggered clocks, so gates and barriers make qubits idle.
                for c in got.clock_ns.iter_mut() {
                    *c = rng.random_range(0..4) as f64 * 150.0;
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
}
