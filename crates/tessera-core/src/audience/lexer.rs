//! Splits definition text into tokens, tracking 1-based line and column (in characters) so the
//! parser can point at the offending token. Tokens are produced one at a time as the parser
//! asks, so the first error in reading order is the one reported, whether lexical or not.

use super::ast::{CmpOp, Pos};
use super::error::LangError;
use serde_json::Number;

/// Every word with a meaning somewhere in the language. Keywords are recognised by context, so
/// most of these still work as bare names, but the printer back-quotes all of them so that
/// printed text never depends on that context.
pub(super) const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "starts_with",
    "exists",
    "within",
    "before",
    "after",
    "performed",
    "did",
    "perform",
    "where",
    "at",
    "least",
    "most",
    "exactly",
    "time",
    "times",
    "ever",
    "the",
    "last",
    "audience",
    "of",
    "true",
    "false",
    "null",
    "minute",
    "minutes",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "first",
    "most_frequent",
    "unique",
    "unique_count",
];

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A name or path; `bare` when it is one unquoted segment, the only form a keyword takes.
    Name {
        segments: Vec<String>,
        bare: bool,
    },
    Str(String),
    Num(Number),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    End,
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// The source text of the token, for error messages.
    pub text: String,
}

impl Token {
    /// Whether this is the keyword `kw` (given in lower case), in any case.
    pub fn is_kw(&self, kw: &str) -> bool {
        match &self.tok {
            Tok::Name {
                segments,
                bare: true,
            } => segments[0].eq_ignore_ascii_case(kw),
            _ => false,
        }
    }

    /// How error messages name this token: `"and"`, `the string "DE"`, `the number 5`.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::Str(_) => format!("the string {}", shorten(&self.text)),
            Tok::Num(_) => format!("the number {}", self.text),
            Tok::End => "the end of the definition".to_owned(),
            _ => format!("\"{}\"", shorten(&self.text)),
        }
    }
}

/// Long tokens are cut in messages so that one error does not repeat a whole paragraph.
fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

pub(super) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

pub(super) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    i: usize,
    line: u32,
    column: u32,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src,
            i: 0,
            line: 1,
            column: 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.i..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.src[self.i..].chars();
        it.next();
        it.next()
    }

    fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek() {
            if c == '#' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            } else if c.is_whitespace() {
                self.bump();
            } else {
                break;
            }
        }
    }

    /// The next token; `Tok::End` (repeatedly) at the end of the text.
    pub fn next_token(&mut self) -> Result<Token, LangError> {
        self.skip_blanks();
        let pos = self.pos();
        let start = self.i;
        let Some(c) = self.peek() else {
            return Ok(Token {
                tok: Tok::End,
                pos,
                text: String::new(),
            });
        };
        let tok = match c {
            '(' | ')' | ',' | '=' => {
                self.bump();
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    _ => Tok::Op(CmpOp::Eq),
                }
            }
            '!' => {
                self.bump();
                if self.peek() != Some('=') {
                    return Err(LangError::syntax(
                        pos,
                        "unexpected character \"!\"; the not-equal operator is \"!=\"",
                    ));
                }
                self.bump();
                Tok::Op(CmpOp::Ne)
            }
            '>' | '<' => {
                self.bump();
                let or_equal = self.peek() == Some('=');
                if or_equal {
                    self.bump();
                }
                Tok::Op(match (c, or_equal) {
                    ('>', false) => CmpOp::Gt,
                    ('>', true) => CmpOp::Ge,
                    ('<', false) => CmpOp::Lt,
                    _ => CmpOp::Le,
                })
            }
            '"' => Tok::Str(self.quoted('"', pos)?),
            '`' => self.name()?,
            c if is_name_start(c) => self.name()?,
            '-' if self.peek2().is_some_and(|c| c.is_ascii_digit()) => self.number(pos)?,
            c if c.is_ascii_digit() => self.number(pos)?,
            c => {
                let hint = if c.is_alphabetic() {
                    "; names with other characters go in back-quotes, as in `prénom`"
                } else {
                    ""
                };
                return Err(LangError::syntax(
                    pos,
                    format!("unexpected character \"{c}\"{hint}"),
                ));
            }
        };
        Ok(Token {
            tok,
            pos,
            text: self.src[start..self.i].to_owned(),
        })
    }

    /// The body of a `"string"` or a `` `name` ``; the opening quote is next.
    fn quoted(&mut self, quote: char, start: Pos) -> Result<String, LangError> {
        let what = if quote == '"' { "string" } else { "name" };
        self.bump();
        let mut out = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => {
                    return Err(LangError::syntax(
                        start,
                        format!("unterminated {what}: expected a closing {quote}"),
                    ))
                }
                Some(c) if c == quote => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c) if c == quote || c == '\\' => out.push(c),
                    other => {
                        let shown = other.map(String::from).unwrap_or_default();
                        return Err(LangError::syntax(
                            here,
                            format!(
                                "unknown escape \"\\{shown}\" in a {what}; only \\{quote} and \\\\ \
                                 are allowed"
                            ),
                        ));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// A name: segments separated by `.`, each bare (`city`) or back-quoted (`` `the city` ``).
    fn name(&mut self) -> Result<Tok, LangError> {
        let mut segments = Vec::new();
        let mut bare = true;
        loop {
            let seg_pos = self.pos();
            if self.peek() == Some('`') {
                bare = false;
                let s = self.quoted('`', seg_pos)?;
                if s.is_empty() {
                    return Err(LangError::syntax(
                        seg_pos,
                        "a name in back-quotes cannot be empty",
                    ));
                }
                segments.push(s);
            } else {
                let from = self.i;
                while self.peek().is_some_and(is_name_char) {
                    self.bump();
                }
                segments.push(self.src[from..self.i].to_owned());
            }
            // A dot continues the path only when a segment follows at once, so `a.` ends in
            // an error at the dot rather than a silently empty segment.
            let continues = self.peek() == Some('.')
                && self.peek2().is_some_and(|c| is_name_start(c) || c == '`');
            if !continues {
                break;
            }
            self.bump();
        }
        if segments.len() > 1 {
            bare = false;
        }
        Ok(Tok::Name { segments, bare })
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`.
    fn number(&mut self, start: Pos) -> Result<Tok, LangError> {
        let from = self.i;
        if self.peek() == Some('-') {
            self.bump();
        }
        self.digits();
        let mut integer = true;
        if self.peek() == Some('.') {
            integer = false;
            self.bump();
            if self.digits() == 0 {
                return Err(LangError::syntax(
                    self.pos(),
                    "expected a digit after \".\"",
                ));
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            integer = false;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.digits() == 0 {
                return Err(LangError::syntax(
                    self.pos(),
                    "expected the digits of the exponent",
                ));
            }
        }
        let text = &self.src[from..self.i];
        if let Some(c) = self.peek().filter(|&c| is_name_char(c) || c == '.') {
            return Err(LangError::syntax(
                self.pos(),
                format!("unexpected \"{c}\" right after the number {text}"),
            ));
        }
        let too_large = || LangError::syntax(start, format!("the number {text} is too large"));
        let number = if integer {
            if let Ok(v) = text.parse::<i64>() {
                Number::from(v)
            } else if let Ok(v) = text.parse::<u64>() {
                Number::from(v)
            } else {
                return Err(too_large());
            }
        } else {
            let v: f64 = text.parse().map_err(|_| too_large())?;
            Number::from_f64(v).ok_or_else(too_large)?
        };
        Ok(Tok::Num(number))
    }

    fn digits(&mut self) -> usize {
        let mut n = 0;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            n += 1;
        }
        n
    }
}
