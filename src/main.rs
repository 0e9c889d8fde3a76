//! The `logbridge` command line: `serve`, and Kafka-protocol tools in the spirit of
//! kafka-topics.sh and the console producer/consumer. Argument parsing only; the work
//! is in the library.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kafka_protocol::records::Compression;
use logbridge::client::{partition_for_key, KafkaClient};
use logbridge::config::Settings;

#[derive(Parser)]
#[command(
    name = "logbridge",
    version,
    about = "Kafka-compatible log broker and pipeline appliance"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (embedded defaults unless overridden).
    Serve(ServeArgs),
    /// Manage topics on any Kafka-protocol broker.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
        #[arg(long, global = true, default_value = "127.0.0.1:9092")]
        bootstrap_server: String,
    },
    /// Inspect consumer groups and reset their committed offsets.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
        #[arg(long, global = true, default_value = "127.0.0.1:9092")]
        bootstrap_server: String,
    },
    /// Logstash-compatible pipeline files.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// The cluster as a node sees it.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Produce stdin lines to a topic.
    Produce(ProduceArgs),
    /// Print records of a topic to stdout, one per line.
    Consume(ConsumeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file (see config/); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    kafka_listen: Option<String>,
    #[arg(long)]
    http_listen: Option<String>,
    #[arg(long)]
    advertised_host: Option<String>,
    /// This node's id (Kafka's node.id).
    #[arg(long)]
    node_id: Option<i32>,
    /// The metadata quorum's voters, id@host:port,… (their --cluster-listen addresses),
    /// the same on every node.
    #[arg(long)]
    voters: Option<String>,
    /// This node's inter-node (Raft) listener.
    #[arg(long)]
    cluster_listen: Option<String>,
    /// Named Kafka listeners, NAME://host:port,… (Kafka's `listeners`).
    #[arg(long)]
    listeners: Option<String>,
    /// What each named listener tells clients to connect to, NAME://host:port,…
    /// (Kafka's `advertised.listeners`).
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// Lumberjack (Beats) listener address; "" disables it.
    #[arg(long)]
    beats_listen: Option<String>,
    /// fsync before acknowledging produce requests with acks=all.
    #[arg(long)]
    fsync_before_ack: bool,
    /// Directory of pipelines to run (default ./pipelines).
    #[arg(long)]
    pipelines: Option<PathBuf>,
    /// Logstash's pipeline.workers (default: the number of cores).
    #[arg(long)]
    pipeline_workers: Option<usize>,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Nodes (alive/fenced), the metadata leader and term, and partitions that are
    /// under-replicated, under min ISR or without a leader.
    Status {
        /// Any node's HTTP listener.
        #[arg(long, default_value = "127.0.0.1:9600")]
        http: String,
        /// Print GET /cluster's JSON as it is.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// Topic config override, e.g. --config retention.ms=86400000 (repeatable).
        #[arg(long = "config", value_parser = parse_kv)]
        configs: Vec<(String, String)>,
    },
    List {
        /// Leave out internal topics such as __consumer_offsets.
        #[arg(long)]
        exclude_internal: bool,
    },
    Describe {
        name: Option<String>,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// Check pipeline files or directories (Logstash's `-t`): syntax, filter plugins
    /// and their settings; exits non-zero on the first error.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run a pipeline's filters on stdin lines (through its input codec) and print
    /// every resulting event as one JSON line.
    Run { path: PathBuf },
}

#[derive(Subcommand)]
enum GroupsCommand {
    List,
    /// Members, assignments, committed offsets, log end offsets and lag.
    Describe {
        group: String,
    },
    /// Set a group's committed offsets for a topic (refused while the group has members).
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long, group = "target")]
        to_earliest: bool,
        #[arg(long, group = "target")]
        to_latest: bool,
        #[arg(long, group = "target")]
        to_offset: Option<i64>,
        /// YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM|-HH:MM] (UTC when no zone is given).
        #[arg(long, group = "target")]
        to_datetime: Option<String>,
        /// Print the new offsets without committing them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(Args)]
struct ProduceArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long)]
    key_separator: Option<String>,
    #[arg(long, value_enum, default_value = "none")]
    compression: CompressionArg,
    /// Send every record to this partition instead of by key / round-robin.
    #[arg(long)]
    partition: Option<i32>,
    /// Records per produce request.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
}

#[derive(Args)]
struct ConsumeArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    from_beginning: bool,
    #[arg(long)]
    max_messages: Option<usize>,
    #[arg(long)]
    partition: Option<i32>,
    /// Print "key<separator>value".
    #[arg(long)]
    print_key: bool,
    #[arg(long, default_value = "\t")]
    key_separator: String,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got '{s}'"))
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the enum's position in mimalloc 3's mimalloc.h;
/// libmimalloc-sys does not name it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc 3 keeps freed pages for 1 s before returning them to the system. Our
/// transient buffers (a decompressed Beats window, a fetched batch, a bulk body) are
/// freed within milliseconds, so that second holds several rounds of them resident at
/// once; 100 ms returns them while costing far fewer system calls than purging at once
/// (measured with `cargo bench --bench es_load`: 1 s → 270 MiB peak, 100 ms → 220 MiB
/// at the same rate, 0 → 200 MiB at a third of the rate). `MIMALLOC_PURGE_DELAY` in the
/// environment still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option; mimalloc reads it on each purge decision.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) };
    }
}

/// stderr for log lines, where a write that fails (ENOSPC on a redirected log file,
/// a closed pipe) loses that line and nothing else.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// `RUST_LOG` (default `info`), with openraft held to errors unless named: its warnings
/// narrate every ordinary election.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let wanted = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let wanted = if wanted.contains("openraft") {
        wanted
    } else {
        format!("{wanted},openraft=error")
    };
    tracing_subscriber::EnvFilter::try_new(&wanted).unwrap_or_else(|_| "info".into())
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        // Logging must survive a full disk under stderr: a failed log write is
        // dropped, never a panic (the builder's default reports it with eprintln!,
        // which panics when stderr itself fails).
        .with_writer(|| LossyStderr)
        .log_internal_errors(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Topics {
            command,
            bootstrap_server,
        } => topics(command, &bootstrap_server).await,
        Command::Groups {
            command,
            bootstrap_server,
        } => groups(command, &bootstrap_server).await,
        Command::Pipeline {
            command: PipelineCommand::Check { paths },
        } => {
            for p in &paths {
                logbridge::pipeline::check(p)?;
            }
            println!("Configuration OK");
            Ok(())
        }
        Command::Pipeline {
            command: PipelineCommand::Run { path },
        } => {
            let pipeline = logbridge::pipeline::load(&path)?;
            let mut out = std::io::stdout().lock();
            for line in std::io::stdin().lock().lines() {
                let line = line.context("reading stdin")?;
                let event = pipeline
                    .codec
                    .decode(line.as_bytes(), logbridge::storage::segment::now_ms());
                let mut buf = Vec::new();
                for e in logbridge::pipeline::runtime::run(&pipeline.filters, event) {
                    e.write_json(&mut buf);
                    buf.push(b'\n');
                }
                out.write_all(&buf)?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Cluster {
            command: ClusterCommand::Status { http, json },
        } => {
            let status = logbridge::cli::cluster::fetch(&http).await?;
            let text = if json {
                format!("{}\n", serde_json::to_string_pretty(&status)?)
            } else {
                logbridge::cli::cluster::render(&status)
            };
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            Ok(())
        }
        Command::Produce(args) => produce(args).await,
        Command::Consume(args) => consume(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut settings = match &args.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    if let Some(a) = args.kafka_listen {
        settings.kafka_listen = a;
    }
    if let Some(a) = args.http_listen {
        settings.http_listen = a;
    }
    if let Some(n) = args.node_id {
        settings.node_id = n;
    }
    if let Some(v) = args.voters {
        settings.voters = v;
    }
    if let Some(c) = args.cluster_listen {
        settings.cluster_listen = c;
    }
    if let Some(l) = args.listeners {
        settings.listeners = l;
    }
    if let Some(a) = args.advertised_listeners {
        settings.advertised_listeners = a;
    }
    if let Some(h) = args.advertised_host {
        settings.advertised_host = Some(h);
    }
    if let Some(b) = args.beats_listen {
        settings.beats_listen = b;
    }
    if args.fsync_before_ack {
        settings.fsync_before_ack = true;
    }
    if let Some(p) = args.pipelines {
        settings.pipelines_dir = p;
    }
    if let Some(w) = args.pipeline_workers {
        settings.pipeline_workers = w;
    }
    logbridge::app::serve(settings).await?;
    Ok(())
}

async fn topics(command: TopicsCommand, bootstrap: &str) -> Result<()> {
    let mut client = KafkaClient::connect(bootstrap).await?;
    let mut out = std::io::stdout().lock();
    match command {
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let configs: BTreeMap<_, _> = configs.into_iter().collect();
            client
                .create_topic(&name, partitions, replication_factor, &configs)
                .await?;
            writeln!(out, "Created topic {name}.")?;
        }
        TopicsCommand::List { exclude_internal } => {
            let md = client.metadata(None, false).await?;
            let mut names: Vec<String> = md
                .topics
                .iter()
                .filter(|t| !(exclude_internal && t.is_internal))
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect();
            names.sort();
            for n in names {
                writeln!(out, "{n}")?;
            }
        }
        TopicsCommand::Describe { name } => {
            let md = client
                .metadata(name.clone().map(|n| vec![n]), false)
                .await?;
            for t in &md.topics {
                let tname = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if t.error_code != 0 {
                    bail!(
                        "cannot describe topic '{tname}': error code {}",
                        t.error_code
                    );
                }
                let configs = client.describe_topic_configs(&tname).await?;
                let overrides: Vec<String> = configs
                    .iter()
                    .filter(|c| c.2)
                    .map(|(k, v, _)| format!("{k}={v}"))
                    .collect();
                let rf = t
                    .partitions
                    .first()
                    .map(|p| p.replica_nodes.len())
                    .unwrap_or(0);
                writeln!(
                    out,
                    "Topic: {tname}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {}",
                    t.topic_id,
                    t.partitions.len(),
                    overrides.join(",")
                )?;
                let mut parts: Vec<_> = t.partitions.iter().collect();
                parts.sort_by_key(|p| p.partition_index);
                for p in parts {
                    let ids = |v: &Vec<kafka_protocol::messages::BrokerId>| {
                        v.iter()
                            .map(|b| b.0.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    writeln!(
                        out,
                        "\tTopic: {tname}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        p.partition_index,
                        p.leader_id.0,
                        ids(&p.replica_nodes),
                        ids(&p.isr_nodes)
                    )?;
                }
            }
        }
        TopicsCommand::Delete { name } => {
            client.delete_topic(&name).await?;
            writeln!(out, "Deleted topic {name}.")?;
        }
    }
    Ok(())
}

async fn groups(command: GroupsCommand, bootstrap: &str) -> Result<()> {
    let mut client = KafkaClient::connect(bootstrap).await?;
    // Offsets of partitions come from their leaders.
    let mut leaders = logbridge::client::leaders::LeaderClient::connect(bootstrap).await?;
    let mut out = std::io::stdout().lock();
    match command {
        GroupsCommand::List => {
            for (group, state) in client.list_all_groups().await? {
                writeln!(out, "{group}\t{state}")?;
            }
        }
        GroupsCommand::Describe { group } => {
            let mut client = client.to_coordinator(&group).await?;
            let d = client.describe_group(&group).await?;
            if d.state == "Dead" {
                bail!("consumer group '{group}' does not exist");
            }
            writeln!(
                out,
                "Group: {}\tState: {}\tProtocol: {}\tMembers: {}",
                d.group_id,
                d.state,
                d.protocol,
                d.members.len()
            )?;
            // Every partition that is assigned or has a committed offset.
            let mut rows: BTreeMap<(String, i32), (Option<i64>, Option<(String, String, String)>)> =
                BTreeMap::new();
            for (t, p, o) in client.committed(&group, None).await? {
                rows.entry((t, p)).or_default().0 = Some(o);
            }
            for (member, client_id, host, assigned) in &d.members {
                for (t, ps) in assigned {
                    for p in ps {
                        rows.entry((t.clone(), *p)).or_default().1 =
                            Some((member.clone(), host.clone(), client_id.clone()));
                    }
                }
            }
            writeln!(out, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")?;
            for ((t, p), (committed, owner)) in rows {
                leaders.partitions(&t, false).await?;
                let end = leaders.list_offset(&t, p, -1).await?;
                let (cur, lag) = match committed {
                    Some(c) if c >= 0 => (c.to_string(), (end - c).max(0).to_string()),
                    _ => ("-".to_string(), "-".to_string()),
                };
                let (m, h, c) = owner.unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
                writeln!(out, "{t}\t{p}\t{cur}\t{end}\t{lag}\t{m}\t{h}\t{c}")?;
            }
        }
        GroupsCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            dry_run,
        } => {
            let mut client = client.to_coordinator(&group).await?;
            let d = client.describe_group(&group).await?;
            if !d.members.is_empty() {
                bail!("group '{group}' has {} active members; stop them before resetting offsets (state {})", d.members.len(), d.state);
            }
            let target = if to_earliest {
                -2
            } else if to_latest {
                -1
            } else if let Some(dt) = &to_datetime {
                parse_datetime_ms(dt).with_context(|| format!("invalid --to-datetime '{dt}'"))?
            } else if to_offset.is_some() {
                0
            } else {
                bail!("say where to reset to: --to-earliest, --to-latest, --to-offset N or --to-datetime T");
            };
            let partitions = leaders.partitions(&topic, false).await?;
            let mut new_offsets = Vec::new();
            for p in 0..partitions {
                let earliest = leaders.list_offset(&topic, p, -2).await?;
                let latest = leaders.list_offset(&topic, p, -1).await?;
                let offset = match to_offset {
                    // Like Kafka's tool, out-of-range offsets are clamped to the log.
                    Some(n) => n.clamp(earliest, latest),
                    None => match leaders.list_offset(&topic, p, target).await? {
                        -1 => latest, // no record at or after the time: the end
                        o => o,
                    },
                };
                new_offsets.push((p, offset));
            }
            if !dry_run {
                client
                    .commit_standalone(&group, &topic, &new_offsets)
                    .await?;
            }
            writeln!(out, "GROUP\tTOPIC\tPARTITION\tNEW-OFFSET")?;
            for (p, o) in new_offsets {
                writeln!(out, "{group}\t{topic}\t{p}\t{o}")?;
            }
        }
    }
    Ok(())
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM|-HH:MM]` to milliseconds since the epoch.
fn parse_datetime_ms(s: &str) -> Result<i64> {
    let (date, time) = s.split_once('T').context("expected YYYY-MM-DDTHH:MM:SS")?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse())
        .collect::<Result<_, _>>()
        .context("bad date")?;
    if d.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        bail!("bad date '{date}'");
    }
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').context("zone must be +HH:MM")?;
        (c, sign * (h.parse::<i64>()? * 60 + m.parse::<i64>()?))
    } else {
        (time, 0)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse())
        .collect::<Result<_, _>>()
        .context("bad time")?;
    if t.len() != 3 || t[0] > 23 || t[1] > 59 || t[2] > 60 {
        bail!("bad time '{clock}'");
    }
    let millis: i64 = format!("{:0<3}", &frac[..frac.len().min(3)])
        .parse()
        .context("bad fraction")?;
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000 + millis) - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn datetimes_parse_like_kafkas_tool() {
        assert_eq!(super::parse_datetime_ms("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            super::parse_datetime_ms("2026-11-22T10:00:00.5Z").unwrap(),
            1_795_341_600_500
        );
        assert_eq!(
            super::parse_datetime_ms("2026-11-22T12:00:00+02:00").unwrap(),
            1_795_341_600_000
        );
        assert!(super::parse_datetime_ms("2026-13-01T00:00:00").is_err());
        assert!(super::parse_datetime_ms("yesterday").is_err());
    }
}

async fn produce(args: ProduceArgs) -> Result<()> {
    let mut client =
        logbridge::client::leaders::LeaderClient::connect(&args.bootstrap_server).await?;
    let partitions = client.partitions(&args.topic, true).await?;
    if partitions == 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if p < 0 || p >= partitions {
            bail!(
                "partition {p} does not exist in topic '{}' ({partitions} partitions)",
                args.topic
            );
        }
    }
    let compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let mut pending: BTreeMap<i32, Vec<(Option<Bytes>, Option<Bytes>)>> = BTreeMap::new();
    let mut round_robin = 0i32;
    let mut count = 0usize;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.context("reading stdin")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), Bytes::from(v.to_string())),
                None => bail!("line {} has no key separator '{sep}': {line}", count + 1),
            },
            None => (None, Bytes::from(line)),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        let batch = pending.entry(partition).or_default();
        batch.push((key, Some(value)));
        count += 1;
        if batch.len() >= args.batch_size {
            let records = std::mem::take(batch);
            client
                .produce(&args.topic, partition, records, compression)
                .await?;
        }
    }
    for (partition, records) in pending {
        if !records.is_empty() {
            client
                .produce(&args.topic, partition, records, compression)
                .await?;
        }
    }
    eprintln!("produced {count} records to {}", args.topic);
    Ok(())
}

async fn consume(args: ConsumeArgs) -> Result<()> {
    let mut client =
        logbridge::client::leaders::LeaderClient::connect(&args.bootstrap_server).await?;
    let partitions = client.partitions(&args.topic, false).await?;
    let chosen: Vec<i32> = match args.partition {
        Some(p) if p < 0 || p >= partitions => {
            bail!("partition {p} does not exist in topic '{}'", args.topic)
        }
        Some(p) => vec![p],
        None => (0..partitions).collect(),
    };
    let mut positions = BTreeMap::new();
    for p in chosen {
        let start = client
            .list_offset(&args.topic, p, if args.from_beginning { -2 } else { -1 })
            .await?;
        positions.insert(p, start);
    }
    let mut seen = 0usize;
    let mut idle_since = std::time::Instant::now();
    let mut out = std::io::stdout().lock();
    loop {
        if args.max_messages.is_some_and(|m| seen >= m) {
            break;
        }
        if args
            .timeout_ms
            .is_some_and(|t| idle_since.elapsed().as_millis() as u64 >= t)
        {
            break;
        }
        let records = client.fetch(&args.topic, &positions, 500).await?;
        if !records.is_empty() {
            idle_since = std::time::Instant::now();
        }
        for r in records {
            if args.max_messages.is_some_and(|m| seen >= m) {
                break;
            }
            positions.insert(r.partition, r.record.offset + 1);
            if args.print_key {
                out.write_all(r.record.key.as_deref().unwrap_or(b"null"))?;
                out.write_all(args.key_separator.as_bytes())?;
            }
            out.write_all(r.record.value.as_deref().unwrap_or(b"null"))?;
            out.write_all(b"\n")?;
            seen += 1;
        }
        out.flush()?;
    }
    eprintln!("Processed a total of {seen} messages");
    Ok(())
}
