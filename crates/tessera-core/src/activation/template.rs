//! Payload templates: a JSON value whose strings may refer to fields of a context document.
//!
//! A string that is exactly `"{{ path }}"` becomes the value at that path, keeping its type
//! (`null` when missing), so a mapping can forward numbers and objects untouched. A string with
//! `{{ path }}` among other text is interpolated as text: a missing value renders as nothing,
//! a string as itself, anything else (including `null`) as its JSON text. Object keys are never
//! templated, so the shape of the payload is fixed by the template.
//!
//! Templates run once per delivered event, so they are compiled at parse time: constant
//! subtrees are kept as values to clone, and paths are split once.

use super::condition::{pointer_token, ConfigError, FieldPath};
use serde_json::{Map, Value};

/// A compiled payload template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template as written, kept for `to_json` and equality.
    source: Value,
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    /// A subtree without placeholders.
    Const(Value),
    /// A string that is exactly one placeholder: the referenced value, typed.
    Value(FieldPath),
    /// A string interpolating placeholders into text.
    Text(Vec<Part>),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Field(FieldPath),
}

impl PartialEq for Template {
    // The compiled form is a function of the source, so comparing sources is enough.
    fn eq(&self, other: &Template) -> bool {
        self.source == other.source
    }
}

impl Template {
    /// Compiles a template, refusing unbalanced `{{`/`}}` and empty or malformed paths. Errors
    /// carry a JSON Pointer relative to the template.
    pub fn parse(v: &Value) -> Result<Template, ConfigError> {
        Ok(Template {
            source: v.clone(),
            root: compile(v, "")?,
        })
    }

    /// The template as written.
    pub fn to_json(&self) -> Value {
        self.source.clone()
    }

    /// Renders the template over a context document.
    pub fn render(&self, ctx: &Value) -> Value {
        render(&self.root, ctx)
    }

    /// The paths the template reads, in order of appearance (for documentation and checks).
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        collect_paths(&self.root, &mut out);
        out
    }
}

fn compile(v: &Value, at: &str) -> Result<Node, ConfigError> {
    Ok(match v {
        Value::String(s) => {
            let parts = parse_text(s).map_err(|e| ConfigError::new(at, e))?;
            match parts.as_slice() {
                [] | [Part::Literal(_)] => Node::Const(v.clone()),
                [Part::Field(p)] => Node::Value(p.clone()),
                _ => Node::Text(parts),
            }
        }
        Value::Array(items) => {
            let nodes = items
                .iter()
                .enumerate()
                .map(|(i, item)| compile(item, &format!("{at}/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            if nodes.iter().all(|n| matches!(n, Node::Const(_))) {
                Node::Const(v.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(m) => {
            let nodes = m
                .iter()
                .map(|(k, item)| {
                    Ok((
                        k.clone(),
                        compile(item, &format!("{at}/{}", pointer_token(k)))?,
                    ))
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            if nodes.iter().all(|(_, n)| matches!(n, Node::Const(_))) {
                Node::Const(v.clone())
            } else {
                Node::Object(nodes)
            }
        }
        _ => Node::Const(v.clone()),
    })
}

/// Splits a string into literal text and placeholders.
fn parse_text(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        let open = rest.find("{{");
        let close = rest.find("}}");
        match (open, close) {
            (None, None) => {
                if !rest.is_empty() {
                    parts.push(Part::Literal(rest.to_owned()));
                }
                return Ok(parts);
            }
            (None, Some(_)) => return Err("\"}}\" without an opening \"{{\"".into()),
            (Some(o), Some(c)) if c < o => return Err("\"}}\" without an opening \"{{\"".into()),
            (Some(o), _) => {
                if o > 0 {
                    parts.push(Part::Literal(rest[..o].to_owned()));
                }
                let after = &rest[o + 2..];
                let Some(c) = after.find("}}") else {
                    return Err("\"{{\" without a closing \"}}\"".into());
                };
                let inner = &after[..c];
                let path = inner.trim();
                if path.is_empty() {
                    return Err("empty path in \"{{ }}\"".into());
                }
                if path.contains(['{', '}']) {
                    return Err(format!("unbalanced braces in \"{{{{{inner}}}}}\""));
                }
                let path = FieldPath::parse(path)?;
                parts.push(Part::Field(path));
                rest = &after[c + 2..];
            }
        }
    }
}

fn render(node: &Node, ctx: &Value) -> Value {
    match node {
        Node::Const(v) => v.clone(),
        Node::Value(p) => p.lookup(ctx).cloned().unwrap_or(Value::Null),
        Node::Text(parts) => {
            let mut s = String::new();
            for part in parts {
                match part {
                    Part::Literal(l) => s.push_str(l),
                    Part::Field(p) => match p.lookup(ctx) {
                        None => {}
                        Some(Value::String(v)) => s.push_str(v),
                        Some(v) => s.push_str(&v.to_string()),
                    },
                }
            }
            Value::String(s)
        }
        Node::Array(items) => Value::Array(items.iter().map(|n| render(n, ctx)).collect()),
        Node::Object(fields) => {
            let mut m = Map::new();
            for (k, n) in fields {
                m.insert(k.clone(), render(n, ctx));
            }
            Value::Object(m)
        }
    }
}

fn collect_paths<'a>(node: &'a Node, out: &mut Vec<&'a str>) {
    match node {
        Node::Const(_) => {}
        Node::Value(p) => out.push(p.as_str()),
        Node::Text(parts) => out.extend(parts.iter().filter_map(|p| match p {
            Part::Field(p) => Some(p.as_str()),
            Part::Literal(_) => None,
        })),
        Node::Array(items) => items.iter().for_each(|n| collect_paths(n, out)),
        Node::Object(fields) => fields.iter().for_each(|(_, n)| collect_paths(n, out)),
    }
}

#[cfg(test)]
#[path = "tests/template.rs"]
mod tests;
