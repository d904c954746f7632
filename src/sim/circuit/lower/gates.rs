//! The standard gates synqc simulates, their signatures and their lowering
//! to the engine's native operations (docs/circuits.md "How a circuit is
//! simulated"), and the standard-library gates it names when refusing them.

use std::f64::consts::FRAC_PI_2;

use crate::sim::engine::Op;

/// The standard gates synqc simulates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Std {
    X,
    Y,
    Z,
    H,
    S,
    Sdg,
    T,
    Tdg,
    Sx,
    Id,
    Rx,
    Ry,
    Rz,
    P,
    U,
    U2,
    Cx,
    Cz,
    Swap,
    Ccx,
}

impl Std {
    pub(super) fn named(name: &str) -> Option<Std> {
        Some(match name {
            "x" => Std::X,
            "y" => Std::Y,
            "z" => Std::Z,
            "h" => Std::H,
            "s" => Std::S,
            "sdg" => Std::Sdg,
            "t" => Std::T,
            "tdg" => Std::Tdg,
            "sx" => Std::Sx,
            "id" => Std::Id,
            "rx" => Std::Rx,
            "ry" => Std::Ry,
            "rz" => Std::Rz,
            "p" | "phase" | "u1" => Std::P,
            "U" | "u" | "u3" => Std::U,
            "u2" => Std::U2,
            "cx" | "CX" => Std::Cx,
            "cz" => Std::Cz,
            "swap" => Std::Swap,
            "ccx" => Std::Ccx,
            _ => return None,
        })
    }

    /// (angle parameters, qubits)
    pub(super) fn signature(self) -> (usize, usize) {
        match self {
            Std::X | Std::Y | Std::Z | Std::H | Std::S | Std::Sdg | Std::T | Std::Tdg | Std::Sx | Std::Id => {
                (0, 1)
            }
            Std::Rx | Std::Ry | Std::Rz | Std::P => (1, 1),
            Std::U => (3, 1),
            Std::U2 => (2, 1),
            Std::Cx | Std::Cz | Std::Swap => (0, 2),
            Std::Ccx => (0, 3),
        }
    }

    /// The native operations (docs/physics.md "Circuit runs"): z-type gates
    /// are virtual phases, u is rz(lambda) ry(theta) rz(phi), sx is rx(pi/2),
    /// id is nothing, ccx is the 6-cx Toffoli network.
    pub(super) fn lower(self, a: &[f64], q: &[usize]) -> Vec<Op> {
        match self {
            Std::X => vec![Op::X(q[0])],
            Std::Y => vec![Op::Y(q[0])],
            Std::Z => vec![Op::Z(q[0])],
            Std::H => vec![Op::H(q[0])],
            Std::S => vec![Op::S(q[0])],
            Std::Sdg => vec![Op::Sdg(q[0])],
            Std::T => vec![Op::T(q[0])],
            Std::Tdg => vec![Op::Tdg(q[0])],
            Std::Sx => vec![Op::Rx(q[0], FRAC_PI_2)],
            Std::Id => vec![],
            Std::Rx => vec![Op::Rx(q[0], a[0])],
            Std::Ry => vec![Op::Ry(q[0], a[0])],
            Std::Rz | Std::P => vec![Op::Rz(q[0], a[0])],
            Std::U => vec![Op::Rz(q[0], a[2]), Op::Ry(q[0], a[0]), Op::Rz(q[0], a[1])],
            Std::U2 => vec![Op::Rz(q[0], a[1]), Op::Ry(q[0], FRAC_PI_2), Op::Rz(q[0], a[0])],
            Std::Cx => vec![Op::Cx(q[0], q[1])],
            Std::Cz => vec![Op::Cz(q[0], q[1])],
            Std::Swap => vec![Op::Swap(q[0], q[1])],
            Std::Ccx => {
                let (a, b, t) = (q[0], q[1], q[2]);
                vec![
                    Op::H(t),
                    Op::Cx(b, t),
                    Op::Tdg(t),
                    Op::Cx(a, t),
                    Op::T(t),
                    Op::Cx(b, t),
                    Op::Tdg(t),
                    Op::Cx(a, t),
                    Op::T(b),
                    Op::T(t),
                    Op::H(t),
                    Op::Cx(a, b),
                    Op::T(a),
                    Op::Tdg(b),
                    Op::Cx(a, b),
                ]
            }
        }
    }
}

/// Standard-library gates synqc does not simulate, named so the refusal
/// can say so rather than "unknown gate".
pub(super) const UNSUPPORTED_STD: [&str; 22] = [
    "cy", "ch", "crx", "cry", "crz", "cp", "cphase", "cu", "cu1", "cu3", "cswap", "sxdg", "csx", "rxx",
    "rzz", "rccx", "rc3x", "c3x", "c3sqrtx", "c4x", "u0", "cu2",
];

pub(super) const SUPPORTED_LIST: &str = "x y z h s sdg t tdg sx id rx ry rz p u1 u u3 u2 cx cz swap ccx";
