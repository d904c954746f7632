//! The scheduler loop: a task beside the maintenance loop that fires the
//! schedules whose period is due (schedule.rs decides which), each firing
//! one run through the same admission as POST /runs, charged to the
//! budget session `schedule:<name>`. The store's fire command commits the
//! run and the period's mark together, so a period is fired at most once
//! across crashes; a refusal marks the period too, so it is recorded once
//! and not retried. Only a store error leaves the period to the next tick.

use std::collections::HashSet;
use std::time::Duration;

use smol::Timer;

use super::on_submitted;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::run::admission::{self, Admitted, Stamp};
use crate::run::{FiredBy, RunRecord};
use crate::schedule::ScheduleRecord;
use crate::store::{Fired, Firing};
// Up to the crate root, which holds the store, config and targets a
// firing needs, as the maintenance loop does.
use crate::State;

/// How often due periods are looked for: the lateness of a firing.
const TICK: Duration = Duration::from_millis(250);

/// Fires due schedules until shutdown, and keeps their series current.
pub async fn scheduler_loop(state: State) {
    let up_since = state.up_since_ms();
    let mut known: HashSet<String> = HashSet::new();
    while !state.lifecycle.is_draining() {
        let now = now_ms();
        let schedules = match state.store.schedules() {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot read the schedules: {e}");
                Vec::new()
            }
        };
        let mut seen = HashSet::with_capacity(schedules.len());
        for s in &schedules {
            publish(s, now, known.contains(&s.name));
            seen.insert(s.name.clone());
            if let Some(period) = s.due(now, up_since) {
                fire(&state, s, period, now).await;
            }
        }
        // A deleted schedule's series stay until a restart, disabled, so
        // its staleness alert ends.
        for gone in known.difference(&seen) {
            metrics::gauge!("synqc_schedule_enabled", "schedule" => gone.clone()).set(0.0);
        }
        known = seen;
        Timer::after(TICK).await;
    }
}

/// One period of `s`: admission, then the store's fire command.
async fn fire(state: &State, s: &ScheduleRecord, period_ms: u64, now: u64) {
    let run = admit(state, s, period_ms);
    let firing = Firing {
        name: s.name.clone(),
        armed_ms: s.armed_ms,
        period_ms,
        run: run.clone(),
        now_ms: now,
    };
    match state.store.fire(firing).await {
        Ok(Fired::Submitted) => {
            count(&s.name, "submitted");
            if let Ok(rec) = &run {
                on_submitted(state, rec);
            }
        }
        Ok(Fired::Refused(why)) => {
            count(&s.name, "refused");
            log::warn!("schedule {}: nothing submitted for this period: {why}", s.name);
        }
        Ok(Fired::AlreadyFired | Fired::Gone) => {}
        // The period stays due: the next tick tries again.
        Err(e) => log::error!("schedule {}: cannot fire: {e}", s.name),
    }
}

/// The run for one period, or why there is none, as a sentence with an
/// action.
fn admit(state: &State, s: &ScheduleRecord, period_ms: u64) -> Result<RunRecord, String> {
    let sentence = |e: ApiError| format!("{} {}", e.message(), e.action_hint());
    let stamp = Stamp {
        id: state.store.new_run_id(),
        session_id: s.session_id(),
        random_seed: rand::random(),
    };
    let Admitted { mut record, .. } = admission::admit(
        &s.request,
        &state.admission_limits(),
        &state.targets,
        &state.store.control_profile(),
        stamp,
    )
    .map_err(|r| sentence(r.into()))?;
    state.room_for_a_run().map_err(sentence)?;
    record.schedule = Some(FiredBy {
        name: s.name.clone(),
        period_ms,
    });
    Ok(record)
}

fn count(name: &str, outcome: &'static str) {
    metrics::counter!("synqc_schedule_fires_total", "schedule" => name.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Sets a schedule's gauges; a schedule seen for the first time also gets
/// its counters at zero, so a rate over them starts from its creation.
fn publish(s: &ScheduleRecord, now: u64, known: bool) {
    let name = s.name.clone();
    if !known {
        for outcome in ["submitted", "refused"] {
            metrics::counter!("synqc_schedule_fires_total", "schedule" => name.clone(), "outcome" => outcome)
                .increment(0);
        }
    }
    metrics::gauge!("synqc_schedule_enabled", "schedule" => name.clone()).set(if s.enabled {
        1.0
    } else {
        0.0
    });
    if let Some(p) = s.timing.period_seconds(now) {
        metrics::gauge!("synqc_schedule_period_seconds", "schedule" => name.clone()).set(p);
    }
    metrics::gauge!("synqc_schedule_last_success_timestamp_seconds", "schedule" => name)
        .set(s.success_or_armed_ms() as f64 / 1000.0);
}

/// A run of schedule `name` succeeded: its last success moves on.
pub(super) fn succeeded(state: &State, name: &str, rec: &RunRecord) {
    let at = rec.finished_at.map_or_else(now_ms, |t| (t * 1000.0) as u64);
    if let Err(e) = state.store.schedule_succeeded(name, at) {
        log::error!(
            "schedule {name}: cannot record the success of run {}: {e}",
            rec.id
        );
    }
}
