//! Output plugins and the output section's routing. The output section is compiled
//! like the filter section — plugins and `if`/`else` — into a tree whose leaves are
//! indexes into the pipeline's outputs; `route` sends each event to every output its
//! conditions select. An output acknowledges a whole slice of events by returning
//! `Ok`; the runner retries an `Err` (with back-off) and never drops events, which is
//! what makes delivery at-least-once.
//!
//! Implemented: `elasticsearch`, `stdout`, `file`, `kafka`, `null`. Unknown plugins and settings are
//! load-time errors, as for filters.

pub mod elasticsearch;
mod file;
mod kafka;
mod stdout;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ast::{Config, Plugin, SectionKind, Statement};
use super::context::Context;
use super::eval::{compile, CompiledCondition};
use super::event::Event;
use super::settings::{PluginError, Settings};

pub type OutputFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub trait Output: Send + Sync {
    /// Delivers the events; `Ok` means every one of them is held by the destination.
    fn write<'a>(&'a self, events: &'a [&'a Event]) -> OutputFuture<'a>;

    /// Plugin-specific counters for `/pipelines` and `/metrics`.
    fn stats(&self) -> Option<serde_json::Value> {
        None
    }
}

/// The output plugins this build knows.
pub const AVAILABLE: &[&str] = &["elasticsearch", "file", "kafka", "null", "stdout"];

/// A configured output with its counters.
pub struct OutputInstance {
    pub name: String,
    pub id: String,
    pub output: Box<dyn Output>,
    pub events_out: AtomicU64,
    pub failures: AtomicU64,
}

impl OutputInstance {
    pub fn count_out(&self, n: usize) {
        self.events_out.fetch_add(n as u64, Ordering::Relaxed);
    }
}

struct Null;

impl Output for Null {
    fn write<'a>(&'a self, _events: &'a [&'a Event]) -> OutputFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn build_one(plugin: &Plugin, ctx: &Context) -> Result<OutputInstance, PluginError> {
    let mut s = Settings::new(plugin, "output");
    let id = s
        .string("id")?
        .unwrap_or_else(|| format!("{}@{}:{}", plugin.name, plugin.pos.line, plugin.pos.column));
    s.bool("enable_metric")?;
    s.string("workers")?;
    // Read from the plugin by codec::encoder (a name, or a codec with settings), in
    // the outputs that encode; any codec is accepted by those that do not.
    s.accept("codec");
    let output: Box<dyn Output> = match plugin.name.as_str() {
        "stdout" => Box::new(stdout::Stdout::build(plugin)?),
        "file" => Box::new(file::FileOutput::build(plugin, &mut s, ctx)?),
        "kafka" => Box::new(kafka::KafkaOutput::build(plugin, &mut s, ctx)?),
        "elasticsearch" => Box::new(elasticsearch::Elasticsearch::build(&mut s, ctx, &id)?),
        "null" => Box::new(Null),
        other => {
            return Err(PluginError {
                pos: plugin.pos,
                message: format!(
                    "unknown output plugin \"{other}\" (available: {})",
                    AVAILABLE.join(", ")
                ),
            })
        }
    };
    s.finish()?;
    Ok(OutputInstance {
        name: plugin.name.clone(),
        id,
        output,
        events_out: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    })
}

pub enum OutNode {
    Output(usize),
    If {
        branches: Vec<(CompiledCondition, Vec<OutNode>)>,
        otherwise: Vec<OutNode>,
    },
}

impl OutNode {
    /// The same tree with output indexes moved by `by` (when files are joined).
    pub fn shifted(self, by: usize) -> OutNode {
        match self {
            OutNode::Output(i) => OutNode::Output(i + by),
            OutNode::If {
                branches,
                otherwise,
            } => OutNode::If {
                branches: branches
                    .into_iter()
                    .map(|(c, b)| (c, b.into_iter().map(|n| n.shifted(by)).collect()))
                    .collect(),
                otherwise: otherwise.into_iter().map(|n| n.shifted(by)).collect(),
            },
        }
    }
}

fn build_nodes(
    statements: &[Statement],
    ctx: &Context,
    outputs: &mut Vec<OutputInstance>,
) -> Result<Vec<OutNode>, PluginError> {
    let mut nodes = Vec::new();
    for st in statements {
        match st {
            Statement::Plugin(p) => {
                let index = outputs.len();
                outputs.push(build_one(p, ctx)?);
                nodes.push(OutNode::Output(index));
            }
            Statement::If(chain) => {
                let mut branches = Vec::new();
                for (c, body) in &chain.branches {
                    let cond = compile(c).map_err(|e| PluginError {
                        pos: chain.pos,
                        message: format!("invalid regular expression: {e}"),
                    })?;
                    branches.push((cond, build_nodes(body, ctx, outputs)?));
                }
                let otherwise = match &chain.otherwise {
                    Some(body) => build_nodes(body, ctx, outputs)?,
                    None => vec![],
                };
                nodes.push(OutNode::If {
                    branches,
                    otherwise,
                });
            }
        }
    }
    Ok(nodes)
}

/// The outputs of every `output` section, in order, and the routing tree over them.
pub struct Outputs {
    pub instances: Vec<OutputInstance>,
    pub tree: Vec<OutNode>,
}

pub fn compile_outputs(configs: &[Config], ctx: &Context) -> Result<Outputs, PluginError> {
    let mut instances = Vec::new();
    let mut tree = Vec::new();
    for c in configs {
        for s in c.sections.iter().filter(|s| s.kind == SectionKind::Output) {
            tree.extend(build_nodes(&s.body, ctx, &mut instances)?);
        }
    }
    Ok(Outputs { instances, tree })
}

impl Outputs {
    /// For each output, the events (in order) its conditions select.
    pub fn route<'e>(&self, events: &'e [Event]) -> Vec<Vec<&'e Event>> {
        let mut per_output: Vec<Vec<&Event>> = vec![Vec::new(); self.instances.len()];
        for e in events {
            select(&self.tree, e, &mut per_output);
        }
        per_output
    }
}

fn select<'e>(nodes: &[OutNode], e: &'e Event, per_output: &mut [Vec<&'e Event>]) {
    for n in nodes {
        match n {
            OutNode::Output(i) => per_output[*i].push(e),
            OutNode::If {
                branches,
                otherwise,
            } => {
                let body = branches
                    .iter()
                    .find(|(c, _)| c.eval(e))
                    .map(|(_, b)| b)
                    .unwrap_or(otherwise);
                select(body, e, per_output);
            }
        }
    }
}
