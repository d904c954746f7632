//! Run request parsing: each field's rules, unknown fields and their
//! did-you-mean, and how each refusal reads as the API answers it.

use serde_json::json;

use super::super::suggest::edit_distance;
use super::*;
use crate::config::Config;
// Only the tests reach up to the HTTP error: they check each refusal
// as the API answers it.
use crate::error::ApiError;

fn parse(body: Value) -> Result<ParsedRun, ApiError> {
    parse_run_request(
        &body,
        &Targets::new(&Config::default()),
        &ControlProfile::default(),
        &CircuitLimits::default(),
    )
    .map_err(ApiError::from)
}

fn request(body: Value) -> RunRequest {
    match parse(body) {
        Ok(p) => p.request,
        Err(e) => panic!("expected a valid request, got {e:?}"),
    }
}

fn fields(e: ApiError) -> Vec<String> {
    match e {
        ApiError::Invalid(f) => f.into_iter().map(|f| f.loc).collect(),
        other => panic!("expected 422, got {other:?}"),
    }
}

fn warnings(body: Value) -> Vec<String> {
    parse(body).map(|p| p.warnings).unwrap_or_default()
}

#[test]
fn the_old_clients_minimal_body_is_valid() {
    let r = request(json!({"preset": "health", "extra": 1}));
    assert_eq!(r.preset, Preset::Health);
    assert_eq!(r.hardware_target, "sim_local");
    assert_eq!(r.mode, Mode::Explore);
    assert_eq!(r.shot_budget, None);
}

#[test]
fn every_bad_field_is_listed_at_once() {
    let e = parse(json!({
        "preset": "nope", "shot_budget": 0, "mode": "fast", "notes": 5, "seed": -1, "control_overrides": []
    }))
    .unwrap_err();
    assert_eq!(
        fields(e),
        [
            "preset",
            "shot_budget",
            "mode",
            "notes",
            "control_overrides",
            "seed"
        ]
    );
    assert_eq!(fields(parse(json!([1])).unwrap_err()), ["body"]);
    assert_eq!(fields(parse(json!({})).unwrap_err()), ["preset"]);
    assert_eq!(
        fields(parse(json!({"preset": "health", "shot_budget": 1.5})).unwrap_err()),
        ["shot_budget"]
    );
    // Past int64 is refused, not saturated.
    for too_big in [json!(9_223_372_036_854_775_808u64), json!(u64::MAX)] {
        assert_eq!(
            fields(parse(json!({"preset": "health", "shot_budget": too_big})).unwrap_err()),
            ["shot_budget"]
        );
    }
    assert_eq!(
        parse(json!({"preset": "health", "shot_budget": i64::MAX}))
            .ok()
            .and_then(|r| r.request.shot_budget),
        Some(i64::MAX as u64)
    );
    // Control overrides out of range are listed with the rest.
    assert_eq!(
        fields(
            parse(json!({"preset": "health", "mode": "x", "control_overrides": {"drive_bias": 9}}))
                .unwrap_err()
        ),
        ["mode", "control_overrides.drive_bias"]
    );
}

#[test]
fn an_unknown_target_alone_is_invalid_target_and_with_others_one_more_field() {
    match parse(json!({"preset": "health", "hardware_target": "sim-local"})).unwrap_err() {
        ApiError::UnknownTarget {
            field,
            did_you_mean,
            valid,
            ..
        } => {
            assert_eq!(field, "hardware_target");
            assert_eq!(did_you_mean.as_deref(), Some("sim_local"));
            assert_eq!(valid.len(), 6);
        }
        other => panic!("expected 400 INVALID_TARGET, got {other:?}"),
    }
    let e = parse(json!({"preset": "health", "hardware_target": "nope", "shot_budget": 0})).unwrap_err();
    let ApiError::Invalid(bad) = e else {
        panic!("expected 422, got {e:?}");
    };
    assert_eq!(bad[0].loc, "hardware_target");
    assert!(bad[0].msg.contains("sim_local, aws_braket"), "{}", bad[0].msg);
    assert_eq!(bad[1].loc, "shot_budget");
    // compare_with is a target too, and also accepts ideal.
    assert!(matches!(
        parse(json!({"preset": "backend_compare", "compare_with": "idael"})),
        Err(ApiError::UnknownTarget { field: "compare_with", did_you_mean: Some(ref d), .. }) if d == "ideal"
    ));
    assert_eq!(
        request(json!({"preset": "backend_compare", "compare_with": "ideal"}))
            .compare_with
            .as_deref(),
        Some("ideal")
    );
    assert!(
        parse(json!({"preset": "backend_compare", "hardware_target": "ideal"})).is_err(),
        "ideal is no hardware target"
    );
}

#[test]
fn did_you_mean_finds_typos_case_dashes_and_old_names() {
    assert_eq!(field_meant("shots"), Some("shot_budget"));
    assert_eq!(field_meant("target"), Some("hardware_target"));
    assert_eq!(field_meant("backend"), Some("hardware_target"));
    assert_eq!(field_meant("preset_id"), Some("preset"));
    assert_eq!(field_meant("Shot-Budget"), Some("shot_budget"));
    assert_eq!(field_meant("shot_budgt"), Some("shot_budget"));
    assert_eq!(field_meant("hardware_targets"), Some("hardware_target"));
    assert_eq!(field_meant("sed"), Some("seed"));
    assert_eq!(field_meant("colour"), None);
    assert_eq!(field_meant("x"), None);
    assert_eq!(
        closest("nope", &["mode", "notes"]),
        None,
        "two edits in four letters is another word"
    );
    assert_eq!(closest(&"a".repeat(100), &["a"]), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("abc", "abc"), 0);
    assert_eq!(edit_distance("idael", "ideal"), 1, "a swap is one edit");
}

#[test]
fn priority_and_not_before_are_checked_and_named_when_bad() {
    let request = |extra: Value| {
        let mut body = json!({"preset": "health"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        parse(body).map(|p| (p.request.priority, p.request.not_before))
    };
    assert_eq!(request(json!({})).unwrap(), (None, None));
    assert_eq!(
        request(json!({"priority": 9, "not_before": 1_900_000_000.5})).unwrap(),
        (Some(9), Some(1_900_000_000.5))
    );
    assert_eq!(
        request(json!({"priority": 0, "not_before": "2030-01-31T08:00:00Z"})).unwrap(),
        (Some(0), Some(1_896_076_800.0))
    );
    assert_eq!(request(json!({"priority": null})).unwrap(), (None, None));
    for (field, bad) in [
        ("priority", json!(10)),
        ("priority", json!(-1)),
        ("priority", json!(4.5)),
        ("priority", json!("high")),
        ("not_before", json!("tomorrow")),
        ("not_before", json!(-5)),
        ("not_before", json!(1_900_000_000_000u64)),
        ("not_before", json!(true)),
    ] {
        let err = request(json!({ field: bad })).unwrap_err();
        let text = err.envelope().to_string();
        assert!(text.contains(&format!("\"loc\":\"{field}\"")), "{bad}: {text}");
    }
    assert!(warnings(json!({"preset": "health", "start_at": 5}))
        .iter()
        .any(|w| w.contains("'not_before'")));
}

#[test]
fn unknown_fields_are_accepted_and_named() {
    let w = warnings(json!({"preset": "health", "shots": 100, "colour": "red"}));
    assert_eq!(
        w,
        [
            "Unknown field 'colour' was ignored; the run request fields are preset, hardware_target, \
             shot_budget, mode, notes, control_overrides, seed, compare_with, marked, qasm, priority, \
             not_before.",
            "Unknown field 'shots' was ignored; did you mean 'shot_budget'?",
        ]
    );
    assert!(warnings(json!({"preset": "health", "shot_budget": 100})).is_empty());
    let mut many = json!({"preset": "health"});
    for i in 0..100 {
        many[format!("extra{i:03}")] = json!(i);
    }
    let w = warnings(many);
    assert_eq!(w.len(), MAX_NAMED_UNKNOWN + 1);
    assert_eq!(w[MAX_NAMED_UNKNOWN], "84 more unknown fields were ignored.");
    // A field meant for another preset is named too.
    assert_eq!(
        warnings(json!({"preset": "health", "compare_with": "sim_local", "marked": "101"})),
        [
            "compare_with is used only by backend_compare; it was ignored for preset health.",
            "marked is used only by grover_demo; it was ignored for preset health.",
        ]
    );
}

#[test]
fn unknown_fields_leave_the_understood_request_alone() {
    // What the idempotency digest is taken over.
    assert_eq!(
        request(json!({"preset": "health", "shots": 100})),
        request(json!({"preset": "health", "shots": 5, "colour": 1}))
    );
}

#[test]
fn marked_state_comes_from_the_field_or_the_notes() {
    let r = request(json!({"preset": "grover_demo", "notes": "search marked=110 please"}));
    assert_eq!(r.marked.as_deref(), Some("110"));
    let r = request(json!({"preset": "grover_demo", "marked": "011", "notes": "marked=110"}));
    assert_eq!(r.marked.as_deref(), Some("011"));
    assert_eq!(
        fields(parse(json!({"preset": "grover_demo", "marked": "12"})).unwrap_err()),
        ["marked"]
    );
}

#[test]
fn a_date_time_in_the_past_even_before_1970_starts_at_once() {
    let r = request(json!({"preset": "health", "not_before": "0050-02-15T22:59:48.1Z"}));
    assert_eq!(r.not_before, Some(0.0));
}
