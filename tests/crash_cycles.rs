//! Every acknowledgment holds across many kill -9 cycles under mixed load.
//!
//! Each cycle starts the appliance on the same data dir while client
//! threads submit runs (with and without Idempotency-Key, repeating some
//! keys, also across restarts), cancel runs, and read them back while the
//! workers execute; the process is killed with SIGKILL at a moment that
//! differs from cycle to cycle. The clients record every answer they got.
//! After a last restart and the queue's drain, what was acknowledged must
//! be there: every answered run id exists, none is left queued or running,
//! no key stands for two runs, every accepted cancel ended cancelled, the
//! health counts equal a full listing, and the budget session's ledger
//! (seen through the 429's `remaining`) holds exactly the shots of the runs
//! that were not refunded.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Reply, Server, TempDir};
use serde_json::{json, Value};
use synqc::client::Method;

const CYCLES: u64 = 24;
const CLIENT_THREADS: u64 = 3;
/// The one budget session every request pays from, so its ledger can be
/// checked against the runs at the end.
const SESSION: &str = "crash-cycles";
/// Far above what the test submits; also the per-run cap, so the closing
/// probe can ask for all of it in one run.
const SESSION_SHOTS: u64 = 50_000_000;

fn start(data: &std::path::Path) -> Server {
    let limit = SESSION_SHOTS.to_string();
    let flags = [
        "--workers",
        "2",
        "--max-shots-per-session",
        &limit,
        "--max-shots-per-experiment",
        &limit,
    ];
    Server::start_at(data, &flags)
}

/// A cancel the server accepted (200: cancelled at once; 202: the running
/// run is told to stop), with the status its answer reported.
struct AcceptedCancel {
    id: String,
    http: u16,
    answered_status: String,
}

/// What the clients were told, over all cycles.
#[derive(Default)]
struct Record {
    /// Every run id answered 202 (new) or 200 (idempotent repeat).
    acked: HashSet<String>,
    /// Newest acknowledged ids first: what cancels and reads pick from.
    recent: Vec<String>,
    /// Each Idempotency-Key sent, with its body and the ids answered for it.
    keys: BTreeMap<String, (Value, Vec<String>)>,
    cancels: Vec<AcceptedCancel>,
    /// Runs a cancel was sent for that got no answer (the process died):
    /// it may or may not have been applied.
    unanswered_cancels: HashSet<String>,
    submitted: u64,
    repeats: u64,
    refused_cancels: u64,
    reads: u64,
    /// Answers no rule allows (a 5xx, an acknowledged run not found, ...).
    problems: Vec<String>,
}

impl Record {
    fn ack(&mut self, id: &str) {
        if self.acked.insert(id.to_string()) {
            self.recent.insert(0, id.to_string());
            self.recent.truncate(30);
        }
    }
}

/// xorshift64: each thread's choices are fixed by its cycle and number.
struct Rng(u64);

impl Rng {
    fn new(cycle: u64, thread: u64) -> Rng {
        Rng((cycle * 1_000 + thread + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn send(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    smol::block_on(client.send(method, path, body, headers))
}

/// One client thread of one cycle: requests back to back until `stop`.
/// A request the dying process never answered is not an acknowledgment
/// and is not recorded (but for cancels, whose effect is then unknown).
fn client_loop(client: &Client, cycle: u64, thread: u64, record: &Mutex<Record>, stop: &AtomicBool) {
    let mut rng = Rng::new(cycle, thread);
    let lock = || record.lock().expect("record");
    // This thread's last acknowledged run: cancelled right after its
    // submit, it is likely still queued.
    let mut mine: Option<String> = None;
    for n in 0..1_000_000u64 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Distinct seeds for every request body: a run listed twice with
        // one seed would be a duplicate.
        let seed = (cycle << 40) | (thread << 32) | n;
        let body = json!({
            "preset": "hello_quantum_sim",
            "shot_budget": 32 + rng.below(97),
            "seed": seed,
        });
        let pick = rng.below(100);
        let recent = |rng: &mut Rng| {
            let r = lock();
            (!r.recent.is_empty()).then(|| r.recent[rng.below(r.recent.len() as u64) as usize].clone())
        };
        match pick {
            0..=34 => {
                if let Ok(r) = send(client, Method::Post, "/runs", Some(&body), &[]) {
                    let mut rec = lock();
                    match r.status {
                        202 => {
                            let id = r.json()["id"].as_str().unwrap_or_default().to_string();
                            rec.submitted += 1;
                            rec.ack(&id);
                            mine = Some(id);
                        }
                        s => rec.problems.push(format!("POST /runs answered {s}: {}", r.body)),
                    }
                }
            }
            35..=64 => {
                // A new key, or one sent before (maybe in an earlier cycle,
                // maybe never answered) with its original body.
                let repeat = if pick >= 55 {
                    let r = lock();
                    let i = rng.below(r.keys.len().max(1) as u64) as usize;
                    r.keys.iter().nth(i).map(|(k, (b, _))| (k.clone(), b.clone()))
                } else {
                    None
                };
                let (key, body) = repeat.unwrap_or_else(|| {
                    let key = format!("crash-{cycle}-{thread}-{n}");
                    lock().keys.insert(key.clone(), (body.clone(), Vec::new()));
                    (key, body)
                });
                let headers = [("Idempotency-Key", key.as_str())];
                if let Ok(r) = send(client, Method::Post, "/runs", Some(&body), &headers) {
                    let mut rec = lock();
                    match r.status {
                        200 | 202 => {
                            let id = r.json()["id"].as_str().unwrap_or_default().to_string();
                            if r.status == 202 {
                                rec.submitted += 1;
                            } else {
                                rec.repeats += 1;
                            }
                            rec.ack(&id);
                            if let Some((_, ids)) = rec.keys.get_mut(&key) {
                                ids.push(id.clone());
                            }
                            mine = Some(id);
                        }
                        s => rec
                            .problems
                            .push(format!("POST /runs with key {key} answered {s}: {}", r.body)),
                    }
                }
            }
            65..=79 => {
                let own = mine.take().filter(|_| rng.below(2) == 0);
                let Some(id) = own.or_else(|| recent(&mut rng)) else {
                    continue;
                };
                let path = format!("/runs/{id}/cancel");
                match send(client, Method::Post, &path, None, &[]) {
                    // Refused at connect (the process is gone): never sent.
                    Err(e) if e.starts_with("connect ") => {}
                    Err(_) => {
                        lock().unanswered_cancels.insert(id);
                    }
                    Ok(r) => {
                        let mut rec = lock();
                        match r.status {
                            200 | 202 => rec.cancels.push(AcceptedCancel {
                                id,
                                http: r.status,
                                answered_status: r.json()["status"].as_str().unwrap_or_default().to_string(),
                            }),
                            409 => rec.refused_cancels += 1,
                            s => rec.problems.push(format!("POST {path} answered {s}: {}", r.body)),
                        }
                    }
                }
            }
            _ => {
                let Some(id) = recent(&mut rng) else { continue };
                let path = format!("/runs/{id}");
                if let Ok(r) = send(client, Method::Get, &path, None, &[]) {
                    let mut rec = lock();
                    rec.reads += 1;
                    if r.status != 200 || r.json()["id"] != id.as_str() {
                        rec.problems.push(format!(
                            "GET {path} of an acknowledged run answered {}: {}",
                            r.status, r.body
                        ));
                    }
                }
            }
        }
    }
}

/// Every run, through GET /runs pages, by id.
fn list_all(s: &Server) -> (HashMap<String, Value>, Vec<String>) {
    let mut runs = HashMap::new();
    let mut problems = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let path = match &cursor {
            Some(c) => format!("/runs?limit=500&cursor={c}"),
            None => "/runs?limit=500".to_string(),
        };
        let page = s.get(&path);
        assert_eq!(page.status, 200, "GET {path}: {}", page.body);
        let page = page.json();
        for run in page["runs"].as_array().expect("runs") {
            let id = run["id"].as_str().expect("id").to_string();
            if runs.insert(id.clone(), run.clone()).is_some() {
                problems.push(format!("GET /runs lists {id} twice"));
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (runs, problems),
        }
    }
    panic!("GET /runs did not end after 1,000 pages");
}

#[test]
fn acknowledgments_hold_across_kill_9_cycles_under_load() {
    let began = Instant::now();
    let dir = TempDir::new("cycles");
    let data = dir.path().join("data");
    let record = Arc::new(Mutex::new(Record::default()));

    for cycle in 0..CYCLES {
        let s = start(&data);
        let mut client = s.client.clone();
        client.session = Some(SESSION.to_string());
        client.timeout = Duration::from_secs(10);
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..CLIENT_THREADS)
            .map(|thread| {
                let (client, record, stop) = (client.clone(), record.clone(), stop.clone());
                std::thread::spawn(move || client_loop(&client, cycle, thread, &record, &stop))
            })
            .collect();
        // A different moment of the load and of the workers each cycle.
        std::thread::sleep(Duration::from_millis(40 + (cycle * 71) % 360));
        s.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
    }

    let s = start(&data);
    let rec = record.lock().expect("record");
    let mut problems = rec.problems.clone();

    // The queue drains: recovered runs execute again, none stays behind.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut queue = s.health()["queue"].clone();
    while queue["queued"] != 0 || queue["running"] != 0 {
        assert!(Instant::now() < deadline, "the queue did not drain: {queue}");
        std::thread::sleep(Duration::from_millis(100));
        queue = s.health()["queue"].clone();
    }
    let (runs, listing_problems) = list_all(&s);
    problems.extend(listing_problems);
    let status = |id: &str| runs.get(id).and_then(|r| r["status"].as_str()).unwrap_or("");

    for id in &rec.acked {
        if !runs.contains_key(id) {
            problems.push(format!("acknowledged run {id} is not listed"));
        }
        let r = s.get(&format!("/runs/{id}"));
        if r.status != 200 {
            problems.push(format!("acknowledged run {id}: GET answered {}", r.status));
        }
    }
    for (id, run) in &runs {
        if matches!(status(id), "queued" | "running") {
            problems.push(format!("run {id} still {} after the drain", status(id)));
        }
        // Our runs only: every one carries one of the seeds we sent.
        if run["seed"].as_u64().is_none() || run["preset"] != "hello_quantum_sim" {
            problems.push(format!("unexpected run listed: {run}"));
        }
    }

    // No duplicates: one run per request body (each had its own seed), so
    // one per key; and every answer for a key named the same run.
    let mut by_seed: HashMap<u64, Vec<&str>> = HashMap::new();
    for (id, run) in &runs {
        by_seed
            .entry(run["seed"].as_u64().unwrap_or(0))
            .or_default()
            .push(id);
    }
    for (seed, ids) in by_seed.iter().filter(|(_, ids)| ids.len() > 1) {
        problems.push(format!("seed {seed} has {} runs: {ids:?}", ids.len()));
    }
    let mut answered_keys = 0;
    for (key, (_, ids)) in &rec.keys {
        answered_keys += usize::from(!ids.is_empty());
        if ids.iter().any(|id| id != &ids[0]) {
            problems.push(format!("key {key} was answered with several runs: {ids:?}"));
        }
    }

    // Accepted cancels end cancelled, unless the answer already reported
    // the run finished.
    for c in &rec.cancels {
        let answered_final = matches!(c.answered_status.as_str(), "succeeded" | "failed" | "cancelled");
        if !answered_final && status(&c.id) != "cancelled" {
            let run = &runs[&c.id];
            problems.push(format!(
                "cancel of {} answered {} (status {}) but the run ended {} (attempts {}, started_at {})",
                c.id, c.http, c.answered_status, run["status"], run["attempts"], run["started_at"]
            ));
        }
    }

    // /health counts the same runs as the listing.
    let health = s.health()["queue"].clone();
    let mut counted: BTreeMap<&str, u64> = BTreeMap::new();
    for id in runs.keys() {
        *counted.entry(status(id)).or_default() += 1;
    }
    for st in ["queued", "running", "succeeded", "failed", "cancelled"] {
        let listed = counted.get(st).copied().unwrap_or(0);
        if health[st] != listed {
            problems.push(format!(
                "/health queue.{st} is {} but GET /runs lists {listed}",
                health[st]
            ));
        }
    }
    if health["total"] != runs.len() {
        problems.push(format!(
            "/health queue.total is {} but GET /runs lists {}",
            health["total"],
            runs.len()
        ));
    }

    // The budget ledger: shots stay reserved for runs that sampled
    // (succeeded, or stopped while executing); a run cancelled before it
    // sampled (queued, or waiting in a worker's batch) or failed before
    // sampling was refunded. A cancelled run says which in
    // error_detail.shots_refunded; for one that does not, it was queued at
    // its cancel if it never started or a cancel got 200, executing if
    // every cancel sent for it was answered and none with 200. A cancel the
    // crash left unanswered makes that run's shots uncertain: they bound
    // the ledger from above.
    let accepted_at_once: HashSet<&str> = rec
        .cancels
        .iter()
        .filter(|c| c.http == 200)
        .map(|c| c.id.as_str())
        .collect();
    let (mut charged, mut uncertain) = (0u64, 0u64);
    for (id, run) in &runs {
        let shots = run["shot_budget"].as_u64().unwrap_or(0);
        match status(id) {
            "succeeded" => charged += shots,
            "failed" if run["error_code"] == "TIMEOUT" => charged += shots,
            "cancelled" if run["error_detail"]["shots_refunded"] == true => {}
            "cancelled" if run["error_detail"]["shots_refunded"] == false => charged += shots,
            "cancelled" if run["started_at"].is_null() || accepted_at_once.contains(id.as_str()) => {}
            "cancelled" if rec.unanswered_cancels.contains(id) => uncertain += shots,
            "cancelled" => charged += shots,
            _ => {}
        }
    }
    let probe = s.send(
        "POST",
        "/runs",
        Some(&json!({"preset": "hello_quantum_sim", "shot_budget": SESSION_SHOTS})),
        &[("X-Session-Id", SESSION)],
    );
    let detail = &probe.json()["detail"]["error_detail"];
    match (probe.status, detail["remaining"].as_u64()) {
        (429, Some(remaining)) => {
            let used = SESSION_SHOTS - remaining;
            if used < charged || used > charged + uncertain {
                problems.push(format!(
                    "budget session {SESSION} holds {used} shots; its runs account for {charged} \
                     (+ up to {uncertain} of runs whose cancel went unanswered)"
                ));
            }
        }
        _ => problems.push(format!(
            "a request for the whole session budget answered {}: {}",
            probe.status, probe.body
        )),
    }

    println!(
        "{CYCLES} kill -9 cycles in {:.1} s: {} runs acknowledged ({} new, {} idempotent repeats), \
         {} keys answered, {} cancels accepted ({} at once, {} refused as finished, {} unanswered), {} reads; \
         {} runs listed {counted:?}; ledger {charged} shots (+{uncertain} uncertain)",
        began.elapsed().as_secs_f64(),
        rec.acked.len(),
        rec.submitted,
        rec.repeats,
        answered_keys,
        rec.cancels.len(),
        accepted_at_once.len(),
        rec.refused_cancels,
        rec.unanswered_cancels.len(),
        rec.reads,
        runs.len(),
    );
    assert!(
        rec.submitted > CYCLES && !rec.cancels.is_empty() && rec.repeats > 0,
        "the load did not exercise submits, repeats and cancels"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
