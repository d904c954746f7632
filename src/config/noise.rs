//! `[noise.TARGET]` tables: per-target overrides of the built-in noise
//! profiles, which exist only in the configuration file.

use serde::{Deserialize, Serialize};

use crate::sim::NoiseProfile;

/// Any subset of a [`NoiseProfile`]'s fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseOverride {
    pub t1_us: Option<f64>,
    pub t2_us: Option<f64>,
    pub t2star_us: Option<f64>,
    pub p1q: Option<f64>,
    pub p2q: Option<f64>,
    pub readout_p10: Option<f64>,
    pub readout_p01: Option<f64>,
    pub gate_1q_ns: Option<f64>,
    pub gate_2q_ns: Option<f64>,
    pub readout_ns: Option<f64>,
}

impl NoiseOverride {
    /// `base` with the given fields replaced. An override of `t2_us`
    /// without `t2star_us` keeps the built-in ratio T2*/T2, so a table
    /// written before T2* existed still describes a physical qubit.
    pub fn apply(&self, base: &NoiseProfile) -> NoiseProfile {
        let t2_us = self.t2_us.unwrap_or(base.t2_us);
        NoiseProfile {
            t1_us: self.t1_us.unwrap_or(base.t1_us),
            t2_us,
            t2star_us: self.t2star_us.unwrap_or(base.t2star_us * t2_us / base.t2_us),
            p1q: self.p1q.unwrap_or(base.p1q),
            p2q: self.p2q.unwrap_or(base.p2q),
            readout_p10: self.readout_p10.unwrap_or(base.readout_p10),
            readout_p01: self.readout_p01.unwrap_or(base.readout_p01),
            gate_1q_ns: self.gate_1q_ns.unwrap_or(base.gate_1q_ns),
            gate_2q_ns: self.gate_2q_ns.unwrap_or(base.gate_2q_ns),
            readout_ns: self.readout_ns.unwrap_or(base.readout_ns),
        }
    }
}
