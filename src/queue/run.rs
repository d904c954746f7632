//! A run: what was asked, where it is in its life, and what came of it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::controls::ControlProfile;
use crate::sim::Preset;

/// A run id: a UUID-format string whose first 48 bits are the submit time in
/// milliseconds (UUIDv7 layout), so store keys sort by submission and the
/// newest-first listing is a reverse scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub [u8; 16]);

impl RunId {
    /// Builds a version-7 id from a millisecond timestamp, a 12-bit sequence
    /// (monotonic within one millisecond) and random bits.
    pub fn new(unix_ms: u64, seq: u16, random: u64) -> RunId {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
        b[6] = 0x70 | ((seq >> 8) as u8 & 0x0f);
        b[7] = seq as u8;
        b[8..].copy_from_slice(&random.to_be_bytes());
        b[8] = 0x80 | (b[8] & 0x3f);
        RunId(b)
    }

    /// The submit time encoded in the id.
    pub fn unix_ms(&self) -> u64 {
        let mut t = [0u8; 8];
        t[2..].copy_from_slice(&self.0[..6]);
        u64::from_be_bytes(t)
    }

    pub fn parse(s: &str) -> Option<RunId> {
        let hex: Vec<u8> = s.bytes().filter(|c| *c != b'-').collect();
        let dashes_ok = s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-');
        if !dashes_ok || hex.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in hex.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            if text.bytes().any(|c| c.is_ascii_uppercase()) {
                return None;
            }
            out[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(RunId(out))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if [4, 6, 8, 10].contains(&i) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RunId, D::Error> {
        let s = String::deserialize(d)?;
        RunId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("bad run id {s}")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// explore and prod share a priority; calibrate runs go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Explore,
    Calibrate,
    Prod,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "explore" => Some(Mode::Explore),
            "calibrate" => Some(Mode::Calibrate),
            "prod" => Some(Mode::Prod),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Explore => "explore",
            Mode::Calibrate => "calibrate",
            Mode::Prod => "prod",
        }
    }

    /// Queue priority: lower runs first.
    pub fn priority(self) -> u8 {
        match self {
            Mode::Calibrate => 0,
            Mode::Explore | Mode::Prod => 1,
        }
    }
}

/// Why a run failed or was cancelled, in the error envelope's terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    pub code: String,
    pub message: String,
    pub detail: Value,
    pub action_hint: String,
}

/// Everything stored about one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub preset: Preset,
    pub hardware_target: String,
    pub compare_with: Option<String>,
    pub mode: Mode,
    /// What the client asked for.
    pub shot_budget: u64,
    /// What will be executed (clamped to max_shots_per_experiment).
    pub shots: u64,
    pub seed: u64,
    pub notes: Option<String>,
    pub marked: Option<String>,
    /// The profile in force for this run: the active one at submit time,
    /// or the run's own control_overrides.
    pub controls: ControlProfile,
    pub session_id: String,
    /// The budget window the shots were reserved in, so a refund never
    /// credits a later window.
    pub budget_window_ms: u64,
    pub status: RunStatus,
    pub created_at: f64,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    /// Executions started (a claim counts one).
    pub attempts: u32,
    /// Times a worker died holding this run (process killed, lease expired).
    pub crashes: u32,
    pub error: Option<RunError>,
    pub result: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip_and_sort_by_time() {
        let a = RunId::new(1_700_000_000_000, 0, u64::MAX);
        let b = RunId::new(1_700_000_000_001, 0, 0);
        let text = a.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "7", "version nibble");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "variant");
        assert_eq!(RunId::parse(&text), Some(a));
        assert_eq!(a.unix_ms(), 1_700_000_000_000);
        assert!(a < b);
        assert!(RunId::new(5, 1, 0) > RunId::new(5, 0, u64::MAX));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "nope",
            "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeeX",
            "0190AAAA-bbbb-7ccc-8ddd-eeeeeeeeeeee",
            "0190aaaabbbb7ccc8dddeeeeeeeeeeee",
        ] {
            assert_eq!(RunId::parse(bad), None, "{bad}");
        }
    }
}
