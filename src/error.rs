//! The one error type of the HTTP surface and its JSON envelope (api.md):
//! every 4xx/5xx synqc produces is rendered here and nowhere else.

use serde::Serialize;
use serde_json::{json, Value};
use tide::{Response, StatusCode};

use crate::queue::run::RunError;

/// One invalid request field, as listed in `error_detail.fields`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    pub loc: String,
    pub msg: String,
}

impl FieldError {
    pub fn new(loc: impl Into<String>, msg: impl Into<String>) -> Self {
        FieldError {
            loc: loc.into(),
            msg: msg.into(),
        }
    }
}

/// Everything a request can fail with. Each variant maps to one code of the
/// closed set in api.md and to one HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 422 INVALID_REQUEST listing every bad field.
    Invalid(Vec<FieldError>),
    /// 422 INVALID_REQUEST for a body that is not JSON at all.
    MalformedJson(String),
    /// 404 INVALID_REQUEST: no run by that id, or no such result or asset.
    NotFound(String),
    /// 404 (405 for a wrong method) INVALID_REQUEST: no such route.
    UnknownRoute(String),
    /// 400 INVALID_TARGET.
    UnknownTarget(String),
    /// 403 PROVIDER_SIM_DISABLED.
    ProviderSimDisabled(String),
    /// 401 AUTH_REQUIRED.
    AuthRequired,
    /// 413 INVALID_REQUEST: body over max_request_bytes.
    TooLarge(u64),
    /// 415 INVALID_REQUEST.
    UnsupportedMediaType,
    /// 429 BUDGET_EXHAUSTED.
    BudgetExhausted {
        session_id: String,
        remaining: u64,
        requested: u64,
        resets_in_s: u64,
    },
    /// 422 BUDGET_GUARDRAIL: the budget breaks a limit (prod clamp, protocol minimum).
    BudgetGuardrail { message: String, detail: Value },
    /// 429 RATE_LIMITED with Retry-After.
    RateLimited { retry_after_s: u64 },
    /// 409 CONFLICT: idempotency key reused with another body, or a state
    /// change that no longer applies (cancel of a finished run).
    Conflict(String),
    /// 503 PROVIDER_QUEUE_BACKPRESSURE with Retry-After: max_pending reached,
    /// or the server is draining.
    Backpressure { message: String, retry_after_s: u64 },
    /// 503 INTERNAL_ERROR: the store cannot take a write (disk full, I/O).
    /// The cause goes to the log, never to the client.
    StoreUnavailable(String),
    /// 503 INTERNAL_ERROR: the store refuses writes until a restart (a
    /// write to its disk failed).
    StoreRefusesWrites,
    /// 500 INTERNAL_ERROR; the cause goes to the log only.
    Internal(String),
    /// A run that ended without a result, answered synchronously by the
    /// legacy route: the run's own error, with a status fitting its code.
    RunFailed(RunError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::MalformedJson(_) | ApiError::BudgetGuardrail { .. } => {
                StatusCode::UnprocessableEntity
            }
            ApiError::NotFound(_) | ApiError::UnknownRoute(_) => StatusCode::NotFound,
            ApiError::UnknownTarget(_) => StatusCode::BadRequest,
            ApiError::ProviderSimDisabled(_) => StatusCode::Forbidden,
            ApiError::AuthRequired => StatusCode::Unauthorized,
            ApiError::TooLarge(_) => StatusCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => StatusCode::UnsupportedMediaType,
            ApiError::BudgetExhausted { .. } | ApiError::RateLimited { .. } => StatusCode::TooManyRequests,
            ApiError::Conflict(_) => StatusCode::Conflict,
            ApiError::Backpressure { .. } | ApiError::StoreUnavailable(_) | ApiError::StoreRefusesWrites => {
                StatusCode::ServiceUnavailable
            }
            ApiError::Internal(_) => StatusCode::InternalServerError,
            ApiError::RunFailed(e) => match e.code.as_str() {
                "TIMEOUT" => StatusCode::GatewayTimeout,
                "CANCELLED" => StatusCode::Conflict,
                "INVALID_REQUEST" | "BUDGET_GUARDRAIL" => StatusCode::UnprocessableEntity,
                "INVALID_TARGET" => StatusCode::BadRequest,
                "PROVIDER_SIM_DISABLED" | "REMOTE_DISABLED" => StatusCode::Forbidden,
                _ => StatusCode::InternalServerError,
            },
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::RunFailed(e) => &e.code,
            ApiError::Invalid(_)
            | ApiError::MalformedJson(_)
            | ApiError::NotFound(_)
            | ApiError::UnknownRoute(_)
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMediaType => "INVALID_REQUEST",
            ApiError::UnknownTarget(_) => "INVALID_TARGET",
            ApiError::ProviderSimDisabled(_) => "PROVIDER_SIM_DISABLED",
            ApiError::AuthRequired => "AUTH_REQUIRED",
            ApiError::BudgetExhausted { .. } => "BUDGET_EXHAUSTED",
            ApiError::BudgetGuardrail { .. } => "BUDGET_GUARDRAIL",
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::Backpressure { .. } => "PROVIDER_QUEUE_BACKPRESSURE",
            ApiError::StoreUnavailable(_) | ApiError::StoreRefusesWrites | ApiError::Internal(_) => {
                "INTERNAL_ERROR"
            }
        }
    }

    /// The client-facing message. Store and internal causes are replaced by
    /// a generic sentence: paths and OS errors are for the operator's log.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(fields) => {
                let locs: Vec<&str> = fields.iter().map(|f| f.loc.as_str()).collect();
                format!("Invalid request: {}", locs.join(", "))
            }
            ApiError::MalformedJson(why) => format!("Request body is not valid JSON: {why}"),
            ApiError::NotFound(what) | ApiError::UnknownRoute(what) => what.clone(),
            ApiError::UnknownTarget(t) => format!("Unknown hardware_target '{t}'"),
            ApiError::ProviderSimDisabled(t) => {
                format!("Target '{t}' runs only as a provider simulation, which is disabled")
            }
            ApiError::AuthRequired => "A valid API key is required".to_string(),
            ApiError::TooLarge(limit) => format!("Request body exceeds {limit} bytes"),
            ApiError::UnsupportedMediaType => "Content-Type must be application/json".to_string(),
            ApiError::BudgetExhausted {
                remaining, requested, ..
            } => {
                format!("Session shot budget exhausted: {requested} requested, {remaining} remaining")
            }
            ApiError::BudgetGuardrail { message, .. } => message.clone(),
            ApiError::RateLimited { retry_after_s } => {
                format!("Too many requests; retry in {retry_after_s} s")
            }
            ApiError::Conflict(why) => why.clone(),
            ApiError::Backpressure { message, .. } => message.clone(),
            ApiError::StoreUnavailable(_) => {
                "The run store cannot accept writes right now; nothing was changed".to_string()
            }
            ApiError::StoreRefusesWrites => {
                "The run store refuses writes until synqc restarts, since a write to its disk failed; \
                 nothing was changed"
                    .to_string()
            }
            ApiError::Internal(_) => "Internal error".to_string(),
            ApiError::RunFailed(e) => e.message.clone(),
        }
    }

    fn action_hint(&self) -> &str {
        match self {
            ApiError::RunFailed(e) => &e.action_hint,
            ApiError::Invalid(_) => "Fix the listed fields and resend.",
            ApiError::MalformedJson(_) => "Send a JSON object body.",
            ApiError::NotFound(_) => "Check the id; GET /runs lists known runs.",
            ApiError::UnknownRoute(_) => "See /docs for the routes this appliance serves.",
            ApiError::UnknownTarget(_) => "Pick a hardware target from /hardware/targets.",
            ApiError::ProviderSimDisabled(_) => {
                "Use sim_local, or set allow_provider_simulation = true in the config."
            }
            ApiError::AuthRequired => "Send X-Api-Key: KEY or Authorization: Bearer KEY.",
            ApiError::TooLarge(_) => "Send a smaller body (see max_request_bytes).",
            ApiError::UnsupportedMediaType => "Set Content-Type: application/json.",
            ApiError::BudgetExhausted { .. } => {
                "Wait for the session budget to reset, or request fewer shots."
            }
            ApiError::BudgetGuardrail { .. } => "Adjust shot_budget to the limits in error_detail.",
            ApiError::RateLimited { .. } => "Slow down and retry after the Retry-After delay.",
            ApiError::Conflict(_) => "Use a new Idempotency-Key, or check the run's current status.",
            ApiError::Backpressure { .. } => "Retry after the Retry-After delay.",
            ApiError::StoreUnavailable(_) => "Check disk space and the synqc log; retry later.",
            ApiError::StoreRefusesWrites => "Free space on the data directory's disk and restart synqc.",
            ApiError::Internal(_) => "Retry; if it persists, check the synqc log.",
        }
    }

    fn detail(&self) -> Value {
        let mut detail = match self {
            ApiError::Invalid(fields) => json!({ "fields": fields }),
            ApiError::MalformedJson(_) | ApiError::TooLarge(_) | ApiError::UnsupportedMediaType => {
                json!({ "fields": [{"loc": "body", "msg": self.message()}] })
            }
            ApiError::BudgetExhausted {
                session_id,
                remaining,
                requested,
                resets_in_s,
            } => json!({
                "session_id": session_id, "remaining": remaining,
                "requested": requested, "resets_in_s": resets_in_s,
            }),
            ApiError::BudgetGuardrail { detail, .. } => detail.clone(),
            ApiError::RunFailed(e) if e.detail.is_object() => e.detail.clone(),
            ApiError::RateLimited { retry_after_s } | ApiError::Backpressure { retry_after_s, .. } => {
                json!({ "retry_after_s": retry_after_s })
            }
            _ => json!({}),
        };
        detail["code"] = json!(self.code());
        detail
    }

    /// Seconds for a Retry-After header, where the error has one.
    pub fn retry_after_s(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_s } | ApiError::Backpressure { retry_after_s, .. } => {
                Some(*retry_after_s)
            }
            ApiError::StoreUnavailable(_) => Some(5),
            _ => None,
        }
    }

    /// The envelope of api.md: `{"detail": {...}}`.
    pub fn envelope(&self) -> Value {
        json!({ "detail": {
            "code": self.code(),
            "error_code": self.code(),
            "error_message": self.message(),
            "error_detail": self.detail(),
            "action_hint": self.action_hint(),
        }})
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::StoreUnavailable(cause) | ApiError::Internal(cause) => {
                log::error!("{}: {cause}", self.code());
            }
            _ => {}
        }
        let mut res = Response::new(self.status());
        if let Some(s) = self.retry_after_s() {
            res.insert_header("Retry-After", s.to_string());
        }
        res.set_body(tide::Body::from_json(&self.envelope()).unwrap_or_else(|_| tide::Body::empty()));
        res
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::WritesRefused => ApiError::StoreRefusesWrites,
            other => ApiError::StoreUnavailable(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_every_field_and_repeats_the_code() {
        let e = ApiError::UnknownTarget("nope".into());
        let v = e.envelope();
        let d = &v["detail"];
        assert_eq!(d["code"], "INVALID_TARGET");
        assert_eq!(d["error_code"], "INVALID_TARGET");
        assert_eq!(d["error_detail"]["code"], "INVALID_TARGET");
        assert_eq!(d["error_message"], "Unknown hardware_target 'nope'");
        assert!(d["action_hint"]
            .as_str()
            .is_some_and(|h| h.contains("/hardware/targets")));
        assert_eq!(e.status(), StatusCode::BadRequest);
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
}
