//! Logstash-compatible pipelines. So far: the configuration language (`parser`,
//! producing `ast`), `logbridge pipeline check` (syntax), the event model (`event`),
//! sprintf formatting (`sprintf`, `time`) and condition evaluation (`eval`). Plugins
//! and the runtime that runs a pipeline come with the rest of the pipelines issue.

pub mod ast;
pub mod eval;
pub mod event;
pub mod parser;
pub mod sprintf;
pub mod time;

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Parse(#[from] parser::ParseError),
}

/// The `*.conf` files a path stands for: the file itself, or a directory's `*.conf`
/// files in name order (as Logstash concatenates them).
pub fn config_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|source| LoadError::Read { path: path.into(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.to_path_buf()])
    }
}

/// Parses every file `path` stands for.
pub fn check(path: &Path) -> Result<Vec<ast::Config>, LoadError> {
    config_files(path)?
        .into_iter()
        .map(|f| {
            let src = std::fs::read_to_string(&f).map_err(|source| LoadError::Read { path: f.clone(), source })?;
            Ok(parser::parse(&f.display().to_string(), &src)?)
        })
        .collect()
}
