//! Filter plugins. Each filter turns one event into zero (drop), one or more events,
//! then — when it succeeded — the options every Logstash filter has are applied in
//! Logstash's order: `add_field`, `add_tag`, `remove_field`, `remove_tag` (with sprintf
//! in names and values). The filters are listed in `AVAILABLE`; any other name is a load-time
//! error.

mod date;
mod dissect;
mod drop;
mod fingerprint;
mod grok;
mod json;
mod kv;
mod mutate;
mod prune;
mod truncate;
mod useragent;

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::ast::Plugin;
use super::event::Event;
use super::settings::{PluginError, Settings};
use super::sprintf::{sprintf, FieldName};

/// What a filter did to an event.
pub enum Outcome {
    /// The event continues; the common options apply.
    Done(Event),
    /// The event became several (each continues; the common options apply to each).
    Many(Vec<Event>),
    /// The event is gone (`drop`).
    Dropped,
    /// The filter failed on this event (it carries its failure tag); common options
    /// do not apply.
    Failed(Event),
}

/// What comes out of a configured filter: no event, one, or several.
pub enum Output {
    None,
    One(Event),
    Many(Vec<Event>),
}

/// Per-worker event counters, so that workers do not contend on one cache line.
#[derive(Default)]
#[repr(align(64))]
struct Slot {
    events_in: AtomicU64,
    events_out: AtomicU64,
    failures: AtomicU64,
}

const SLOTS: usize = 8;

thread_local! {
    /// Which counter slot this thread uses (pipeline workers set it).
    static SLOT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Called by each pipeline worker thread with its index.
pub fn set_counter_slot(worker: usize) {
    SLOT.with(|s| s.set(worker % SLOTS));
}

pub trait Filter: Send + Sync {
    fn apply(&self, event: Event) -> Outcome;
}

/// A configured filter with its common options and counters.
pub struct FilterInstance {
    pub name: String,
    pub id: String,
    counters: [Slot; SLOTS],
    filter: Box<dyn Filter>,
    add_field: Vec<(FieldName, String)>,
    add_tag: Vec<String>,
    remove_field: Vec<FieldName>,
    remove_tag: Vec<String>,
}

impl FilterInstance {
    pub fn apply(&self, event: Event) -> Output {
        let slot = &self.counters[SLOT.with(|s| s.get())];
        slot.events_in.fetch_add(1, Ordering::Relaxed);
        let (out, n) = match self.filter.apply(event) {
            Outcome::Failed(e) => {
                slot.failures.fetch_add(1, Ordering::Relaxed);
                (Output::One(e), 1)
            }
            Outcome::Done(e) => (Output::One(self.common(e)), 1),
            Outcome::Dropped => (Output::None, 0),
            Outcome::Many(events) => {
                let n = events.len();
                let events = events.into_iter().map(|e| self.common(e)).collect();
                (Output::Many(events), n)
            }
        };
        slot.events_out.fetch_add(n as u64, Ordering::Relaxed);
        out
    }

    /// Events into and out of this filter so far, and how many it failed on.
    pub fn counts(&self) -> (u64, u64, u64) {
        self.counters.iter().fold((0, 0, 0), |(i, o, f), s| {
            (
                i + s.events_in.load(Ordering::Relaxed),
                o + s.events_out.load(Ordering::Relaxed),
                f + s.failures.load(Ordering::Relaxed),
            )
        })
    }

    fn common(&self, mut e: Event) -> Event {
        for (k, v) in &self.add_field {
            let path = k.path(&e);
            let value = Value::String(sprintf(v, &e));
            match e.get(&path).cloned() {
                // Logstash turns an existing field into an array and appends.
                Some(Value::Array(mut a)) => {
                    a.push(value);
                    e.set(&path, Value::Array(a));
                }
                Some(existing) => e.set(&path, Value::Array(vec![existing, value])),
                None => e.set(&path, value),
            }
        }
        for t in &self.add_tag {
            let t = sprintf(t, &e);
            e.add_tag(&t);
        }
        for f in &self.remove_field {
            let path = f.path(&e);
            e.remove(&path);
        }
        for t in &self.remove_tag {
            let t = sprintf(t, &e);
            e.remove_tag(&t);
        }
        e
    }
}

/// The filter plugins this build knows.
pub const AVAILABLE: &[&str] = &[
    "date",
    "dissect",
    "drop",
    "fingerprint",
    "grok",
    "json",
    "kv",
    "mutate",
    "prune",
    "truncate",
    "useragent",
];

/// Builds a filter from its configuration, refusing unknown plugins and settings.
pub fn build(plugin: &Plugin) -> Result<FilterInstance, PluginError> {
    let mut s = Settings::new(plugin, "filter");
    let add_field = s
        .hash("add_field")?
        .into_iter()
        .map(|(k, v)| (FieldName::new(&k), v))
        .collect();
    let add_tag = s.list("add_tag")?;
    let remove_field = s
        .list("remove_field")?
        .iter()
        .map(|f| FieldName::new(f))
        .collect();
    let remove_tag = s.list("remove_tag")?;
    let id = s.string("id")?;
    s.bool("enable_metric")?;
    s.bool("periodic_flush")?;
    let filter: Box<dyn Filter> = match plugin.name.as_str() {
        "mutate" => Box::new(mutate::Mutate::build(&mut s)?),
        "drop" => Box::new(drop::Drop::build(&mut s)?),
        "json" => Box::new(json::Json::build(&mut s)?),
        "grok" => Box::new(grok::Grok::build(&mut s)?),
        "dissect" => Box::new(dissect::Dissect::build(&mut s)?),
        "fingerprint" => Box::new(fingerprint::Fingerprint::build(&mut s)?),
        "date" => Box::new(date::Date::build(&mut s)?),
        "kv" => Box::new(kv::Kv::build(&mut s)?),
        "truncate" => Box::new(truncate::Truncate::build(&mut s)?),
        "prune" => Box::new(prune::Prune::build(&mut s)?),
        "useragent" => Box::new(useragent::UserAgent::build(&mut s)?),
        other => {
            return Err(PluginError {
                pos: plugin.pos,
                message: format!(
                    "unknown filter plugin \"{other}\" (available: {})",
                    AVAILABLE.join(", ")
                ),
            })
        }
    };
    s.finish()?;
    Ok(FilterInstance {
        id: id.unwrap_or_else(|| {
            format!("{}@{}:{}", plugin.name, plugin.pos.line, plugin.pos.column)
        }),
        counters: Default::default(),
        name: plugin.name.clone(),
        filter,
        add_field,
        add_tag,
        remove_field,
        remove_tag,
    })
}
