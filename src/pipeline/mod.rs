//! Logstash-compatible pipelines. So far: the configuration language (`parser`,
//! producing `ast`), the event model (`event`), sprintf formatting (`sprintf`, `time`),
//! condition evaluation (`eval`), typed plugin settings (`settings`), the filters
//! `mutate`, `drop`, `json`, `date`, `kv`, `truncate`, `prune` (`filters`), and the filter runtime (`runtime`) behind
//! `logbridge pipeline check` and `logbridge pipeline run`. Inputs, outputs, the other
//! filters and `serve --pipelines` come with the rest of the pipelines issue.

pub mod ast;
pub mod eval;
pub mod event;
pub mod filters;
pub mod parser;
pub mod runtime;
pub mod settings;
pub mod sprintf;
pub mod time;

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] parser::ParseError),
    #[error("{file}: {error}")]
    Plugin {
        file: String,
        error: settings::PluginError,
    },
}

/// How input lines become events (the first input's `codec`; `plain` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Json,
}

impl Codec {
    /// Decodes one line: `json` parses an object (a line that is not one becomes a
    /// `message` tagged `_jsonparsefailure`, as Logstash's json codec does).
    pub fn decode(self, line: &str, now_ms: i64) -> event::Event {
        match self {
            Codec::Plain => event::Event::from_message(line, now_ms),
            Codec::Json => match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(o)) => event::Event::new(o, now_ms),
                _ => {
                    let mut e = event::Event::from_message(line, now_ms);
                    e.add_tag("_jsonparsefailure");
                    e
                }
            },
        }
    }
}

/// A loaded pipeline: its filters, ready to run, and its input codec.
pub struct Pipeline {
    pub filters: Vec<runtime::Node>,
    pub codec: Codec,
}

/// Loads the files `path` stands for: parses them and builds their filters, so that
/// every configuration error surfaces now.
pub fn load(path: &Path) -> Result<Pipeline, LoadError> {
    let mut configs = Vec::new();
    for f in config_files(path)? {
        let src = std::fs::read_to_string(&f).map_err(|source| LoadError::Read {
            path: f.clone(),
            source,
        })?;
        let cfg = parser::parse(&f.display().to_string(), &src)?;
        runtime::compile_filters(std::slice::from_ref(&cfg)).map_err(|error| {
            LoadError::Plugin {
                file: f.display().to_string(),
                error,
            }
        })?;
        configs.push(cfg);
    }
    let filters = runtime::compile_filters(&configs).map_err(|error| LoadError::Plugin {
        file: path.display().to_string(),
        error,
    })?;
    let codec = configs
        .iter()
        .flat_map(|c| {
            c.sections
                .iter()
                .filter(|s| s.kind == ast::SectionKind::Input)
        })
        .flat_map(|s| s.body.iter())
        .find_map(|st| match st {
            ast::Statement::Plugin(p) => {
                p.settings
                    .iter()
                    .find(|s| s.name == "codec")
                    .map(|s| match &s.value {
                        ast::Value::Bareword(n) | ast::Value::String(n) => n.clone(),
                        ast::Value::Plugin(p) => p.name.clone(),
                        _ => "plain".into(),
                    })
            }
            _ => None,
        })
        .map(|name| {
            if name == "json" || name == "json_lines" {
                Codec::Json
            } else {
                Codec::Plain
            }
        })
        .unwrap_or(Codec::Plain);
    Ok(Pipeline { filters, codec })
}

/// The `*.conf` files a path stands for: the file itself, or a directory's `*.conf`
/// files in name order (as Logstash concatenates them).
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| LoadError::Read {
                path: path.into(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Checks the files `path` stands for: syntax, and every filter's plugin and settings.
pub fn check(path: &Path) -> Result<(), LoadError> {
    load(path).map(|_| ())
}
