//! The registry's help text, route templates and process figures.

use super::*;

#[test]
fn proc_figures_are_plausible() {
    let p = Process::read().expect("linux /proc");
    assert!(p.rss_bytes > 1 << 20, "rss {}", p.rss_bytes);
    assert!(p.open_fds >= 3 && p.max_fds >= p.open_fds);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(p.start_time_s <= now + 1.0 && p.start_time_s > now - 86_400.0 * 365.0);
}
