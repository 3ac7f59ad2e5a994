//! `tessera import`: bulk import of historical events from JSONL (one Segment message per line)
//! or CSV (a column mapping builds each message), through the same validation as the Tracking
//! API, straight into the store's log with group commits.
//!
//! A line without `messageId` gets one derived from the source and the line's content, so
//! importing the same file twice stores nothing twice. The workspace's PII policy is applied as
//! at ingest (history holds card numbers as often as live traffic); its tracking plan is not
//! checked, as history predates it.

use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tessera_core::{normalize_value, IngestContext, MessageType, NormalizedEvent};
use tessera_server::governance::Rules;
use tessera_server::suppression::Suppressions;
use tessera_store::{AppendBatch, Source, SqliteOptions, SqliteStore, Store};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The file to import (`.jsonl`/`.ndjson` or `.csv`).
    pub file: PathBuf,
    /// Write key of the source the events are imported into.
    #[arg(long, env = "TESSERA_WRITE_KEY")]
    pub write_key: String,
    /// Data directory of the store [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// File format; guessed from the extension when absent.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV: message type of every row, unless a column maps to `type`.
    #[arg(long)]
    pub r#type: Option<String>,
    /// CSV: track event name of every row, unless a column maps to `event`.
    #[arg(long)]
    pub event: Option<String>,
    /// CSV: `COLUMN=PATH[:number|bool|json]`, e.g. `email=traits.email` or
    /// `amount=properties.revenue:number`. Without any, columns named like Segment fields
    /// (userId, anonymousId, event, timestamp, ...) map to them and the others to
    /// `traits.COLUMN` (identify, group) or `properties.COLUMN` (other types).
    #[arg(long = "map", value_name = "COLUMN=PATH")]
    pub mappings: Vec<String>,
    /// Where to write the rejected lines report [default: FILE.rejected.jsonl].
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

/// Events sent to the store per group commit.
const CHUNK: usize = 2_000;

/// Totals of one import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    /// Lines an earlier run of the same file already committed.
    pub skipped: u64,
    pub imported: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

struct Rejection {
    line: u64,
    code: String,
    message: String,
}

pub fn run(args: ImportArgs) -> Result<(), String> {
    let format = match args.format {
        Some(f) => f,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl") | Some("ndjson") | Some("json") => Format::Jsonl,
            _ => {
                return Err(format!(
                    "{}: cannot tell the format; pass --format jsonl or --format csv",
                    args.file.display()
                ))
            }
        },
    };
    let mapping = CsvMapping::parse(
        &args.mappings,
        args.r#type.as_deref(),
        args.event.as_deref(),
    )?;
    let store =
        SqliteStore::open(&args.data_dir, SqliteOptions::default()).map_err(|e| e.to_string())?;
    let source = store
        .source_by_write_key(&args.write_key)
        .map_err(|e| e.to_string())?
        .ok_or("unknown write key: create a source first (POST /api/v1/sources)")?;
    if !source.enabled {
        return Err(format!("source {} is disabled", source.id));
    }
    let file_sha = file_sha256(&args.file)?;
    let done_before = store
        .import_progress(&source.id, &file_sha)
        .map_err(|e| e.to_string())?;
    let file =
        std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut progress = Progress::new(total);
    let mut importer = Importer::new(&store, &source, file_sha)?;
    let received_at = now_millis();
    let mut rejections = Vec::new();
    match format {
        Format::Jsonl => {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            let mut line_no = 0u64;
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .map_err(|e| format!("{}:{}: {e}", args.file.display(), line_no + 1))?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                progress.advance(n as u64);
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                importer.summary.lines += 1;
                if line_no <= done_before {
                    importer.summary.skipped += 1;
                    continue;
                }
                importer.last_line = line_no;
                match serde_json::from_str::<Value>(text) {
                    Ok(v) => {
                        importer.add(line_no, v, text.len(), text, received_at, &mut rejections)?
                    }
                    Err(e) => rejections.push(Rejection {
                        line: line_no,
                        code: "invalid_json".into(),
                        message: e.to_string(),
                    }),
                }
            }
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
            let headers = reader
                .headers()
                .map_err(|e| format!("{}: cannot read the CSV header: {e}", args.file.display()))?
                .clone();
            let columns = mapping.columns(&headers)?;
            for record in reader.records() {
                let record = record.map_err(|e| format!("{}: {e}", args.file.display()))?;
                let line_no = record.position().map(|p| p.line()).unwrap_or(0);
                progress.set(record.position().map(|p| p.byte()).unwrap_or(0));
                importer.summary.lines += 1;
                if line_no <= done_before {
                    importer.summary.skipped += 1;
                    continue;
                }
                importer.last_line = line_no;
                match mapping.message(&columns, &record) {
                    Ok(v) => {
                        let text = v.to_string();
                        importer.add(line_no, v, text.len(), &text, received_at, &mut rejections)?
                    }
                    Err(message) => rejections.push(Rejection {
                        line: line_no,
                        code: "invalid_value".into(),
                        message,
                    }),
                }
            }
        }
    }
    importer.flush()?;
    progress.finish();
    if importer.last_line > done_before {
        store
            .record_import_progress(
                &source.id,
                &importer.file_sha,
                importer.last_line,
                now_millis(),
            )
            .map_err(|e| e.to_string())?;
    }
    let mut summary = importer.summary.clone();
    summary.rejected = rejections.len() as u64;
    println!(
        "{}: {} lines, {} imported, {} already present, {} rejected{}",
        args.file.display(),
        summary.lines,
        summary.imported,
        summary.duplicates,
        summary.rejected,
        if summary.skipped > 0 {
            format!(
                ", {} skipped (done by an earlier run of this file)",
                summary.skipped
            )
        } else {
            String::new()
        }
    );
    if !rejections.is_empty() {
        let path = args.report.clone().unwrap_or_else(|| {
            let mut p = args.file.clone().into_os_string();
            p.push(".rejected.jsonl");
            PathBuf::from(p)
        });
        write_report(&path, &rejections).map_err(|e| format!("{}: {e}", path.display()))?;
        for r in rejections.iter().take(5) {
            eprintln!(
                "{}:{}: {} ({})",
                args.file.display(),
                r.line,
                r.message,
                r.code
            );
        }
        println!("rejected lines are listed in {}", path.display());
    }
    store.shutdown();
    Ok(())
}

fn write_report(path: &PathBuf, rejections: &[Rejection]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in rejections {
        let row = serde_json::json!({"line": r.line, "code": r.code, "message": r.message});
        writeln!(out, "{row}")?;
    }
    out.flush()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Importer<'a> {
    store: &'a SqliteStore,
    source: &'a Source,
    /// The workspace's PII policy, applied to every message before it is stored.
    rules: Rules,
    file_sha: String,
    pending: Vec<NormalizedEvent>,
    /// The last line handled (stored, or rejected and reported).
    last_line: u64,
    summary: Summary,
}

impl<'a> Importer<'a> {
    fn new(
        store: &'a SqliteStore,
        source: &'a Source,
        file_sha: String,
    ) -> Result<Importer<'a>, String> {
        let rules = Rules::load(store, &Suppressions::default(), &source.workspace_id)
            .map_err(|e| e.to_string())?;
        Ok(Importer {
            store,
            source,
            rules,
            file_sha,
            last_line: 0,
            pending: Vec::with_capacity(CHUNK),
            summary: Summary::default(),
        })
    }

    fn add(
        &mut self,
        line: u64,
        value: Value,
        len: usize,
        text: &str,
        received_at: i64,
        rejections: &mut Vec<Rejection>,
    ) -> Result<(), String> {
        let ctx = IngestContext {
            received_at,
            ..Default::default()
        };
        let derived_id = || content_message_id(&self.source.id, text);
        match normalize_value(value, len, &ctx, derived_id) {
            Ok((mut e, mut message)) => {
                self.rules.protect(&mut message);
                e.body = message.to_string();
                self.pending.push(e);
                if self.pending.len() >= CHUNK {
                    self.flush()?;
                }
            }
            Err(e) => rejections.push(Rejection {
                line,
                code: e.code().into(),
                message: e.to_string(),
            }),
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = AppendBatch {
            workspace_id: self.source.workspace_id.clone(),
            source_id: self.source.id.clone(),
            events: std::mem::take(&mut self.pending),
        };
        let (tx, rx) = mpsc::channel();
        self.store
            .append_blocking(
                batch,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            )
            .map_err(|e| e.to_string())?;
        let outcome = rx
            .recv()
            .map_err(|_| "the store stopped".to_string())?
            .map_err(|e| e.to_string())?;
        let dup = outcome.positions.iter().filter(|p| p.is_none()).count() as u64;
        self.summary.duplicates += dup;
        self.summary.imported += outcome.positions.len() as u64 - dup;
        // Everything up to the last line handled is committed: an interrupted import resumes
        // after it, and a finished one is not imported again.
        self.store
            .record_import_progress(
                &self.source.id,
                &self.file_sha,
                self.last_line,
                now_millis(),
            )
            .map_err(|e| e.to_string())
    }
}

/// SHA-256 of a file's content, hex-encoded: identifies "the same file" across runs.
fn file_sha256(path: &std::path::Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// A stable message id for a line without one: the same line of the same source always gets
/// the same id, so a re-run is deduplicated by the log.
pub fn content_message_id(source_id: &str, line: &str) -> String {
    let mut h = Sha256::new();
    h.update(source_id.as_bytes());
    h.update([0]);
    h.update(line.as_bytes());
    let d = h.finalize();
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("import-{hex}")
}

/// How CSV columns become message fields.
#[derive(Debug, Default)]
pub struct CsvMapping {
    explicit: Vec<(String, Vec<String>, Cast)>,
    default_type: Option<String>,
    default_event: Option<String>,
}

/// Where one CSV column goes: a field path and a cast, or nowhere.
type ColumnTarget = Option<(Vec<String>, Cast)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    Text,
    Number,
    Bool,
    Json,
}

/// Segment fields a same-named column maps to when no `--map` is given.
const TOP_LEVEL: [&str; 11] = [
    "type",
    "userId",
    "anonymousId",
    "event",
    "name",
    "groupId",
    "previousId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
];

impl CsvMapping {
    pub fn parse(
        specs: &[String],
        ty: Option<&str>,
        event: Option<&str>,
    ) -> Result<CsvMapping, String> {
        if let Some(t) = ty {
            if MessageType::parse(t).is_none() {
                return Err(format!(
                    "--type {t}: expected identify, track, page, screen, group or alias"
                ));
            }
        }
        let mut explicit = Vec::new();
        for spec in specs {
            let (col, target) = spec
                .split_once('=')
                .ok_or_else(|| format!("--map {spec}: expected COLUMN=PATH"))?;
            let (path, cast) = match target.rsplit_once(':') {
                Some((p, "number")) => (p, Cast::Number),
                Some((p, "bool")) => (p, Cast::Bool),
                Some((p, "json")) => (p, Cast::Json),
                Some((_, other)) => {
                    return Err(format!(
                        "--map {spec}: unknown type `{other}`; use number, bool or json"
                    ))
                }
                None => (target, Cast::Text),
            };
            let path: Vec<String> = path.split('.').map(String::from).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("--map {spec}: the path has an empty segment"));
            }
            explicit.push((col.to_string(), path, cast));
        }
        Ok(CsvMapping {
            explicit,
            default_type: ty.map(String::from),
            default_event: event.map(String::from),
        })
    }

    /// For each CSV column, where its value goes (`None`: ignored).
    fn columns(&self, headers: &csv::StringRecord) -> Result<Vec<ColumnTarget>, String> {
        if !self.explicit.is_empty() {
            for (col, _, _) in &self.explicit {
                if !headers.iter().any(|h| h == col) {
                    return Err(format!("--map {col}=...: the CSV has no column `{col}`"));
                }
            }
            return Ok(headers
                .iter()
                .map(|h| {
                    self.explicit
                        .iter()
                        .find(|(c, _, _)| c == h)
                        .map(|(_, p, c)| (p.clone(), *c))
                })
                .collect());
        }
        Ok(headers
            .iter()
            .map(|h| {
                if TOP_LEVEL.contains(&h) {
                    Some((vec![h.to_string()], Cast::Text))
                } else {
                    // "traits"/"properties" is decided per row, once the type is known.
                    Some((vec!["*".into(), h.to_string()], Cast::Text))
                }
            })
            .collect())
    }

    fn message(
        &self,
        columns: &[ColumnTarget],
        record: &csv::StringRecord,
    ) -> Result<Value, String> {
        let mut msg = Map::new();
        let mut rest = Vec::new();
        for (value, column) in record.iter().zip(columns) {
            let Some((path, cast)) = column else { continue };
            if value.is_empty() {
                continue;
            }
            let v = match cast {
                Cast::Text => Value::String(value.to_string()),
                Cast::Number => value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("`{value}` is not a number (for {})", path.join(".")))?,
                Cast::Bool => match value.trim() {
                    "true" | "1" | "yes" => Value::Bool(true),
                    "false" | "0" | "no" => Value::Bool(false),
                    _ => {
                        return Err(format!(
                            "`{value}` is not a boolean (for {})",
                            path.join(".")
                        ))
                    }
                },
                Cast::Json => serde_json::from_str(value)
                    .map_err(|e| format!("`{value}` is not JSON (for {}): {e}", path.join(".")))?,
            };
            if path[0] == "*" {
                rest.push((path[1].clone(), v));
            } else {
                set_path(&mut msg, path, v);
            }
        }
        if !msg.contains_key("type") {
            if let Some(t) = &self.default_type {
                msg.insert("type".into(), Value::String(t.clone()));
            }
        }
        if !msg.contains_key("event") {
            if let Some(e) = &self.default_event {
                msg.insert("event".into(), Value::String(e.clone()));
            }
        }
        let bucket = match msg.get("type").and_then(Value::as_str) {
            Some("identify") | Some("group") => "traits",
            _ => "properties",
        };
        for (k, v) in rest {
            set_path(&mut msg, &[bucket.to_string(), k], v);
        }
        Ok(Value::Object(msg))
    }
}

fn set_path(msg: &mut Map<String, Value>, path: &[String], v: Value) {
    let (last, parents) = path.split_last().expect("paths are never empty");
    let mut cur = msg;
    for p in parents {
        let entry = cur
            .entry(p.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry.as_object_mut().expect("just made an object");
    }
    cur.insert(last.clone(), v);
}

/// A progress bar on stderr when it is a terminal; silent otherwise (logs, CI).
struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Instant,
    enabled: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done: 0,
            started: Instant::now(),
            last_draw: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
        }
    }
    fn advance(&mut self, n: u64) {
        self.set(self.done + n);
    }
    fn set(&mut self, done: u64) {
        self.done = done;
        if self.enabled && self.last_draw.elapsed() > Duration::from_millis(200) {
            self.last_draw = Instant::now();
            self.draw();
        }
    }
    fn draw(&self) {
        let frac = if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        };
        let width = 30;
        let filled = ((frac * width as f64) as usize).min(width);
        let mb_s = self.done as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r[{}{}] {:5.1}%  {:.1} MB/s ",
            "=".repeat(filled),
            " ".repeat(width - filled),
            frac * 100.0,
            mb_s
        );
    }
    fn finish(&mut self) {
        if self.enabled {
            self.done = self.total;
            self.draw();
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> csv::StringRecord {
        csv::StringRecord::from(fields.to_vec())
    }

    #[test]
    fn default_csv_mapping_puts_unknown_columns_in_traits_or_properties() {
        let m = CsvMapping::parse(&[], Some("identify"), None).unwrap();
        let headers = record(&["userId", "email", "plan"]);
        let cols = m.columns(&headers).unwrap();
        let v = m
            .message(&cols, &record(&["u1", "a@example.com", ""]))
            .unwrap();
        assert_eq!(v["type"], "identify");
        assert_eq!(v["userId"], "u1");
        assert_eq!(v["traits"]["email"], "a@example.com");
        assert!(v["traits"].get("plan").is_none(), "empty cells are skipped");
    }

    #[test]
    fn explicit_mapping_casts_and_names_bad_values() {
        let maps = vec![
            "id=userId".to_string(),
            "amount=properties.revenue:number".to_string(),
        ];
        let m = CsvMapping::parse(&maps, Some("track"), Some("Order Completed")).unwrap();
        let cols = m.columns(&record(&["id", "amount", "ignored"])).unwrap();
        let v = m.message(&cols, &record(&["u1", "12.5", "x"])).unwrap();
        assert_eq!(v["properties"]["revenue"], 12.5);
        assert_eq!(v["event"], "Order Completed");
        assert!(v.get("ignored").is_none());
        let err = m
            .message(&cols, &record(&["u1", "twelve", "x"]))
            .unwrap_err();
        assert!(err.contains("properties.revenue"), "{err}");
        assert!(m.columns(&record(&["nope"])).is_err());
        assert!(CsvMapping::parse(&["a=b:float".into()], None, None).is_err());
    }

    #[test]
    fn derived_message_ids_are_stable_per_source_and_line() {
        let a = content_message_id("src_1", "{\"x\":1}");
        assert_eq!(a, content_message_id("src_1", "{\"x\":1}"));
        assert_ne!(a, content_message_id("src_2", "{\"x\":1}"));
        assert_ne!(a, content_message_id("src_1", "{\"x\":2}"));
    }
}
