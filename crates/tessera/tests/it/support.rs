//! Test support: start `tessera serve` on a free port and a fresh data directory, and talk to it.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
pub use tessera::minihttp::{basic_auth, Response};

pub const ADMIN: &str = "test-admin-token";

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tessera-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `tessera serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    /// Starts a server on `data_dir` and waits until `/healthz` answers.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("TESSERA_ADMIN_TOKEN", ADMIN)
            .env("TESSERA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start tessera");
        let server = Server { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.get("/healthz", &[]).is_ok_and(|r| r.status == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "tessera did not become healthy");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        tessera::minihttp::request(&self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        self.request("GET", path, headers, b"")
    }

    /// An admin API call with the bootstrap token.
    pub fn admin(&self, method: &str, path: &str, body: &str) -> Response {
        let auth = format!("Bearer {ADMIN}");
        self.request(method, path, &[("Authorization", &auth)], body.as_bytes())
            .unwrap()
    }

    /// Creates a source and returns its write key.
    pub fn source(&self, name: &str) -> String {
        let r = self.admin(
            "POST",
            "/api/v1/sources",
            &format!(r#"{{"name":"{name}"}}"#),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["write_key"].as_str().unwrap().to_string()
    }

    /// POSTs a JSON body to a Tracking API path with the write key as Basic auth.
    pub fn track(&self, path: &str, key: &str, body: &str) -> Response {
        let auth = basic_auth(key);
        self.request(
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .unwrap()
    }

    /// Events of the default workspace through the debugger API, newest first.
    pub fn events(&self, query: &str) -> Vec<Value> {
        let r = self.admin("GET", &format!("/api/v1/events?limit=1000&{query}"), "");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["events"].as_array().unwrap().clone()
    }

    /// The highest log position (0 when empty).
    pub fn log_position(&self) -> i64 {
        self.get("/readyz", &[]).unwrap().json()["log_position"]
            .as_i64()
            .unwrap()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A server on a fresh directory with one source: (dir, server, write key).
pub fn fresh(tag: &str) -> (TempDir, Server, String) {
    let dir = TempDir::new(tag);
    let server = Server::start(dir.path());
    let key = server.source("test");
    (dir, server, key)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Runs the `tessera` binary with `args` to completion: (success, stdout, stderr).
pub fn run_tessera<I, S>(args: I) -> (bool, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A Profile API profile's identifiers as `type:value`, in the order the API gives them.
pub fn profile_identifiers(p: &serde_json::Value) -> Vec<String> {
    p["identifiers"]
        .as_array()
        .expect("a profile has identifiers")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap(),
                i["value"].as_str().unwrap()
            )
        })
        .collect()
}

/// Percent-encodes a path segment (`email:ann@x.com` → `email%3Aann%40x.com`).
pub fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of a profile (`type:value` or `prf_…`) or of one of its sub-resources.
pub fn profile(ident: &str, rest: &str) -> String {
    format!("/v1/profiles/{}{rest}", enc(ident))
}

/// A GET with the admin token that must answer 200.
pub fn ok(s: &Server, path: &str) -> serde_json::Value {
    let r = s.admin("GET", path, "");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// Polls `path` until it answers 200 with a body `ready` accepts, for at most `patience`.
pub fn wait_within(
    s: &Server,
    path: &str,
    patience: std::time::Duration,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let r = s.admin("GET", path, "");
        if r.status == 200 && ready(&r.json()) {
            return r.json();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "GET {path} never became ready; last answer {}: {}",
            r.status,
            r.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Checks an error answer: its status and a `{"code", "message"}` body; returns the body.
pub fn expect_error(r: &Response, status: u16, code: &str) -> Value {
    let body = r.json();
    assert_eq!(
        (r.status, body["code"].as_str()),
        (status, Some(code)),
        "{}",
        r.text()
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error without a message: {body}"
    );
    body
}
