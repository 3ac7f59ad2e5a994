//! A workspace's identity rules: which identifier types exist, their priority and limits, which
//! values are blocked, and the caps on merges and identifiers per profile.
//!
//! Rules are read from JSON (the admin API and the `[identity]` table of the config file share
//! this form) and every problem names the field it is about.

use crate::time::Millis;
use serde_json::{json, Map, Value};
use thiserror::Error;

/// Built-in identifier types, in their default priority order. `group_id` is not among them:
/// it identifies accounts (see `group` calls), never joins two people.
pub const BUILT_IN_TYPES: [&str; 6] = [
    "user_id",
    "email",
    "phone",
    "device_id",
    "advertising_id",
    "anonymous_id",
];

const DEFAULT_BLOCKED_VALUES: [&str; 8] = [
    "",
    "null",
    "undefined",
    "anonymous",
    "-1",
    "none",
    "nil",
    "unknown",
];
const DEFAULT_BLOCKED_PATTERNS: [&str; 1] = ["^[0-]*$"];

/// The rule for one identifier type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRule {
    pub name: String,
    /// 1 is the highest priority; identifiers of lower priority are dropped first.
    pub priority: u32,
    /// How many values of this type one profile may hold.
    pub limit: u32,
    /// When set, only values seen within this window count towards the limit.
    pub window: Option<Millis>,
    /// For custom types: the trait (dotted path) a value is read from.
    pub trait_path: Option<String>,
    pub enabled: bool,
}

/// All identity rules of a workspace.
#[derive(Debug, Clone)]
pub struct IdentityRules {
    /// Sorted by priority, then name.
    pub types: Vec<TypeRule>,
    pub blocked_values: Vec<String>,
    pub blocked_patterns: Vec<String>,
    compiled_patterns: Vec<Pattern>,
    /// Identifiers removed from profiles by a split: they never join anything again.
    pub blocked_identifiers: Vec<(String, String)>,
    pub max_merges: u32,
    pub max_identifiers: u32,
    /// Country calling code (digits, e.g. `"1"` or `"44"`) for phone numbers without one.
    pub phone_country_code: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RulesError {
    #[error("field `{field}`: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Default for IdentityRules {
    fn default() -> Self {
        let types = BUILT_IN_TYPES
            .iter()
            .enumerate()
            .map(|(i, name)| TypeRule {
                name: name.to_string(),
                priority: i as u32 + 1,
                limit: if *name == "user_id" { 1 } else { 5 },
                window: None,
                trait_path: None,
                enabled: true,
            })
            .collect();
        let mut rules = IdentityRules {
            types,
            blocked_values: DEFAULT_BLOCKED_VALUES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            blocked_patterns: DEFAULT_BLOCKED_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            compiled_patterns: Vec::new(),
            blocked_identifiers: Vec::new(),
            max_merges: 100,
            max_identifiers: 1000,
            phone_country_code: None,
        };
        rules.compile().expect("default patterns compile");
        rules
    }
}

impl PartialEq for IdentityRules {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

impl IdentityRules {
    /// Reads rules from their JSON form; anything not given keeps its default.
    pub fn from_json(v: &Value) -> Result<IdentityRules, RulesError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("identity", "must be an object"))?;
        let mut rules = IdentityRules::default();
        for (key, value) in obj {
            match key.as_str() {
                "identifiers" => rules.read_types(value)?,
                "blocked_values" => rules.blocked_values = strings(value, key)?,
                "blocked_patterns" => rules.blocked_patterns = strings(value, key)?,
                "blocked_identifiers" => rules.blocked_identifiers = pairs(value, key)?,
                "max_merges" => rules.max_merges = count(value, key)?,
                "max_identifiers" => rules.max_identifiers = count(value, key)?.max(1),
                "phone_country_code" => {
                    let cc = value
                        .as_str()
                        .map(|s| s.trim_start_matches('+').to_string());
                    match cc {
                        Some(cc) if !cc.is_empty() && cc.len() <= 3 && all_digits(&cc) => {
                            rules.phone_country_code = Some(cc)
                        }
                        _ => return Err(invalid(key, "must be a calling code such as \"+1\"")),
                    }
                }
                other => return Err(invalid(other, "unknown field")),
            }
        }
        rules.sort_types();
        rules.compile()?;
        Ok(rules)
    }

    fn read_types(&mut self, v: &Value) -> Result<(), RulesError> {
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("identifiers", "must be an object keyed by type name"))?;
        for (name, spec) in obj {
            let field = format!("identifiers.{name}");
            if name == "group_id" {
                return Err(invalid(field, "group_id identifies accounts, not people"));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(field, "type names use letters, digits and `_`"));
            }
            let spec = spec
                .as_object()
                .ok_or_else(|| invalid(&field, "must be an object"))?;
            let built_in = BUILT_IN_TYPES.contains(&name.as_str());
            let idx = match self.types.iter().position(|t| &t.name == name) {
                Some(i) => i,
                None => {
                    self.types.push(TypeRule {
                        name: name.clone(),
                        priority: BUILT_IN_TYPES.len() as u32 + 1,
                        limit: 5,
                        window: None,
                        trait_path: None,
                        enabled: true,
                    });
                    self.types.len() - 1
                }
            };
            let rule = &mut self.types[idx];
            for (k, val) in spec {
                let f = format!("{field}.{k}");
                match k.as_str() {
                    "priority" => rule.priority = count(val, &f)?.max(1),
                    "limit" => rule.limit = count(val, &f)?.max(1),
                    "window" => {
                        rule.window = match val {
                            Value::Null => None,
                            Value::String(s) => Some(parse_window(s).ok_or_else(|| {
                                invalid(&f, "must be a duration such as \"30d\" or \"12h\"")
                            })?),
                            _ => return Err(invalid(&f, "must be a duration such as \"30d\"")),
                        }
                    }
                    "trait" if !built_in => {
                        let path = val
                            .as_str()
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| invalid(&f, "must be a trait name or dotted path"))?;
                        rule.trait_path = Some(path.to_string());
                    }
                    "enabled" => {
                        rule.enabled = val
                            .as_bool()
                            .ok_or_else(|| invalid(&f, "must be true or false"))?
                    }
                    _ => return Err(invalid(f, "unknown field")),
                }
            }
        }
        Ok(())
    }

    fn sort_types(&mut self) {
        self.types
            .sort_by(|a, b| a.priority.cmp(&b.priority).then(a.name.cmp(&b.name)));
    }

    fn compile(&mut self) -> Result<(), RulesError> {
        self.compiled_patterns = self
            .blocked_patterns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Pattern::new(p)
                    .map_err(|e| invalid(format!("blocked_patterns[{i}]"), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// The JSON form, complete (defaults included), with types in priority order.
    pub fn to_json(&self) -> Value {
        let mut types = Map::new();
        for t in &self.types {
            let mut o = Map::new();
            o.insert("priority".into(), json!(t.priority));
            o.insert("limit".into(), json!(t.limit));
            if let Some(w) = t.window {
                o.insert("window".into(), json!(format_window(w)));
            }
            if let Some(p) = &t.trait_path {
                o.insert("trait".into(), json!(p));
            }
            o.insert("enabled".into(), json!(t.enabled));
            types.insert(t.name.clone(), Value::Object(o));
        }
        let mut out = json!({
            "identifiers": types,
            "blocked_values": self.blocked_values,
            "blocked_patterns": self.blocked_patterns,
            "blocked_identifiers": self.blocked_identifiers.iter()
                .map(|(t, v)| json!({"type": t, "value": v})).collect::<Vec<_>>(),
            "max_merges": self.max_merges,
            "max_identifiers": self.max_identifiers,
        });
        if let Some(cc) = &self.phone_country_code {
            out["phone_country_code"] = json!(format!("+{cc}"));
        }
        out
    }

    /// The rule of an enabled type.
    pub fn rule(&self, name: &str) -> Option<&TypeRule> {
        self.types.iter().find(|t| t.name == name && t.enabled)
    }

    /// Normalises a value of a type, or `None` when it is blocked or cannot be an identifier.
    pub fn normalize(&self, type_name: &str, raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        let value = match type_name {
            "email" => trimmed.to_lowercase(),
            "phone" => normalize_phone(trimmed, self.phone_country_code.as_deref())?,
            _ => trimmed.to_string(),
        };
        if value.chars().count() > 512 || self.is_blocked(type_name, &value) {
            return None;
        }
        Some(value)
    }

    fn is_blocked(&self, type_name: &str, value: &str) -> bool {
        self.blocked_values
            .iter()
            .any(|b| b.eq_ignore_ascii_case(value))
            || self.compiled_patterns.iter().any(|p| p.is_match(value))
            || self
                .blocked_identifiers
                .iter()
                .any(|(t, v)| t == type_name && v == value)
    }
}

/// A blocked-value pattern. Patterns that are one character class repeated over the whole
/// value (like the default `^[0-]*$`) are checked directly: every identifier of every event is
/// checked against every pattern, and the regex engine showed up in profiles.
#[derive(Debug, Clone)]
enum Pattern {
    Class { chars: Vec<char>, empty_ok: bool },
    Regex(regex_lite::Regex),
}

impl Pattern {
    fn new(p: &str) -> Result<Pattern, regex_lite::Error> {
        let re = regex_lite::Regex::new(p)?;
        // `^[…]*$` or `^[…]+$` whose class is plain characters (a `-` only at the end).
        let (class, empty_ok) = match p.strip_prefix("^[") {
            Some(r) => match (r.strip_suffix("]*$"), r.strip_suffix("]+$")) {
                (Some(c), _) => (c, true),
                (None, Some(c)) => (c, false),
                _ => return Ok(Pattern::Regex(re)),
            },
            None => return Ok(Pattern::Regex(re)),
        };
        let body = class.strip_suffix('-').unwrap_or(class);
        let plain = |ch: char| ch.is_alphanumeric() || ch == ' ' || ch == '_';
        let simple = (!class.is_empty() && !class.starts_with('^') && body.chars().all(plain))
            .then_some((class, empty_ok));
        Ok(match simple {
            Some((class, empty_ok)) => Pattern::Class {
                chars: class.chars().collect(),
                empty_ok,
            },
            None => Pattern::Regex(re),
        })
    }

    fn is_match(&self, value: &str) -> bool {
        match self {
            Pattern::Class { chars, empty_ok } => {
                (*empty_ok || !value.is_empty()) && value.chars().all(|c| chars.contains(&c))
            }
            Pattern::Regex(re) => re.is_match(value),
        }
    }
}

/// E.164 where the number allows it: `+` and 8–15 digits. A number without a country code
/// gets the configured one; without one configured its digits are kept as they are.
fn normalize_phone(raw: &str, country: Option<&str>) -> Option<String> {
    let plus = raw.starts_with('+');
    let mut digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    if raw.chars().any(|c| c.is_alphabetic()) || digits.len() < 5 {
        return None;
    }
    if plus {
        return Some(format!("+{digits}"));
    }
    if let Some(rest) = digits.strip_prefix("00") {
        return Some(format!("+{rest}"));
    }
    match country {
        Some(cc) => {
            if digits.starts_with('0') {
                digits.remove(0);
            } else if digits.starts_with(cc) && digits.len() > 10 {
                return Some(format!("+{digits}"));
            }
            Some(format!("+{cc}{digits}"))
        }
        None => Some(digits),
    }
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// `30d`, `12h`, `15m`, `90s` as milliseconds.
pub fn parse_window(s: &str) -> Option<Millis> {
    let s = s.trim();
    if !s.is_ascii() {
        return None;
    }
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

fn format_window(ms: Millis) -> String {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, RulesError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array of strings"))?;
    arr.iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid(format!("{field}[{i}]"), "must be a string"))
        })
        .collect()
}

fn pairs(v: &Value, field: &str) -> Result<Vec<(String, String)>, RulesError> {
    let arr = v
        .as_array()
        .ok_or_else(|| invalid(field, "must be an array of {type, value}"))?;
    arr.iter()
        .enumerate()
        .map(|(i, p)| match (p["type"].as_str(), p["value"].as_str()) {
            (Some(t), Some(v)) => Ok((t.to_string(), v.to_string())),
            _ => Err(invalid(format!("{field}[{i}]"), "must be {type, value}")),
        })
        .collect()
}

fn count(v: &Value, field: &str) -> Result<u32, RulesError> {
    v.as_u64()
        .filter(|n| *n <= u32::MAX as u64)
        .map(|n| n as u32)
        .ok_or_else(|| invalid(field, "must be a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_bad_ones_are_refused_without_panicking() {
        assert_eq!(parse_window("30d"), Some(30 * 86_400_000));
        assert_eq!(parse_window(" 12h "), Some(12 * 3_600_000));
        for bad in [
            "",
            "d",
            "0d",
            "-1d",
            "5é",
            "é",
            "5 d",
            "5y",
            "99999999999999999d",
        ] {
            assert_eq!(parse_window(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn simple_class_patterns_match_like_the_regex() {
        let values = [
            "",
            "0",
            "000-000",
            "-",
            "0a",
            "a0",
            "abc",
            "ABC",
            "a_b c",
            "a-b",
            "00000000-0000",
        ];
        for p in [
            "^[0-]*$", "^[0-]+$", "^[abc]*$", "^[a_ ]+$", "^[a-c]*$", "^[^0]*$", "0+",
        ] {
            let fast = Pattern::new(p).unwrap();
            let re = regex_lite::Regex::new(p).unwrap();
            for v in values {
                assert_eq!(fast.is_match(v), re.is_match(v), "{p} on {v:?}");
            }
        }
        assert!(matches!(
            Pattern::new("^[0-]*$").unwrap(),
            Pattern::Class { .. }
        ));
        assert!(matches!(
            Pattern::new("^[a-c]*$").unwrap(),
            Pattern::Regex(_)
        ));
    }
}
