//! How each API error renders in the envelope.

use super::*;

#[test]
fn envelope_has_every_field_and_repeats_the_code() {
    let e = ApiError::UnknownTarget {
        field: "hardware_target",
        given: "sim-local".into(),
        did_you_mean: Some("sim_local".into()),
        valid: vec!["sim_local".into(), "ibm_quantum".into()],
    };
    let v = e.envelope();
    let d = &v["detail"];
    assert_eq!(d["code"], "INVALID_TARGET");
    assert_eq!(d["error_code"], "INVALID_TARGET");
    assert_eq!(d["error_detail"]["code"], "INVALID_TARGET");
    assert_eq!(d["error_detail"]["valid"], json!(["sim_local", "ibm_quantum"]));
    assert_eq!(
        d["error_message"],
        "Unknown hardware_target 'sim-local' (did you mean 'sim_local'?); valid values are \
         sim_local, ibm_quantum."
    );
    assert_eq!(
        d["action_hint"],
        "Pick a hardware target from /hardware/targets: sim_local, ibm_quantum."
    );
    assert_eq!(e.status(), StatusCode::BadRequest);
}

#[test]
fn each_conflict_has_its_own_hint() {
    let key = ApiError::IdempotencyConflict { key: "k-1".into() };
    let run = RunId::new(1_700_000_000_000, 0, 7);
    let done = ApiError::AlreadyFinished {
        run,
        status: RunStatus::Succeeded,
    };
    for e in [&key, &done] {
        assert_eq!((e.status(), e.code()), (StatusCode::Conflict, "CONFLICT"));
    }
    assert!(key.action_hint().contains("new Idempotency-Key"));
    assert!(!done.action_hint().contains("Idempotency"));
    assert!(done.action_hint().contains(&format!("GET /runs/{run}")));
    assert!(done.message().contains("succeeded") && done.message().contains("nothing was"));
    assert_eq!(done.detail()["status"], "succeeded");
    let failed = ApiError::AlreadyFinished {
        run,
        status: RunStatus::Failed,
    };
    assert!(failed.action_hint().contains("why it failed"));
}

#[test]
fn a_disabled_provider_names_the_field_that_chose_it() {
    let e = ApiError::ProviderSimDisabled {
        field: "compare_with",
        target: "ibm_quantum".into(),
    };
    assert!(e.message().starts_with("compare_with 'ibm_quantum'"));
    assert!(e.action_hint().contains("compare_with"));
    assert!(e.action_hint().contains("allow_provider_simulation"));
    assert_eq!(e.status(), StatusCode::Forbidden);
}

#[test]
fn internal_causes_never_reach_the_client() {
    let e = ApiError::StoreUnavailable("No space left on device (os error 28) at /var/lib/synqc".into());
    let text = e.envelope().to_string();
    assert!(!text.contains("/var/lib"));
    assert!(!text.contains("os error"));
    assert_eq!(e.status(), StatusCode::ServiceUnavailable);
    assert_eq!(e.code(), "INTERNAL_ERROR");
}

#[test]
fn validation_lists_every_field() {
    let e = ApiError::Invalid(vec![
        FieldError::new("shot_budget", "must be >= 1"),
        FieldError::new("mode", "bad"),
    ]);
    let v = e.envelope();
    assert_eq!(
        v["detail"]["error_detail"]["fields"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(e.status(), StatusCode::UnprocessableEntity);
}
