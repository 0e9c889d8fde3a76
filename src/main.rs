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
#[command(name = "logbridge", version, about = "Kafka-compatible log broker and pipeline appliance")]
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
    /// fsync before acknowledging produce requests with acks=all.
    #[arg(long)]
    fsync_before_ack: bool,
}

#[derive(Subcommand)]
enum TopicsCommand {
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
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
    Describe { name: Option<String> },
    Delete { name: String },
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
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("expected key=value, got '{s}'"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Topics { command, bootstrap_server } => topics(command, &bootstrap_server).await,
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
    if let Some(h) = args.advertised_host {
        settings.advertised_host = Some(h);
    }
    if args.fsync_before_ack {
        settings.fsync_before_ack = true;
    }
    logbridge::app::serve(settings).await?;
    Ok(())
}

async fn topics(command: TopicsCommand, bootstrap: &str) -> Result<()> {
    let mut client = KafkaClient::connect(bootstrap).await?;
    let mut out = std::io::stdout().lock();
    match command {
        TopicsCommand::Create { name, partitions, replication_factor, configs } => {
            let configs: BTreeMap<_, _> = configs.into_iter().collect();
            client.create_topic(&name, partitions, replication_factor, &configs).await?;
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
            let md = client.metadata(name.clone().map(|n| vec![n]), false).await?;
            for t in &md.topics {
                let tname = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if t.error_code != 0 {
                    bail!("cannot describe topic '{tname}': error code {}", t.error_code);
                }
                let configs = client.describe_topic_configs(&tname).await?;
                let overrides: Vec<String> = configs.iter().filter(|c| c.2).map(|(k, v, _)| format!("{k}={v}")).collect();
                let rf = t.partitions.first().map(|p| p.replica_nodes.len()).unwrap_or(0);
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
                    let ids = |v: &Vec<kafka_protocol::messages::BrokerId>| v.iter().map(|b| b.0.to_string()).collect::<Vec<_>>().join(",");
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

async fn produce(args: ProduceArgs) -> Result<()> {
    let mut client = KafkaClient::connect(&args.bootstrap_server).await?;
    let partitions = client.partitions(&args.topic, true).await?;
    if partitions == 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if p < 0 || p >= partitions {
            bail!("partition {p} does not exist in topic '{}' ({partitions} partitions)", args.topic);
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
            client.produce(&args.topic, partition, records, compression).await?;
        }
    }
    for (partition, records) in pending {
        if !records.is_empty() {
            client.produce(&args.topic, partition, records, compression).await?;
        }
    }
    eprintln!("produced {count} records to {}", args.topic);
    Ok(())
}

async fn consume(args: ConsumeArgs) -> Result<()> {
    let mut client = KafkaClient::connect(&args.bootstrap_server).await?;
    let partitions = client.partitions(&args.topic, false).await?;
    let chosen: Vec<i32> = match args.partition {
        Some(p) if p < 0 || p >= partitions => bail!("partition {p} does not exist in topic '{}'", args.topic),
        Some(p) => vec![p],
        None => (0..partitions).collect(),
    };
    let mut positions = BTreeMap::new();
    for p in chosen {
        let start = client.list_offset(&args.topic, p, if args.from_beginning { -2 } else { -1 }).await?;
        positions.insert(p, start);
    }
    let mut seen = 0usize;
    let mut idle_since = std::time::Instant::now();
    let mut out = std::io::stdout().lock();
    loop {
        if args.max_messages.is_some_and(|m| seen >= m) {
            break;
        }
        if args.timeout_ms.is_some_and(|t| idle_since.elapsed().as_millis() as u64 >= t) {
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
            positions.insert(r.partition, r.offset + 1);
            if args.print_key {
                out.write_all(r.key.as_deref().unwrap_or(b"null"))?;
                out.write_all(args.key_separator.as_bytes())?;
            }
            out.write_all(r.value.as_deref().unwrap_or(b"null"))?;
            out.write_all(b"\n")?;
            seen += 1;
        }
        out.flush()?;
    }
    eprintln!("Processed a total of {seen} messages");
    Ok(())
}
