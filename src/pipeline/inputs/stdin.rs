//! `stdin`: one event per line of the process's standard input (through the input's
//! codec, `line`/`plain` by default), batched as lines arrive; ends at end of input.
//! Nothing to acknowledge: a line read is a line taken.

use crate::pipeline::stop::StopFlag;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Batch, BatchSender, Common, Events};
use crate::pipeline::ast::Plugin;
use crate::pipeline::codec::Decoder;
use crate::pipeline::settings::{PluginError, Settings};
use crate::storage::segment::now_ms;

pub struct Stdin {
    pub common: Common,
    decoder: Decoder,
}

impl Stdin {
    pub fn build(plugin: &Plugin, _s: &mut Settings, common: Common) -> Result<Stdin, PluginError> {
        Ok(Stdin {
            common,
            decoder: super::decoder(plugin, Decoder::PLAIN)?,
        })
    }

    pub async fn run(self, batch_size: usize, out: BatchSender, stop: StopFlag) {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let mut events = Vec::new();
        loop {
            // Wait for a line only when nothing is pending; otherwise send what we have
            // as soon as no further line is immediately available. (`next_line` is
            // cancellation safe.)
            let next = if events.is_empty() {
                tokio::select! {
                    _ = stop.stopped() => return,
                    l = lines.next_line() => Some(l),
                }
            } else {
                tokio::time::timeout(std::time::Duration::from_millis(5), lines.next_line())
                    .await
                    .ok()
            };
            let mut end = false;
            match next {
                Some(Ok(Some(line))) => {
                    let mut e = self.decoder.decode(line.as_bytes(), now_ms());
                    self.common.decorate(&mut e);
                    events.push(e);
                    if events.len() < batch_size {
                        continue;
                    }
                }
                Some(Ok(None)) => end = true,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "stdin input: read failed; stopping");
                    end = true;
                }
                None => {}
            }
            if !events.is_empty() {
                let batch = Batch {
                    events: Events::Ready(std::mem::take(&mut events)),
                    ack: None,
                };
                tokio::select! {
                    _ = stop.stopped() => return,
                    sent = out.send(batch) => if sent.is_err() { return },
                }
            }
            if end {
                return;
            }
        }
    }
}
