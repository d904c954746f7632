//! OpenQASM circuit runs (docs/api.md "Circuit runs"): a client's program
//! parsed, checked and lowered to the engine's native [`Op`] list, and the
//! way back ([`to_qasm3`]) for sending a built-in preset's circuit to an
//! executor.
//!
//! The language is a straight-line subset of OpenQASM 3 and 2: registers,
//! the standard gates synqc simulates, `gate` definitions built from them,
//! angle expressions, terminal measurements, reset, barrier and delay.
//! Everything else is refused before anything runs, with the line and column
//! of the construct and what to do instead (see [`lower`] for the list).
//!
//! Parsing uses the Qiskit project's OpenQASM 3 parser (oq3_syntax) for the
//! syntax tree and positions; its semantic layer (oq3_semantics) is not used
//! because it reads `include`d files from the server's disk (and aborts on a
//! missing one, qelib1.inc included), and a client program must never make
//! the server touch its file system. The OpenQASM 2 statement forms the
//! parser lacks are rewritten first (see `source`).

mod lower;
mod qasm3;
mod source;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::engine::Op;

pub use qasm3::to_qasm3;

/// Largest register a circuit run may declare, unless configured otherwise.
pub const DEFAULT_MAX_QUBITS: usize = 10;
/// Most native operations a circuit may lower to, unless configured otherwise.
pub const DEFAULT_MAX_OPS: usize = 10_000;

/// What a program may ask for (from the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitLimits {
    /// Qubits over all quantum registers.
    pub max_qubits: usize,
    /// Native operations after lowering: gates once ccx and defined gates
    /// are unrolled and registers broadcast, plus delays, resets and barriers.
    pub max_ops: usize,
}

impl Default for CircuitLimits {
    fn default() -> Self {
        CircuitLimits {
            max_qubits: DEFAULT_MAX_QUBITS,
            max_ops: DEFAULT_MAX_OPS,
        }
    }
}

/// Why a program was refused: where, what, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QasmError {
    /// 1-based line of the original program.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The construct as written (`if`, `qreg`, `cy`, `measure`, ...).
    pub construct: String,
    /// A sentence saying what is wrong and what to do, without the position.
    pub message: String,
}

impl fmt::Display for QasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for QasmError {}

/// A parsed program, lowered to the engine's native operations.
#[derive(Clone, Debug, PartialEq)]
pub struct Circuit {
    /// The program's OpenQASM major version (2 or 3).
    pub version: u8,
    /// Qubits over all quantum registers, numbered in declaration order.
    pub qubits: usize,
    pub ops: Vec<Op>,
    /// (qubit, clbit) of every measurement; measurements are terminal.
    pub measures: Vec<(usize, usize)>,
    /// Quantum registers (name, size) in declaration order.
    pub qregs: Vec<(String, usize)>,
    /// Classical registers (name, size) in declaration order; clbits are
    /// numbered through them in this order.
    pub registers: Vec<(String, usize)>,
    /// See [`depth`].
    pub depth: usize,
    /// Lowered operations by native name ([`native_name`]), plus `measure`.
    pub gate_counts: BTreeMap<String, usize>,
    /// Hex sha256 of the program text exactly as received.
    pub sha256: String,
}

/// Parse, check and lower a program.
///
/// The parser crate asserts on some malformed input; `source` refuses every
/// form known to reach one before parsing, and a panic that still happens
/// is caught here and answered as a refusal (see [`guard`]).
pub fn parse(src: &str, limits: &CircuitLimits) -> Result<Circuit, QasmError> {
    guard(|| parse_unguarded(src, limits)).unwrap_or_else(|| {
        Err(QasmError {
            line: 1,
            column: 1,
            construct: "program".into(),
            message: "the OpenQASM parser could not read this program; check its syntax against \
                      docs/circuits.md, and report it if it is valid"
                .into(),
        })
    })
}

thread_local! {
    /// Set while this thread runs [`guard`]ed code.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it into None. The binary aborts on
/// every other panic ([`abort_on_unguarded_panic`]), so a bug elsewhere
/// still stops the process for systemd to restart, while a client program
/// that trips the third-party parser only gets a refusal.
fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    GUARDED.with(|g| g.set(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok();
    GUARDED.with(|g| g.set(false));
    out
}

/// The binary's panic policy: a panic outside [`guard`] prints as usual and
/// aborts the process (what `panic = "abort"` did); inside it, it unwinds
/// to the guard. Installed once by main, never by the tests, whose failures
/// are panics.
pub fn abort_on_unguarded_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if GUARDED.with(std::cell::Cell::get) {
            log::warn!("the OpenQASM parser panicked on a client program ({info}); refused");
        } else {
            previous(info);
            std::process::abort();
        }
    }));
}

fn parse_unguarded(src: &str, limits: &CircuitLimits) -> Result<Circuit, QasmError> {
    let source = source::Source::new(src)?;
    let l = lower::lower(&source, limits)?;
    let mut gate_counts = BTreeMap::new();
    for op in &l.ops {
        *gate_counts.entry(native_name(op).to_string()).or_insert(0) += 1;
    }
    gate_counts.insert("measure".to_string(), l.measures.len());
    Ok(Circuit {
        version: l.version,
        depth: depth(l.qubits, &l.ops),
        qubits: l.qubits,
        ops: l.ops,
        measures: l.measures,
        qregs: l.qregs,
        registers: l.cregs,
        gate_counts,
        sha256: crate::budget::hex(&Sha256::digest(src.as_bytes())),
    })
}

impl Circuit {
    /// Classical bits over all registers.
    pub fn clbits(&self) -> usize {
        self.registers.iter().map(|r| r.1).sum()
    }

    /// The counts key of clbit values (indexed by clbit): Qiskit's
    /// convention, bit 0 rightmost within a register, registers joined by a
    /// space with the last declared first. Missing values read 0.
    pub fn key(&self, bits: &[bool]) -> String {
        let mut offset = 0;
        let mut parts: Vec<String> = Vec::with_capacity(self.registers.len());
        for (_, size) in &self.registers {
            let part = (0..*size)
                .rev()
                .map(|i| {
                    if bits.get(offset + i).copied().unwrap_or(false) {
                        '1'
                    } else {
                        '0'
                    }
                })
                .collect();
            parts.push(part);
            offset += size;
        }
        parts.reverse();
        parts.join(" ")
    }

    /// The key an engine basis state reads as (basis bit `qubits-1-q` is
    /// qubit q): each measured qubit's value lands in its clbit, the other
    /// clbits read 0.
    pub fn basis_key(&self, index: usize) -> String {
        let mut bits = vec![false; self.clbits()];
        for &(q, c) in &self.measures {
            bits[c] = index >> (self.qubits - 1 - q) & 1 == 1;
        }
        self.key(&bits)
    }
}

/// The qubits an operation acts on.
pub fn op_qubits(op: &Op) -> Vec<usize> {
    match *op {
        Op::X(q)
        | Op::Y(q)
        | Op::Z(q)
        | Op::H(q)
        | Op::S(q)
        | Op::Sdg(q)
        | Op::T(q)
        | Op::Tdg(q)
        | Op::Rx(q, _)
        | Op::Ry(q, _)
        | Op::Rz(q, _)
        | Op::Delay(q, _)
        | Op::Pulse(q, _)
        | Op::Reset(q) => vec![q],
        Op::Cx(a, b) | Op::Cz(a, b) | Op::Swap(a, b) => vec![a, b],
        Op::Barrier(ref qs) => qs.clone(),
    }
}

/// The OpenQASM name of an operation (what gate_counts counts; `pulse`
/// for a calibrated Clifford pulse, which no program lowers to).
pub fn native_name(op: &Op) -> &'static str {
    match op {
        Op::X(_) => "x",
        Op::Y(_) => "y",
        Op::Z(_) => "z",
        Op::H(_) => "h",
        Op::S(_) => "s",
        Op::Sdg(_) => "sdg",
        Op::T(_) => "t",
        Op::Tdg(_) => "tdg",
        Op::Rx(..) => "rx",
        Op::Ry(..) => "ry",
        Op::Rz(..) => "rz",
        Op::Cx(..) => "cx",
        Op::Cz(..) => "cz",
        Op::Swap(..) => "swap",
        Op::Delay(..) => "delay",
        Op::Pulse(..) => "pulse",
        Op::Reset(_) => "reset",
        Op::Barrier(_) => "barrier",
    }
}

/// Circuit depth of the lowered operations, as Qiskit counts it: every
/// operation is one layer on its qubits (virtual z-type gates, `delay` and
/// `reset` included) and starts after the latest layer of any of them; a
/// `barrier` adds no layer but aligns its qubits to the latest of them.
/// Measurements are not counted (they are all at the end).
pub fn depth(qubits: usize, ops: &[Op]) -> usize {
    let mut level = vec![0usize; qubits];
    for op in ops {
        let qs = op_qubits(op);
        let top = qs
            .iter()
            .filter_map(|&q| level.get(q).copied())
            .max()
            .unwrap_or(0);
        let new = if matches!(op, Op::Barrier(_)) {
            top
        } else {
            top + 1
        };
        for q in qs {
            if let Some(l) = level.get_mut(q) {
                *l = new;
            }
        }
    }
    level.into_iter().max().unwrap_or(0)
}
