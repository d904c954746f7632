//! How many shots each run of a load asks for, so that the whole load fits
//! the limits the server reports (the per-run cap, one session's budget,
//! the preset's minimum), or the one-line reason it cannot.

use serde_json::Value;

use crate::sim::{self, Preset};

/// The server limits a load must fit, as GET /health reports them. A
/// limit the server does not report is not checked.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Limits {
    per_session: Option<u64>,
    per_run: Option<u64>,
    default_budget: Option<u64>,
}

impl Limits {
    pub(super) fn from_health(health: &Value) -> Limits {
        Limits {
            per_session: health["max_shots_per_session"].as_u64(),
            per_run: health["max_shots_per_experiment"].as_u64(),
            default_budget: health["default_shot_budget"].as_u64(),
        }
    }
}

/// The shot_budget each run asks for: `requested` (--shots), else the
/// server's default budget lowered until every run fits one session's
/// budget; never below the preset's minimum. None when the server reports
/// no default budget (its own default then applies). An Err is the
/// one-line reason the load cannot fit.
pub(super) fn shots_per_run(
    runs: u64,
    requested: Option<u64>,
    preset: Preset,
    limits: &Limits,
) -> Result<Option<u64>, String> {
    let minimum = sim::min_shots(preset);
    let name = preset.as_str();
    // Runs outside prod mode are clamped to the per-run cap, and the
    // session is charged the clamped shots.
    let charged = |s: u64| limits.per_run.map_or(s, |cap| s.min(cap));
    match requested {
        Some(s) if s < minimum => Err(format!(
            "{name} needs at least {minimum} shots per run, and --shots is {s}; use --shots {minimum} or more"
        )),
        Some(s) => match limits.per_session {
            Some(cap) if runs.saturating_mul(charged(s)) > cap => {
                let total = runs.saturating_mul(charged(s));
                let fit = cap / runs;
                let advice = if fit >= minimum {
                    format!("use --shots {fit} or fewer, or fewer --runs")
                } else {
                    format!("use --runs {} or fewer", cap / minimum)
                };
                Err(format!(
                    "{runs} runs x {} shots = {total} shots exceed the server's max_shots_per_session ({cap}); {advice}",
                    charged(s)
                ))
            }
            _ => Ok(Some(s)),
        },
        None => {
            let Some(default) = limits.default_budget else {
                return Ok(None);
            };
            let shots = charged(default).max(minimum);
            match limits.per_session {
                Some(cap) if runs.saturating_mul(shots) > cap => {
                    let fit = cap / runs;
                    if fit < minimum {
                        return Err(format!(
                            "{runs} runs of {name} need at least {minimum} shots each ({} in all), more than the server's max_shots_per_session ({cap}); use --runs {} or fewer",
                            runs.saturating_mul(minimum),
                            cap / minimum
                        ));
                    }
                    Ok(Some(fit))
                }
                _ => Ok(Some(shots)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits of a server with the default configuration.
    fn defaults() -> Limits {
        let c = crate::config::Config::default();
        Limits {
            per_session: Some(c.max_shots_per_session),
            per_run: Some(c.max_shots_per_experiment),
            default_budget: Some(c.default_shot_budget),
        }
    }

    #[test]
    fn a_default_sized_load_fits_the_session_budget() {
        let l = defaults();
        let cap = l.per_session.unwrap_or(0);
        for runs in [1, 200, 500, 2000] {
            let s = shots_per_run(runs, None, Preset::HelloQuantumSim, &l)
                .unwrap()
                .unwrap();
            assert!(runs * s <= cap, "{runs} x {s}");
            assert!(s >= sim::min_shots(Preset::HelloQuantumSim));
            assert!(s <= l.default_budget.unwrap_or(0));
        }
        // Few runs keep the server's default budget.
        assert_eq!(
            shots_per_run(10, None, Preset::HelloQuantumSim, &l).unwrap(),
            l.default_budget
        );
    }

    #[test]
    fn a_load_that_cannot_fit_is_refused_with_the_reason() {
        let l = defaults();
        let cap = l.per_session.unwrap_or(0);
        // --shots given: the product is checked, and a size that fits named.
        let why = shots_per_run(500, Some(2048), Preset::HelloQuantumSim, &l).unwrap_err();
        assert!(why.contains(&(500 * 2048).to_string()), "{why}");
        assert!(why.contains(&format!("--shots {}", cap / 500)), "{why}");
        assert_eq!(
            shots_per_run(500, Some(cap / 500), Preset::HelloQuantumSim, &l).unwrap(),
            Some(cap / 500)
        );
        // Below the preset's minimum, with or without room in the budget.
        let min = sim::min_shots(Preset::GroverDemo);
        let why = shots_per_run(1, Some(min - 1), Preset::GroverDemo, &l).unwrap_err();
        assert!(why.contains(&format!("--shots {min}")), "{why}");
        // So many runs that even the minimum does not fit.
        let runs = cap / min + 1;
        let why = shots_per_run(runs, None, Preset::GroverDemo, &l).unwrap_err();
        assert!(why.contains(&format!("--runs {}", cap / min)), "{why}");
        assert!(shots_per_run(cap / min, None, Preset::GroverDemo, &l).is_ok());
    }

    #[test]
    fn the_per_run_cap_is_what_the_session_is_charged() {
        let l = Limits {
            per_session: Some(10_000),
            per_run: Some(1_000),
            default_budget: Some(2048),
        };
        // 10 runs asking 5,000 are clamped to 1,000 each: they fit.
        assert!(shots_per_run(10, Some(5_000), Preset::HelloQuantumSim, &l).is_ok());
        assert!(shots_per_run(11, Some(5_000), Preset::HelloQuantumSim, &l).is_err());
        assert_eq!(
            shots_per_run(10, None, Preset::HelloQuantumSim, &l).unwrap(),
            Some(1_000)
        );
    }

    #[test]
    fn a_server_that_reports_no_limits_keeps_its_own_default() {
        let none = Limits::default();
        assert_eq!(shots_per_run(500, None, Preset::Health, &none).unwrap(), None);
        assert_eq!(
            shots_per_run(500, Some(5_000), Preset::Health, &none).unwrap(),
            Some(5_000)
        );
    }
}
