//! `useragent`: parses a User-Agent string (`source`) with the ua-parser rules of
//! uap-core (`regexes.json`, or a YAML-free JSON file of the same shape given by
//! `regexes`) into browser, OS and device fields, as Logstash's useragent filter does:
//! with ECS (the default) under `[user_agent]` — `name`, `version`, `os.name`,
//! `os.version`, `os.full`, `device.name`, and the version parts in
//! `[@metadata][filter][user_agent]` —, with `ecs_compatibility => disabled` at the root
//! (or `target`) with `prefix`: `name`, `major`, `minor`, `patch`, `version`, `os`,
//! `os_name`, `os_major`, `os_minor`, `os_patch`, `os_version`, `os_full`, `device`.
//! Results are cached per distinct string (`lru_cache_size`, default 100000; the cache
//! is emptied when full).
//!
//! The rules are matched in order, first match wins, as the ua-parser specification
//! says; they are compiled once per process (PCRE2 with JIT, the rules are PCRE
//! syntax) and shared by every useragent filter that uses the built-in set.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pcre2::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use serde_json::Value;

use super::{Filter, Outcome};
use crate::pipeline::event::{parse_field_ref, Event};
use crate::pipeline::settings::{PluginError, Settings};

#[derive(Deserialize)]
struct RuleFile {
    user_agent_parsers: Vec<RawRule>,
    os_parsers: Vec<RawRule>,
    device_parsers: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
struct RawRule {
    regex: String,
    regex_flag: Option<String>,
    family_replacement: Option<String>,
    v1_replacement: Option<String>,
    v2_replacement: Option<String>,
    v3_replacement: Option<String>,
    v4_replacement: Option<String>,
    os_replacement: Option<String>,
    os_v1_replacement: Option<String>,
    os_v2_replacement: Option<String>,
    os_v3_replacement: Option<String>,
    os_v4_replacement: Option<String>,
    device_replacement: Option<String>,
    // brand_replacement and model_replacement are not among Logstash's fields.
}

/// One rule: its regex and, per output field, a replacement template (with `$N`) or
/// the capture group that fills it.
struct Rule {
    regex: Regex,
    fields: Vec<(Option<String>, usize)>,
}

pub struct Rules {
    agents: Vec<Rule>,
    oses: Vec<Rule>,
    devices: Vec<Rule>,
}

/// What a User-Agent string says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub family: String,
    pub major: Option<String>,
    pub minor: Option<String>,
    pub patch: Option<String>,
    pub patch_minor: Option<String>,
    pub os: String,
    pub os_major: Option<String>,
    pub os_minor: Option<String>,
    pub os_patch: Option<String>,
    pub os_patch_minor: Option<String>,
    pub device: String,
}

impl Rules {
    fn load(json: &str) -> Result<Rules, String> {
        let file: RuleFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let build = |raw: Vec<RawRule>, pick: fn(&RawRule) -> Vec<Option<String>>| {
            raw.into_iter()
                .map(|r| {
                    let regex = RegexBuilder::new()
                        .utf(true)
                        .caseless(r.regex_flag.as_deref() == Some("i"))
                        .jit_if_available(true)
                        .build(&r.regex)
                        .map_err(|e| format!("rule {:?}: {e}", r.regex))?;
                    let fields = pick(&r)
                        .into_iter()
                        .enumerate()
                        .map(|(i, rep)| (rep, i + 1))
                        .collect();
                    Ok(Rule { regex, fields })
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(Rules {
            agents: build(file.user_agent_parsers, |r| {
                vec![
                    r.family_replacement.clone(),
                    r.v1_replacement.clone(),
                    r.v2_replacement.clone(),
                    r.v3_replacement.clone(),
                    r.v4_replacement.clone(),
                ]
            })?,
            oses: build(file.os_parsers, |r| {
                vec![
                    r.os_replacement.clone(),
                    r.os_v1_replacement.clone(),
                    r.os_v2_replacement.clone(),
                    r.os_v3_replacement.clone(),
                    r.os_v4_replacement.clone(),
                ]
            })?,
            // Device family: the replacement or group 1 (brand and model are not
            // among Logstash's fields).
            devices: build(file.device_parsers, |r| vec![r.device_replacement.clone()])?,
        })
    }

    /// The built-in uap-core rules, compiled on first use.
    fn builtin() -> Result<Arc<Rules>, String> {
        static RULES: OnceLock<Result<Arc<Rules>, String>> = OnceLock::new();
        RULES
            .get_or_init(|| Rules::load(include_str!("regexes.json")).map(Arc::new))
            .clone()
    }

    /// The first matching rule's fields (None for a field with no value).
    fn first_match(rules: &[Rule], ua: &str) -> Option<Vec<Option<String>>> {
        rules.iter().find_map(|rule| {
            let caps = rule.regex.captures(ua.as_bytes()).ok()??;
            let group = |i: usize| {
                caps.get(i)
                    .map(|m| String::from_utf8_lossy(m.as_bytes()).to_string())
            };
            Some(
                rule.fields
                    .iter()
                    .map(|(rep, g)| {
                        let v = match rep {
                            Some(r) => Some(substitute(r, &group)),
                            None => group(*g),
                        };
                        v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
                    })
                    .collect(),
            )
        })
    }

    pub fn parse(&self, ua: &str) -> Parsed {
        let mut p = Parsed {
            family: "Other".into(),
            os: "Other".into(),
            device: "Other".into(),
            ..Parsed::default()
        };
        if let Some(f) = Rules::first_match(&self.agents, ua) {
            let mut f = f.into_iter();
            p.family = f.next().flatten().unwrap_or_else(|| "Other".into());
            p.major = f.next().flatten();
            p.minor = f.next().flatten();
            p.patch = f.next().flatten();
            p.patch_minor = f.next().flatten();
        }
        if let Some(f) = Rules::first_match(&self.oses, ua) {
            let mut f = f.into_iter();
            p.os = f.next().flatten().unwrap_or_else(|| "Other".into());
            p.os_major = f.next().flatten();
            p.os_minor = f.next().flatten();
            p.os_patch = f.next().flatten();
            p.os_patch_minor = f.next().flatten();
        }
        if let Some(f) = Rules::first_match(&self.devices, ua) {
            p.device = f
                .into_iter()
                .next()
                .flatten()
                .unwrap_or_else(|| "Other".into());
        }
        p
    }
}

/// `$1`…`$9` in a replacement, from the match's groups (missing groups are empty).
fn substitute(template: &str, group: &dyn Fn(usize) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('$', Some(d)) => {
                chars.next();
                out.push_str(&group(d as usize).unwrap_or_default());
            }
            _ => out.push(c),
        }
    }
    out
}

pub struct UserAgent {
    source: Vec<String>,
    rules: Arc<Rules>,
    ecs: bool,
    target: Vec<String>,
    prefix: String,
    cache: Mutex<HashMap<String, Arc<Parsed>>>,
    cache_size: usize,
}

impl UserAgent {
    pub fn build(s: &mut Settings) -> Result<UserAgent, PluginError> {
        let source = s
            .string("source")?
            .ok_or_else(|| s.error("\"source\" is required".into()))?;
        let ecs = !matches!(s.string("ecs_compatibility")?.as_deref(), Some("disabled"));
        let target = match s.string("target")? {
            Some(t) => parse_field_ref(&t),
            None if ecs => vec!["user_agent".into()],
            None => vec![],
        };
        let rules = match s.string("regexes")? {
            None => Rules::builtin().map_err(|e| s.error(format!("built-in rules: {e}")))?,
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| s.error(format!("cannot read regexes {path}: {e}")))?;
                Arc::new(Rules::load(&text).map_err(|e| {
                    s.error(format!("regexes {path} (uap-core rules as JSON): {e}"))
                })?)
            }
        };
        let cache_size = match s.string("lru_cache_size")? {
            None => 100_000,
            Some(n) => n
                .parse()
                .map_err(|_| s.error("lru_cache_size must be a number".into()))?,
        };
        Ok(UserAgent {
            source: parse_field_ref(&source),
            rules,
            ecs,
            target,
            prefix: s.string("prefix")?.unwrap_or_default(),
            cache: Mutex::new(HashMap::new()),
            cache_size,
        })
    }

    fn lookup(&self, ua: &str) -> Arc<Parsed> {
        if let Some(hit) = self.cache.lock().get(ua) {
            return hit.clone();
        }
        let parsed = Arc::new(self.rules.parse(ua));
        let mut cache = self.cache.lock();
        if cache.len() >= self.cache_size {
            cache.clear();
        }
        if self.cache_size > 0 {
            cache.insert(ua.to_string(), parsed.clone());
        }
        parsed
    }

    fn at(&self, field: &[&str]) -> Vec<String> {
        self.target
            .iter()
            .cloned()
            .chain(field.iter().map(|f| f.to_string()))
            .collect()
    }

    fn legacy(&self, name: &str) -> Vec<String> {
        self.at(&[&format!("{}{name}", self.prefix)])
    }
}

/// Logstash's version string: major[.minor[.patch[.patch_minor]]], with the patch-minor
/// taken from the text when the rules stop at the patch (`check_and_adjust_version`).
fn version(p: &Parsed, ua: &str) -> Option<String> {
    let mut v = p.major.clone()?;
    if let Some(minor) = &p.minor {
        v.push('.');
        v.push_str(minor);
        if let Some(patch) = &p.patch {
            v.push('.');
            v.push_str(patch);
            match &p.patch_minor {
                Some(pm) => {
                    v.push('.');
                    v.push_str(pm);
                }
                None => {
                    if let Some(i) = ua.find(&v) {
                        let rest = &ua[i + v.len()..];
                        if let Some(after) = rest.strip_prefix('.') {
                            if let Some(end) = after.find(' ') {
                                let pm = &after[..end];
                                if !pm.is_empty()
                                    && pm.bytes().all(|b| b.is_ascii_digit())
                                    && !pm.starts_with('0')
                                {
                                    v.push('.');
                                    v.push_str(pm);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Some(v)
}

/// Logstash's OS version: major, then minor after `.` (or a space when the major is
/// not a number, as in "Vista"), then patch and patch-minor after dots.
fn os_version(p: &Parsed) -> Option<String> {
    let major = p.os_major.clone()?;
    let numeric = major.parse::<i64>().is_ok_and(|n| n.to_string() == major);
    let mut v = major;
    if let Some(minor) = &p.os_minor {
        v.push(if numeric { '.' } else { ' ' });
        v.push_str(minor);
        if let Some(patch) = &p.os_patch {
            v.push('.');
            v.push_str(patch);
            if let Some(pm) = &p.os_patch_minor {
                v.push('.');
                v.push_str(pm);
            }
        }
    }
    Some(v)
}

impl Filter for UserAgent {
    fn apply(&self, mut e: Event) -> Outcome {
        let ua = match e.get(&self.source) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => match a.first() {
                Some(Value::String(s)) => s.clone(),
                _ => return Outcome::Failed(e),
            },
            _ => return Outcome::Failed(e),
        };
        if ua.is_empty() {
            return Outcome::Failed(e);
        }
        let p = self.lookup(&ua);
        if self.target == self.source {
            e.remove(&self.source);
        }
        let s = |v: &str| Value::String(v.to_string());
        let os_version = os_version(&p);
        let os_full = match &os_version {
            Some(v) => format!("{} {v}", p.os),
            None => p.os.clone(),
        };
        let version = version(&p, &ua);
        if self.ecs {
            let meta = |f: &[&str]| -> Vec<String> {
                ["@metadata", "filter", "user_agent"]
                    .iter()
                    .chain(f)
                    .map(|x| x.to_string())
                    .collect()
            };
            e.set(&self.at(&["name"]), s(&p.family));
            e.set(&self.at(&["device", "name"]), s(&p.device));
            for (f, v) in [
                ("major", &p.major),
                ("minor", &p.minor),
                ("patch", &p.patch),
            ] {
                if let Some(v) = v {
                    e.set(&meta(&["version", f]), s(v));
                }
            }
            if let Some(v) = &version {
                e.set(&self.at(&["version"]), s(v));
            }
            for (f, v) in [
                ("major", &p.os_major),
                ("minor", &p.os_minor),
                ("patch", &p.os_patch),
            ] {
                if let Some(v) = v {
                    e.set(&meta(&["os", "version", f]), s(v));
                }
            }
            if let Some(v) = &os_version {
                e.set(&self.at(&["os", "version"]), s(v));
            }
            e.set(&self.at(&["os", "name"]), s(&p.os));
            e.set(&self.at(&["os", "full"]), s(&os_full));
        } else {
            e.set(&self.legacy("name"), s(&p.family));
            e.set(&self.legacy("device"), s(&p.device));
            for (f, v) in [
                ("major", &p.major),
                ("minor", &p.minor),
                ("patch", &p.patch),
                ("os_major", &p.os_major),
                ("os_minor", &p.os_minor),
                ("os_patch", &p.os_patch),
            ] {
                if let Some(v) = v {
                    e.set(&self.legacy(f), s(v));
                }
            }
            if let Some(v) = &version {
                e.set(&self.legacy("version"), s(v));
            }
            if let Some(v) = &os_version {
                e.set(&self.legacy("os_version"), s(v));
            }
            e.set(&self.legacy("os_name"), s(&p.os));
            e.set(&self.legacy("os"), s(&p.os));
            e.set(&self.legacy("os_full"), s(&os_full));
        }
        Outcome::Done(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_rules_compile_and_name_common_browsers() {
        let rules = Rules::builtin().expect("uap-core rules compile with PCRE2");
        let chrome = rules.parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36");
        assert_eq!(chrome.family, "Chrome");
        assert_eq!(chrome.major.as_deref(), Some("120"));
        assert_eq!(chrome.os, "Windows");
        assert_eq!(chrome.os_major.as_deref(), Some("10"));
        let curl = rules.parse("curl/8.5.0");
        assert_eq!(
            (curl.family.as_str(), curl.major.as_deref()),
            ("curl", Some("8"))
        );
        let nothing = rules.parse("no idea");
        assert_eq!(
            (
                nothing.family.as_str(),
                nothing.os.as_str(),
                nothing.device.as_str()
            ),
            ("Other", "Other", "Other")
        );
    }

    #[test]
    fn replacements_take_groups() {
        assert_eq!(
            substitute("$1 for ArcGIS", &|i| (i == 1)
                .then(|| "Collector".to_string())),
            "Collector for ArcGIS"
        );
        assert_eq!(substitute("v$2", &|_| None), "v");
    }
}
