//! A run: what was asked, where it is in its life, and what came of it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

use crate::controls::ControlProfile;
use crate::sim::Preset;

pub mod admission;
mod error_code;
mod outcome;
mod result;
pub mod views;
pub use error_code::ErrorCode;
pub use outcome::{retry_backoff_ms, CancelStage};
pub use result::ResultDoc;

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
        let text = s.as_bytes();
        if text.len() != 36 {
            return None;
        }
        let mut digits = [0u8; 32];
        let mut n = 0;
        for (i, &c) in text.iter().enumerate() {
            let dash = matches!(i, 8 | 13 | 18 | 23);
            let nibble = match c {
                b'-' if dash => continue,
                _ if dash => return None,
                b'0'..=b'9' => c - b'0',
                // Lowercase only: one spelling per id.
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            digits[n] = nibble;
            n += 1;
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
            *byte = pair[0] << 4 | pair[1];
        }
        Some(RunId(out))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand into one buffer: ids are written for every record stored
        // and every response, and `{:02x}` per byte showed up in profiles.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RunId, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
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

/// explore and prod share a default priority; calibrate runs default to a
/// higher one, so they still go first unless a request says otherwise.
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

    /// The queue priority (0-9, higher runs first) of a run of this mode
    /// whose request names none.
    pub fn priority(self) -> u8 {
        match self {
            Mode::Calibrate => 7,
            Mode::Explore | Mode::Prod => 4,
        }
    }
}

/// Why a run failed or was cancelled, in the error envelope's terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Value,
    pub action_hint: String,
}

impl RunError {
    /// A run's error; its detail always carries the code (the ErrorDetail
    /// schema of docs/api.md requires it).
    pub fn new(code: ErrorCode, message: impl Into<String>, detail: Value, hint: &str) -> RunError {
        let mut detail = match detail {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        detail.insert("code".into(), json!(code));
        RunError {
            code,
            message: message.into(),
            detail: Value::Object(detail),
            action_hint: hint.to_string(),
        }
    }
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
    /// circuit runs: the OpenQASM program as the client sent it, and the
    /// qubits it declares. Older records, and other presets, have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qasm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_qubits: Option<u32>,
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
    pub result: Option<ResultDoc>,
    /// What the submit answer warned about (ignored fields, a defaulted
    /// compare_with), repeated in the result. Records written before this
    /// field existed decode with none; runs without warnings store none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The queue priority (0-9, higher first). Records written before
    /// priorities existed have none and run at their mode's default, in
    /// the queue place they were given then (see store/layout.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Earliest start (Unix seconds); none starts as soon as it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<f64>,
    /// The version of its target's noise profile the run executed with,
    /// when a profile was written back (docs/api.md); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_profile_version: Option<u32>,
    /// The schedule whose firing submitted this run, and the period it
    /// fired for; none for a run a client submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<FiredBy>,
}

/// Which schedule and period a run was submitted for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredBy {
    pub name: String,
    /// The period's start, in milliseconds since the Unix epoch.
    pub period_ms: u64,
}

/// The highest queue priority a request may name.
pub const MAX_PRIORITY: u8 = 9;

impl RunRecord {
    /// The run's queue priority (0-9, higher first).
    pub fn priority(&self) -> u8 {
        self.priority.unwrap_or_else(|| self.mode.priority())
    }

    /// Its earliest start in milliseconds (0: none).
    pub fn not_before_ms(&self) -> u64 {
        self.not_before
            .map_or(0, |s| (s.max(0.0) * 1000.0).round() as u64)
    }
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
        // The same text as the plain per-byte spelling.
        for id in [a, b, RunId([0xff; 16]), RunId([0; 16])] {
            let plain: String = id.0.iter().map(|x| format!("{x:02x}")).collect();
            let expected = [
                &plain[..8],
                &plain[8..12],
                &plain[12..16],
                &plain[16..20],
                &plain[20..],
            ]
            .join("-");
            assert_eq!(id.to_string(), expected);
            assert_eq!(RunId::parse(&expected), Some(id));
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "nope",
            "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeeX",
            "0190AAAA-bbbb-7ccc-8ddd-eeeeeeeeeeee",
            "0190aaaabbbb7ccc8dddeeeeeeeeeeee",
            "0190aaaab-bbb-7ccc-8ddd-eeeeeeeeeeee",
            "0190aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeé",
        ] {
            assert_eq!(RunId::parse(bad), None, "{bad}");
        }
    }

    fn queued_record() -> RunRecord {
        let id = RunId::new(1_700_000_000_000, 0, 1);
        RunRecord {
            id,
            preset: Preset::Health,
            hardware_target: "sim_local".into(),
            compare_with: None,
            mode: Mode::Explore,
            shot_budget: 2048,
            shots: 2048,
            seed: 1,
            notes: None,
            marked: None,
            qasm: None,
            circuit_qubits: None,
            controls: ControlProfile::default(),
            session_id: "s".into(),
            budget_window_ms: 0,
            status: RunStatus::Queued,
            created_at: 1.0,
            started_at: None,
            finished_at: None,
            attempts: 0,
            crashes: 0,
            error: None,
            result: None,
            warnings: Vec::new(),
            priority: None,
            not_before: None,
            noise_profile_version: None,
            schedule: None,
        }
    }

    #[test]
    fn records_without_warnings_decode_and_stay_as_they_were() {
        let rec = queued_record();
        // A record written before warnings existed has no such key: what
        // a run without warnings still writes.
        let old = serde_json::to_value(&rec).unwrap();
        assert!(old.get("warnings").is_none());
        assert_eq!(serde_json::from_value::<RunRecord>(old).unwrap(), rec);
        let warned = RunRecord {
            warnings: vec!["Unknown field 'shots' was ignored".into()],
            ..rec
        };
        let text = serde_json::to_string(&warned).unwrap();
        assert_eq!(serde_json::from_str::<RunRecord>(&text).unwrap(), warned);
    }

    #[test]
    fn records_without_a_priority_run_at_their_modes_default() {
        let mut rec = queued_record();
        rec.mode = Mode::Calibrate;
        // A record written before priorities has neither key.
        let old = serde_json::to_value(&rec).unwrap();
        assert!(old.get("priority").is_none() && old.get("not_before").is_none());
        let mut rec: RunRecord = serde_json::from_value(old).unwrap();
        assert_eq!((rec.priority, rec.priority(), rec.not_before_ms()), (None, 7, 0));
        rec.mode = Mode::Prod;
        assert_eq!(rec.priority(), 4, "calibrate first, as before priorities");
        rec.priority = Some(9);
        rec.not_before = Some(1.5);
        assert_eq!((rec.priority(), rec.not_before_ms()), (9, 1500));
        let again: RunRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        assert_eq!(again, rec);
    }
}
