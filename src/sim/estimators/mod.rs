//! Sampling and estimators: the multinomial shot draw, the multinomial
//! bootstrap (docs/physics.md "Uncertainty"), the distribution fidelity and the
//! small least-squares fits the health preset needs (fits.rs).

use std::cell::Cell;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_distr::{Binomial, Distribution};
use rand_xoshiro::Xoshiro256PlusPlus;

mod fits;

pub use fits::{fit_coherence, fit_exp_decay, fit_rb, linear_fit, CoherenceFit, ExpFit, RbFit};

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
    let p_hat: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();
    fidelity_of(&p_hat, q)
}

/// fidelity_dist_v1 of a distribution `p` (the exact one, or counts / N):
/// (sum_x sqrt(p(x) q(x)))^2.
pub fn fidelity_of(p: &[f64], q: &[f64]) -> f64 {
    let s: f64 = p
        .iter()
        .zip(q)
        .map(|(&px, &qx)| (px.max(0.0) * qx.max(0.0)).sqrt())
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

/// The standard normal quantile of 97.5%.
const Z_975: f64 = 1.959_963_984_540_054;

/// The 95% score (Wilson) interval for a KPI estimated from `n` shots whose
/// sampling variance at its true value theta is theta (1 - theta) / n: the
/// thetas that the estimate lies within 1.96 such deviations of. A share of
/// shots (grover_success_v1) is a binomial proportion; fidelity_dist_v1 has
/// this variance to first order too (the delta method gives
/// F (Q - F) / n, Q the noisy probability of the ideal support, 1 under any
/// noise). Unlike bootstrap percentiles it leans away from the 0/1 bounds
/// where the sampling distribution is skewed, and it has no resampling
/// noise of its own, which is what kept percentile intervals below 95%
/// coverage (docs/physics.md "Uncertainty").
pub fn score_interval(estimate: f64, n: u64) -> Option<[f64; 2]> {
    if n == 0 || !estimate.is_finite() {
        return None;
    }
    let (p, n) = (estimate.clamp(0.0, 1.0), n as f64);
    let z2n = Z_975 * Z_975 / n;
    let centre = (p + z2n / 2.0) / (1.0 + z2n);
    let half = Z_975 / (1.0 + z2n) * (p * (1.0 - p) / n + z2n / (4.0 * n)).sqrt();
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// The uncertainty of a KPI of the score_interval kind: its 95% score
/// interval, and the standard deviation of its bootstrap replicates `reps`
/// as the stderr. None when either is undefined.
pub fn proportion_spread(estimate: f64, n: u64, reps: Vec<f64>) -> Option<Spread> {
    let ci95 = score_interval(estimate, n)?;
    spread(reps).map(|s| Spread {
        ci95,
        stderr: s.stderr,
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
}
