//! What the Logstash elasticsearch output adds to an `update` beyond the document
//! itself, read from its settings and rendered per event:
//!
//! - `doc_as_upsert` (the document is also the upsert), or `upsert` (a JSON document,
//!   sprintf'd, inserted when the document does not exist yet);
//! - `script` (sprintf'd) with `script_type` (`inline`, or `indexed` for a stored
//!   script's id), `script_lang` (default `painless`, not sent for stored scripts,
//!   which Elasticsearch refuses), `script_var_name` (the name of the event among the
//!   script's params, default `event`) and `scripted_upsert`;
//! - `retry_on_conflict` (default 1, as in Logstash), on the update's action line.
//!
//! The body follows the Update API: `{"doc": …, "doc_as_upsert": true}`,
//! `{"doc": …, "upsert": …}`, or `{"script": {"source"|"id": …, "lang": …, "params":
//! {"event": …}}, "upsert": …}`. Logstash 5's `inline` key is spelt `source`, as
//! Elasticsearch 6 and later require; `script_type => file` (scripts on the
//! Elasticsearch node's disk, gone since Elasticsearch 6) is a configuration error.

use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;

/// The update settings of one output.
pub struct UpdateSettings {
    doc_as_upsert: bool,
    upsert: Option<String>,
    script: Option<ScriptSettings>,
    retry_on_conflict: u32,
}

struct ScriptSettings {
    template: String,
    stored: bool,
    lang: String,
    var_name: String,
    scripted_upsert: bool,
}

/// One update's additions, rendered for its event.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateBody {
    pub doc_as_upsert: bool,
    /// The `upsert` document, as JSON.
    pub upsert: Option<Vec<u8>>,
    pub script: Option<Script>,
    pub retry_on_conflict: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The inline source, or a stored script's id.
    pub text: String,
    pub stored: bool,
    pub lang: String,
    pub var_name: String,
    pub scripted_upsert: bool,
}

impl UpdateSettings {
    pub fn read(s: &mut Settings) -> Result<UpdateSettings, PluginError> {
        let doc_as_upsert = s.bool("doc_as_upsert")?.unwrap_or(false);
        let upsert = s.string("upsert")?.filter(|u| !u.is_empty());
        let stored = match s.string("script_type")?.as_deref() {
            None | Some("inline") => false,
            Some("indexed") => true,
            Some("file") => {
                return Err(s.error(
                    "script_type => file: Elasticsearch 6 and later have no file scripts; \
                     use inline or indexed (stored)"
                        .into(),
                ))
            }
            Some(other) => {
                return Err(s.error(format!(
                    "script_type must be inline or indexed, not \"{other}\""
                )))
            }
        };
        let lang = s
            .string("script_lang")?
            .unwrap_or_else(|| "painless".into());
        let var_name = s
            .string("script_var_name")?
            .unwrap_or_else(|| "event".into());
        let scripted_upsert = s.bool("scripted_upsert")?.unwrap_or(false);
        let script = s
            .string("script")?
            .filter(|t| !t.is_empty())
            .map(|template| ScriptSettings {
                template,
                stored,
                lang,
                var_name,
                scripted_upsert,
            });
        let retry_on_conflict = match s.string("retry_on_conflict")? {
            None => 1,
            Some(n) => n
                .parse()
                .map_err(|_| s.error("retry_on_conflict must be a whole number".into()))?,
        };
        Ok(UpdateSettings {
            doc_as_upsert,
            upsert,
            script,
            retry_on_conflict,
        })
    }

    /// The update additions for `e`; an `upsert` that does not render to JSON is a
    /// rejection of that event.
    pub fn render(&self, e: &Event) -> Result<UpdateBody, String> {
        let upsert = match &self.upsert {
            None => None,
            Some(t) => {
                let text = sprintf(t, e);
                let value: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|err| format!("upsert is not JSON ({err}): {text}"))?;
                Some(serde_json::to_vec(&value).unwrap_or_default())
            }
        };
        Ok(UpdateBody {
            doc_as_upsert: self.doc_as_upsert,
            upsert,
            script: self.script.as_ref().map(|s| Script {
                text: sprintf(&s.template, e),
                stored: s.stored,
                lang: s.lang.clone(),
                var_name: s.var_name.clone(),
                scripted_upsert: s.scripted_upsert,
            }),
            retry_on_conflict: self.retry_on_conflict,
        })
    }
}

impl UpdateBody {
    /// The update request's body line (without its newline) around `source`.
    pub fn encode(&self, source: &[u8], out: &mut Vec<u8>) {
        let json_str = |s: &str| serde_json::Value::String(s.to_string()).to_string();
        match &self.script {
            None => {
                out.extend_from_slice(b"{\"doc\":");
                out.extend_from_slice(source);
                if self.doc_as_upsert {
                    out.extend_from_slice(b",\"doc_as_upsert\":true");
                } else if let Some(u) = &self.upsert {
                    out.extend_from_slice(b",\"upsert\":");
                    out.extend_from_slice(u);
                }
            }
            Some(script) => {
                out.extend_from_slice(b"{\"script\":{");
                out.extend_from_slice(if script.stored {
                    b"\"id\":"
                } else {
                    b"\"source\":"
                });
                out.extend_from_slice(json_str(&script.text).as_bytes());
                if !script.stored && !script.lang.is_empty() {
                    out.extend_from_slice(b",\"lang\":");
                    out.extend_from_slice(json_str(&script.lang).as_bytes());
                }
                out.extend_from_slice(b",\"params\":{");
                out.extend_from_slice(json_str(&script.var_name).as_bytes());
                out.push(b':');
                out.extend_from_slice(source);
                out.extend_from_slice(b"}}");
                if script.scripted_upsert {
                    out.extend_from_slice(b",\"scripted_upsert\":true,\"upsert\":{}");
                } else if self.doc_as_upsert {
                    out.extend_from_slice(b",\"upsert\":");
                    out.extend_from_slice(source);
                } else if let Some(u) = &self.upsert {
                    out.extend_from_slice(b",\"upsert\":");
                    out.extend_from_slice(u);
                }
            }
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(script: Option<Script>, doc_as_upsert: bool, upsert: Option<&str>) -> String {
        let b = UpdateBody {
            doc_as_upsert,
            upsert: upsert.map(|u| u.as_bytes().to_vec()),
            script,
            retry_on_conflict: 1,
        };
        let mut out = Vec::new();
        b.encode(br#"{"n":1}"#, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn script(stored: bool, scripted_upsert: bool) -> Option<Script> {
        Some(Script {
            text: "ctx._source.n += params.event.n".into(),
            stored,
            lang: "painless".into(),
            var_name: "event".into(),
            scripted_upsert,
        })
    }

    #[test]
    fn update_bodies_follow_the_update_api() {
        assert_eq!(body(None, false, None), r#"{"doc":{"n":1}}"#);
        assert_eq!(
            body(None, true, None),
            r#"{"doc":{"n":1},"doc_as_upsert":true}"#
        );
        assert_eq!(
            body(None, false, Some(r#"{"n":0}"#)),
            r#"{"doc":{"n":1},"upsert":{"n":0}}"#
        );
        assert_eq!(
            body(script(false, false), false, None),
            r#"{"script":{"source":"ctx._source.n += params.event.n","lang":"painless","params":{"event":{"n":1}}}}"#
        );
        assert_eq!(
            body(script(false, true), false, None),
            r#"{"script":{"source":"ctx._source.n += params.event.n","lang":"painless","params":{"event":{"n":1}}},"scripted_upsert":true,"upsert":{}}"#
        );
        assert_eq!(
            body(script(true, false), true, None),
            r#"{"script":{"id":"ctx._source.n += params.event.n","params":{"event":{"n":1}}},"upsert":{"n":1}}"#
        );
        for b in [
            body(script(false, false), false, Some(r#"{"n":0}"#)),
            body(None, true, None),
        ] {
            serde_json::from_str::<serde_json::Value>(&b).expect("valid JSON");
        }
    }
}
