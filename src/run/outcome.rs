//! How a run that did not succeed ends: which error it carries, whether
//! its shots go back to the budget, and when a transient failure is tried
//! again. The executor decides when; these rules decide what.

use serde_json::json;

use super::{ErrorCode, RunError};
use crate::sim::SimError;

/// Where a cancel found a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelStage {
    /// Still in the durable queue.
    Queued,
    /// Claimed, waiting for its turn in its worker's batch.
    Waiting,
    /// Being simulated.
    Executing,
    /// Its cancel was accepted, then the process stopped (a crash) before
    /// the cancel took effect: recovery ends it; nothing it sampled was
    /// kept.
    Interrupted,
}

impl CancelStage {
    fn as_str(self) -> &'static str {
        match self {
            CancelStage::Queued => "queued",
            CancelStage::Waiting => "waiting",
            CancelStage::Executing => "executing",
            CancelStage::Interrupted => "interrupted",
        }
    }

    /// Shots go back to the budget when nothing was sampled: a run
    /// cancelled before its simulation started. One cancelled while
    /// executing keeps them, as every run that sampled does.
    pub fn refunds(self) -> bool {
        self != CancelStage::Executing
    }
}

impl RunError {
    /// The error of a run cancelled by request, saying where the cancel
    /// found it and whether its shots were refunded.
    pub fn cancelled(stage: CancelStage) -> RunError {
        RunError::new(
            ErrorCode::Cancelled,
            "Cancelled by request",
            json!({"cancelled_while": stage.as_str(), "shots_refunded": stage.refunds()}),
            ErrorCode::Cancelled.hint(),
        )
    }

    /// The error of a simulation that stopped without an outcome;
    /// `timed_out` says the executor stopped it for job_timeout_seconds
    /// (else a stop is a cancel).
    pub fn from_sim(e: SimError, timed_out: bool) -> RunError {
        match e {
            SimError::Cancelled if timed_out => RunError::new(
                ErrorCode::Timeout,
                "The run exceeded job_timeout_seconds",
                json!({}),
                ErrorCode::Timeout.hint(),
            ),
            SimError::Cancelled => RunError::new(
                ErrorCode::Cancelled,
                "Cancelled by request",
                json!({}),
                ErrorCode::Cancelled.hint(),
            ),
            SimError::Invalid(why) => RunError::new(
                ErrorCode::InvalidRequest,
                why,
                json!({}),
                ErrorCode::InvalidRequest.hint(),
            ),
            SimError::Loop(why) => {
                log::error!("latency loop probe failed: {why}");
                RunError::new(
                    ErrorCode::InternalError,
                    "The appliance loop could not be measured",
                    json!({}),
                    "Check the synqc log; retry.",
                )
            }
        }
    }

    /// The error of an attempt on a target's executor (docs/circuits.md):
    /// `code` is the executor's PROVIDER_* code; `retryable` says whether
    /// another attempt may succeed; `counts_returned` that the backend
    /// spent the shots even though its answer was refused.
    pub fn provider(
        code: ErrorCode,
        message: impl Into<String>,
        retryable: bool,
        counts_returned: bool,
    ) -> RunError {
        RunError::new(
            code,
            message,
            json!({"retryable": retryable, "counts_returned": counts_returned}),
            code.hint(),
        )
    }

    /// Whether a run that failed with this error gets its shots back:
    /// only when nothing was sampled. A timeout is the one failure that
    /// stops a simulation already under way; an executor whose counts came
    /// back spent them even when its answer was refused.
    pub fn refunds(&self) -> bool {
        self.code != ErrorCode::Timeout && self.detail.get("counts_returned") != Some(&json!(true))
    }

    /// Whether a run that failed with this error on attempt `attempts`
    /// goes back to the queue, given max_attempts (docs/operations.md):
    /// transient codes, and executor failures the executor (or synqc, for
    /// a dead, hung or garbling one) calls retryable.
    pub fn retried(&self, attempts: u32, max_attempts: u32) -> bool {
        let retryable = self.code.is_transient() || self.detail.get("retryable") == Some(&json!(true));
        retryable && attempts < max_attempts
    }
}

/// How long a retried run waits before it is ready again: exponential
/// backoff with jitter, 1 s, 2 s, 4 s ... (+0..50%) by attempt.
pub fn retry_backoff_ms(attempts: u32) -> u64 {
    let base = 1000u64 << attempts.saturating_sub(1).min(6);
    base + rand::random::<u64>() % (base / 2 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_by_attempt_with_at_most_half_again_of_jitter() {
        for (attempts, base) in [
            (0, 1000),
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (7, 64_000),
            (30, 64_000),
        ] {
            for _ in 0..50 {
                let wait = retry_backoff_ms(attempts);
                assert!((base..=base + base / 2).contains(&wait), "{attempts}: {wait}");
            }
        }
    }

    #[test]
    fn only_runs_that_sampled_keep_their_shots() {
        assert!(CancelStage::Queued.refunds() && CancelStage::Waiting.refunds());
        assert!(!CancelStage::Executing.refunds());
        assert!(!RunError::from_sim(SimError::Cancelled, true).refunds());
        assert!(RunError::from_sim(SimError::Invalid("x".into()), false).refunds());
        let timeout = RunError::from_sim(SimError::Cancelled, true);
        assert!(timeout.retried(1, 3) && !timeout.retried(3, 3));
        assert!(!RunError::cancelled(CancelStage::Waiting).retried(1, 3));
    }

    #[test]
    fn executor_failures_retry_as_told_and_refund_unless_counts_came_back() {
        let garbled = RunError::provider(ErrorCode::ProviderError, "bad counts", true, true);
        assert!(garbled.retried(2, 3) && !garbled.retried(3, 3));
        assert!(!garbled.refunds(), "the backend spent the shots");
        let refused = RunError::provider(ErrorCode::ProviderCredentials, "no token", false, false);
        assert!(!refused.retried(1, 3));
        assert!(refused.refunds());
    }
}
