//! `synqc loadtest`: submits N runs at concurrency C against a running
//! appliance, polls them to the end, reads /health and /metrics before and
//! after, and prints a summary. With --strict (the default) it fails when
//! runs stay unfinished, the queue does not drain, the store is down or
//! the metrics are unreachable, so it doubles as a smoke test of a site.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tide::http::Method;

use super::Client;

struct Options {
    runs: usize,
    concurrency: usize,
    preset: String,
    timeout: Duration,
    strict: bool,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut client = None;
    let mut o = Options {
        runs: 200,
        concurrency: 16,
        preset: "hello_quantum_sim".into(),
        timeout: Duration::from_secs(120),
        strict: true,
    };
    let mut url = "http://127.0.0.1:8001".to_string();
    let mut key = std::env::var("SYNQC_API_KEY").ok();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--url" => url = value()?,
            "--api-key" => key = Some(value()?),
            "--runs" => o.runs = value()?.parse().map_err(|_| "--runs must be a number")?,
            "--concurrency" => {
                o.concurrency = value()?
                    .parse::<usize>()
                    .map_err(|_| "--concurrency must be a number")?
                    .max(1)
            }
            "--preset" => o.preset = value()?,
            "--timeout-seconds" => {
                o.timeout = Duration::from_secs(
                    value()?
                        .parse()
                        .map_err(|_| "--timeout-seconds must be a number")?,
                )
            }
            "--strict" => o.strict = true,
            "--no-strict" => o.strict = false,
            other => return Err(format!("unknown loadtest option {other}")),
        }
    }
    let mut c = Client::new(&url)?;
    c.api_key = key;
    client.get_or_insert(c);
    let client = client.ok_or("no client")?;
    smol::block_on(drive(&client, &o))
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
    let before = client.send(Method::Get, "/health", None, &[]).await?;
    let metrics_before = client.send(Method::Get, "/metrics", None, &[]).await;
    println!(
        "before: health {} ({}), store ok={}",
        before.status,
        queue_counts(&before.json()),
        before.json()["store"]["ok"]
    );

    let started = Instant::now();
    let next = Mutex::new(0usize);
    let ids = Mutex::new(Vec::with_capacity(o.runs));
    let latencies = Mutex::new(Vec::with_capacity(o.runs));
    let refusals = Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let body = json!({ "preset": o.preset });
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
            match reply {
                Ok(r) if r.status == 202 => {
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(elapsed);
                    if let Some(id) = r.json()["id"].as_str() {
                        ids.lock().unwrap_or_else(|p| p.into_inner()).push(id.to_string());
                    }
                }
                Ok(r) => {
                    *refusals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(r.status)
                        .or_default() += 1
                }
                Err(_) => {
                    *refusals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(0)
                        .or_default() += 1
                }
            }
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
    let mut lat = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    lat.sort_by(f64::total_cmp);
    println!(
        "submitted {} runs in {:.2} s: {:.0} submits/s, latency p50 {:.2} ms p99 {:.2} ms; refused {:?}",
        ids.len(),
        submit_s,
        ids.len() as f64 / submit_s.max(1e-9),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        refusals.lock().unwrap_or_else(|p| p.into_inner())
    );

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
    println!(
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
    println!(
        "after: health {} ({}), store ok={}",
        after.status,
        queue_counts(&h),
        h["store"]["ok"]
    );
    let metrics_ok = |m: &Result<super::Reply, String>| {
        m.as_ref()
            .is_ok_and(|r| r.status == 200 && r.body.contains("synqc_queue_depth"))
    };
    println!(
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
    if ids.len() < o.runs {
        problems.push(format!("{} of {} submits refused", o.runs - ids.len(), o.runs));
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
        println!("loadtest: ok");
        Ok(())
    } else if o.strict {
        Err(format!("loadtest failed: {}", problems.join("; ")))
    } else {
        println!("loadtest problems (not strict): {}", problems.join("; "));
        Ok(())
    }
}
