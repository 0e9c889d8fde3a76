//! Logstash-compatible pipelines: the configuration language (`parser` → `ast`), the
//! event model (`event`), sprintf (`sprintf`, `time`), conditions (`eval`), typed
//! plugin settings (`settings`), codecs (`codec`), input, filter and output plugins
//! (`inputs`, `filters`, `outputs`), the filter walk (`runtime`), ordered commits
//! (`progress`) as members of the inputs' consumer groups (`group_session`), a
//! running pipeline (`runner`) and the set of pipelines `serve` runs from a directory
//! (`service`).
//!
//! Data flows one way: input → filters → outputs → commit. Plugins reach topics only
//! through `client::access::TopicAccess` (see `context`).

pub mod ast;
pub mod codec;
pub mod context;
pub mod eval;
pub mod event;
pub mod filters;
pub mod group_session;
pub mod inputs;
pub mod outputs;
pub mod parser;
pub mod progress;
pub mod runner;
pub mod runtime;
pub mod service;
pub mod settings;
pub mod sprintf;
pub mod stop;
pub mod time;
pub mod vars;

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

/// A pipeline's filters and its first input's codec: what `pipeline run` needs.
pub struct Pipeline {
    pub filters: Vec<runtime::Node>,
    pub codec: codec::Decoder,
}

/// Parses the files `path` stands for (a file, or a directory's `*.conf` files) and
/// replaces `${VAR}` references in their settings.
pub fn parse_files(
    path: &Path,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<ast::Config>, LoadError> {
    let mut configs = Vec::new();
    for f in config_files(path)? {
        let src = std::fs::read_to_string(&f).map_err(|source| LoadError::Read {
            path: f.clone(),
            source,
        })?;
        let mut cfg = parser::parse(&f.display().to_string(), &src)?;
        vars::substitute(&mut cfg, vars).map_err(|error| LoadError::Plugin {
            file: f.display().to_string(),
            error,
        })?;
        configs.push(cfg);
    }
    Ok(configs)
}

/// Builds every plugin of a pipeline — inputs, filters, outputs — so that every
/// configuration error surfaces now. Errors name the file the plugin is in.
pub fn build(name: &str, path: &Path, ctx: &context::Context) -> Result<runner::Built, LoadError> {
    let configs = parse_files(path, &ctx.vars)?;
    // This pipeline's own view of the context: its name (dead-letter topic) and its
    // stop flag (outputs retrying inside a write give up when it is set).
    let stopping = stop::StopFlag::default();
    let ctx = &context::Context {
        pipeline: name.to_string(),
        stopping: stopping.clone(),
        ..ctx.clone()
    };
    let in_file = |i: usize| {
        move |error| LoadError::Plugin {
            file: configs_name(path, i),
            error,
        }
    };
    let mut inputs = Vec::new();
    let mut filters = Vec::new();
    let mut outputs = outputs::Outputs {
        instances: Vec::new(),
        tree: Vec::new(),
    };
    for (i, cfg) in configs.iter().enumerate() {
        for section in cfg
            .sections
            .iter()
            .filter(|s| s.kind == ast::SectionKind::Input)
        {
            for st in &section.body {
                match st {
                    ast::Statement::Plugin(p) => {
                        inputs.push(inputs::build(p, ctx, name).map_err(in_file(i))?)
                    }
                    ast::Statement::If(chain) => {
                        return Err(in_file(i)(settings::PluginError {
                            pos: chain.pos,
                            message: "conditionals are not allowed in an input section".into(),
                        }))
                    }
                }
            }
        }
        filters.extend(runtime::compile_filters(std::slice::from_ref(cfg)).map_err(in_file(i))?);
        let o = outputs::compile_outputs(std::slice::from_ref(cfg), ctx).map_err(in_file(i))?;
        let shift = outputs.instances.len();
        outputs.instances.extend(o.instances);
        outputs
            .tree
            .extend(o.tree.into_iter().map(|n| n.shifted(shift)));
    }
    Ok(runner::Built {
        name: name.to_string(),
        inputs,
        filters,
        outputs,
        stopping,
    })
}

fn configs_name(path: &Path, i: usize) -> String {
    config_files(path)
        .ok()
        .and_then(|f| f.get(i).map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

/// Loads what `pipeline run` needs: the filters and the first input's codec.
pub fn load(path: &Path) -> Result<Pipeline, LoadError> {
    let built = build("run", path, &context::Context::default())?;
    let configs = parse_files(path, &Default::default())?;
    let codec = configs
        .iter()
        .flat_map(|c| {
            c.sections
                .iter()
                .filter(|s| s.kind == ast::SectionKind::Input)
        })
        .flat_map(|s| s.body.iter())
        .find_map(|st| match st {
            ast::Statement::Plugin(p) => Some(codec::decoder(p, codec::Decoder::PLAIN)),
            _ => None,
        })
        .transpose()
        .map_err(|error| LoadError::Plugin {
            file: path.display().to_string(),
            error,
        })?
        .unwrap_or(codec::Decoder::PLAIN);
    Ok(Pipeline {
        filters: built.filters,
        codec,
    })
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

/// Checks the files `path` stands for: syntax, and every plugin and its settings.
pub fn check(path: &Path) -> Result<(), LoadError> {
    build("check", path, &context::Context::default()).map(|_| ())
}
