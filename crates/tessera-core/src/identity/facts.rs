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
    /// A track call's `event`.
    pub event: Option<Cow<'a, str>>,
    /// The call's `properties`, unparsed.
    pub properties: Option<&'a RawValue>,
    /// `context.consent.categoryPreferences` (category → granted), as Segment's consent
    /// management sends it: the person's consent as of this event.
    pub consent: RawTraits<'a>,
}

/// Where consent is in a message; read only from bodies that mention it.
#[derive(Deserialize)]
struct ConsentBody<'a> {
    #[serde(borrow, default)]
    context: Option<ConsentContext<'a>>,
}

#[derive(Deserialize)]
struct ConsentContext<'a> {
    #[serde(borrow, default)]
    consent: Option<ConsentBlock<'a>>,
}

#[derive(Deserialize)]
struct ConsentBlock<'a> {
    #[serde(rename = "categoryPreferences", borrow, default)]
    category_preferences: Option<RawTraits<'a>>,
}

/// The consent preferences of a body: booleans only (anything else is not a decision).
fn consent_of(body: &str) -> RawTraits<'_> {
    // Most events carry none: a substring test spares them a second parse.
    if !body.contains("\"categoryPreferences\"") {
        return RawTraits::new();
    }
    let mut prefs = serde_json::from_str::<ConsentBody<'_>>(body)
        .ok()
        .and_then(|b| b.context?.consent?.category_preferences)
        .unwrap_or_default();
    prefs.retain(|k, v| !k.is_empty() && matches!(v.get().trim(), "true" | "false"));
    prefs
}

/// A stored message as far as identity needs it. Ids are read as raw JSON (a number or a
/// string; anything else is no id). `traits` and `context` are read as `T` and `C`: in one
/// pass as the objects they nearly always are ([`FastBody`]), or, when that fails, as raw JSON
/// first ([`LenientBody`]), so that an odd type below `context` costs only that field.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>, C: Deserialize<'de>"))]
struct Body<'a, T, C> {
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
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
    #[serde(default = "Option::default")]
    traits: Option<T>,
    #[serde(default = "Option::default")]
    context: Option<C>,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>, X: Deserialize<'de>, D: Deserialize<'de>"))]
struct Context<T, X, D> {
    #[serde(default = "Option::default")]
    traits: Option<T>,
    #[serde(rename = "externalIds", default = "Option::default")]
    external_ids: Option<X>,
    #[serde(default = "Option::default")]
    device: Option<D>,
}

type FastBody<'a> =
    Body<'a, RawTraits<'a>, Context<RawTraits<'a>, Vec<ExternalId<'a>>, Device<'a>>>;
type LenientBody<'a> = Body<'a, &'a RawValue, &'a RawValue>;
type LenientContext<'a> = Context<&'a RawValue, &'a RawValue, &'a RawValue>;

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

impl<'a, T, C> Body<'a, T, C> {
    /// The facts of the body's ids, without traits or context yet.
    fn ids_into(&self, position: i64, timestamp: Millis, source: &'a str) -> EventFacts<'a> {
        EventFacts {
            position,
            timestamp,
            source,
            kind: id_of(self.kind).as_deref().and_then(MessageType::parse),
            user_id: id_of(self.user_id),
            anonymous_id: id_of(self.anonymous_id),
            previous_id: id_of(self.previous_id),
            group_id: id_of(self.group_id),
            event: self
                .event
                .and_then(|raw| serde_json::from_str::<Cow<'a, str>>(raw.get()).ok()),
            properties: self.properties,
            ..EventFacts::default()
        }
    }
}

impl<'a> EventFacts<'a> {
    fn with(
        mut self,
        traits: RawTraits<'a>,
        context_traits: RawTraits<'a>,
        external_ids: Vec<ExternalId<'a>>,
        device: Option<Device<'a>>,
    ) -> EventFacts<'a> {
        if let Some(d) = device {
            self.device_id = id_of(d.id);
            self.advertising_id = id_of(d.advertising_id);
        }
        self.traits = traits;
        self.context_traits = context_traits;
        self.external_ids = external_ids
            .into_iter()
            .filter_map(|e| Some((id_of(e.kind)?, id_of(e.id)?)))
            .collect();
        self
    }
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
    /// The name segmentation knows the event by: a track call's `event`, `page` or `screen`
    /// for those calls; identify, group and alias calls have none.
    pub fn event_name(&self) -> Option<&str> {
        match self.kind? {
            MessageType::Track => self.event.as_deref(),
            MessageType::Page => Some("page"),
            MessageType::Screen => Some("screen"),
            _ => None,
        }
    }

    /// Reads the facts of one stored event.
    pub fn parse(
        position: i64,
        timestamp: Millis,
        source: &'a str,
        body: &'a str,
    ) -> Result<EventFacts<'a>, FactsError> {
        if let Ok(b) = serde_json::from_str::<FastBody<'a>>(body) {
            let facts = b.ids_into(position, timestamp, source);
            let (context_traits, external_ids, device) = match b.context {
                Some(c) => (
                    c.traits.unwrap_or_default(),
                    c.external_ids.unwrap_or_default(),
                    c.device,
                ),
                None => Default::default(),
            };
            let traits = b.traits.unwrap_or_default();
            let mut facts = facts.with(traits, context_traits, external_ids, device);
            facts.consent = consent_of(body);
            return Ok(facts);
        }
        let b: LenientBody<'a> = serde_json::from_str(body).map_err(|e| FactsError {
            position,
            reason: e.to_string(),
        })?;
        let facts = b.ids_into(position, timestamp, source);
        let context: Option<LenientContext<'a>> = object_of(b.context);
        let (context_traits, external_ids, device) = match context {
            Some(c) => (
                object_of(c.traits).unwrap_or_default(),
                object_of::<Vec<ExternalId<'a>>>(c.external_ids).unwrap_or_default(),
                object_of::<Device<'a>>(c.device),
            ),
            None => Default::default(),
        };
        let traits = object_of(b.traits).unwrap_or_default();
        let mut facts = facts.with(traits, context_traits, external_ids, device);
        facts.consent = consent_of(body);
        Ok(facts)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_odd_field_below_context_costs_only_that_field() {
        let odd = r#"{"type":"identify","userId":"u1","traits":{"email":"a@x.com"},
            "context":{"traits":"oops","device":{"id":42},"externalIds":[{"id":"c1","type":"crm"}]}}"#;
        let f = EventFacts::parse(1, 5, "src", odd).unwrap();
        assert_eq!(f.kind, Some(MessageType::Identify));
        assert_eq!(f.user_id.as_deref(), Some("u1"));
        assert_eq!(f.person_trait("email").as_deref(), Some("a@x.com"));
        assert!(f.context_traits.is_empty());
        assert_eq!(f.device_id.as_deref(), Some("42"));
        assert_eq!(f.external_ids.len(), 1);
    }

    #[test]
    fn the_one_pass_and_the_lenient_reading_agree() {
        let body = r#"{"type":"track","event":"E","userId":7,"anonymousId":"a\"1",
            "traits":{"x":1},"context":{"traits":{"email":"B@x.com","plan":"pro"},
            "device":{"id":"d1","advertisingId":"ad1"},"externalIds":[{"id":"c1","type":"crm"}]}}"#;
        let fast = EventFacts::parse(1, 5, "src", body).unwrap();
        let b: LenientBody<'_> = serde_json::from_str(body).unwrap();
        let c: LenientContext<'_> = object_of(b.context).unwrap();
        assert_eq!(fast.user_id.as_deref(), Some("7"));
        assert_eq!(fast.anonymous_id.as_deref(), Some("a\"1"));
        let lenient_traits: RawTraits<'_> = object_of(c.traits).unwrap();
        assert_eq!(
            fast.context_traits.keys().collect::<Vec<_>>(),
            lenient_traits.keys().collect::<Vec<_>>()
        );
        assert_eq!(fast.device_id.as_deref(), Some("d1"));
        assert_eq!(fast.advertising_id.as_deref(), Some("ad1"));
        assert_eq!(fast.external_ids, vec![("crm".into(), "c1".into())]);
    }
}
