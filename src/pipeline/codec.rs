//! Codecs: how bytes become events on the way in (`plain`, `json`, `json_lines`) and
//! how events become bytes on the way out (`json`, `json_lines`, `plain`/`line` with an
//! optional sprintf `format`, `rubydebug`). A codec is written as
//! `codec => json` or `codec => plain { format => "…" charset => "…" }`.
//!
//! JSON input is parsed with simd-json (the hot path of every kafka input with
//! `codec => json`); a line that is not a JSON object becomes a `message` tagged
//! `_jsonparsefailure`, as Logstash's json codec does.

use serde_json::{Map, Value};

use super::ast::{Plugin, Value as AstValue};
use super::event::Event;
use super::settings::{PluginError, Settings};
use super::sprintf::sprintf;

/// How input bytes become events: `plain` and `json` make one event of a whole record,
/// `line` and `json_lines` one per line of it; `charset` says what the bytes are
/// (UTF-8 by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    kind: Kind,
    /// None: UTF-8 (invalid sequences replaced, as Logstash does).
    charset: Option<&'static encoding_rs::Encoding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Json,
    Line,
    JsonLines,
}

impl Decoder {
    pub const PLAIN: Decoder = Decoder {
        kind: Kind::Plain,
        charset: None,
    };
    pub const JSON: Decoder = Decoder {
        kind: Kind::Json,
        charset: None,
    };
    pub const LINE: Decoder = Decoder {
        kind: Kind::Line,
        charset: None,
    };
    pub const JSON_LINES: Decoder = Decoder {
        kind: Kind::JsonLines,
        charset: None,
    };

    /// The bytes as text in UTF-8.
    fn text<'b>(&self, bytes: &'b [u8]) -> std::borrow::Cow<'b, str> {
        match self.charset {
            None => String::from_utf8_lossy(bytes),
            Some(enc) => enc.decode_without_bom_handling(bytes).0,
        }
    }

    /// Decodes a record (a Kafka record value): one event, or one per line for the
    /// line codecs.
    pub fn decode_all(self, bytes: &[u8], now_ms: i64, out: &mut Vec<Event>) {
        match self.kind {
            Kind::Plain | Kind::Json => out.push(self.decode(bytes, now_ms)),
            Kind::Line | Kind::JsonLines => {
                for line in bytes.split(|b| *b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if !line.is_empty() {
                        out.push(self.decode(line, now_ms));
                    }
                }
            }
        }
    }

    /// Decodes one line or record as one event.
    pub fn decode(self, bytes: &[u8], now_ms: i64) -> Event {
        match self.kind {
            Kind::Plain | Kind::Line => Event::from_message(&self.text(bytes), now_ms),
            Kind::Json | Kind::JsonLines => {
                let mut owned = match self.charset {
                    None => bytes.to_vec(),
                    Some(_) => self.text(bytes).into_owned().into_bytes(),
                };
                match simd_json::serde::from_slice::<Map<String, Value>>(&mut owned) {
                    Ok(o) => Event::new(o, now_ms),
                    Err(_) => {
                        let mut e = Event::from_message(&String::from_utf8_lossy(bytes), now_ms);
                        e.add_tag("_jsonparsefailure");
                        e
                    }
                }
            }
        }
    }
}

/// How events become output bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoder {
    Json,
    JsonLines,
    /// `plain` writes no separator, `line` a newline; `format` is a sprintf template,
    /// otherwise Logstash's `to_s`: `@timestamp host message`.
    Text {
        format: Option<String>,
        newline: bool,
    },
    RubyDebug,
}

/// The codec named by a plugin's `codec` setting, if any, with its own settings.
pub fn named(plugin: &Plugin) -> Option<(String, Option<&Plugin>)> {
    plugin
        .settings
        .iter()
        .rev()
        .find(|s| s.name == "codec")
        .map(|s| match &s.value {
            AstValue::Plugin(p) => (p.name.clone(), Some(p)),
            AstValue::Bareword(n) | AstValue::String(n) => (n.clone(), None),
            _ => (String::new(), None),
        })
}

fn check_codec_settings(
    name: &str,
    settings: Option<&Plugin>,
    allowed: &[&str],
) -> Result<Option<String>, PluginError> {
    let Some(p) = settings else { return Ok(None) };
    let mut s = Settings::new(p, "codec");
    let format = s.string("format")?;
    s.string("charset")?;
    // Accepted only where they would change nothing: lines end at "\n" here, and
    // rubydebug does not print `@metadata`.
    if allowed.contains(&"delimiter") {
        if let Some(d) = s.string("delimiter")?.filter(|d| d != "\n" && d != "\\n") {
            return Err(s.error(format!(
                "codec \"{name}\": only the delimiter \"\\n\" is supported, not {d:?}"
            )));
        }
    }
    if allowed.contains(&"metadata") && s.bool("metadata")? == Some(true) {
        return Err(s.error(format!(
            "codec \"{name}\": metadata => true (printing @metadata) is not supported"
        )));
    }
    s.finish()?;
    if format.is_some() && !matches!(name, "plain" | "line") {
        return Err(PluginError {
            pos: p.pos,
            message: format!("codec \"{name}\" has no setting \"format\""),
        });
    }
    Ok(format)
}

/// A codec's `charset`: None for UTF-8, else the encoding (WHATWG names and labels:
/// ISO-8859-1, windows-1252, Shift_JIS, UTF-16LE…).
fn charset(
    settings: Option<&Plugin>,
) -> Result<Option<&'static encoding_rs::Encoding>, PluginError> {
    let Some(p) = settings else { return Ok(None) };
    let Some(setting) = p.settings.iter().rev().find(|s| s.name == "charset") else {
        return Ok(None);
    };
    let name = match &setting.value {
        AstValue::String(n) | AstValue::Bareword(n) => n.clone(),
        _ => String::new(),
    };
    match encoding_rs::Encoding::for_label(name.as_bytes()) {
        Some(e) if e == encoding_rs::UTF_8 => Ok(None),
        Some(e) => Ok(Some(e)),
        None => Err(PluginError {
            pos: setting.pos,
            message: format!("codec \"{}\": unknown charset \"{name}\"", p.name),
        }),
    }
}

/// The input decoder a plugin asks for (`default` when it names none).
pub fn decoder(plugin: &Plugin, default: Decoder) -> Result<Decoder, PluginError> {
    match named(plugin) {
        None => Ok(default),
        Some((name, settings)) => {
            check_codec_settings(&name, settings, &["delimiter"])?;
            let charset = charset(settings)?;
            let kind = |k| Ok(Decoder { kind: k, charset });
            match name.as_str() {
                "plain" => kind(Kind::Plain),
                "line" => kind(Kind::Line),
                "json" => kind(Kind::Json),
                "json_lines" => kind(Kind::JsonLines),
                other => Err(PluginError {
                    pos: plugin.pos,
                    message: format!(
                        "unknown input codec \"{other}\" (available: json, json_lines, line, plain)"
                    ),
                }),
            }
        }
    }
}

/// The output encoder a plugin asks for (`default` when it names none).
pub fn encoder(plugin: &Plugin, default: Encoder) -> Result<Encoder, PluginError> {
    match named(plugin) {
        None => Ok(default),
        Some((name, settings)) => {
            let format = check_codec_settings(&name, settings, &["delimiter", "metadata"])?;
            match name.as_str() {
                "json" => Ok(Encoder::Json),
                "json_lines" => Ok(Encoder::JsonLines),
                "plain" => Ok(Encoder::Text {
                    format,
                    newline: false,
                }),
                "line" => Ok(Encoder::Text {
                    format,
                    newline: true,
                }),
                "rubydebug" => Ok(Encoder::RubyDebug),
                other => Err(PluginError {
                    pos: plugin.pos,
                    message: format!(
                        "unknown output codec \"{other}\" (available: json, json_lines, line, plain, rubydebug)"
                    ),
                }),
            }
        }
    }
}

impl Encoder {
    /// Appends one encoded event to `out`.
    pub fn encode(&self, e: &Event, out: &mut Vec<u8>) {
        match self {
            Encoder::Json => e.write_json(out),
            Encoder::JsonLines => {
                e.write_json(out);
                out.push(b'\n');
            }
            Encoder::Text { format, newline } => {
                let text = match format {
                    Some(f) => sprintf(f, e),
                    None => sprintf("%{@timestamp} %{host} %{message}", e),
                };
                out.extend_from_slice(text.as_bytes());
                if *newline {
                    out.push(b'\n');
                }
            }
            Encoder::RubyDebug => {
                let mut visible = e.fields().clone();
                visible.remove("@metadata");
                ruby_debug(&Value::Object(visible), 0, out);
                out.push(b'\n');
            }
        }
    }
}

/// Logstash's `rubydebug` layout (awesome_print): keys right-aligned, nested hashes
/// and arrays indented by four, array items numbered, `@timestamp` bare.
fn ruby_debug(v: &Value, indent: usize, out: &mut Vec<u8>) {
    let pad = |n: usize, out: &mut Vec<u8>| out.extend(std::iter::repeat_n(b' ', n));
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.extend_from_slice(b"{\n");
            let width = m.keys().map(|k| k.chars().count() + 2).max().unwrap_or(0);
            let n = m.len();
            for (i, (k, val)) in m.iter().enumerate() {
                let quoted = format!("\"{k}\"");
                pad(indent + 4 + width - quoted.chars().count(), out);
                out.extend_from_slice(quoted.as_bytes());
                out.extend_from_slice(b" => ");
                if k == "@timestamp" {
                    if let Value::String(s) = val {
                        out.extend_from_slice(s.as_bytes());
                    } else {
                        ruby_debug(val, indent + 4, out);
                    }
                } else {
                    ruby_debug(val, indent + 4, out);
                }
                if i + 1 < n {
                    out.push(b',');
                }
                out.push(b'\n');
            }
            pad(indent, out);
            out.push(b'}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.extend_from_slice(b"[\n");
            for (i, item) in a.iter().enumerate() {
                pad(indent + 4, out);
                out.extend_from_slice(format!("[{i}] ").as_bytes());
                ruby_debug(item, indent + 4, out);
                if i + 1 < a.len() {
                    out.push(b',');
                }
                out.push(b'\n');
            }
            pad(indent, out);
            out.push(b']');
        }
        Value::Object(_) => out.extend_from_slice(b"{}"),
        Value::Array(_) => out.extend_from_slice(b"[]"),
        Value::Null => out.extend_from_slice(b"nil"),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn line_codecs_make_one_event_per_line() {
        let mut out = Vec::new();
        Decoder::JSON_LINES.decode_all(b"{\"n\":1}\r\n{\"n\":2}\n\n", 0, &mut out);
        Decoder::JSON.decode_all(b"{\"n\":3}", 0, &mut out);
        Decoder::LINE.decode_all(b"a\nb", 0, &mut out);
        let got: Vec<_> = out.iter().map(|e| e.to_output()).collect();
        assert_eq!(got[0]["n"], 1);
        assert_eq!(got[1]["n"], 2);
        assert_eq!(got[2]["n"], 3);
        assert_eq!(
            (got[3]["message"].as_str(), got[4]["message"].as_str()),
            (Some("a"), Some("b"))
        );
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn settings_that_would_change_nothing_here_are_refused_otherwise() {
        let check = |conf: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.conf");
            std::fs::write(&path, conf).unwrap();
            crate::pipeline::check(&path).map_err(|e| e.to_string())
        };
        let input = |codec: &str| {
            check(&format!(
                "input {{ generator {{ count => 1 codec => {codec} }} }}\noutput {{ null {{}} }}\n"
            ))
        };
        let output = |codec: &str| {
            check(&format!(
                "input {{ generator {{ count => 1 }} }}\noutput {{ stdout {{ codec => {codec} }} }}\n"
            ))
        };
        // A codec with settings is a codec, not a string, to every plugin.
        assert!(input(r#"json_lines { charset => "ISO-8859-1" }"#).is_ok());
        assert!(output(r#"line { format => "%{message}" }"#).is_ok());
        assert!(input(r#"line { delimiter => "\n" }"#).is_ok());
        let err = input(r#"line { delimiter => "|" }"#).unwrap_err();
        assert!(err.contains("only the delimiter"), "{err}");
        assert!(output("rubydebug { metadata => false }").is_ok());
        let err = output("rubydebug { metadata => true }").unwrap_err();
        assert!(err.contains("metadata => true"), "{err}");
    }

    #[test]
    fn charsets_are_converted_to_utf8() {
        let latin1 = Decoder {
            kind: Kind::Plain,
            charset: Some(encoding_rs::WINDOWS_1252),
        };
        assert_eq!(latin1.decode(b"caf\xe9", 0).to_output()["message"], "café");
        assert_eq!(
            Decoder::PLAIN.decode(b"caf\xe9", 0).to_output()["message"],
            "caf\u{fffd}"
        );
    }

    #[test]
    fn json_decoding_and_failure_tag() {
        let e = Decoder::JSON.decode(br#"{"a": {"b": 1}, "message": "m"}"#, 0);
        assert_eq!(e.to_output()["a"]["b"], 1);
        let bad = Decoder::JSON.decode(b"[1,2]", 0);
        assert_eq!(bad.tags(), vec!["_jsonparsefailure"]);
        assert_eq!(bad.to_output()["message"], "[1,2]");
    }

    #[test]
    fn rubydebug_aligns_keys_and_numbers_array_items() {
        let e = Event::new(
            json!({"message": "hi", "@timestamp": "2026-11-22T10:00:00.000Z", "tags": ["a"], "@metadata": {"x": 1}})
                .as_object()
                .unwrap()
                .clone(),
            0,
        );
        let mut out = Vec::new();
        Encoder::RubyDebug.encode(&e, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\n    \"@timestamp\" => 2026-11-22T10:00:00.000Z,\n      \"@version\" => \"1\",\n       \"message\" => \"hi\",\n          \"tags\" => [\n        [0] \"a\"\n    ]\n}\n"
        );
    }
}
