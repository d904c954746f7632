//! The closed set of error codes (docs/api.md): one table says, for each
//! code, the HTTP status a run failed with it is answered with, whether
//! the executor retries it, and its usual action hint. Every place that
//! makes, matches or counts a code uses this type; it serializes as the
//! code's text, so the wire and the stored records keep their spelling.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    AuthRequired,
    RemoteDisabled,
    ProviderSimDisabled,
    ProviderCredentials,
    ProviderCapacity,
    ProviderQueueBackpressure,
    InvalidTarget,
    InvalidRequest,
    BudgetExhausted,
    RateLimited,
    BudgetGuardrail,
    Timeout,
    Cancelled,
    InternalError,
    ProviderError,
    Conflict,
}

/// One row of the table.
struct Row {
    text: &'static str,
    status: u16,
    transient: bool,
    hint: &'static str,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::AuthRequired,
        ErrorCode::RemoteDisabled,
        ErrorCode::ProviderSimDisabled,
        ErrorCode::ProviderCredentials,
        ErrorCode::ProviderCapacity,
        ErrorCode::ProviderQueueBackpressure,
        ErrorCode::InvalidTarget,
        ErrorCode::InvalidRequest,
        ErrorCode::BudgetExhausted,
        ErrorCode::RateLimited,
        ErrorCode::BudgetGuardrail,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::InternalError,
        ErrorCode::ProviderError,
        ErrorCode::Conflict,
    ];

    fn row(self) -> Row {
        let row = |text, status, transient, hint| Row {
            text,
            status,
            transient,
            hint,
        };
        match self {
            ErrorCode::AuthRequired => row(
                "AUTH_REQUIRED",
                401,
                false,
                "Send X-Api-Key: KEY or Authorization: Bearer KEY.",
            ),
            ErrorCode::RemoteDisabled => row(
                "REMOTE_DISABLED",
                403,
                false,
                "Submit on a simulated target such as sim_local.",
            ),
            ErrorCode::ProviderSimDisabled => row(
                "PROVIDER_SIM_DISABLED",
                403,
                false,
                "Enable allow_provider_simulation, or submit on sim_local.",
            ),
            // The provider codes' statuses are not fixed by the contract;
            // a run never fails with them on the built-in simulator.
            ErrorCode::ProviderCredentials => row(
                "PROVIDER_CREDENTIALS",
                500,
                false,
                "Check the provider credentials in the config.",
            ),
            ErrorCode::ProviderCapacity => row("PROVIDER_CAPACITY", 500, true, "Retry later."),
            ErrorCode::ProviderQueueBackpressure => row(
                "PROVIDER_QUEUE_BACKPRESSURE",
                503,
                true,
                "Retry after the Retry-After delay.",
            ),
            ErrorCode::InvalidTarget => row(
                "INVALID_TARGET",
                400,
                false,
                "Pick a hardware target from /hardware/targets.",
            ),
            ErrorCode::InvalidRequest => row(
                "INVALID_REQUEST",
                422,
                false,
                "Fix the request and submit it again.",
            ),
            ErrorCode::BudgetExhausted => row(
                "BUDGET_EXHAUSTED",
                429,
                false,
                "Wait for the session budget to reset, or request fewer shots.",
            ),
            ErrorCode::RateLimited => row(
                "RATE_LIMITED",
                429,
                false,
                "Slow down and retry after the Retry-After delay.",
            ),
            ErrorCode::BudgetGuardrail => row(
                "BUDGET_GUARDRAIL",
                422,
                false,
                "Adjust shot_budget to the limits in error_detail.",
            ),
            ErrorCode::Timeout => row(
                "TIMEOUT",
                504,
                true,
                "Use a smaller shot budget, or raise job_timeout_seconds.",
            ),
            ErrorCode::Cancelled => row("CANCELLED", 409, false, "Submit it again if it is still needed."),
            ErrorCode::InternalError => row(
                "INTERNAL_ERROR",
                500,
                false,
                "Retry; if it persists, check the synqc log.",
            ),
            ErrorCode::ProviderError => row("PROVIDER_ERROR", 500, false, "Check the synqc log; retry."),
            ErrorCode::Conflict => row(
                "CONFLICT",
                409,
                false,
                "Send a new request, or read the resource's current state.",
            ),
        }
    }

    /// The code as it is written on the wire and in stored records.
    pub fn as_str(self) -> &'static str {
        self.row().text
    }

    /// The HTTP status a request that failed with this code is answered
    /// with, where nothing more specific applies (an unknown run id is an
    /// INVALID_REQUEST answered 404, for one).
    pub fn status(self) -> u16 {
        self.row().status
    }

    /// Whether the executor retries a run that failed with this code, with
    /// backoff, up to max_attempts (docs/operations.md).
    pub fn is_transient(self) -> bool {
        self.row().transient
    }

    /// What to do about it, where the place that made the error knows no
    /// better hint.
    pub fn hint(self) -> &'static str {
        self.row().hint
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_serializes_as_its_text_and_reads_back() {
        for code in ErrorCode::ALL {
            let text = serde_json::to_value(code).unwrap();
            assert_eq!(text, serde_json::json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(text).unwrap(), code);
        }
        assert!(serde_json::from_str::<ErrorCode>("\"run_failed\"").is_err());
    }

    #[test]
    fn only_timeouts_and_provider_pressure_are_retried() {
        let transient: Vec<&str> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.is_transient())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            transient,
            ["PROVIDER_CAPACITY", "PROVIDER_QUEUE_BACKPRESSURE", "TIMEOUT"]
        );
    }
}
