//! Parser and lowering tests: every supported construct with its lowered
//! operations, every refused one with its position, OpenQASM 2 against 3,
//! the emitter's round trip and fuzzing of the parser. Long because each
//! construct of docs/circuits.md has its own case.

use std::f64::consts::{FRAC_PI_2, PI};

use proptest::prelude::*;

use super::*;
use crate::controls::ControlProfile;
use crate::sim::engine::{rotation, Model, Register};
use crate::sim::NoiseProfile;

const V3: &str = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\n";
const V2: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n";

fn ok(src: &str) -> Circuit {
    match parse(src, &CircuitLimits::default()) {
        Ok(c) => c,
        Err(e) => panic!("{src}\n{e}"),
    }
}

/// A v3 program on `qubit[n] q; bit[n] c;` with `body` and `c = measure q;`.
fn v3(n: usize, body: &str) -> String {
    format!("{V3}qubit[{n}] q;\nbit[{n}] c;\n{body}\nc = measure q;\n")
}

fn ops(n: usize, body: &str) -> Vec<Op> {
    ok(&v3(n, body)).ops
}

fn refused(src: &str) -> QasmError {
    match parse(src, &CircuitLimits::default()) {
        Ok(c) => panic!("accepted {src}: {c:?}"),
        Err(e) => e,
    }
}

/// Refused at (line, column) naming `construct`, with `words` in the message.
fn assert_refused(src: &str, line: usize, column: usize, construct: &str, words: &str) {
    let e = refused(src);
    assert_eq!((e.line, e.column), (line, column), "{e}");
    assert_eq!(e.construct, construct, "{e}");
    assert!(e.message.contains(words), "{e}");
    assert!(e
        .to_string()
        .starts_with(&format!("line {line}, column {column}: ")));
}

#[test]
fn single_qubit_gates_lower_to_native_ops() {
    let body = "x q[0]; y q[0]; z q[0]; h q[0]; s q[0]; sdg q[0]; t q[0]; tdg q[0]; sx q[0]; id q[0];";
    use Op::*;
    assert_eq!(
        ops(1, body),
        [
            X(0),
            Y(0),
            Z(0),
            H(0),
            S(0),
            Sdg(0),
            T(0),
            Tdg(0),
            Rx(0, FRAC_PI_2)
        ]
    );
    let body = "rx(0.5) q[0]; ry(-0.25) q[0]; rz(pi) q[0]; p(1) q[0]; u1(2) q[0]; phase(3) q[0];";
    assert_eq!(
        ops(1, body),
        [
            Rx(0, 0.5),
            Ry(0, -0.25),
            Rz(0, PI),
            Rz(0, 1.0),
            Rz(0, 2.0),
            Rz(0, 3.0)
        ]
    );
    // u(theta, phi, lambda) = rz(lambda) ry(theta) rz(phi); u2 = u(pi/2, ..).
    let body = "U(0.1, 0.2, 0.3) q[0]; u(1, 2, 3) q[0]; u3(4, 5, 6) q[0]; u2(0.7, 0.8) q[0];";
    assert_eq!(
        ops(1, body),
        [
            Rz(0, 0.3),
            Ry(0, 0.1),
            Rz(0, 0.2),
            Rz(0, 3.0),
            Ry(0, 1.0),
            Rz(0, 2.0),
            Rz(0, 6.0),
            Ry(0, 4.0),
            Rz(0, 5.0),
            Rz(0, 0.8),
            Ry(0, FRAC_PI_2),
            Rz(0, 0.7)
        ]
    );
}

#[test]
fn two_and_three_qubit_gates() {
    use Op::*;
    assert_eq!(
        ops(3, "cx q[0], q[1]; CX q[1], q[2]; cz q[2], q[0]; swap q[0], q[2];"),
        [Cx(0, 1), Cx(1, 2), Cz(2, 0), Swap(0, 2)]
    );
    assert_eq!(
        ops(3, "ccx q[2], q[0], q[1];"),
        [
            H(1),
            Cx(0, 1),
            Tdg(1),
            Cx(2, 1),
            T(1),
            Cx(0, 1),
            Tdg(1),
            Cx(2, 1),
            T(0),
            T(1),
            H(1),
            Cx(2, 0),
            T(2),
            Tdg(0),
            Cx(2, 0)
        ]
    );
}

#[test]
fn ccx_lowering_is_a_toffoli() {
    // Noise-free, every basis state maps to itself with the target flipped
    // when both controls are 1.
    let ideal = Model::new(
        &NoiseProfile::builtin("sim_local").expect("builtin"),
        &ControlProfile::default(),
    )
    .ideal();
    for input in 0..8usize {
        let prep: String = (0..3)
            .filter(|q| input >> (2 - q) & 1 == 1)
            .map(|q| format!("x q[{q}];"))
            .collect();
        let c = ok(&v3(3, &format!("{prep} ccx q[0], q[1], q[2];")));
        let mut r = Register::new(3, ideal.clone());
        r.run(&c.ops);
        let out = if input & 0b110 == 0b110 { input ^ 1 } else { input };
        let p = r.populations();
        assert!((p[out] - 1.0).abs() < 1e-12, "{input:03b}: {p:?}");
    }
}

#[test]
fn angle_expressions() {
    let c = ok(&v3(
        1,
        "rz(pi/2) q[0]; rz(-pi) q[0]; rz(2*pi/3 - 0.5) q[0]; rz(-(1+2)*3) q[0]; rz(1_000.5e-3) q[0]; rz(π/4) q[0];",
    ));
    let angles: Vec<f64> = c
        .ops
        .iter()
        .map(|o| match o {
            Op::Rz(_, a) => *a,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        angles,
        [PI / 2.0, -PI, 2.0 * PI / 3.0 - 0.5, -9.0, 1.0005, PI / 4.0]
    );
}

#[test]
fn gate_definitions_with_parameters_unroll() {
    use Op::*;
    let c = ok(&v3(
        2,
        "gate rot(a, b) x1 { rx(a/2) x1; rz(-b) x1; }\n\
         gate ent(t) x1, x2 { h x1; rot(t, t*2) x2; cx x1, x2; barrier x1, x2; }\n\
         ent(pi) q[1], q[0];",
    ));
    assert_eq!(
        c.ops,
        [
            H(1),
            Rx(0, FRAC_PI_2),
            Rz(0, -2.0 * PI),
            Cx(1, 0),
            Barrier(vec![1, 0])
        ]
    );
    // A definition may be empty, and may be broadcast over registers.
    let c = ok(&format!(
        "{V3}qubit[2] a;\nqubit[2] b;\nbit[4] c;\ngate nop x1 {{ }}\ngate pair x1, x2 {{ cz x1, x2; }}\nnop a;\npair a, b;\npair a[0], b;\nc[0] = measure a[0];\n"
    ));
    assert_eq!(c.ops, [Cz(0, 2), Cz(1, 3), Cz(0, 2), Cz(0, 3)]);
}

#[test]
fn registers_broadcast_measure_reset_barrier_delay() {
    use Op::*;
    let c = ok(&format!(
        "{V3}qubit[2] a;\nqubit b;\nbit[2] m;\nbit n;\nh a;\ncx a, b;\nreset b;\nbarrier a[1], b;\nbarrier;\n\
         delay[100ns] a[0];\ndelay[2us] b;\ndelay[1.5ms] a;\ndelay[1s] a[1];\ndelay[7dt] a[0];\n\
         m = measure a;\nn[0] = measure b[0];\n"
    ));
    assert_eq!(
        c.ops,
        [
            H(0),
            H(1),
            Cx(0, 2),
            Cx(1, 2),
            Reset(2),
            Barrier(vec![1, 2]),
            Barrier(vec![0, 1, 2]),
            Delay(0, 100.0),
            Delay(2, 2000.0),
            Delay(0, 1.5e6),
            Delay(1, 1.5e6),
            Delay(1, 1e9),
            Delay(0, 7.0)
        ]
    );
    assert_eq!(c.measures, [(0, 0), (1, 1), (2, 2)]);
    assert_eq!(c.qubits, 3);
    assert_eq!(c.qregs, [("a".to_string(), 2), ("b".to_string(), 1)]);
    assert_eq!(c.registers, [("m".to_string(), 2), ("n".to_string(), 1)]);
    assert_eq!(c.version, 3);
}

#[test]
fn openqasm_2_and_3_give_the_same_circuit() {
    let v2 = format!(
        "{V2}qreg q[3];\ncreg c[2];\ncreg d[1];\nU(0.1,0.2,0.3) q[0];\nu2(0,pi) q[1];\nu3(1,2,3) q[2];\n\
         CX q[0],q[1];\nccx q[0],q[1],q[2];\nbarrier q;\nmeasure q[0] -> c[1];\nmeasure q[1]->c[0];\nmeasure q[2] -> d[0];\n"
    );
    let v3 = format!(
        "{V3}qubit[3] q;\nbit[2] c;\nbit[1] d;\nU(0.1,0.2,0.3) q[0];\nu2(0,pi) q[1];\nu3(1,2,3) q[2];\n\
         cx q[0],q[1];\nccx q[0],q[1],q[2];\nbarrier q;\nc[1] = measure q[0];\nc[0] = measure q[1];\nd[0] = measure q[2];\n"
    );
    let (a, b) = (ok(&v2), ok(&v3));
    assert_eq!((a.version, b.version), (2, 3));
    assert_eq!(a.ops, b.ops);
    assert_eq!(a.measures, b.measures);
    assert_eq!(a.registers, b.registers);
    assert_eq!((a.depth, &a.gate_counts), (b.depth, &b.gate_counts));
    // Whole-register measurement, and the integer version form.
    let whole2 = ok("OPENQASM 2;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q;\nmeasure q -> c;\n");
    let whole3 = ok(&v3_whole());
    assert_eq!(whole2.ops, whole3.ops);
    assert_eq!(whole2.measures, whole3.measures);
}

fn v3_whole() -> String {
    format!("{V3}qubit[2] q;\nbit[2] c;\nh q;\nc = measure q;\n")
}

#[test]
fn keys_follow_qiskit_bit_order() {
    let c = ok(&format!(
        "{V3}qubit[3] q;\nbit[2] a;\nbit[3] b;\na[0] = measure q[0];\nb[2] = measure q[1];\nb[0] = measure q[2];\n"
    ));
    // clbits: a[0]=0 a[1]=1 b[0]=2 b[1]=3 b[2]=4; last register first, bit 0 rightmost.
    assert_eq!(c.key(&[true, false, false, false, true]), "100 01");
    assert_eq!(c.key(&[false, true, true, false, false]), "001 10");
    assert_eq!(c.key(&[]), "000 00");
    // Basis index: qubit 0 is the most significant bit.
    assert_eq!(c.basis_key(0b100), "000 01");
    assert_eq!(c.basis_key(0b010), "100 00");
    assert_eq!(c.basis_key(0b001), "001 00");
}

#[test]
fn statistics() {
    let src = v3(
        3,
        "h q[0]; cx q[0], q[1]; t q[2]; barrier q; x q[2]; delay[10ns] q[1]; reset q[0];",
    );
    let c = ok(&src);
    // h, cx on 0-1 (2 layers); t on 2 (1); the barrier aligns all at 2;
    // x on 2 -> 3, delay on 1 -> 3, reset on 0 -> 3.
    assert_eq!(c.depth, 3);
    let counts: Vec<(&str, usize)> = c.gate_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        counts,
        [
            ("barrier", 1),
            ("cx", 1),
            ("delay", 1),
            ("h", 1),
            ("measure", 3),
            ("reset", 1),
            ("t", 1),
            ("x", 1)
        ]
    );
    assert_eq!(c.sha256, crate::budget::hex(&Sha256::digest(src.as_bytes())));
    assert_eq!(c.sha256.len(), 64);
    assert_eq!(depth(2, &[Op::H(0), Op::Cx(0, 1), Op::H(1)]), 3);
}

#[test]
fn comments_and_layout_do_not_matter() {
    let a = ok(&v3_whole());
    let b = ok("// a comment\nOPENQASM 3.0; /* block */ include \"stdgates.inc\";\nqubit[2] q; bit[2] c;\n  h   q ;\nc=measure q;");
    assert_eq!(a.ops, b.ops);
    assert_eq!(a.measures, b.measures);
}

#[test]
fn refused_constructs_name_line_and_column() {
    let head = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\n";
    let cases: &[(&str, usize, &str, &str)] = &[
        ("if (c[0] == 1) { x q[0]; }", 1, "if", "classical control flow"),
        ("for int i in [0:1] { x q[0]; }", 1, "for", "unroll the loop"),
        ("while (true) { x q[0]; }", 1, "while", "classical control flow"),
        ("def f() { }", 1, "def", "subroutines"),
        ("extern f(int) -> int;", 1, "extern", "external functions"),
        ("box { x q[0]; }", 1, "box", "timing boxes"),
        ("cal { }", 1, "cal", "pulse-level calibration"),
        ("defcal x $0 { }", 1, "defcal", "pulse-level calibration"),
        (
            "defcalgrammar \"openpulse\";",
            1,
            "defcalgrammar",
            "pulse-level calibration",
        ),
        ("input float th;", 1, "input", "run-time parameters"),
        ("output bit r;", 1, "output", "run-time parameters"),
        ("let r = q[0];", 1, "let", "aliases"),
        ("int a = 3;", 1, "int", "classical variables"),
        ("float[64] f;", 1, "float", "classical variables"),
        ("angle a;", 1, "angle", "classical variables"),
        ("const int n = 2;", 1, "const", "classical variables"),
        ("x q[0]; ctrl @ x q[0], q[1];", 9, "ctrl", "gate modifiers"),
        ("inv @ s q[0];", 1, "inv", "gate modifiers"),
        ("gphase(pi);", 1, "gphase", "global phase"),
        ("x $0;", 3, "$0", "hardware qubits"),
        ("opaque foo q;", 1, "opaque", "opaque gates"),
        ("pragma foo", 1, "pragma foo", "pragmas"),
        ("@bar\nx q[0];", 1, "@bar", "pragmas and annotations"),
    ];
    for (stmt, col, construct, words) in cases {
        let src = format!("{head}{stmt}\nc = measure q;\n");
        let e = refused(&src);
        assert_eq!((e.line, e.column), (5, *col), "{stmt}: {e}");
        assert_eq!(e.construct, *construct, "{stmt}: {e}");
        assert!(e.message.contains(words), "{stmt}: {e}");
        assert!(
            e.message.contains("not supported") && e.message.contains(':'),
            "{e}"
        );
    }
    let e = refused(&format!("{head}if (c[0] == 1) {{ x q[0]; }}\nc = measure q;\n"));
    assert_eq!(
        e.to_string(),
        "line 5, column 1: `if` (classical control flow) is not supported; synqc runs straight-line \
         circuits: remove the condition"
    );
    // OpenQASM 2's braceless if, and a refusal in a later line.
    assert_refused(
        &format!("{V2}qreg q[1];\ncreg c[1];\n\nif(c==1) x q[0];\nmeasure q -> c;\n"),
        6,
        1,
        "if",
        "remove the condition",
    );
}

#[test]
fn refused_statements_with_actions() {
    let head = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\n";
    let case = |stmt: &str, col: usize, construct: &str, words: &str| {
        assert_refused(
            &format!("{head}{stmt}\nc = measure q;\n"),
            5,
            col,
            construct,
            words,
        );
    };
    case("c[0] = 1;", 1, "=", "classical assignment");
    case("bit[2] d = 0;", 1, "bit", "remove the initializer");
    case("measure q[0];", 1, "measure", "needs a target bit");
    case("x q[0:1];", 6, ":", "index ranges");
    case("x q[{0, 1}];", 5, "{", "index sets");
    case("x q[2];", 3, "q[2]", "out of range: register `q` has 2 qubits");
    case("x r[0];", 3, "r", "not a declared qubit register");
    case("foo q[0];", 1, "foo", "unknown gate `foo`");
    case("cy q[0], q[1];", 1, "cy", "define it with `gate cy");
    case(
        "cx q[0];",
        1,
        "cx",
        "takes 0 angle parameter(s) and 2 qubit(s), got 0 and 1",
    );
    case(
        "rx q[0];",
        1,
        "rx",
        "takes 1 angle parameter(s) and 1 qubit(s), got 0 and 1",
    );
    case("u2(1) q[0];", 1, "u2", "takes 2 angle parameter(s)");
    case("cx q[1], q[1];", 1, "cx", "uses qubit q[1] twice");
    case("rx(1/0) q[0];", 4, "rx", "evaluates to inf");
    case("rx(2^3) q[0];", 5, "^", "outside the supported language");
    case("rx(2 % 3) q[0];", 6, "%", "outside the supported language");
    case("c[0] = \"1\";", 8, "\"1\"", "outside the supported language");
    case("delay q[0];", 1, "delay", "add the duration");
    case("rx(theta) q[0];", 4, "theta", "`theta` is not pi or a parameter");
    case("delay[100] q[0];", 1, "delay", "duration literal with a unit");
    case("delay[5xs] q[0];", 1, "delay", "duration literal with a unit");
    case("qubit[2] q;", 1, "q", "already declared");
    case("include \"other.inc\";", 1, "include", "only \"stdgates.inc\"");
    case("OPENQASM 3.0;", 1, "OPENQASM", "must be the first statement");
    case("gate h a { x a; }", 1, "h", "already defined");
    case("gate g a { x b; }", 14, "b", "not one of its qubit arguments");
    case(
        "gate g a { reset a; }",
        12,
        "reset",
        "gate calls and barriers only",
    );
    case("gate g a { g a; }", 12, "g", "unknown gate `g`");
}

#[test]
fn measurements_are_terminal_and_unique() {
    let head = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\n";
    let case = |body: &str, line: usize, col: usize, construct: &str, words: &str| {
        assert_refused(&format!("{head}{body}"), line, col, construct, words);
    };
    case(
        "c[0] = measure q[0];\nx q[0];\n",
        6,
        1,
        "x",
        "acts on qubit q[0] after it was measured",
    );
    case(
        "c[0] = measure q[0];\nreset q;\n",
        6,
        1,
        "reset",
        "after it was measured",
    );
    case(
        "c[0] = measure q[0];\nbarrier;\n",
        6,
        1,
        "barrier",
        "after it was measured",
    );
    case(
        "c[0] = measure q[0];\ndelay[1ns] q[0];\n",
        6,
        1,
        "delay",
        "after it was measured",
    );
    case(
        "gate g a { }\nc[0] = measure q[0];\ng q[0];\n",
        7,
        1,
        "g",
        "after it was measured",
    );
    case(
        "c[0] = measure q[0];\nc[1] = measure q[0];\n",
        6,
        1,
        "measure",
        "q[0] is measured twice",
    );
    case(
        "c[0] = measure q[0];\nc[0] = measure q[1];\n",
        6,
        1,
        "measure",
        "c[0] is written twice",
    );
    case(
        "c[0] = measure q;\n",
        5,
        1,
        "measure",
        "2 qubits are measured into 1 bits",
    );
    case("x q;\n", 6, 1, "measure", "measures no qubit");
    // Operations on other qubits after a measurement are fine.
    let c = ok(&format!(
        "{head}c[0] = measure q[0];\nx q[1];\nc[1] = measure q[1];\n"
    ));
    assert_eq!(c.ops, [Op::X(1)]);
}

#[test]
fn standard_gates_need_their_include() {
    assert_refused(
        "OPENQASM 3.0;\nqubit q;\nbit c;\nh q;\nc = measure q;\n",
        4,
        1,
        "h",
        "add `include \"stdgates.inc\";`",
    );
    assert_refused(
        "OPENQASM 2.0;\nqreg q[1];\ncreg c[1];\nh q[0];\nmeasure q -> c;\n",
        4,
        1,
        "h",
        "add `include \"qelib1.inc\";`",
    );
    assert_refused(
        "OPENQASM 2.0;\ninclude \"stdgates.inc\";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n",
        2,
        1,
        "include",
        "includes only \"qelib1.inc\"",
    );
    // The builtins need no include: U in both, CX in OpenQASM 2.
    let c = ok("OPENQASM 2.0;\nqreg q[2];\ncreg c[2];\nU(pi,0,pi) q[0];\nCX q[0],q[1];\nmeasure q -> c;\n");
    assert_eq!(c.ops.len(), 4);
    ok("OPENQASM 3.0;\nqubit q;\nbit c;\nU(pi,0,pi) q;\nc = measure q;\n");
    // No version line reads as OpenQASM 3.
    assert_eq!(
        ok("include \"stdgates.inc\";\nqubit q;\nbit c;\nx q;\nc = measure q;\n").version,
        3
    );
    assert_refused(
        "OPENQASM 4.0;\nqubit q;\nbit c;\nc = measure q;\n",
        1,
        1,
        "OPENQASM",
        "version 4.0 is not supported",
    );
}

#[test]
fn openqasm_2_forms_keep_their_positions() {
    // Errors in rewritten statements point at what the client wrote.
    assert_refused(
        &format!("{V2}qreg q[2];\ncreg c[2];\nmeasure q[5] -> c[0];\n"),
        5,
        9,
        "q[5]",
        "out of range",
    );
    assert_refused(
        &format!("{V2}qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[7];\n"),
        5,
        17,
        "c[7]",
        "out of range: register `c` has 2 bits",
    );
    assert_refused(&format!("{V2}qreg q;\n"), 3, 1, "qreg", "`qreg name[size];`");
    assert_refused(
        &format!("{V2}qreg q[2];\nqreg q[1];\n"),
        4,
        1,
        "q",
        "already declared",
    );
    assert_refused(
        &format!("{V2}qreg q[2];\ncreg c[2];\nh q[0] q[1];\n"),
        5,
        7,
        "q[1];",
        "syntax error",
    );
}

#[test]
fn limits_are_enforced() {
    let limits = CircuitLimits {
        max_qubits: 3,
        max_ops: 5,
    };
    let e = parse(&format!("{V3}qubit[2] a;\nqubit[2] b;\n"), &limits).expect_err("too many qubits");
    assert_eq!((e.line, e.column, e.construct.as_str()), (4, 1, "qubit"));
    assert!(e.message.contains("declares 4 qubits, more than the 3"), "{e}");
    let three = CircuitLimits {
        max_qubits: 3,
        max_ops: 3,
    };
    let e = parse(&v3(1, "x q; x q; x q;\nh q;"), &three).expect_err("too many ops");
    assert_eq!((e.line, e.column), (6, 1), "{e}");
    assert!(e.message.contains("more than 3 native operations"), "{e}");
    // ccx counts as its 15 native operations.
    let e = parse(&v3(3, "ccx q[0], q[1], q[2];"), &limits).expect_err("too many ops");
    assert_eq!((e.line, e.column), (5, 1), "{e}");
    // Exponential unrolling stops at the limit, not after expanding.
    let mut src = format!("{V3}gate g0 a {{ x a; x a; }}\n");
    for i in 1..40 {
        src.push_str(&format!("gate g{i} a {{ g{} a; g{} a; }}\n", i - 1, i - 1));
    }
    src.push_str("qubit q;\nbit c;\ng39 q;\nc = measure q;\n");
    let e = parse(&src, &CircuitLimits::default()).expect_err("too many ops");
    assert!(e.message.contains("more than 10000 native operations"), "{e}");
    // Nesting is bounded whatever the operation count.
    let mut src = format!("{V3}gate g0 a {{ }}\n");
    for i in 1..=MAX_NESTING_TEST {
        src.push_str(&format!("gate g{i} a {{ g{} a; }}\n", i - 1));
    }
    src.push_str("qubit q;\nbit c;\nc = measure q;\n");
    let e = refused(&src);
    assert!(e.message.contains("more than 64 deep"), "{e}");
    // The defaults.
    assert_eq!(
        CircuitLimits::default(),
        CircuitLimits {
            max_qubits: 10,
            max_ops: 10_000
        }
    );
    assert!(parse(&v3(11, ""), &CircuitLimits::default()).is_err());
    ok(&v3(10, "h q;"));
}

const MAX_NESTING_TEST: usize = 65;

#[test]
fn lowering_ten_qubits_at_the_op_limit_unrolls_every_gate() {
    // A full-size program unrolls completely (how long it takes is
    // `synqc bench circuits`' to say, not a timed test's).
    let mut body = String::from("gate layer a, b { h a; cx a, b; rz(pi/8) b; u(0.1, 0.2, 0.3) a; }\n");
    for _ in 0..1600 {
        body.push_str("layer q[0], q[1];\n");
    }
    let src = v3(10, &body);
    let c = ok(&src);
    assert_eq!(c.ops.len(), 1600 * 6);
}

/// Every op the engine has, for the round-trip property.
fn any_op(n: usize, with_pulse: bool) -> BoxedStrategy<Op> {
    let q = 0..n;
    let angle = prop_oneof![
        -10.0f64..10.0,
        Just(0.0),
        Just(-0.0),
        Just(1e-7),
        Just(PI),
        Just(1e300)
    ];
    let pair = (0..n, 0..n).prop_filter("distinct", |(a, b)| a != b);
    let mut s = prop_oneof![
        q.clone().prop_map(Op::X),
        q.clone().prop_map(Op::Y),
        q.clone().prop_map(Op::Z),
        q.clone().prop_map(Op::H),
        q.clone().prop_map(Op::S),
        q.clone().prop_map(Op::Sdg),
        q.clone().prop_map(Op::T),
        q.clone().prop_map(Op::Tdg),
        (q.clone(), angle.clone()).prop_map(|(a, t)| Op::Rx(a, t)),
        (q.clone(), angle.clone()).prop_map(|(a, t)| Op::Ry(a, t)),
        (q.clone(), angle).prop_map(|(a, t)| Op::Rz(a, t)),
        pair.clone().prop_map(|(a, b)| Op::Cx(a, b)),
        pair.clone().prop_map(|(a, b)| Op::Cz(a, b)),
        pair.prop_map(|(a, b)| Op::Swap(a, b)),
        (q.clone(), prop_oneof![0.0f64..5000.0, Just(1e-7), Just(0.0)]).prop_map(|(a, t)| Op::Delay(a, t)),
        q.clone().prop_map(Op::Reset),
        proptest::collection::vec(0..n, 0..=n).prop_map(Op::Barrier),
    ]
    .boxed();
    if with_pulse {
        let pulse =
            (q, [-4.0f64..4.0, -4.0f64..4.0, -4.0f64..4.0], 0..4usize).prop_map(|(a, [x, y, z], special)| {
                // Random axes plus the axes where the ZYZ angles degenerate.
                let (axis, th) = match special {
                    0 => ([0.0, 0.0, 1.0], x),
                    1 => ([1.0, 0.0, 0.0], PI),
                    2 => ([1.0, 1.0, 0.0], PI),
                    _ => ([x, y, z], y),
                };
                let norm = (axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2])
                    .sqrt()
                    .max(1e-9);
                Op::Pulse(a, rotation([axis[0] / norm, axis[1] / norm, axis[2] / norm], th))
            });
        s = prop_oneof![4 => s, 1 => pulse].boxed();
    }
    s
}

fn noisy_dist(n: usize, ops: &[Op], drive_bias: f64) -> Vec<f64> {
    let controls = ControlProfile {
        drive_bias,
        ..Default::default()
    };
    let mut r = Register::new(
        n,
        Model::new(&NoiseProfile::builtin("ibm_quantum").expect("builtin"), &controls),
    );
    r.run(ops);
    r.sync_all();
    r.readout_distribution()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Without pulses the program gives back the very same ops, so the same
    /// distribution under any drive bias.
    #[test]
    fn to_qasm3_round_trips_the_ops(
        n in 1usize..4,
        seed_ops in proptest::collection::vec(any_op(3, false), 0..30),
    ) {
        // An empty barrier synchronizes nothing and is not written out.
        let ops: Vec<Op> = seed_ops
            .into_iter()
            .filter(|op| op_qubits(op).iter().all(|&q| q < n) && *op != Op::Barrier(vec![]))
            .collect();
        let measured: Vec<usize> = (0..n).rev().collect();
        let src = to_qasm3(n, &ops, &measured);
        let c = parse(&src, &CircuitLimits::default()).map_err(|e| TestCaseError::fail(format!("{src}\n{e}")))?;
        prop_assert_eq!(&c.ops, &ops);
        prop_assert_eq!(c.measures, measured.iter().enumerate().map(|(i, &q)| (q, i)).collect::<Vec<_>>());
    }

    /// Pulses come back as rz/ry/rz: the exact noisy distribution matches
    /// (at drive_bias 1, where a pulse is its unitary).
    #[test]
    fn to_qasm3_reproduces_the_noisy_distribution(
        ops in proptest::collection::vec(any_op(3, true), 0..25),
    ) {
        let src = to_qasm3(3, &ops, &[0, 1, 2]);
        let c = parse(&src, &CircuitLimits::default()).map_err(|e| TestCaseError::fail(format!("{src}\n{e}")))?;
        let (a, b) = (noisy_dist(3, &ops, 1.0), noisy_dist(3, &c.ops, 1.0));
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() < 1e-12, "{:?} vs {:?}\n{}", a, b, src);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The parser panics on some malformed input; the token check in front
    /// of it must keep every such input away from it.
    #[test]
    fn arbitrary_token_soup_is_answered(
        src in proptest::collection::vec(prop_oneof![
            Just("OPENQASM 3.0;"), Just("OPENQASM 2.0;"), Just("include \"stdgates.inc\";"), Just("include"),
            Just("\"x\""), Just("qubit"), Just("bit"), Just("qreg"), Just("creg"), Just("measure"), Just("reset"),
            Just("barrier"), Just("delay"), Just("gate"), Just("h"), Just("cx"), Just("U"), Just("q"), Just("c"),
            Just("["), Just("]"), Just("("), Just(")"), Just("{"), Just("}"), Just(";"), Just(","), Just("->"),
            Just("="), Just("-"), Just("+"), Just("*"), Just("/"), Just("0"), Just("1.5"), Just("pi"), Just("ns"),
            Just("10ns"), Just(" "), Just("\n"), Just("$0"), Just("@"), Just(":"), Just("if"), Just("//"),
        ], 0..40),
    ) {
        let _ = parse(&src.concat(), &CircuitLimits::default());
    }

    /// Whatever the input, parsing answers (never panics).
    #[test]
    fn arbitrary_text_is_answered(
        src in "(OPENQASM [23](\\.0)?;)?(include \"(stdgates|qelib1)\\.inc\";)?((qubit|bit|qreg|creg|measure|reset|barrier|delay|gate|h|cx|U|if|for|\\[|\\]|\\(|\\)|\\{|\\}|;|,|->|=|-|\\+|\\*|/|q|c|[0-9]|\\.|pi|ns|\\$|@| |\n|\"|//|/\\*|\\*/)){0,60}",
    ) {
        let _ = parse(&src, &CircuitLimits::default());
    }
}

#[test]
fn a_panic_inside_the_guard_is_a_refusal_not_a_crash() {
    assert_eq!(super::guard(|| 7), Some(7));
    assert_eq!(super::guard(|| -> u8 { panic!("parser assertion") }), None);
    // The guard is left: a later panic is the test's own again.
    assert!(!super::GUARDED.with(std::cell::Cell::get));
}
