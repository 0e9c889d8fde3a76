//! The grok pattern library and compiler: named patterns (Logstash's standard set,
//! `patterns_dir` files, `pattern_definitions`) and the expansion of a grok expression
//! — `%{NAME}`, `%{NAME:field}`, `%{NAME:field:int}`, `%{NAME=inline regex}` and
//! Oniguruma-style `(?<field>…)` groups — into one PCRE2 regular expression whose
//! capture groups map to event fields.
//!
//! Logstash runs grok on Joni (Oniguruma, Ruby syntax). The few places where that
//! syntax differs from PCRE2 are translated here: `\h`/`\H` are hex digits, `(?m)` is
//! Ruby's "dot matches newline" (PCRE2's `(?s)`), and `^`/`$` always match at line
//! breaks (PCRE2's multi-line mode). `\d`, `\w`, `\s` and `\b` are ASCII, as in Ruby.
//!
//! Invariant: every capture group this module creates is named `g<N>`; user group names
//! never reach PCRE2 (they may contain `[`, `]` and `@`, which it refuses).

use std::collections::HashMap;

use pcre2::bytes::{Regex, RegexBuilder};

/// Which of the standard pattern sets a grok filter uses (`ecs_compatibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternSet {
    /// Pre-ECS names (`clientip`, `verb`…): `ecs_compatibility => disabled`.
    Legacy,
    /// ECS names (`[source][address]`…): `v1` and `v8`, Logstash 8's default.
    Ecs,
}

macro_rules! pattern_files {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("patterns/", $dir, "/", $name)))),*]
    };
}

const LEGACY: &[(&str, &str)] = pattern_files!("legacy":
    "aws", "bacula", "bind", "bro", "exim", "firewalls", "grok-patterns", "haproxy",
    "httpd", "java", "junos", "linux-syslog", "maven", "mcollective",
    "mcollective-patterns", "mongodb", "nagios", "postgresql", "rails", "redis", "ruby",
    "squid");

const ECS: &[(&str, &str)] = pattern_files!("ecs-v1":
    "aws", "bacula", "bind", "bro", "exim", "firewalls", "grok-patterns", "haproxy",
    "httpd", "java", "junos", "linux-syslog", "maven", "mcollective", "mongodb", "nagios",
    "postgresql", "rails", "redis", "ruby", "squid", "zeek");

/// How a captured string is converted (`%{NUMBER:bytes:int}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    Int,
    Float,
}

/// One capture of a compiled expression: the PCRE2 group it reads and where it goes.
#[derive(Debug, Clone)]
pub struct Capture {
    pub group: usize,
    /// The field as written (`bytes`, `[http][version]`), which `overwrite` compares.
    pub field: String,
    pub convert: Option<Convert>,
}

#[derive(Debug)]
pub struct Compiled {
    pub regex: Regex,
    pub captures: Vec<Capture>,
}

#[derive(Default)]
pub struct Library {
    definitions: HashMap<String, String>,
}

/// The index of the `}` closing a `%{` whose body starts at `from` (inline
/// definitions may hold braces of their own: `%{ID:id=[0-9]{3}}`).
fn closing_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// References nested deeper than this are taken to be a cycle.
const MAX_DEPTH: usize = 64;

impl Library {
    pub fn standard(set: PatternSet) -> Library {
        let mut lib = Library::default();
        let files = match set {
            PatternSet::Legacy => LEGACY,
            PatternSet::Ecs => ECS,
        };
        for (_, text) in files {
            lib.add_file(text);
        }
        lib
    }

    /// Adds the definitions of a patterns file: `NAME regex` lines, `#` comments.
    pub fn add_file(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((name, regex)) = line.split_once([' ', '\t']) {
                self.define(name, regex.trim_start_matches([' ', '\t']));
            }
        }
    }

    pub fn define(&mut self, name: &str, regex: &str) {
        self.definitions.insert(name.to_string(), regex.to_string());
    }

    /// Expands and compiles one grok expression. `named_captures_only = false` also
    /// captures `%{NAME}` references without a field, under the pattern's name.
    pub fn compile(&self, expression: &str, named_captures_only: bool) -> Result<Compiled, String> {
        let mut state = Expansion {
            library: self,
            named_captures_only,
            captures: Vec::new(),
            inline: HashMap::new(),
        };
        let source = state.expand(expression, 0)?;
        let regex = RegexBuilder::new()
            .utf(true)
            .multi_line(true)
            .jit_if_available(true)
            .max_jit_stack_size(Some(8 << 20))
            .build(&source)
            .map_err(|e| format!("invalid regular expression in {expression:?}: {e}"))?;
        // Group numbers come from PCRE2, by name, so that unnamed groups in the
        // patterns do not shift them.
        let names = regex.capture_names();
        let mut captures = Vec::with_capacity(state.captures.len());
        for (i, (field, convert)) in state.captures.into_iter().enumerate() {
            let wanted = format!("g{i}");
            let group = names
                .iter()
                .position(|n| n.as_deref() == Some(wanted.as_str()))
                .ok_or_else(|| format!("internal: group {wanted} vanished"))?;
            captures.push(Capture {
                group,
                field,
                convert,
            });
        }
        Ok(Compiled { regex, captures })
    }
}

struct Expansion<'a> {
    library: &'a Library,
    named_captures_only: bool,
    captures: Vec<(String, Option<Convert>)>,
    /// `%{NAME=regex}` definitions seen in this expression.
    inline: HashMap<String, String>,
}

impl Expansion<'_> {
    fn group(&mut self, field: &str, convert: Option<Convert>) -> String {
        let n = self.captures.len();
        self.captures.push((field.to_string(), convert));
        format!("(?<g{n}>")
    }

    fn expand(&mut self, text: &str, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("grok patterns nest too deeply (a pattern refers to itself?)".into());
        }
        let b = text.as_bytes();
        let mut out = String::with_capacity(text.len() * 2);
        let mut i = 0;
        let mut in_class = false;
        while i < b.len() {
            let c = b[i];
            match c {
                b'\\' if i + 1 < b.len() => {
                    let next = text[i + 1..].chars().next().unwrap_or('\\');
                    match (next, in_class) {
                        ('h', false) => out.push_str("[0-9a-fA-F]"),
                        ('h', true) => out.push_str("0-9a-fA-F"),
                        ('H', false) => out.push_str("[^0-9a-fA-F]"),
                        _ => {
                            out.push('\\');
                            out.push(next);
                        }
                    }
                    i += 1 + next.len_utf8();
                    continue;
                }
                b'[' if !in_class => {
                    in_class = true;
                    out.push('[');
                    i += 1;
                    // A `]` first in a class (after an optional `^`) is a literal.
                    if b.get(i) == Some(&b'^') {
                        out.push('^');
                        i += 1;
                    }
                    if b.get(i) == Some(&b']') {
                        out.push(']');
                        i += 1;
                    }
                    continue;
                }
                b'[' if in_class && b.get(i + 1) == Some(&b':') => {
                    // A POSIX class such as [:alnum:] inside a bracket expression.
                    let end = text[i..].find(":]").map(|p| i + p + 2).unwrap_or(b.len());
                    out.push_str(&text[i..end]);
                    i = end;
                    continue;
                }
                b']' if in_class => in_class = false,
                b'%' if !in_class && b.get(i + 1) == Some(&b'{') => {
                    let end = closing_brace(b, i + 2)
                        .ok_or_else(|| format!("unterminated %{{ in {text:?}"))?;
                    out.push_str(&self.reference(&text[i + 2..end], depth)?);
                    i = end + 1;
                    continue;
                }
                b'(' if !in_class && text[i..].starts_with("(?<") => {
                    let rest = &text[i + 3..];
                    if !rest.starts_with(['=', '!']) {
                        if let Some(close) = rest.find('>') {
                            let name = &rest[..close];
                            out.push_str(&self.group(name, None));
                            i += 3 + close + 1;
                            continue;
                        }
                    }
                }
                b'(' if !in_class && text[i..].starts_with("(?m)") => {
                    out.push_str("(?s)");
                    i += 4;
                    continue;
                }
                b'(' if !in_class && text[i..].starts_with("(?m:") => {
                    out.push_str("(?s:");
                    i += 4;
                    continue;
                }
                _ => {}
            }
            let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
        Ok(out)
    }

    /// One `%{…}` reference: `NAME`, `NAME:field`, `NAME:field:type`, `NAME=regex`.
    fn reference(&mut self, body: &str, depth: usize) -> Result<String, String> {
        let (spec, inline) = match body.split_once('=') {
            Some((s, def)) => (s, Some(def)),
            None => (body, None),
        };
        let mut parts = spec.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let field = parts.next().filter(|f| !f.is_empty());
        let convert = match parts.next() {
            None => None,
            Some("int" | "integer" | "long") => Some(Convert::Int),
            Some("float" | "double") => Some(Convert::Float),
            Some(other) => {
                return Err(format!(
                    "%{{{body}}}: unknown type \"{other}\" (use int or float)"
                ))
            }
        };
        if let Some(def) = inline {
            self.inline.insert(name.to_string(), def.to_string());
        }
        let definition = self
            .inline
            .get(name)
            .or_else(|| self.library.definitions.get(name))
            .cloned()
            .ok_or_else(|| format!("grok pattern %{{{name}}} is not defined"))?;
        let inner = self.expand(&definition, depth + 1)?;
        let open = match field {
            Some(f) => self.group(f, convert),
            None if !self.named_captures_only => self.group(name, convert),
            None => "(?:".to_string(),
        };
        Ok(format!("{open}{inner})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(lib: &Library, expr: &str, subject: &str) -> Vec<(String, Option<String>)> {
        let c = lib.compile(expr, true).unwrap();
        let mut locs = c.regex.capture_locations();
        c.regex
            .captures_read(&mut locs, subject.as_bytes())
            .unwrap()
            .expect("matches");
        c.captures
            .iter()
            .map(|cap| {
                (
                    cap.field.clone(),
                    locs.get(cap.group).map(|(s, e)| subject[s..e].to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn expands_nested_references_with_fields_and_types() {
        let lib = Library::standard(PatternSet::Legacy);
        let got = captures(
            &lib,
            "%{IP:client} %{WORD:method} %{URIPATHPARAM:request} %{NUMBER:bytes:int} %{NUMBER:duration}",
            "55.3.244.1 GET /index.html 15824 0.043",
        );
        let got: Vec<_> = got.into_iter().map(|(f, v)| (f, v.unwrap())).collect();
        assert_eq!(
            got,
            [
                ("client", "55.3.244.1"),
                ("method", "GET"),
                ("request", "/index.html"),
                ("bytes", "15824"),
                ("duration", "0.043")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let c = lib.compile("%{NUMBER:bytes:int}", true).unwrap();
        assert_eq!(c.captures[0].convert, Some(Convert::Int));
    }

    #[test]
    fn oniguruma_groups_inline_definitions_and_hex_escapes() {
        let mut lib = Library::standard(PatternSet::Ecs);
        lib.define("POSTFIX_QUEUEID", "[0-9A-F]{10,11}");
        let got = captures(
            &lib,
            r"(?<[postfix][queue_id]>[0-9A-F]{10,11}): %{GREEDYDATA:msg} %{ID:id=\h{3}\d+}",
            "BEF25A72965: message-id=<20130101142543.5828399CCAF@x> abc123",
        );
        assert_eq!(got[0].1.as_deref(), Some("BEF25A72965"));
        assert_eq!(got[0].0, "[postfix][queue_id]");
        assert_eq!(got[2].1.as_deref(), Some("abc123"));
    }

    #[test]
    fn unknown_patterns_cycles_and_bad_regexes_are_errors() {
        let mut lib = Library::default();
        assert!(lib
            .compile("%{NOPE}", true)
            .unwrap_err()
            .contains("not defined"));
        lib.define("A", "%{B}");
        lib.define("B", "%{A}");
        assert!(lib.compile("%{A}", true).unwrap_err().contains("nest"));
        assert!(lib.compile("(unclosed", true).is_err());
        assert!(lib.compile("%{INT:x:bogus}", true).is_err());
    }
}
