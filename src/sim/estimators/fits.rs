//! The small least-squares fits the health preset needs: a straight line,
//! an exponential decay A exp(-t/tau) + B with B fixed (T1), the joint
//! echo and Ramsey coherence fit (T2, T2*), and the randomized-benchmarking
//! decay A p^m + B, solved by Levenberg-Marquardt.

/// Levenberg-Marquardt for a handful of parameters. `model(params, i)`
/// returns the prediction for point i and fills its gradient; `weights`
/// weigh each point's squared residual (empty: all 1). Returns the fitted
/// parameters (or the start when no step ever improved the cost).
fn levenberg_marquardt<const P: usize>(
    start: [f64; P],
    ys: &[f64],
    weights: &[f64],
    model: impl Fn(&[f64; P], usize, &mut [f64; P]) -> f64,
    clamp: impl Fn(&mut [f64; P]),
) -> [f64; P] {
    let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0);
    let cost = |x: &[f64; P]| -> f64 {
        let mut g = [0.0; P];
        ys.iter()
            .enumerate()
            .map(|(i, y)| weight(i) * (model(x, i, &mut g) - y).powi(2))
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
            let (r, w) = (model(&x, i, &mut g) - y, weight(i));
            for a in 0..P {
                jtr[a] += w * g[a] * r;
                for b in 0..P {
                    jtj[a][b] += w * g[a] * g[b];
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
            // Converged when the step moves no parameter beyond 1e-8 of
            // itself (also when damping has shrunk a rejected step that
            // far: no better point lies within it) or the cost falls by
            // less than 1e-10 of itself. What is left is far below any
            // fit's statistical uncertainty (a parameter's shift is about
            // sqrt(relative cost change x points) of its standard error).
            let tiny = (0..P).all(|a| (trial[a] - x[a]).abs() <= 1e-8 * x[a].abs().max(1e-12));
            let ct = cost(&trial);
            if ct.is_finite() && ct <= c {
                let done = tiny || (c - ct) <= 1e-10 * c.max(1e-300);
                x = trial;
                c = ct;
                lambda = (lambda / 3.0).max(1e-12);
                improved = !done;
                break;
            }
            if tiny {
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

/// Fit of A exp(-t/tau) + B with the offset B fixed by the caller.
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

/// Bounds of a decay rate in units of 1/scale: tau within [1e-3, 1e3] * scale.
const RATE_MIN: f64 = 1e-3;
const RATE_MAX: f64 = 1e3;

fn rate_at_bound(k: f64) -> bool {
    k <= RATE_MIN * 1.0001 || k >= RATE_MAX * 0.9999
}

/// Fit A exp(-t/tau) + b with b given: where physics fixes the asymptote
/// (T1 relaxes to the measured initial state), fitting it as well would
/// only trade it against tau. `scale` is the expected decay time: the fit
/// works in t/scale so the problem is well conditioned whatever the units,
/// and tau is bounded to [1e-3, 1e3] * scale.
pub fn fit_exp_decay(ts: &[f64], ys: &[f64], b: f64, scale: f64, start: Option<ExpFit>) -> ExpFit {
    let s: Vec<f64> = ts.iter().map(|t| t / scale).collect();
    let x0 = match start {
        Some(f) => [f.a, scale / f.tau],
        None => initial_exp_guess(&s, ys, b),
    };
    let x = levenberg_marquardt(
        x0,
        ys,
        &[],
        |p, i, g| {
            let e = (-p[1] * s[i]).exp();
            *g = [e, -p[0] * s[i] * e];
            p[0] * e + b
        },
        |p| p[1] = p[1].clamp(RATE_MIN, RATE_MAX),
    );
    ExpFit {
        a: x[0],
        tau: scale / x[1],
        b,
        at_bound: rate_at_bound(x[1]),
    }
}

/// Log-linear start: A from the earliest point, then ln((y - b)/A) against t.
fn initial_exp_guess(s: &[f64], ys: &[f64], b: f64) -> [f64; 2] {
    let a = ys.first().copied().unwrap_or(0.0) - b;
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
    [a, k.clamp(RATE_MIN, RATE_MAX)]
}

/// Joint fit of a Hahn echo and a Ramsey experiment on one qubit, both
/// read as P(0) around the same fixed offset m (the readout midpoint):
/// echo m + A_e exp(-t/T2), Ramsey m + A_r exp(-t/T2 - s t^2) cos(2 pi f t).
/// The echo refocuses quasi-static detuning, so it sees only the Markovian
/// T2; free evolution adds the Gaussian factor exp(-s t^2) of a detuning
/// that is constant within a shot and Gaussian across shots (s = sigma^2/2).
/// Sharing T2 lets the echo pin the exponential part, so the Ramsey curve
/// only has to tell the Gaussian part apart. Times in us, f in MHz.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoherenceFit {
    pub offset: f64,
    pub a_echo: f64,
    pub a_ramsey: f64,
    pub t2: f64,
    /// Gaussian decay coefficient, 1/us^2 (>= 0).
    pub s: f64,
    /// Fitted Ramsey oscillation frequency, MHz.
    pub freq: f64,
    /// T2 or s ended on its search bound: the decay is not resolved.
    pub at_bound: bool,
}

impl CoherenceFit {
    /// T2*: the 1/e time of the Ramsey envelope, the root of t/T2 + s t^2 = 1
    /// (written so it stays exact as s goes to 0, where it is T2).
    pub fn t2star(&self) -> f64 {
        let r = 1.0 / self.t2;
        2.0 / (r + (r * r + 4.0 * self.s).sqrt())
    }

    pub fn envelope(&self, t: f64) -> f64 {
        (-t / self.t2 - self.s * t * t).exp()
    }

    pub fn echo(&self, t: f64) -> f64 {
        self.offset + self.a_echo * (-t / self.t2).exp()
    }

    pub fn ramsey(&self, t: f64) -> f64 {
        self.offset + self.a_ramsey * self.envelope(t) * (std::f64::consts::TAU * self.freq * t).cos()
    }
}

/// Bound of the square root of the Gaussian coefficient, in 1/scale: a
/// 1/e time of 1e-3 scale.
const GAUSS_MAX: f64 = 1e3;

/// Fit [`CoherenceFit`] to echo points (delay, P(0)) and Ramsey points,
/// the offset and start (its offset is used as the fixed one) given, each
/// point's squared residual weighed by `weights` (echo points first; empty:
/// all 1). The fit works in units of the start's T2* so it is well
/// conditioned whatever the units.
pub fn fit_coherence(
    echo: (&[f64], &[f64]),
    ramsey: (&[f64], &[f64]),
    start: CoherenceFit,
    weights: &[f64],
) -> CoherenceFit {
    let scale = start.t2star();
    let m = start.offset;
    let ne = echo.0.len();
    let ts: Vec<f64> = echo.0.iter().chain(ramsey.0).map(|t| t / scale).collect();
    let ys: Vec<f64> = echo.1.iter().chain(ramsey.1).copied().collect();
    let x0 = [
        start.a_echo,
        start.a_ramsey,
        scale / start.t2,
        // s = g^2 keeps the Gaussian part non-negative without a bound: a
        // clamped parameter makes Levenberg-Marquardt creep along the bound
        // in tiny steps. From a little above 0 so the fit can leave it.
        (start.s * scale * scale).sqrt().max(0.1),
        start.freq * scale,
    ];
    let x = levenberg_marquardt(
        x0,
        &ys,
        weights,
        |p, i, g| {
            let u = ts[i];
            if i < ne {
                let e = (-p[2] * u).exp();
                *g = [e, 0.0, -p[0] * u * e, 0.0, 0.0];
                m + p[0] * e
            } else {
                let e = (-p[2] * u - p[3] * p[3] * u * u).exp();
                let w = std::f64::consts::TAU * p[4] * u;
                let (sin, cos) = w.sin_cos();
                let ec = p[1] * e * cos;
                *g = [
                    0.0,
                    e * cos,
                    -u * ec,
                    -2.0 * p[3] * u * u * ec,
                    -p[1] * e * sin * std::f64::consts::TAU * u,
                ];
                m + ec
            }
        },
        |p| {
            p[2] = p[2].clamp(RATE_MIN, RATE_MAX);
            p[3] = p[3].clamp(-GAUSS_MAX, GAUSS_MAX);
        },
    );
    CoherenceFit {
        offset: m,
        a_echo: x[0],
        a_ramsey: x[1],
        t2: scale / x[2],
        s: x[3] * x[3] / (scale * scale),
        // cos is even: the sign of the frequency is not observable.
        freq: x[4].abs() / scale,
        at_bound: rate_at_bound(x[2]) || x[3].abs() >= GAUSS_MAX * 0.9999,
    }
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
        &[],
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
    fn exp_fit_recovers_noiseless_parameters_with_the_offset_held() {
        let ts: Vec<f64> = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 5.0].map(|f| f * 80.0).to_vec();
        let ys: Vec<f64> = ts.iter().map(|t| 0.9 * (-t / 80.0).exp() + 0.05).collect();
        for start in [
            None,
            Some(ExpFit {
                a: 0.5,
                tau: 300.0,
                b: 0.05,
                at_bound: false,
            }),
        ] {
            let f = fit_exp_decay(&ts, &ys, 0.05, 100.0, start);
            assert!((f.tau - 80.0).abs() < 1e-6 && (f.a - 0.9).abs() < 1e-8, "{f:?}");
            assert!(!f.at_bound);
        }
        // The offset is the caller's: a wrong one is kept, and the decay
        // time moves to make up for it.
        let f = fit_exp_decay(&ts, &ys, 0.0, 100.0, None);
        assert_eq!(f.b, 0.0);
        assert!(f.tau > 80.5, "{f:?}");
    }

    fn coherence_truth() -> CoherenceFit {
        CoherenceFit {
            offset: 0.505,
            a_echo: 0.46,
            a_ramsey: 0.47,
            t2: 90.0,
            // sigma^2/2 for T2 = 90 us, T2* = 60 us.
            s: (1.0 - 60.0 / 90.0) / 3600.0,
            freq: 1.0 / 60.0,
            at_bound: false,
        }
    }

    fn coherence_curves(truth: &CoherenceFit) -> [Vec<f64>; 4] {
        let et: Vec<f64> = [0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 5.0]
            .map(|f| f * truth.t2)
            .to_vec();
        let rt: Vec<f64> = (0..21).map(|i| f64::from(i) * 15.0).collect();
        let ey = et.iter().map(|&t| truth.echo(t)).collect();
        let ry = rt.iter().map(|&t| truth.ramsey(t)).collect();
        [et, ey, rt, ry]
    }

    /// Exact echo and Ramsey curves give back T2, the Gaussian part, the
    /// frequency and T2* (the envelope's 1/e time), from a start off in
    /// every parameter; the offset is never moved.
    #[test]
    fn coherence_fit_recovers_noiseless_parameters() {
        let truth = coherence_truth();
        assert!((truth.t2star() - 60.0).abs() < 1e-9);
        assert!((truth.envelope(truth.t2star()) - (-1f64).exp()).abs() < 1e-12);
        let [et, ey, rt, ry] = coherence_curves(&truth);
        let start = CoherenceFit {
            a_echo: 0.4,
            a_ramsey: 0.4,
            t2: 120.0,
            s: truth.s * 0.5,
            freq: truth.freq * 1.1,
            ..truth
        };
        let f = fit_coherence((&et, &ey), (&rt, &ry), start, &[]);
        assert_eq!(f.offset, truth.offset);
        assert!((f.t2 - 90.0).abs() < 1e-6, "{f:?}");
        assert!((f.s - truth.s).abs() < 1e-9 * truth.s.max(1e-12) * 1e3, "{f:?}");
        assert!((f.freq - truth.freq).abs() < 1e-9, "{f:?}");
        assert!((f.t2star() - 60.0).abs() < 1e-6, "{f:?}");
        assert!((f.a_echo - 0.46).abs() < 1e-8 && (f.a_ramsey - 0.47).abs() < 1e-8);
        assert!(!f.at_bound);
    }

    /// Without quasi-static dephasing the Gaussian part fits to 0 and
    /// T2* = T2.
    #[test]
    fn coherence_fit_without_gaussian_part_gives_t2star_equal_t2() {
        let truth = CoherenceFit {
            s: 0.0,
            ..coherence_truth()
        };
        assert_eq!(truth.t2star(), truth.t2);
        let [et, ey, rt, ry] = coherence_curves(&truth);
        let start = CoherenceFit {
            s: 1e-4,
            t2: 70.0,
            ..truth
        };
        let f = fit_coherence((&et, &ey), (&rt, &ry), start, &[]);
        assert!(f.s < 1e-9, "{f:?}");
        assert!(
            (f.t2star() - 90.0).abs() < 1e-3 && (f.t2 - 90.0).abs() < 1e-6,
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
