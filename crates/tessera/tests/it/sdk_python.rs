//! Compatibility with Segment's own Python SDK: installs the real `segment-analytics-python`
//! package from PyPI into a throwaway virtual environment, runs `tests/sdk/segment_python.py`,
//! which sends identify, track, page, screen, group and alias through it (batched and gzipped
//! by the SDK's consumer thread, plus one synchronous uncompressed call with a historical
//! timestamp) to a running `tessera serve`, and reads every message back through the debugger
//! API. Then it plays one person on two devices through the SDK and reads their unified profile
//! back through the Profile API.
//!
//! Needs `python3` with the `venv` module (override with `TESSERA_TEST_PYTHON`) and access to
//! PyPI. A failing install fails the test with pip's output; it is never skipped. pip's cache
//! is `$CARGO_TARGET_TMPDIR/pip-cache`, so repeat runs reuse downloaded files (when the index
//! sends the usual cache headers).

use crate::support::*;
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tessera_core::time::parse_iso8601;

// The values `segment_python.py` sends; keep the two files in step.
const USER_ID: &str = "py-user-1";
const ANONYMOUS_ID: &str = "py-anon-1";
const UNICODE_NAME: &str = "Zoë Ångström — 東京 🚀";
const EMAIL: &str = "zoe@example.com";
const GROUP_ID: &str = "py-group-7";
const TRACK_MESSAGE_ID: &str = "py-track-0001";
const HISTORICAL: &str = "2021-03-04T05:06:07.890Z";
/// How many messages the script sends: six through the batching client, one synchronously.
const SENT: usize = 7;

/// Runs `cmd` to completion with its output captured, killing it after `limit`.
fn run(cmd: &mut Command, what: &str, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait().expect("cannot wait for a child process") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                panic!(
                    "{what} did not finish within {limit:?}; stderr:\n{}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader panicked"),
        stderr: err.join().expect("stderr reader panicked"),
    }
}

/// Fails the test with the command's whole output unless it exited successfully.
fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates a virtual environment under `dir` with the SDK installed; returns its python.
fn venv_with_sdk(dir: &Path) -> PathBuf {
    let python = std::env::var("TESSERA_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let venv = dir.join("venv");
    let started = Instant::now();
    let out = run(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
        Duration::from_secs(120),
    );
    check(
        &out,
        &format!("`{python} -m venv` (is python3-venv installed?)"),
    );
    eprintln!("sdk_python: venv created in {:?}", started.elapsed());

    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pip-cache");
    let started = Instant::now();
    let out = run(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "-q",
                "--timeout",
                "60",
            ])
            .arg("--cache-dir")
            .arg(&cache)
            .arg("segment-analytics-python")
            .env("PIP_NO_COLOR", "1"),
        "pip install segment-analytics-python",
        Duration::from_secs(600),
    );
    check(&out, "pip install segment-analytics-python");
    eprintln!(
        "sdk_python: pip install segment-analytics-python took {:?} (cache {})",
        started.elapsed(),
        cache.display()
    );
    venv.join("bin/python")
}

/// Millisecond instant of an ISO-8601 field, failing with the event when it is missing or bad.
fn millis(e: &Value, field: &str) -> i64 {
    let s = e[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {e:#}"));
    parse_iso8601(s).unwrap_or_else(|_| panic!("`{field}` = {s:?} is not ISO-8601"))
}

/// A field that is either absent or null (the SDK sends `"anonymousId": null` and the like).
fn absent(e: &Value, field: &str) -> bool {
    matches!(e.get(field), None | Some(Value::Null))
}

/// The single stored event matching `pred`.
fn only<'a>(events: &'a [Value], what: &str, pred: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| pred(e)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {what}, found {found:#?}"
    );
    found[0]
}

#[test]
fn segment_analytics_python_calls_are_stored_as_sent() {
    let tmp = TempDir::new("sdk-python");
    let python = venv_with_sdk(tmp.path());
    let (_d, server, key) = fresh("sdk-python");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/segment_python.py");
    let host = format!("http://{}", server.addr);
    let out = run(
        Command::new(&python).arg(&script).arg(&host).arg(&key),
        "segment_python.py",
        Duration::from_secs(120),
    );
    check(&out, "segment_python.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script's summary is not JSON ({e}):\n{stdout}"));
    let sdk_version = summary["sdk_version"]
        .as_str()
        .expect("sdk_version in the summary");
    eprintln!(
        "sdk_python: analytics-python {sdk_version} on Python {}",
        summary["python"]
    );
    let sent = summary["sent"].as_array().expect("`sent` in the summary");
    assert_eq!(
        sent.len(),
        SENT,
        "the script sent an unexpected set: {summary:#}"
    );

    // Everything sent is stored exactly once, under the messageId the SDK gave it.
    let events = server.events("");
    assert_eq!(events.len(), SENT, "stored events: {events:#?}");
    let mut stored_ids: Vec<&str> = events
        .iter()
        .map(|e| e["messageId"].as_str().expect("messageId is set"))
        .collect();
    let mut sent_ids: Vec<&str> = sent
        .iter()
        .map(|m| m["messageId"].as_str().expect("the SDK sets messageId"))
        .collect();
    stored_ids.sort_unstable();
    sent_ids.sort_unstable();
    assert_eq!(stored_ids, sent_ids);

    for e in &events {
        let sdk = sent
            .iter()
            .find(|m| m["messageId"] == e["messageId"])
            .expect("a stored message the SDK did not send");
        assert_eq!(e["type"], sdk["type"], "{e:#}");
        assert_eq!(e["context"]["library"]["name"], "analytics-python", "{e:#}");
        assert_eq!(e["context"]["library"]["version"], sdk_version, "{e:#}");
        // The SDK always sends `timestamp` (+00:00 offset, milliseconds): it becomes
        // originalTimestamp; sentAt (microseconds, +00:00) and receivedAt are set.
        let sdk_ts = parse_iso8601(sdk["timestamp"].as_str().expect("the SDK sets timestamp"))
            .expect("the SDK's timestamp parses");
        assert_eq!(millis(e, "originalTimestamp"), sdk_ts, "{e:#}");
        let received = millis(e, "receivedAt");
        let sent_at = millis(e, "sentAt");
        // Same machine, same clock: the batch is sent after the event and received after that.
        assert!(sent_at >= sdk_ts, "sentAt before the event: {e:#}");
        assert!((received - sent_at).abs() < 60_000, "{e:#}");
        let ts = millis(e, "timestamp");
        assert!(
            (ts - sdk_ts).abs() < 60_000,
            "skew correction moved the event: {e:#}"
        );
        assert!(e["sourceId"].is_string(), "{e:#}");
        assert!(e["position"].is_number(), "{e:#}");
        // The SDK puts the write key in every batch body as well as in Basic auth.
        assert!(
            !e.to_string().contains(&key),
            "the write key must not be stored: {e:#}"
        );
    }

    let identify = only(&events, "identify", |e| e["type"] == "identify");
    assert_eq!(identify["userId"], USER_ID);
    assert!(absent(identify, "anonymousId"), "{identify:#}");
    let traits = &identify["traits"];
    assert_eq!(traits["email"], EMAIL);
    assert_eq!(
        traits["name"], UNICODE_NAME,
        "non-ASCII and astral-plane \\u escapes"
    );
    assert_eq!(traits["plan"], "pro");
    assert_eq!(traits["logins"], 3);
    assert_eq!(traits["verified"], true);
    assert_eq!(
        parse_iso8601(traits["createdAt"].as_str().expect("createdAt is a string")),
        parse_iso8601("2020-01-02T03:04:05Z"),
        "a datetime trait arrives as ISO-8601 text"
    );
    assert_eq!(identify["context"]["campaign"]["name"], "spring-launch");
    assert_eq!(identify["context"]["campaign"]["source"], "newsletter");

    let track = only(&events, "Order Completed", |e| {
        e["event"] == "Order Completed"
    });
    assert_eq!(track["type"], "track");
    assert_eq!(track["userId"], USER_ID);
    assert_eq!(
        track["messageId"], TRACK_MESSAGE_ID,
        "an explicit message_id is kept"
    );
    let props = &track["properties"];
    assert_eq!(props["order_id"], "o-1001");
    assert_eq!(props["revenue"], 42.5);
    assert_eq!(props["currency"], "EUR");
    assert!(
        props.get("coupon").is_some_and(Value::is_null),
        "a None property is kept as null: {props:#}"
    );
    assert_eq!(props["products"][0]["sku"], "sku-1");
    assert_eq!(props["products"][0]["name"], UNICODE_NAME);
    assert_eq!(props["products"][0]["price"], 19.99);
    assert_eq!(props["products"][0]["quantity"], 2);
    assert_eq!(props["products"][1]["price"], 2.52);
    assert_eq!(props["products"].as_array().map(Vec::len), Some(2));

    let page = only(&events, "page", |e| e["type"] == "page");
    assert_eq!(page["anonymousId"], ANONYMOUS_ID);
    assert!(absent(page, "userId"), "{page:#}");
    assert_eq!(page["name"], "Getting Started");
    assert_eq!(page["category"], "Docs");
    assert_eq!(
        page["properties"]["url"],
        "https://docs.example.com/start?ref=py"
    );
    assert_eq!(page["properties"]["path"], "/start");
    assert_eq!(page["properties"]["title"], UNICODE_NAME);

    let screen = only(&events, "screen", |e| e["type"] == "screen");
    assert_eq!(screen["userId"], USER_ID);
    assert_eq!(screen["name"], "Settings");
    assert_eq!(screen["properties"]["tab"], "privacy");
    assert_eq!(screen["properties"]["depth"], 2);

    let group = only(&events, "group", |e| e["type"] == "group");
    assert_eq!(group["userId"], USER_ID);
    assert_eq!(group["groupId"], GROUP_ID);
    assert_eq!(group["traits"]["name"], "Acme GmbH — Zürich");
    assert_eq!(group["traits"]["employees"], 120);
    assert_eq!(group["traits"]["industry"], "Manufacturing");

    let alias = only(&events, "alias", |e| e["type"] == "alias");
    assert_eq!(alias["previousId"], ANONYMOUS_ID);
    assert_eq!(alias["userId"], USER_ID);

    // The synchronous call with an explicit historical timestamp keeps it: as
    // originalTimestamp exactly, and as timestamp up to the (local, tiny) send latency.
    let legacy = only(&events, "Legacy Order Imported", |e| {
        e["event"] == "Legacy Order Imported"
    });
    assert_eq!(legacy["type"], "track");
    assert_eq!(legacy["userId"], USER_ID);
    assert_eq!(legacy["properties"]["source"], "sync-client");
    assert_eq!(legacy["properties"]["note"], UNICODE_NAME);
    let historical = parse_iso8601(HISTORICAL).expect("HISTORICAL parses");
    assert_eq!(legacy["originalTimestamp"], HISTORICAL, "{legacy:#}");
    let ts = millis(legacy, "timestamp");
    assert!(
        (0..60_000).contains(&(ts - historical)),
        "timestamp {} is not the historical {HISTORICAL}: {legacy:#}",
        legacy["timestamp"]
    );
    assert!(millis(legacy, "receivedAt") - historical > 365 * 86_400_000);

    // The debugger's filters find the SDK's messages too.
    assert_eq!(server.events("type=track").len(), 2);
    assert_eq!(server.events("event=Order%20Completed").len(), 1);
    assert_eq!(
        server
            .events(&format!("message_id={TRACK_MESSAGE_ID}"))
            .len(),
        1
    );
    assert_eq!(
        server.events(&format!("anonymous_id={ANONYMOUS_ID}")).len(),
        1
    );

    cross_device_browsing_is_one_profile(&python, &script, &server, &key);
}

/// Anonymous page views on a phone, then an identify on a laptop, end on one profile that the
/// Profile API serves within a second of the SDK's last call returning.
fn cross_device_browsing_is_one_profile(python: &Path, script: &Path, server: &Server, key: &str) {
    let host = format!("http://{}", server.addr);
    let out = run(
        Command::new(python)
            .arg(script)
            .arg(&host)
            .arg(key)
            .arg("cross-device"),
        "segment_python.py cross-device",
        Duration::from_secs(120),
    );
    check(&out, "segment_python.py cross-device");
    let done = Instant::now();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script's summary is not JSON ({e}):\n{stdout}"));
    let sent = summary["sent"].as_array().expect("`sent` in the summary");
    assert_eq!(sent.len(), 6, "{summary:#}");

    let path = "/v1/profiles/user_id:py-cross-user";
    let profile = loop {
        let r = server.admin("GET", path, "");
        let body = r.json();
        let ids = body["identifiers"].to_string();
        if r.status == 200 && ids.contains("py-phone-anon") {
            break body;
        }
        assert!(
            done.elapsed() < Duration::from_secs(1),
            "the profile was not unified within a second of the last call: {} {}",
            r.status,
            body
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut ids = profile_identifiers(&profile);
    ids.sort();
    assert_eq!(
        ids,
        [
            "anonymous_id:py-laptop-anon",
            "anonymous_id:py-phone-anon",
            "email:cross.device@example.com",
            "user_id:py-cross-user"
        ]
    );
    assert_eq!(profile["traits"]["name"], UNICODE_NAME);
    // Every event of both devices is on the profile's timeline, newest first.
    let events = server.admin("GET", &format!("{path}/events"), "").json();
    let got: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = sent
        .iter()
        .rev()
        .map(|m| m["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(got, want, "{events:#}");
}
