//! From the syntax tree to native operations: registers, gates (standard and
//! defined), angle expressions, measurements, reset, barrier and delay.
//!
//! Refused up front, each with its line, column and an action: classical
//! control flow (`if`, `else`, `for`, `while`, `switch`, `break`,
//! `continue`, `end`), subroutines (`def`, `return`), `extern`, timing
//! boxes (`box`), pulse-level calibration (`cal`, `defcal`,
//! `defcalgrammar`), `input`/`output`, aliases (`let`), classical variables
//! and their declarations/assignments (`int`, `uint`, `float`, `angle`,
//! `bool`, `duration`, `stretch`, `complex`, `array`, `const`, `bit`
//! initializers), gate modifiers (`ctrl @`, `negctrl @`, `inv @`, `pow @`),
//! `gphase`, `opaque`, pragmas and annotations, hardware qubits (`$0`),
//! index ranges and sets, `measure` without a target bit, includes other than
//! stdgates.inc (OpenQASM 3) / qelib1.inc (OpenQASM 2). Also: more qubits
//! than the limit, more native operations than the limit, no measurement,
//! an operation on a measured qubit, a qubit measured twice, a bit written
//! twice, an index out of range, an unknown gate, a wrong number of
//! parameters or qubits, a repeated qubit in one gate, gate definitions
//! nested too deep.
//!
//! Long, though it is one concept: a single walk over the statements that
//! shares the registers, the limits and which qubits are measured; the
//! standard gates (lower/gates.rs) and gate definitions (lower/define.rs)
//! live apart.

use std::collections::HashMap;
use std::f64::consts::PI;

use oq3_syntax::ast::{self, AstNode, HasArgList, HasName};
use oq3_syntax::{SourceFile, SyntaxKind, SyntaxNode};

mod define;
mod gates;

use super::source::Source;
use super::{CircuitLimits, QasmError};
use crate::sim::engine::Op;
use define::Expr;
use gates::{Std, SUPPORTED_LIST, UNSUPPORTED_STD};

/// Nesting of `gate` definitions (a gate calling a defined gate calling
/// ...). Bounds the unroller's recursion, whatever the program.
const MAX_GATE_NESTING: usize = 64;

/// The lowered program, before statistics.
pub(super) struct Lowered {
    pub version: u8,
    pub qubits: usize,
    pub ops: Vec<Op>,
    pub measures: Vec<(usize, usize)>,
    pub qregs: Vec<(String, usize)>,
    pub cregs: Vec<(String, usize)>,
}

#[derive(Clone, Copy, Debug)]
enum GateRef {
    Std(Std),
    User(usize),
    /// A barrier inside a gate body.
    Barrier,
}

/// One statement of a gate body.
#[derive(Clone, Debug)]
struct Call {
    gate: GateRef,
    args: Vec<Expr>,
    /// Indices into the defined gate's qubit parameters.
    qubits: Vec<usize>,
}

#[derive(Clone, Debug)]
struct GateDef {
    params: usize,
    qubits: usize,
    body: Vec<Call>,
    nesting: usize,
}

struct Reg {
    name: String,
    offset: usize,
    size: usize,
}

struct Lowerer<'s, 'a> {
    src: &'s Source<'a>,
    limits: CircuitLimits,
    version: u8,
    included: bool,
    qregs: Vec<Reg>,
    cregs: Vec<Reg>,
    gates: Vec<GateDef>,
    gate_index: HashMap<String, usize>,
    ops: Vec<Op>,
    measured: Vec<bool>,
    written: Vec<bool>,
    measures: Vec<(usize, usize)>,
}

type Res<T> = Result<T, QasmError>;

fn start(node: &SyntaxNode) -> usize {
    usize::from(node.text_range().start())
}

/// The node's text without surrounding trivia.
fn text(node: &SyntaxNode) -> String {
    node.text().to_string().trim().to_string()
}

pub(super) fn lower(src: &Source, limits: &CircuitLimits) -> Res<Lowered> {
    let parse = SourceFile::parse(&src.text);
    if let Some(e) = parse.errors().iter().min_by_key(|e| e.range().start()) {
        let at = usize::from(e.range().start());
        let near = src
            .text
            .get(at..)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or("end of program");
        return Err(error(
            src,
            at,
            near,
            format!("syntax error near `{near}`: {}; fix the statement", e.message()),
        ));
    }
    let mut l = Lowerer {
        src,
        limits: *limits,
        version: 3,
        included: false,
        qregs: Vec::new(),
        cregs: Vec::new(),
        gates: Vec::new(),
        gate_index: HashMap::new(),
        ops: Vec::new(),
        measured: Vec::new(),
        written: Vec::new(),
        measures: Vec::new(),
    };
    for (i, stmt) in parse.tree().statements().enumerate() {
        l.statement(i, stmt)?;
    }
    if l.measures.is_empty() {
        return Err(error(
            src,
            src.text.len(),
            "measure",
            "the program measures no qubit: add measurements, e.g. `c = measure q;` \
             (OpenQASM 3) or `measure q -> c;` (OpenQASM 2)"
                .to_string(),
        ));
    }
    let regs = |rs: &[Reg]| rs.iter().map(|r| (r.name.clone(), r.size)).collect();
    Ok(Lowered {
        version: l.version,
        qubits: l.measured.len(),
        qregs: regs(&l.qregs),
        cregs: regs(&l.cregs),
        ops: l.ops,
        measures: l.measures,
    })
}

fn error(src: &Source, at: usize, construct: &str, message: String) -> QasmError {
    let (line, column) = src.position(at);
    QasmError {
        line,
        column,
        construct: construct.to_string(),
        message,
    }
}

impl Lowerer<'_, '_> {
    fn err(&self, at: usize, construct: &str, message: String) -> QasmError {
        error(self.src, at, construct, message)
    }

    fn statement(&mut self, index: usize, stmt: ast::Stmt) -> Res<()> {
        let node = stmt.syntax().clone();
        let at = start(&node);
        match stmt {
            ast::Stmt::VersionString(v) => self.version(index, &v),
            ast::Stmt::Include(inc) => self.include(&inc),
            ast::Stmt::QuantumDeclarationStatement(d) => {
                let size = self.designator(d.qubit_type().and_then(|t| t.designator()), "qubit")?;
                let name = self.decl_name(d.name(), &node)?;
                let total = self.measured.len() + size;
                if total > self.limits.max_qubits {
                    return Err(self.err(
                        at,
                        "qubit",
                        format!(
                            "the program declares {total} qubits, more than the {} a circuit run may use; \
                             use fewer qubits",
                            self.limits.max_qubits
                        ),
                    ));
                }
                self.qregs.push(Reg {
                    name,
                    offset: self.measured.len(),
                    size,
                });
                self.measured.resize(total, false);
                Ok(())
            }
            ast::Stmt::ClassicalDeclarationStatement(d) => {
                let scalar = d
                    .scalar_type()
                    .filter(|s| s.bit_token().is_some() && d.array_type().is_none());
                let Some(scalar) = scalar else {
                    return Err(self.err(
                        at,
                        &first_word(&node),
                        "only `bit` registers are supported among classical declarations; \
                         declare `bit[n] c;` for measurement results"
                            .to_string(),
                    ));
                };
                if d.eq_token().is_some() || d.expr().is_some() {
                    return Err(self.err(
                        at,
                        "bit",
                        "a `bit` register starts at 0 and only measurements write it; \
                         remove the initializer"
                            .to_string(),
                    ));
                }
                let size = self.designator(scalar.designator(), "bit")?;
                let name = self.decl_name(d.name(), &node)?;
                let offset = self.written.len();
                self.cregs.push(Reg { name, offset, size });
                self.written.resize(offset + size, false);
                Ok(())
            }
            ast::Stmt::Gate(g) => self.define(&g),
            ast::Stmt::ExprStmt(e) => match e.expr() {
                Some(ast::Expr::GateCallExpr(call)) => self.top_call(&call),
                Some(ast::Expr::MeasureExpression(_)) => Err(self.bare_measure(at)),
                _ => Err(self.err(
                    at,
                    &first_word(&node),
                    "this expression statement is not supported: a statement is a gate call, \
                     a measurement, reset, barrier or delay"
                        .to_string(),
                )),
            },
            ast::Stmt::Measure(_) => Err(self.bare_measure(at)),
            ast::Stmt::AssignmentStmt(a) => self.measure(&a),
            ast::Stmt::Reset(r) => {
                let operand = r.gate_operand().map(|o| o.syntax().clone());
                let Some(operand) = operand else {
                    return Err(self.err(
                        at,
                        "reset",
                        "`reset` needs a qubit: write `reset q[0];`".to_string(),
                    ));
                };
                for q in self.qubit_operand(&operand)? {
                    self.check_unmeasured(at, "reset", q)?;
                    self.push(at, Op::Reset(q))?;
                }
                Ok(())
            }
            ast::Stmt::Barrier(b) => {
                let qs = match b.qubit_list() {
                    Some(list) => self.operand_list(list.syntax())?.concat(),
                    None => (0..self.measured.len()).collect(),
                };
                for &q in &qs {
                    self.check_unmeasured(at, "barrier", q)?;
                }
                if qs.is_empty() {
                    return Ok(());
                }
                self.push(at, Op::Barrier(qs))
            }
            ast::Stmt::DelayStmt(d) => {
                let ns = self.duration(at, d.designator())?;
                let qs = match d.qubit_list() {
                    Some(list) => self.operand_list(list.syntax())?.concat(),
                    None => (0..self.measured.len()).collect(),
                };
                for q in qs {
                    self.check_unmeasured(at, "delay", q)?;
                    self.push(at, Op::Delay(q, ns))?;
                }
                Ok(())
            }
            _ => Err(self.err(
                at,
                &first_word(&node),
                format!(
                    "`{}` is not supported; synqc runs straight-line circuits of gates, measure, \
                     reset, barrier and delay: remove it",
                    first_word(&node)
                ),
            )),
        }
    }

    fn version(&mut self, index: usize, v: &ast::VersionString) -> Res<()> {
        let at = start(v.syntax());
        if index != 0 {
            return Err(self.err(
                at,
                "OPENQASM",
                "the `OPENQASM` line must be the first statement: move it to the top".to_string(),
            ));
        }
        let number = v
            .syntax()
            .children()
            .find(|c| c.kind() == SyntaxKind::VERSION)
            .and_then(|c| c.first_token())
            .map(|t| t.text().to_string())
            .unwrap_or_default();
        let major = number.split('.').next().unwrap_or_default();
        if major != "2" && major != "3" {
            let message = format!(
                "OpenQASM version {number} is not supported: write `OPENQASM 3.0;` or `OPENQASM 2.0;`"
            );
            return Err(self.err(at, "OPENQASM", message));
        }
        self.version = if major == "2" { 2 } else { 3 };
        Ok(())
    }

    fn include(&mut self, inc: &ast::Include) -> Res<()> {
        let at = start(inc.syntax());
        let file = inc.file().map(|f| text(f.syntax())).unwrap_or_default();
        let file = file.trim_matches('"');
        let expected = if self.version == 2 {
            "qelib1.inc"
        } else {
            "stdgates.inc"
        };
        if file != expected {
            return Err(self.err(
                at,
                "include",
                format!(
                    "`include \"{file}\"` is not supported: an OpenQASM {} program includes only \
                     \"{expected}\"; paste any other gate definitions into the program",
                    self.version
                ),
            ));
        }
        self.included = true;
        Ok(())
    }

    fn decl_name(&self, name: Option<ast::Name>, node: &SyntaxNode) -> Res<String> {
        let at = start(node);
        let Some(name) = name.map(|n| text(n.syntax())) else {
            return Err(self.err(at, &first_word(node), "the declaration needs a name".to_string()));
        };
        if self.qregs.iter().chain(&self.cregs).any(|r| r.name == name) {
            return Err(self.err(
                at,
                &name,
                format!("`{name}` is already declared: give each register its own name"),
            ));
        }
        Ok(name)
    }

    /// A register size: absent is 1, else a positive integer literal.
    fn designator(&self, d: Option<ast::Designator>, what: &str) -> Res<usize> {
        let Some(d) = d else { return Ok(1) };
        let at = start(d.syntax());
        let size = d.expr().and_then(|e| int_literal(e.syntax()));
        match size {
            Some(n) if n > 0 => Ok(n),
            _ => Err(self.err(
                at,
                what,
                format!("a `{what}` register size is a positive whole number, e.g. `{what}[2]`"),
            )),
        }
    }

    fn bare_measure(&self, at: usize) -> QasmError {
        self.err(
            at,
            "measure",
            "a measurement needs a target bit: write `c[0] = measure q[0];` (or `measure q[0] -> c[0];`)"
                .to_string(),
        )
    }

    fn measure(&mut self, a: &ast::AssignmentStmt) -> Res<()> {
        let at = start(a.syntax());
        let Some(ast::Expr::MeasureExpression(m)) = a.rhs() else {
            return Err(self.err(
                at,
                "=",
                "classical assignment is not supported; only `c = measure q;` writes a bit: remove it"
                    .to_string(),
            ));
        };
        let lhs = a.syntax().children().find(|c| {
            matches!(
                c.kind(),
                SyntaxKind::IDENTIFIER | SyntaxKind::INDEXED_IDENTIFIER | SyntaxKind::NAME
            )
        });
        let Some(lhs) = lhs else {
            return Err(self.bare_measure(at));
        };
        let bits = self.operand(&lhs, true)?;
        let Some(operand) = m.gate_operand() else {
            return Err(self.bare_measure(at));
        };
        let qubits = self.qubit_operand(operand.syntax())?;
        if qubits.len() != bits.len() {
            return Err(self.err(
                at,
                "measure",
                format!(
                    "{} qubits are measured into {} bits: measure a register into a bit register of \
                     the same size, or one qubit into one bit",
                    qubits.len(),
                    bits.len()
                ),
            ));
        }
        for (q, c) in qubits.into_iter().zip(bits) {
            if self.measured[q] {
                return Err(self.err(
                    at,
                    "measure",
                    format!(
                        "qubit {} is measured twice; measurements are terminal: measure each qubit once",
                        self.qubit_name(q)
                    ),
                ));
            }
            if self.written[c] {
                return Err(self.err(
                    at,
                    "measure",
                    format!(
                        "bit {} is written twice; give each measurement its own bit",
                        bit_name(&self.cregs, c)
                    ),
                ));
            }
            self.measured[q] = true;
            self.written[c] = true;
            self.measures.push((q, c));
        }
        Ok(())
    }

    fn qubit_name(&self, q: usize) -> String {
        bit_name(&self.qregs, q)
    }

    fn check_unmeasured(&self, at: usize, what: &str, q: usize) -> Res<()> {
        if self.measured.get(q).copied().unwrap_or(false) {
            return Err(self.err(
                at,
                what,
                format!(
                    "`{what}` acts on qubit {} after it was measured; measurements are terminal: \
                     move the measurement after the qubit's last operation",
                    self.qubit_name(q)
                ),
            ));
        }
        Ok(())
    }

    fn push(&mut self, at: usize, op: Op) -> Res<()> {
        if self.ops.len() >= self.limits.max_ops {
            return Err(self.err(
                at,
                &first_word_at(self.src, at),
                format!(
                    "the program lowers to more than {} native operations (after unrolling ccx, defined \
                     gates and register broadcasts); split it into smaller runs",
                    self.limits.max_ops
                ),
            ));
        }
        self.ops.push(op);
        Ok(())
    }

    fn duration(&self, at: usize, d: Option<ast::Designator>) -> Res<f64> {
        let bad = || {
            self.err(
                at,
                "delay",
                "a delay is a duration literal with a unit: ns, us, ms, s or dt (1 ns), e.g. `delay[100ns] q[0];`"
                    .to_string(),
            )
        };
        let Some(ast::Expr::TimingLiteral(t)) = d.and_then(|d| d.expr()) else {
            return Err(bad());
        };
        let (Some(value), Some(unit)) = (t.literal(), t.identifier()) else {
            return Err(bad());
        };
        let scale = match text(unit.syntax()).as_str() {
            "ns" | "dt" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            _ => return Err(bad()),
        };
        let ns = number(value.syntax()).map(|v| v * scale);
        match ns {
            Some(ns) if ns.is_finite() && ns >= 0.0 => Ok(ns),
            _ => Err(bad()),
        }
    }

    /// Qubits of one operand: a register (all its qubits) or register[index].
    fn qubit_operand(&self, node: &SyntaxNode) -> Res<Vec<usize>> {
        self.operand(node, false)
    }

    fn operand_list(&self, list: &SyntaxNode) -> Res<Vec<Vec<usize>>> {
        list.children().map(|n| self.qubit_operand(&n)).collect()
    }

    /// Bits of an operand in the quantum (or classical) registers.
    fn operand(&self, node: &SyntaxNode, classical: bool) -> Res<Vec<usize>> {
        let at = start(node);
        let (regs, kind) = if classical {
            (&self.cregs, "bit")
        } else {
            (&self.qregs, "qubit")
        };
        let (name, index) = match node.kind() {
            SyntaxKind::IDENTIFIER | SyntaxKind::NAME => (text(node), None),
            SyntaxKind::INDEXED_IDENTIFIER => {
                let name = node
                    .children()
                    .find(|c| c.kind() == SyntaxKind::IDENTIFIER)
                    .map(|c| text(&c))
                    .unwrap_or_default();
                let ops: Vec<SyntaxNode> = node
                    .children()
                    .filter(|c| c.kind() == SyntaxKind::INDEX_OPERATOR)
                    .collect();
                let index = match ops.as_slice() {
                    [op] => op
                        .children()
                        .find(|c| c.kind() == SyntaxKind::EXPRESSION_LIST)
                        .filter(|l| l.children().count() == 1)
                        .and_then(|l| l.first_child())
                        .and_then(|e| int_literal(&e)),
                    _ => None,
                };
                let Some(index) = index else {
                    return Err(self.err(
                        at,
                        &text(node),
                        format!(
                            "`{}`: index ranges, sets and expressions are not supported; \
                             name one {kind} as `{name}[0]` or the whole register as `{name}`",
                            text(node)
                        ),
                    ));
                };
                (name, Some(index))
            }
            _ => {
                return Err(self.err(
                    at,
                    &text(node),
                    format!(
                        "`{}` is not a {kind}: name a register or one of its {kind}s, e.g. `q` or `q[0]`",
                        text(node)
                    ),
                ))
            }
        };
        let Some(reg) = regs.iter().find(|r| r.name == name) else {
            return Err(self.err(
                at,
                &name,
                format!("`{name}` is not a declared {kind} register: declare it before its use"),
            ));
        };
        match index {
            None => Ok((reg.offset..reg.offset + reg.size).collect()),
            Some(i) if i < reg.size => Ok(vec![reg.offset + i]),
            Some(i) => Err(self.err(
                at,
                &text(node),
                format!(
                    "`{name}[{i}]` is out of range: register `{name}` has {} {kind}s (indices 0 to {})",
                    reg.size,
                    reg.size - 1
                ),
            )),
        }
    }

    /// The gate a call names, with the standard library's availability.
    fn gate_ref(&self, at: usize, name: &str) -> Res<GateRef> {
        if let Some(&i) = self.gate_index.get(name) {
            return Ok(GateRef::User(i));
        }
        if let Some(std) = Std::named(name) {
            let builtin = name == "U" || (name == "CX" && self.version == 2);
            if !builtin && !self.included {
                let file = if self.version == 2 {
                    "qelib1.inc"
                } else {
                    "stdgates.inc"
                };
                return Err(self.err(
                    at,
                    name,
                    format!(
                        "gate `{name}` comes from the standard library: add `include \"{file}\";` \
                         after the OPENQASM line"
                    ),
                ));
            }
            return Ok(GateRef::Std(std));
        }
        if UNSUPPORTED_STD.contains(&name) {
            return Err(self.err(
                at,
                name,
                format!(
                    "gate `{name}` is not supported: define it with `gate {name} ... {{ ... }}` from \
                     the supported gates ({SUPPORTED_LIST})"
                ),
            ));
        }
        Err(self.err(
            at,
            name,
            format!(
                "unknown gate `{name}`: use a supported gate ({SUPPORTED_LIST}) or define it with \
                 `gate` before its first use"
            ),
        ))
    }

    fn signature(&self, gate: GateRef) -> (usize, usize) {
        match gate {
            GateRef::Std(s) => s.signature(),
            GateRef::User(i) => (self.gates[i].params, self.gates[i].qubits),
            GateRef::Barrier => (0, 0),
        }
    }

    /// Name, argument nodes and operand nodes of a gate call, with the arity
    /// checked.
    fn call_parts(
        &self,
        call: &ast::GateCallExpr,
    ) -> Res<(String, GateRef, Vec<SyntaxNode>, Vec<SyntaxNode>)> {
        let at = start(call.syntax());
        let name = call.identifier().map(|i| text(i.syntax())).unwrap_or_default();
        let gate = self.gate_ref(at, &name)?;
        let args: Vec<SyntaxNode> = call
            .arg_list()
            .and_then(|a| a.expression_list())
            .map(|l| l.syntax().children().collect())
            .unwrap_or_default();
        let operands: Vec<SyntaxNode> = call
            .qubit_list()
            .map(|l| l.syntax().children().collect())
            .unwrap_or_default();
        let (np, nq) = self.signature(gate);
        if args.len() != np || operands.len() != nq {
            return Err(self.err(
                at,
                &name,
                format!(
                    "gate `{name}` takes {np} angle parameter(s) and {nq} qubit(s), got {} and {}; \
                     fix the call",
                    args.len(),
                    operands.len()
                ),
            ));
        }
        Ok((name, gate, args, operands))
    }

    fn top_call(&mut self, call: &ast::GateCallExpr) -> Res<()> {
        let at = start(call.syntax());
        let (name, gate, arg_nodes, operand_nodes) = self.call_parts(call)?;
        let mut args = Vec::with_capacity(arg_nodes.len());
        for n in &arg_nodes {
            let v = self.expr(n, &[])?.eval(&[]);
            args.push(self.finite(start(n), &name, v)?);
        }
        let operands = operand_nodes
            .iter()
            .map(|n| self.qubit_operand(n))
            .collect::<Res<Vec<_>>>()?;
        // Register operands broadcast (OpenQASM 2): all registers the same
        // size, single qubits repeated.
        let width = operands
            .iter()
            .map(Vec::len)
            .filter(|&n| n != 1)
            .max()
            .unwrap_or(1);
        if operands.iter().any(|o| o.len() != 1 && o.len() != width) {
            return Err(self.err(
                at,
                &name,
                format!("gate `{name}` gets registers of different sizes; broadcast only over registers of one size"),
            ));
        }
        for k in 0..width {
            let qs: Vec<usize> = operands
                .iter()
                .map(|o| if o.len() == 1 { o[0] } else { o[k] })
                .collect();
            for &q in &qs {
                self.check_unmeasured(at, &name, q)?;
            }
            self.apply(at, &name, gate, &args, &qs)?;
        }
        Ok(())
    }

    fn finite(&self, at: usize, name: &str, v: f64) -> Res<f64> {
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.err(
                at,
                name,
                format!(
                    "an angle of gate `{name}` evaluates to {v} (a division by zero?): fix the expression"
                ),
            ))
        }
    }

    fn apply(&mut self, at: usize, name: &str, gate: GateRef, args: &[f64], qs: &[usize]) -> Res<()> {
        if let Some(dup) = qs.iter().enumerate().find(|(i, q)| qs[..*i].contains(q)) {
            return Err(self.err(
                at,
                name,
                format!(
                    "gate `{name}` uses qubit {} twice; its qubits must be distinct",
                    self.qubit_name(*dup.1)
                ),
            ));
        }
        match gate {
            GateRef::Std(s) => {
                for op in s.lower(args, qs) {
                    self.push(at, op)?;
                }
            }
            GateRef::Barrier => self.push(at, Op::Barrier(qs.to_vec()))?,
            GateRef::User(i) => {
                let body = self.gates[i].body.clone();
                for c in &body {
                    let mut a = Vec::with_capacity(c.args.len());
                    for e in &c.args {
                        a.push(self.finite(at, name, e.eval(args))?);
                    }
                    let q: Vec<usize> = c.qubits.iter().map(|&k| qs[k]).collect();
                    self.apply(at, name, c.gate, &a, &q)?;
                }
            }
        }
        Ok(())
    }
}

/// A decimal integer or float literal (underscores allowed, as OpenQASM does).
fn number(node: &SyntaxNode) -> Option<f64> {
    let token = node.first_token()?;
    match token.kind() {
        SyntaxKind::INT_NUMBER | SyntaxKind::FLOAT_NUMBER => token.text().replace('_', "").parse().ok(),
        _ => None,
    }
}

fn int_literal(node: &SyntaxNode) -> Option<usize> {
    let token = node.first_token()?;
    if node.kind() != SyntaxKind::LITERAL || token.kind() != SyntaxKind::INT_NUMBER {
        return None;
    }
    token.text().replace('_', "").parse().ok()
}

fn first_word(node: &SyntaxNode) -> String {
    let t = text(node);
    t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
        .unwrap_or("statement")
        .to_string()
}

fn first_word_at(src: &Source, at: usize) -> String {
    src.text
        .get(at..)
        .and_then(|t| {
            t.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .find(|w| !w.is_empty())
        })
        .unwrap_or("statement")
        .to_string()
}

/// `name[i]` of bit `k` over registers.
fn bit_name(regs: &[Reg], k: usize) -> String {
    regs.iter()
        .find(|r| k >= r.offset && k < r.offset + r.size)
        .map_or_else(|| k.to_string(), |r| format!("{}[{}]", r.name, k - r.offset))
}
