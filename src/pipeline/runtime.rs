//! A pipeline's filter section compiled to a tree of filters and conditions, and
//! the walk of an event through it. Everything that can be wrong with the
//! configuration (unknown plugins or settings, bad types, invalid regular expressions)
//! fails here, at load time.

use super::ast::{Config, SectionKind, Statement};
use super::eval::{compile, CompiledCondition};
use super::event::Event;
use super::filters::{self, FilterInstance, Output};
use super::settings::PluginError;

pub enum Node {
    Filter(FilterInstance),
    If {
        branches: Vec<(CompiledCondition, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
}

fn build_nodes(statements: &[Statement]) -> Result<Vec<Node>, PluginError> {
    statements
        .iter()
        .map(|s| match s {
            Statement::Plugin(p) => Ok(Node::Filter(filters::build(p)?)),
            Statement::If(chain) => {
                let branches = chain
                    .branches
                    .iter()
                    .map(|(c, body)| {
                        let cond = compile(c).map_err(|e| PluginError {
                            pos: chain.pos,
                            message: format!("invalid regular expression: {e}"),
                        })?;
                        Ok((cond, build_nodes(body)?))
                    })
                    .collect::<Result<_, PluginError>>()?;
                let otherwise = match &chain.otherwise {
                    Some(body) => build_nodes(body)?,
                    None => vec![],
                };
                Ok(Node::If {
                    branches,
                    otherwise,
                })
            }
        })
        .collect()
}

/// The filters of every `filter` section of the given files, in order.
pub fn compile_filters(configs: &[Config]) -> Result<Vec<Node>, PluginError> {
    let mut nodes = Vec::new();
    for c in configs {
        for s in c.sections.iter().filter(|s| s.kind == SectionKind::Filter) {
            nodes.extend(build_nodes(&s.body)?);
        }
    }
    Ok(nodes)
}

/// Visits every filter of the tree, in order.
pub fn for_each_filter<'a>(nodes: &'a [Node], f: &mut dyn FnMut(&'a FilterInstance)) {
    for n in nodes {
        match n {
            Node::Filter(fi) => f(fi),
            Node::If {
                branches,
                otherwise,
            } => {
                for (_, body) in branches {
                    for_each_filter(body, f);
                }
                for_each_filter(otherwise, f);
            }
        }
    }
}

/// Runs one event through the nodes; returns the events that come out.
pub fn run(nodes: &[Node], event: Event) -> Vec<Event> {
    let mut out = Vec::with_capacity(1);
    run_into(nodes, event, &mut out);
    out
}

/// Runs one event through the nodes, appending what comes out to `out`. One event
/// stays one event on the common path without any allocation of its own.
pub fn run_into(nodes: &[Node], event: Event, out: &mut Vec<Event>) {
    let mut e = event;
    for (i, node) in nodes.iter().enumerate() {
        let result = match node {
            Node::Filter(f) => f.apply(e),
            Node::If {
                branches,
                otherwise,
            } => {
                let body = branches
                    .iter()
                    .find(|(c, _)| c.eval(&e))
                    .map(|(_, b)| b)
                    .unwrap_or(otherwise);
                if body.is_empty() {
                    continue;
                }
                let mut produced = Vec::with_capacity(1);
                run_into(body, e, &mut produced);
                match produced.len() {
                    0 => Output::None,
                    1 => Output::One(produced.pop().expect("one event")),
                    _ => Output::Many(produced),
                }
            }
        };
        match result {
            Output::One(next) => e = next,
            Output::None => return,
            Output::Many(events) => {
                for x in events {
                    run_into(&nodes[i + 1..], x, out);
                }
                return;
            }
        }
    }
    out.push(e);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pipeline::parser::parse;

    fn pipeline(src: &str) -> Result<Vec<Node>, PluginError> {
        compile_filters(&[parse("t.conf", src).unwrap()])
    }

    fn ev(v: serde_json::Value) -> Event {
        Event::new(v.as_object().unwrap().clone(), 0)
    }

    #[test]
    fn mutate_runs_in_logstash_order_with_common_options() {
        let nodes = pipeline(
            r#"filter {
              mutate {
                copy => { "level" => "level_copy" }
                lowercase => ["level"]
                rename => { "msg" => "message" }
                convert => { "bytes" => "integer" "ok" => "boolean" }
                gsub => ["path", "/+", "/"]
                split => { "csv" => "," }
                add_field => { "service" => "%{[host][name]}-svc" }
                add_tag => ["mutated"]
                remove_field => ["junk"]
              }
            }"#,
        )
        .unwrap();
        let out = run(
            &nodes,
            ev(
                json!({"level": "WARN", "msg": "m", "bytes": "1,234", "ok": "yes", "path": "//a///b",
            "csv": "x,y", "host": {"name": "h"}, "junk": 1}),
            ),
        );
        assert_eq!(out.len(), 1);
        let o = out[0].to_output();
        assert_eq!(o["level"], "warn");
        assert_eq!(o["level_copy"], "warn", "copy runs after lowercase");
        assert_eq!(o["message"], "m");
        assert_eq!(o["bytes"], 1234);
        assert_eq!(o["ok"], true);
        assert_eq!(o["path"], "/a/b");
        assert_eq!(o["csv"], json!(["x", "y"]));
        assert_eq!(o["service"], "h-svc");
        assert_eq!(o["tags"], json!(["mutated"]));
        assert!(o.get("junk").is_none());
    }

    #[test]
    fn conditionals_json_and_drop() {
        let nodes = pipeline(
            r#"filter {
              json { source => "message" }
              if [level] == "debug" { drop {} }
              else if "_jsonparsefailure" in [tags] { mutate { add_tag => ["raw"] } }
              else { mutate { add_field => { "routed" => "yes" } } }
            }"#,
        )
        .unwrap();
        assert!(run(&nodes, ev(json!({"message": "{\"level\":\"debug\"}"}))).is_empty());
        let raw = run(&nodes, ev(json!({"message": "not json"})));
        assert_eq!(raw[0].tags(), vec!["_jsonparsefailure", "raw"]);
        let ok = run(
            &nodes,
            ev(json!({"message": "{\"level\":\"info\",\"n\":1}"})),
        );
        assert_eq!(ok[0].to_output()["routed"], "yes");
        assert_eq!(ok[0].to_output()["n"], 1);
    }

    #[test]
    fn date_sets_the_timestamp_or_tags_the_failure() {
        let nodes = pipeline(
            r#"filter { date { match => ["ts", "dd/MMM/yyyy:HH:mm:ss Z", "ISO8601"] add_tag => ["dated"] } }"#,
        )
        .unwrap();
        let out = run(&nodes, ev(json!({"ts": "22/Nov/2026:10:00:00 +0000"})));
        assert_eq!(out[0].to_output()["@timestamp"], "2026-11-22T10:00:00.000Z");
        assert_eq!(out[0].tags(), vec!["dated"]);
        let iso = run(&nodes, ev(json!({"ts": "2026-01-02T03:04:05.006+01:00"})));
        assert_eq!(iso[0].to_output()["@timestamp"], "2026-01-02T02:04:05.006Z");
        let bad = run(&nodes, ev(json!({"ts": "yesterday"})));
        assert_eq!(bad[0].tags(), vec!["_dateparsefailure"]);
        assert!(pipeline(
            r#"filter { date { match => ["ts", "ISO8601"] timezone => "Europe/Atlantis" } }"#
        )
        .is_err());
        let paris = pipeline(
            r#"filter { date { match => ["ts", "ISO8601"] timezone => "Europe/Paris" } }"#,
        )
        .unwrap();
        let local = run(&paris, ev(json!({"ts": "2026-07-01T12:00:00"})));
        assert_eq!(
            local[0].to_output()["@timestamp"],
            "2026-07-01T10:00:00.000Z"
        );
    }

    #[test]
    fn kv_truncate_and_prune() {
        let nodes = pipeline(
            r#"filter {
              kv { source => "msg" target => "kv" exclude_keys => ["secret"] }
              truncate { fields => ["long"] length_bytes => 4 }
              prune { blacklist_names => ["^tmp_"] }
            }"#,
        )
        .unwrap();
        let out = run(
            &nodes,
            ev(
                json!({"msg": "user=\"ann\" id=7 id=8 secret=x bare", "long": "héllo", "tmp_x": 1, "empty": ""}),
            ),
        );
        let o = out[0].to_output();
        assert_eq!(o["kv"], json!({"user": "ann", "id": ["7", "8"]}));
        assert_eq!(o["long"], "hél", "cut on a character boundary");
        assert!(o.get("tmp_x").is_none());
        assert_eq!(o["empty"], "", "prune looks at names, not emptiness");
        assert!(o.get("@timestamp").is_some());
        assert!(
            pipeline(r#"filter { truncate { } }"#).is_err(),
            "length_bytes is required"
        );
    }

    #[test]
    fn unknown_plugins_and_settings_are_load_time_errors() {
        let e = pipeline("filter {\n  grokk { match => {} }\n}")
            .err()
            .unwrap();
        assert!(e.message.contains("unknown filter plugin \"grokk\""));
        assert_eq!((e.pos.line, e.pos.column), (2, 3));
        let e = pipeline("filter { mutate { add_tagz => [\"x\"] } }")
            .err()
            .unwrap();
        assert!(e.message.contains("has no setting \"add_tagz\""));
        let e = pipeline("filter { mutate { lowercase => { \"a\" => \"b\" } } }")
            .err()
            .unwrap();
        assert!(e.message.contains("must be a list"));
        assert!(pipeline("filter { if [a] =~ /(/ { drop {} } }").is_err());
    }
}
