//! Noise profiles: the physical parameters of each hardware target
//! (docs/physics.md table). A lab may override any field per target in the config
//! file; /hardware/targets shows the profile in force.

use serde::{Deserialize, Serialize};

/// Parameters of one target's noise model. Times are in the unit their name
/// says; error rates are probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseProfile {
    /// Energy relaxation time.
    pub t1_us: f64,
    /// Echo coherence time: the Markovian part of the decay of coherences,
    /// exp(-t/T2), which a Hahn echo measures.
    pub t2_us: f64,
    /// Ramsey coherence time T2* (<= T2): the 1/e time of a free-evolution
    /// envelope that adds quasi-static (shot-to-shot) dephasing to T2.
    pub t2star_us: f64,
    /// Average gate infidelity of a single-qubit gate, as vendors publish
    /// it (what randomized benchmarking reports as error per Clifford).
    pub p1q: f64,
    /// Average gate infidelity of a two-qubit gate, as vendors publish it.
    pub p2q: f64,
    /// Readout confusion p(read 1 | prepared 0).
    pub readout_p10: f64,
    /// Readout confusion p(read 0 | prepared 1).
    pub readout_p01: f64,
    pub gate_1q_ns: f64,
    pub gate_2q_ns: f64,
    pub readout_ns: f64,
}

impl NoiseProfile {
    /// The built-in profile of a target id, or None for an unknown id.
    pub fn builtin(target: &str) -> Option<NoiseProfile> {
        // (T1 us, T2 us, T2* us, 1q, 2q, p(1|0), p(0|1), 1q ns, 2q ns, readout ns)
        let row = match target {
            "sim_local" => (120.0, 90.0, 60.0, 5e-4, 8e-3, 0.01, 0.02, 35.0, 300.0, 1_000.0),
            "ibm_quantum" => (
                250.0, 150.0, 100.0, 2.5e-4, 7e-3, 0.012, 0.02, 35.0, 400.0, 1_500.0,
            ),
            "aws_braket" => (30.0, 20.0, 12.0, 1.5e-3, 2.5e-2, 0.03, 0.05, 40.0, 250.0, 2_000.0),
            "rigetti_forest" => (20.0, 15.0, 10.0, 2e-3, 3e-2, 0.04, 0.06, 40.0, 200.0, 2_000.0),
            "azure_quantum" => (
                10e6, 1e6, 0.5e6, 3e-5, 2e-3, 0.002, 0.004, 10_000.0, 200_000.0, 100_000.0,
            ),
            "ionq_cloud" => (
                10e6, 1e6, 0.5e6, 5e-4, 5e-3, 0.004, 0.006, 135_000.0, 600_000.0, 200_000.0,
            ),
            _ => return None,
        };
        Some(NoiseProfile {
            t1_us: row.0,
            t2_us: row.1,
            t2star_us: row.2,
            p1q: row.3,
            p2q: row.4,
            readout_p10: row.5,
            readout_p01: row.6,
            gate_1q_ns: row.7,
            gate_2q_ns: row.8,
            readout_ns: row.9,
        })
    }

    /// The depolarizing parameter after a single-qubit gate: what is left
    /// of the published error once relaxation during the gate is counted
    /// (docs/physics.md "Gate errors").
    pub fn depolarizing_1q(&self) -> f64 {
        depolarizing_for(self.p1q, 2.0, self.relaxation_fidelity(self.gate_1q_ns))
    }

    /// The depolarizing parameter after a two-qubit gate, relaxation acting
    /// on both qubits for the gate's duration.
    pub fn depolarizing_2q(&self) -> f64 {
        let one = self.relaxation_fidelity(self.gate_2q_ns);
        depolarizing_for(self.p2q, 4.0, one * one)
    }

    /// Whether relaxation during a gate alone already costs more than the
    /// published error (then the depolarizing part is 0 and the gate is
    /// worse than the profile says): (1q, 2q).
    pub fn coherence_limited(&self) -> (bool, bool) {
        let r1 = 2.0 / 3.0 * (1.0 - self.relaxation_fidelity(self.gate_1q_ns));
        let f2 = self.relaxation_fidelity(self.gate_2q_ns).powi(2);
        let r2 = 4.0 / 5.0 * (1.0 - f2);
        (r1 > self.p1q, r2 > self.p2q)
    }

    /// Standard deviation of the quasi-static detuning, in rad/ns: the
    /// Ramsey envelope exp(-t/T2 - sigma^2 t^2 / 2) reaches 1/e at T2*.
    /// 0 when T2* = T2 (or either is infinite).
    pub fn detuning_sigma_rad_per_ns(&self) -> f64 {
        let (t2, t2s) = (self.t2_us * 1e3, self.t2star_us * 1e3);
        if !(t2.is_finite() && t2s.is_finite()) || t2s >= t2 {
            return 0.0;
        }
        (2.0 * (1.0 - t2s / t2)).sqrt() / t2s
    }

    /// Process (entanglement) fidelity of relaxation for `t_ns` on one
    /// qubit: (1 + R_xx + R_yy + R_zz) / 4 of its Pauli transfer matrix,
    /// R_zz = 1 - gamma and R_xx = R_yy = sqrt(1 - gamma) lambda. The
    /// residual excited population does not enter.
    pub fn relaxation_fidelity(&self, t_ns: f64) -> f64 {
        let (t1, t2) = (self.t1_us * 1e3, self.t2_us * 1e3);
        let gamma = 1.0 - (-t_ns / t1).exp();
        let lambda = (-t_ns * (1.0 / t2 - 0.5 / t1).max(0.0)).exp();
        let c = (1.0 - gamma).sqrt() * lambda;
        (1.0 + 2.0 * c + (1.0 - gamma)) / 4.0
    }

    /// Physically meaningless values, by field name (used to refuse a bad
    /// override in the config file before the server starts).
    pub fn problems(&self) -> Vec<String> {
        let mut bad = Vec::new();
        for (name, v) in [
            ("t1_us", self.t1_us),
            ("t2_us", self.t2_us),
            ("t2star_us", self.t2star_us),
            ("gate_1q_ns", self.gate_1q_ns),
            ("gate_2q_ns", self.gate_2q_ns),
            ("readout_ns", self.readout_ns),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bad.push(format!("{name} must be > 0"));
            }
        }
        for (name, v) in [
            ("p1q", self.p1q),
            ("p2q", self.p2q),
            ("readout_p10", self.readout_p10),
            ("readout_p01", self.readout_p01),
        ] {
            if !(0.0..=0.5).contains(&v) {
                bad.push(format!("{name} must be between 0 and 0.5"));
            }
        }
        // Pure dephasing needs a non-negative rate: 1/T2 >= 1/(2 T1).
        if self.t2_us > 2.0 * self.t1_us {
            bad.push("t2_us must be <= 2 * t1_us".to_string());
        }
        // Quasi-static dephasing only adds decay: the Ramsey time cannot
        // exceed the echo time.
        if self.t2star_us > self.t2_us {
            bad.push("t2star_us must be <= t2_us".to_string());
        }
        bad
    }
}

/// The depolarizing parameter p that, composed after a channel of process
/// fidelity `f_relax` on a gate of dimension d, makes the gate's average
/// infidelity `r`: the composition has process fidelity
/// F = (1 - p) f_relax + p / d^2, and average infidelity is d (1 - F) / (d + 1).
/// 0 when relaxation alone already costs r or more.
fn depolarizing_for(r: f64, d: f64, f_relax: f64) -> f64 {
    let target = 1.0 - r * (d + 1.0) / d;
    ((f_relax - target) / (f_relax - 1.0 / (d * d))).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_is_physical() {
        for id in crate::sim::tests::BUILTIN_TARGETS {
            let p = NoiseProfile::builtin(id).unwrap();
            assert!(p.problems().is_empty(), "{id}: {:?}", p.problems());
        }
        assert!(NoiseProfile::builtin("nope").is_none());
    }

    /// The composed gate's average infidelity, recomputed from its process
    /// fidelity, is the published error; no built-in profile is coherence
    /// limited.
    #[test]
    fn derived_depolarizing_makes_the_gate_error_the_published_one() {
        for id in crate::sim::tests::BUILTIN_TARGETS {
            let p = NoiseProfile::builtin(id).unwrap();
            assert_eq!(p.coherence_limited(), (false, false), "{id}");
            let f1 = p.relaxation_fidelity(p.gate_1q_ns);
            let d1 = p.depolarizing_1q();
            let fe = (1.0 - d1) * f1 + d1 / 4.0;
            assert!(((1.0 - fe) * 2.0 / 3.0 - p.p1q).abs() < 1e-15, "{id} 1q");
            let f2 = p.relaxation_fidelity(p.gate_2q_ns).powi(2);
            let d2 = p.depolarizing_2q();
            let fe = (1.0 - d2) * f2 + d2 / 16.0;
            assert!(((1.0 - fe) * 4.0 / 5.0 - p.p2q).abs() < 1e-15, "{id} 2q");
            assert!(
                d1 > 0.0 && d1 < 2.0 * p.p1q && d2 > 0.0 && d2 < 2.0 * p.p2q,
                "{id}"
            );
        }
        // A gate slower than its qubit's coherence allows: no depolarizing left.
        let slow = NoiseProfile {
            gate_1q_ns: 5_000.0,
            ..NoiseProfile::builtin("rigetti_forest").unwrap()
        };
        assert_eq!(slow.depolarizing_1q(), 0.0);
        assert!(slow.coherence_limited().0);
    }

    #[test]
    fn detuning_width_puts_the_ramsey_envelope_at_one_over_e_at_t2star() {
        let p = NoiseProfile::builtin("sim_local").unwrap();
        let s = p.detuning_sigma_rad_per_ns();
        let t = p.t2star_us * 1e3;
        let env = (-t / (p.t2_us * 1e3) - s * s * t * t / 2.0).exp();
        assert!((env - (-1f64).exp()).abs() < 1e-12);
        let flat = NoiseProfile {
            t2star_us: p.t2_us,
            ..p
        };
        assert_eq!(flat.detuning_sigma_rad_per_ns(), 0.0);
    }
}
