//! OpenQASM 3 for a native operation list: how a built-in preset's circuit
//! travels to an executor.

use std::fmt::Write;

use crate::sim::engine::{Op, C, U2};

/// The program for `ops` on `qubits` qubits (register `q`), measuring qubit
/// `measured[i]` into `c[i]` at the end. Angles and durations are printed
/// with Rust's shortest round-trip form, so parsing them gives back the
/// same f64. A calibrated pulse (`Op::Pulse`) becomes the builtin
/// `U(theta, phi, lambda)` of its ZYZ decomposition (stdgates.inc has no
/// lower-case `u`), which parses back as rz(lambda) ry(theta) rz(phi): the
/// same state for drive_bias 1; with a miscalibrated drive the engine
/// over-rotates a pulse about its own axis, which no OpenQASM gate expresses.
/// An empty `measured` gives a program [`super::parse`] refuses.
pub fn to_qasm3(qubits: usize, ops: &[Op], measured: &[usize]) -> String {
    let mut s = String::from("OPENQASM 3.0;\ninclude \"stdgates.inc\";\n");
    // Writing to a String cannot fail.
    let _ = writeln!(s, "qubit[{qubits}] q;");
    if !measured.is_empty() {
        let _ = writeln!(s, "bit[{}] c;", measured.len());
    }
    for op in ops {
        let _ = match *op {
            Op::X(a) => writeln!(s, "x q[{a}];"),
            Op::Y(a) => writeln!(s, "y q[{a}];"),
            Op::Z(a) => writeln!(s, "z q[{a}];"),
            Op::H(a) => writeln!(s, "h q[{a}];"),
            Op::S(a) => writeln!(s, "s q[{a}];"),
            Op::Sdg(a) => writeln!(s, "sdg q[{a}];"),
            Op::T(a) => writeln!(s, "t q[{a}];"),
            Op::Tdg(a) => writeln!(s, "tdg q[{a}];"),
            Op::Rx(a, t) => writeln!(s, "rx({t:?}) q[{a}];"),
            Op::Ry(a, t) => writeln!(s, "ry({t:?}) q[{a}];"),
            Op::Rz(a, t) => writeln!(s, "rz({t:?}) q[{a}];"),
            Op::Cx(a, b) => writeln!(s, "cx q[{a}], q[{b}];"),
            Op::Cz(a, b) => writeln!(s, "cz q[{a}], q[{b}];"),
            Op::Swap(a, b) => writeln!(s, "swap q[{a}], q[{b}];"),
            Op::Delay(a, ns) => writeln!(s, "delay[{ns:?}ns] q[{a}];"),
            Op::Pulse(a, ref u) => {
                let (theta, phi, lambda) = zyz(u);
                writeln!(s, "U({theta:?}, {phi:?}, {lambda:?}) q[{a}];")
            }
            Op::Reset(a) => writeln!(s, "reset q[{a}];"),
            // An empty barrier synchronizes nothing; `barrier;` would
            // synchronize every qubit.
            Op::Barrier(ref qs) if qs.is_empty() => Ok(()),
            Op::Barrier(ref qs) => {
                let list: Vec<String> = qs.iter().map(|q| format!("q[{q}]")).collect();
                writeln!(s, "barrier {};", list.join(", "))
            }
        };
    }
    for (i, q) in measured.iter().enumerate() {
        let _ = writeln!(s, "c[{i}] = measure q[{q}];");
    }
    s
}

fn arg(z: C) -> f64 {
    z.im.atan2(z.re)
}

/// (theta, phi, lambda) with U = e^{ig} P(phi) Ry(theta) P(lambda),
/// P(x) = diag(1, e^{ix}); that product is
/// [[cos, -e^{i lambda} sin], [e^{i phi} sin, e^{i(phi+lambda)} cos]] of
/// theta/2, so g is the phase of the top-left entry. The other phases are
/// read from the larger-magnitude entries: a vanishing entry (theta near 0
/// or pi) has a phase that is noise, and only ever sets an angle whose
/// effect it multiplies.
fn zyz(u: &U2) -> (f64, f64, f64) {
    let (a, b, c, d) = (u[0][0], u[0][1], u[1][0], u[1][1]);
    let theta = 2.0 * c.norm_sqr().sqrt().atan2(a.norm_sqr().sqrt());
    let g = if a.norm_sqr() > 0.0 { arg(a) } else { 0.0 };
    if a.norm_sqr() >= c.norm_sqr() {
        let phi = if c.norm_sqr() > 0.0 { arg(c) - g } else { 0.0 };
        (theta, phi, arg(d) - g - phi)
    } else {
        (theta, arg(c) - g, arg(-b) - g)
    }
}
