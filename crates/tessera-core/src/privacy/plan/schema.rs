//! The JSON Schema subset of tracking plans, read once into a compiled tree (patterns compiled,
//! property names sorted for binary search, types as a bit set) so that checking an event does
//! no parsing at all. Reading is strict: an unknown keyword or a keyword of the wrong type is
//! an error naming a JSON Pointer, because a misspelt `maxLenght` that was silently ignored
//! would let every event pass. The canonical JSON form (`to_json`) reads back to an equal tree.

use super::format::Format;
use super::validate::number_cmp;
use super::{PlanError, MAX_SCHEMA_DEPTH};
use regex_lite::{Regex, RegexBuilder};
use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// A compiled pattern's size cap. Plans hold short patterns; the cap keeps an accidental huge
/// one from costing every event a large automaton walk (regex-lite's default is 10 MB).
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;

/// A schema: `true` (anything), `false` (nothing), or an object of keywords.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Schema {
    Bool(bool),
    // Boxed so that the many `Option<Schema>` fields stay one word plus a tag.
    Node(Box<Node>),
}

/// The keywords of one schema object; absent keywords are `None` or empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Node {
    pub types: Option<Types>,
    /// Sorted by name, so a property is found by binary search whatever the map order.
    pub properties: Vec<(String, Schema)>,
    pub required: Vec<String>,
    pub additional: Option<Schema>,
    pub items: Option<Schema>,
    pub min_items: Option<u64>,
    pub max_items: Option<u64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub enumeration: Option<Vec<Value>>,
    pub constant: Option<Value>,
    pub minimum: Option<Number>,
    pub maximum: Option<Number>,
    pub exclusive_minimum: Option<Number>,
    pub exclusive_maximum: Option<Number>,
    pub pattern: Option<Pattern>,
    pub format: Option<Format>,
    /// Never empty when present: an empty list is refused (it could match nothing).
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    /// `description`, `title`, `$comment`, `$schema`: no effect on checking, kept so that the
    /// plan an editor saved is the plan it gets back.
    pub annotations: Vec<(&'static str, String)>,
}

const ANNOTATIONS: [&str; 4] = ["$comment", "$schema", "description", "title"];

/// Every keyword read here, for the "did you mean" hint.
const KEYWORDS: [&str; 23] = [
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "anyOf",
    "oneOf",
    "$comment",
    "$schema",
    "description",
    "title",
];

/// Standard keywords this subset does not implement, refused with a message that says so
/// rather than "unknown".
const UNSUPPORTED: [&str; 20] = [
    "$ref",
    "$defs",
    "definitions",
    "$id",
    "$anchor",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "prefixItems",
    "contains",
    "uniqueItems",
    "multipleOf",
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "maxProperties",
];

/// A set of JSON types as bits, in the order of [`TYPE_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Types(u8);

/// The type names in canonical order: `to_json` writes a type list in this order.
pub(crate) const TYPE_NAMES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];

impl Types {
    fn bit(name: &str) -> Option<u8> {
        TYPE_NAMES.iter().position(|n| *n == name).map(|i| 1 << i)
    }

    // Bits of the hot-path test below, in `TYPE_NAMES` order.
    const OBJECT: u8 = 1;
    const ARRAY: u8 = 1 << 1;
    const STRING: u8 = 1 << 2;
    const NUMBER: u8 = 1 << 3;
    const INTEGER: u8 = 1 << 4;
    const BOOLEAN: u8 = 1 << 5;
    const NULL: u8 = 1 << 6;

    pub(crate) fn matches(self, v: &Value) -> bool {
        let has = |bit: u8| self.0 & bit != 0;
        match v {
            Value::Object(_) => has(Types::OBJECT),
            Value::Array(_) => has(Types::ARRAY),
            Value::String(_) => has(Types::STRING),
            Value::Number(n) => has(Types::NUMBER) || (has(Types::INTEGER) && is_integer(n)),
            Value::Bool(_) => has(Types::BOOLEAN),
            Value::Null => has(Types::NULL),
        }
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        TYPE_NAMES
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| n)
    }

    /// "string", "string or null", "object, array or null".
    pub(crate) fn describe(self) -> String {
        let names: Vec<&str> = self.names().collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            Some((last, _)) => (*last).to_owned(),
            None => String::new(),
        }
    }
}

/// JSON Schema's integer: any number without a fractional part, so `1.0` is one.
pub(crate) fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// A compiled `pattern`; equal when the source text is (compiled regexes do not compare).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub source: String,
    pub regex: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

fn err(pointer: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

/// `ptr/key` with the key escaped as RFC 6901 says.
pub(crate) fn child(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Reads a schema at `ptr`, `depth` schemas below the plan's top.
pub(crate) fn parse(v: &Value, ptr: &str, depth: u32) -> Result<Schema, PlanError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(err(
            ptr,
            format!("schemas nest deeper than {MAX_SCHEMA_DEPTH} levels"),
        ));
    }
    let m = match v {
        Value::Bool(b) => return Ok(Schema::Bool(*b)),
        Value::Object(m) => m,
        _ => return Err(err(ptr, "expected a schema (an object or a boolean)")),
    };
    let mut n = Node::default();
    for (key, val) in m {
        let p = child(ptr, key);
        let p = p.as_str();
        match key.as_str() {
            "type" => n.types = Some(types(val, p)?),
            "properties" => {
                let o = val
                    .as_object()
                    .ok_or_else(|| err(p, "expected an object of schemas by property name"))?;
                for (name, s) in o {
                    n.properties
                        .push((name.clone(), parse(s, &child(p, name), depth + 1)?));
                }
                n.properties.sort_by(|a, b| a.0.cmp(&b.0));
            }
            "required" => n.required = required(val, p)?,
            "additionalProperties" => n.additional = Some(parse(val, p, depth + 1)?),
            "items" => {
                if val.is_array() {
                    return Err(err(
                        p,
                        "expected a schema; the array (tuple) form of items is not supported",
                    ));
                }
                n.items = Some(parse(val, p, depth + 1)?);
            }
            "minItems" => n.min_items = Some(count(val, p)?),
            "maxItems" => n.max_items = Some(count(val, p)?),
            "minLength" => n.min_length = Some(count(val, p)?),
            "maxLength" => n.max_length = Some(count(val, p)?),
            "enum" => {
                let values = val
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| err(p, "expected a non-empty array of values"))?;
                for (i, x) in values.iter().enumerate() {
                    shallow(x, &format!("{p}/{i}"))?;
                }
                n.enumeration = Some(values.clone());
            }
            "const" => {
                shallow(val, p)?;
                n.constant = Some(val.clone());
            }
            "minimum" => n.minimum = Some(number(val, p)?),
            "maximum" => n.maximum = Some(number(val, p)?),
            "exclusiveMinimum" => n.exclusive_minimum = Some(number(val, p)?),
            "exclusiveMaximum" => n.exclusive_maximum = Some(number(val, p)?),
            "pattern" => n.pattern = Some(pattern(val, p)?),
            "format" => {
                let s = val.as_str().ok_or_else(|| err(p, "expected a string"))?;
                n.format = Some(Format::parse(s).ok_or_else(|| {
                    let known: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                    err(
                        p,
                        format!("unknown format \"{s}\"; expected {}", known.join(", ")),
                    )
                })?);
            }
            "anyOf" => n.any_of = alternatives(val, p, depth)?,
            "oneOf" => n.one_of = alternatives(val, p, depth)?,
            _ => {
                let Some(name) = ANNOTATIONS.into_iter().find(|a| a == key) else {
                    return Err(unknown(p, key));
                };
                let text = val.as_str().ok_or_else(|| err(p, "expected a string"))?;
                n.annotations.push((name, text.to_owned()));
            }
        }
    }
    // Bounds that contradict each other can never be met: almost surely a slip, and in block
    // mode it would silently drop every event of the type.
    let pairs = [
        (n.min_items, n.max_items, "minItems", "maxItems"),
        (n.min_length, n.max_length, "minLength", "maxLength"),
    ];
    for (lo, hi, lo_name, hi_name) in pairs {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo > hi {
                return Err(err(
                    &child(ptr, lo_name),
                    format!("{lo_name} is greater than {hi_name}"),
                ));
            }
        }
    }
    if let (Some(lo), Some(hi)) = (&n.minimum, &n.maximum) {
        if number_cmp(lo, hi) == Ordering::Greater {
            return Err(err(
                &child(ptr, "minimum"),
                "minimum is greater than maximum",
            ));
        }
    }
    n.annotations.sort();
    Ok(Schema::Node(Box::new(n)))
}

fn unknown(p: &str, key: &str) -> PlanError {
    if UNSUPPORTED.contains(&key) {
        return err(
            p,
            format!("keyword \"{key}\" is not supported in tracking plans"),
        );
    }
    // Case, `_` and `-` are the usual slips (`min_length`, `maxlength`).
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-' | '$'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let folded = fold(key);
    match KEYWORDS.iter().find(|k| fold(k) == folded) {
        Some(k) => err(
            p,
            format!("unknown keyword \"{key}\"; did you mean \"{k}\"?"),
        ),
        None => err(p, format!("unknown keyword \"{key}\"")),
    }
}

fn types(v: &Value, p: &str) -> Result<Types, PlanError> {
    let bit = |name: &Value, p: &str| -> Result<u8, PlanError> {
        name.as_str().and_then(Types::bit).ok_or_else(|| {
            err(
                p,
                format!("expected a type name: {}", TYPE_NAMES.join(", ")),
            )
        })
    };
    match v {
        Value::Array(list) if !list.is_empty() => {
            let mut set = 0u8;
            for (i, name) in list.iter().enumerate() {
                let ptr = format!("{p}/{i}");
                let b = bit(name, &ptr)?;
                if set & b != 0 {
                    return Err(err(&ptr, "type listed twice"));
                }
                set |= b;
            }
            Ok(Types(set))
        }
        Value::Array(_) => Err(err(p, "expected a type name or a non-empty list of them")),
        _ => Ok(Types(bit(v, p)?)),
    }
}

fn required(v: &Value, p: &str) -> Result<Vec<String>, PlanError> {
    let list = v
        .as_array()
        .ok_or_else(|| err(p, "expected an array of property names"))?;
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for (i, name) in list.iter().enumerate() {
        let ptr = format!("{p}/{i}");
        let name = name
            .as_str()
            .ok_or_else(|| err(&ptr, "expected a property name"))?;
        if names.iter().any(|n| n == name) {
            return Err(err(&ptr, format!("property \"{name}\" listed twice")));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// A non-negative integer; `5.0` is accepted as `5`, as JSON Schema counts it an integer.
fn count(v: &Value, p: &str) -> Result<u64, PlanError> {
    let n = v.as_number().filter(|n| is_integer(n));
    let exact = n.and_then(Number::as_u64);
    let from_float = n
        .and_then(Number::as_f64)
        .filter(|f| *f >= 0.0 && *f <= u32::MAX as f64)
        .map(|f| f as u64);
    exact
        .or(from_float)
        .ok_or_else(|| err(p, "expected a non-negative integer"))
}

fn number(v: &Value, p: &str) -> Result<Number, PlanError> {
    v.as_number()
        .cloned()
        .ok_or_else(|| err(p, "expected a number"))
}

fn pattern(v: &Value, p: &str) -> Result<Pattern, PlanError> {
    let source = v
        .as_str()
        .ok_or_else(|| err(p, "expected a regular expression as a string"))?;
    let regex = RegexBuilder::new(source)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| err(p, format!("invalid regular expression: {e}")))?;
    Ok(Pattern {
        source: source.to_owned(),
        regex,
    })
}

fn alternatives(v: &Value, p: &str, depth: u32) -> Result<Vec<Schema>, PlanError> {
    let list = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| err(p, "expected a non-empty array of schemas"))?;
    list.iter()
        .enumerate()
        .map(|(i, s)| parse(s, &format!("{p}/{i}"), depth + 1))
        .collect()
}

/// Refuses `enum`/`const` values nested deeper than schemas may be, so that comparing a
/// message value with them (which recurses as deep as both agree) stays shallow.
fn shallow(v: &Value, p: &str) -> Result<(), PlanError> {
    fn depth_within(v: &Value, left: u32) -> bool {
        match v {
            Value::Array(a) => left > 0 && a.iter().all(|x| depth_within(x, left - 1)),
            Value::Object(o) => left > 0 && o.values().all(|x| depth_within(x, left - 1)),
            _ => true,
        }
    }
    if depth_within(v, MAX_SCHEMA_DEPTH) {
        Ok(())
    } else {
        Err(err(
            p,
            format!("value nests deeper than {MAX_SCHEMA_DEPTH} levels"),
        ))
    }
}

impl Schema {
    /// The canonical JSON form: keys sorted, one type as a string and several as a list in
    /// [`TYPE_NAMES`] order, empty `properties`/`required` left out.
    pub(crate) fn to_json(&self) -> Value {
        let n = match self {
            Schema::Bool(b) => return Value::Bool(*b),
            Schema::Node(n) => n,
        };
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_owned(), v);
        };
        if let Some(t) = n.types {
            let names: Vec<Value> = t.names().map(Value::from).collect();
            put(
                "type",
                match <[Value; 1]>::try_from(names) {
                    Ok([one]) => one,
                    Err(many) => Value::Array(many),
                },
            );
        }
        if !n.properties.is_empty() {
            let props = n
                .properties
                .iter()
                .map(|(k, s)| (k.clone(), s.to_json()))
                .collect();
            put("properties", Value::Object(props));
        }
        if !n.required.is_empty() {
            put("required", Value::from(n.required.clone()));
        }
        let schemas = [("additionalProperties", &n.additional), ("items", &n.items)];
        for (k, s) in schemas {
            if let Some(s) = s {
                put(k, s.to_json());
            }
        }
        let counts = [
            ("minItems", n.min_items),
            ("maxItems", n.max_items),
            ("minLength", n.min_length),
            ("maxLength", n.max_length),
        ];
        for (k, c) in counts {
            if let Some(c) = c {
                put(k, Value::from(c));
            }
        }
        if let Some(e) = &n.enumeration {
            put("enum", Value::Array(e.clone()));
        }
        if let Some(c) = &n.constant {
            put("const", c.clone());
        }
        let bounds = [
            ("minimum", &n.minimum),
            ("maximum", &n.maximum),
            ("exclusiveMinimum", &n.exclusive_minimum),
            ("exclusiveMaximum", &n.exclusive_maximum),
        ];
        for (k, b) in bounds {
            if let Some(b) = b {
                put(k, Value::Number(b.clone()));
            }
        }
        if let Some(p) = &n.pattern {
            put("pattern", Value::from(p.source.clone()));
        }
        if let Some(f) = n.format {
            put("format", Value::from(f.as_str()));
        }
        for (k, list) in [("anyOf", &n.any_of), ("oneOf", &n.one_of)] {
            if !list.is_empty() {
                put(k, list.iter().map(Schema::to_json).collect());
            }
        }
        for (k, text) in &n.annotations {
            put(k, Value::from(text.clone()));
        }
        Value::Object(m)
    }
}
