//! HTTP/1.1 as clients speak it, read by synqc itself (httparse) and
//! handed to tide one request at a time. async-h1's server, which this
//! replaces, answered only the first request of a pipelined batch, gave an
//! HTTP/1.0 client nothing and closed the connection on a head it could
//! not parse; here every request is answered in order, a bad head gets a
//! status and the error envelope, and every wait has a deadline.
//!
//! One file, though long: a connection's life (a head read within its
//! deadline, a body framed by Content-Length or chunks, the answer written
//! whole or streamed) is one sequence whose steps hand each other the same
//! buffer; its unit tests close the file.

use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use smol::future::FutureExt;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Timer;
use tide::http::headers::{HeaderName, HeaderValue, CONTENT_TYPE};
use tide::http::{Body, Method, Request, Response, StatusCode, Url, Version};

use super::connections::{Phase, Ticket};
use crate::error::ApiError;
use crate::State;

/// A request line longer than this is 414.
const MAX_REQUEST_LINE: usize = 8 * 1024;
/// A head (request line and headers) longer than this is 431.
const MAX_HEAD: usize = 32 * 1024;
/// More header lines than this is 431.
const MAX_HEADERS: usize = 100;
/// A chunk-size or trailer line longer than this is 400.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const READ_SIZE: usize = 16 * 1024;

/// What the configuration sets for every connection.
pub(super) struct Limits {
    pub max_body: u64,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Why reading a request stopped.
enum Stop {
    /// The peer closed, went quiet past a deadline, or was shed: close
    /// without a word.
    Quiet,
    /// The request cannot be served: answer this, then close.
    Reject(Box<tide::Response>),
}

impl From<io::Error> for Stop {
    fn from(_: io::Error) -> Stop {
        Stop::Quiet
    }
}

fn reject(status: StatusCode, message: impl Into<String>, hint: &'static str) -> Stop {
    Stop::Reject(Box::new(
        ApiError::Protocol {
            status,
            message: message.into(),
            hint,
        }
        .into_response(),
    ))
}

/// A method http-types does not know (QUERY, PATCH-like extensions) is
/// still a method: 405 with what the route allows, as for a known one.
fn not_allowed(method: &str, target: &str) -> Stop {
    let path = target.split('?').next().unwrap_or("/");
    let mut res = ApiError::Protocol {
        status: StatusCode::MethodNotAllowed,
        message: format!("Method {} is not allowed here.", clip(method)),
        hint: "Use one of the methods the Allow header lists.",
    }
    .into_response();
    res.insert_header("Allow", crate::api::allowed_methods(path));
    Stop::Reject(Box::new(res))
}

/// One parsed request, ready for tide.
struct Parsed {
    request: Request,
    keep_alive: bool,
    head_only: bool,
}

/// Serves one connection until the peer closes, a deadline passes, the
/// registry sheds it, or a response says `Connection: close`.
pub(super) async fn serve(
    mut stream: TcpStream,
    peer: Option<SocketAddr>,
    local: SocketAddr,
    app: tide::Server<State>,
    limits: &Limits,
    ticket: Ticket,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        ticket.set(Phase::Idle);
        let parsed = read_request(&mut stream, &mut buf, peer, local, limits, &ticket).await;
        let parsed = match parsed {
            Ok(p) => p,
            Err(Stop::Quiet) => return,
            Err(Stop::Reject(res)) => return answer_and_close(stream, *res).await,
        };
        // A keep-alive client whose next request is always already there
        // never makes this task wait for I/O, and smol has no budget that
        // would make it yield: without this, a few busy connections can
        // hold every executor thread. Once per request, connections take
        // turns.
        smol::future::yield_now().await;
        let http10 = parsed.request.version() == Some(Version::Http1_0);
        let res: Response = match app.respond(parsed.request).await {
            Ok(r) => r,
            Err(e) => ApiError::Internal(e.to_string()).into_response().into(),
        };
        let keep_alive = parsed.keep_alive
            && !res
                .header("Connection")
                .is_some_and(|v| has_token(v.as_str(), "close"))
            && !app.state().lifecycle.is_draining()
            && !ticket.is_shed();
        match write_response(&mut stream, res, parsed.head_only, !keep_alive, http10).await {
            Ok(true) if keep_alive => {}
            _ => return,
        }
    }
}

/// Answers `res` (an error envelope) with `Connection: close` and closes.
pub(super) async fn answer_and_close(mut stream: TcpStream, mut res: tide::Response) {
    // Every response carries a request id, even one tide never saw.
    res.insert_header("X-Request-Id", crate::budget::hex(&rand::random::<[u8; 16]>()));
    let _ = write_response(&mut stream, res.into(), false, true, false).await;
}

/// Runs `fut` until `deadline`; `None` when the deadline came first.
async fn by<T>(deadline: Instant, fut: impl std::future::Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            Timer::at(deadline).await;
            None
        })
        .await
}

/// Appends what the socket has to `buf`; `Quiet` at end of stream or past
/// the deadline.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Result<(), Stop> {
    let start = buf.len();
    buf.resize(start + READ_SIZE, 0);
    let read = by(deadline, stream.read(&mut buf[start..])).await;
    let n = match read {
        Some(Ok(n)) => n,
        Some(Err(_)) | None => 0,
    };
    buf.truncate(start + n);
    if n == 0 {
        return Err(Stop::Quiet);
    }
    Ok(())
}

async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    peer: Option<SocketAddr>,
    local: SocketAddr,
    limits: &Limits,
    ticket: &Ticket,
) -> Result<Parsed, Stop> {
    if buf.is_empty() {
        // Idle: the only wait the registry may cut short.
        let deadline = Instant::now() + limits.idle_timeout;
        let first = fill(stream, buf, deadline).or(async {
            let _ = ticket.shed.recv().await;
            Err(Stop::Quiet)
        });
        first.await?;
    }
    ticket.set(Phase::Head);
    let deadline = Instant::now() + limits.header_timeout;
    let mut scanned = 0;
    let head_len = loop {
        if let Some(end) = head_end(buf, scanned) {
            break end;
        }
        scanned = buf.len().saturating_sub(3);
        check_head_size(buf)?;
        fill(stream, buf, deadline).await?;
    };
    check_head_size(&buf[..head_len])?;
    if ticket.is_shed() {
        return Err(Stop::Quiet);
    }
    ticket.set(Phase::Busy);
    let (mut request, keep_alive, framing) = parse_head(&buf[..head_len], peer, local)?;
    buf.drain(..head_len);
    let head_only = request.method() == Method::Head;

    let body = match framing {
        Framing::None => None,
        Framing::Length(n) => {
            if n > limits.max_body {
                return Err(Stop::Reject(Box::new(
                    ApiError::TooLarge(limits.max_body).into_response(),
                )));
            }
            continue_if_expected(stream, &request, buf.len() as u64 >= n).await?;
            let n = n as usize;
            while buf.len() < n {
                fill(stream, buf, Instant::now() + limits.idle_timeout).await?;
            }
            Some(buf.drain(..n).collect::<Vec<u8>>())
        }
        Framing::Chunked => {
            continue_if_expected(stream, &request, !buf.is_empty()).await?;
            Some(read_chunked(stream, buf, limits).await?)
        }
    };
    let client_type = request.header(CONTENT_TYPE).is_some();
    if let Some(bytes) = body {
        request.set_body(Body::from_bytes(bytes));
        // http-types gives a body without a type application/octet-stream;
        // a client that named no type named none, and the JSON routes
        // take that as JSON.
        if !client_type {
            request.remove_header(CONTENT_TYPE);
        }
    }
    Ok(Parsed {
        request,
        keep_alive,
        head_only,
    })
}

/// The end of the head (after its blank line) if `buf` holds all of it;
/// bytes before `from` were searched already.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    // Blank lines before a request line are skipped (RFC 9112 2.2), so the
    // search starts at the request line.
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let from = from.max(start);
    (from..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// 414 for a request line past its limit, 431 for a head past its own.
fn check_head_size(buf: &[u8]) -> Result<(), Stop> {
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(0);
    let line_len = buf[start..]
        .iter()
        .position(|b| *b == b'\n')
        .unwrap_or(buf.len() - start);
    if line_len > MAX_REQUEST_LINE {
        return Err(reject(
            StatusCode::UriTooLong,
            format!("The request line is longer than {MAX_REQUEST_LINE} bytes."),
            "Send a shorter URL; put large inputs in a JSON body.",
        ));
    }
    if buf.len() > MAX_HEAD {
        return Err(too_many_headers());
    }
    Ok(())
}

fn too_many_headers() -> Stop {
    reject(
        StatusCode::RequestHeaderFieldsTooLarge,
        format!("The request's headers exceed {MAX_HEAD} bytes or {MAX_HEADERS} lines."),
        "Send fewer or shorter headers.",
    )
}

/// How the body is delimited.
#[derive(Debug, PartialEq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn bad_request(message: impl Into<String>) -> Stop {
    reject(
        StatusCode::BadRequest,
        message,
        "Send a well-formed HTTP/1.1 request (RFC 9112).",
    )
}

/// Turns a complete head into a request for tide, with whether the
/// connection may stay open and how the body is framed.
fn parse_head(
    head: &[u8],
    peer: Option<SocketAddr>,
    local: SocketAddr,
) -> Result<(Request, bool, Framing), Stop> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad_request("The request head is incomplete.")),
        Err(httparse::Error::TooManyHeaders) => return Err(too_many_headers()),
        Err(httparse::Error::Version) => {
            return Err(reject(
                StatusCode::HttpVersionNotSupported,
                "Only HTTP/1.0 and HTTP/1.1 are served.",
                "Speak HTTP/1.1 to synqc.",
            ))
        }
        Err(e) => return Err(bad_request(format!("The request head is malformed: {e}."))),
    }
    let http10 = parsed.version == Some(0);
    let method_text = parsed.method.unwrap_or_default();
    let target = parsed.path.unwrap_or("/");
    let method = Method::from_str(method_text).map_err(|_| not_allowed(method_text, target))?;
    let mut host = None;
    let mut lengths: Vec<&str> = Vec::new();
    let mut transfer_encoding: Option<String> = None;
    let mut connection = String::new();
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| bad_request(format!("Header {} is not ASCII.", h.name)))?;
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err(bad_request("The request has more than one Host header."));
            }
            host = Some(value.trim());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            lengths.extend(value.split(',').map(str::trim));
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let te = transfer_encoding.get_or_insert_with(String::new);
            if !te.is_empty() {
                te.push(',');
            }
            te.push_str(value);
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection.push_str(value);
            connection.push(',');
        }
    }
    let url = request_url(target, host, local)?;
    let mut request = Request::new(method, url);
    request.set_version(Some(if http10 {
        Version::Http1_0
    } else {
        Version::Http1_1
    }));
    request.set_peer_addr(peer);
    request.set_local_addr(Some(local));
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes().to_vec())
            .map_err(|_| bad_request(format!("Header name {} is invalid.", h.name)))?;
        let value = HeaderValue::from_bytes(h.value.to_vec())
            .map_err(|_| bad_request(format!("Header {} has an invalid value.", h.name)))?;
        request.append_header(name, value);
    }
    let framing = framing(&lengths, transfer_encoding.as_deref(), http10)?;
    let keep_alive = if http10 {
        has_token(&connection, "keep-alive")
    } else {
        !has_token(&connection, "close")
    };
    Ok((request, keep_alive, framing))
}

/// The request's URL: an absolute target as sent, else the Host header's
/// authority, else (HTTP/1.0, or a client that left Host out) the address
/// the request arrived on.
fn request_url(target: &str, host: Option<&str>, local: SocketAddr) -> Result<Url, Stop> {
    let bad = || {
        bad_request(format!(
            "The request target '{}' is not a valid URL path.",
            clip(target)
        ))
    };
    if target.starts_with("http://") || target.starts_with("https://") {
        return Url::parse(target).map_err(|_| bad());
    }
    if !target.starts_with('/') && target != "*" {
        return Err(bad());
    }
    let authority = match host.filter(|h| !h.is_empty()) {
        Some(h) => h.to_string(),
        None => local.to_string(),
    };
    let base = Url::parse(&format!("http://{authority}/")).map_err(|_| {
        bad_request(format!(
            "The Host header '{}' is not a valid authority.",
            clip(&authority)
        ))
    })?;
    let path = if target == "*" { "/" } else { target };
    base.join(path).map_err(|_| bad())
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Content-Length and Transfer-Encoding, checked the way RFC 9112 6.3
/// asks, so that no proxy in front can read a body differently.
fn framing(lengths: &[&str], transfer_encoding: Option<&str>, http10: bool) -> Result<Framing, Stop> {
    if let Some(te) = transfer_encoding {
        if http10 {
            return Err(bad_request("Transfer-Encoding is not part of HTTP/1.0."));
        }
        if !lengths.is_empty() {
            return Err(bad_request(
                "The request has both Content-Length and Transfer-Encoding.",
            ));
        }
        let codings: Vec<&str> = te.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
        return match codings.as_slice() {
            [only] if only.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(reject(
                StatusCode::NotImplemented,
                format!("Transfer-Encoding '{}' is not supported.", clip(te)),
                "Send the body with Content-Length, or chunked alone.",
            )),
        };
    }
    let mut length: Option<u64> = None;
    for l in lengths {
        let n = l
            .parse::<u64>()
            .ok()
            .filter(|_| l.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad_request(format!("Content-Length '{}' is not a number.", clip(l))))?;
        if length.is_some_and(|m| m != n) {
            return Err(bad_request("The request has Content-Length headers that differ."));
        }
        length = Some(n);
    }
    Ok(match length {
        None | Some(0) => Framing::None,
        Some(n) => Framing::Length(n),
    })
}

/// Whether a comma-separated header value holds `token`.
fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Sends `100 Continue` to a client that waits for it before its body.
async fn continue_if_expected(
    stream: &mut TcpStream,
    request: &Request,
    body_here: bool,
) -> Result<(), Stop> {
    let expects = request
        .header("Expect")
        .is_some_and(|v| v.as_str().eq_ignore_ascii_case("100-continue"));
    if expects && !body_here && request.version() == Some(Version::Http1_1) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    Ok(())
}

/// Reads a chunked body (RFC 9112 7.1) into memory, within the body limit;
/// trailers are read and dropped.
async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: &Limits) -> Result<Vec<u8>, Stop> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf, limits).await?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.is_empty() && size_text.len() <= 16)
            .ok_or_else(|| bad_request(format!("Chunk size '{}' is not hexadecimal.", clip(size_text))))?;
        if size == 0 {
            // Trailer lines until the blank one.
            while !read_line(stream, buf, limits).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() as u64 + size > limits.max_body {
            return Err(Stop::Reject(Box::new(
                ApiError::TooLarge(limits.max_body).into_response(),
            )));
        }
        let size = size as usize;
        while buf.len() < size + 2 {
            fill(stream, buf, Instant::now() + limits.idle_timeout).await?;
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(bad_request("A chunk does not end with CRLF."));
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// One CRLF-terminated line of a chunked body, without its end.
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: &Limits) -> Result<String, Stop> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8(line).map_err(|_| bad_request("A chunk line is not ASCII."))?;
            return Ok(line.trim_end_matches(['\r', '\n']).to_string());
        }
        if buf.len() > MAX_CHUNK_LINE {
            return Err(bad_request("A chunk-size or trailer line is too long."));
        }
        fill(stream, buf, Instant::now() + limits.idle_timeout).await?;
    }
}

/// Writes `res`; a body of known length goes out with its head in one
/// write, any other is sent chunked (HTTP/1.1) or until close (HTTP/1.0),
/// each piece as it comes, so the event stream flows. `Ok(false)` when the
/// connection cannot carry another response.
async fn write_response(
    stream: &mut TcpStream,
    mut res: Response,
    head_only: bool,
    close: bool,
    http10: bool,
) -> io::Result<bool> {
    let status = res.status();
    let mut body = res.take_body();
    let no_body =
        status.is_informational() || status == StatusCode::NoContent || status == StatusCode::NotModified;
    let length = if no_body { Some(0) } else { body.len() };
    let chunked = length.is_none() && !http10;
    let close = close || (length.is_none() && http10);

    let mut out = Vec::with_capacity(256 + length.unwrap_or(0));
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", u16::from(status), status.canonical_reason()).as_bytes(),
    );
    let mut headers: Vec<_> = res.iter().collect();
    headers.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (name, values) in headers {
        let n = name.as_str();
        if n.eq_ignore_ascii_case("content-length")
            || n.eq_ignore_ascii_case("transfer-encoding")
            || n.eq_ignore_ascii_case("connection")
            || n.eq_ignore_ascii_case("date")
        {
            continue;
        }
        for v in values.iter() {
            out.extend_from_slice(format!("{n}: {}\r\n", v.as_str()).as_bytes());
        }
    }
    let now = crate::clock::now_ms() / 1000;
    out.extend_from_slice(format!("date: {}\r\n", crate::clock::http_date(now)).as_bytes());
    match length {
        Some(n) if !no_body || status == StatusCode::NotModified => {
            out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes())
        }
        Some(_) => {}
        None if chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        None => {}
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");

    if head_only || no_body {
        stream.write_all(&out).await?;
        stream.flush().await?;
        return Ok(!close && length.is_some());
    }
    if let Some(n) = length {
        let start = out.len();
        (&mut body).take(n as u64).read_to_end(&mut out).await?;
        if out.len() - start != n {
            // The body ended short of its own length: the connection
            // cannot be trusted with another response.
            stream.write_all(&out).await?;
            return Ok(false);
        }
        stream.write_all(&out).await?;
        stream.flush().await?;
        return Ok(!close);
    }
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut piece = vec![0u8; READ_SIZE];
    loop {
        let n = body.read(&mut piece).await?;
        if n == 0 {
            break;
        }
        if chunked {
            let mut frame = format!("{n:x}\r\n").into_bytes();
            frame.extend_from_slice(&piece[..n]);
            frame.extend_from_slice(b"\r\n");
            stream.write_all(&frame).await?;
        } else {
            stream.write_all(&piece[..n]).await?;
        }
        stream.flush().await?;
    }
    if chunked {
        stream.write_all(b"0\r\n\r\n").await?;
        stream.flush().await?;
    }
    Ok(!close)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:8001".parse().expect("address")
    }

    fn status_of(stop: Stop) -> Option<StatusCode> {
        match stop {
            Stop::Reject(res) => Some(res.status()),
            Stop::Quiet => None,
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_after_the_request_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET", 0), Some(18));
        assert_eq!(head_end(b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0), Some(29));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
        assert_eq!(head_end(b"\r\n\r\n", 0), None);
    }

    #[test]
    fn oversized_heads_are_414_or_431() {
        let long_line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_LINE));
        assert_eq!(
            check_head_size(long_line.as_bytes()).err().and_then(status_of),
            Some(StatusCode::UriTooLong)
        );
        let many = format!("GET / HTTP/1.1\r\n{}", "X-A: b\r\n".repeat(MAX_HEAD / 8 + 1));
        assert_eq!(
            check_head_size(many.as_bytes()).err().and_then(status_of),
            Some(StatusCode::RequestHeaderFieldsTooLarge)
        );
        let headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(
            parse_head(headers.as_bytes(), None, local())
                .err()
                .and_then(status_of),
            Some(StatusCode::RequestHeaderFieldsTooLarge)
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        assert_eq!(framing(&[], None, false).ok(), Some(Framing::None));
        assert_eq!(framing(&["12"], None, false).ok(), Some(Framing::Length(12)));
        assert_eq!(
            framing(&["12", "12"], None, false).ok(),
            Some(Framing::Length(12))
        );
        assert_eq!(framing(&[], Some("chunked"), false).ok(), Some(Framing::Chunked));
        for (lengths, te, http10) in [
            (&["12", "13"][..], None, false),
            (&["-1"][..], None, false),
            (&["+5"][..], None, false),
            (&["5"][..], Some("chunked"), false),
            (&[][..], Some("chunked"), true),
        ] {
            assert_eq!(
                framing(lengths, te, http10).err().and_then(status_of),
                Some(StatusCode::BadRequest),
                "{lengths:?} {te:?}"
            );
        }
        assert_eq!(
            framing(&[], Some("gzip, chunked"), false)
                .err()
                .and_then(status_of),
            Some(StatusCode::NotImplemented)
        );
    }

    #[test]
    fn heads_become_requests() {
        let (req, keep, _) = parse_head(
            b"GET /runs?limit=2 HTTP/1.1\r\nHost: lab:8001\r\n\r\n",
            None,
            local(),
        )
        .ok()
        .expect("parses");
        assert_eq!(req.url().as_str(), "http://lab:8001/runs?limit=2");
        assert!(keep);
        // HTTP/1.0 without Host: served on the local address, closed after.
        let (req, keep, _) = parse_head(b"GET /health/live HTTP/1.0\r\n\r\n", None, local())
            .ok()
            .expect("parses");
        assert_eq!(req.url().as_str(), "http://127.0.0.1:8001/health/live");
        assert_eq!(req.version(), Some(Version::Http1_0));
        assert!(!keep);
        let (_, keep, _) = parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", None, local())
            .ok()
            .expect("parses");
        assert!(keep);
        let (_, keep, _) = parse_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", None, local())
            .ok()
            .expect("parses");
        assert!(!keep);
        for bad in [
            &b"GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET nope HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad, None, local()).err().and_then(status_of),
                Some(StatusCode::BadRequest),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_head(b"BREW / HTTP/1.1\r\n\r\n", None, local())
                .err()
                .and_then(status_of),
            Some(StatusCode::MethodNotAllowed)
        );
    }
}
