//! Schedules: a run request submitted once per period (docs/operations.md,
//! "Schedules"). This module is the pure part: the record the store keeps,
//! the periods of a timing (a fixed interval or a cron expression, in
//! UTC), which period is due at a given time under the catch-up policy,
//! and the parsing of the POST and PATCH bodies. No I/O and no clock but
//! the times handed in; the scheduler loop (executor/scheduler.rs) and the
//! store's fire command act on what it decides.
//!
//! A period is named by its start time in milliseconds. Periods start
//! after the schedule was armed (created, or its timing changed, or
//! re-enabled): an interval's at armed + k·interval for k ≥ 1, a cron
//! expression's at each of its times after the arming.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::run::RunId;
use crate::validation::FieldError;

/// Longest schedule name; names are path segments and metric labels.
pub const MAX_NAME: usize = 64;
/// Longest interval: a year.
pub const MAX_EVERY_SECONDS: u64 = 366 * 24 * 3600;

/// When a schedule's periods start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    EverySeconds(u64),
    /// A standard five-field cron expression, evaluated in UTC.
    Cron(String),
}

/// What happens to the periods that started while synqc was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// One run for all of them (the latest), at start-up.
    Once,
    /// None: the next run is at the next period's start.
    Skip,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Once => "once",
            CatchUp::Skip => "skip",
        }
    }
}

/// Everything stored about one schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub name: String,
    /// The run request, as given (validated by admission when stored).
    pub request: Value,
    pub timing: Timing,
    pub enabled: bool,
    pub catch_up: CatchUp,
    pub created_ms: u64,
    /// When its periods were last (re)started: creation, a change of its
    /// timing, or re-enabling it.
    pub armed_ms: u64,
    /// The start of the last period handled (fired, or refused).
    pub last_period_ms: Option<u64>,
    /// When that period was handled.
    pub last_fired_ms: Option<u64>,
    /// The run the last successful firing submitted.
    pub last_run_id: Option<RunId>,
    /// Why the last firing submitted nothing; cleared by the next that does.
    pub last_error: Option<String>,
    /// When a run of this schedule last succeeded.
    pub last_success_ms: Option<u64>,
    /// Firings that submitted a run, and firings refused.
    pub submitted: u64,
    pub refused: u64,
}

/// The shorthands a cron expression may be instead of its five fields.
const CRON_ALIASES: [&str; 6] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"];

/// Each field of a cron expression: its name and its values.
const CRON_FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

/// Largest step of `*/step`.
const MAX_CRON_STEP: u32 = 999;

/// A parsed cron expression, or the sentence saying why it is not one.
///
/// The accepted form is exactly the one assets/openapi.json documents
/// (its `cron` pattern): an alias, or five fields separated by one space,
/// each a comma list of `*`, `*/step`, a value or a range of values, in
/// numbers. A range written backwards wraps (`22-2` in hours is 22, 23,
/// 0, 1, 2), where croner would refuse it.
pub fn parse_cron(pattern: &str) -> Result<croner::Cron, String> {
    let example = "use five fields separated by one space: minute hour day-of-month month \
                   day-of-week (numbers, '*', '*/step', 'a-b' and comma lists), e.g. '0 * * * *', or \
                   one of @hourly, @daily, @weekly, @monthly, @yearly";
    let normal = cron_normalized(pattern).map_err(|why| format!("'{}' {why}; {example}", short(pattern)))?;
    croner::Cron::from_str(&normal)
        .map_err(|e| format!("'{}' is not a cron expression ({e}); {example}", short(pattern)))
}

fn cron_normalized(pattern: &str) -> Result<String, String> {
    if CRON_ALIASES.contains(&pattern) {
        return Ok(pattern.to_string());
    }
    let fields: Vec<&str> = pattern.split(' ').collect();
    if fields.len() != 5 {
        return Err(format!("has {} fields", fields.len()));
    }
    let mut out = Vec::with_capacity(5);
    for (field, (what, lo, hi)) in fields.iter().zip(CRON_FIELDS) {
        let items = field
            .split(',')
            .map(|item| {
                cron_item(item, lo, hi)
                    .ok_or_else(|| format!("has '{}' as its {what}, which takes {lo} to {hi}", short(item)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(items.join(","));
    }
    Ok(out.join(" "))
}

/// A number as the pattern writes one: digits, no leading zero.
fn cron_number(s: &str, lo: u32, hi: u32) -> Option<u32> {
    let plain =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s.len() == 1 || !s.starts_with('0'));
    plain
        .then(|| s.parse().ok())
        .flatten()
        .filter(|n| (lo..=hi).contains(n))
}

fn cron_item(item: &str, lo: u32, hi: u32) -> Option<String> {
    if item == "*" {
        return Some(item.to_string());
    }
    if let Some(step) = item.strip_prefix("*/") {
        return cron_number(step, 1, MAX_CRON_STEP).map(|_| item.to_string());
    }
    if let Some((a, b)) = item.split_once('-') {
        let (a, b) = (cron_number(a, lo, hi)?, cron_number(b, lo, hi)?);
        return Some(if a <= b {
            item.to_string()
        } else {
            format!("{a}-{hi},{lo}-{b}")
        });
    }
    cron_number(item, lo, hi).map(|_| item.to_string())
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn utc(ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

fn ms_of(t: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    u64::try_from(t.timestamp_millis()).ok()
}

impl Timing {
    /// The start of the latest period that began after `armed_ms` and no
    /// later than `now_ms`.
    pub fn latest(&self, armed_ms: u64, now_ms: u64) -> Option<u64> {
        match self {
            Timing::EverySeconds(s) => {
                let step = s.saturating_mul(1000).max(1);
                let k = now_ms.checked_sub(armed_ms)? / step;
                (k >= 1).then(|| armed_ms + k * step)
            }
            Timing::Cron(p) => {
                let cron = parse_cron(p).ok()?;
                let at = cron.find_previous_occurrence(&utc(now_ms)?, true).ok()?;
                ms_of(at).filter(|t| *t > armed_ms)
            }
        }
    }

    /// The start of the first period after `after_ms` (and after `armed_ms`).
    pub fn next(&self, armed_ms: u64, after_ms: u64) -> Option<u64> {
        let after = after_ms.max(armed_ms);
        match self {
            Timing::EverySeconds(s) => {
                let step = s.saturating_mul(1000).max(1);
                Some(armed_ms + ((after - armed_ms) / step + 1) * step)
            }
            Timing::Cron(p) => {
                let cron = parse_cron(p).ok()?;
                ms_of(cron.find_next_occurrence(&utc(after)?, false).ok()?)
            }
        }
    }

    /// The length of a period: the interval, or for a cron expression the
    /// gap between its next two times after `now_ms`.
    pub fn period_seconds(&self, now_ms: u64) -> Option<f64> {
        match self {
            Timing::EverySeconds(s) => Some(*s as f64),
            Timing::Cron(_) => {
                let a = self.next(0, now_ms)?;
                let b = self.next(0, a)?;
                Some((b - a) as f64 / 1000.0)
            }
        }
    }
}

impl ScheduleRecord {
    /// The period to fire at `now_ms`, if any. `up_since_ms` is when this
    /// process started: a period that began before it was missed while
    /// synqc was down, and fires (once for all missed ones, since only
    /// the latest is ever considered) unless catch_up is skip.
    pub fn due(&self, now_ms: u64, up_since_ms: u64) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        let period = self.timing.latest(self.armed_ms, now_ms)?;
        if self.last_period_ms.is_some_and(|last| period <= last) {
            return None;
        }
        if self.catch_up == CatchUp::Skip && period < up_since_ms {
            return None;
        }
        Some(period)
    }

    /// When it fires next: now when a period is due, else the next
    /// period's start; none while disabled.
    pub fn next_fire(&self, now_ms: u64, up_since_ms: u64) -> Option<u64> {
        if !self.enabled {
            return None;
        }
        if self.due(now_ms, up_since_ms).is_some() {
            return Some(now_ms);
        }
        self.timing.next(self.armed_ms, now_ms)
    }

    /// The budget session its runs are charged to.
    pub fn session_id(&self) -> String {
        session_of(&self.name)
    }

    /// The time the staleness alert counts from: the last success, or
    /// when the schedule was armed if it has not succeeded since.
    pub fn success_or_armed_ms(&self) -> u64 {
        self.last_success_ms.unwrap_or(0).max(self.armed_ms)
    }

    /// Its JSON view (docs/api.md, Schedule).
    pub fn view(&self, now_ms: u64, up_since_ms: u64) -> Value {
        let secs = |ms: Option<u64>| ms.map(|m| m as f64 / 1000.0);
        let (every, cron) = match &self.timing {
            Timing::EverySeconds(s) => (Some(*s), None),
            Timing::Cron(p) => (None, Some(p.clone())),
        };
        json!({
            "name": self.name,
            "request": self.request,
            "every_seconds": every,
            "cron": cron,
            "enabled": self.enabled,
            "catch_up": self.catch_up,
            "created_at": self.created_ms as f64 / 1000.0,
            "period_seconds": self.timing.period_seconds(now_ms),
            "next_fire_at": secs(self.next_fire(now_ms, up_since_ms)),
            "last_period_at": secs(self.last_period_ms),
            "last_fired_at": secs(self.last_fired_ms),
            "last_run_id": self.last_run_id,
            "last_success_at": secs(self.last_success_ms),
            "last_error": self.last_error,
            "fires": {"submitted": self.submitted, "refused": self.refused},
        })
    }
}

/// The budget session of schedule `name`'s runs.
pub fn session_of(name: &str) -> String {
    format!("schedule:{name}")
}

/// The fields of a POST /schedules or PATCH body, each checked; what was
/// not given is None. The run request is checked by admission, which
/// needs the appliance's targets and limits (api/schedules.rs).
#[derive(Debug, Default)]
pub struct Fields {
    pub name: Option<String>,
    pub request: Option<Value>,
    pub timing: Option<Timing>,
    pub enabled: Option<bool>,
    pub catch_up: Option<CatchUp>,
}

const FIELDS: [&str; 6] = ["name", "request", "every_seconds", "cron", "enabled", "catch_up"];

/// Parses a body into [`Fields`], naming every bad field. `creating`
/// requires name, request and one timing.
pub fn parse_fields(body: &Value, creating: bool) -> Result<Fields, Vec<FieldError>> {
    let mut bad = Vec::new();
    let obj = match body.as_object() {
        Some(o) => o,
        None => {
            return Err(vec![FieldError::new(
                "body",
                "must be a JSON object with the fields name, request and every_seconds or cron",
            )])
        }
    };
    for k in obj.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        bad.push(FieldError::new(
            short(k),
            format!("unknown field; a schedule has {}", FIELDS.join(", ")),
        ));
    }
    let mut f = Fields::default();
    match obj.get("name") {
        Some(_) if !creating => bad.push(FieldError::new(
            "name",
            "a schedule cannot be renamed (its name is in the path); create one under the new name \
             and delete this one",
        )),
        None if creating => bad.push(FieldError::new(
            "name",
            "required: the schedule's name, e.g. health-ibm",
        )),
        None => {}
        Some(Value::String(n)) if valid_name(n) => f.name = Some(n.clone()),
        Some(_) => bad.push(FieldError::new(
            "name",
            format!(
                "must be 1 to {MAX_NAME} characters of letters, digits, '.', '_' or '-', starting \
                 with a letter or digit"
            ),
        )),
    }
    match obj.get("request") {
        None if creating => bad.push(FieldError::new(
            "request",
            "required: the run request to submit each period, as for POST /runs",
        )),
        None => {}
        Some(r @ Value::Object(_)) => f.request = Some(r.clone()),
        Some(_) => bad.push(FieldError::new(
            "request",
            "must be a JSON object: the run request, as for POST /runs",
        )),
    }
    let (every, cron) = (obj.get("every_seconds"), obj.get("cron"));
    match (every, cron) {
        (Some(_), Some(_)) => bad.push(FieldError::new(
            "cron",
            "give either every_seconds or cron, not both",
        )),
        (None, None) if creating => bad.push(FieldError::new(
            "every_seconds",
            "required: every_seconds (an interval) or cron (a five-field expression)",
        )),
        (None, None) => {}
        (Some(e), None) => match e.as_u64() {
            Some(s) if (1..=MAX_EVERY_SECONDS).contains(&s) => f.timing = Some(Timing::EverySeconds(s)),
            _ => bad.push(FieldError::new(
                "every_seconds",
                format!("must be an integer from 1 to {MAX_EVERY_SECONDS}"),
            )),
        },
        (None, Some(c)) => match c.as_str().map(|p| (p, parse_cron(p))) {
            Some((p, Ok(_))) => f.timing = Some(Timing::Cron(p.to_string())),
            Some((_, Err(why))) => bad.push(FieldError::new("cron", why)),
            None => bad.push(FieldError::new(
                "cron",
                "must be a string: a five-field cron expression, e.g. '0 * * * *'",
            )),
        },
    }
    match obj.get("enabled") {
        None => {}
        Some(Value::Bool(b)) => f.enabled = Some(*b),
        Some(_) => bad.push(FieldError::new("enabled", "must be true or false")),
    }
    match obj.get("catch_up").map(|v| v.as_str()) {
        None => {}
        Some(Some("once")) => f.catch_up = Some(CatchUp::Once),
        Some(Some("skip")) => f.catch_up = Some(CatchUp::Skip),
        Some(_) => bad.push(FieldError::new("catch_up", "must be 'once' or 'skip'")),
    }
    if bad.is_empty() {
        Ok(f)
    } else {
        Err(bad)
    }
}

/// A name that is one path segment as it is (never `.` or `..`) and a
/// plain metric label value.
pub fn valid_name(n: &str) -> bool {
    n.len() <= MAX_NAME
        && n.starts_with(|c: char| c.is_ascii_alphanumeric())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ScheduleRecord {
    /// A new schedule from the fields of a POST (name, request and timing
    /// present: [`parse_fields`] with `creating`).
    pub fn create(f: Fields, now_ms: u64) -> Option<ScheduleRecord> {
        Some(ScheduleRecord {
            name: f.name?,
            request: f.request?,
            timing: f.timing?,
            enabled: f.enabled.unwrap_or(true),
            catch_up: f.catch_up.unwrap_or(CatchUp::Once),
            created_ms: now_ms,
            armed_ms: now_ms,
            last_period_ms: None,
            last_fired_ms: None,
            last_run_id: None,
            last_error: None,
            last_success_ms: None,
            submitted: 0,
            refused: 0,
        })
    }

    /// Applies a PATCH. A new timing, or re-enabling, re-arms it: its
    /// periods start again from `now_ms`, so the time it was off or on
    /// another timing never counts as missed.
    pub fn patch(&mut self, f: Fields, now_ms: u64) {
        let mut rearm = false;
        if let Some(r) = f.request {
            self.request = r;
        }
        if let Some(t) = f.timing {
            rearm |= t != self.timing;
            self.timing = t;
        }
        if let Some(e) = f.enabled {
            rearm |= e && !self.enabled;
            self.enabled = e;
        }
        if let Some(c) = f.catch_up {
            self.catch_up = c;
        }
        if rearm {
            self.armed_ms = now_ms;
            self.last_period_ms = None;
        }
    }
}

#[cfg(test)]
mod tests;
