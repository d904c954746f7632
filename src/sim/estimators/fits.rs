//! The small least-squares fits the health preset needs: a straight line,
//! an exponential decay A exp(-t/tau) + B for T1, T2* and T2 echo, and the
//! randomized-benchmarking decay A p^m + B, solved by Levenberg-Marquardt.

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
