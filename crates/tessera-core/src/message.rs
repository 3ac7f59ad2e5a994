//! Turns one incoming Segment message into the event Tessera appends to its log.
//!
//! The rules follow Segment's Tracking API: the endpoint or `type` names the kind of call;
//! `userId` or `anonymousId` is required (`previousId` and `userId` for alias); `messageId` is
//! generated when absent; batch-level `context` and `integrations` are merged into the item;
//! `timestamp = receivedAt − (sentAt − originalTimestamp)` corrects the device's clock skew.

use crate::error::MessageError;
use crate::time::{format_iso8601, parse_iso8601, Millis};
use serde_json::{Map, Value};

/// Segment's limit on one message, in bytes of JSON as received.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Longest `messageId` kept; longer ones are refused rather than truncated (truncation could
/// make two distinct messages collide in deduplication).
pub const MAX_MESSAGE_ID_CHARS: usize = 256;

/// The six kinds of Segment call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Identify,
    Track,
    Page,
    Screen,
    Group,
    Alias,
    /// A timer tick the applier appends to the log, so that timers (journey waits) fire at a
    /// fixed place in the log and a replay fires them identically. Never accepted from clients.
    Tick,
    /// A trait written by a journey step, appended by the applier and applied like an event.
    /// Never accepted from clients.
    SetTrait,
}

impl MessageType {
    pub const ALL: [MessageType; 6] = [
        MessageType::Identify,
        MessageType::Track,
        MessageType::Page,
        MessageType::Screen,
        MessageType::Group,
        MessageType::Alias,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Identify => "identify",
            MessageType::Track => "track",
            MessageType::Page => "page",
            MessageType::Screen => "screen",
            MessageType::Group => "group",
            MessageType::Alias => "alias",
            MessageType::Tick => "tick",
            MessageType::SetTrait => "set_trait",
        }
    }

    /// The type named by a message's `type` field.
    pub fn parse(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The type served by an endpoint path segment, long (`track`) or browser short form (`t`).
    pub fn from_endpoint(segment: &str) -> Option<MessageType> {
        match segment {
            "i" => Some(MessageType::Identify),
            "t" => Some(MessageType::Track),
            "p" => Some(MessageType::Page),
            "s" => Some(MessageType::Screen),
            "g" => Some(MessageType::Group),
            "a" => Some(MessageType::Alias),
            long => MessageType::parse(long),
        }
    }
}

/// What the receiving side knows about a message besides its own fields.
#[derive(Debug, Default, Clone, Copy)]
pub struct IngestContext<'a> {
    /// When the server received the request (the only clock reading involved).
    pub received_at: Millis,
    /// `sentAt` of the enclosing batch, already parsed.
    pub batch_sent_at: Option<Millis>,
    /// `context` of the enclosing batch, merged under the item's own.
    pub batch_context: Option<&'a Map<String, Value>>,
    /// `integrations` of the enclosing batch, merged under the item's own.
    pub batch_integrations: Option<&'a Map<String, Value>>,
    /// Set by single-message endpoints: the type the path names.
    pub endpoint_type: Option<MessageType>,
}

/// A validated message ready for the log: the stored JSON plus the columns the log indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedEvent {
    pub message_id: String,
    pub kind: MessageType,
    /// `event` of a track call, `name` of a page or screen call.
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: Millis,
    pub received_at: Millis,
    /// The stored Segment message, as JSON text.
    pub body: String,
}

/// Validates and normalises one message. `raw_len` is its size as received; `new_message_id`
/// is called only when the message has no `messageId`.
pub fn normalize(
    raw: Value,
    raw_len: usize,
    ctx: &IngestContext<'_>,
    new_message_id: impl FnOnce() -> String,
) -> Result<NormalizedEvent, MessageError> {
    let (mut event, message) = normalize_value(raw, raw_len, ctx, new_message_id)?;
    event.body = message.to_string();
    Ok(event)
}

/// [`normalize`] without its last step: the normalised message is returned as a JSON value and
/// `body` is left empty, for a caller that changes the message further before it is stored
/// (the server applies tracking plans and PII policies) and then sets `body` to its JSON text.
/// Saves that caller parsing the text `normalize` would have written.
pub fn normalize_value(
    raw: Value,
    raw_len: usize,
    ctx: &IngestContext<'_>,
    new_message_id: impl FnOnce() -> String,
) -> Result<(NormalizedEvent, Value), MessageError> {
    if raw_len > MAX_EVENT_BYTES {
        return Err(MessageError::TooLarge {
            size: raw_len,
            limit: MAX_EVENT_BYTES,
        });
    }
    let Value::Object(mut msg) = raw else {
        return Err(MessageError::NotAnObject);
    };
    // The write key is a credential: it authenticates the request and is never stored.
    msg.remove("writeKey");

    let kind = message_type(&msg, ctx.endpoint_type)?;
    msg.insert("type".into(), Value::String(kind.as_str().into()));

    let user_id = take_id(&mut msg, "userId")?;
    let anonymous_id = take_id(&mut msg, "anonymousId")?;
    match kind {
        MessageType::Alias => {
            if user_id.is_none() {
                return Err(MessageError::MissingField("userId"));
            }
            if take_id(&mut msg, "previousId")?.is_none() {
                return Err(MessageError::MissingField("previousId"));
            }
        }
        _ if user_id.is_none() && anonymous_id.is_none() => {
            return Err(MessageError::MissingIdentity)
        }
        _ => {}
    }
    if kind == MessageType::Group && take_id(&mut msg, "groupId")?.is_none() {
        return Err(MessageError::MissingField("groupId"));
    }

    let event = match kind {
        MessageType::Track => match msg.get("event") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(MessageError::MissingField("event"))
            }
            Some(_) => return Err(wrong_type("event", "a string")),
        },
        MessageType::Page | MessageType::Screen => match msg.get("name") {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => None,
            Some(_) => return Err(wrong_type("name", "a string")),
        },
        _ => None,
    };

    for field in ["properties", "traits", "context", "integrations"] {
        match msg.get(field) {
            Some(Value::Null) => {
                msg.remove(field);
            }
            Some(Value::Object(_)) | None => {}
            Some(_) => return Err(wrong_type(field, "an object")),
        }
    }
    merge_under(&mut msg, "context", ctx.batch_context);
    merge_under(&mut msg, "integrations", ctx.batch_integrations);

    let message_id = match take_id(&mut msg, "messageId")? {
        Some(id) if id.chars().count() > MAX_MESSAGE_ID_CHARS => {
            return Err(MessageError::InvalidValue {
                field: "messageId",
                reason: format!("longer than {MAX_MESSAGE_ID_CHARS} characters"),
            })
        }
        Some(id) => id,
        None => new_message_id(),
    };
    msg.insert("messageId".into(), Value::String(message_id.clone()));

    let timestamp = correct_timestamp(&mut msg, ctx)?;

    let event = NormalizedEvent {
        message_id,
        kind,
        event,
        user_id,
        anonymous_id,
        timestamp,
        received_at: ctx.received_at,
        body: String::new(),
    };
    Ok((event, Value::Object(msg)))
}

fn message_type(
    msg: &Map<String, Value>,
    endpoint: Option<MessageType>,
) -> Result<MessageType, MessageError> {
    match (msg.get("type"), endpoint) {
        (None | Some(Value::Null), Some(t)) => Ok(t),
        (None | Some(Value::Null), None) => Err(MessageError::MissingField("type")),
        (Some(Value::String(s)), endpoint) => {
            let found =
                MessageType::parse(s).ok_or_else(|| MessageError::UnknownType(s.clone()))?;
            match endpoint {
                Some(expected) if expected != found => Err(MessageError::TypeMismatch {
                    expected: expected.as_str(),
                    found: s.clone(),
                }),
                _ => Ok(found),
            }
        }
        (Some(_), _) => Err(wrong_type("type", "a string")),
    }
}

/// Reads an identifier field: strings are trimmed, numbers become their decimal text (several
/// SDKs send numeric user ids), null and blank mean absent. The cleaned value is written back.
fn take_id(
    msg: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, MessageError> {
    let id = match msg.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(wrong_type(field, "a string")),
    };
    match &id {
        Some(v) => msg.insert(field.into(), Value::String(v.clone())),
        None => msg.remove(field),
    };
    Ok(id)
}

/// Applies Segment's skew correction and writes `timestamp`, `originalTimestamp`, `sentAt`
/// and `receivedAt` back in canonical form. Returns the corrected event time.
fn correct_timestamp(
    msg: &mut Map<String, Value>,
    ctx: &IngestContext<'_>,
) -> Result<Millis, MessageError> {
    let original = match time_field(msg, "originalTimestamp")? {
        Some(t) => Some(t),
        None => time_field(msg, "timestamp")?,
    };
    let sent_at = match time_field(msg, "sentAt")? {
        Some(t) => Some(t),
        None => ctx.batch_sent_at,
    };
    let timestamp = match (original, sent_at) {
        (Some(orig), Some(sent)) => ctx.received_at - (sent - orig),
        (Some(orig), None) => orig,
        (None, _) => ctx.received_at,
    };
    let mut put = |k: &str, v: Option<Millis>| match v {
        Some(ms) => msg.insert(k.into(), Value::String(format_iso8601(ms))),
        None => msg.remove(k),
    };
    put("originalTimestamp", original);
    put("sentAt", sent_at);
    put("timestamp", Some(timestamp));
    put("receivedAt", Some(ctx.received_at));
    Ok(timestamp)
}

fn time_field(
    msg: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<Millis>, MessageError> {
    match msg.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            parse_iso8601(s)
                .map(Some)
                .map_err(|e| MessageError::InvalidValue {
                    field,
                    reason: e.to_string(),
                })
        }
        Some(_) => Err(wrong_type(field, "an ISO-8601 date-time string")),
    }
}

/// Parses a batch-level `sentAt` value with the same rules as a message's.
pub fn parse_sent_at(v: Option<&Value>) -> Result<Option<Millis>, MessageError> {
    let mut m = Map::new();
    if let Some(v) = v {
        m.insert("sentAt".into(), v.clone());
    }
    time_field(&m, "sentAt")
}

/// Deep-merges `batch` under `msg[key]`: the item's own values win.
fn merge_under(msg: &mut Map<String, Value>, key: &str, batch: Option<&Map<String, Value>>) {
    let Some(batch) = batch.filter(|b| !b.is_empty()) else {
        return;
    };
    match msg.get_mut(key) {
        Some(Value::Object(own)) => merge_missing(own, batch),
        _ => {
            msg.insert(key.into(), Value::Object(batch.clone()));
        }
    }
}

fn merge_missing(own: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (k, v) in defaults {
        match (own.get_mut(k), v) {
            (Some(Value::Object(o)), Value::Object(d)) => merge_missing(o, d),
            (Some(_), _) => {}
            (None, v) => {
                own.insert(k.clone(), v.clone());
            }
        }
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> MessageError {
    MessageError::WrongType { field, expected }
}

#[cfg(test)]
mod tests;
