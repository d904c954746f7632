//! A small HTTP/1.1 client for the command line (`healthcheck`, `submit`,
//! `status`, `loadtest`) and the integration tests: async-h1's client over
//! a smol TCP stream, so no second HTTP stack is compiled in.

pub mod loadtest;

use std::time::Duration;

use serde_json::Value;
use smol::net::TcpStream;
pub use tide::http::Method;
use tide::http::{Request, Url};

/// An answer: status, headers of interest, body text.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where to send requests, with which key, on which budget session.
#[derive(Clone, Debug)]
pub struct Client {
    pub base: Url,
    pub api_key: Option<String>,
    /// Sent as X-Session-Id: the budget session that pays for the shots
    /// (and that the rate limit counts). None leaves the choice to the
    /// server: the key's session, else `local-session`.
    pub session: Option<String>,
    pub timeout: Duration,
}

impl Client {
    pub fn new(base: &str) -> Result<Client, String> {
        let base = Url::parse(base).map_err(|e| format!("bad URL {base}: {e}"))?;
        if base.scheme() != "http" {
            return Err(format!("only http:// URLs are supported, not {base}"));
        }
        Ok(Client {
            base,
            api_key: None,
            session: None,
            timeout: Duration::from_secs(30),
        })
    }

    /// A connection to the appliance and a request for `path`, with the key
    /// and the session.
    async fn open(&self, method: Method, path: &str) -> Result<(TcpStream, Request), String> {
        let url = self
            .base
            .join(path)
            .map_err(|e| format!("bad path {path}: {e}"))?;
        let host = url.host_str().ok_or("URL without host")?.to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        stream.set_nodelay(true).ok();
        let mut req = Request::new(method, url);
        if let Some(key) = &self.api_key {
            req.insert_header("X-Api-Key", key.as_str());
        }
        if let Some(session) = &self.session {
            req.insert_header("X-Session-Id", session.as_str());
        }
        Ok((stream, req))
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let call = async {
            let (stream, mut req) = self.open(method, path).await?;
            let url = req.url().clone();
            for (k, v) in headers {
                req.insert_header(*k, *v);
            }
            if let Some(b) = body {
                req.set_body(b.to_string());
                req.insert_header("Content-Type", "application/json");
            }
            let mut res = async_h1::connect(stream, req)
                .await
                .map_err(|e| format!("{method} {url}: {e}"))?;
            // A HEAD answer announces a length but carries no body.
            let text = if method == Method::Head {
                String::new()
            } else {
                res.body_string()
                    .await
                    .map_err(|e| format!("{method} {url}: reading body: {e}"))?
            };
            let headers = res
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.last().as_str().to_string()))
                .collect();
            Ok(Reply {
                status: u16::from(res.status()),
                body: text,
                headers,
            })
        };
        smol::future::or(call, async {
            smol::Timer::after(self.timeout).await;
            Err(format!("{method} {path}: no answer within {:?}", self.timeout))
        })
        .await
    }

    /// Streams a GET answer into `out` (written as `out.partial`, renamed
    /// when complete). Returns the bytes written.
    pub fn download(&self, path: &str, out: &std::path::Path) -> Result<u64, String> {
        let partial = out.with_extension("partial");
        smol::block_on(async {
            let (stream, req) = self.open(Method::Get, path).await?;
            let url = req.url().clone();
            let mut res = async_h1::connect(stream, req)
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if u16::from(res.status()) != 200 {
                let text = res.body_string().await.unwrap_or_default();
                return Err(format!("GET {url}: HTTP {}: {text}", res.status()));
            }
            let file = std::fs::File::create(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
            let mut sink = smol::Unblock::new(file);
            let n = smol::io::copy(&mut res, &mut sink)
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            smol::io::AsyncWriteExt::flush(&mut sink)
                .await
                .map_err(|e| format!("{}: {e}", partial.display()))?;
            let file = sink.into_inner().await;
            file.sync_all()
                .map_err(|e| format!("{}: {e}", partial.display()))?;
            std::fs::rename(&partial, out).map_err(|e| format!("{}: {e}", out.display()))?;
            Ok(n)
        })
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        smol::block_on(self.send(Method::Get, path, None, &[]))
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Reply, String> {
        smol::block_on(self.send(Method::Post, path, Some(body), &[]))
    }
}
