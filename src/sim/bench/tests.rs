//! Tests of the simulator and circuit benchmarks.
use super::*;

#[test]
fn in_memory_loop_measures_something_finite() {
    let mut l = InMemoryLoop::default();
    let v = l.round_trip_us().expect("in-memory loop cannot fail");
    assert!(v.is_finite() && v >= 0.0);
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn circuit_bench_options_parse_and_refuse_nonsense() {
    let b = CircuitBench::from_args(&args("--qubits 3-5 --depth 4 --circuits 2 --seed 9 --in-process"))
        .expect("valid options");
    assert_eq!(
        (b.qubits, b.depth, b.circuits, b.seed, b.in_process),
        (3..=5, 4, 2, 9, true)
    );
    assert_eq!(CircuitBench::from_args(&[]), Ok(CircuitBench::default()));
    assert_eq!(
        CircuitBench::from_args(&args("--qubits 7")).map(|b| b.qubits),
        Ok(7..=7)
    );
    for bad in [
        "--qubits 1-4",
        "--qubits 6-3",
        "--qubits 15",
        "--depth 0",
        "--seed x",
        "--depth",
        "--fast 1",
    ] {
        assert!(CircuitBench::from_args(&args(bad)).is_err(), "{bad}");
    }
}

#[test]
fn random_circuits_have_the_layer_shape_and_follow_the_seed() {
    let b = CircuitBench {
        depth: 3,
        circuits: 2,
        ..CircuitBench::default()
    };
    let cs = b.circuits_of(5);
    assert_eq!(cs.len(), 2);
    assert_ne!(cs[0], cs[1], "circuits of a width differ");
    assert_eq!(cs, b.circuits_of(5), "same seed, same circuits");
    for layer in cs[0].chunks(5 + 2) {
        let (single, pairs) = layer.split_at(5);
        for (q, op) in single.iter().enumerate() {
            assert!(
                matches!(*op, Op::H(p) | Op::X(p) | Op::Rx(p, _) | Op::Ry(p, _) if p == q),
                "{op:?}"
            );
        }
        let mut used: Vec<usize> = pairs
            .iter()
            .flat_map(|op| match *op {
                Op::Cx(a, c) => [a, c],
                ref other => panic!("{other:?}"),
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used.len(), 4, "a pairing uses each qubit at most once");
    }
}

#[test]
fn timing_a_width_simulates_every_circuit() {
    let b = CircuitBench {
        depth: 2,
        circuits: 3,
        ..CircuitBench::default()
    };
    let r = time_width(3, &b.circuits_of(3)).expect("valid circuits");
    assert_eq!(r.qubits, 3);
    assert!(
        r.circuits >= 3 && r.circuits.is_multiple_of(3),
        "whole sets only: {}",
        r.circuits
    );
    assert!(r.wall >= MIN_WIDTH_TIME);
    assert!(r.row().trim_start().starts_with('3'), "{}", r.row());
}
