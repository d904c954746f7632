//! The JSON-lines protocol an executor speaks (docs/operations.md): the
//! lines synqc writes, and the checks an answer passes before its counts
//! are believed. Everything here is pure, so the checks are tested
//! without a child process.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::run::ErrorCode;

/// The protocol version synqc speaks in the hello handshake.
pub const PROTOCOL: u64 = 1;

/// One request: all of a run's circuits.
#[derive(Clone, Debug)]
pub struct ExecRequest {
    pub run_id: String,
    pub target: String,
    pub seed: u64,
    /// The target's noise profile, as the run's result reports it.
    pub noise_profile: Value,
    pub circuits: Vec<ExecCircuit>,
}

/// One circuit of a request.
#[derive(Clone, Debug)]
pub struct ExecCircuit {
    pub name: String,
    pub qasm: String,
    pub shots: u64,
    /// Sizes of the program's classical registers in declaration order:
    /// they fix the shape of every count key (last register first, one
    /// space between registers), which is how a key of the wrong width is
    /// caught. Not sent: the executor reads them from the program.
    pub clbit_registers: Vec<usize>,
}

/// What the executor said about itself in the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendInfo {
    pub name: String,
    pub version: String,
}

/// A request's answer once checked: counts in request order.
#[derive(Clone, Debug)]
pub struct ExecResponse {
    pub counts: Vec<BTreeMap<String, u64>>,
    /// Free form, as the executor returned it (null when it sent none).
    pub metadata: Value,
    pub backend: BackendInfo,
    /// From writing the request to reading its answer.
    pub duration: Duration,
}

/// Why a request brought no counts.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecFailure {
    /// The executor is down (or synqc is stopping): nothing was sent, so
    /// the run can wait for it rather than fail. The reason is a sentence.
    Unavailable(String),
    /// `cancelled()` turned true before an answer came.
    Cancelled,
    /// The attempt failed.
    Failed(ProviderFailure),
}

/// A failed attempt, as the run's error will carry it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderFailure {
    /// PROVIDER_ERROR, PROVIDER_CAPACITY or PROVIDER_CREDENTIALS.
    pub code: ErrorCode,
    /// A sentence saying what happened and what to do.
    pub message: String,
    /// Whether another attempt may succeed: true for a dead, hung or
    /// garbling executor (it is restarted), as the executor says for its
    /// own errors.
    pub retryable: bool,
    /// A `result` line with counts arrived, even if it was refused: the
    /// backend spent the shots.
    pub counts_returned: bool,
}

impl ProviderFailure {
    /// A PROVIDER_ERROR another attempt may cure.
    pub(super) fn provider_error(message: String, counts_returned: bool) -> ProviderFailure {
        ProviderFailure {
            code: ErrorCode::ProviderError,
            message,
            retryable: true,
            counts_returned,
        }
    }
}

/// The handshake line synqc writes.
pub(super) fn hello_line() -> String {
    json!({"op": "hello", "protocol": PROTOCOL}).to_string()
}

pub(super) fn ping_line(id: &str) -> String {
    json!({"op": "ping", "id": id}).to_string()
}

pub(super) fn run_line(id: &str, req: &ExecRequest) -> String {
    let circuits: Vec<Value> = req
        .circuits
        .iter()
        .map(|c| json!({"name": c.name, "qasm": c.qasm, "shots": c.shots}))
        .collect();
    json!({
        "op": "run",
        "id": id,
        "run_id": req.run_id,
        "target": req.target,
        "seed": req.seed,
        "noise_profile": req.noise_profile,
        "circuits": circuits,
    })
    .to_string()
}

/// The executor's hello, checked: its backend and capabilities.
pub(super) fn check_hello(answer: &Value) -> Result<(BackendInfo, Value), String> {
    let protocol = answer.get("protocol").and_then(Value::as_u64);
    if protocol != Some(PROTOCOL) {
        return Err(format!(
            "it answered the hello with protocol {}, and synqc speaks protocol {PROTOCOL}; \
             install an executor for protocol {PROTOCOL}",
            answer
                .get("protocol")
                .map_or("(none)".to_string(), Value::to_string)
        ));
    }
    let text = |key: &str| {
        answer
            .get("backend")
            .and_then(|b| b.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let Some(name) = text("name") else {
        return Err("its hello names no backend; it must answer backend.name (and backend.version)".into());
    };
    let backend = BackendInfo {
        name,
        version: text("version").unwrap_or_default(),
    };
    let capabilities = match answer.get("capabilities") {
        None | Some(Value::Null) => json!({}),
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err("its hello's capabilities are not a JSON object; fix the executor".into()),
    };
    Ok((backend, capabilities))
}

/// A `result` or `error` line for `req`, checked: the counts in request
/// order and the metadata, or why the attempt failed. `who` names the
/// executor in messages.
pub(super) fn check_answer(
    who: &str,
    req: &ExecRequest,
    answer: Value,
) -> Result<(Vec<BTreeMap<String, u64>>, Value), ProviderFailure> {
    match answer.get("op").and_then(Value::as_str) {
        Some("result") => check_result(who, req, answer),
        Some("error") => Err(executor_error(who, &answer)),
        op => Err(ProviderFailure::provider_error(
            format!(
                "{who} answered the request with op {}, not result or error; fix the executor",
                op.map_or("(none)".into(), |o| format!("'{o}'"))
            ),
            false,
        )),
    }
}

fn check_result(
    who: &str,
    req: &ExecRequest,
    answer: Value,
) -> Result<(Vec<BTreeMap<String, u64>>, Value), ProviderFailure> {
    #[derive(Deserialize)]
    struct Answer {
        results: Vec<CircuitResult>,
        #[serde(default)]
        metadata: Value,
    }
    #[derive(Deserialize)]
    struct CircuitResult {
        name: String,
        counts: BTreeMap<String, u64>,
    }
    let counts_returned = answer
        .get("results")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|c| c.get("counts").is_some()));
    let bad = |what: String| {
        ProviderFailure::provider_error(
            format!("{who} answered garbage: {what}; the attempt failed, check the executor"),
            counts_returned,
        )
    };
    let answer: Answer = serde_json::from_value(answer).map_err(|e| {
        bad(format!(
            "its result is not {{\"results\":[{{\"name\",\"counts\":{{bitstring: count}}}}]}} ({e})"
        ))
    })?;
    let mut by_name: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in answer.results {
        if !req.circuits.iter().any(|c| c.name == r.name) {
            return Err(bad(format!(
                "it returned circuit '{}', which was not sent",
                r.name
            )));
        }
        if by_name.insert(r.name.clone(), r.counts).is_some() {
            return Err(bad(format!("it returned circuit '{}' twice", r.name)));
        }
    }
    let mut counts = Vec::with_capacity(req.circuits.len());
    for c in &req.circuits {
        let Some(got) = by_name.remove(&c.name) else {
            return Err(bad(format!("it returned no counts for circuit '{}'", c.name)));
        };
        if let Some(key) = got.keys().find(|k| !key_fits(k, &c.clbit_registers)) {
            return Err(bad(format!(
                "circuit '{}' has count key '{}', not a bitstring of register widths {:?} \
                 (last register first, bit 0 rightmost)",
                c.name,
                key.escape_default(),
                c.clbit_registers.iter().rev().collect::<Vec<_>>()
            )));
        }
        let total = got.values().try_fold(0u64, |sum, n| sum.checked_add(*n));
        if total != Some(c.shots) {
            return Err(bad(format!(
                "circuit '{}' has counts summing to {}, and {} shots were asked",
                c.name,
                total.map_or("more than 2^64".into(), |t| t.to_string()),
                c.shots
            )));
        }
        counts.push(got);
    }
    Ok((counts, answer.metadata))
}

/// Whether `key` is a count key for these classical registers (sizes in
/// declaration order): one group of 0s and 1s per register, last
/// register first, single spaces between.
fn key_fits(key: &str, registers: &[usize]) -> bool {
    let groups: Vec<&str> = key.split(' ').collect();
    groups.len() == registers.len()
        && groups
            .iter()
            .zip(registers.iter().rev())
            .all(|(g, &width)| g.len() == width && g.bytes().all(|b| b == b'0' || b == b'1'))
}

/// The executor's own `error` answer, as a failure of the attempt.
fn executor_error(who: &str, answer: &Value) -> ProviderFailure {
    let error = answer.get("error");
    let field = |key: &str| error.and_then(|e| e.get(key));
    let message = field("message").and_then(Value::as_str).unwrap_or("(no message)");
    let named = field("code").and_then(Value::as_str).unwrap_or("(none)");
    let code = match named {
        "PROVIDER_ERROR" => Some(ErrorCode::ProviderError),
        "PROVIDER_CAPACITY" => Some(ErrorCode::ProviderCapacity),
        "PROVIDER_CREDENTIALS" => Some(ErrorCode::ProviderCredentials),
        _ => None,
    };
    let Some(code) = code else {
        return ProviderFailure::provider_error(
            format!(
                "{who} answered an error with code '{}', which is not PROVIDER_ERROR, \
                 PROVIDER_CAPACITY or PROVIDER_CREDENTIALS: {message}; fix the executor",
                named.escape_default()
            ),
            false,
        );
    };
    ProviderFailure {
        code,
        message: format!("{who} answered {code}: {message}. {}", code.hint()),
        retryable: field("retryable")
            .and_then(Value::as_bool)
            .unwrap_or(code.is_transient()),
        counts_returned: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ExecRequest {
        let circuit = |name: &str, shots, regs: &[usize]| ExecCircuit {
            name: name.into(),
            qasm: "OPENQASM 3.0;".into(),
            shots,
            clbit_registers: regs.to_vec(),
        };
        ExecRequest {
            run_id: "r1".into(),
            target: "ibm_quantum".into(),
            seed: 7,
            noise_profile: json!({"p1q": 0.001}),
            circuits: vec![circuit("a", 10, &[1]), circuit("b", 4, &[2, 1])],
        }
    }

    fn check(answer: Value) -> Result<(Vec<BTreeMap<String, u64>>, Value), ProviderFailure> {
        check_answer("The executor", &request(), answer)
    }

    fn garbage(answer: Value, says: &str) {
        let f = check(answer).unwrap_err();
        assert_eq!((f.code, f.retryable), (ErrorCode::ProviderError, true));
        assert!(f.message.contains(says), "{}", f.message);
    }

    #[test]
    fn the_run_line_carries_the_request_but_not_the_register_sizes() {
        let line: Value = serde_json::from_str(&run_line("q1", &request())).unwrap();
        assert_eq!(line["op"], "run");
        assert_eq!(line["id"], "q1");
        assert_eq!(line["run_id"], "r1");
        assert_eq!(line["seed"], 7);
        assert_eq!(line["noise_profile"]["p1q"], 0.001);
        assert_eq!(
            line["circuits"][1],
            json!({"name": "b", "qasm": "OPENQASM 3.0;", "shots": 4})
        );
    }

    #[test]
    fn a_good_result_comes_back_in_request_order() {
        let (counts, meta) = check(
            json!({"op": "result", "id": "q1", "metadata": {"job": 3}, "results": [
                {"name": "b", "counts": {"1 00": 1, "0 11": 3}},
                {"name": "a", "counts": {"0": 9, "1": 1}},
            ]}),
        )
        .unwrap();
        assert_eq!(counts[0], BTreeMap::from([("0".into(), 9), ("1".into(), 1)]));
        assert_eq!(
            counts[1],
            BTreeMap::from([("0 11".into(), 3), ("1 00".into(), 1)])
        );
        assert_eq!(meta, json!({"job": 3}));
    }

    #[test]
    fn each_kind_of_garbage_fails_the_attempt_with_provider_error() {
        let a = json!({"name": "a", "counts": {"0": 10}});
        garbage(
            json!({"op": "result", "results": [a]}),
            "no counts for circuit 'b'",
        );
        garbage(
            json!({"op": "result", "results": [a, {"name": "b", "counts": {"0 11": 3}}]}),
            "summing to 3, and 4",
        );
        garbage(
            json!({"op": "result", "results": [a, {"name": "b", "counts": {"011": 4}}]}),
            "count key '011'",
        );
        garbage(
            json!({"op": "result", "results": [a, {"name": "b", "counts": {"0 1": 4}}]}),
            "count key '0 1'",
        );
        garbage(
            json!({"op": "result", "results": [a, {"name": "b", "counts": {"0x3": 4}}]}),
            "count key '0x3'",
        );
        garbage(json!({"op": "result", "results": [a, a]}), "'a' twice");
        garbage(
            json!({"op": "result", "results": [a, {"name": "c", "counts": {}}]}),
            "'c', which was not sent",
        );
        garbage(
            json!({"op": "result", "results": [{"name": "a", "counts": {"0": -1}}]}),
            "is not",
        );
        garbage(
            json!({"op": "result", "results": [{"name": "a", "counts": {"0": 2.5}}]}),
            "is not",
        );
        garbage(json!({"op": "result"}), "is not");
        garbage(json!({"op": "pong"}), "op 'pong', not result");
        garbage(
            json!({"op": "error", "error": {"code": "TIMEOUT", "message": "m"}}),
            "code 'TIMEOUT'",
        );
        let f = check(json!({"op": "result", "results": [{"name": "a", "counts": {"0": 1}}]})).unwrap_err();
        assert!(f.counts_returned);
    }

    #[test]
    fn an_executor_error_keeps_its_code_and_retry_flag() {
        let f = check(json!({"op": "error", "id": "q1", "error": {"code": "PROVIDER_CAPACITY", "message": "queue full", "retryable": false}})).unwrap_err();
        assert_eq!(
            (f.code, f.retryable, f.counts_returned),
            (ErrorCode::ProviderCapacity, false, false)
        );
        assert!(f.message.contains("queue full"), "{}", f.message);
        let f = check(
            json!({"op": "error", "error": {"code": "PROVIDER_CREDENTIALS", "message": "token expired"}}),
        )
        .unwrap_err();
        assert_eq!((f.code, f.retryable), (ErrorCode::ProviderCredentials, false));
    }

    #[test]
    fn the_hello_must_speak_protocol_one_and_name_its_backend() {
        let (b, caps) = check_hello(&json!({"op": "hello", "protocol": 1, "backend": {"name": "aer_simulator", "version": "0.18.2"}, "capabilities": {"max_qubits": 30}})).unwrap();
        assert_eq!(
            b,
            BackendInfo {
                name: "aer_simulator".into(),
                version: "0.18.2".into()
            }
        );
        assert_eq!(caps["max_qubits"], 30);
        assert!(check_hello(&json!({"protocol": 2, "backend": {"name": "x"}}))
            .unwrap_err()
            .contains("protocol 2"));
        assert!(check_hello(&json!({"protocol": 1}))
            .unwrap_err()
            .contains("names no backend"));
        assert!(check_hello(&json!({"protocol": 1, "backend": {"name": "x"}, "capabilities": []})).is_err());
    }
}
