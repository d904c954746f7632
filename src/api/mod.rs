//! The HTTP application: one file per resource, this one for what every
//! route shares (authentication, rate limits, request ids, CORS, metrics,
//! JSON bodies and the error envelope).

mod admin;
mod assets;
mod calibrations;
mod controls;
mod events;
mod experiments;
mod health;
mod qubits;
mod queue;
mod runs;
mod schedules;
mod targets;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tide::http::headers::HeaderValue;
use tide::{Middleware, Next, Request, Response, StatusCode};

use crate::error::{ApiError, FieldError};
use crate::State;

/// Longest accepted X-Session-Id and X-Request-Id (the OpenAPI document's
/// limits).
const MAX_SESSION_ID: usize = 255;
const MAX_REQUEST_ID: usize = 200;

/// The route template an endpoint answered for (the `route` metric label).
#[derive(Clone, Copy)]
struct Route(&'static str);

/// Builds the application: every route of docs/api.md behind the shared layers.
pub fn app(state: State) -> tide::Server<State> {
    let mut app = tide::with_state(state);
    app.with(Outer);
    app.at("/runs")
        .post(endpoint("/runs", runs::submit))
        .get(endpoint("/runs", runs::list));
    app.at("/runs/:id").get(endpoint("/runs/:id", runs::get));
    app.at("/runs/:id/cancel")
        .post(endpoint("/runs/:id/cancel", runs::cancel));
    // Without its own GET, /experiments/run would be read as
    // /experiments/:id with the id "run": a 405 says what it is.
    app.at("/experiments/run")
        .post(endpoint("/experiments/run", experiments::run_sync))
        .get(|_| async { Ok(Response::new(StatusCode::MethodNotAllowed)) });
    app.at("/experiments/recent")
        .get(endpoint("/experiments/recent", experiments::recent));
    app.at("/experiments/:id")
        .get(endpoint("/experiments/:id", experiments::get));
    app.at("/schedules")
        .post(endpoint("/schedules", schedules::create))
        .get(endpoint("/schedules", schedules::list));
    app.at("/schedules/:name")
        .get(endpoint("/schedules/:name", schedules::get))
        .patch(endpoint("/schedules/:name", schedules::patch))
        .delete(endpoint("/schedules/:name", schedules::delete));
    app.at("/hardware/targets")
        .get(endpoint("/hardware/targets", targets::list));
    app.at("/queue/pause")
        .post(endpoint("/queue/pause", queue::pause));
    app.at("/queue/resume")
        .post(endpoint("/queue/resume", queue::resume));
    app.at("/controls/profile")
        .get(endpoint("/controls/profile", controls::get))
        .post(endpoint("/controls/profile", controls::set));
    app.at("/health").get(endpoint("/health", health::health));
    app.at("/health/live").get(endpoint("/health/live", health::live));
    app.at("/health/ready")
        .get(endpoint("/health/ready", health::ready));
    app.at("/metrics").get(endpoint("/metrics", health::metrics));
    app.at("/events").get(endpoint("/events", events::stream));
    app.at("/telemetry/qubits")
        .get(endpoint("/telemetry/qubits", qubits::usage));
    app.at("/calibrations")
        .get(endpoint("/calibrations", calibrations::list));
    app.at("/hardware/targets/:id/calibration")
        .get(endpoint(
            "/hardware/targets/:id/calibration",
            calibrations::profile,
        ))
        .post(endpoint(
            "/hardware/targets/:id/calibration",
            calibrations::write_back,
        ));
    app.at("/admin/backup")
        .get(endpoint("/admin/backup", admin::backup));
    app.at("/openapi.json")
        .get(endpoint("/openapi.json", |_| assets::serve("openapi.json")));
    app.at("/docs")
        .get(endpoint("/docs", |_| assets::serve("docs.html")));
    app.at("/")
        .get(endpoint("/", |_| assets::serve("console/index.html")));
    app.at("/assets")
        .get(endpoint("/assets/*path", |_| assets::serve("")));
    app.at("/assets/")
        .get(endpoint("/assets/*path", |_| assets::serve("")));
    app.at("/assets/*path")
        .get(endpoint("/assets/*path", |req: Request<State>| {
            let path = req.param("path").unwrap_or("").to_string();
            assets::serve_owned(path)
        }));
    app
}

/// The methods a route of [`app`] answers, for the `Allow` header of a 405
/// (tide's router does not say). Kept beside the route table it mirrors;
/// tests/http.rs checks it route by route. The connection layer uses it
/// for methods tide cannot represent.
pub fn allowed_methods(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["runs"] | ["controls", "profile"] | ["schedules"] | ["hardware", "targets", _, "calibration"] => {
            "GET, HEAD, POST, OPTIONS"
        }
        ["schedules", _] => "GET, HEAD, PATCH, DELETE, OPTIONS",
        ["runs", _, "cancel"] | ["experiments", "run"] | ["queue", "pause" | "resume"] => "POST, OPTIONS",
        _ => "GET, HEAD, OPTIONS",
    }
}

/// The `/metrics`-only application of the optional second listener: the
/// same registry, nothing else.
pub fn metrics_app(state: State) -> tide::Server<State> {
    let mut app = tide::with_state(state);
    app.with(Outer);
    app.at("/metrics").get(endpoint("/metrics", health::metrics));
    app
}

/// Wraps a handler: authentication and rate limiting first, then the
/// handler, with every error rendered to the envelope and the route
/// template attached for the metrics layer.
fn endpoint<F, Fut>(route: &'static str, handler: F) -> impl tide::Endpoint<State>
where
    F: Fn(Request<State>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    move |req: Request<State>| {
        let admitted = admit(&req).map(|()| handler(req));
        async move {
            let outcome = match admitted {
                Ok(fut) => fut.await,
                Err(e) => Err(e),
            };
            let mut res = outcome.unwrap_or_else(ApiError::into_response);
            res.insert_ext(Route(route));
            Ok(res)
        }
    }
}

/// Header limits, authentication (unless the path is public) and the
/// per-session rate limit.
fn admit(req: &Request<State>) -> Result<(), ApiError> {
    // The OpenAPI document's limits: a longer id is refused, never cut,
    // so two long session ids can never share one budget.
    let too_long: Vec<FieldError> = [("X-Session-Id", MAX_SESSION_ID), ("X-Request-Id", MAX_REQUEST_ID)]
        .into_iter()
        .filter(|(name, max)| {
            req.header(*name)
                .is_some_and(|v| v.last().as_str().chars().count() > *max)
        })
        .map(|(name, max)| FieldError::new(name, format!("must be at most {max} characters")))
        .collect();
    if !too_long.is_empty() {
        return Err(ApiError::Invalid(too_long));
    }
    let state = req.state();
    let path = req.url().path();
    let public = state.config.public_paths.iter().any(|p| p == path);
    if !public && !state.key_digests.is_empty() {
        let key = presented_key(req).ok_or(ApiError::AuthRequired)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Constant time over every configured key: no early exit that
        // would tell a caller how close a guess was, or which key matched.
        let matched = state
            .key_digests
            .iter()
            .fold(0u8, |acc, d| acc | u8::from(ct_eq(d, &digest)));
        if matched == 0 {
            return Err(ApiError::AuthRequired);
        }
    }
    if !public {
        let session = session_of(req);
        if let Err(retry_after_s) = state.rate_limiter.check(&session, crate::clock::now_ms()) {
            metrics::counter!("synqc_budget_rejections_total", "reason" => "rate_limited").increment(1);
            return Err(ApiError::RateLimited { retry_after_s });
        }
    }
    Ok(())
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The API key a request presents, from X-Api-Key or a Bearer token.
fn presented_key(req: &Request<State>) -> Option<String> {
    if let Some(k) = req.header("X-Api-Key") {
        return Some(k.last().as_str().to_string());
    }
    req.header("Authorization").and_then(|h| {
        h.last()
            .as_str()
            .strip_prefix("Bearer ")
            .map(|k| k.trim().to_string())
    })
}

/// The budget session of a request (see [`crate::budget::session_id`]).
pub fn session_of(req: &Request<State>) -> String {
    let header = req.header("X-Session-Id").map(|h| h.last().as_str().to_string());
    crate::budget::session_id(header.as_deref(), presented_key(req).as_deref())
}

/// Reads a JSON body within max_request_bytes: 415 for another content
/// type, 413 when too large, 422 when it is not JSON.
pub async fn json_body(req: &mut Request<State>) -> Result<Value, ApiError> {
    if let Some(ct) = req.header("Content-Type") {
        let ct = ct.last().as_str().to_ascii_lowercase();
        if !ct.starts_with("application/json") && !ct.contains("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let limit = req.state().config.max_request_bytes;
    if req.len().is_some_and(|n| n as u64 > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let body = req.take_body();
    let mut bytes = Vec::new();
    // Chunked bodies carry no length: read one byte past the limit to know.
    let mut reader = smol::io::AsyncReadExt::take(body, limit + 1);
    smol::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
        .await
        .map_err(|e| ApiError::MalformedJson(format!("cannot read body: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(ApiError::TooLarge(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("empty body".into()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

/// A JSON response with a status.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut res = Response::new(status);
    match tide::Body::from_json(body) {
        Ok(b) => res.set_body(b),
        Err(e) => return ApiError::Internal(e.to_string()).into_response(),
    }
    res
}

/// Request headers a browser may send cross-origin: the API's own, plus
/// what consoles add (EventSource resends Last-Event-ID; some frameworks
/// add X-Requested-With and Cache-Control).
const CORS_ALLOW_HEADERS: &str = "Content-Type, Accept, X-Api-Key, Authorization, X-Session-Id, \
     Idempotency-Key, X-Request-Id, Last-Event-ID, Cache-Control, X-Requested-With";

/// Response headers a cross-origin script may read beyond the safelisted
/// ones: the request id for support, where a submitted run lives, when to
/// retry, and the legacy route's deprecation mark.
const CORS_EXPOSE_HEADERS: &str = "X-Request-Id, Location, Retry-After, Deprecation";

/// Request id, CORS, unmatched routes in the envelope, and the HTTP
/// metrics, around every request.
struct Outer;

#[tide::utils::async_trait]
impl Middleware<State> for Outer {
    async fn handle(&self, req: Request<State>, next: Next<'_, State>) -> tide::Result {
        let started = Instant::now();
        let method = req.method().to_string();
        let request_id = req
            .header("X-Request-Id")
            .map(|h| h.last().as_str().to_string())
            .filter(|s| !s.is_empty() && s.chars().count() <= MAX_REQUEST_ID)
            .unwrap_or_else(|| crate::budget::hex(&rand::random::<[u8; 16]>()));
        let origin = req.header("Origin").map(|h| h.last().as_str().to_string());
        let cfg = &req.state().config;
        let cors_on = !cfg.cors_allow_origins.is_empty();
        // Config check refuses credentials with "*", so an allowed origin
        // is an explicitly listed one whenever credentials are on.
        let credentials = cfg.cors_allow_credentials;
        let allowed_origin = origin.filter(|o| {
            let allowed = &cfg.cors_allow_origins;
            allowed.iter().any(|a| a == o || a == "*")
        });
        let preflight = req.method() == tide::http::Method::Options;
        let path = req.url().path().to_string();
        let mut res = if preflight {
            let mut r = Response::new(if allowed_origin.is_some() {
                StatusCode::NoContent
            } else {
                StatusCode::Forbidden
            });
            r.insert_ext(Route("OPTIONS"));
            r
        } else {
            next.run(req).await
        };
        let route = match res.ext::<Route>() {
            Some(r) => r.0,
            None => {
                // tide's own 404/405: same envelope as everything else.
                let status = res.status();
                let what = if status == StatusCode::MethodNotAllowed {
                    "Method not allowed here"
                } else {
                    "No such route"
                };
                res = ApiError::UnknownRoute(what.into()).into_response();
                res.set_status(status);
                if status == StatusCode::MethodNotAllowed {
                    res.insert_header("Allow", allowed_methods(&path));
                }
                "unmatched"
            }
        };
        if cors_on {
            // The answer depends on the Origin header: caches must key on it.
            res.append_header("Vary", "Origin");
        }
        if let Some(origin) = allowed_origin {
            // The caller's own origin, never "*": a credentialed fetch
            // refuses the wildcard.
            res.insert_header("Access-Control-Allow-Origin", origin);
            if credentials {
                res.insert_header("Access-Control-Allow-Credentials", "true");
            }
            if preflight {
                // The route's own methods: a schedule's PATCH and DELETE too.
                res.insert_header("Access-Control-Allow-Methods", allowed_methods(&path));
                res.insert_header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
                res.insert_header("Access-Control-Max-Age", "600");
            } else {
                res.insert_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
            }
        }
        if let Ok(v) = HeaderValue::from_bytes(request_id.into_bytes()) {
            res.insert_header("X-Request-Id", v);
        }
        let status = res.status().to_string();
        metrics::counter!("synqc_http_requests_total", "method" => method.clone(), "route" => route, "status" => status)
            .increment(1);
        metrics::histogram!("synqc_http_request_duration_seconds", "method" => method, "route" => route)
            .record(started.elapsed().as_secs_f64());
        Ok(res)
    }
}

/// Fixed one-minute windows of requests per budget session; 0 = off.
pub struct RateLimiter {
    per_minute: u64,
    windows: Mutex<HashMap<String, (u64, u64)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u64) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Ok, or the seconds until the session's window ends.
    pub fn check(&self, session: &str, now_ms: u64) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now_ms / 60_000;
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            // Bounded memory: forget every session not seen this minute.
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(session.to_string()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 >= self.per_minute {
            return Err(60 - (now_ms / 1000) % 60);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// A `hardware_target` query parameter: the target's id, or the field
/// error that names the ones there are.
fn target_param(targets: &crate::targets::Targets, given: &str) -> Result<String, FieldError> {
    match targets.get(given) {
        Some(t) => Ok(t.id.to_string()),
        None => Err(FieldError::new(
            "hardware_target",
            format!(
                "unknown target '{}'; must be one of {}",
                given.chars().take(64).collect::<String>(),
                targets.ids().join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_counts_per_session_and_minute() {
        let rl = RateLimiter::new(2);
        assert!(rl.check("a", 0).is_ok());
        assert!(rl.check("a", 1).is_ok());
        assert_eq!(rl.check("a", 30_000), Err(30));
        assert!(rl.check("b", 30_000).is_ok());
        assert!(rl.check("a", 60_000).is_ok());
        assert!(RateLimiter::new(0).check("a", 0).is_ok());
    }

    #[test]
    fn digests_compare_exactly() {
        let a: [u8; 32] = Sha256::digest(b"k1").into();
        let b: [u8; 32] = Sha256::digest(b"k2").into();
        assert!(ct_eq(&a, &a));
        assert!(!ct_eq(&a, &b));
    }
}
