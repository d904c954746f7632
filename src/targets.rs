//! The hardware target registry: six targets, what they can do, whether
//! this appliance may run them, and the noise profile in force for each.
//! The appliance is air-gapped: a provider target is only ever a simulation
//! of that provider's noise profile, allowed by `allow_provider_simulation`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::config::{Config, NoiseOverride};
use crate::sim::presets::{ideal_twin, IDEAL_TWIN};
use crate::sim::{NoiseProfile, Plant};

#[derive(Clone, Debug, Serialize)]
pub struct Capabilities {
    pub max_shots: u64,
    pub queue_behavior: &'static str,
    pub supported_gates: Vec<&'static str>,
    pub notes: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct HardwareTarget {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
    pub available: bool,
    pub availability_reason: String,
    /// "simulated" (synqc's engine with the target's noise profile) or
    /// "executor" (bound to an external program, docs/circuits.md).
    pub execution: &'static str,
    pub capabilities: Capabilities,
    pub noise_profile: NoiseProfile,
}

/// (id, name, kind, description)
const TARGETS: [(&str, &str, &str, &str); 6] = [
    (
        "sim_local",
        "Local simulator",
        "sim",
        "Density-matrix simulator built into this appliance.",
    ),
    (
        "aws_braket",
        "AWS Braket (simulated)",
        "superconducting",
        "Simulation of a superconducting device with AWS Braket-class noise.",
    ),
    (
        "ibm_quantum",
        "IBM Quantum (simulated)",
        "superconducting",
        "Simulation of a superconducting device with IBM Quantum-class noise.",
    ),
    (
        "azure_quantum",
        "Azure Quantum (simulated)",
        "trapped_ion",
        "Simulation of a trapped-ion device with Azure Quantum-class noise.",
    ),
    (
        "ionq_cloud",
        "IonQ Cloud (simulated)",
        "trapped_ion",
        "Simulation of a trapped-ion device with IonQ-class noise.",
    ),
    (
        "rigetti_forest",
        "Rigetti Forest (simulated)",
        "superconducting",
        "Simulation of a superconducting device with Rigetti-class noise.",
    ),
];

const GATES: [&str; 17] = [
    "x", "y", "z", "h", "s", "sdg", "t", "tdg", "rx", "ry", "rz", "cx", "cz", "swap", "delay", "measure",
    "probe",
];

/// The registry as configured: availability and noise overrides resolved
/// once at start-up; profiles written back from calibrations on top.
#[derive(Clone, Debug)]
pub struct Targets {
    list: Vec<HardwareTarget>,
    /// Per target, the profile version written back last (none: the
    /// configured profile, version 0).
    calibrated: Arc<RwLock<HashMap<&'static str, Calibrated>>>,
}

/// A profile written back from a health run's fits (docs/api.md): the
/// values it sets in the target's configured profile, and their version.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Calibrated {
    pub version: u32,
    pub t1_us: f64,
    pub t2_us: f64,
    /// None for a version stored before profiles had a T2*: its `t2_us`
    /// was the only coherence time, and the configured ratio T2*/T2
    /// gives its T2* (as for a config table without `t2star_us`).
    pub t2star_us: Option<f64>,
    pub p1q: f64,
}

impl Calibrated {
    /// `base` with these values in place.
    pub fn apply(&self, base: &NoiseProfile) -> NoiseProfile {
        NoiseOverride {
            t1_us: Some(self.t1_us),
            t2_us: Some(self.t2_us),
            t2star_us: self.t2star_us,
            p1q: Some(self.p1q),
            ..NoiseOverride::default()
        }
        .apply(base)
    }
}

/// What the engine derives from a profile's published figures
/// (docs/physics.md "Gate errors"), shown beside the profile so a lab can
/// see what its numbers mean to the simulation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DerivedModel {
    /// Depolarizing parameter after each single-qubit gate, on top of
    /// relaxation during the gate.
    pub depolarizing_1q: f64,
    /// Depolarizing parameter after each two-qubit gate.
    pub depolarizing_2q: f64,
    /// Standard deviation of the shot-to-shot detuning that makes the
    /// Ramsey time T2* shorter than T2; 0 when T2* = T2.
    pub detuning_sigma_rad_per_ns: f64,
    /// Relaxation during a single-qubit gate alone costs more than p1q.
    pub coherence_limited_1q: bool,
    /// Relaxation during a two-qubit gate alone costs more than p2q.
    pub coherence_limited_2q: bool,
    /// One sentence per coherence-limited gate, saying what to change.
    pub warnings: Vec<String>,
}

impl DerivedModel {
    pub fn of(p: &NoiseProfile) -> DerivedModel {
        let (limited_1q, limited_2q) = p.coherence_limited();
        let warning = |gate: &str, r: &str, ns: &str| {
            format!(
                "Relaxation during a {gate} gate alone (T1, T2 and {ns}) exceeds the published {r}: the \
                 simulated gate is worse than {r} says and gets no depolarizing error; shorten {ns}, \
                 raise t1_us/t2_us or raise {r} to match."
            )
        };
        let mut warnings = Vec::new();
        if limited_1q {
            warnings.push(warning("single-qubit", "p1q", "gate_1q_ns"));
        }
        if limited_2q {
            warnings.push(warning("two-qubit", "p2q", "gate_2q_ns"));
        }
        DerivedModel {
            depolarizing_1q: p.depolarizing_1q(),
            depolarizing_2q: p.depolarizing_2q(),
            detuning_sigma_rad_per_ns: p.detuning_sigma_rad_per_ns(),
            coherence_limited_1q: limited_1q,
            coherence_limited_2q: limited_2q,
            warnings,
        }
    }
}

/// Why a target cannot take a run.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Unknown,
    ProviderSimDisabled,
}

impl Targets {
    pub fn new(config: &Config) -> Targets {
        let list = TARGETS
            .iter()
            .map(|&(id, name, kind, description)| {
                let builtin =
                    NoiseProfile::builtin(id).unwrap_or_else(|| unreachable!("table and profiles agree"));
                let overridden = config.noise.get(id);
                let noise_profile = overridden.map(|o| o.apply(&builtin)).unwrap_or(builtin);
                let local = id == "sim_local";
                // A bound target runs on its executor whatever
                // allow_provider_simulation says; the server overlays the
                // executor's health (AppState::availability).
                let bound = config.executors.get(id);
                let available = local || config.allow_provider_simulation || bound.is_some();
                let availability_reason = match (local, available) {
                    _ if bound.is_some() => "Bound to an executor.".to_string(),
                    (true, _) => "Built in; always available.".to_string(),
                    (false, true) => {
                        "Runs as a local simulation of this provider's noise profile (air-gapped)."
                            .to_string()
                    }
                    (false, false) => {
                        "Provider simulation is disabled (allow_provider_simulation = false).".to_string()
                    }
                };
                let mut notes = if let Some(b) = bound {
                    format!(
                        "Runs on the executor `{}`; synqc keeps the queue, budget and estimators.",
                        b.command.join(" ")
                    )
                } else if local {
                    "Exact density-matrix simulation; no network access.".to_string()
                } else {
                    "Never contacts the provider: a simulation with the provider-class noise profile."
                        .to_string()
                };
                if overridden.is_some() {
                    notes.push_str(" Noise profile overridden in the config file.");
                }
                HardwareTarget {
                    id,
                    name,
                    kind,
                    description,
                    available,
                    availability_reason,
                    execution: if bound.is_some() { "executor" } else { "simulated" },
                    capabilities: Capabilities {
                        max_shots: config.max_shots_per_experiment,
                        queue_behavior: "fifo; calibrate-mode runs first",
                        supported_gates: GATES.to_vec(),
                        notes,
                    },
                    noise_profile,
                }
            })
            .collect();
        Targets {
            list,
            calibrated: Arc::default(),
        }
    }

    /// Runs on `id` use `c` from now on, unless a later version is
    /// already in place (two write-backs answered out of order).
    pub fn set_calibrated(&self, id: &str, c: Calibrated) {
        if let Some(t) = self.get(id) {
            let mut map = self.calibrated.write().unwrap_or_else(|p| p.into_inner());
            if map.get(t.id).is_none_or(|old| old.version < c.version) {
                map.insert(t.id, c);
            }
        }
    }

    /// The profile runs on `id` use and its version (0: as configured).
    pub fn noise_profile(&self, id: &str) -> Option<(NoiseProfile, u32)> {
        let t = self.get(id)?;
        let calibrated = self
            .calibrated
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(t.id)
            .copied();
        Some(match calibrated {
            Some(c) => (c.apply(&t.noise_profile), c.version),
            None => (t.noise_profile.clone(), 0),
        })
    }

    pub fn all(&self) -> &[HardwareTarget] {
        &self.list
    }

    pub fn get(&self, id: &str) -> Option<&HardwareTarget> {
        self.list.iter().find(|t| t.id == id)
    }

    /// The plant a run may execute on, or why not.
    pub fn plant(&self, id: &str) -> Result<Plant, Refusal> {
        self.versioned_plant(id).map(|(plant, _)| plant)
    }

    /// [`Targets::plant`] with the version of the noise profile in it.
    pub fn versioned_plant(&self, id: &str) -> Result<(Plant, u32), Refusal> {
        let t = self.get(id).ok_or(Refusal::Unknown)?;
        if !t.available {
            return Err(Refusal::ProviderSimDisabled);
        }
        let (noise, version) = self.noise_profile(id).ok_or(Refusal::Unknown)?;
        Ok((
            Plant {
                target: t.id.to_string(),
                kind: t.kind.to_string(),
                noise,
            },
            version,
        ))
    }

    /// backend_compare's second plant: the target `id`, or the noise-free
    /// twin of `first` when `id` is `ideal`.
    pub fn compare_plant(&self, id: &str, first: &Plant) -> Result<Plant, Refusal> {
        if id == IDEAL_TWIN {
            Ok(ideal_twin(first))
        } else {
            self.plant(id)
        }
    }

    /// compare_with when a backend_compare request names none (docs/api.md):
    /// the first available target other than `hardware_target`, in
    /// /hardware/targets order; None when there is none (then `ideal`).
    pub fn default_compare(&self, hardware_target: &str) -> Option<&'static str> {
        self.list
            .iter()
            .find(|t| t.available && t.id != hardware_target)
            .map(|t| t.id)
    }

    /// Every target id, in /hardware/targets order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.list.iter().map(|t| t.id).collect()
    }

    /// Targets available by configuration (before an executor's health).
    pub fn visible_count(&self) -> usize {
        self.list.iter().filter(|t| t.available).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_back_profile_replaces_four_values_and_only_a_later_version_replaces_it() {
        let t = Targets::new(&Config::default());
        let configured = t.get("sim_local").expect("sim_local").noise_profile.clone();
        assert_eq!(t.noise_profile("sim_local"), Some((configured.clone(), 0)));
        let v2 = Calibrated {
            version: 2,
            t1_us: 80.0,
            t2_us: 60.0,
            t2star_us: Some(45.0),
            p1q: 1e-3,
        };
        t.set_calibrated("sim_local", v2);
        t.set_calibrated("sim_local", Calibrated { version: 1, ..v2 });
        let (profile, version) = t.noise_profile("sim_local").expect("known");
        assert_eq!(version, 2);
        assert_eq!(
            (profile.t1_us, profile.t2_us, profile.t2star_us, profile.p1q),
            (80.0, 60.0, 45.0, 1e-3)
        );
        assert_eq!(profile.p2q, configured.p2q);
        let (plant, version) = t.versioned_plant("sim_local").expect("available");
        assert_eq!((plant.noise, version), (profile, 2));
        assert_eq!(t.noise_profile("ibm_quantum").map(|p| p.1), Some(0));
    }

    #[test]
    fn provider_targets_need_the_switch() {
        let t = Targets::new(&Config::default());
        assert_eq!(t.all().len(), 6);
        assert!(t.plant("sim_local").is_ok());
        assert_eq!(t.plant("ibm_quantum"), Err(Refusal::ProviderSimDisabled));
        assert_eq!(t.plant("nope"), Err(Refusal::Unknown));
        assert_eq!(t.visible_count(), 1);
        let open = Targets::new(&Config {
            allow_provider_simulation: true,
            ..Config::default()
        });
        assert_eq!(
            open.plant("ionq_cloud").map(|p| p.kind),
            Ok("trapped_ion".to_string())
        );
        assert_eq!(open.visible_count(), 6);
    }

    #[test]
    fn compare_with_defaults_to_another_available_target_else_the_ideal_twin() {
        let closed = Targets::new(&Config::default());
        assert_eq!(closed.default_compare("sim_local"), None);
        let open = Targets::new(&Config {
            allow_provider_simulation: true,
            ..Config::default()
        });
        assert_eq!(open.default_compare("sim_local"), Some("aws_braket"));
        assert_eq!(open.default_compare("aws_braket"), Some("sim_local"));
        let first = closed.plant("sim_local").expect("sim_local");
        let twin = closed
            .compare_plant("ideal", &first)
            .expect("ideal is always there");
        assert_eq!((twin.target.as_str(), twin.noise.p2q), ("ideal", 0.0));
        assert_eq!(twin.noise.gate_2q_ns, first.noise.gate_2q_ns);
        assert_eq!(
            closed.compare_plant("ibm_quantum", &first),
            Err(Refusal::ProviderSimDisabled)
        );
        assert_eq!(
            closed.plant("ideal"),
            Err(Refusal::Unknown),
            "not a hardware target"
        );
        assert_eq!(closed.ids().len(), 6);
    }

    #[test]
    fn config_overrides_reach_the_plant() {
        let mut config = Config::default();
        config.noise.insert(
            "sim_local".into(),
            crate::config::NoiseOverride {
                t1_us: Some(50.0),
                ..Default::default()
            },
        );
        let t = Targets::new(&config);
        assert_eq!(t.plant("sim_local").map(|p| p.noise.t1_us), Ok(50.0));
        assert!(t
            .get("sim_local")
            .is_some_and(|t| t.capabilities.notes.contains("overridden")));
    }

    /// A version stored before T2* existed keeps the configured T2*/T2
    /// ratio, so it stays a physical profile with its old T2.
    #[test]
    fn a_version_without_t2star_keeps_the_configured_ratio() {
        let base = NoiseProfile::builtin("sim_local").expect("sim_local");
        let old = Calibrated {
            version: 1,
            t1_us: 100.0,
            t2_us: 45.0,
            t2star_us: None,
            p1q: 1e-3,
        };
        let p = old.apply(&base);
        assert_eq!(p.t2_us, 45.0);
        assert!((p.t2star_us / p.t2_us - base.t2star_us / base.t2_us).abs() < 1e-12);
        assert!(p.problems().is_empty(), "{:?}", p.problems());
    }

    #[test]
    fn the_derived_model_warns_when_relaxation_alone_exceeds_the_published_error() {
        let base = NoiseProfile::builtin("sim_local").expect("sim_local");
        let m = DerivedModel::of(&base);
        assert_eq!((m.coherence_limited_1q, m.coherence_limited_2q), (false, false));
        assert!(m.warnings.is_empty());
        assert!(m.depolarizing_1q > 0.0 && m.depolarizing_2q > 0.0);
        assert_eq!(m.detuning_sigma_rad_per_ns, base.detuning_sigma_rad_per_ns());
        assert!(m.detuning_sigma_rad_per_ns > 0.0, "T2* < T2 for sim_local");
        // A 2 us single-qubit gate on a T1 = T2 = 20 us qubit relaxes far
        // more than p1q = 5e-4 allows.
        let slow = NoiseProfile {
            t1_us: 20.0,
            t2_us: 20.0,
            t2star_us: 20.0,
            gate_1q_ns: 2_000.0,
            ..base
        };
        let m = DerivedModel::of(&slow);
        assert_eq!((m.coherence_limited_1q, m.depolarizing_1q), (true, 0.0));
        assert_eq!(m.detuning_sigma_rad_per_ns, 0.0);
        assert_eq!(m.warnings.len(), usize::from(m.coherence_limited_2q) + 1);
        assert!(m.warnings[0].contains("gate_1q_ns"), "{:?}", m.warnings);
    }
}
