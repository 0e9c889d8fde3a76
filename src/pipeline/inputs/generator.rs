//! `generator`: emits `lines` (or `message`, default `Hello world!`) over and over,
//! `count` times (0 = forever), each event with a sequence number in
//! `[event][sequence]` (`sequence` with `ecs_compatibility => disabled`) and the host
//! name in `[host][name]` (`host`). For tests and benchmarks; nothing to acknowledge.

use crate::pipeline::stop::StopFlag;
use serde_json::Value;

use super::{Batch, BatchSender, Common, Events};
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::Decoder;
use crate::pipeline::settings::{PluginError, Settings};
use crate::storage::segment::now_ms;

pub struct Generator {
    pub common: Common,
    lines: Vec<String>,
    count: u64,
    ecs: bool,
    decoder: Decoder,
}

impl Generator {
    pub fn build(
        plugin: &Plugin,
        s: &mut Settings,
        common: Common,
    ) -> Result<Generator, PluginError> {
        let mut lines = s.list("lines")?;
        if lines.is_empty() {
            lines.push(
                s.string("message")?
                    .unwrap_or_else(|| "Hello world!".into()),
            );
        } else {
            s.string("message")?;
        }
        let count = match s.string("count")? {
            None => 0,
            Some(c) => c
                .parse::<f64>()
                .ok()
                .filter(|c| *c >= 0.0)
                .map(|c| c as u64)
                .ok_or_else(|| s.error("count must be a number".into()))?,
        };
        s.string("threads")?;
        let ecs = !matches!(s.string("ecs_compatibility")?.as_deref(), Some("disabled"));
        Ok(Generator {
            common,
            lines,
            count,
            ecs,
            decoder: super::decoder(plugin, Decoder::PLAIN)?,
        })
    }

    pub async fn run(self, batch_size: usize, out: BatchSender, stop: StopFlag) {
        let host = hostname();
        let mut sequence: u64 = 0;
        let total = if self.count == 0 {
            u64::MAX
        } else {
            self.count * self.lines.len() as u64
        };
        while sequence < total && !stop.is_set() {
            let now = now_ms();
            let n = (total - sequence).min(batch_size.max(1) as u64);
            let mut events = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let line = &self.lines[(sequence % self.lines.len() as u64) as usize];
                let mut e = self.decoder.decode(line.as_bytes(), now);
                let (seq_path, host_path): (Vec<String>, Vec<String>) = if self.ecs {
                    (
                        vec!["event".into(), "sequence".into()],
                        vec!["host".into(), "name".into()],
                    )
                } else {
                    (vec!["sequence".into()], vec!["host".into()])
                };
                e.set(&seq_path, Value::from(sequence / self.lines.len() as u64));
                e.set(&host_path, Value::String(host.clone()));
                self.common.decorate(&mut e);
                events.push(e);
                sequence += 1;
            }
            tokio::select! {
                _ = stop.stopped() => return,
                sent = out.send(Batch { events: Events::Ready(events), ack: None }) => if sent.is_err() { return },
            }
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
