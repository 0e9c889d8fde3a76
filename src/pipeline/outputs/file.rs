//! `file`: appends events to files whose `path` is a sprintf template
//! (`/var/log/%{host}/%{+YYYY-MM-dd}.log`), `json_lines` by default. Files are opened
//! on first use and kept open; a file deleted underneath is created again
//! (`create_if_deleted`); `write_behavior => overwrite` truncates on each write;
//! `gzip` appends a gzip member per write (concatenated members are valid gzip).
//! A rendered path that escapes the template's fixed directory (`..`) goes to
//! `filename_failure` in that directory instead, as in Logstash.
//!
//! A write returns once the bytes are in the file (the kernel's page cache): they
//! survive the process being killed, not a power cut.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::{Output, OutputFuture};
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::{encoder, Encoder};
use crate::pipeline::context::Context;
use crate::pipeline::event::Event;
use crate::pipeline::settings::{PluginError, Settings};
use crate::pipeline::sprintf::sprintf;

pub struct FileOutput {
    path: String,
    /// The directory part of `path` before its first `%{`.
    fixed_dir: PathBuf,
    encoder: Encoder,
    gzip: bool,
    overwrite: bool,
    create_if_deleted: bool,
    file_mode: u32,
    /// `dir_mode` for the directories the output creates; unset: the system default.
    dir_mode: Option<u32>,
    filename_failure: String,
    open: Mutex<HashMap<PathBuf, std::fs::File>>,
}

fn octal(s: &mut Settings, name: &'static str, default: u32) -> Result<u32, PluginError> {
    match s.string(name)? {
        None => Ok(default),
        Some(v) => {
            let v = v.trim_end_matches(".0");
            u32::from_str_radix(v.trim_start_matches("0o"), 8)
                .or_else(|_| v.parse::<u32>())
                .map_err(|_| s.error(format!("{name} must be an octal mode such as 0640")))
        }
    }
}

impl FileOutput {
    pub fn build(
        plugin: &Plugin,
        s: &mut Settings,
        _ctx: &Context,
    ) -> Result<FileOutput, PluginError> {
        let path = s
            .string("path")?
            .ok_or_else(|| s.error("\"path\" is required".into()))?;
        s.string("flush_interval")?;
        s.string("stale_cleanup_interval")?;
        let dir_mode = if s.is_set("dir_mode") {
            Some(octal(s, "dir_mode", 0)?)
        } else {
            None
        };
        let overwrite = match s.string("write_behavior")?.as_deref() {
            None | Some("append") => false,
            Some("overwrite") => true,
            Some(other) => {
                return Err(s.error(format!(
                    "write_behavior must be append or overwrite, not \"{other}\""
                )))
            }
        };
        let fixed = &path[..path.find("%{").unwrap_or(path.len())];
        let fixed_dir = if fixed.ends_with('/') {
            PathBuf::from(fixed)
        } else {
            Path::new(fixed)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        Ok(FileOutput {
            fixed_dir,
            encoder: encoder(plugin, Encoder::JsonLines)?,
            gzip: s.bool("gzip")?.unwrap_or(false),
            overwrite,
            create_if_deleted: s.bool("create_if_deleted")?.unwrap_or(true),
            file_mode: octal(s, "file_mode", 0o640)?,
            dir_mode,
            filename_failure: s
                .string("filename_failure")?
                .unwrap_or_else(|| "_filepath_failures".into()),
            path,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn target(&self, e: &Event) -> PathBuf {
        let rendered = PathBuf::from(sprintf(&self.path, e));
        let escapes = rendered
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
        if escapes || !rendered.starts_with(&self.fixed_dir) {
            self.fixed_dir.join(&self.filename_failure)
        } else {
            rendered
        }
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let mut open = self.open.lock();
        if self.create_if_deleted && open.contains_key(path) && !path.exists() {
            open.remove(path);
        }
        if self.overwrite {
            open.remove(path);
        }
        if !open.contains_key(path) {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                if let Some(mode) = self.dir_mode {
                    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode);
                }
                builder.create(dir)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(!self.overwrite)
                .write(true)
                .truncate(self.overwrite)
                .mode(self.file_mode)
                .open(path)?;
            open.insert(path.to_path_buf(), f);
        }
        let f = open.get_mut(path).expect("opened above");
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(bytes)?;
            f.write_all(&gz.finish()?)
        } else {
            f.write_all(bytes)
        }
    }
}

impl Output for FileOutput {
    fn write<'a>(&'a self, events: &'a [&'a Event]) -> OutputFuture<'a> {
        Box::pin(async move {
            // Group by file, keeping each file's events in order.
            let mut by_file: Vec<(PathBuf, Vec<u8>)> = Vec::new();
            for e in events {
                let path = self.target(e);
                let i = match by_file.iter().position(|(p, _)| *p == path) {
                    Some(i) => i,
                    None => {
                        by_file.push((path, Vec::new()));
                        by_file.len() - 1
                    }
                };
                self.encoder.encode(e, &mut by_file[i].1);
            }
            for (path, bytes) in by_file {
                self.write_file(&path, &bytes)
                    .map_err(|e| format!("file {}: {e}", path.display()))?;
            }
            Ok(())
        })
    }
}
