//! The control profile: the operator's knobs for the drive, the monitoring
//! probe and the feedback loop. What each knob does to the physics lives in
//! `sim/`; this module owns the shape, the defaults and the ranges.

use serde::{Deserialize, Serialize};

use crate::validation::FieldError;

/// Active control settings. Persisted in the store; a run may carry its own
/// copy as `control_overrides`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlProfile {
    /// Multiplies every drive rotation angle (1.0 = calibrated).
    pub drive_bias: f64,
    /// Requested monitoring-probe window; sets the probe strength.
    pub probe_window_ns: f64,
    /// Scale of dpd_demo's outcome-dependent correction (1.0 = full).
    pub feedback_gain: f64,
    /// Upper bound on the probe window; 0 disables the cap.
    pub safety_clamp_ns: f64,
    /// Off: 2% residual excited population and +1% readout error.
    pub thermal_guard_enabled: bool,
    /// Console trace fade; no physical effect.
    pub tracer_persistence_ms: f64,
    pub notes: Option<String>,
}

impl Default for ControlProfile {
    fn default() -> Self {
        ControlProfile {
            drive_bias: 1.0,
            probe_window_ns: 120.0,
            feedback_gain: 0.35,
            safety_clamp_ns: 600.0,
            thermal_guard_enabled: true,
            tracer_persistence_ms: 420.0,
            notes: None,
        }
    }
}

/// Longest accepted `notes`, in characters (same rule as a run's notes).
pub const MAX_NOTES_CHARS: usize = 4096;

impl ControlProfile {
    /// Every out-of-range field, each located under `prefix` (e.g.
    /// `control_overrides.`), so one 422 lists them all.
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let ranges: [(&str, f64, f64, f64); 5] = [
            ("drive_bias", self.drive_bias, 0.5, 1.5),
            ("probe_window_ns", self.probe_window_ns, 10.0, 10_000.0),
            ("feedback_gain", self.feedback_gain, 0.0, 3.0),
            ("safety_clamp_ns", self.safety_clamp_ns, 0.0, 20_000.0),
            ("tracer_persistence_ms", self.tracer_persistence_ms, 0.0, 60_000.0),
        ];
        let mut bad: Vec<FieldError> = ranges
            .iter()
            .filter(|(_, v, lo, hi)| !(v.is_finite() && *v >= *lo && *v <= *hi))
            .map(|(name, _, lo, hi)| {
                FieldError::new(
                    format!("{prefix}{name}"),
                    format!("must be between {lo} and {hi}"),
                )
            })
            .collect();
        if self
            .notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
        {
            bad.push(FieldError::new(
                format!("{prefix}notes"),
                format!("at most {MAX_NOTES_CHARS} characters"),
            ));
        }
        bad
    }

    /// The probe window the hardware actually applies: the request capped by
    /// the safety clamp when the clamp is on.
    pub fn effective_probe_window_ns(&self) -> f64 {
        if self.safety_clamp_ns > 0.0 {
            self.probe_window_ns.min(self.safety_clamp_ns)
        } else {
            self.probe_window_ns
        }
    }

    /// Probe strength kappa = 1 - exp(-w / 500 ns) (docs/physics.md).
    pub fn probe_kappa(&self) -> f64 {
        1.0 - (-self.effective_probe_window_ns() / 500.0).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ControlProfile::default().validate("").is_empty());
    }

    #[test]
    fn every_bad_field_is_listed() {
        let p = ControlProfile {
            drive_bias: 2.0,
            probe_window_ns: 5.0,
            feedback_gain: f64::NAN,
            ..ControlProfile::default()
        };
        let locs: Vec<String> = p
            .validate("control_overrides.")
            .into_iter()
            .map(|f| f.loc)
            .collect();
        assert_eq!(
            locs,
            [
                "control_overrides.drive_bias",
                "control_overrides.probe_window_ns",
                "control_overrides.feedback_gain"
            ]
        );
    }

    #[test]
    fn clamp_caps_probe_window_unless_zero() {
        let mut p = ControlProfile {
            probe_window_ns: 5000.0,
            safety_clamp_ns: 600.0,
            ..Default::default()
        };
        assert_eq!(p.effective_probe_window_ns(), 600.0);
        p.safety_clamp_ns = 0.0;
        assert_eq!(p.effective_probe_window_ns(), 5000.0);
        assert!((p.probe_kappa() - (1.0 - (-10.0f64).exp())).abs() < 1e-12);
    }
}
