//! Destinations as the admin API defines them: where to deliver, what to send, and how.
//!
//! Parsing is strict: unknown keys anywhere are refused (a misspelt `"filter"` would otherwise
//! forward every event), values are range-checked, and every error names the offending value
//! with a JSON Pointer. `to_json` writes the canonical form with every default made explicit,
//! and reads back to an equal destination; the id and the signing secret are not part of it
//! (the server adds them where it shows them).

use super::condition::{boolean, integer, object, only_keys, required, string, Condition, Object};
pub use super::condition::{pointer_token, ConfigError};
use super::retry::RetryPolicy;
use super::template::Template;
use serde_json::{json, Map, Value};

/// Event types a destination can filter on.
pub const EVENT_TYPES: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

/// Headers a destination may not set: hop-by-hop headers (RFC 9110 §7.6.1) belong to the
/// connection, `Content-Length` and `Host` to the request as sent, and the last two to
/// Tessera's own delivery guarantees, which a receiver must be able to trust.
pub const RESERVED_HEADERS: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "tessera-signature",
    "idempotency-key",
];

const MAX_NAME_CHARS: usize = 200;
const MAX_LIST: usize = 500;
const MAX_ITEM_CHARS: usize = 200;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_VALUE: usize = 8 * 1024;
const MAX_URL: usize = 2048;

/// A configured destination.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub id: String,
    /// The webhook signing secret.
    pub secret: String,
    pub name: String,
    pub transport: Transport,
    pub url: HttpUrl,
    pub timeout_ms: u64,
    /// Extra certificate authorities (PEM) trusted for this destination's `https://` URL,
    /// beside the built-in public roots (an internal service with a private CA).
    pub ca_certificate: Option<String>,
    pub filters: Filters,
    /// Applied to forwarded events when set.
    pub mapping: Option<Template>,
    pub batching: Batching,
    /// Consent categories every delivered message must carry as granted.
    pub consent: Vec<String>,
    /// Delivery is held; records are still produced.
    pub paused: bool,
    pub forward_events: bool,
    /// Audience ids whose entries and exits are synced.
    pub sync_audiences: Vec<String>,
    /// Keep each profile's records in order (one lane per profile).
    pub ordered: bool,
    /// Told of every completed deletion request (the person's identifiers), so it can delete
    /// its copy too.
    pub deletion_webhook: bool,
    /// Parallel requests (lanes).
    pub concurrency: u32,
    pub retry: RetryPolicy,
}

/// How a destination is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Webhook {
        method: Method,
        /// In the order the configuration lists them; names are unique ignoring case.
        headers: Vec<(String, String)>,
    },
    /// Segment's HTTP Tracking API (or anything speaking it) at `url`; the write key is sent
    /// as the Basic auth user.
    Segment { write_key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }
}

/// Which accepted events are forwarded. Every filter given must match; none means all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    /// Message types (`track`, `page`...).
    pub types: Vec<String>,
    /// Track event names, or page and screen names.
    pub events: Vec<String>,
    /// A condition over the stored message.
    pub condition: Option<Condition>,
    /// The profile must be in at least one of these audiences.
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub size: u32,
    pub wait_ms: u64,
}

/// An `http://` or `https://` URL, checked and split for the delivery client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl HttpUrl {
    /// Checks a URL: scheme, host (name, IPv4 or bracketed IPv6), port in 1..=65535. Refuses
    /// credentials (they would end up in logs; use headers) and fragments (never sent).
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        if s.len() > MAX_URL {
            return Err(format!("a URL has at most {MAX_URL} bytes"));
        }
        if s.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err("spaces, control and non-ASCII characters must be percent-encoded (and host names punycoded)".into());
        }
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        let (https, rest) = if lower.starts_with("https://") {
            (true, &s[8..])
        } else if lower.starts_with("http://") {
            (false, &s[7..])
        } else {
            return Err("must start with http:// or https://".into());
        };
        if s.contains('#') {
            return Err("a URL fragment (#...) is never sent; remove it".into());
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed; use a header".into());
        }
        let (host, port) = if authority.starts_with('[') {
            let close = authority.find(']').ok_or("unclosed \"[\" in the host")?;
            let ip = &authority[1..close];
            if !ip.contains(':')
                || !ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(format!("\"{ip}\" is not an IPv6 address"));
            }
            (&authority[..=close], &authority[close + 1..])
        } else {
            let colon = authority.find(':').unwrap_or(authority.len());
            let host = &authority[..colon];
            check_host(host)?;
            (host, &authority[colon..])
        };
        let port = match port {
            "" if https => 443,
            "" => 80,
            p => p
                .strip_prefix(':')
                .filter(|d| (1..=5).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u16>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("\"{p}\" is not a port in 1..=65535"))?,
        };
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Ok(HttpUrl {
            text: s.to_owned(),
            https,
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    pub fn is_https(&self) -> bool {
        self.https
    }
    /// The host as written (IPv6 addresses keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }
    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Path and query, at least `/`.
    pub fn path_and_query(&self) -> &str {
        &self.path
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    let labels = host.strip_suffix('.').unwrap_or(host);
    for label in labels.split('.') {
        let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if label.is_empty() || label.len() > 63 || !label.bytes().all(ok) {
            return Err(format!("\"{host}\" is not a valid host name"));
        }
    }
    Ok(())
}

impl Destination {
    /// Reads a destination from the admin API's JSON.
    pub fn parse(id: &str, secret: &str, json: &Value) -> Result<Destination, ConfigError> {
        let m = object(json, "")?;
        only_keys(
            m,
            "",
            &[
                "name",
                "type",
                "config",
                "filters",
                "mapping",
                "batching",
                "consent",
                "paused",
                "forward_events",
                "sync_audiences",
                "ordered",
                "deletion_webhook",
                "concurrency",
                "retry",
            ],
        )?;
        let name = string(required(m, "", "name")?, "/name")?;
        if name.chars().count() > MAX_NAME_CHARS || name.trim().is_empty() {
            return Err(ConfigError::new(
                "/name",
                format!("expected 1 to {MAX_NAME_CHARS} characters, not all blank"),
            ));
        }
        let webhook = match string(required(m, "", "type")?, "/type")? {
            "webhook" => true,
            "segment" => false,
            other => {
                return Err(ConfigError::new(
                    "/type",
                    format!("unknown type \"{other}\"; expected \"webhook\" or \"segment\""),
                ))
            }
        };
        let config = object(required(m, "", "config")?, "/config")?;
        let (transport, url, timeout_ms, ca_certificate) = parse_config(config, webhook)?;
        let filters = match m.get("filters") {
            None => Filters::default(),
            Some(f) => parse_filters(f)?,
        };
        let mapping = match m.get("mapping") {
            None | Some(Value::Null) => None,
            Some(t) => Some(Template::parse(t).map_err(|e| e.within("/mapping"))?),
        };
        let batching = parse_batching(m.get("batching"), webhook)?;
        let consent = opt_list(m, "consent")?;
        let sync_audiences = opt_list(m, "sync_audiences")?;
        let forward_events = match m.get("forward_events") {
            Some(v) => boolean(v, "/forward_events")?,
            // A destination set up to sync audiences has not asked for every event too.
            None => sync_audiences.is_empty(),
        };
        let concurrency = match m.get("concurrency") {
            None => 4,
            Some(v) => integer(v, "/concurrency", 1, 64)? as u32,
        };
        Ok(Destination {
            id: id.to_owned(),
            secret: secret.to_owned(),
            name: name.to_owned(),
            transport,
            url,
            timeout_ms,
            ca_certificate,
            filters,
            mapping,
            batching,
            consent,
            paused: opt_bool(m, "paused")?,
            forward_events,
            sync_audiences,
            ordered: opt_bool(m, "ordered")?,
            deletion_webhook: opt_bool(m, "deletion_webhook")?,
            concurrency,
            retry: match m.get("retry") {
                None => RetryPolicy::default(),
                Some(r) => RetryPolicy::from_json(r).map_err(|e| e.within("/retry"))?,
            },
        })
    }

    /// The canonical JSON form, every default explicit; excludes `id` and `secret`.
    pub fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert("url".into(), Value::String(self.url.as_str().to_owned()));
        match &self.transport {
            Transport::Webhook { method, headers } => {
                config.insert("method".into(), Value::String(method.as_str().into()));
                let h: Object = headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                config.insert("headers".into(), Value::Object(h));
            }
            Transport::Segment { write_key } => {
                config.insert("write_key".into(), Value::String(write_key.clone()));
            }
        }
        config.insert("timeout_ms".into(), Value::from(self.timeout_ms));
        if let Some(pem) = &self.ca_certificate {
            config.insert("ca_certificate".into(), Value::String(pem.clone()));
        }
        let mut filters = Map::new();
        let f = &self.filters;
        for (key, list) in [
            ("types", &f.types),
            ("events", &f.events),
            ("audiences", &f.audiences),
        ] {
            if !list.is_empty() {
                filters.insert(key.into(), json!(list));
            }
        }
        if let Some(c) = &f.condition {
            filters.insert("where".into(), c.to_json());
        }
        let mut out = json!({
            "name": self.name,
            "type": self.kind(),
            "config": config,
            "filters": filters,
            "batching": {"size": self.batching.size, "wait_ms": self.batching.wait_ms},
            "consent": self.consent,
            "paused": self.paused,
            "forward_events": self.forward_events,
            "sync_audiences": self.sync_audiences,
            "ordered": self.ordered,
            "deletion_webhook": self.deletion_webhook,
            "concurrency": self.concurrency,
            "retry": self.retry.to_json(),
        });
        if let Some(t) = &self.mapping {
            out["mapping"] = t.to_json();
        }
        out
    }

    /// `"webhook"` or `"segment"`.
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Webhook { .. } => "webhook",
            Transport::Segment { .. } => "segment",
        }
    }

    /// Every audience id the destination refers to (filters, `in_audience` in `where`, then
    /// subscriptions, without repeats), for the API's reference checks.
    pub fn audiences_used(&self) -> Vec<String> {
        let mut out = self.filters.audiences.clone();
        out.extend(self.filters.condition.iter().flat_map(Condition::audiences));
        out.extend(self.sync_audiences.iter().cloned());
        let mut seen = std::collections::HashSet::new();
        out.retain(|a| seen.insert(a.clone()));
        out
    }
}

/// What `config` holds: how to call, where, the request deadline, and an extra trusted CA.
type Endpoint = (Transport, HttpUrl, u64, Option<String>);

fn parse_config(m: &Object, webhook: bool) -> Result<Endpoint, ConfigError> {
    only_keys(
        m,
        "/config",
        &[
            "url",
            "method",
            "headers",
            "write_key",
            "timeout_ms",
            "ca_certificate",
        ],
    )?;
    // Checked as a certificate by the delivery side, which has the TLS stack.
    let ca_certificate = match m.get("ca_certificate") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let pem = string(v, "/config/ca_certificate")?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") || pem.len() > 64 * 1024 {
                return Err(ConfigError::new(
                    "/config/ca_certificate",
                    "expected PEM certificates (-----BEGIN CERTIFICATE-----), at most 64 KiB",
                ));
            }
            Some(pem.to_owned())
        }
    };
    let url = string(required(m, "/config", "url")?, "/config/url")?;
    let url = HttpUrl::parse(url).map_err(|e| ConfigError::new("/config/url", e))?;
    let timeout_ms = match m.get("timeout_ms") {
        None => 10_000,
        Some(v) => integer(v, "/config/timeout_ms", 100, 120_000)?,
    };
    let only = |key: &str, kind: &str| match m.get(key) {
        Some(_) => Err(ConfigError::new(
            format!("/config/{key}"),
            format!("only {kind} destinations take \"{key}\""),
        )),
        None => Ok(()),
    };
    let transport = if webhook {
        only("write_key", "segment")?;
        let method = match m.get("method") {
            None => Method::Post,
            Some(v) => match string(v, "/config/method")? {
                "POST" => Method::Post,
                "PUT" => Method::Put,
                "PATCH" => Method::Patch,
                other => {
                    return Err(ConfigError::new(
                        "/config/method",
                        format!("unsupported method \"{other}\"; expected POST, PUT or PATCH"),
                    ))
                }
            },
        };
        let headers = match m.get("headers") {
            None => Vec::new(),
            Some(h) => parse_headers(object(h, "/config/headers")?)?,
        };
        Transport::Webhook { method, headers }
    } else {
        only("method", "webhook")?;
        only("headers", "webhook")?;
        let key = string(required(m, "/config", "write_key")?, "/config/write_key")?;
        if key.is_empty()
            || key.len() > MAX_ITEM_CHARS
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ConfigError::new(
                "/config/write_key",
                format!("expected 1 to {MAX_ITEM_CHARS} printable ASCII characters"),
            ));
        }
        Transport::Segment {
            write_key: key.to_owned(),
        }
    };
    Ok((transport, url, timeout_ms, ca_certificate))
}

fn parse_headers(m: &Object) -> Result<Vec<(String, String)>, ConfigError> {
    if m.len() > MAX_HEADERS {
        return Err(ConfigError::new(
            "/config/headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(m.len());
    for (name, v) in m {
        let at = format!("/config/headers/{}", pointer_token(name));
        // RFC 9110 token characters: anything else would corrupt the request.
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(ConfigError::new(
                at,
                format!("\"{name}\" is not a valid header name"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(ConfigError::new(
                at,
                format!("\"{name}\" is set by Tessera and cannot be overridden"),
            ));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(ConfigError::new(
                at,
                format!("\"{name}\" is given twice (header names ignore case)"),
            ));
        }
        let value = string(v, &at)?;
        // Visible ASCII, spaces and tabs: a CR or LF would let a value inject headers.
        if value.len() > MAX_HEADER_VALUE
            || !value
                .bytes()
                .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        {
            return Err(ConfigError::new(
                at,
                format!("a header value has at most {MAX_HEADER_VALUE} printable ASCII characters"),
            ));
        }
        out.push((name.clone(), value.to_owned()));
    }
    Ok(out)
}

fn parse_filters(v: &Value) -> Result<Filters, ConfigError> {
    let m = object(v, "/filters")?;
    only_keys(m, "/filters", &["types", "events", "where", "audiences"])?;
    let list = |key: &str| match m.get(key) {
        None => Ok(Vec::new()),
        Some(v) => {
            let l = string_list(v, &format!("/filters/{key}"))?;
            if l.is_empty() {
                // An empty list would match nothing, which is never what was meant.
                return Err(ConfigError::new(
                    format!("/filters/{key}"),
                    "an empty list matches nothing; leave the filter out to match everything",
                ));
            }
            Ok(l)
        }
    };
    let types = list("types")?;
    if let Some(i) = types
        .iter()
        .position(|t| !EVENT_TYPES.contains(&t.as_str()))
    {
        return Err(ConfigError::new(
            format!("/filters/types/{i}"),
            format!(
                "unknown type \"{}\"; expected one of {}",
                types[i],
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let condition = match m.get("where") {
        None => None,
        Some(c) => Some(Condition::parse(c).map_err(|e| e.within("/filters/where"))?),
    };
    Ok(Filters {
        types,
        events: list("events")?,
        condition,
        audiences: list("audiences")?,
    })
}

fn parse_batching(v: Option<&Value>, webhook: bool) -> Result<Batching, ConfigError> {
    // Webhooks default to one request per record (what receivers of plain webhooks expect);
    // the Segment API is built for batches.
    let (size, wait_ms) = if webhook { (1, 0) } else { (100, 1_000) };
    let Some(v) = v else {
        return Ok(Batching { size, wait_ms });
    };
    let m = object(v, "/batching")?;
    only_keys(m, "/batching", &["size", "wait_ms"])?;
    Ok(Batching {
        size: match m.get("size") {
            None => size,
            Some(v) => integer(v, "/batching/size", 1, 500)? as u32,
        },
        wait_ms: match m.get("wait_ms") {
            None => wait_ms,
            Some(v) => integer(v, "/batching/wait_ms", 0, 60_000)?,
        },
    })
}

fn opt_bool(m: &Object, key: &str) -> Result<bool, ConfigError> {
    m.get(key)
        .map_or(Ok(false), |v| boolean(v, &format!("/{key}")))
}

fn opt_list(m: &Object, key: &str) -> Result<Vec<String>, ConfigError> {
    m.get(key)
        .map_or(Ok(Vec::new()), |v| string_list(v, &format!("/{key}")))
}

/// A list of short non-empty strings (names and ids).
fn string_list(v: &Value, at: &str) -> Result<Vec<String>, ConfigError> {
    let items = v
        .as_array()
        .ok_or_else(|| ConfigError::new(at, "expected an array of strings"))?;
    if items.len() > MAX_LIST {
        return Err(ConfigError::new(at, format!("at most {MAX_LIST} items")));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_ITEM_CHARS => Ok(s.to_owned()),
            _ => Err(ConfigError::new(
                format!("{at}/{i}"),
                format!("expected a string of 1 to {MAX_ITEM_CHARS} characters"),
            )),
        })
        .collect()
}

#[cfg(test)]
#[path = "tests/destination.rs"]
mod tests;
