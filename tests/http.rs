//! HTTP/1.1 as real clients speak it, over raw sockets against the real
//! binary: pipelining, HTTP/1.0, bad heads answered (not dropped), and
//! connections as a bounded resource.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// One response as read off the wire.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["detail"]["error_code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    c
}

/// Reads `n` responses (each with a Content-Length, or closed by the
/// server), then whether the server closed the connection after them.
fn read_responses(c: &mut TcpStream, n: usize) -> (Vec<Raw>, bool) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut closed = false;
    let mut chunk = [0u8; 65536];
    loop {
        // Parse as many complete responses as the buffer holds.
        while out.len() < n {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                break;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|s| s.parse().ok())
                .expect("status line");
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let len = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse::<usize>().ok());
            let body_start = end + 4;
            let body_len = match len {
                Some(l) => l,
                None if status < 200 || status == 204 => 0,
                None if closed => buf.len() - body_start,
                None => break,
            };
            if buf.len() < body_start + body_len {
                break;
            }
            let body = buf[body_start..body_start + body_len].to_vec();
            buf.drain(..body_start + body_len);
            out.push(Raw {
                status,
                headers,
                body,
            });
        }
        if out.len() == n && !buf.is_empty() {
            panic!(
                "unexpected bytes after {n} responses: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
        if closed {
            return (out, closed);
        }
        match c.read(&mut chunk) {
            Ok(0) => closed = true,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if out.len() == n
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
            {
                return (out, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed = true,
            Err(e) => panic!("read after {} of {n} responses: {e}", out.len()),
        }
        if out.len() == n && !closed {
            // Did the server close right after? Look briefly.
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
        }
    }
}

fn post_head(body: &str, extra: &str) -> String {
    format!(
        "POST /runs HTTP/1.1\r\nHost: synqc\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

#[test]
fn pipelined_requests_are_each_answered_in_order() {
    let s = Server::start(&["--workers", "0"]);
    let mut c = connect(&s);
    let modes = ["explore", "calibrate", "prod"];
    let batch: String = modes
        .iter()
        .map(|m| post_head(&format!(r#"{{"preset":"hello_quantum_sim","mode":"{m}"}}"#), ""))
        .collect();
    c.write_all(batch.as_bytes()).expect("write");
    let (answers, closed) = read_responses(&mut c, 3);
    assert!(!closed, "a keep-alive connection stays open");
    let ids: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
            r.json()["id"].as_str().expect("id").to_string()
        })
        .collect();
    // In order: each answer names the run of its own request.
    for (id, mode) in ids.iter().zip(modes) {
        assert_eq!(s.get(&format!("/runs/{id}")).json()["mode"], mode);
    }
    assert_eq!(s.health()["queue"]["queued"], 3);

    let gets: String = (0..11)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/health/live".to_string()
            } else {
                format!("/runs/{}", ids[i % 3])
            };
            format!("GET {path} HTTP/1.1\r\nHost: synqc\r\n\r\n")
        })
        .collect();
    c.write_all(gets.as_bytes()).expect("write");
    let (answers, _) = read_responses(&mut c, 11);
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200);
        if i % 2 == 0 {
            assert_eq!(r.body, b"ok");
        } else {
            assert_eq!(r.json()["id"], ids[i % 3].as_str());
        }
    }
}

#[test]
fn http_1_0_and_a_missing_host_get_answers() {
    let s = Server::start(&["--workers", "0"]);
    let mut c = connect(&s);
    c.write_all(b"GET /health/live HTTP/1.0\r\n\r\n").expect("write");
    let (r, closed) = read_responses(&mut c, 1);
    assert_eq!((r[0].status, r[0].body.as_slice()), (200, &b"ok"[..]));
    assert!(closed, "HTTP/1.0 without keep-alive is closed after the answer");

    let mut c = connect(&s);
    c.write_all(
        b"GET /health/live HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /health/ready HTTP/1.0\r\n\r\n",
    )
    .expect("write");
    let (r, closed) = read_responses(&mut c, 2);
    assert_eq!(r[0].header("connection"), Some("keep-alive"));
    assert_eq!(r[1].status, 200);
    assert!(closed);

    let mut c = connect(&s);
    c.write_all(b"GET /health HTTP/1.1\r\n\r\n").expect("write");
    let (r, _) = read_responses(&mut c, 1);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].json()["status"], "ok");
}

#[test]
fn bad_heads_get_a_status_and_the_envelope() {
    let s = Server::start(&["--workers", "0"]);
    let cases: Vec<(String, u16)> = vec![
        (format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(9000)), 414),
        (format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n", "y".repeat(40_000)), 431),
        (format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X-N: 1\r\n".repeat(150)), 431),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n".to_string(), 400),
        (
            "POST /runs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{\"a\":1}".to_string(),
            400,
        ),
        (
            "POST /runs HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_string(),
            400,
        ),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n".to_string(), 505),
        ("BREW /runs HTTP/1.1\r\nHost: a\r\n\r\n".to_string(), 405),
    ];
    for (req, want) in cases {
        let mut c = connect(&s);
        c.write_all(req.as_bytes()).expect("write");
        let (r, closed) = read_responses(&mut c, 1);
        let what = req.chars().take(60).collect::<String>();
        assert_eq!(
            r[0].status,
            want,
            "{what:?}: {}",
            String::from_utf8_lossy(&r[0].body)
        );
        assert_eq!(r[0].code(), "INVALID_REQUEST", "{what:?}");
        assert!(r[0].json()["detail"]["action_hint"]
            .as_str()
            .is_some_and(|h| !h.is_empty()));
        assert!(closed, "{what:?}: closed after a bad head");
        assert!(r[0].header("X-Request-Id").is_some(), "{what:?}: no request id");
        if want == 405 {
            assert_eq!(r[0].header("Allow"), Some("GET, HEAD, POST, OPTIONS"));
        }
    }
    // Nothing of it was stored, and the server still answers.
    assert_eq!(s.health()["queue"]["total"], 0);
}

#[test]
fn chunked_bodies_and_expect_continue_are_read() {
    let s = Server::start(&["--workers", "0"]);
    let mut c = connect(&s);
    let body = r#"{"preset":"hello_quantum_sim","notes":"chunked"}"#;
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST /runs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
        a.len(),
        b.len()
    );
    c.write_all(req.as_bytes()).expect("write");
    let (r, _) = read_responses(&mut c, 1);
    assert_eq!(r[0].status, 202, "{}", String::from_utf8_lossy(&r[0].body));

    // Expect: 100-continue: the interim answer first, then the body.
    let mut c = connect(&s);
    let body = r#"{"preset":"hello_quantum_sim"}"#;
    c.write_all(
        format!(
            "POST /runs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .expect("write");
    let (r, _) = read_responses(&mut c, 1);
    assert_eq!(r[0].status, 100);
    c.write_all(body.as_bytes()).expect("write");
    let (r, _) = read_responses(&mut c, 1);
    assert_eq!(r[0].status, 202);

    // Over the body limit: 413 before the body is read.
    let mut c = connect(&s);
    c.write_all(b"POST /runs HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n")
        .expect("write");
    let (r, closed) = read_responses(&mut c, 1);
    assert_eq!(r[0].status, 413);
    assert!(closed);
    assert_eq!(s.health()["queue"]["queued"], 2);
}

#[test]
fn slow_and_idle_connections_are_closed_by_their_deadlines() {
    let s = Server::start(&[
        "--workers",
        "0",
        "--header-timeout-seconds",
        "1",
        "--idle-timeout-seconds",
        "2",
    ]);
    // A head that never ends.
    let mut slow = connect(&s);
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n")
        .expect("write");
    // A keep-alive connection after one answer.
    let mut idle = connect(&s);
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    let (r, _) = read_responses(&mut idle, 1);
    assert_eq!(r[0].status, 200);
    let began = Instant::now();
    for (c, within) in [
        (&mut slow, Duration::from_secs(5)),
        (&mut idle, Duration::from_secs(6)),
    ] {
        c.set_read_timeout(Some(within)).expect("timeout");
        let mut b = [0u8; 64];
        let n = c.read(&mut b).unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
    }
    assert!(began.elapsed() < Duration::from_secs(6));
}

#[test]
fn idle_sockets_past_the_fd_limit_never_lock_out_health() {
    // 256 descriptors: the connection cap comes out below that, and 400
    // idle sockets are more than the process could hold.
    let s = Server::start_wrapped(&["prlimit", "--nofile=256:256", "--"], &["--workers", "1"]);
    let mut idle = Vec::new();
    for _ in 0..400 {
        match TcpStream::connect(("127.0.0.1", s.port)) {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connect: {e}"),
        }
    }
    for _ in 0..5 {
        let began = Instant::now();
        let h = s.get("/health");
        assert_eq!(h.status, 200, "{}", h.body);
        assert!(
            began.elapsed() < Duration::from_secs(3),
            "/health took {:?}",
            began.elapsed()
        );
        let id = s.submit(hello());
        assert_eq!(s.wait_final(&id, Duration::from_secs(20))["status"], "succeeded");
    }
    // The oldest idle sockets were the ones let go.
    let mut shed = 0;
    for c in idle.iter_mut().take(100) {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut b = [0u8; 8];
        if matches!(c.read(&mut b), Ok(0) | Err(_)) {
            shed += 1;
        }
    }
    assert!(shed > 0, "no idle socket was shed");
}

#[test]
fn a_405_says_what_is_allowed_and_header_limits_hold() {
    // A worker, so that the legacy synchronous route can answer.
    let s = Server::start(&["--workers", "1"]);
    for (method, path, allow) in [
        ("DELETE", "/runs", "GET, HEAD, POST, OPTIONS"),
        ("PUT", "/controls/profile", "GET, HEAD, POST, OPTIONS"),
        (
            "GET",
            "/runs/0190a0a0-0000-7000-8000-000000000000/cancel",
            "POST, OPTIONS",
        ),
        ("GET", "/experiments/run", "POST, OPTIONS"),
        ("POST", "/health", "GET, HEAD, OPTIONS"),
        (
            "POST",
            "/runs/0190a0a0-0000-7000-8000-000000000000",
            "GET, HEAD, OPTIONS",
        ),
        ("POST", "/telemetry/qubits", "GET, HEAD, OPTIONS"),
        ("POST", "/calibrations", "GET, HEAD, OPTIONS"),
        (
            "DELETE",
            "/hardware/targets/sim_local/calibration",
            "GET, HEAD, POST, OPTIONS",
        ),
    ] {
        let r = s.send(method, path, None, &[]);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_eq!(r.header("Allow"), Some(allow), "{method} {path}");
        // What Allow lists is really served there (not a 405).
        let first = allow.split(", ").next().expect("a method");
        let body = serde_json::json!({"preset": "hello_quantum_sim"});
        let again = s.send(first, path, (first == "POST").then_some(&body), &[]);
        assert_ne!(again.status, 405, "{first} {path}");
    }

    let stored = s.health()["queue"]["total"].clone();
    let long = |n: usize| "s".repeat(n);
    let ok = s.send(
        "GET",
        "/runs",
        None,
        &[("X-Session-Id", &long(255)), ("X-Request-Id", &long(200))],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("X-Request-Id"), Some(long(200).as_str()));
    for (name, n) in [("X-Session-Id", 256), ("X-Request-Id", 201)] {
        let r = s.send("POST", "/runs", Some(&hello()), &[(name, &long(n))]);
        assert_eq!(
            (r.status, code(&r).as_str()),
            (422, "INVALID_REQUEST"),
            "{name}: {}",
            r.body
        );
        assert_eq!(r.json()["detail"]["error_detail"]["fields"][0]["loc"], name);
        // A fresh id stands in for the refused one.
        assert!(r.header("X-Request-Id").is_some_and(|id| id.len() == 32));
    }
    assert_eq!(s.health()["queue"]["total"], stored, "nothing was stored");
}
