//! Reads from a stored event only what identity resolution and profiles need: ids, traits,
//! `context.externalIds` and device ids. Everything else in the body is skipped unparsed.

use crate::message::MessageType;
use crate::time::Millis;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Traits as written in the event, values still JSON text.
pub type RawTraits<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// One event from the log, as the engine sees it.
#[derive(Debug, Default)]
pub struct EventFacts<'a> {
    pub position: i64,
    pub timestamp: Millis,
    pub source: &'a str,
    pub kind: Option<MessageType>,
    pub user_id: Option<Cow<'a, str>>,
    pub anonymous_id: Option<Cow<'a, str>>,
    pub previous_id: Option<Cow<'a, str>>,
    pub group_id: Option<Cow<'a, str>>,
    /// `traits` of an identify or group call.
    pub traits: RawTraits<'a>,
    /// `context.traits` of any call.
    pub context_traits: RawTraits<'a>,
    /// `context.externalIds` as (type, id).
    pub external_ids: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub device_id: Option<Cow<'a, str>>,
    pub advertising_id: Option<Cow<'a, str>>,
}

/// Every field is read as raw JSON first, so that an odd type in one of them (a numeric
/// device id, a string where an object belongs) costs only that field, never the event.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
    #[serde(rename = "userId", borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(rename = "anonymousId", borrow, default)]
    anonymous_id: Option<&'a RawValue>,
    #[serde(rename = "previousId", borrow, default)]
    previous_id: Option<&'a RawValue>,
    #[serde(rename = "groupId", borrow, default)]
    group_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    traits: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Context<'a> {
    #[serde(borrow, default)]
    traits: Option<&'a RawValue>,
    #[serde(rename = "externalIds", borrow, default)]
    external_ids: Option<&'a RawValue>,
    #[serde(borrow, default)]
    device: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ExternalId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Device<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(rename = "advertisingId", borrow, default)]
    advertising_id: Option<&'a RawValue>,
}

/// A string or number as text; anything else is not an id.
fn id_of<'a>(raw: Option<&'a RawValue>) -> Option<Cow<'a, str>> {
    let text = raw?.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<'a, str>>(text).ok(),
        b'-' | b'0'..=b'9' => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

fn object_of<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>) -> Option<T> {
    let text = raw?.get();
    if !text.starts_with('{') && !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Why a stored body could not be read. The log only holds validated messages, so this means
/// a body written by something other than the ingest path.
#[derive(Debug, thiserror::Error)]
#[error("unreadable event body at position {position}: {reason}")]
pub struct FactsError {
    pub position: i64,
    pub reason: String,
}

impl<'a> EventFacts<'a> {
    /// Reads the facts of one stored event.
    pub fn parse(
        position: i64,
        timestamp: Millis,
        source: &'a str,
        body: &'a str,
    ) -> Result<EventFacts<'a>, FactsError> {
        let b: Body<'a> = serde_json::from_str(body).map_err(|e| FactsError {
            position,
            reason: e.to_string(),
        })?;
        let context: Option<Context<'a>> = object_of(b.context);
        let (context_traits, external_ids, device) = match context {
            Some(c) => (
                object_of(c.traits).unwrap_or_default(),
                object_of::<Vec<ExternalId<'a>>>(c.external_ids).unwrap_or_default(),
                object_of::<Device<'a>>(c.device),
            ),
            None => Default::default(),
        };
        let (device_id, advertising_id) = match device {
            Some(d) => (id_of(d.id), id_of(d.advertising_id)),
            None => (None, None),
        };
        let kind = id_of(b.kind);
        Ok(EventFacts {
            position,
            timestamp,
            source,
            kind: kind.as_deref().and_then(MessageType::parse),
            user_id: id_of(b.user_id),
            anonymous_id: id_of(b.anonymous_id),
            previous_id: id_of(b.previous_id),
            group_id: id_of(b.group_id),
            traits: object_of(b.traits).unwrap_or_default(),
            context_traits,
            external_ids: external_ids
                .into_iter()
                .filter_map(|e| Some((id_of(e.kind)?, id_of(e.id)?)))
                .collect(),
            device_id,
            advertising_id,
        })
    }

    /// A trait of the person by dotted path: `traits` first, then `context.traits`. Only
    /// string and number values can be identifiers.
    pub fn person_trait(&self, path: &str) -> Option<String> {
        let from = |t: &RawTraits<'a>| lookup(t, path);
        if self.kind == Some(MessageType::Group) {
            return from(&self.context_traits);
        }
        from(&self.traits).or_else(|| from(&self.context_traits))
    }
}

fn lookup(traits: &RawTraits<'_>, path: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let raw = traits.get(head)?;
    if rest.is_none() {
        // The common case (`email`, `phone`): read the string without building a Value.
        return id_of(Some(raw)).map(Cow::into_owned);
    }
    let mut v: serde_json::Value = serde_json::from_str(raw.get()).ok()?;
    if let Some(rest) = rest {
        for part in rest.split('.') {
            v = v.get_mut(part)?.take();
        }
    }
    match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
