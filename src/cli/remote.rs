//! The commands that talk to a running appliance over HTTP: healthcheck,
//! submit, status, pause, resume, loadtest and backup.

use serde_json::json;
use synqc::say;

use super::flags::{client_from, no_leftovers, number, parse_flags, take};

pub(super) fn healthcheck(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    no_leftovers(&flags, "healthcheck")?;
    client.timeout = std::time::Duration::from_secs(5);
    let reply = client.get("/health/ready")?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("not ready: {} {}", reply.status, reply.body.trim()))
    }
}

pub(super) fn submit(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    let preset = take(&mut flags, "preset").ok_or("--preset is required")?;
    let mut body = json!({ "preset": preset });
    for (flag, field) in [
        ("target", "hardware_target"),
        ("mode", "mode"),
        ("notes", "notes"),
        ("not-before", "not_before"),
    ] {
        if let Some(v) = take(&mut flags, flag) {
            body[field] = json!(v);
        }
    }
    for (flag, field) in [
        ("shots", "shot_budget"),
        ("seed", "seed"),
        ("priority", "priority"),
    ] {
        if let Some(v) = number::<u64>(&mut flags, flag)? {
            body[field] = json!(v);
        }
    }
    no_leftovers(&flags, "submit")?;
    let reply = client.post("/runs", &body)?;
    say!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 202 || reply.status == 200 {
        Ok(())
    } else {
        let detail = &reply.json()["detail"];
        Err(format!(
            "submit refused: HTTP {} {} {}",
            reply.status,
            detail["error_code"].as_str().unwrap_or(""),
            detail["error_message"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string())
    }
}

pub(super) fn status(args: &[String]) -> Result<(), String> {
    let (mut flags, words) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    no_leftovers(&flags, "status")?;
    let id = words.first().ok_or("status needs a run id")?;
    let reply = client.get(&format!("/runs/{id}"))?;
    say!(
        "{}",
        serde_json::to_string_pretty(&reply.json()).unwrap_or(reply.body.clone())
    );
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("HTTP {}", reply.status))
    }
}

/// `synqc pause` (`resume` false) or `synqc resume`: POST /queue/pause or
/// /queue/resume for --target, or the whole queue, and print the answer.
pub(super) fn pause(args: &[String], resume: bool) -> Result<(), String> {
    let name = if resume { "resume" } else { "pause" };
    let (mut flags, words) = parse_flags(args)?;
    let client = client_from(&mut flags)?;
    let mut body = json!({});
    if let Some(t) = take(&mut flags, "target") {
        body["hardware_target"] = json!(t);
    }
    if let Some(r) = take(&mut flags, "reason") {
        body["reason"] = json!(r);
    }
    no_leftovers(&flags, name)?;
    if let Some(extra) = words.first() {
        return Err(format!(
            "{name} takes no word '{extra}'; name a target with --target T (see synqc {name} --help)"
        ));
    }
    let reply = client.post(&format!("/queue/{name}"), &body)?;
    let answer = reply.json();
    say!(
        "{}",
        serde_json::to_string_pretty(&answer).unwrap_or(reply.body.clone())
    );
    if reply.status == 200 {
        Ok(())
    } else {
        let detail = &answer["detail"];
        Err(format!(
            "{name} refused: HTTP {} {} {}",
            reply.status,
            detail["error_code"].as_str().unwrap_or(""),
            detail["error_message"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string())
    }
}

pub(super) fn loadtest(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    // The load's session is its own unless named here: SYNQC_SESSION is
    // the operator's interactive session, which the load must not spend.
    let session = take(&mut flags, "session");
    let mut client = client_from(&mut flags)?;
    client.session = None;
    let mut o = synqc::client::loadtest::Options {
        session,
        ..Default::default()
    };
    if let Some(runs) = number::<usize>(&mut flags, "runs")? {
        if runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        o.runs = runs;
    }
    if let Some(c) = number::<usize>(&mut flags, "concurrency")? {
        o.concurrency = c.max(1);
    }
    if let Some(p) = take(&mut flags, "preset") {
        o.preset = p;
    }
    o.shots = number(&mut flags, "shots")?;
    if let Some(s) = number(&mut flags, "timeout-seconds")? {
        o.timeout = std::time::Duration::from_secs(s);
    }
    // The last of --strict / --no-strict wins.
    while let Some(i) = flags.iter().position(|(k, _)| k == "strict" || k == "no-strict") {
        o.strict = flags.remove(i).0 == "strict";
    }
    no_leftovers(&flags, "loadtest")?;
    synqc::client::loadtest::run(&client, &o)
}

pub(super) fn backup(args: &[String]) -> Result<(), String> {
    let (mut flags, _) = parse_flags(args)?;
    let mut client = client_from(&mut flags)?;
    let out = take(&mut flags, "out").ok_or("--out FILE is required")?;
    no_leftovers(&flags, "backup")?;
    client.timeout = std::time::Duration::from_secs(3600);
    let bytes = client.download("/admin/backup", std::path::Path::new(&out))?;
    // The server ends a complete backup with an end marker; check it here
    // so a cut stream is reported now, not at restore time.
    let tail = {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&out).map_err(|e| format!("{out}: {e}"))?;
        f.seek(SeekFrom::Start(bytes.saturating_sub(64 * 1024)))
            .map_err(|e| format!("{out}: {e}"))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf).map_err(|e| format!("{out}: {e}"))?;
        String::from_utf8_lossy(&buf).into_owned()
    };
    let last = tail.lines().last().unwrap_or("");
    if !last.starts_with("{\"end\"") {
        return Err(format!(
            "{out}: the backup stream was cut short ({bytes} bytes); try again"
        ));
    }
    say!("backup written to {out} ({bytes} bytes): {last}");
    Ok(())
}
