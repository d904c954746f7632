//! Health and metrics: GET|HEAD /health (the JSON document old clients
//! read), /health/live, /health/ready and /metrics. None of them scans the
//! store: counts are kept as runs move.

use std::sync::atomic::Ordering;

use serde_json::json;
use tide::{Request, Response, StatusCode};

use super::json_response;
use crate::error::ApiError;
use crate::run::RunStatus;
use crate::sim::Preset;
use crate::State;

pub async fn health(req: Request<State>) -> Result<Response, ApiError> {
    let state = req.state();
    let cfg = &state.config;
    let store_ok = state.store.probe().is_ok();
    let free = state.store.free_bytes();
    let now = crate::clock::now_ms();
    let counts = &state.store.counts;
    let leases = state.store.leases().unwrap_or_default();
    let expired = leases.iter().filter(|(_, l)| l.expires_ms <= now).count();
    let oldest = state.store.oldest_queued_ms(now);
    let quarantined = counts.quarantined.load(Ordering::Relaxed);
    let archive = state.store.archive_state();
    let status = if store_ok && quarantined == 0 && archive != "failed" {
        "ok"
    } else {
        "degraded"
    };
    let failure_codes = state.executor.failure_codes();
    let doc = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "env": cfg.env,
        "engine_version": crate::sim::ENGINE_VERSION,
        "server_time": crate::clock::rfc3339(now as f64 / 1000.0),
        "uptime_s": state.started.elapsed().as_secs_f64(),
        "ready": state.lifecycle.is_ready(),
        "draining": state.lifecycle.is_draining(),
        "require_api_key": !state.key_digests.is_empty(),
        "max_shots_per_experiment": cfg.max_shots_per_experiment,
        "max_shots_per_session": cfg.max_shots_per_session,
        "default_shot_budget": cfg.default_shot_budget,
        "presets": Preset::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "visible_target_count": state.targets.all().iter().filter(|t| state.availability(t).0).count(),
        // Bound targets and their executors' health (docs/circuits.md).
        "executors": state
            .targets
            .all()
            .iter()
            .filter(|t| t.execution == "executor")
            .map(|t| (t.id.to_string(), state.target_view(t)["executor"].clone()))
            .collect::<serde_json::Map<_, _>>(),
        "control_profile": state.store.control_profile(),
        "store": {
            "backend": "sled",
            "ok": store_ok,
            "size_bytes": state.store.size_on_disk().ok(),
            "quarantined_records": quarantined,
            "archive": archive,
            "writable": state.store.is_writable(),
            "free_bytes": free,
            "low_space": free.is_some_and(|f| f < cfg.min_free_disk_bytes),
        },
        "budget_tracker": {
            "backend": "sled",
            "connected": store_ok,
            "redis_connected": store_ok,
            "session_keys": counts.sessions.load(Ordering::Relaxed),
            "session_ttl_seconds": cfg.session_budget_ttl_seconds.as_secs(),
        },
        "queue": {
            "total": counts.total(),
            "queued": counts.get(RunStatus::Queued),
            "running": counts.get(RunStatus::Running),
            "succeeded": counts.get(RunStatus::Succeeded),
            "failed": counts.get(RunStatus::Failed),
            "cancelled": counts.get(RunStatus::Cancelled),
            "oldest_queued_age_s": oldest.map(|t| now.saturating_sub(t) as f64 / 1000.0),
            "max_workers": cfg.workers,
            "max_pending": cfg.max_pending,
            "job_timeout_seconds": cfg.job_timeout_seconds.as_secs(),
            "expired_leases": expired,
            "failure_codes": failure_codes,
        },
        "paused": super::queue::paused_view(&state.store.pauses()),
    });
    let code = if store_ok {
        StatusCode::Ok
    } else {
        StatusCode::ServiceUnavailable
    };
    Ok(json_response(code, &doc))
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut res = Response::new(status);
    res.set_body(text);
    res.set_content_type("text/plain; charset=utf-8");
    res
}

pub async fn live(_req: Request<State>) -> Result<Response, ApiError> {
    Ok(plain(StatusCode::Ok, "ok"))
}

pub async fn ready(req: Request<State>) -> Result<Response, ApiError> {
    let lc = &req.state().lifecycle;
    Ok(if lc.is_draining() {
        plain(StatusCode::ServiceUnavailable, "draining")
    } else if !lc.is_ready() {
        plain(StatusCode::ServiceUnavailable, "starting")
    } else if req.state().store.probe().is_err() {
        plain(StatusCode::ServiceUnavailable, "store unavailable")
    } else {
        plain(StatusCode::Ok, "ok")
    })
}

pub async fn metrics(req: Request<State>) -> Result<Response, ApiError> {
    let mut res = Response::new(StatusCode::Ok);
    res.set_body(crate::telemetry::render(req.state()));
    res.set_content_type("text/plain; version=0.0.4; charset=utf-8");
    Ok(res)
}
