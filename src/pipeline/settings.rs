//! Typed access to a plugin's `name => value` settings, with load-time errors that name
//! the file position, the plugin and the setting: unknown settings and values of the
//! wrong type are refused before any event flows.

use std::collections::BTreeSet;
use std::fmt;

use super::ast::{Plugin, Pos, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.pos.line, self.pos.column, self.message
        )
    }
}

/// A plugin's settings being read; `finish` refuses any that were not read.
pub struct Settings<'a> {
    plugin: &'a Plugin,
    kind: &'static str,
    read: BTreeSet<&'a str>,
}

impl<'a> Settings<'a> {
    pub fn new(plugin: &'a Plugin, kind: &'static str) -> Settings<'a> {
        Settings {
            plugin,
            kind,
            read: BTreeSet::new(),
        }
    }

    /// Marks a setting as known without reading it: accepted for compatibility, with
    /// no effect here (whatever its type).
    pub fn accept(&mut self, name: &'a str) {
        self.read.insert(name);
    }

    /// Whether the configuration writes this setting at all.
    pub fn is_set(&self, name: &str) -> bool {
        self.plugin.settings.iter().any(|s| s.name == name)
    }

    /// An error about the plugin as a whole (at its name).
    pub fn error(&self, message: String) -> PluginError {
        PluginError {
            pos: self.plugin.pos,
            message: format!("{} \"{}\": {message}", self.kind, self.plugin.name),
        }
    }

    fn err(&self, pos: Pos, message: String) -> PluginError {
        PluginError { pos, message }
    }

    fn raw(&mut self, name: &'a str) -> Option<(&'a Value, Pos)> {
        self.read.insert(name);
        self.plugin
            .settings
            .iter()
            .rev()
            .find(|s| s.name == name)
            .map(|s| (&s.value, s.pos))
    }

    pub fn string(&mut self, name: &'a str) -> Result<Option<String>, PluginError> {
        match self.raw(name) {
            None => Ok(None),
            Some((Value::String(s) | Value::Bareword(s), _)) => Ok(Some(s.clone())),
            Some((Value::Number(n), _)) => Ok(Some(n.to_string())),
            Some((_, pos)) => Err(self.err(
                pos,
                format!(
                    "{} \"{}\": setting \"{name}\" must be a string",
                    self.kind, self.plugin.name
                ),
            )),
        }
    }

    pub fn bool(&mut self, name: &'a str) -> Result<Option<bool>, PluginError> {
        match self.raw(name) {
            None => Ok(None),
            Some((Value::Bareword(b) | Value::String(b), pos)) => match b.as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(self.err(
                    pos,
                    format!(
                        "{} \"{}\": setting \"{name}\" must be true or false",
                        self.kind, self.plugin.name
                    ),
                )),
            },
            Some((_, pos)) => Err(self.err(
                pos,
                format!(
                    "{} \"{}\": setting \"{name}\" must be true or false",
                    self.kind, self.plugin.name
                ),
            )),
        }
    }

    /// A list of strings; a single string counts as a list of one, as in Logstash.
    pub fn list(&mut self, name: &'a str) -> Result<Vec<String>, PluginError> {
        let (plugin, kind) = (self.plugin.name.clone(), self.kind);
        match self.raw(name) {
            None => Ok(vec![]),
            Some((Value::String(s) | Value::Bareword(s), _)) => Ok(vec![s.clone()]),
            Some((Value::Array(items), pos)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) | Value::Bareword(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(PluginError {
                        pos,
                        message: format!(
                            "{kind} \"{plugin}\": setting \"{name}\" must be a list of strings"
                        ),
                    }),
                })
                .collect(),
            Some((_, pos)) => Err(PluginError {
                pos,
                message: format!(
                    "{kind} \"{plugin}\": setting \"{name}\" must be a list of strings"
                ),
            }),
        }
    }

    /// A hash of string → string; an array of alternating keys and values also counts
    /// (Logstash accepts `add_field => ["a", "b"]`).
    pub fn hash(&mut self, name: &'a str) -> Result<Vec<(String, String)>, PluginError> {
        self.pairs(name, "a hash of strings", scalar_text, scalar_text)
    }

    /// A hash whose values are strings or lists of strings (grok's `match`); an array
    /// of alternating keys and values also counts (`match => ["message", "%{…}"]`).
    pub fn hash_of_lists(
        &mut self,
        name: &'a str,
    ) -> Result<Vec<(String, Vec<String>)>, PluginError> {
        self.pairs(
            name,
            "a hash of strings or lists of strings",
            |v| match v {
                Value::Array(items) => items.iter().map(scalar_text).collect(),
                other => scalar_text(other).map(|t| vec![t]),
            },
            |v| scalar_text(v).map(|t| vec![t]),
        )
    }

    /// A setting written as a hash, or as an array of alternating keys and values;
    /// `in_hash` and `in_array` read a value of each form (None: the wrong type).
    fn pairs<T>(
        &mut self,
        name: &'a str,
        expected: &str,
        in_hash: impl Fn(&Value) -> Option<T>,
        in_array: impl Fn(&Value) -> Option<T>,
    ) -> Result<Vec<(String, T)>, PluginError> {
        let (plugin, kind) = (self.plugin.name.clone(), self.kind);
        let bad = |pos| PluginError {
            pos,
            message: format!("{kind} \"{plugin}\": setting \"{name}\" must be {expected}"),
        };
        match self.raw(name) {
            None => Ok(vec![]),
            Some((Value::Hash(entries), pos)) => entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), in_hash(v).ok_or_else(|| bad(pos))?)))
                .collect(),
            Some((Value::Array(items), pos)) if items.len() % 2 == 0 => items
                .chunks(2)
                .map(|kv| {
                    Ok((
                        scalar_text(&kv[0]).ok_or_else(|| bad(pos))?,
                        in_array(&kv[1]).ok_or_else(|| bad(pos))?,
                    ))
                })
                .collect(),
            Some((_, pos)) => Err(bad(pos)),
        }
    }

    /// Refuses settings nobody read: unknown names are load-time errors.
    pub fn finish(self) -> Result<(), PluginError> {
        for s in &self.plugin.settings {
            if !self.read.contains(s.name.as_str()) {
                return Err(PluginError {
                    pos: s.pos,
                    message: format!(
                        "{} \"{}\" has no setting \"{}\"",
                        self.kind, self.plugin.name, s.name
                    ),
                });
            }
        }
        Ok(())
    }
}

/// A string, bareword or number as text; None for anything else.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) | Value::Bareword(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
