//! Schedules: next fire, catch-up, cron, disable and re-arm, field errors.

use super::*;

const T0: u64 = 1_700_000_000_000;

fn every(s: u64, catch_up: CatchUp) -> ScheduleRecord {
    let f = parse_fields(
        &json!({"name": "n", "request": {}, "every_seconds": s, "catch_up": catch_up.as_str()}),
        true,
    )
    .unwrap();
    ScheduleRecord::create(f, T0).unwrap()
}

#[test]
fn an_interval_fires_one_period_after_arming_then_each_period() {
    let s = every(10, CatchUp::Once);
    assert_eq!(s.due(T0, T0), None);
    assert_eq!(s.due(T0 + 9_999, T0), None);
    assert_eq!(s.due(T0 + 10_000, T0), Some(T0 + 10_000));
    assert_eq!(s.due(T0 + 19_999, T0), Some(T0 + 10_000));
    assert_eq!(s.next_fire(T0 + 1, T0), Some(T0 + 10_000));
    let fired = ScheduleRecord {
        last_period_ms: Some(T0 + 10_000),
        ..s
    };
    assert_eq!(fired.due(T0 + 19_999, T0), None, "a period fires once");
    assert_eq!(fired.due(T0 + 20_000, T0), Some(T0 + 20_000));
    assert_eq!(fired.next_fire(T0 + 12_000, T0), Some(T0 + 20_000));
}

#[test]
fn missed_periods_fire_once_or_not_at_all() {
    // Last fired at +10 s; down from +12 s to +75 s: periods +20..+70 missed.
    let once = ScheduleRecord {
        last_period_ms: Some(T0 + 10_000),
        ..every(10, CatchUp::Once)
    };
    let up = T0 + 75_000;
    assert_eq!(once.due(up, up), Some(T0 + 70_000), "once: the latest, one run");
    let after = ScheduleRecord {
        last_period_ms: Some(T0 + 70_000),
        ..once.clone()
    };
    assert_eq!(after.due(up + 1, up), None, "and no more for the others");
    assert_eq!(after.due(T0 + 80_000, up), Some(T0 + 80_000));
    let skip = ScheduleRecord {
        catch_up: CatchUp::Skip,
        ..once
    };
    assert_eq!(skip.due(up, up), None, "skip: nothing for the missed ones");
    assert_eq!(skip.next_fire(up, up), Some(T0 + 80_000));
    assert_eq!(skip.due(T0 + 80_000, up), Some(T0 + 80_000), "then on time again");
}

#[test]
fn cron_periods_are_its_times_in_utc() {
    // 2023-11-14T22:13:20Z; hourly at minute 0.
    let f = parse_fields(&json!({"name": "h", "request": {}, "cron": "0 * * * *"}), true).unwrap();
    let s = ScheduleRecord::create(f, T0).unwrap();
    let top = 1_700_002_800_000; // 23:00:00Z
    assert_eq!(s.due(T0 + 1000, T0), None);
    assert_eq!(s.next_fire(T0 + 1000, T0), Some(top));
    assert_eq!(s.due(top, T0), Some(top));
    assert_eq!(s.due(top + 3_599_000, T0), Some(top));
    assert_eq!(s.due(top + 3_600_000, T0), Some(top + 3_600_000));
    assert_eq!(s.timing.period_seconds(T0), Some(3600.0));
}

#[test]
fn every_form_of_the_documented_pattern_parses_and_backward_ranges_wrap() {
    for ok in [
        "0 * * * *",
        "*/15 9-17 * * 1-5",
        "59 23 31 12 7",
        "0,30 0 1,15 1-12 0",
        "*/999 * * * *",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
    ] {
        assert!(parse_cron(ok).is_ok(), "{ok}: {:?}", parse_cron(ok).err());
    }
    // A date that never comes parses, and has no next time.
    let never = Timing::Cron("0 0 31 2 *".into());
    let started = std::time::Instant::now();
    assert_eq!(never.next(0, 1_700_000_000_000), None);
    assert_eq!(never.period_seconds(1_700_000_000_000), None);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // 22:00 to 02:00 wraps through midnight.
    let night = Timing::Cron("0 22-2 * * *".into());
    let day = 1_700_006_400_000; // 2023-11-15T00:00:00Z
    assert_eq!(night.next(0, day - 1), Some(day));
    assert_eq!(night.next(0, day + 2 * 3_600_000), Some(day + 22 * 3_600_000));
}

#[test]
fn disabled_fires_nothing_and_re_enabling_rearms() {
    let mut s = every(10, CatchUp::Once);
    s.patch(
        Fields {
            enabled: Some(false),
            ..Default::default()
        },
        T0 + 5_000,
    );
    assert_eq!(s.due(T0 + 50_000, T0), None);
    assert_eq!(s.next_fire(T0 + 50_000, T0), None);
    s.patch(
        Fields {
            enabled: Some(true),
            ..Default::default()
        },
        T0 + 55_000,
    );
    assert_eq!(s.due(T0 + 60_000, T0), None, "the time it was off is not missed");
    assert_eq!(s.due(T0 + 65_000, T0), Some(T0 + 65_000));
}

#[test]
fn bad_fields_are_each_named() {
    let e = parse_fields(
        &json!({"name": "a b", "request": 3, "every_seconds": 0, "catch_up": "all", "x": 1}),
        true,
    )
    .unwrap_err();
    let locs: Vec<&str> = e.iter().map(|f| f.loc.as_str()).collect();
    for l in ["x", "name", "request", "every_seconds", "catch_up"] {
        assert!(locs.contains(&l), "{l} in {locs:?}");
    }
    let both = parse_fields(
        &json!({"name": "a", "request": {}, "every_seconds": 5, "cron": "* * * * *"}),
        true,
    )
    .unwrap_err();
    assert_eq!(both[0].loc, "cron");
    let none = parse_fields(&json!({"name": "a", "request": {}}), true).unwrap_err();
    assert_eq!(none[0].loc, "every_seconds");
    for bad in [
        "* * * *",
        "0 0 * * * *",
        "61 * * * *",
        "nonsense",
        "",
        "0  * * * *",
        " 0 * * * *",
        "05 * * * *",
        "*/0 * * * *",
        "0 0 0 * *",
        "0 0 * 13 *",
        "0 0 * * 8",
        "0 0 * * MON",
        "@reboot",
    ] {
        let e = parse_fields(&json!({"name": "a", "request": {}, "cron": bad}), true).unwrap_err();
        assert_eq!(e[0].loc, "cron", "{bad}");
    }
    // A PATCH needs nothing, renames nothing, and null is no timing.
    assert!(parse_fields(&json!({}), false).is_ok());
    assert_eq!(
        parse_fields(&json!({"name": "a"}), false).unwrap_err()[0].loc,
        "name"
    );
    assert_eq!(
        parse_fields(&json!({"cron": null}), false).unwrap_err()[0].loc,
        "cron"
    );
}
