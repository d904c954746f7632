//! The supervisor of one bound target's executor: a std thread that
//! starts the child, shakes hands, pings it while it is idle and restarts
//! it with backoff when it dies or hangs; and [`ExecutorHandle::run`],
//! which a worker calls on its blocking thread to send one request.
//!
//! Plain threads, pipes and channels rather than the smol runtime: a
//! request is waited for on the worker's blocking thread anyway, child
//! pipes are blocking files, and a runaway executor (one that stops
//! reading its input, or floods its output) then stalls only the threads
//! of its own connection, never the runtime that serves HTTP.
//!
//! Per started child: a writer thread owns its stdin (a write into a full
//! pipe blocks only it), a reader thread owns its stdout and routes each
//! answer to the request waiting for it, and a third thread copies its
//! stderr into the log.
//!
//! One file, though long: the handle's requests and the child's threads
//! meet in one lock (`Inner`: status, connection, waiting requests) whose
//! invariants, which generation of the child an answer belongs to and
//! which request holds a slot, would be spread thin across files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use super::protocol::{
    check_answer, check_hello, hello_line, ping_line, run_line, BackendInfo, ExecFailure, ExecRequest,
    ExecResponse, ProviderFailure,
};
use super::{Outcome, REQUESTS, REQUEST_SECONDS, RESTARTS, UP};
use crate::config::ExecutorConfig;

/// First wait before a restart; it doubles on each failed start.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An executor up this long has recovered: its next restart waits
/// BACKOFF_MIN again.
const HEALTHY: Duration = Duration::from_secs(60);
/// Longest wait for a pong (shorter when pings are more frequent).
const PONG_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting request looks at its cancel flag, and the
/// supervisor at its pings and abandoned requests.
const TICK: Duration = Duration::from_millis(100);
/// Longest line read from an executor's stdout: big enough for the counts
/// of a million-shot request over many circuits, small enough that a
/// runaway executor cannot exhaust memory.
const MAX_LINE: u64 = 64 << 20;
/// stderr lines are logged up to this length.
const MAX_LOG_LINE: u64 = 8 << 10;

/// What a target's executor is doing, for /hardware/targets and /health.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExecutorStatus {
    /// Handshake done and pings answered: runs can be sent.
    pub up: bool,
    /// Why it is not up, as a sentence; None while it is.
    pub reason: Option<String>,
    /// From the last successful handshake.
    pub backend: Option<BackendInfo>,
    pub capabilities: Value,
    /// Starts after the first one.
    pub restarts: u64,
}

/// A target's executor; clones share it. Built by [`ExecutorHandle::start`],
/// ended by [`ExecutorHandle::shutdown`].
#[derive(Clone)]
pub struct ExecutorHandle {
    shared: Arc<Shared>,
}

struct Shared {
    target: String,
    config: ExecutorConfig,
    state: Mutex<Inner>,
    /// Signalled when a request slot frees up or the status changes.
    changed: Condvar,
    events: Sender<Event>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    status: ExecutorStatus,
    /// The child that is up, if any.
    conn: Option<Conn>,
    /// Requests sent to that child and not answered yet, by request id.
    /// Abandoned ones still count: the executor is still working on them.
    pending: HashMap<String, Waiter>,
    /// The last line the current child wrote on stderr, for the reason
    /// given when it dies.
    last_stderr: Option<(u64, String)>,
}

#[derive(Clone)]
struct Conn {
    generation: u64,
    lines: Sender<String>,
    /// What it said in its handshake.
    backend: BackendInfo,
}

enum Waiter {
    Waiting {
        reply: Sender<Reply>,
        deadline: Instant,
    },
    /// Cancelled, or its answer was lost in garbage: the answer, if it
    /// comes, is dropped; past the deadline the child is restarted.
    Abandoned {
        deadline: Instant,
    },
}

enum Reply {
    Answer(Value),
    /// The executor wrote a line no request can be matched with; this is
    /// what it was.
    Garbage(String),
}

/// What the supervisor thread reacts to. Each child is a generation; an
/// event of an older one is stale and ignored.
enum Event {
    Hello(u64, Value),
    Pong(u64, String),
    Closed(u64),
    Kill(u64, String),
    Shutdown,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExecutorHandle {
    /// Starts the supervisor of `target`'s executor; the child is started
    /// at once, and the target is up once it answered the handshake.
    pub fn start(target: &str, config: ExecutorConfig) -> std::io::Result<ExecutorHandle> {
        let (events, inbox) = mpsc::channel();
        let shared = Arc::new(Shared {
            target: target.to_string(),
            config,
            state: Mutex::new(Inner {
                status: ExecutorStatus {
                    up: false,
                    reason: Some(format!("The executor of {target} is starting.")),
                    backend: None,
                    capabilities: json!({}),
                    restarts: 0,
                },
                conn: None,
                pending: HashMap::new(),
                last_stderr: None,
            }),
            changed: Condvar::new(),
            events,
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            supervisor: Mutex::new(None),
        });
        let t = shared.target.as_str();
        metrics::gauge!(UP, "target" => t.to_string()).set(0.0);
        metrics::counter!(RESTARTS, "target" => t.to_string()).absolute(0);
        for outcome in Outcome::ALL {
            metrics::counter!(REQUESTS, "target" => t.to_string(), "outcome" => outcome.as_str()).absolute(0);
        }
        let s = shared.clone();
        let thread = thread::Builder::new()
            .name(format!("executor-{t}"))
            .spawn(move || supervise(&s, &inbox))?;
        *shared.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(ExecutorHandle { shared })
    }

    pub fn target(&self) -> &str {
        &self.shared.target
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.shared.config
    }

    pub fn status(&self) -> ExecutorStatus {
        lock(&self.shared.state).status.clone()
    }

    /// Stops the child and the supervisor; requests still waiting end as
    /// [`ExecFailure::Unavailable`], so their runs go back to the queue.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.shared.events.send(Event::Shutdown);
        let thread = self
            .shared
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                log::error!("executor {}: its supervisor panicked", self.shared.target);
            }
        }
    }

    /// Sends `request` and waits for its answer, at most timeout_seconds
    /// once a request slot (max_in_flight) is free. `cancelled` is looked
    /// at about every 100 ms, while waiting for a slot and for the answer.
    /// A request that times out restarts the child, so a hung executor
    /// cannot hold up later runs.
    pub fn run(
        &self,
        request: &ExecRequest,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<ExecResponse, ExecFailure> {
        let sh = &self.shared;
        let target = sh.target.clone();
        let (outcome, sent, result) = self.attempt(request, cancelled);
        metrics::counter!(REQUESTS, "target" => target.clone(), "outcome" => outcome.as_str()).increment(1);
        if let Some(sent) = sent {
            metrics::histogram!(REQUEST_SECONDS, "target" => target).record(sent.elapsed().as_secs_f64());
        }
        if let Err(ExecFailure::Failed(f)) = &result {
            log::warn!("executor {}: run {}: {}", sh.target, request.run_id, f.message);
        }
        result
    }

    /// One request: its outcome for the metrics, when it was sent (None
    /// if it never was), and its result.
    fn attempt(
        &self,
        request: &ExecRequest,
        cancelled: &dyn Fn() -> bool,
    ) -> (Outcome, Option<Instant>, Result<ExecResponse, ExecFailure>) {
        let sh = &self.shared;
        let who = sh.who();
        let id = format!("q{}", sh.next_id.fetch_add(1, Ordering::Relaxed));
        let line = run_line(&id, request);
        let (reply, answers) = mpsc::channel();
        let mut reply = Some(reply);
        // Wait for a slot; the request's time starts once it has one.
        let (conn, deadline) = loop {
            let mut inner = lock(&sh.state);
            match (inner.conn.clone(), inner.status.up) {
                (Some(conn), true) => {
                    if inner.pending.len() < sh.config.max_in_flight.max(1) {
                        let deadline = Instant::now() + sh.config.timeout();
                        if let Some(reply) = reply.take() {
                            inner
                                .pending
                                .insert(id.clone(), Waiter::Waiting { reply, deadline });
                        }
                        break (conn, deadline);
                    }
                }
                _ => {
                    let reason = sh.down_reason(&inner);
                    return (Outcome::Unavailable, None, Err(ExecFailure::Unavailable(reason)));
                }
            }
            drop(sh.changed.wait_timeout(inner, TICK));
            if cancelled() {
                return (Outcome::Cancelled, None, Err(ExecFailure::Cancelled));
            }
        };
        let sent = Instant::now();
        // A writer that is gone means the child is going: the supervisor
        // ends this request (or its timeout does).
        let _ = conn.lines.send(line);
        loop {
            let wait = deadline.saturating_duration_since(Instant::now()).min(TICK);
            match answers.recv_timeout(wait) {
                Ok(Reply::Answer(answer)) => {
                    let from_executor = answer.get("op").and_then(Value::as_str) == Some("error");
                    return match check_answer(&who, request, answer) {
                        Ok((counts, metadata)) => {
                            let response = ExecResponse {
                                counts,
                                metadata,
                                backend: conn.backend.clone(),
                                duration: sent.elapsed(),
                            };
                            (Outcome::Ok, Some(sent), Ok(response))
                        }
                        Err(f) => {
                            let outcome = if from_executor {
                                Outcome::ExecutorError
                            } else {
                                Outcome::BadAnswer
                            };
                            (outcome, Some(sent), Err(ExecFailure::Failed(f)))
                        }
                    };
                }
                Ok(Reply::Garbage(what)) => {
                    let f = ProviderFailure::provider_error(
                        format!(
                            "{who} wrote {what}, so the answer to this request was lost; check the executor"
                        ),
                        false,
                    );
                    return (Outcome::BadAnswer, Some(sent), Err(ExecFailure::Failed(f)));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if cancelled() {
                        sh.abandon(&id);
                        return (Outcome::Cancelled, Some(sent), Err(ExecFailure::Cancelled));
                    }
                    if Instant::now() >= deadline {
                        lock(&sh.state).pending.remove(&id);
                        let secs = sh.config.timeout_seconds;
                        let why = format!("did not answer a request within {secs} s");
                        let _ = sh.events.send(Event::Kill(conn.generation, why));
                        let f = ProviderFailure::provider_error(
                            format!(
                                "{who} did not answer within {secs} s, so it is being restarted; \
                                 check its log lines, or raise executors.{}.timeout_seconds",
                                sh.target
                            ),
                            false,
                        );
                        return (Outcome::Timeout, Some(sent), Err(ExecFailure::Failed(f)));
                    }
                }
                // The supervisor cleared the requests of a child that died.
                Err(RecvTimeoutError::Disconnected) => {
                    if sh.stopping.load(Ordering::SeqCst) {
                        let reason = "synqc is stopping; the run goes back to the queue.".to_string();
                        return (
                            Outcome::Unavailable,
                            Some(sent),
                            Err(ExecFailure::Unavailable(reason)),
                        );
                    }
                    let inner = lock(&sh.state);
                    let why = inner.status.reason.clone().unwrap_or_default();
                    let f = ProviderFailure::provider_error(
                        format!("{who} went down while it ran the request. {why}"),
                        false,
                    );
                    return (Outcome::Exited, Some(sent), Err(ExecFailure::Failed(f)));
                }
            }
        }
    }
}

impl Shared {
    fn who(&self) -> String {
        format!("The executor of {}", self.target)
    }

    fn down_reason(&self, inner: &Inner) -> String {
        inner
            .status
            .reason
            .clone()
            .unwrap_or_else(|| format!("The executor of {} is not up.", self.target))
    }

    /// A request nobody waits for any more; the executor may still be
    /// working on it, so it keeps its slot until answered or overdue.
    fn abandon(&self, id: &str) {
        let mut inner = lock(&self.state);
        if let Some(w) = inner.pending.get_mut(id) {
            if let Waiter::Waiting { deadline, .. } = *w {
                *w = Waiter::Abandoned { deadline };
            }
        }
    }

    /// Routes one stdout line of child `generation`.
    fn dispatch(&self, generation: u64, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                return self.garbage(
                    generation,
                    format!("a line that is not JSON ({e}): {}", preview(line)),
                )
            }
        };
        let op = value.get("op").and_then(Value::as_str).map(String::from);
        let id = value.get("id").and_then(Value::as_str).map(String::from);
        match (op.as_deref(), id) {
            (Some("hello"), _) => drop(self.events.send(Event::Hello(generation, value))),
            (Some("pong"), id) => drop(self.events.send(Event::Pong(generation, id.unwrap_or_default()))),
            (_, Some(id)) => self.deliver(generation, &id, value),
            (_, None) => self.garbage(
                generation,
                format!("a line with no request id: {}", preview(line)),
            ),
        }
    }

    fn deliver(&self, generation: u64, id: &str, answer: Value) {
        let mut inner = lock(&self.state);
        if inner.conn.as_ref().map(|c| c.generation) != Some(generation) {
            return;
        }
        match inner.pending.remove(id) {
            Some(Waiter::Waiting { reply, .. }) => drop(reply.send(Reply::Answer(answer))),
            Some(Waiter::Abandoned { .. }) => {
                log::info!(
                    "executor {}: the answer to cancelled request {id} came and was dropped",
                    self.target
                )
            }
            None => log::warn!(
                "executor {}: it answered request id '{}', which is not outstanding; the answer was ignored",
                self.target,
                id.escape_default()
            ),
        }
        self.changed.notify_all();
    }

    /// A line that cannot be matched with a request: every request
    /// waiting on this child fails (any of them may have lost its answer)
    /// and keeps its slot until answered or overdue.
    fn garbage(&self, generation: u64, what: String) {
        log::warn!("executor {}: it wrote {what}", self.target);
        let mut inner = lock(&self.state);
        if inner.conn.as_ref().map(|c| c.generation) != Some(generation) {
            return;
        }
        for w in inner.pending.values_mut() {
            if let Waiter::Waiting { reply, deadline } = w {
                let _ = reply.send(Reply::Garbage(what.clone()));
                *w = Waiter::Abandoned { deadline: *deadline };
            }
        }
    }

    fn set_up(&self, conn: Conn, capabilities: Value) {
        log::info!(
            "executor {}: up, backend {} {}, capabilities {capabilities}",
            self.target,
            conn.backend.name,
            conn.backend.version
        );
        let mut inner = lock(&self.state);
        inner.status.up = true;
        inner.status.reason = None;
        inner.status.backend = Some(conn.backend.clone());
        inner.conn = Some(conn);
        inner.status.capabilities = capabilities;
        drop(inner);
        metrics::gauge!(UP, "target" => self.target.clone()).set(1.0);
        self.changed.notify_all();
    }

    /// Marks the executor down for `reason` (a sentence); the requests
    /// waiting on the old child end (their channels close).
    fn set_down(&self, reason: String) {
        let mut inner = lock(&self.state);
        if inner.status.up || inner.status.reason.as_deref() != Some(reason.as_str()) {
            log::warn!("executor {}: down: {reason}", self.target);
        }
        inner.conn = None;
        inner.status.up = false;
        inner.status.reason = Some(reason);
        inner.pending.clear();
        drop(inner);
        metrics::gauge!(UP, "target" => self.target.clone()).set(0.0);
        self.changed.notify_all();
    }
}

/// The supervisor thread: start, serve, restart with backoff, until
/// shutdown.
fn supervise(shared: &Arc<Shared>, inbox: &Receiver<Event>) {
    let mut backoff = BACKOFF_MIN;
    let mut generation = 0;
    while !shared.stopping.load(Ordering::SeqCst) {
        generation += 1;
        let (reason, healthy) = run_child(shared, inbox, generation);
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        if healthy {
            backoff = BACKOFF_MIN;
        }
        shared.set_down(format!(
            "The executor of {} {reason}; synqc restarts it in {:.1} s.",
            shared.target,
            backoff.as_secs_f64()
        ));
        if wait_or_stop(inbox, backoff) {
            break;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
        lock(&shared.state).status.restarts += 1;
        metrics::counter!(RESTARTS, "target" => shared.target.clone()).increment(1);
    }
    shared.set_down("synqc is stopping.".to_string());
}

/// Sleeps `pause` unless shutdown comes first (then true).
fn wait_or_stop(inbox: &Receiver<Event>, pause: Duration) -> bool {
    let until = Instant::now() + pause;
    loop {
        match inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => return true,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return false,
        }
    }
}

/// One child's life: start, handshake, serve. Returns why it ended (a
/// clause following "The executor of T") and whether it had been up long
/// enough to count as recovered.
fn run_child(shared: &Arc<Shared>, inbox: &Receiver<Event>, generation: u64) -> (String, bool) {
    let mut child = match spawn(shared) {
        Ok(child) => child,
        Err(reason) => return (reason, false),
    };
    let (lines, to_write) = mpsc::channel::<String>();
    let started = start_pipes(shared, &mut child, generation, to_write);
    let (reason, up_for) = match started {
        Err(reason) => (reason, Duration::ZERO),
        Ok(()) => {
            let _ = lines.send(hello_line());
            match handshake(shared, inbox, generation) {
                Err(reason) => (reason, Duration::ZERO),
                Ok((backend, capabilities)) => {
                    let up_since = Instant::now();
                    let conn = Conn {
                        generation,
                        lines: lines.clone(),
                        backend,
                    };
                    shared.set_up(conn, capabilities);
                    let reason = serve(shared, inbox, generation, &lines);
                    (reason, up_since.elapsed())
                }
            }
        }
    };
    // The last sender of its input goes with the connection: the writer
    // closes the child's stdin, which lets it exit on its own.
    lock(&shared.state).conn = None;
    drop(lines);
    let ended = stop(&mut child);
    let last_words = match lock(&shared.state).last_stderr.take() {
        Some((g, line)) if g == generation => format!("; its last line on stderr: {line}"),
        _ => String::new(),
    };
    (format!("{reason} ({ended}){last_words}"), up_for >= HEALTHY)
}

fn spawn(shared: &Shared) -> Result<Child, String> {
    let t = &shared.target;
    let Some((program, args)) = shared.config.command.split_first() else {
        return Err(format!("has no command; set executors.{t}.command"));
    };
    // Its own process group: a wrapper script's children go with it when
    // it is killed, and a terminal's Ctrl-C reaches synqc, which then
    // closes the executor's input, not the executor directly.
    Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("cannot start: its program {program} was not found; install it, or fix executors.{t}.command")
            }
            std::io::ErrorKind::PermissionDenied => format!(
                "cannot start: its program {program} is not executable; chmod +x it, or fix executors.{t}.command"
            ),
            _ => format!("cannot start: {program}: {e}; fix executors.{t}.command"),
        })
}

/// The writer, reader and stderr threads of a started child.
fn start_pipes(
    shared: &Arc<Shared>,
    child: &mut Child,
    generation: u64,
    to_write: Receiver<String>,
) -> Result<(), String> {
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("started without its pipes".to_string());
    };
    let t = &shared.target;
    let fail = |e: std::io::Error| format!("could not be served: no thread for its pipes ({e})");
    thread::Builder::new()
        .name(format!("executor-{t}-in"))
        .spawn(move || write_lines(stdin, &to_write))
        .map_err(fail)?;
    let s = shared.clone();
    thread::Builder::new()
        .name(format!("executor-{t}-out"))
        .spawn(move || read_answers(&s, generation, stdout))
        .map_err(fail)?;
    let s = shared.clone();
    thread::Builder::new()
        .name(format!("executor-{t}-err"))
        .spawn(move || log_stderr(&s, generation, stderr))
        .map_err(fail)?;
    Ok(())
}

fn write_lines(mut stdin: impl Write, lines: &Receiver<String>) {
    for line in lines {
        let written = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush());
        if written.is_err() {
            return;
        }
    }
    // Dropping stdin closes it: an executor ends on end of input.
}

fn read_answers(shared: &Shared, generation: u64, stdout: impl Read) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) if !line.ends_with(b"\n") && line.len() as u64 >= MAX_LINE => {
                let why = format!("wrote a line longer than {} MiB on stdout", MAX_LINE >> 20);
                shared.garbage(generation, "a line too long to read".into());
                let _ = shared.events.send(Event::Kill(generation, why));
                break;
            }
            Ok(_) => shared.dispatch(generation, &line),
            Err(e) => {
                log::warn!("executor {}: reading its stdout failed: {e}", shared.target);
                break;
            }
        }
    }
    let _ = shared.events.send(Event::Closed(generation));
}

/// Copies stderr into the log: lines that look like errors or warnings
/// (Python's logging prefixes, tracebacks) at warn, the rest at info.
fn log_stderr(shared: &Shared, generation: u64, stderr: impl Read) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match (&mut reader).take(MAX_LOG_LINE).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(buf.trim_ascii_end()).into_owned();
        if line.trim().is_empty() {
            continue;
        }
        let lower = line.trim_start().to_ascii_lowercase();
        let alarming = ["error", "warn", "critical", "fatal", "traceback", "exception"]
            .iter()
            .any(|w| lower.starts_with(w))
            || lower.contains("error:");
        if alarming {
            log::warn!("executor {}: {line}", shared.target);
        } else {
            log::info!("executor {}: {line}", shared.target);
        }
        lock(&shared.state).last_stderr = Some((generation, line));
    }
}

/// Waits for the hello answer of child `generation`.
fn handshake(
    shared: &Shared,
    inbox: &Receiver<Event>,
    generation: u64,
) -> Result<(BackendInfo, Value), String> {
    let secs = shared.config.timeout_seconds;
    let until = Instant::now() + shared.config.timeout();
    loop {
        match inbox.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(Event::Hello(g, answer)) if g == generation => {
                return check_hello(&answer).map_err(|e| format!("failed the handshake: {e}"));
            }
            Ok(Event::Closed(g)) if g == generation => return Err("exited during the handshake".into()),
            Ok(Event::Kill(g, why)) if g == generation => return Err(why),
            Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => return Err("stopped".into()),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "did not answer the hello within {secs} s (executors.{}.timeout_seconds)",
                    shared.target
                ))
            }
        }
    }
}

/// Watches an up child until it dies, hangs or is told to go; returns why.
/// Pings go out only while no request is outstanding: an executor may run
/// one request at a time and answer nothing else meanwhile, and the
/// request's own timeout already covers a hang then.
fn serve(shared: &Shared, inbox: &Receiver<Event>, generation: u64, lines: &Sender<String>) -> String {
    let every = shared.config.ping_interval();
    let pong_wait = every.min(PONG_WAIT);
    let mut next_ping = Instant::now() + every;
    let mut ping: Option<(String, Instant)> = None;
    let mut pings = 0u64;
    loop {
        match inbox.recv_timeout(TICK) {
            Ok(Event::Pong(g, id)) if g == generation => {
                if ping.as_ref().is_some_and(|(p, _)| *p == id) {
                    ping = None;
                    next_ping = Instant::now() + every;
                } else {
                    log::warn!(
                        "executor {}: a pong for '{}', which was not asked",
                        shared.target,
                        id.escape_default()
                    );
                }
            }
            Ok(Event::Closed(g)) if g == generation => return "exited".into(),
            Ok(Event::Kill(g, why)) if g == generation => return why,
            Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => return "stopped".into(),
            Ok(Event::Hello(g, _)) if g == generation => {
                log::warn!("executor {}: a hello that was not asked; ignored", shared.target);
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if ping
            .as_ref()
            .is_some_and(|(_, sent)| now.duration_since(*sent) >= pong_wait)
        {
            return format!("did not answer a ping within {:.1} s", pong_wait.as_secs_f64());
        }
        let (idle, overdue) = {
            let inner = lock(&shared.state);
            let overdue = inner
                .pending
                .values()
                .any(|w| matches!(w, Waiter::Abandoned { deadline } if now >= *deadline));
            (inner.pending.is_empty(), overdue)
        };
        if overdue {
            return format!(
                "kept working past {} s on a request nobody waits for any more",
                shared.config.timeout_seconds
            );
        }
        if !idle {
            next_ping = now + every;
        } else if ping.is_none() && now >= next_ping {
            pings += 1;
            let id = format!("ping{pings}");
            if lines.send(ping_line(&id)).is_err() {
                return "stopped reading its input".into();
            }
            ping = Some((id, now));
        }
    }
}

/// Ends a child and says how it ended: it gets a moment to exit on its
/// own (its stdin is closed by now), then its process group is killed.
fn stop(child: &mut Child) -> String {
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(status)) => return status.to_string(),
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(_) => break,
        }
    }
    // The child is not reaped yet, so its pid (the group's id) is still
    // its own.
    let group = rustix::process::Pid::from_child(child);
    if rustix::process::kill_process_group(group, rustix::process::Signal::KILL).is_err() {
        let _ = child.kill();
    }
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("not reaped: {e}"),
    }
}

/// The start of an unreadable line, for the log.
fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
    format!(
        "'{}'{}",
        text.escape_default(),
        if line.len() > 200 { "..." } else { "" }
    )
}
