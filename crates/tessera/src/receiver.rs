//! A small local HTTP/1.1 receiver for webhooks: what the integration tests and the delivery
//! benchmark point destinations at. It records every request (method, path, headers, body and
//! arrival instant) and answers from a plan of scripted replies, then a default one, each
//! optionally after a delay, so a test can play a receiver that fails, throttles, is slow or
//! times out. Stopping it (dropping it) closes the listener and every open connection, so a
//! receiver can also play "down" and come back on the same port with [`Receiver::start_on`].
//!
//! Deliberately small (std, `serde_json` for [`Received::json`], and rustls for
//! [`Receiver::start_tls`]): a thread per connection, keep-alive, `Content-Length` and chunked
//! request bodies. It is a test double, not a server: it trusts its peer to speak reasonable
//! HTTP and drops the connection on anything else.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Request heads larger than this are refused (the connection is dropped): no webhook sender
/// needs more, and it bounds what a confused peer can make us buffer.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Bodies larger than this are refused the same way.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// In arrival order; names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had been read (before any reply delay).
    pub at: Instant,
}

impl Received {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON, so a failing assertion shows the value).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Waited before answering: a slow receiver, or (past the client's timeout) a dead one.
    pub delay: Duration,
}

impl Reply {
    /// `200` with an empty JSON object.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    pub fn status(code: u16) -> Reply {
        Reply {
            status: code,
            headers: Vec::new(),
            body: "{}".to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    pub fn after(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// What the connection threads share with the handle.
struct Shared {
    state: Mutex<State>,
    /// Signalled on every new request and on stop.
    changed: Condvar,
    stopped: AtomicBool,
    /// A clone of every open connection, so that stopping can shut them down (which wakes
    /// their threads out of a blocking read).
    conns: Mutex<Vec<(u64, TcpStream)>>,
    next_conn: AtomicU64,
    /// Set for an `https://` receiver.
    tls: Option<Arc<ServerConfig>>,
}

struct State {
    received: Vec<Received>,
    plan: VecDeque<Reply>,
    default: Reply,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take every later assertion down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `d` unless the receiver stops first (so dropping a receiver whose replies
    /// wait an hour returns at once).
    fn pause(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut guard = self.lock();
        while !self.stopped.load(Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            guard = match self.changed.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// A running receiver on 127.0.0.1. Stops on drop.
pub struct Receiver {
    shared: Arc<Shared>,
    port: u16,
    acceptor: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port.
    pub fn start() -> Receiver {
        Receiver::bind(0).expect("cannot bind a local receiver")
    }

    /// Starts on a given port: to come back up where a stopped receiver was.
    pub fn start_on(port: u16) -> std::io::Result<Receiver> {
        Receiver::bind(port)
    }

    /// Starts an `https://` receiver on a free port, presenting `cert_chain_pem` (the server's
    /// certificate first) with `key_pem`.
    pub fn start_tls(cert_chain_pem: &str, key_pem: &str) -> Receiver {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("readable certificates");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("a readable key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .expect("a usable certificate and key");
        Receiver::bind_with(0, Some(Arc::new(config))).expect("cannot bind a local receiver")
    }

    fn bind(port: u16) -> std::io::Result<Receiver> {
        Receiver::bind_with(port, None)
    }

    fn bind_with(port: u16, tls: Option<Arc<ServerConfig>>) -> std::io::Result<Receiver> {
        // std sets SO_REUSEADDR on Unix, so a port whose old connections linger in TIME_WAIT
        // can be bound again at once.
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                received: Vec::new(),
                plan: VecDeque::new(),
                default: Reply::ok(),
            }),
            changed: Condvar::new(),
            stopped: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(0),
            tls,
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("receiver-{port}"))
            .spawn(move || accept_loop(listener, s))?;
        Ok(Receiver {
            shared,
            port,
            acceptor: Some(acceptor),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}` (`https://` for a TLS receiver).
    pub fn url(&self, path: &str) -> String {
        let scheme = match self.shared.tls {
            Some(_) => "https",
            None => "http",
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// The next requests get these replies, in order (after any still planned), then the
    /// default.
    pub fn plan(&self, replies: Vec<Reply>) {
        self.shared.lock().plan.extend(replies);
    }

    /// The reply once the plan is used up (initially [`Reply::ok`]).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `n` requests have arrived or `timeout` passes; returns every
    /// request so far either way (the caller asserts on what it needs).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.shared.lock();
        while guard.received.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = match self.shared.changed.wait_timeout(guard, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        guard.received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wake the acceptor out of `accept` with a connection of our own; it sees the flag
        // and drops the listener, so the port refuses connections from here on.
        let _ =
            TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        // Then every open connection: their threads wake with an error and end.
        let conns =
            std::mem::take(&mut *self.shared.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, c) in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
        // And every thread waiting out a reply delay.
        let _guard = self.shared.lock();
        self.shared.changed.notify_all();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors, say: back off rather than spin; the peer retries.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        shared
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, clone));
        // Registered before the check, so a stop either sees this connection or is seen here.
        if shared.stopped.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Both);
            break;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("receiver-conn".into())
            .spawn(move || {
                let _ = stream.set_nodelay(true);
                let _ = match s.tls.clone() {
                    None => serve(stream, &s),
                    Some(config) => ServerConnection::new(config)
                        .map_err(std::io::Error::other)
                        .and_then(|c| serve(StreamOwned::new(c, stream), &s)),
                };
                s.conns
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(i, _)| *i != id);
            });
        if spawned.is_err() {
            shared
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(i, _)| *i != id);
        }
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// Serves one connection (plain or TLS) until the peer closes it, asks to, or the receiver
/// stops.
fn serve<S: Read + Write>(stream: S, shared: &Shared) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((req, keep_alive)) = read_request(&mut reader)? else {
            return Ok(());
        };
        let reply = {
            let mut st = shared.lock();
            if shared.stopped.load(Ordering::SeqCst) {
                return Ok(());
            }
            st.received.push(req);
            shared.changed.notify_all();
            let planned = st.plan.pop_front();
            planned.unwrap_or_else(|| st.default.clone())
        };
        if !reply.delay.is_zero() {
            shared.pause(reply.delay);
        }
        if shared.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        write_reply(reader.get_mut(), &reply, keep_alive)?;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request; `None` when the peer closed the connection between requests. Also
/// says whether the connection stays open afterwards.
fn read_request<S: Read + Write>(
    r: &mut BufReader<S>,
) -> std::io::Result<Option<(Received, bool)>> {
    let mut line = String::new();
    let mut head = 0;
    // Tolerate blank lines before a request line (RFC 9112 §2.2).
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        head += n;
        if !line.trim().is_empty() {
            break;
        }
        if head > MAX_HEAD_BYTES {
            return Err(bad("request head too large"));
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("bad request line"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let http10 = version.eq_ignore_ascii_case("HTTP/1.0");
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        head += n;
        if n == 0 || head > MAX_HEAD_BYTES {
            return Err(bad("truncated or oversized request head"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let connection = get("connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive = match http10 {
        true => connection.contains("keep-alive"),
        false => !connection.contains("close"),
    };
    if get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        r.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        r.get_mut().flush()?;
    }
    let chunked =
        get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(r)?
    } else {
        let len = match get("content-length") {
            Some(v) => v.parse::<usize>().map_err(|_| bad("bad content-length"))?,
            None => 0,
        };
        if len > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        body
    };
    let req = Received {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    };
    Ok(Some((req, keep_alive)))
}

/// A chunked body (extensions ignored, trailers read and dropped).
fn read_chunked<S: Read>(r: &mut BufReader<S>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the blank line.
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(bad("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.read_line(&mut line)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_reply<W: Write>(w: &mut W, reply: &Reply, keep_alive: bool) -> std::io::Result<()> {
    // 1xx, 204 and 304 answers have no body by definition (RFC 9110 §6.4.1).
    let no_body = reply.status < 200 || reply.status == 204 || reply.status == 304;
    let body = if no_body { "" } else { reply.body.as_str() };
    let mut out = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if !no_body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if !reply
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            out.push_str("Content-Type: application/json\r\n");
        }
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    w.write_all(out.as_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minihttp::Conn;

    fn addr(r: &Receiver) -> String {
        format!("127.0.0.1:{}", r.port())
    }

    #[test]
    fn records_requests_and_answers_the_plan_then_the_default() {
        let rx = Receiver::start();
        rx.plan(vec![
            Reply::status(503).with_header("Retry-After", "1"),
            Reply::status(400),
        ]);
        rx.set_default(Reply::status(202));
        // One kept-alive connection for all three: the plan is per receiver, not per connection.
        let mut c = Conn::connect(&addr(&rx)).unwrap();
        let a = c
            .send("POST", "/hook?x=1", &[("X-Test", "yes")], b"{\"n\":1}")
            .unwrap();
        assert_eq!((a.status, a.header("retry-after")), (503, Some("1")));
        assert_eq!(c.send("PUT", "/hook", &[], b"{}").unwrap().status, 400);
        assert_eq!(c.send("POST", "/hook", &[], b"").unwrap().status, 202);
        let got = rx.wait_for(3, Duration::from_secs(5));
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].method.as_str(), got[0].path.as_str()),
            ("POST", "/hook?x=1")
        );
        assert_eq!(got[0].header("x-test"), Some("yes"));
        assert_eq!(got[0].header("X-TEST"), Some("yes"));
        assert_eq!(got[0].json(), serde_json::json!({"n": 1}));
        assert_eq!(got[1].method, "PUT");
        assert!(got[0].at <= got[1].at && got[1].at <= got[2].at);
        assert_eq!(rx.url("/a"), format!("http://127.0.0.1:{}/a", rx.port()));
    }

    #[test]
    fn reads_chunked_bodies() {
        let rx = Receiver::start();
        let mut s = TcpStream::connect(addr(&rx)).unwrap();
        s.write_all(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n",
        )
        .unwrap();
        let mut answer = [0u8; 12];
        s.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        let got = rx.wait_for(1, Duration::from_secs(5));
        assert_eq!(got[0].json(), serde_json::json!({"a": 1}));
    }

    #[test]
    fn a_delayed_reply_is_recorded_first_and_a_stop_cuts_it_short() {
        let rx = Receiver::start();
        rx.set_default(Reply::ok().after(Duration::from_secs(3600)));
        let a = addr(&rx);
        let client =
            std::thread::spawn(move || crate::minihttp::request(&a, "POST", "/", &[], b"{}"));
        // Recorded on arrival, long before the reply would be sent.
        assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
        let port = rx.port();
        drop(rx);
        // The hanging request ends without an answer, and the port refuses connections.
        assert!(client.join().unwrap().is_err());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        // It can come back on the same port, empty.
        let again = Receiver::start_on(port).unwrap();
        let r = crate::minihttp::request(&addr(&again), "GET", "/", &[], b"").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(again.received().len(), 1);
    }

    #[test]
    fn wait_for_returns_what_arrived_at_the_deadline() {
        let rx = Receiver::start();
        assert!(rx.wait_for(1, Duration::from_millis(50)).is_empty());
    }
}
