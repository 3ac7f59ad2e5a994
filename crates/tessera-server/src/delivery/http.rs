//! The HTTP client of the delivery workers: HTTP/1.1 over one kept-alive connection per
//! lane (hyper's connection API; no pool is needed because a lane sends one request at a
//! time), with a deadline over connecting, sending and reading the answer.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use bytes::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tessera_core::activation::destination::HttpUrl;

/// How much of a response body is kept for the delivery log.
pub const EXCERPT_BYTES: usize = 512;
/// The most of a response body read at all (the rest is not waited for).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where requests go, split out of a destination's URL once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, what is connected to and sent as `Host`.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// The target of a checked destination URL.
    pub fn of(url: &HttpUrl) -> Target {
        let host = url.host();
        let authority = match host.contains(':') && !host.starts_with('[') {
            true => format!("[{host}]:{}", url.port()),
            false => format!("{host}:{}", url.port()),
        };
        let path = match url.path_and_query() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Target { authority, path }
    }

    /// The same target with `suffix` appended to its path (Segment's `/v1/batch`).
    pub fn join(&self, suffix: &str) -> Target {
        let (path, query) = match self.path.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (self.path.as_str(), String::new()),
        };
        Target {
            authority: self.authority.clone(),
            path: format!("{}{suffix}{query}", path.trim_end_matches('/')),
        }
    }
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub excerpt: String,
}

/// One lane's connection, opened on first use and after any failure.
#[derive(Default)]
pub struct Connection {
    sender: Option<(String, SendRequest<Body>)>,
}

impl Connection {
    /// Sends one request and reads the answer, all within `timeout`. On any error the
    /// connection is dropped, so the next request starts on a fresh one.
    pub async fn send(
        &mut self,
        target: &Target,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let out = tokio::time::timeout(timeout, self.exchange(target, method, headers, body)).await;
        match out {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {} ms", timeout.as_millis()))
            }
        }
    }

    async fn exchange(
        &mut self,
        target: &Target,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let reusable = self
            .sender
            .as_ref()
            .is_some_and(|(a, s)| *a == target.authority && !s.is_closed());
        if !reusable {
            self.sender = Some((target.authority.clone(), connect(&target.authority).await?));
        }
        let (_, sender) = self.sender.as_mut().expect("connected above");
        sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&target.path)
            .header("host", &target.authority)
            .header("content-type", "application/json")
            .header("user-agent", concat!("Tessera/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Body::from(body))
            .map_err(|e| format!("invalid request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let close = resp
            .headers()
            .get("connection")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let bytes = axum::body::to_bytes(Body::new(resp.into_body()), MAX_RESPONSE_BYTES)
            .await
            .unwrap_or_default();
        if close {
            self.sender = None;
        }
        Ok(Answer {
            status,
            retry_after,
            excerpt: excerpt(&bytes),
        })
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Body>, String> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake with {authority} failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the peer closes or the sender is dropped; either way the lane reconnects.
        let _ = conn.await;
    });
    Ok(sender)
}

/// The start of a response body as text, cut at a character boundary.
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_BYTES)]);
    text.trim_end_matches('\u{fffd}').to_string()
}

#[cfg(test)]
mod tests {
    use super::Target;
    use tessera_core::activation::destination::HttpUrl;

    fn target(url: &str) -> Target {
        Target::of(&HttpUrl::parse(url).unwrap())
    }

    #[test]
    fn targets_split_host_port_and_path() {
        let t = target("http://127.0.0.1:9000/hooks/a?x=1");
        assert_eq!(t.authority, "127.0.0.1:9000");
        assert_eq!(t.path, "/hooks/a?x=1");
        let t = target("http://example.com");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("example.com:80", "/")
        );
        let t = target("http://h:1/seg/?q=2");
        assert_eq!(t.join("/v1/batch").path, "/seg/v1/batch?q=2");
    }
}
