//! The run's JSON views: the submission every answer about a run starts
//! with, the status of GET /runs/{id} and the listing, and the summary of
//! a finished run in /experiments/recent. The result itself is the
//! `ResultDoc` as stored.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{ResultDoc, RunId, RunRecord};
use crate::sim::Preset;

/// RunSubmission: the status fields every run view shares.
pub fn submission(rec: &RunRecord) -> Value {
    let e = rec.error.as_ref();
    json!({
        "id": rec.id,
        "status": rec.status,
        "created_at": rec.created_at,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "error": e.map(|e| &e.message),
        "error_code": e.map(|e| &e.code),
        "error_message": e.map(|e| &e.message),
        "error_detail": e.map(|e| &e.detail),
        "action_hint": e.map(|e| &e.action_hint),
        "warnings": rec.warnings,
    })
}

/// RunStatus: the submission plus what GET /runs/{id} adds, but for the
/// result (see [`full_status`]). `queue_position` is the run's place in
/// the queue, which only the store knows.
pub fn status(rec: &RunRecord, queue_position: Option<u64>) -> Value {
    let mut v = submission(rec);
    v["attempts"] = json!(rec.attempts);
    v["queue_position"] = json!(queue_position);
    v["mode"] = json!(rec.mode);
    v["preset"] = json!(rec.preset);
    v["hardware_target"] = json!(rec.hardware_target);
    v["shot_budget"] = json!(rec.shot_budget);
    v["seed"] = json!(rec.seed);
    v["priority"] = json!(rec.priority());
    v["not_before"] = json!(rec.not_before);
    // A queued run whose earliest start is ahead is scheduled: it says for when.
    let scheduled = rec
        .not_before
        .filter(|t| rec.status == super::RunStatus::Queued && *t * 1000.0 > crate::clock::now_ms() as f64);
    v["scheduled_for"] = json!(scheduled.map(crate::clock::rfc3339));
    if let Some(version) = rec.noise_profile_version {
        v["noise_profile_version"] = json!(version);
    }
    if let Some(by) = &rec.schedule {
        v["schedule"] = json!({"name": by.name, "period_at": by.period_ms as f64 / 1000.0});
    }
    v
}

/// The full RunStatus of a run, its result included.
pub fn full_status(rec: &RunRecord, queue_position: Option<u64>) -> WithResult<'_> {
    WithResult {
        status: status(rec, queue_position),
        result: rec.result.as_ref(),
    }
}

/// A RunStatus document with its `result` (null until the run succeeded)
/// written after the other fields straight from the stored text.
pub struct WithResult<'a> {
    status: Value,
    result: Option<&'a ResultDoc>,
}

impl Serialize for WithResult<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let fields = self.status.as_object();
        let mut map = s.serialize_map(Some(fields.map_or(0, |f| f.len()) + 1))?;
        for (k, v) in fields.into_iter().flatten() {
            map.serialize_entry(k, v)?;
        }
        map.serialize_entry("result", &self.result)?;
        map.end()
    }
}

/// The parts of a stored result a summary repeats, copied as the JSON text
/// they are stored as: a listing picks fields out of up to 500 results and
/// builds no tree of any of them.
#[derive(Default, Deserialize)]
struct ResultParts<'a> {
    #[serde(borrow)]
    engine_version: Option<&'a RawValue>,
    #[serde(borrow)]
    qubits_used: Option<&'a RawValue>,
    #[serde(borrow)]
    kpis: Option<&'a RawValue>,
    #[serde(borrow)]
    shots: Option<&'a RawValue>,
    #[serde(borrow)]
    kpi_details: Option<&'a RawValue>,
    #[serde(borrow)]
    warnings: Option<&'a RawValue>,
    #[serde(borrow)]
    error_code: Option<&'a RawValue>,
    #[serde(borrow)]
    error_message: Option<&'a RawValue>,
    #[serde(borrow)]
    error_detail: Option<&'a RawValue>,
    #[serde(borrow)]
    action_hint: Option<&'a RawValue>,
}

/// A result summary: what a list of recent experiments shows, the
/// result's own fields under the same names as in the full result.
#[derive(Serialize)]
pub struct Summary<'a> {
    id: RunId,
    preset: Preset,
    hardware_target: &'a str,
    created_at: f64,
    finished_at: Option<f64>,
    notes: Option<&'a str>,
    seed: u64,
    status: &'static str,
    engine_version: Option<&'a RawValue>,
    qubits_used: Option<&'a RawValue>,
    kpis: Option<&'a RawValue>,
    shots: Option<&'a RawValue>,
    kpi_details: Option<&'a RawValue>,
    warnings: Option<&'a RawValue>,
    error_code: Option<&'a RawValue>,
    error_message: Option<&'a RawValue>,
    error_detail: Option<&'a RawValue>,
    action_hint: Option<&'a RawValue>,
}

impl<'a> Summary<'a> {
    /// `result` is the run's stored result as JSON text.
    pub fn of(rec: &'a RunRecord, result: &'a str) -> Summary<'a> {
        // A result that does not parse (it always should) still lists the
        // run, with its result fields null.
        let r: ResultParts<'a> = serde_json::from_str(result).unwrap_or_default();
        Summary {
            id: rec.id,
            preset: rec.preset,
            hardware_target: &rec.hardware_target,
            created_at: rec.created_at,
            finished_at: rec.finished_at,
            notes: rec.notes.as_deref(),
            seed: rec.seed,
            status: rec.status.as_str(),
            engine_version: r.engine_version,
            qubits_used: r.qubits_used,
            kpis: r.kpis,
            shots: r.shots,
            kpi_details: r.kpi_details,
            warnings: r.warnings,
            error_code: r.error_code,
            error_message: r.error_message,
            error_detail: r.error_detail,
            action_hint: r.action_hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::controls::ControlProfile;
    use crate::run::admission::{admit, Limits, Stamp};
    use crate::targets::Targets;

    fn queued() -> RunRecord {
        let admitted = admit(
            &json!({"preset": "health", "seed": 9, "colour": 1}),
            &Limits {
                default_shot_budget: 2048,
                max_shots_per_experiment: 100_000,
                circuit: Default::default(),
            },
            &Targets::new(&Config::default()),
            &ControlProfile::default(),
            Stamp {
                id: RunId::new(1_700_000_000_000, 0, 7),
                session_id: "lab".into(),
                random_seed: 1,
            },
        );
        match admitted {
            Ok(a) => a.record,
            Err(e) => panic!("expected an admitted run, got {e:?}"),
        }
    }

    #[test]
    fn the_status_adds_to_the_submission_and_the_result_comes_last() {
        let rec = queued();
        let sub = submission(&rec);
        assert_eq!(sub["status"], "queued");
        assert_eq!(sub["warnings"].as_array().map(Vec::len), Some(1), "{sub}");
        let st = status(&rec, Some(3));
        assert_eq!(st["queue_position"], 3);
        assert_eq!(st["seed"], 9);
        assert_eq!(st["id"], sub["id"]);
        let text = serde_json::to_string(&full_status(&rec, None)).unwrap_or_default();
        assert!(text.ends_with(r#","result":null}"#), "{text}");
        assert!(text.contains(r#""queue_position":null"#), "{text}");
    }

    #[test]
    fn a_summary_of_a_result_that_does_not_parse_still_lists_the_run() {
        let rec = queued();
        let text = r#"{"kpis":{"fidelity":0.9},"shots":2048}"#;
        let v = serde_json::to_value(Summary::of(&rec, text)).unwrap_or_default();
        assert_eq!(v["kpis"]["fidelity"], 0.9);
        assert_eq!(v["shots"], 2048);
        assert_eq!(v["preset"], "health");
        let v = serde_json::to_value(Summary::of(&rec, "not json")).unwrap_or_default();
        assert_eq!(v["id"], json!(rec.id));
        assert!(v["kpis"].is_null());
    }
}
