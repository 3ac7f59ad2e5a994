//! `tessera import`: JSONL and CSV through the Tracking API's validation, with a report of
//! rejected lines, and re-runs that import nothing twice.

use crate::support::*;

fn import(
    dir: &std::path::Path,
    key: &str,
    file: &std::path::Path,
    extra: &[&str],
) -> (bool, String, String) {
    use std::ffi::OsStr;
    let mut args = vec![
        OsStr::new("import"),
        file.as_os_str(),
        OsStr::new("--write-key"),
    ];
    args.extend([OsStr::new(key), OsStr::new("--data-dir"), dir.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    run_tessera(args)
}

#[test]
fn jsonl_import_reports_bad_lines_and_is_idempotent() {
    let (dir, mut s, key) = fresh("importjsonl");
    let files = TempDir::new("importfiles");
    let file = files.path().join("history.jsonl");
    let lines = [
        r#"{"type":"identify","userId":"u1","traits":{"email":"a@example.com"},"timestamp":"2024-03-01T10:00:00Z"}"#,
        r#"{"type":"track","userId":"u1","event":"Order Completed","properties":{"total":12.5},"timestamp":"2024-03-02T10:00:00Z"}"#,
        r#"{"type":"track","userId":"u1"}"#,
        "",
        r#"{"type":"page","anonymousId":"a1","messageId":"given-id"}"#,
        r#"{not json"#,
    ];
    std::fs::write(&file, lines.join("\n")).unwrap();
    // The server keeps running: the import shares the store with it.
    let (ok, out, err) = import(dir.path(), &key, &file, &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("5 lines, 3 imported, 0 already present, 2 rejected"),
        "{out}"
    );
    let report =
        std::fs::read_to_string(files.path().join("history.jsonl.rejected.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[0]["code"], "missing_field");
    assert_eq!(rows[1]["line"], 6);
    assert_eq!(rows[1]["code"], "invalid_json");

    let (ok, out, _) = import(dir.path(), &key, &file, &[]);
    assert!(ok);
    assert!(
        out.contains("0 imported"),
        "a re-run imports nothing twice: {out}"
    );
    assert!(out.contains("5 skipped"), "{out}");
    // A grown file is a new file: its known lines are caught by messageId deduplication.
    let mut grown = lines.join("\n");
    grown.push_str("\n{\"type\":\"track\",\"userId\":\"u2\",\"event\":\"Late\"}\n");
    std::fs::write(&file, grown).unwrap();
    let (ok, out, _) = import(dir.path(), &key, &file, &[]);
    assert!(ok);
    assert!(
        out.contains("1 imported, 3 already present, 2 rejected"),
        "{out}"
    );

    assert_eq!(s.events("").len(), 4);
    let order = &s.events("event=Order%20Completed")[0];
    assert_eq!(
        order["timestamp"], "2024-03-02T10:00:00.000Z",
        "historical time is kept"
    );
    s.stop();
}

#[test]
fn csv_import_with_a_mapping() {
    let dir = TempDir::new("importcsv");
    let mut s = Server::start(dir.path());
    let key = s.source("crm");
    s.stop();
    let files = TempDir::new("csvfiles");
    let file = files.path().join("orders.csv");
    std::fs::write(
        &file,
        "customer,amount,when,note\nu1,19.90,2024-01-05T09:00:00Z,\"first, with comma\"\nu2,abc,2024-01-06T09:00:00Z,bad amount\n",
    )
    .unwrap();
    let maps = [
        "--type",
        "track",
        "--event",
        "Order Completed",
        "--map",
        "customer=userId",
        "--map",
        "amount=properties.revenue:number",
        "--map",
        "when=timestamp",
        "--map",
        "note=properties.note",
    ];
    let (ok, out, err) = import(dir.path(), &key, &file, &maps);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("2 lines, 1 imported, 0 already present, 1 rejected"),
        "{out}"
    );
    assert!(
        err.contains("orders.csv:3"),
        "the rejected line is named: {err}"
    );
    let (_, out, _) = import(dir.path(), &key, &file, &maps);
    assert!(
        out.contains("0 imported") && out.contains("2 skipped"),
        "{out}"
    );
    let s = Server::start(dir.path());
    let e = &s.events("")[0];
    assert_eq!(e["userId"], "u1");
    assert_eq!(e["properties"]["revenue"], 19.9);
    assert_eq!(e["properties"]["note"], "first, with comma");

    let (ok, _, err) = import(dir.path(), "wrong-key", &file, &maps);
    assert!(!ok);
    assert!(err.contains("unknown write key"), "{err}");
}
