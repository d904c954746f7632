//! `synqc bench sim`: runs every preset in-process at the default budget
//! and reports throughput, simulated circuits per second, the bootstrap's
//! share and CPU time per run. CPU time is this thread's scheduler time
//! (/proc/thread-self/schedstat); where that is unavailable the wall clock
//! stands in and the table says so.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::estimators::bootstrap_time;
use super::{run, LoopProbe, NoiseProfile, Plant, Preset, SimError, SimRequest};

/// Default shot budget (docs/api.md), the budget every preset is benched at.
pub const BENCH_SHOTS: u64 = 2048;

/// This thread's CPU time, if the kernel tells us.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// A stand-in for the appliance's queue-execute-store loop: one job through
/// an in-memory queue into an in-memory store.
#[derive(Default)]
pub struct InMemoryLoop {
    queue: VecDeque<u64>,
    store: Vec<u64>,
}

impl LoopProbe for InMemoryLoop {
    fn round_trip_us(&mut self) -> Result<f64, SimError> {
        let t = Instant::now();
        self.queue.push_back(self.store.len() as u64);
        let job = self
            .queue
            .pop_front()
            .ok_or_else(|| SimError::Loop("queue lost the job".into()))?;
        self.store.push(job);
        Ok(t.elapsed().as_secs_f64() * 1e6)
    }
}

fn plant(target: &str) -> Plant {
    Plant {
        target: target.to_string(),
        kind: if target == "sim_local" {
            "sim"
        } else {
            "superconducting"
        }
        .to_string(),
        noise: NoiseProfile::builtin(target).expect("bench uses builtin targets"),
    }
}

/// Run every preset repeatedly (at least 5 runs and about 0.3 s each) and
/// return the table.
pub fn bench_report() -> String {
    let mut out = String::new();
    let cpu_ok = thread_cpu().is_some();
    let _ = writeln!(
        out,
        "synqc simulator bench ({} shots per run, engine {})",
        BENCH_SHOTS,
        super::ENGINE_VERSION
    );
    let _ = writeln!(
        out,
        "{:<18} {:>6} {:>10} {:>12} {:>14} {:>12}",
        "preset", "runs", "runs/s", "circuits/s", "bootstrap us", "cpu ms/run"
    );
    for preset in Preset::ALL {
        let req = SimRequest {
            preset,
            plant: plant("sim_local"),
            compare_with: Some(plant("ibm_quantum")),
            shots: BENCH_SHOTS,
            seed: 42,
            controls: Default::default(),
            marked: None,
            program: None,
        };
        let mut probe = InMemoryLoop::default();
        let (wall0, cpu0, boot0) = (Instant::now(), thread_cpu(), bootstrap_time());
        let mut runs = 0u64;
        let mut failure = None;
        while runs < 5 || (wall0.elapsed() < Duration::from_millis(300) && runs < 100_000) {
            let p: Option<&mut dyn LoopProbe> = if preset == Preset::Latency {
                Some(&mut probe)
            } else {
                None
            };
            if let Err(e) = run(&req, p, &|| false) {
                failure = Some(e);
                break;
            }
            runs += 1;
        }
        let wall = wall0.elapsed().as_secs_f64();
        let cpu = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => wall,
        };
        let boot = (bootstrap_time() - boot0).as_secs_f64();
        if let Some(e) = failure {
            let _ = writeln!(out, "{:<18} failed: {e:?}", preset.as_str());
            continue;
        }
        let r = runs as f64;
        let _ = writeln!(
            out,
            "{:<18} {:>6} {:>10.0} {:>12.0} {:>14.1} {:>12.3}",
            preset.as_str(),
            runs,
            r / wall,
            r * preset.circuits(BENCH_SHOTS) as f64 / wall,
            boot / r * 1e6,
            cpu / r * 1e3
        );
    }
    let _ = writeln!(
        out,
        "latency uses an in-memory queue/store stand-in as its loop probe (not the real store)."
    );
    let _ = writeln!(
        out,
        "backend_compare: sim_local vs ibm_quantum; all other presets on sim_local."
    );
    if !cpu_ok {
        let _ = writeln!(
            out,
            "thread CPU time unavailable: cpu ms/run shows wall-clock time."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_loop_measures_something_finite() {
        let mut l = InMemoryLoop::default();
        let v = l.round_trip_us().expect("in-memory loop cannot fail");
        assert!(v.is_finite() && v >= 0.0);
    }
}
