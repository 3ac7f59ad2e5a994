//! The HTTP client of the delivery workers: HTTP/1.1, over TLS for `https://` URLs (rustls
//! with the built-in public roots, plus a destination's own CA when it has one), on one
//! kept-alive connection per lane (hyper's connection API; no pool is needed because a lane
//! sends one request at a time), with a deadline over connecting, sending and reading.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use bytes::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tessera_core::activation::destination::{Destination, HttpUrl, Transport};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// How much of a response body is kept for the delivery log.
pub const EXCERPT_BYTES: usize = 512;
/// The most of a response body read at all (the rest is not waited for).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where requests go, split out of a destination's URL once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, what is connected to.
    pub authority: String,
    /// What `Host` says: the host, with the port unless it is the scheme's default.
    pub host: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// The target of a checked destination URL.
    pub fn of(url: &HttpUrl) -> Target {
        let host = url.host();
        let bracketed = match host.contains(':') && !host.starts_with('[') {
            true => format!("[{host}]"),
            false => host.to_string(),
        };
        let default_port = if url.is_https() { 443 } else { 80 };
        let path = match url.path_and_query() {
            "" => "/".to_string(),
            p => p.to_string(),
        };
        Target {
            authority: format!("{bracketed}:{}", url.port()),
            host: match url.port() == default_port {
                true => bracketed,
                false => format!("{bracketed}:{}", url.port()),
            },
            path,
        }
    }

    /// The same target with `suffix` appended to its path (Segment's `/v1/batch`).
    pub fn join(&self, suffix: &str) -> Target {
        let (path, query) = match self.path.split_once('?') {
            Some((p, q)) => (p, format!("?{q}")),
            None => (self.path.as_str(), String::new()),
        };
        Target {
            path: format!("{}{suffix}{query}", path.trim_end_matches('/')),
            ..self.clone()
        }
    }
}

/// A destination's target with what it takes to reach it: built once per settings version.
#[derive(Clone)]
pub struct Endpoint {
    pub target: Target,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Endpoint {
    /// The endpoint of a destination (Segment forwarders post to `<url>/v1/batch`); an error
    /// names what is wrong with its CA certificates.
    pub fn of(dest: &Destination) -> Result<Endpoint, String> {
        let mut target = Target::of(&dest.url);
        if let Transport::Segment { .. } = dest.transport {
            target = target.join("/v1/batch");
        }
        let tls = match dest.url.is_https() {
            false => None,
            true => {
                let config = match &dest.ca_certificate {
                    None => public_roots().clone(),
                    Some(pem) => Arc::new(client_config(Some(pem))?),
                };
                let host = dest
                    .url
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| format!("{host} is not a valid TLS server name: {e}"))?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Endpoint { target, tls })
    }
}

/// The TLS settings of destinations without their own CA, built once.
fn public_roots() -> &'static Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| Arc::new(client_config(None).expect("the built-in roots load")))
}

/// TLS 1.2 and 1.3 with the public roots (webpki's copy of Mozilla's), plus `extra_ca`.
pub fn client_config(extra_ca: Option<&str>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_ca {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("unreadable PEM: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("no certificate in the PEM text".into());
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
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
        endpoint: &Endpoint,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let out =
            tokio::time::timeout(timeout, self.exchange(endpoint, method, headers, body)).await;
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
        endpoint: &Endpoint,
        method: &Method,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let target = &endpoint.target;
        let peer = format!("{}{}", endpoint.tls.is_some(), target.authority);
        let mut reused = self
            .sender
            .as_ref()
            .is_some_and(|(p, s)| *p == peer && !s.is_closed());
        if reused {
            // A kept-alive connection the receiver closed meanwhile: open a new one, which
            // is no failed attempt (nothing was sent).
            let (_, sender) = self.sender.as_mut().expect("checked above");
            if sender.ready().await.is_err() {
                reused = false;
            }
        }
        if !reused {
            self.sender = Some((peer.clone(), connect(endpoint).await?));
        }
        let req = || build_request(&endpoint.target, method, headers, body.clone());
        match self.request(req()?).await {
            // The receiver closed the kept-alive connection as the request went out: once more
            // on a new one (a receiver that did get it sees the same idempotency key).
            Err(e) if reused && (e.is_canceled() || e.is_incomplete_message()) => {
                self.sender = Some((peer, connect(endpoint).await?));
                self.request(req()?)
                    .await
                    .map_err(|e| format!("request failed: {e}"))
            }
            other => other.map_err(|e| format!("request failed: {e}")),
        }
    }

    /// One request on the open connection; the answer's body is read up to a limit, and a
    /// connection whose body was not read to its end is not used again.
    async fn request(&mut self, req: Request<Body>) -> Result<Answer, hyper::Error> {
        let (_, sender) = self.sender.as_mut().expect("connected by the caller");
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
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
        let bytes =
            match axum::body::to_bytes(Body::new(resp.into_body()), MAX_RESPONSE_BYTES).await {
                Ok(b) => b,
                Err(_) => {
                    // Too long, or cut off: the answer's status still counts.
                    self.sender = None;
                    Bytes::new()
                }
            };
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

fn build_request(
    target: &Target,
    method: &Method,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Request<Body>, String> {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(&target.path)
        .header("host", &target.host)
        .header("content-type", "application/json")
        .header("user-agent", concat!("Tessera/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.body(Body::from(body))
        .map_err(|e| format!("invalid request: {e}"))
}

async fn connect(endpoint: &Endpoint) -> Result<SendRequest<Body>, String> {
    let authority = &endpoint.target.authority;
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let handshake_failed = |e: hyper::Error| format!("HTTP handshake with {authority} failed: {e}");
    // The connection task ends when the peer closes or the sender is dropped; either way the
    // lane reconnects.
    match &endpoint.tls {
        None => {
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(conn);
            Ok(sender)
        }
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {authority} failed: {e}"))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(handshake_failed)?;
            tokio::spawn(conn);
            Ok(sender)
        }
    }
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
