//! Running the appliance: executor threads, the accept loops with their
//! connection cap, the HTTP/1.1 connection layer (http1.rs), the optional
//! metrics listener, and a clean shutdown on SIGTERM/SIGINT.

mod connections;
mod http1;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use smol::net::TcpListener;
use smol::{Executor, Timer};

use crate::config::Config;
use crate::{StartError, State};

/// Binds both listeners, starts everything, marks the server ready, and
/// blocks until a signal has drained it. Returns once it is safe to exit 0.
pub fn serve(config: Config) -> Result<(), StartError> {
    let started = Instant::now();
    let api_addr = config.listen;
    let metrics_addr = config.metrics_listen;
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| StartError::Runtime(format!("cannot install signal handlers: {e}")))?;
    // Listeners first: a busy port must not leave a new data dir behind.
    let bind =
        |addr: SocketAddr| smol::block_on(TcpListener::bind(addr)).map_err(|e| StartError::Bind(addr, e));
    let api = bind(api_addr)?;
    let metrics = metrics_addr.map(bind).transpose()?;
    let state = State::open(config)?;
    let cap = fd_cap(&state.config);
    let limits = Arc::new(http1::Limits {
        max_body: state.config.max_request_bytes,
        header_timeout: state.config.header_timeout_seconds,
        idle_timeout: state.config.idle_timeout_seconds,
    });
    // One registry for both listeners: they share the fd limit.
    let connections = connections::Connections::new(cap);

    let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
    // HTTP and the worker tasks are light (simulations run on the blocking
    // pool), so one executor thread per core is plenty.
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    let mut executors = Vec::with_capacity(threads);
    for i in 0..threads {
        let ex = ex.clone();
        let stop = stop_rx.clone();
        executors.push(
            std::thread::Builder::new()
                .name(format!("synqc-exec-{i}"))
                .spawn(move || smol::block_on(ex.run(stop.recv())))
                .map_err(|e| StartError::Runtime(format!("cannot start executor threads: {e}")))?,
        );
    }
    // The accept loops hold the executor weakly, so that no task keeps it
    // alive: dropping it at the stop drops every task and, with them,
    // every handle to the store (see `close`).
    let serving = Serving {
        ex: Arc::downgrade(&ex),
        connections: connections.clone(),
        limits: limits.clone(),
    };
    ex.spawn(accept_loop(api, crate::api::app(state.clone()), serving.clone()))
        .detach();
    if let Some(m) = metrics {
        ex.spawn(accept_loop(m, crate::api::metrics_app(state.clone()), serving))
            .detach();
        log::info!(
            "metrics listener on http://{}",
            metrics_addr.map(|a| a.to_string()).unwrap_or_default()
        );
    }
    state.spawn_workers(&ex);
    if state.config.workers == 0 {
        log::warn!("workers = 0: runs are accepted and queued, none is executed");
    }
    state.lifecycle.set_ready();
    log::info!(
        "synqc {} ready on http://{api_addr} in {} ms (data {}, {} workers, {} runs stored, {} connections at most)",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis(),
        state.config.data_dir.display(),
        state.config.workers,
        state.store.counts.total(),
        connections.cap(),
    );

    let first = signals.forever().next();
    log::info!(
        "signal {first:?}: draining (grace {} s)",
        state.config.shutdown_grace_seconds.as_secs()
    );
    state.lifecycle.set_draining();
    // A second signal ends the process at once: everything accepted is
    // already durable, and leases left behind are recovered at start-up.
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            log::warn!("second signal: exiting now");
            std::process::exit(0);
        }
    });
    drain(&state);
    stop_tx.close();
    for thread in executors {
        let _ = thread.join();
    }
    drop(ex);
    close(state);
    Ok(())
}

/// Lets running runs finish within the grace period, gives the rest back to
/// the queue, and flushes.
fn drain(state: &State) {
    let grace = state.config.shutdown_grace_seconds;
    let began = Instant::now();
    while state.executor.running_here() > 0 && began.elapsed() < grace {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Runs still waiting on an executor end their wait as unavailable and
    // go back to the queue with the rest.
    state.external.shutdown();
    match crate::executor::give_back_leases(state) {
        Ok(0) => {}
        Ok(n) => log::info!("gave {n} unfinished runs back to the queue"),
        Err(e) => log::error!("could not give leases back ({e}); they will be recovered at start-up"),
    }
    match state.store.flush_now() {
        Ok(()) => log::info!("store flushed"),
        Err(e) => log::error!("final flush failed: {e}"),
    }
}

/// How long `close` waits for work already handed to the blocking pool (a
/// maintenance pass, a simulation past the grace period) to let go of the
/// state.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Closes the store with a fresh sled snapshot once `state` holds the last
/// handle to it, which moves the replay of this run's log from the next
/// start to this stop, and compacts a main store that is mostly free (see
/// store/compact.rs). Skipped (the next start replays the log) when
/// something still holds the store.
fn close(state: State) {
    let store = state.store.clone();
    drop(state);
    let began = Instant::now();
    match crate::store::Store::close_with_snapshot(store, CLOSE_WAIT) {
        Ok(None) => log::info!(
            "store closed with a fresh snapshot in {} ms; exiting",
            began.elapsed().as_millis()
        ),
        Ok(Some(c)) => log::info!(
            "store compacted from {} to {} MiB and closed with a fresh snapshot in {} ms; exiting",
            c.before >> 20,
            c.after >> 20,
            began.elapsed().as_millis()
        ),
        Err(e) => log::warn!("store not closed cleanly ({e}); the next start recovers"),
    }
}

/// The connection cap: max_connections, lowered to what the fd limit
/// leaves room for, so that accept never fails for want of a descriptor.
fn fd_cap(config: &Config) -> usize {
    let wanted = config.max_connections;
    match connections::fd_room() {
        Some(room) if room < wanted => {
            log::warn!(
                "max_connections {wanted} lowered to {room} to fit the open-file limit; raise LimitNOFILE (ulimit -n) for more"
            );
            room as usize
        }
        _ => wanted as usize,
    }
}

/// What every accept loop hands its connections.
#[derive(Clone)]
struct Serving {
    /// Held weakly, so that no task keeps the executor alive: dropping it
    /// at the stop drops every task and, with them, every handle to the
    /// store (see `close`).
    ex: Weak<Executor<'static>>,
    connections: Arc<connections::Connections>,
    limits: Arc<http1::Limits>,
}

async fn accept_loop(listener: TcpListener, app: tide::Server<State>, serving: Serving) {
    let local = listener.local_addr().ok();
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Heads and bodies go out in one write, but a client
                // waiting on a small response must not wait for Nagle.
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY: {e}");
                }
                // Gone only once the server is stopping.
                let Some(ex) = serving.ex.upgrade() else { return };
                let local = stream.local_addr().ok().or(local);
                let (app, limits) = (app.clone(), serving.limits.clone());
                let ticket = serving.connections.admit();
                ex.spawn(async move {
                    let (Some(ticket), Some(local)) = (ticket, local) else {
                        // Every connection is in the middle of a request:
                        // a newcomer is told to come back, not left waiting.
                        let busy = crate::error::ApiError::Backpressure {
                            message: "synqc is serving its maximum number of connections".into(),
                            retry_after_s: 1,
                        };
                        return http1::answer_and_close(stream, busy.into_response()).await;
                    };
                    http1::serve(stream, Some(peer), local, app, &limits, ticket).await;
                })
                .detach();
            }
            Err(e) => {
                // Out of file descriptors despite the cap (another part
                // of the process holds them): back off instead of spinning;
                // the server keeps answering the connections it has.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}
