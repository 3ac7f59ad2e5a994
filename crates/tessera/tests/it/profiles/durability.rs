//! Profiles that come back unchanged after a graceful restart, a `kill -9` mid-load, and a
//! `tessera replay` (twice, byte for byte).

use super::*;

#[test]
fn profiles_survive_a_graceful_restart() {
    let dir = TempDir::new("profrestart");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    let users = merge_traffic(&s, &key, "r", 12);
    sync(&s, &key);
    let mut snapshot: Vec<(String, Value)> = Vec::new();
    for u in &users {
        let ident = format!("user_id:{u}");
        let p = ok(&s, &profile(&ident, ""));
        assert_eq!(p["merged_profiles"], 2, "{p}");
        for rest in [
            "",
            "/events?limit=1000",
            "/merges",
            "/history?limit=1000",
            "/traits?verbose=true",
            "/identifiers",
        ] {
            let path = profile(&ident, rest);
            snapshot.push((path.clone(), ok(&s, &path)));
        }
    }
    let acc = ok(&s, "/v1/accounts/group_id%3Ar-g0");
    assert!(s.stop().success());

    let s = Server::start(dir.path());
    for (path, before) in &snapshot {
        wait_for(&s, path, |now| now == before);
    }
    assert_eq!(ok(&s, "/v1/accounts/group_id%3Ar-g0"), acc);
    // The restored index keeps resolving new events onto the same profiles.
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "r-u3", "anonymousId": "r-new-device"}),
    );
    let p = wait_for_profile(&s, "anonymous_id:r-new-device", |_| true);
    let (_, r_u3) = snapshot
        .iter()
        .find(|(path, _)| *path == profile("user_id:r-u3", ""))
        .unwrap();
    assert_eq!(p["id"], r_u3["id"], "r-u3's profile");
}

#[test]
fn kill_9_mid_load_keeps_every_acknowledged_identity() {
    const CLIENTS: usize = 2;
    const PEOPLE: usize = 20; // per batch, three events each
    let dir = TempDir::new("profcrash");
    let mut s = Server::start(dir.path());
    let key = s.source("load");
    let auth = basic_auth(&key);
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(AtomicUsize::new(0));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, auth, stop, events, acked) = (
                s.addr.clone(),
                auth.clone(),
                stop.clone(),
                events.clone(),
                acked.clone(),
            );
            std::thread::spawn(move || {
                let Ok(mut conn) = Conn::connect(&addr) else {
                    return;
                };
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let people: Vec<(String, String)> = (0..PEOPLE)
                        .map(|i| (format!("k{c}-{seq}-{i}"), format!("ka{c}-{seq}-{i}")))
                        .collect();
                    let mut batch = Vec::new();
                    for (u, a) in &people {
                        batch.push(json!({"type": "page", "anonymousId": a}));
                        batch.push(json!({"type": "identify", "userId": u,
                            "traits": {"email": format!("{u}@x.com")}}));
                        batch.push(json!({"type": "identify", "userId": u, "anonymousId": a}));
                    }
                    let body = json!({ "batch": batch }).to_string();
                    match conn.send(
                        "POST",
                        "/v1/batch",
                        &[("Authorization", &auth)],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 200 => {
                            acked.lock().unwrap().extend(people);
                            events.fetch_add(batch.len(), Ordering::Relaxed);
                        }
                        Ok(r) if r.status == 429 => std::thread::sleep(Duration::from_millis(10)),
                        Ok(r) => panic!("unexpected answer {}: {}", r.status, r.text()),
                        Err(_) => return, // the server died under us
                    }
                }
            })
        })
        .collect();
    // Pull the plug once a few thousand events are in, while the clients keep sending.
    let deadline = Instant::now() + Duration::from_secs(20);
    while events.load(Ordering::Relaxed) < 3_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.kill9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() * 3 >= 3_000,
        "only {} events acknowledged before the kill",
        acked.len() * 3
    );

    let s = Server::start(dir.path());
    let mut conn = Conn::connect(&s.addr).unwrap();
    let bearer = format!("Bearer {ADMIN}");
    let mut lookup = |ident: &str| -> Option<String> {
        let r = conn
            .send(
                "GET",
                &profile(ident, ""),
                &[("Authorization", &bearer)],
                b"",
            )
            .unwrap();
        (r.status == 200).then(|| r.json()["id"].as_str().unwrap().to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    for (u, a) in &acked {
        loop {
            let by_user = lookup(&format!("user_id:{u}"));
            if by_user.is_some() && by_user == lookup(&format!("anonymous_id:{a}")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "acknowledged identify of {u} (device {a}) does not resolve to one profile after restart: {by_user:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    eprintln!(
        "profile crash test: {} acknowledged people all resolve after kill -9 and restart",
        acked.len()
    );
}

/// Runs `tessera replay` on a data directory: (success, stdout, stderr).
fn replay(data_dir: &Path, extra: &[&str]) -> (bool, String, String) {
    use std::ffi::OsStr;
    let mut args = vec![
        OsStr::new("replay"),
        OsStr::new("--data-dir"),
        data_dir.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    run_tessera(args)
}

/// What a workspace's state file holds: its log position, the live profiles' documents
/// (`SELECT key, doc FROM profiles ORDER BY key`), the absorbed profiles and the accounts.
type StateFile = (i64, Vec<(i64, String)>, Vec<(i64, i64)>, Vec<(i64, String)>);

/// The newest complete state file of the default workspace in `dir`.
fn state_file(dir: &Path) -> StateFile {
    let db = ProfileDb::open_latest(dir, "default").unwrap();
    let docs = db.profile_docs().unwrap();
    let stored = db.load().unwrap();
    assert_eq!(docs, stored.profiles);
    (stored.position, docs, stored.absorbed, stored.accounts)
}

#[test]
fn replay_is_deterministic_and_equals_the_live_state() {
    let dir = TempDir::new("replay");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    let users = merge_traffic(&s, &key, "p", 25);
    // Pairs of people sharing a device, which the user_id limit keeps apart.
    let shared: Vec<Value> = users
        .chunks(2)
        .enumerate()
        .flat_map(|(n, pair)| {
            pair.iter().map(move |u| {
                json!({"type": "track", "userId": u, "anonymousId": format!("p-shared{n}"),
                       "event": "Shared Device Used"})
            })
        })
        .collect();
    send_batch(&s, &key, shared);
    sync(&s, &key);
    let scratch = TempDir::new("replayout");
    let x0 = scratch.path().join("busy.db");
    let (ok_, _, err) = replay(
        dir.path(),
        &["--workspace", "default", "--out", x0.to_str().unwrap()],
    );
    assert!(!ok_, "replay must refuse while the server runs");
    assert!(err.contains("in use"), "{err}");
    assert!(s.stop().success());

    // The live state as the server left it (copied, so that opening it changes nothing).
    let live_dir = scratch.path().join("live");
    std::fs::create_dir_all(&live_dir).unwrap();
    for e in std::fs::read_dir(dir.path().join("profiles")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("default.") {
            std::fs::copy(e.path(), live_dir.join(e.file_name())).unwrap();
        }
    }
    let live = state_file(&live_dir);

    let mut replays = Vec::new();
    for n in 1..=2 {
        let out_dir = scratch.path().join(format!("x{n}"));
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("default.1.db");
        let (ok_, stdout, err) = replay(
            dir.path(),
            &["--workspace", "default", "--out", out.to_str().unwrap()],
        );
        assert!(ok_, "{stdout}{err}");
        assert!(stdout.contains("workspace default: replayed"), "{stdout}");
        replays.push(state_file(&out_dir));
    }
    // 25 people and the sentinel of `sync`; two absorbed profiles per person; 2 companies.
    assert_eq!(live.1.len(), 26);
    assert_eq!(live.2.len(), 50);
    assert_eq!(live.3.len(), 2);
    assert!(live.0 > 0);
    assert!(
        replays[0] == replays[1],
        "two replays of the same log differ"
    );
    for (what, l, r) in [
        ("profiles", &live.1, &replays[0].1),
        ("accounts", &live.3, &replays[0].3),
    ] {
        assert!(
            l == r,
            "the replay's {what} differ from the live state: live has {}, replay {}; first difference {:?}",
            l.len(),
            r.len(),
            l.iter().zip(r).find(|(a, b)| a != b)
        );
    }
    assert_eq!(live, replays[0], "position or absorbed profiles differ");
}

#[test]
fn deleting_a_workspace_deletes_its_profile_state() {
    let (dir, s, _key) = fresh("wsdelete");
    let r = s.admin(
        "POST",
        "/api/v1/workspaces",
        r#"{"id": "gone", "name": "Gone"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let state = dir.path().join("profiles");
    let has_state = || {
        std::fs::read_dir(&state)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("gone."))
            })
            .unwrap_or(false)
    };
    // The workspace's applier starts with it and creates its state file.
    let deadline = Instant::now() + PATIENCE;
    while !has_state() {
        assert!(
            Instant::now() < deadline,
            "no state file for the new workspace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Someone in it, so that a workspace re-created with its id could inherit them.
    let r = s.admin(
        "POST",
        "/api/v1/sources?workspace=gone",
        r#"{"name": "web", "write_key": "wk_gone_123"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    send(&s, "wk_gone_123", "identify", json!({"userId": "ghost"}));
    wait_for(&s, "/v1/profiles/user_id:ghost?workspace=gone", |p| {
        p["id"].is_string()
    });
    assert_eq!(s.admin("DELETE", "/api/v1/workspaces/gone", "").status, 204);
    assert!(
        !has_state(),
        "the deleted workspace's profile state is still on disk"
    );
    let r = s.admin(
        "POST",
        "/api/v1/workspaces",
        r#"{"id": "gone", "name": "Again"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let events = s.admin("GET", "/api/v1/events?workspace=gone", "").json();
    assert_eq!(events["events"], json!([]), "{events}");
    std::thread::sleep(Duration::from_millis(300));
    let r = s.admin("GET", "/v1/profiles/user_id:ghost?workspace=gone", "");
    assert_eq!(r.status, 404, "the deleted person came back: {}", r.text());
}

/// After a `kill -9`, the applier resumes from the stored documents and re-derives the rest
/// from the log; rows it had already written come again. The state it ends with must be the
/// state a replay of the whole log gives.
#[test]
fn after_a_crash_the_state_equals_a_replay_of_the_log() {
    let dir = TempDir::new("crashreplay");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    merge_traffic(&s, &key, "c", 10);
    sync(&s, &key);
    s.kill9();

    let mut s = Server::start(dir.path());
    // New devices of the same people, merged in after the restart, and new people.
    let more: Vec<Value> = (0..10)
        .map(|i| json!({"type": "identify", "userId": format!("c-u{i}"), "anonymousId": format!("c-new{i}")}))
        .collect();
    send_batch(&s, &key, more);
    merge_traffic(&s, &key, "d", 5);
    sync(&s, &key);
    let events = ok(&s, &profile("user_id:c-u3", "/events?limit=1000"));
    assert_eq!(
        events["events"].as_array().unwrap().len(),
        7,
        "c-u3's six events before the crash and one after: {events:#}"
    );
    assert!(s.stop().success());

    let live = state_file(&dir.path().join("profiles"));
    let scratch = TempDir::new("crashreplayout");
    let out = scratch.path().join("default.1.db");
    let (ok_, stdout, err) = replay(
        dir.path(),
        &["--workspace", "default", "--out", out.to_str().unwrap()],
    );
    assert!(ok_, "{stdout}{err}");
    let replayed = state_file(scratch.path());
    assert_eq!(live.1.len(), 10 + 5 + 2, "profiles: {:?}", live.1.len());
    assert!(
        live == replayed,
        "the recovered state differs from a replay; first differing profile: {:?}",
        live.1.iter().zip(&replayed.1).find(|(a, b)| a != b)
    );
}

/// Every event on exactly one live profile's timeline, as the state file holds it.
fn assert_timelines_cover_the_log(dir: &Path, events: usize) {
    let db = ProfileDb::open_latest(dir, "default").unwrap();
    let live: Vec<i64> = db.profile_docs().unwrap().iter().map(|(k, _)| *k).collect();
    let mut positions: Vec<i64> = live
        .iter()
        .flat_map(|&k| db.timeline(k, None, 100_000).unwrap())
        .collect();
    positions.sort_unstable();
    let n = positions.len();
    positions.dedup();
    assert_eq!(n, positions.len(), "an event is on two timelines");
    assert_eq!(n, events, "events missing from the timelines");
}

/// The rules change between two crashes' worth of events: the state must stay readable and
/// consistent (every event on one live profile), whichever side of the change the crash hit.
#[test]
fn a_rules_change_then_a_crash_leaves_consistent_state() {
    let dir = TempDir::new("rulescrash");
    let mut s = Server::start(dir.path());
    let key = s.source("test");
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u1", "anonymousId": "a1"}),
    );
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u2", "anonymousId": "a1"}),
    );
    send(&s, &key, "page", json!({"anonymousId": "a3"}));
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u2", "anonymousId": "a3"}),
    );
    sync(&s, &key);
    let r = s.admin(
        "PUT",
        "/api/v1/identity",
        r#"{"identifiers": {"user_id": {"limit": 2}}, "max_merges": 0}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    s.kill9();

    let mut s = Server::start(dir.path());
    send(
        &s,
        &key,
        "identify",
        json!({"userId": "u3", "anonymousId": "a1"}),
    );
    sync(&s, &key);
    let before: Vec<Value> = ["user_id:u1", "user_id:u2", "user_id:u3", "anonymous_id:a3"]
        .iter()
        .map(|i| ok(&s, &profile(i, "/events?limit=1000")))
        .collect();
    assert!(s.stop().success());
    // 4 events, 2 sentinels, 1 more identify.
    assert_timelines_cover_the_log(&dir.path().join("profiles"), 7);

    // And it reads back the same after a clean restart.
    let mut s = Server::start(dir.path());
    for (i, b) in ["user_id:u1", "user_id:u2", "user_id:u3", "anonymous_id:a3"]
        .iter()
        .zip(&before)
    {
        wait_for(&s, &profile(i, "/events?limit=1000"), |now| now == b);
    }
    assert!(s.stop().success());
}
