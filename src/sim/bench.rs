//! `synqc bench sim`: runs every preset in-process at the default budget
//! and reports throughput, simulated circuits per second, the bootstrap's
//! share and CPU time per run. CPU time is this thread's scheduler time
//! (/proc/thread-self/schedstat); where that is unavailable the wall clock
//! stands in and the table says so.
//!
//! `synqc bench circuits`: the density-matrix engine on seeded random
//! circuits of growing width, circuits/s and peak memory per width, each
//! width in a fresh child process so its peak resident memory (VmHWM) is
//! its own. It can write the circuits as OpenQASM 3 files so Qiskit Aer can
//! be timed on the very same circuits.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::RngExt;

use super::engine::{Model, Op, Register};
use super::estimators::{bootstrap_time, rng_for, SimRng};
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
/// The circuit preset's program in [`bench_report`].
const BENCH_PROGRAM: &str =
    "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n";

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
            // The circuit preset runs the Bell pair hello_quantum_sim runs,
            // so its row shows what parsing costs beside the same physics.
            program: (preset == Preset::Circuit)
                .then(|| crate::sim::circuit::parse(BENCH_PROGRAM, &Default::default()).ok())
                .flatten(),
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

/// The command line that reaches [`circuits_command`] (main.rs dispatches
/// it); the bench re-runs itself under it, one child process per width.
pub const CIRCUITS_COMMAND: [&str; 2] = ["bench", "circuits"];

/// What `synqc bench circuits` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct CircuitBench {
    pub qubits: RangeInclusive<usize>,
    pub depth: usize,
    /// Circuits per width (the same set for every engine compared).
    pub circuits: usize,
    pub seed: u64,
    /// Where to write each circuit as `q<width>_c<index>.qasm`.
    pub qasm_dir: Option<PathBuf>,
    /// Run every width in this process and print only the table rows: the
    /// mode the parent starts its children in.
    pub in_process: bool,
}

impl Default for CircuitBench {
    fn default() -> Self {
        CircuitBench {
            qubits: 2..=10,
            depth: 20,
            circuits: 10,
            seed: 1,
            qasm_dir: None,
            in_process: false,
        }
    }
}

/// The widest register the bench accepts: rho takes 16 * 4^n bytes, 4 GiB at 14.
const BENCH_MAX_QUBITS: usize = 14;

impl CircuitBench {
    /// Parses `--qubits N|MIN-MAX --depth D --circuits K --seed S
    /// --qasm-dir DIR --in-process`; anything else is refused.
    pub fn from_args(args: &[String]) -> Result<CircuitBench, String> {
        let mut b = CircuitBench::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--in-process" {
                b.in_process = true;
                continue;
            }
            let value = it.next().ok_or_else(|| {
                format!("{flag} needs a value; synqc bench circuits --help lists the options")
            })?;
            let whole = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("{flag} must be a whole number, not '{v}'"))
            };
            match flag.as_str() {
                "--qubits" => {
                    let (lo, hi) = value.split_once('-').unwrap_or((value, value));
                    b.qubits = whole(lo)? as usize..=whole(hi)? as usize;
                }
                "--depth" => b.depth = whole(value)? as usize,
                "--circuits" => b.circuits = whole(value)? as usize,
                "--seed" => b.seed = whole(value)?,
                "--qasm-dir" => b.qasm_dir = Some(PathBuf::from(value)),
                _ => {
                    return Err(format!(
                        "unknown option {flag}; synqc bench circuits --help lists the options"
                    ))
                }
            }
        }
        let (lo, hi) = (*b.qubits.start(), *b.qubits.end());
        if lo < 2 || lo > hi || hi > BENCH_MAX_QUBITS {
            return Err(format!(
                "--qubits must be a width or a range MIN-MAX within 2-{BENCH_MAX_QUBITS}; give e.g. --qubits 2-10"
            ));
        }
        if b.depth == 0 || b.circuits == 0 {
            return Err(
                "--depth and --circuits must be at least 1; give e.g. --depth 20 --circuits 10".into(),
            );
        }
        Ok(b)
    }

    /// The circuits of one width: a generator per width, so a width's
    /// circuits do not depend on which other widths are run.
    pub fn circuits_of(&self, n: usize) -> Vec<Vec<Op>> {
        let mut rng = rng_for(self.seed ^ ((n as u64) << 32));
        (0..self.circuits)
            .map(|_| random_circuit(n, self.depth, &mut rng))
            .collect()
    }
}

/// A random circuit of `depth` layers on `n` qubits; a layer is a random
/// physical single-qubit gate on every qubit, then cx on a random pairing
/// (one qubit left out when `n` is odd). All qubits are measured at the end.
pub fn random_circuit(n: usize, depth: usize, rng: &mut SimRng) -> Vec<Op> {
    use std::f64::consts::{FRAC_PI_2, TAU};
    let mut ops = Vec::with_capacity(depth * (n + n / 2));
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..depth {
        for q in 0..n {
            ops.push(match rng.random_range(0..5) {
                0 => Op::H(q),
                1 => Op::X(q),
                // sx: the engine's sx is rx(pi/2).
                2 => Op::Rx(q, FRAC_PI_2),
                3 => Op::Rx(q, rng.random::<f64>() * TAU),
                _ => Op::Ry(q, rng.random::<f64>() * TAU),
            });
        }
        order.shuffle(rng);
        for pair in order.chunks_exact(2) {
            ops.push(Op::Cx(pair[0], pair[1]));
        }
    }
    ops
}

/// One row of the table: how long `circuits` noisy simulations of width
/// `n` took and the process's peak resident memory after them.
#[derive(Clone, Debug)]
pub struct WidthResult {
    pub qubits: usize,
    pub wall: Duration,
    pub cpu: Option<Duration>,
    /// Circuits simulated, repeats of the set included.
    pub circuits: usize,
    /// VmHWM in KiB, if /proc tells.
    pub peak_kib: Option<u64>,
}

impl WidthResult {
    fn row(&self) -> String {
        let k = self.circuits as f64;
        let wall = self.wall.as_secs_f64();
        let cpu = self
            .cpu
            .map_or("n/a".to_string(), |c| format!("{:.3}", c.as_secs_f64() / k * 1e3));
        let peak = self
            .peak_kib
            .map_or("n/a".to_string(), |p| format!("{:.1}", p as f64 / 1024.0));
        let rho = (16u64 << (2 * self.qubits)) as f64 / 1024.0;
        format!(
            "{:>6} {:>8} {:>12.2} {:>14.3} {:>12} {:>12} {:>10.1}",
            self.qubits,
            self.circuits,
            k / wall,
            wall / k * 1e3,
            cpu,
            peak,
            rho
        )
    }
}

fn table_header() -> String {
    format!(
        "{:>6} {:>8} {:>12} {:>14} {:>12} {:>12} {:>10}",
        "qubits", "circuits", "circuits/s", "wall ms/circ", "cpu ms/circ", "peak RSS MB", "rho KiB"
    )
}

/// The peak resident set of this process so far (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Small widths repeat their circuit set for at least this long, so the
/// clocks' resolution (the scheduler tick for CPU time) does not dominate.
const MIN_WIDTH_TIME: Duration = Duration::from_secs(1);

/// Simulates each circuit with the sim_local noise model as a circuit run
/// does: the noisy state, then the outcome distribution after readout; the
/// whole set once, and again until [`MIN_WIDTH_TIME`] has passed.
pub fn time_width(n: usize, circuits: &[Vec<Op>]) -> Result<WidthResult, String> {
    let noise = NoiseProfile::builtin("sim_local").ok_or("the sim_local profile is missing")?;
    let model = Model::new(&noise, &Default::default());
    let (wall0, cpu0) = (Instant::now(), thread_cpu());
    let mut rounds = 0;
    while rounds == 0 || (wall0.elapsed() < MIN_WIDTH_TIME && rounds < 100_000) {
        for ops in circuits {
            let mut r = Register::new(n, model.clone());
            r.run(ops);
            r.sync_all();
            let total: f64 = r.readout_distribution().iter().sum();
            if (total - 1.0).abs() > 1e-9 {
                return Err(format!("a {n}-qubit circuit lost probability: total {total}"));
            }
        }
        rounds += 1;
    }
    let wall = wall0.elapsed();
    let cpu = cpu0.zip(thread_cpu()).map(|(a, b)| b - a);
    Ok(WidthResult {
        qubits: n,
        circuits: circuits.len() * rounds,
        wall,
        cpu,
        peak_kib: peak_rss_kib(),
    })
}

/// `synqc bench circuits [options]`: prints the table (see the module doc).
pub fn circuits_command(args: &[String]) -> Result<(), String> {
    let bench = CircuitBench::from_args(args)?;
    if bench.in_process {
        for n in bench.qubits.clone() {
            println!("{}", time_width(n, &bench.circuits_of(n))?.row());
        }
        return Ok(());
    }
    if let Some(dir) = &bench.qasm_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}; give a writable --qasm-dir", dir.display()))?;
        for n in bench.qubits.clone() {
            for (k, ops) in bench.circuits_of(n).iter().enumerate() {
                let path = dir.join(format!("q{n:02}_c{k:03}.qasm"));
                std::fs::write(
                    &path,
                    crate::sim::circuit::to_qasm3(n, ops, &(0..n).collect::<Vec<_>>()),
                )
                .map_err(|e| format!("cannot write {}: {e}; give a writable --qasm-dir", path.display()))?;
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program to re-run it: {e}"))?;
    println!(
        "synqc density-matrix engine {}: random circuits of depth {}, seed {}, sim_local noise, one thread, one process per width",
        super::ENGINE_VERSION,
        bench.depth,
        bench.seed
    );
    println!("{}", table_header());
    for n in bench.qubits.clone() {
        let out = std::process::Command::new(&exe)
            .args(CIRCUITS_COMMAND)
            .args(["--qubits", &n.to_string()])
            .args(["--depth", &bench.depth.to_string()])
            .args(["--circuits", &bench.circuits.to_string()])
            .args(["--seed", &bench.seed.to_string()])
            .arg("--in-process")
            .output()
            .map_err(|e| format!("cannot start the {n}-qubit bench process: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the {n}-qubit bench process failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    println!("peak RSS is the whole process's high-water mark (binary and allocator included); rho KiB is one density matrix; circuits counts repeats of the set (small widths run it for at least 1 s).");
    Ok(())
}

#[cfg(test)]
mod tests;
