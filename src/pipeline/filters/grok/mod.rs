//! `grok`: matches fields against grok expressions and stores the named captures, as
//! Logstash's grok filter does — `match` (field → one or more expressions, tried in
//! order), `break_on_match` (stop at the first expression that matches, across
//! fields), `overwrite`, `named_captures_only`, `keep_empty_captures`, `target`,
//! `tag_on_failure` (default `_grokparsefailure`), `patterns_dir`,
//! `patterns_files_glob`, `pattern_definitions` and `ecs_compatibility` (which
//! standard pattern set: `disabled` → legacy names, `v1`/`v8` → ECS names; Logstash 8
//! defaults to `v8`, and so do we).
//!
//! A capture that is already present is not replaced unless `overwrite` names it:
//! a string becomes an array of both values, an array gets the new value appended,
//! anything else is left alone — Logstash's rule. Every pattern is compiled at load
//! time; an unknown pattern name or a bad regular expression is a load-time error.

mod library;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use pcre2::bytes::CaptureLocations;
use serde_json::{Number, Value};

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};
use library::{Compiled, Convert, Library, PatternSet};

struct Expression {
    compiled: Compiled,
    /// Parsed field paths, one per capture, in `compiled.captures` order.
    paths: Vec<Vec<String>>,
    /// Identifies this expression's capture buffer in the per-thread cache.
    id: usize,
}

pub struct Grok {
    matches: Vec<(Vec<String>, Vec<Expression>)>,
    break_on_match: bool,
    overwrite: Vec<String>,
    keep_empty_captures: bool,
    tag_on_failure: Vec<String>,
    target: Option<Vec<String>>,
}

static NEXT_EXPRESSION_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// PCRE2 match data is costly to allocate per event; each worker thread keeps one
    /// per expression.
    static LOCATIONS: RefCell<HashMap<usize, CaptureLocations>> = RefCell::new(HashMap::new());
}

impl Grok {
    pub fn build(s: &mut Settings) -> Result<Grok, PluginError> {
        let set = match s.string("ecs_compatibility")?.as_deref() {
            None | Some("v1" | "v8") => PatternSet::Ecs,
            Some("disabled") => PatternSet::Legacy,
            Some(other) => {
                return Err(s.error(format!(
                    "ecs_compatibility must be disabled, v1 or v8, not \"{other}\""
                )))
            }
        };
        let mut library = Library::standard(set);
        let glob = s
            .string("patterns_files_glob")?
            .unwrap_or_else(|| "*".into());
        let glob = glob_regex(&glob);
        for dir in s.list("patterns_dir")? {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| s.error(format!("cannot read patterns_dir \"{dir}\": {e}")))?;
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| glob.is_match(n))
                })
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| {
                    s.error(format!("cannot read pattern file {}: {e}", f.display()))
                })?;
                library.add_file(&text);
            }
        }
        for (name, regex) in s.hash("pattern_definitions")? {
            library.define(&name, &regex);
        }
        let named_only = s.bool("named_captures_only")?.unwrap_or(true);
        let mut matches: Vec<(Vec<String>, Vec<Expression>)> = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        for (field, patterns) in s.hash_of_lists("match")? {
            let mut exprs = Vec::with_capacity(patterns.len());
            for p in patterns {
                let compiled = library.compile(&p, named_only).map_err(|e| s.error(e))?;
                let paths = compiled
                    .captures
                    .iter()
                    .map(|c| parse_field_ref(&c.field))
                    .collect();
                exprs.push(Expression {
                    compiled,
                    paths,
                    id: NEXT_EXPRESSION_ID.fetch_add(1, Ordering::Relaxed),
                });
            }
            // `match => ["message", "a", "message", "b"]` adds to the same field.
            match fields.iter().position(|f| *f == field) {
                Some(i) => matches[i].1.extend(exprs),
                None => {
                    fields.push(field.clone());
                    matches.push((parse_field_ref(&field), exprs));
                }
            }
        }
        let tag_on_failure = match s.list("tag_on_failure")? {
            t if t.is_empty() && !s.is_set("tag_on_failure") => {
                vec!["_grokparsefailure".to_string()]
            }
            t => t,
        };
        // Accepted for compatibility; PCRE2's match limit bounds every match instead.
        s.string("timeout_millis")?;
        s.string("timeout_scope")?;
        s.list("tag_on_timeout")?;
        Ok(Grok {
            matches,
            break_on_match: s.bool("break_on_match")?.unwrap_or(true),
            overwrite: s.list("overwrite")?,
            keep_empty_captures: s.bool("keep_empty_captures")?.unwrap_or(false),
            tag_on_failure,
            target: s.string("target")?.map(|t| parse_field_ref(&t)),
        })
    }

    /// Matches one string against an expression; stores its captures when it matches.
    fn match_one(&self, expr: &Expression, subject: &str, event: &mut Event) -> bool {
        LOCATIONS.with(|cache| {
            let mut cache = cache.borrow_mut();
            let locs = cache
                .entry(expr.id)
                .or_insert_with(|| expr.compiled.regex.capture_locations());
            match expr.compiled.regex.captures_read(locs, subject.as_bytes()) {
                Ok(Some(_)) => {}
                Ok(None) => return false,
                Err(e) => {
                    tracing::warn!(error = %e, "grok: match failed (PCRE2 limit?)");
                    return false;
                }
            }
            for (cap, path) in expr.compiled.captures.iter().zip(&expr.paths) {
                let text = locs.get(cap.group).map(|(s, e)| &subject[s..e]);
                let value = match text {
                    None if !self.keep_empty_captures => continue,
                    Some("") if !self.keep_empty_captures => continue,
                    None => Value::Null,
                    Some(t) => convert(t, cap.convert),
                };
                self.store(event, &cap.field, path, value);
            }
            true
        })
    }

    fn store(&self, event: &mut Event, field: &str, path: &[String], value: Value) {
        let full: Vec<String>;
        let path = match &self.target {
            Some(t) => {
                full = t.iter().chain(path).cloned().collect();
                &full[..]
            }
            None => path,
        };
        if self.overwrite.iter().any(|o| o == field) {
            event.set(path, value);
            return;
        }
        match event.get(path) {
            None | Some(Value::Null) => event.set(path, value),
            Some(Value::Array(a)) => {
                let mut a = a.clone();
                a.push(value);
                event.set(path, Value::Array(a));
            }
            Some(Value::String(s)) => {
                let existing = Value::String(s.clone());
                event.set(path, Value::Array(vec![existing, value]));
            }
            Some(_) => {}
        }
    }
}

/// Ruby's `to_i` / `to_f`: the leading number, or 0.
fn convert(text: &str, how: Option<Convert>) -> Value {
    match how {
        None => Value::String(text.to_string()),
        Some(Convert::Int) => {
            let t = text.trim_start();
            let end = t
                .char_indices()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
                .count();
            Value::Number(t[..end].parse::<i64>().unwrap_or(0).into())
        }
        Some(Convert::Float) => {
            let t = text.trim();
            let v = (1..=t.len())
                .rev()
                .filter(|&n| t.is_char_boundary(n))
                .find_map(|n| t[..n].parse::<f64>().ok())
                .unwrap_or(0.0);
            Number::from_f64(v).map_or(Value::Null, Value::Number)
        }
    }
}

/// A `patterns_files_glob` (`*`, `?`) as an anchored regular expression.
fn glob_regex(glob: &str) -> regex::Regex {
    let mut re = String::from("^");
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).expect("escaped glob is a valid regex")
}

impl Filter for Grok {
    fn apply(&self, mut event: Event) -> Outcome {
        let mut matched = false;
        'fields: for (field, exprs) in &self.matches {
            let subjects: Vec<String> = match event.get(field) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(a)) => a.iter().map(value_text).collect(),
                Some(v) => vec![value_text(v)],
            };
            for subject in &subjects {
                for expr in exprs {
                    if self.match_one(expr, subject, &mut event) {
                        matched = true;
                        if self.break_on_match {
                            break 'fields;
                        }
                    }
                }
            }
        }
        if matched {
            Outcome::Done(event)
        } else {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
            Outcome::Failed(event)
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
