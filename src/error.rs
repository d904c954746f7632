//! The one error type of the HTTP surface and its JSON envelope (docs/api.md):
//! every 4xx/5xx synqc produces is rendered here and nowhere else.

use serde_json::{json, Value};
use tide::{Response, StatusCode};

// Validation lives below the HTTP layer (controls validate a profile
// themselves); handlers keep naming it from here, beside ApiError::Invalid.
use crate::run::{ErrorCode, RunError, RunId, RunStatus};
pub use crate::validation::FieldError;

/// Everything a request can fail with. Each variant maps to one code of the
/// closed set in docs/api.md and to one HTTP status.
#[derive(Debug)]
pub enum ApiError {
    /// 422 INVALID_REQUEST listing every bad field.
    Invalid(Vec<FieldError>),
    /// 422 INVALID_REQUEST for a body that is not JSON at all.
    MalformedJson(String),
    /// 404 INVALID_REQUEST: no run by that id, or no such result or asset.
    NotFound(String),
    /// 404 INVALID_REQUEST: something other than a run is missing (a
    /// target, a calibration, a profile version), with where to look.
    Missing { what: String, hint: String },
    /// 404 (405 for a wrong method) INVALID_REQUEST: no such route.
    UnknownRoute(String),
    /// 400 INVALID_TARGET: the one thing wrong with a request is a target
    /// id (`field` is hardware_target or compare_with) that does not exist.
    UnknownTarget {
        field: &'static str,
        given: String,
        did_you_mean: Option<String>,
        /// Every value the field accepts.
        valid: Vec<String>,
    },
    /// 403 PROVIDER_SIM_DISABLED: `field` names a provider target while
    /// provider simulation is off.
    ProviderSimDisabled { field: &'static str, target: String },
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
    /// 409 CONFLICT: an Idempotency-Key reused with another body.
    IdempotencyConflict { key: String },
    /// 409 CONFLICT: cancel of a run that has already finished.
    AlreadyFinished { run: RunId, status: RunStatus },
    /// 409 CONFLICT: a calibration write-back to a target bound to an
    /// executor, whose noise is the instrument's own.
    TargetBound { target: String },
    /// 404 INVALID_REQUEST: no schedule by that name.
    UnknownSchedule(String),
    /// 409 CONFLICT: a schedule by that name exists already.
    ScheduleExists(String),
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
    /// INVALID_REQUEST from the connection layer: a request that cannot be
    /// read as HTTP/1.1 (400, 414, 431, 501, 505), with its own status.
    Protocol {
        status: StatusCode,
        message: String,
        hint: &'static str,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::MalformedJson(_) | ApiError::BudgetGuardrail { .. } => {
                StatusCode::UnprocessableEntity
            }
            ApiError::NotFound(_)
            | ApiError::Missing { .. }
            | ApiError::UnknownRoute(_)
            | ApiError::UnknownSchedule(_) => StatusCode::NotFound,
            ApiError::UnknownTarget { .. } => StatusCode::BadRequest,
            ApiError::ProviderSimDisabled { .. } => StatusCode::Forbidden,
            ApiError::AuthRequired => StatusCode::Unauthorized,
            ApiError::TooLarge(_) => StatusCode::PayloadTooLarge,
            ApiError::UnsupportedMediaType => StatusCode::UnsupportedMediaType,
            ApiError::BudgetExhausted { .. } | ApiError::RateLimited { .. } => StatusCode::TooManyRequests,
            ApiError::IdempotencyConflict { .. }
            | ApiError::AlreadyFinished { .. }
            | ApiError::TargetBound { .. }
            | ApiError::ScheduleExists(_) => StatusCode::Conflict,
            ApiError::Backpressure { .. } | ApiError::StoreUnavailable(_) | ApiError::StoreRefusesWrites => {
                StatusCode::ServiceUnavailable
            }
            ApiError::Internal(_) => StatusCode::InternalServerError,
            ApiError::Protocol { status, .. } => *status,
            ApiError::RunFailed(e) => {
                StatusCode::try_from(e.code.status()).unwrap_or(StatusCode::InternalServerError)
            }
        }
    }

    /// The code as written on the wire.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    pub fn error_code(&self) -> ErrorCode {
        match self {
            ApiError::RunFailed(e) => e.code,
            ApiError::Invalid(_)
            | ApiError::MalformedJson(_)
            | ApiError::NotFound(_)
            | ApiError::Missing { .. }
            | ApiError::UnknownSchedule(_)
            | ApiError::UnknownRoute(_)
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMediaType
            | ApiError::Protocol { .. } => ErrorCode::InvalidRequest,
            ApiError::UnknownTarget { .. } => ErrorCode::InvalidTarget,
            ApiError::ProviderSimDisabled { .. } => ErrorCode::ProviderSimDisabled,
            ApiError::AuthRequired => ErrorCode::AuthRequired,
            ApiError::BudgetExhausted { .. } => ErrorCode::BudgetExhausted,
            ApiError::BudgetGuardrail { .. } => ErrorCode::BudgetGuardrail,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::IdempotencyConflict { .. }
            | ApiError::AlreadyFinished { .. }
            | ApiError::TargetBound { .. }
            | ApiError::ScheduleExists(_) => ErrorCode::Conflict,
            ApiError::Backpressure { .. } => ErrorCode::ProviderQueueBackpressure,
            ApiError::StoreUnavailable(_) | ApiError::StoreRefusesWrites | ApiError::Internal(_) => {
                ErrorCode::InternalError
            }
        }
    }

    /// The client-facing message. Store and internal causes are replaced by
    /// a generic sentence: paths and OS errors are for the operator's log.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(fields) => {
                let each: Vec<String> = fields.iter().map(|f| format!("{} ({})", f.loc, f.msg)).collect();
                format!("Invalid request: {}; nothing was changed.", each.join(", "))
            }
            ApiError::MalformedJson(why) => {
                format!("The request body is not valid JSON ({why}); nothing was changed.")
            }
            ApiError::NotFound(what) | ApiError::UnknownRoute(what) | ApiError::Missing { what, .. } => {
                what.clone()
            }
            ApiError::UnknownTarget {
                field,
                given,
                did_you_mean,
                valid,
            } => {
                let guess = did_you_mean
                    .as_ref()
                    .map(|d| format!(" (did you mean '{d}'?)"))
                    .unwrap_or_default();
                format!(
                    "Unknown {field} '{given}'{guess}; valid values are {}.",
                    valid.join(", ")
                )
            }
            ApiError::ProviderSimDisabled { field, target } => format!(
                "{field} '{target}' runs only as a simulation of that provider's noise profile, \
                 and provider simulation is off on this appliance (allow_provider_simulation = false); \
                 nothing was submitted."
            ),
            ApiError::AuthRequired => "A valid API key is required for this route.".to_string(),
            ApiError::TooLarge(limit) => {
                format!("The request body exceeds {limit} bytes; nothing was changed.")
            }
            ApiError::UnsupportedMediaType => {
                "The request body must be JSON (Content-Type: application/json); nothing was changed."
                    .to_string()
            }
            ApiError::BudgetExhausted {
                remaining, requested, ..
            } => format!(
                "The session's shot budget is exhausted: {requested} shots requested, \
                 {remaining} remaining; nothing was submitted."
            ),
            ApiError::BudgetGuardrail { message, .. } => message.clone(),
            ApiError::RateLimited { retry_after_s } => {
                format!("Too many requests from this session; retry in {retry_after_s} s.")
            }
            ApiError::IdempotencyConflict { key } => format!(
                "Idempotency-Key '{key}' was already used in this session with a different \
                 request body; nothing was submitted."
            ),
            ApiError::AlreadyFinished { run, status } => format!(
                "Run {run} already finished with status {}; nothing was changed.",
                status.as_str()
            ),
            ApiError::TargetBound { target } => format!(
                "Target {target} is bound to an executor, which runs with the instrument's own noise: \
                 a calibration cannot be written back to it; nothing was changed."
            ),
            ApiError::Backpressure { message, .. } => message.clone(),
            ApiError::StoreUnavailable(_) => {
                "The run store cannot accept writes right now; nothing was changed.".to_string()
            }
            ApiError::StoreRefusesWrites => {
                "The run store refuses writes until synqc restarts, since a write to its disk failed; \
                 nothing was changed."
                    .to_string()
            }
            ApiError::Internal(_) => "An internal error stopped this request.".to_string(),
            ApiError::RunFailed(e) => e.message.clone(),
            ApiError::Protocol { message, .. } => message.clone(),
            ApiError::UnknownSchedule(name) => format!("No schedule is named '{name}'."),
            ApiError::ScheduleExists(name) => {
                format!("A schedule named '{name}' exists already; nothing was changed.")
            }
        }
    }

    pub fn action_hint(&self) -> String {
        let hint = match self {
            ApiError::RunFailed(e) => e.action_hint.as_str(),
            ApiError::Invalid(_) => {
                "Fix the fields listed in error_detail.fields and send the request again."
            }
            ApiError::MalformedJson(_) => "Send the body as one well-formed JSON object.",
            ApiError::NotFound(_) => "Check the id; GET /runs lists known runs.",
            ApiError::Missing { hint, .. } => return hint.clone(),
            ApiError::UnknownRoute(_) => "See /docs for the routes this appliance serves.",
            ApiError::UnknownTarget { field, valid, .. } => {
                return match *field {
                    "compare_with" => format!(
                        "Set compare_with to one of {}, or leave it out to compare with the first \
                         other available target (else ideal).",
                        valid.join(", ")
                    ),
                    _ => format!(
                        "Pick a hardware target from /hardware/targets: {}.",
                        valid.join(", ")
                    ),
                }
            }
            ApiError::ProviderSimDisabled { field, .. } => {
                return match *field {
                    "compare_with" => format!(
                        "Leave compare_with out (backend_compare then compares with an available \
                         target, or with ideal, the noise-free twin), set compare_with to ideal, \
                         or {ENABLE_PROVIDER_SIM}."
                    ),
                    _ => format!("Use hardware_target sim_local, or {ENABLE_PROVIDER_SIM}."),
                }
            }
            ApiError::AuthRequired => "Send X-Api-Key: KEY or Authorization: Bearer KEY.",
            ApiError::TooLarge(_) => "Send a smaller body, or raise max_request_bytes in the config.",
            ApiError::UnsupportedMediaType => "Set Content-Type: application/json and send JSON.",
            ApiError::BudgetExhausted { .. } => {
                "Wait error_detail.resets_in_s seconds for the session budget to reset, or request \
                 at most error_detail.remaining shots."
            }
            ApiError::BudgetGuardrail { .. } => "Adjust shot_budget to the limits in error_detail.",
            ApiError::RateLimited { .. } => "Slow down and retry after the Retry-After delay.",
            ApiError::IdempotencyConflict { .. } => {
                "Send a new request under a new Idempotency-Key, or resend the original body \
                 unchanged to get the original run back."
            }
            ApiError::TargetBound { .. } => {
                "Write calibrations back only to simulated targets; an executor's instrument is \
                 recalibrated on the instrument itself."
            }
            ApiError::AlreadyFinished { run, status } => {
                return match status {
                    RunStatus::Succeeded => {
                        format!("Nothing to cancel: read its result with GET /runs/{run}.")
                    }
                    RunStatus::Failed => format!(
                        "Nothing to cancel: GET /runs/{run} says why it failed; submit a new run \
                         to try again."
                    ),
                    _ => "Nothing to cancel: it was already cancelled; submit a new run if it is \
                          still needed."
                        .to_string(),
                }
            }
            ApiError::Backpressure { .. } => "Retry after the Retry-After delay.",
            ApiError::StoreUnavailable(_) => "Check disk space and the synqc log; retry later.",
            ApiError::StoreRefusesWrites => "Free space on the data directory's disk and restart synqc.",
            ApiError::Internal(_) => "Retry; if it persists, check the synqc log.",
            ApiError::Protocol { hint, .. } => hint,
            ApiError::UnknownSchedule(_) => "Check the name; GET /schedules lists the schedules.",
            ApiError::ScheduleExists(_) => {
                "Pick another name, or change the existing schedule with PATCH /schedules/{name}."
            }
        };
        hint.to_string()
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
            ApiError::UnknownTarget {
                field, given, valid, ..
            } => json!({ "field": field, "value": given, "valid": valid }),
            ApiError::ProviderSimDisabled { field, target } => json!({ "field": field, "target": target }),
            ApiError::IdempotencyConflict { key } => json!({ "idempotency_key": key }),
            ApiError::AlreadyFinished { run, status } => json!({ "run_id": run, "status": status }),
            ApiError::TargetBound { target } => json!({ "hardware_target": target }),
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
            // Clients that honour Retry-After come back when the window
            // has room again, not in a tight loop.
            ApiError::BudgetExhausted { resets_in_s, .. } => Some((*resets_in_s).max(1)),
            _ => None,
        }
    }

    /// The envelope of docs/api.md: `{"detail": {...}}`.
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

/// How to turn provider simulation on, in each of the config's spellings.
const ENABLE_PROVIDER_SIM: &str = "enable provider simulation (allow_provider_simulation = true in the \
    config file, SYNQC_ALLOW_PROVIDER_SIMULATION=true or --allow-provider-simulation true)";

/// Each refusal of admission is the API error of the same name.
impl From<crate::run::admission::Refusal> for ApiError {
    fn from(r: crate::run::admission::Refusal) -> ApiError {
        use crate::run::admission::Refusal;
        match r {
            Refusal::Invalid(bad) => ApiError::Invalid(bad),
            Refusal::UnknownTarget {
                field,
                given,
                did_you_mean,
                valid,
            } => ApiError::UnknownTarget {
                field,
                given,
                did_you_mean,
                valid,
            },
            Refusal::ProviderSimDisabled { field, target } => ApiError::ProviderSimDisabled { field, target },
            Refusal::BudgetGuardrail { message, detail } => ApiError::BudgetGuardrail { message, detail },
        }
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
mod tests;
