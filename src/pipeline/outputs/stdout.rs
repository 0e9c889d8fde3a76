//! `stdout`: writes each event to the process's standard output, `rubydebug` by default
//! (`codec => json_lines`, `json`, `line`, `plain` too).

use std::io::Write;

use super::{Output, OutputFuture};
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::{encoder, Encoder};
use crate::pipeline::event::Event;
use crate::pipeline::settings::PluginError;

pub struct Stdout {
    encoder: Encoder,
}

impl Stdout {
    pub fn build(plugin: &Plugin) -> Result<Stdout, PluginError> {
        Ok(Stdout {
            encoder: encoder(plugin, Encoder::RubyDebug)?,
        })
    }
}

impl Output for Stdout {
    fn write<'a>(&'a self, events: &'a [&'a Event]) -> OutputFuture<'a> {
        Box::pin(async move {
            let mut buf = Vec::with_capacity(events.len() * 256);
            for e in events {
                self.encoder.encode(e, &mut buf);
            }
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)
                .and_then(|_| out.flush())
                .map_err(|e| format!("stdout: {e}"))
        })
    }
}
