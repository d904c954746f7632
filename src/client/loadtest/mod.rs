//! `synqc loadtest`: submits N runs at concurrency C against a running
//! appliance, polls them to the end, reads /health and /metrics before and
//! after, and prints a summary. With --strict (the default) it fails when
//! a submit is refused, runs stay unfinished, the queue does not drain,
//! the store is down or the metrics are unreachable, so it doubles as a
//! smoke test of a site.
//!
//! The load spends a budget session of its own (a fresh `loadtest-<hex>`
//! unless --session names one), so it never uses up the budget of the
//! operator's other clients, and its shots per run are sized from the
//! limits GET /health reports, so the runs fit that session's budget. A
//! load that cannot fit is refused before anything is submitted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tide::http::Method;

use super::Client;
use crate::sim::Preset;
use sizing::{shots_per_run, Limits};

mod sizing;

/// What to load the appliance with.
#[derive(Clone, Debug)]
pub struct Options {
    pub runs: usize,
    pub concurrency: usize,
    pub preset: String,
    /// Shots per run; None sizes them from the server's limits.
    pub shots: Option<u64>,
    /// The budget session; None makes a fresh one for this load.
    pub session: Option<String>,
    pub timeout: Duration,
    pub strict: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 200,
            concurrency: 16,
            preset: "hello_quantum_sim".into(),
            shots: None,
            session: None,
            timeout: Duration::from_secs(120),
            strict: true,
        }
    }
}

/// Runs the load with `client`'s URL and key, on `o.session` or a fresh
/// session.
pub fn run(client: &Client, o: &Options) -> Result<(), String> {
    let mut client = client.clone();
    client.session = Some(
        o.session
            .clone()
            .unwrap_or_else(|| format!("loadtest-{:08x}", rand::random::<u32>())),
    );
    smol::block_on(drive(&client, o))
}

/// Refused submits by HTTP status (0: no answer) and error code, each
/// with its count and its latest answer.
type Refusals = BTreeMap<(u16, String), (usize, Value)>;

/// One line saying how many submits were refused and why, with what to
/// do about it; None when none was.
fn describe_refusals(refusals: &Refusals, runs: usize) -> Option<String> {
    let total: usize = refusals.values().map(|(n, _)| n).sum();
    if total == 0 {
        return None;
    }
    let kinds: Vec<String> = refusals
        .iter()
        .map(|((status, code), (n, last))| {
            let count = if refusals.len() > 1 {
                format!("{n} x ")
            } else {
                String::new()
            };
            let detail = &last["detail"];
            let why = match (*status, code.as_str()) {
                (0, _) => format!("no answer ({})", last.as_str().unwrap_or("")),
                (429, "BUDGET_EXHAUSTED") => {
                    let d = &detail["error_detail"];
                    format!(
                        "429 BUDGET_EXHAUSTED for session {} ({} shots remaining, resets in {} s); use --shots N or --session NAME",
                        d["session_id"].as_str().unwrap_or("?"),
                        d["remaining"],
                        d["resets_in_s"]
                    )
                }
                (_, "AUTH_REQUIRED") => {
                    format!("{status} AUTH_REQUIRED; use --api-key KEY or SYNQC_API_KEY")
                }
                (_, "") => format!("HTTP {status}"),
                _ => format!(
                    "{status} {code} ({})",
                    detail["error_message"].as_str().unwrap_or("no message")
                ),
            };
            format!("{count}{why}")
        })
        .collect();
    Some(format!("{total} of {runs} submits refused: {}", kinds.join(", ")))
}

fn queue_counts(health: &Value) -> String {
    let q = &health["queue"];
    format!(
        "queued={} running={} succeeded={} failed={} cancelled={}",
        q["queued"], q["running"], q["succeeded"], q["failed"], q["cancelled"]
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn drive(client: &Client, o: &Options) -> Result<(), String> {
    let mut problems = Vec::new();
    let before = client
        .send(Method::Get, "/health", None, &[])
        .await
        .map_err(|e| format!("loadtest: the appliance does not answer: {e}"))?;
    let health = before.json();
    let preset = Preset::parse(&o.preset).ok_or_else(|| {
        let known: Vec<&str> = Preset::ALL.iter().map(|p| p.as_str()).collect();
        format!(
            "loadtest: unknown preset '{}'; use one of {}",
            o.preset,
            known.join(", ")
        )
    })?;
    let shots = shots_per_run(o.runs as u64, o.shots, preset, &Limits::from_health(&health))
        .map_err(|why| format!("loadtest refused to start, nothing was submitted: {why}"))?;
    let metrics_before = client.send(Method::Get, "/metrics", None, &[]).await;
    say!(
        "before: health {} ({}), store ok={}",
        before.status,
        queue_counts(&health),
        health["store"]["ok"]
    );
    say!(
        "loadtest: {} runs of {} at concurrency {}, {} shots each, budget session {}",
        o.runs,
        o.preset,
        o.concurrency,
        shots.map_or("the server's default".to_string(), |s| s.to_string()),
        client.session.as_deref().unwrap_or("(the server's choice)")
    );

    let started = Instant::now();
    let next = Mutex::new(0usize);
    let ids = Mutex::new(Vec::with_capacity(o.runs));
    let latencies = Mutex::new(Vec::with_capacity(o.runs));
    let refusals = Mutex::new(Refusals::new());
    let mut body = json!({ "preset": o.preset });
    if let Some(s) = shots {
        body["shot_budget"] = json!(s);
    }
    let submitter = || async {
        loop {
            {
                let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                if *n >= o.runs {
                    return;
                }
                *n += 1;
            }
            let t = Instant::now();
            let reply = client.send(Method::Post, "/runs", Some(&body), &[]).await;
            let elapsed = t.elapsed().as_secs_f64() * 1000.0;
            let refused = match reply {
                Ok(r) if r.status == 202 => {
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(elapsed);
                    if let Some(id) = r.json()["id"].as_str() {
                        ids.lock().unwrap_or_else(|p| p.into_inner()).push(id.to_string());
                    }
                    continue;
                }
                Ok(r) => {
                    let answer = r.json();
                    let code = answer["detail"]["error_code"].as_str().unwrap_or("").to_string();
                    ((r.status, code), answer)
                }
                Err(e) => ((0, String::new()), Value::String(e)),
            };
            let mut all = refusals.lock().unwrap_or_else(|p| p.into_inner());
            let entry = all.entry(refused.0).or_insert((0, Value::Null));
            entry.0 += 1;
            entry.1 = refused.1;
        }
    };
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..o.concurrency).map(|_| ex.spawn(submitter())).collect();
    ex.run(async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let submit_s = started.elapsed().as_secs_f64();
    let ids = std::mem::take(&mut *ids.lock().unwrap_or_else(|p| p.into_inner()));
    let refusals = std::mem::take(&mut *refusals.lock().unwrap_or_else(|p| p.into_inner()));
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    lat.sort_by(f64::total_cmp);
    say!(
        "submitted {} runs in {:.2} s: {:.0} submits/s, latency p50 {:.2} ms p99 {:.2} ms; refused {}",
        ids.len(),
        submit_s,
        ids.len() as f64 / submit_s.max(1e-9),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        o.runs - ids.len()
    );
    // The refusal is the cause of whatever follows, so it is named first.
    problems.extend(describe_refusals(&refusals, o.runs));

    // Poll every accepted run until it is final or the deadline passes.
    let deadline = Instant::now() + o.timeout;
    let outcomes = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let pending = Mutex::new(ids.clone());
    let poller = || async {
        loop {
            let Some(id) = pending.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                return;
            };
            let status = loop {
                match client.send(Method::Get, &format!("/runs/{id}"), None, &[]).await {
                    Ok(r) if r.status == 200 => {
                        let s = r.json()["status"].as_str().unwrap_or("?").to_string();
                        if s != "queued" && s != "running" {
                            break s;
                        }
                    }
                    Ok(r) => break format!("http_{}", r.status),
                    Err(_) => {}
                }
                if Instant::now() > deadline {
                    break "unfinished".to_string();
                }
                smol::Timer::after(Duration::from_millis(50)).await;
            };
            *outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(status)
                .or_default() += 1;
        }
    };
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..o.concurrency).map(|_| ex.spawn(poller())).collect();
    ex.run(async {
        for t in tasks {
            t.await;
        }
    })
    .await;
    let total_s = started.elapsed().as_secs_f64();
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|p| p.into_inner()));
    let done = outcomes.get("succeeded").copied().unwrap_or(0);
    say!(
        "finished in {total_s:.2} s: {:.0} runs/s end to end; outcomes {outcomes:?}",
        done as f64 / total_s.max(1e-9)
    );

    // The queue should drain once our runs are final (other clients aside).
    let mut after = client.send(Method::Get, "/health", None, &[]).await?;
    while after.json()["queue"]["queued"].as_u64().unwrap_or(0)
        + after.json()["queue"]["running"].as_u64().unwrap_or(0)
        > 0
        && Instant::now() < deadline
    {
        smol::Timer::after(Duration::from_millis(200)).await;
        after = client.send(Method::Get, "/health", None, &[]).await?;
    }
    let metrics_after = client.send(Method::Get, "/metrics", None, &[]).await;
    let h = after.json();
    say!(
        "after: health {} ({}), store ok={}",
        after.status,
        queue_counts(&h),
        h["store"]["ok"]
    );
    let metrics_ok = |m: &Result<super::Reply, String>| {
        m.as_ref()
            .is_ok_and(|r| r.status == 200 && r.body.contains("synqc_queue_depth"))
    };
    say!(
        "metrics reachable: before={} after={}",
        metrics_ok(&metrics_before),
        metrics_ok(&metrics_after)
    );

    if outcomes.get("unfinished").copied().unwrap_or(0) > 0 {
        problems.push(format!(
            "{} runs unfinished after {:?}",
            outcomes["unfinished"], o.timeout
        ));
    }
    if h["queue"]["queued"].as_u64().unwrap_or(1) + h["queue"]["running"].as_u64().unwrap_or(1) > 0 {
        problems.push("the queue did not drain".into());
    }
    if h["store"]["ok"] != json!(true) {
        problems.push("the store is down".into());
    }
    if !metrics_ok(&metrics_before) || !metrics_ok(&metrics_after) {
        problems.push("metrics unreachable".into());
    }
    if problems.is_empty() {
        say!("loadtest: ok");
        Ok(())
    } else if o.strict {
        Err(format!("loadtest failed: {}", problems.join("; ")))
    } else {
        say!("loadtest problems (not strict): {}", problems.join("; "));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_one_line_with_the_cause() {
        let mut r = Refusals::new();
        assert_eq!(describe_refusals(&r, 10), None);
        let exhausted = json!({"detail": {"error_code": "BUDGET_EXHAUSTED", "error_detail": {
            "session_id": "loadtest-1", "remaining": 0, "requested": 2048, "resets_in_s": 3600}}});
        r.insert((429, "BUDGET_EXHAUSTED".into()), (37, exhausted));
        let line = describe_refusals(&r, 500).unwrap();
        assert_eq!(
            line,
            "37 of 500 submits refused: 429 BUDGET_EXHAUSTED for session loadtest-1 \
             (0 shots remaining, resets in 3600 s); use --shots N or --session NAME"
        );
        r.insert((0, String::new()), (2, json!("connect 127.0.0.1:9: refused")));
        let line = describe_refusals(&r, 500).unwrap();
        assert!(
            line.starts_with("39 of 500 submits refused: 2 x no answer (connect"),
            "{line}"
        );
        assert!(line.contains(", 37 x 429 BUDGET_EXHAUSTED"), "{line}");
        assert!(!line.contains('\n'));
    }
}
