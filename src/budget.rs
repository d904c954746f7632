//! Shot budgets. Each budget session may reserve up to
//! `max_shots_per_session` shots per window; the window slides: it ends
//! `session_budget_ttl_seconds` after the session's last reservation, and
//! the next reservation after that starts a fresh window. Reservations
//! happen at submit, inside the store transaction that accepts the run, so
//! a 202 always has its shots.

use sha2::{Digest, Sha256};

/// One session's state in the current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub window_start_ms: u64,
    pub used: u64,
    pub last_touch_ms: u64,
}

impl SessionRecord {
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&self.window_start_ms.to_be_bytes());
        b[8..16].copy_from_slice(&self.used.to_be_bytes());
        b[16..].copy_from_slice(&self.last_touch_ms.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Option<SessionRecord> {
        let word = |i: usize| b.get(i..i + 8)?.try_into().ok().map(u64::from_be_bytes);
        if b.len() != 24 {
            return None;
        }
        Some(SessionRecord {
            window_start_ms: word(0)?,
            used: word(8)?,
            last_touch_ms: word(16)?,
        })
    }
}

/// The budget rules in force.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub max_per_session: u64,
    pub ttl_ms: u64,
}

/// What a reservation decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    Granted {
        record: SessionRecord,
        /// A new window started (new session, or the old one had expired).
        created: bool,
        /// The previous window had expired and was replaced.
        expired: bool,
    },
    Exhausted {
        remaining: u64,
        resets_in_s: u64,
    },
}

impl Budget {
    pub fn is_expired(&self, rec: &SessionRecord, now_ms: u64) -> bool {
        now_ms >= rec.last_touch_ms.saturating_add(self.ttl_ms)
    }

    pub fn reserve(&self, current: Option<SessionRecord>, shots: u64, now_ms: u64) -> Reservation {
        let live = current.filter(|r| !self.is_expired(r, now_ms));
        let expired = current.is_some() && live.is_none();
        let base = live.unwrap_or(SessionRecord {
            window_start_ms: now_ms,
            used: 0,
            last_touch_ms: now_ms,
        });
        let remaining = self.max_per_session.saturating_sub(base.used);
        if shots > remaining {
            // A refused request does not touch the window: retrying does not
            // push the reset further away.
            let resets_at = base.last_touch_ms.saturating_add(self.ttl_ms);
            return Reservation::Exhausted {
                remaining,
                resets_in_s: resets_at.saturating_sub(now_ms).div_ceil(1000),
            };
        }
        Reservation::Granted {
            record: SessionRecord {
                used: base.used + shots,
                last_touch_ms: now_ms,
                ..base
            },
            created: live.is_none(),
            expired,
        }
    }

    /// Gives shots back to the window they were reserved in; a refund for an
    /// older window is dropped (that window's budget is already gone).
    pub fn refund(
        &self,
        current: Option<SessionRecord>,
        shots: u64,
        window_ms: u64,
        now_ms: u64,
    ) -> Option<SessionRecord> {
        current
            .filter(|r| r.window_start_ms == window_ms && !self.is_expired(r, now_ms))
            .map(|r| SessionRecord {
                used: r.used.saturating_sub(shots),
                ..r
            })
    }
}

/// The budget session of a request (docs/api.md): the X-Session-Id header, else
/// a digest of the API key (never the key itself), else `local-session`.
pub fn session_id(header: Option<&str>, api_key: Option<&str>) -> String {
    if let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    match api_key {
        Some(key) => format!("api_key:{}", &hex(&Sha256::digest(key.as_bytes()))[..12]),
        None => "local-session".to_string(),
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Budget = Budget {
        max_per_session: 1000,
        ttl_ms: 60_000,
    };

    fn granted(r: Reservation) -> SessionRecord {
        match r {
            Reservation::Granted { record, .. } => record,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn reserves_until_exhausted_then_reports_reset() {
        let r = granted(B.reserve(None, 600, 1_000));
        assert_eq!(r.used, 600);
        let r2 = granted(B.reserve(Some(r), 400, 2_000));
        assert_eq!(r2.used, 1000);
        assert_eq!(
            B.reserve(Some(r2), 1, 3_000),
            Reservation::Exhausted {
                remaining: 0,
                resets_in_s: 59
            }
        );
    }

    #[test]
    fn window_slides_and_resets_after_ttl() {
        let r = granted(B.reserve(None, 1000, 0));
        // Still inside the window 59 s after the last touch.
        assert!(matches!(
            B.reserve(Some(r), 1, 59_999),
            Reservation::Exhausted { .. }
        ));
        match B.reserve(Some(r), 1000, 60_000) {
            Reservation::Granted {
                record,
                created,
                expired,
            } => {
                assert!(created && expired);
                assert_eq!(record.used, 1000);
                assert_eq!(record.window_start_ms, 60_000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refunds_only_the_same_live_window() {
        let r = granted(B.reserve(None, 700, 0));
        assert_eq!(B.refund(Some(r), 200, 0, 1_000).map(|r| r.used), Some(500));
        assert_eq!(B.refund(Some(r), 200, 5, 1_000), None, "other window");
        assert_eq!(B.refund(Some(r), 200, 0, 61_000), None, "expired");
    }

    #[test]
    fn session_ids_never_contain_the_key() {
        assert_eq!(session_id(Some("bench-7"), Some("secret")), "bench-7");
        let s = session_id(None, Some("secret"));
        assert!(s.starts_with("api_key:") && s.len() == 20 && !s.contains("secret"));
        assert_eq!(session_id(Some("  "), None), "local-session");
    }

    #[test]
    fn records_round_trip() {
        let r = SessionRecord {
            window_start_ms: 1,
            used: 2,
            last_touch_ms: 3,
        };
        assert_eq!(SessionRecord::decode(&r.encode()), Some(r));
        assert_eq!(SessionRecord::decode(&[0; 5]), None);
    }
}
