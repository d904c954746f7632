//! Sampling and estimators: the multinomial shot draw, the multinomial
//! bootstrap (docs/physics.md "Uncertainty"), the distribution fidelity and the
//! small least-squares fits the health preset needs.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;

thread_local! {
    /// Time spent in bootstrap resampling on this thread; `synqc bench sim`
    /// reads the difference around a run. Instrumentation only: no result
    /// depends on it.
    static BOOTSTRAP_TIME: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Adds the lifetime of the guard to this thread's bootstrap time.
pub(super) struct BootstrapTimer(Instant);

impl BootstrapTimer {
    pub(super) fn start() -> BootstrapTimer {
        BootstrapTimer(Instant::now())
    }
}

impl Drop for BootstrapTimer {
    fn drop(&mut self) {
        let d = self.0.elapsed();
        BOOTSTRAP_TIME.with(|t| t.set(t.get() + d));
    }
}

/// This thread's bootstrap time so far, read around a run by `synqc bench sim`.
pub(super) fn bootstrap_time() -> Duration {
    BOOTSTRAP_TIME.with(|t| t.get())
}

/// The one generator of a run: shots, RB sequences and bootstrap resamples
/// are all drawn from it in a fixed order, so a seed fixes everything.
pub type SimRng = Xoshiro256PlusPlus;

pub fn rng_for(seed: u64) -> SimRng {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// Resamples per bootstrap (docs/physics.md).
pub const BOOTSTRAP_RESAMPLES: usize = 200;

/// One binomial draw; probabilities are clamped because sums of floating
/// point populations can stray outside [0, 1] by an ulp.
pub fn binomial(rng: &mut SimRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    match Binomial::new(n, p) {
        Ok(b) => b.sample(rng),
        // Unreachable for p in (0, 1); a non-finite p draws nothing.
        Err(_) => 0,
    }
}

/// A multinomial distribution of `n` shots over fixed probabilities,
/// sampled as a chain of binomials: O(categories) work whatever `n` is.
/// Categories go largest first, so at most one stage draws a large
/// binomial and the rest are cheap small-mean inversions; the conditional
/// stage probabilities and the first stage's binomial are built once, which
/// is what makes 200 bootstrap resamples cheap.
pub struct Multinomial {
    n: u64,
    /// (category, probability conditional on the earlier stages).
    stages: Vec<(usize, f64)>,
    first: Option<Binomial>,
    categories: usize,
}

impl Multinomial {
    pub fn new(n: u64, probs: &[f64]) -> Multinomial {
        let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let mut mass: f64 = order.iter().map(|&i| probs[i]).sum();
        let mut stages = Vec::with_capacity(order.len());
        for &i in &order {
            let cond = if mass > 0.0 {
                (probs[i] / mass).clamp(0.0, 1.0)
            } else {
                1.0
            };
            stages.push((i, cond));
            mass -= probs[i];
        }
        let first = stages
            .first()
            .and_then(|&(_, p)| (p > 0.0 && p < 1.0).then(|| Binomial::new(n, p).ok()))
            .flatten();
        Multinomial {
            n,
            stages,
            first,
            categories: probs.len(),
        }
    }

    /// Draw into `out` (length = number of categories).
    pub fn sample_into(&self, rng: &mut SimRng, out: &mut [u64]) {
        out.iter_mut().for_each(|v| *v = 0);
        let mut left = self.n;
        let last = self.stages.len().saturating_sub(1);
        for (s, &(i, p)) in self.stages.iter().enumerate() {
            if left == 0 {
                break;
            }
            let k = if s == last {
                left
            } else if s == 0 {
                match &self.first {
                    Some(b) => b.sample(rng),
                    None => binomial(rng, left, p),
                }
            } else {
                binomial(rng, left, p)
            };
            out[i] = k;
            left -= k;
        }
    }

    pub fn sample(&self, rng: &mut SimRng) -> Vec<u64> {
        let mut out = vec![0; self.categories];
        self.sample_into(rng, &mut out);
        out
    }
}

/// One multinomial draw of `n` shots over `probs`.
pub fn multinomial(rng: &mut SimRng, n: u64, probs: &[f64]) -> Vec<u64> {
    Multinomial::new(n, probs).sample(rng)
}

/// fidelity_dist_v1: (sum_x sqrt(p_hat(x) q(x)))^2 with p_hat = counts / N.
pub fn dist_fidelity(counts: &[u64], q: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let s: f64 = counts
        .iter()
        .zip(q)
        .map(|(&c, &qx)| (c as f64 / n as f64 * qx.max(0.0)).sqrt())
        .sum();
    s * s
}

/// dist_fidelity only sees outcomes the ideal distribution q supports, and
/// the shot total. Pooling the unsupported outcomes into one bucket leaves
/// every resampled fidelity exactly as it was while saving binomial stages
/// in each bootstrap resample (Bell: 3 stages become 2).
pub fn pool_off_support(counts: &[u64], q: &[f64]) -> (Vec<u64>, Vec<f64>) {
    let mut c: Vec<u64> = Vec::with_capacity(counts.len());
    let mut qq: Vec<f64> = Vec::with_capacity(counts.len());
    let mut other = 0;
    for (&n, &qx) in counts.iter().zip(q) {
        if qx > 0.0 {
            c.push(n);
            qq.push(qx);
        } else {
            other += n;
        }
    }
    c.push(other);
    qq.push(0.0);
    (c, qq)
}

/// A bootstrap summary: 2.5/97.5 percentiles and the standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub ci95: [f64; 2],
    pub stderr: f64,
}

/// Percentile with linear interpolation between order statistics; `sorted`
/// must be ascending and non-empty.
pub fn percentile(sorted: &[f64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (pct / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Summarize bootstrap replicates; None when there are fewer than two
/// finite ones (no honest interval then).
pub fn spread(mut reps: Vec<f64>) -> Option<Spread> {
    reps.retain(|v| v.is_finite());
    if reps.len() < 2 {
        return None;
    }
    reps.sort_by(f64::total_cmp);
    let mean = reps.iter().sum::<f64>() / reps.len() as f64;
    let var = reps.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (reps.len() - 1) as f64;
    Some(Spread {
        ci95: [percentile(&reps, 2.5), percentile(&reps, 97.5)],
        stderr: var.sqrt(),
    })
}

/// Multinomial bootstrap of one circuit's counts: resample N shots from
/// p_hat, re-evaluate `stat`, BOOTSTRAP_RESAMPLES times.
pub fn bootstrap_counts(rng: &mut SimRng, counts: &[u64], stat: impl Fn(&[u64]) -> f64) -> Vec<f64> {
    let mut reps = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for_each_resample(rng, counts, |c| reps.push(stat(c)));
    reps
}

/// The resamples themselves, for callers that need several statistics of
/// the same resample (e.g. a difference and its parts).
pub fn for_each_resample(rng: &mut SimRng, counts: &[u64], mut f: impl FnMut(&[u64])) {
    let _timer = BootstrapTimer::start();
    let n: u64 = counts.iter().sum();
    let p_hat: Vec<f64> = counts.iter().map(|&c| c as f64 / n.max(1) as f64).collect();
    let dist = Multinomial::new(n, &p_hat);
    let mut buf = vec![0; counts.len()];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        dist.sample_into(rng, &mut buf);
        f(&buf);
    }
}

/// Bootstrap of a statistic of i.i.d. samples (resampling with replacement).
pub fn bootstrap_samples(rng: &mut SimRng, xs: &[f64], stat: impl Fn(&mut [f64]) -> f64) -> Vec<f64> {
    use rand::RngExt;
    let _timer = BootstrapTimer::start();
    let mut buf = vec![0.0; xs.len()];
    (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            for b in buf.iter_mut() {
                *b = xs[rng.random_range(0..xs.len())];
            }
            stat(&mut buf)
        })
        .collect()
}

/// Median of samples (reorders them).
pub fn median(xs: &mut [f64]) -> f64 {
    quantile(xs, 50.0)
}

/// Percentile of unsorted samples (sorts them).
pub fn quantile(xs: &mut [f64], pct: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    percentile(xs, pct)
}

/// Levenberg-Marquardt for a handful of parameters. `model(params, i)`
/// returns the prediction for point i and fills its gradient; returns the
/// fitted parameters (or the start when no step ever improved the cost).
fn levenberg_marquardt<const P: usize>(
    start: [f64; P],
    ys: &[f64],
    model: impl Fn(&[f64; P], usize, &mut [f64; P]) -> f64,
    clamp: impl Fn(&mut [f64; P]),
) -> [f64; P] {
    let cost = |x: &[f64; P]| -> f64 {
        let mut g = [0.0; P];
        ys.iter()
            .enumerate()
            .map(|(i, y)| (model(x, i, &mut g) - y).powi(2))
            .sum()
    };
    let mut x = start;
    let mut c = cost(&x);
    let mut lambda = 1e-3;
    for _ in 0..100 {
        let mut jtj = [[0.0; P]; P];
        let mut jtr = [0.0; P];
        let mut g = [0.0; P];
        for (i, y) in ys.iter().enumerate() {
            let r = model(&x, i, &mut g) - y;
            for a in 0..P {
                jtr[a] += g[a] * r;
                for b in 0..P {
                    jtj[a][b] += g[a] * g[b];
                }
            }
        }
        let mut improved = false;
        while lambda < 1e12 {
            let mut m = jtj;
            for (a, row) in m.iter_mut().enumerate() {
                row[a] += lambda * jtj[a][a].max(1e-12);
            }
            let Some(step) = solve(m, jtr.map(|v| -v)) else {
                lambda *= 10.0;
                continue;
            };
            let mut trial = x;
            for a in 0..P {
                trial[a] += step[a];
            }
            clamp(&mut trial);
            let ct = cost(&trial);
            if ct.is_finite() && ct <= c {
                let done = (c - ct) <= 1e-14 * c.max(1e-300);
                x = trial;
                c = ct;
                lambda = (lambda / 3.0).max(1e-12);
                improved = !done;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    x
}

/// Gaussian elimination with partial pivoting for the tiny normal equations.
fn solve<const P: usize>(mut m: [[f64; P]; P], mut b: [f64; P]) -> Option<[f64; P]> {
    for col in 0..P {
        let piv = (col..P).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[piv][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, piv);
        b.swap(col, piv);
        let pivot = m[col];
        for r in col + 1..P {
            let f = m[r][col] / pivot[col];
            for (v, p) in m[r].iter_mut().zip(pivot).skip(col) {
                *v -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0; P];
    for r in (0..P).rev() {
        let s: f64 = (r + 1..P).map(|k| m[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / m[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Least-squares slope and intercept of y against x.
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> Option<(f64, f64)> {
    let n = xs.len() as f64;
    if xs.len() < 2 {
        return None;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// Fit of A exp(-t/tau) + B.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpFit {
    pub a: f64,
    pub tau: f64,
    pub b: f64,
    /// The decay constant hit its search bound (data without a visible decay).
    pub at_bound: bool,
}

impl ExpFit {
    pub fn eval(&self, t: f64) -> f64 {
        self.a * (-t / self.tau).exp() + self.b
    }
}

/// Fit A exp(-t/tau) + B. `scale` is the expected decay time: the fit works
/// in t/scale so the problem is well conditioned whatever the units, and
/// tau is bounded to [1e-3, 1e3] * scale.
pub fn fit_exp_decay(ts: &[f64], ys: &[f64], scale: f64, start: Option<ExpFit>) -> ExpFit {
    let s: Vec<f64> = ts.iter().map(|t| t / scale).collect();
    let (kmin, kmax) = (1e-3, 1e3);
    let x0 = match start {
        Some(f) => [f.a, scale / f.tau, f.b],
        None => initial_exp_guess(&s, ys),
    };
    let x = levenberg_marquardt(
        x0,
        ys,
        |p, i, g| {
            let e = (-p[1] * s[i]).exp();
            *g = [e, -p[0] * s[i] * e, 1.0];
            p[0] * e + p[2]
        },
        |p| p[1] = p[1].clamp(kmin, kmax),
    );
    let at_bound = x[1] <= kmin * 1.0001 || x[1] >= kmax * 0.9999;
    ExpFit {
        a: x[0],
        tau: scale / x[1],
        b: x[2],
        at_bound,
    }
}

/// Log-linear start: B from the latest points, then ln|y - B| against t.
fn initial_exp_guess(s: &[f64], ys: &[f64]) -> [f64; 3] {
    let (first, last) = (
        ys.first().copied().unwrap_or(0.0),
        ys.last().copied().unwrap_or(0.0),
    );
    let b = last;
    let a = first - b;
    let (mut xs, mut ls) = (Vec::new(), Vec::new());
    for (t, y) in s.iter().zip(ys) {
        let r = (y - b) / a;
        if a.abs() > 1e-9 && r > 0.05 {
            xs.push(*t);
            ls.push(r.ln());
        }
    }
    let k = match linear_fit(&xs, &ls) {
        Some((slope, _)) if slope < 0.0 => -slope,
        _ => 1.0,
    };
    [a, k.clamp(1e-3, 1e3), b]
}

/// RB fit: survival of the sequences inverted to |0> is B + A p^m, of the
/// sequences inverted to |1> (read as P(0)) is B - A p^m. A, p and B are
/// shared: for a depolarizing (Clifford-twirled) channel both decay to the
/// same fully mixed asymptote B, and fitting both pins B even when the decay
/// over m <= 128 is shallow, where a single A p^m + B curve is degenerate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RbFit {
    pub a: f64,
    pub p: f64,
    pub b: f64,
}

impl RbFit {
    /// Error per Clifford for one qubit (d = 2): (1 - p)(d - 1)/d.
    pub fn epc(&self) -> f64 {
        (1.0 - self.p) / 2.0
    }
}

pub fn fit_rb(lengths: &[f64], y0: &[f64], y1: &[f64], start: Option<RbFit>) -> RbFit {
    let n = lengths.len();
    let ys: Vec<f64> = y0.iter().chain(y1).copied().collect();
    let x0 = match start {
        Some(f) => [f.a, f.p, f.b],
        None => {
            let b = ys.iter().sum::<f64>() / ys.len().max(1) as f64;
            let (mut xs, mut ls) = (Vec::new(), Vec::new());
            for i in 0..n {
                let d = (y0[i] - y1[i]) / 2.0;
                if d > 0.02 {
                    xs.push(lengths[i]);
                    ls.push(d.ln());
                }
            }
            match linear_fit(&xs, &ls) {
                Some((slope, icpt)) => [icpt.exp(), slope.exp().clamp(0.0, 1.0), b],
                None => [0.5, 0.99, b],
            }
        }
    };
    let x = levenberg_marquardt(
        x0,
        &ys,
        |q, i, g| {
            let (m, sign) = if i < n {
                (lengths[i], 1.0)
            } else {
                (lengths[i - n], -1.0)
            };
            let pm = q[1].powf(m);
            let dp = if q[1] > 0.0 { m * q[1].powf(m - 1.0) } else { 0.0 };
            *g = [sign * pm, sign * q[0] * dp, 1.0];
            q[2] + sign * q[0] * pm
        },
        |q| q[1] = q[1].clamp(0.0, 1.0),
    );
    RbFit {
        a: x[0],
        p: x[1],
        b: x[2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multinomial_conserves_shots_and_matches_probabilities() {
        let mut rng = rng_for(7);
        let p = [0.1, 0.2, 0.3, 0.4];
        let c = multinomial(&mut rng, 1_000_000, &p);
        assert_eq!(c.iter().sum::<u64>(), 1_000_000);
        for (ci, pi) in c.iter().zip(p) {
            assert!((*ci as f64 / 1e6 - pi).abs() < 0.003, "{c:?}");
        }
        assert_eq!(multinomial(&mut rng, 5, &[0.0, 1.0, 0.0]), vec![0, 5, 0]);
    }

    #[test]
    fn pooling_unsupported_outcomes_keeps_the_fidelity() {
        let (c, q) = ([40, 3, 5, 52], [0.5, 0.0, 0.0, 0.5]);
        let (pc, pq) = pool_off_support(&c, &q);
        assert_eq!(pc, vec![40, 52, 8]);
        assert!((dist_fidelity(&pc, &pq) - dist_fidelity(&c, &q)).abs() < 1e-15);
    }

    #[test]
    fn fidelity_of_identical_distributions_is_one() {
        assert!((dist_fidelity(&[50, 0, 0, 50], &[0.5, 0.0, 0.0, 0.5]) - 1.0).abs() < 1e-12);
        assert!(dist_fidelity(&[0, 10], &[1.0, 0.0]).abs() < 1e-12);
    }

    #[test]
    fn percentiles_interpolate() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert!((percentile(&v, 2.5) - 2.5).abs() < 1e-12);
        let s = spread(vec![1.0, 2.0, 3.0]).expect("three finite replicates");
        assert!((s.stderr - 1.0).abs() < 1e-12);
    }

    #[test]
    fn exp_fit_recovers_noiseless_parameters() {
        let ts: Vec<f64> = (0..10).map(|i| 3.0 * 2f64.powf(i as f64 - 9.0) * 80.0).collect();
        let ys: Vec<f64> = ts.iter().map(|t| 0.9 * (-t / 80.0).exp() + 0.05).collect();
        let f = fit_exp_decay(&ts, &ys, 100.0, None);
        assert!(
            (f.tau - 80.0).abs() < 1e-6 && (f.a - 0.9).abs() < 1e-8 && (f.b - 0.05).abs() < 1e-8,
            "{f:?}"
        );
    }

    #[test]
    fn rb_fit_recovers_shallow_decay() {
        let ms: Vec<f64> = [1, 2, 4, 8, 16, 32, 64, 128].map(f64::from).to_vec();
        let p: f64 = 0.9995;
        let y0: Vec<f64> = ms.iter().map(|m| 0.505 + 0.48 * p.powf(*m)).collect();
        let y1: Vec<f64> = ms.iter().map(|m| 0.505 - 0.48 * p.powf(*m)).collect();
        let f = fit_rb(&ms, &y0, &y1, None);
        assert!((f.p - p).abs() < 1e-9, "{f:?}");
        assert!((f.epc() - 2.5e-4).abs() < 1e-8);
    }
}
