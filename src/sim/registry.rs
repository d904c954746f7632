//! The preset registry: every fact the rest of the appliance asks of a
//! preset (its wire name, the qubits it acts on, its smallest budget, the
//! circuits a run simulates, the function that runs it, and the circuits it
//! sends to an executor with the function that reads their counts) in one
//! row per preset. A new preset is a row here and a file in `presets/`; the enum,
//! `Preset::ALL`, the wire names and the dispatch in `sim::run` follow
//! from the rows, and the served OpenAPI document takes its preset lists
//! from `Preset::ALL` and `Preset::min_shots`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::presets::{self, CircuitJob};
use super::{LoopProbe, SimError, SimOutcome, SimRequest};

/// Declares [`Preset`] and its facts from one row per preset:
/// `Variant { name, qubits, min_shots, circuits: |shots| .., run: |req, probe, cancelled| .. }`.
/// The closures are called in place, so each row says in its own words
/// what it does with the budget and the probe.
macro_rules! registry {
    ($(
        $(#[$doc:meta])*
        $variant:ident {
            name: $name:literal,
            qubits: $qubits:expr,
            min_shots: $min_shots:expr,
            circuits: $circuits:expr,
            run: $run:expr,
            jobs: $jobs:expr,
            from_counts: $from_counts:expr $(,)?
        }
    ),* $(,)?) => {
        /// The experiment presets, named on the wire as the registry says.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Preset {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Preset {
            pub const ALL: [Preset; [$($name),*].len()] = [$(Preset::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Preset::$variant => $name,)*
                }
            }

            /// The qubits the preset's circuits act on: 0..qubits() of each
            /// target it runs on (the result's `qubits_used`).
            pub fn qubits(self) -> u32 {
                match self {
                    $(Preset::$variant => $qubits,)*
                }
            }

            /// Smallest shot budget the preset's protocol can run with
            /// (asked at submit time; below it the server answers 422
            /// BUDGET_GUARDRAIL). Every minimum is at most the default
            /// budget (2048).
            pub fn min_shots(self) -> u64 {
                match self {
                    $(Preset::$variant => $min_shots,)*
                }
            }

            /// Circuits one run of the preset simulates at the given budget.
            pub fn circuits(self, shots: u64) -> u64 {
                match self {
                    $(Preset::$variant => ($circuits)(shots),)*
                }
            }

            /// Runs the preset's protocol; [`super::run`] checks the request
            /// first.
            pub(super) fn execute(
                self,
                req: &SimRequest,
                probe: Option<&mut dyn LoopProbe>,
                cancelled: &dyn Fn() -> bool,
            ) -> Result<SimOutcome, SimError> {
                match self {
                    $(Preset::$variant => ($run)(req, probe, cancelled),)*
                }
            }

            /// The circuits a run of the preset sends to an executor
            /// (presets::preset_circuits checks the request first).
            pub(super) fn jobs(self, req: &SimRequest) -> Result<Vec<CircuitJob>, SimError> {
                match self {
                    $(Preset::$variant => ($jobs)(req),)*
                }
            }

            /// The result from the counts those circuits returned.
            pub(super) fn estimate_counts(
                self,
                req: &SimRequest,
                counts: &[Vec<u64>],
                plant: Value,
            ) -> Result<SimOutcome, SimError> {
                match self {
                    $(Preset::$variant => ($from_counts)(req, counts, plant),)*
                }
            }
        }
    };
}

registry! {
    HelloQuantumSim {
        name: "hello_quantum_sim",
        qubits: 2,
        // One circuit: enough shots that the bootstrap resamples differ.
        min_shots: 32,
        circuits: |_| 1,
        run: |req, _, cancelled| presets::hello(req, cancelled),
        jobs: presets::hello::circuits,
        from_counts: presets::hello::from_counts,
    },
    Health {
        name: "health",
        qubits: 1,
        // The smallest reduced protocol; budgets below the full protocol's
        // run a reduced one and say so in the result's warnings.
        min_shots: presets::health::min_shots(),
        // The full protocol, which the default budget runs.
        circuits: |_| presets::health::circuit_count(),
        run: |req, _, cancelled| presets::health(req, cancelled),
        jobs: presets::health::circuits,
        from_counts: presets::health::from_counts,
    },
    Latency {
        name: "latency",
        // One X on qubit 0.
        qubits: 1,
        min_shots: presets::LATENCY_MIN_PROBES * presets::LATENCY_SHOTS_PER_PROBE,
        circuits: presets::latency_probes,
        run: presets::latency,
        jobs: |_| Err(presets::latency::executor_refusal()),
        from_counts: |_, _, _| Err(presets::latency::executor_refusal()),
    },
    BackendCompare {
        name: "backend_compare",
        qubits: 2,
        // Two targets, each needs the single-circuit minimum.
        min_shots: 64,
        circuits: |_| 2,
        run: |req, _, cancelled| presets::backend_compare(req, cancelled),
        jobs: presets::backend_compare::circuits,
        from_counts: presets::backend_compare::from_counts,
    },
    DpdDemo {
        name: "dpd_demo",
        qubits: 1,
        min_shots: 32,
        circuits: |_| 1,
        run: |req, _, cancelled| presets::dpd(req, cancelled),
        jobs: presets::dpd::circuits,
        from_counts: presets::dpd::from_counts,
    },
    GroverDemo {
        name: "grover_demo",
        qubits: 3,
        // Eight outcomes.
        min_shots: 64,
        circuits: |_| 1,
        run: |req, _, cancelled| presets::grover(req, cancelled),
        jobs: presets::grover::circuits,
        from_counts: presets::grover::from_counts,
    },
    Circuit {
        name: "circuit",
        // At least one; a circuit run's own program says how many
        // (RunRecord::qubits, the result's qubits_used).
        qubits: 1,
        // One circuit, as hello_quantum_sim.
        min_shots: 32,
        circuits: |_| 1,
        run: |req: &SimRequest, _, cancelled| match &req.program {
            Some(program) => presets::circuit(req, program, cancelled),
            None => Err(SimError::Invalid("a circuit run needs its program (qasm)".into())),
        },
        jobs: |_| Err(circuit_as_sent()),
        from_counts: |_, _, _| Err(circuit_as_sent()),
    },
}

/// A circuit run goes to its executor as the client wrote it
/// (executor/remote.rs), not as preset circuits.
fn circuit_as_sent() -> SimError {
    SimError::Invalid("a circuit run is sent to its executor as written, not as preset circuits".into())
}

impl Preset {
    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::Preset;

    /// The wire name serde writes is the registry's name, so a request,
    /// a stored record and the help all spell a preset the same way.
    #[test]
    fn serde_and_as_str_agree_on_every_name() {
        for preset in Preset::ALL {
            let wire = serde_json::to_value(preset).expect("serializes");
            assert_eq!(wire, preset.as_str(), "{preset:?}");
            assert_eq!(Preset::parse(preset.as_str()), Some(preset));
            assert!(
                preset.min_shots() <= 2048,
                "{preset:?} exceeds the default budget"
            );
        }
    }
}
