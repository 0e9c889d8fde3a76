//! `logbridge serve`: opens the broker, binds the listeners, runs until SIGTERM or
//! Ctrl-C, then stops accepting, lets in-flight requests finish, flushes and closes
//! every log and leaves the clean-shutdown marker.
//!
//! Once both listeners are bound it prints one line to stdout,
//! `logbridge ready kafka=ADDR http=ADDR beats=ADDR|off`, which scripts and tests wait
//! for.

use std::io::Write;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::{listener, Broker, OpenError};
use crate::config::{Settings, SettingsError};
use crate::net::ConnectionCaps;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot open the data directory: {0}")]
    Open(#[from] OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("pipeline configuration: {0}")]
    Pipeline(#[from] crate::pipeline::LoadError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::quorum::ClusterError),
}

/// In a cluster (`voters` set): joins the metadata quorum on `cluster_listen`,
/// registers this broker with its advertised Kafka address, and keeps the local logs
/// in line with the metadata image.
async fn start_quorum(
    settings: &Settings,
    broker: &std::sync::Arc<Broker>,
    stop: watch::Receiver<bool>,
) -> Result<Option<std::sync::Arc<crate::cluster::quorum::Quorum>>, ServeError> {
    let voters = settings.parsed_voters()?;
    if voters.is_empty() {
        return Ok(None);
    }
    let config = crate::cluster::quorum::QuorumConfig {
        node_id: settings.node_id,
        cluster_id: settings.cluster_id.clone(),
        cluster_advertised: voters
            .get(&settings.node_id)
            .cloned()
            .or_else(|| settings.cluster_advertised.clone())
            .unwrap_or_else(|| settings.cluster_listen.clone()),
        voters,
        cluster_listen: settings.cluster_listen.clone(),
        endpoints: broker.endpoints(),
        rack: settings.rack.clone(),
        session_timeout: std::time::Duration::from_millis(settings.broker_session_timeout_ms),
        heartbeat_interval: std::time::Duration::from_millis(settings.broker_heartbeat_interval_ms),
    };
    let quorum = crate::cluster::quorum::Quorum::start(
        config,
        &settings.data_dir.join("__cluster"),
        stop.clone(),
    )
    .await?;
    broker.set_quorum(quorum.clone());
    tokio::spawn(crate::broker::topic_admin::follow_image(
        broker.clone(),
        stop.clone(),
    ));
    broker.start_replication(stop);
    tracing::info!(node = settings.node_id, cluster_listen = %settings.cluster_listen, "joined the metadata quorum");
    Ok(Some(quorum))
}

/// The `bootstrap_servers` spellings that mean one of this appliance's Kafka listeners.
fn local_addresses(
    bound: &[(String, std::net::SocketAddr)],
    advertised: &[crate::cluster::image::Endpoint],
) -> Vec<String> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let mut out = Vec::new();
    for (_, addr) in bound {
        let port = addr.port();
        out.push(addr.to_string());
        out.push(format!("localhost:{port}"));
        out.push(format!("127.0.0.1:{port}"));
        if let Some(h) = &hostname {
            out.push(format!("{}:{port}", h.trim()));
        }
    }
    out.extend(advertised.iter().map(|e| format!("{}:{}", e.host, e.port)));
    out
}

/// This node's first Kafka listener (the one the nodes share) as this host reaches it.
fn own_listener(bound: &[(String, std::net::SocketAddr)]) -> String {
    bound
        .first()
        .map(|(_, addr)| {
            let mut addr = *addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            addr.to_string()
        })
        .unwrap_or_else(|| "127.0.0.1:9092".into())
}

pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    settings.validate()?;
    // TLS material is read before anything starts, so a bad path fails fast.
    let http_tls = match &settings.http_tls {
        Some(t) => {
            Some(crate::tls::acceptor(t, &[b"h2", b"http/1.1"]).map_err(SettingsError::from)?)
        }
        None => None,
    };
    let beats_tls = match &settings.beats_tls {
        Some(t) => Some(crate::tls::acceptor(t, &[]).map_err(SettingsError::from)?),
        None => None,
    };
    // Before the logs are opened: every segment holds descriptors.
    let descriptor_limit = crate::net::raise_descriptor_limit();
    let broker = Broker::open(settings.clone())?;
    let mut kafka = Vec::new();
    for (name, addr) in settings.kafka_listeners()? {
        let l = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind {
                addr: addr.clone(),
                source,
            })?;
        kafka.push((name, l));
    }
    let http = TcpListener::bind(&settings.http_listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: settings.http_listen.clone(),
            source,
        })?;
    let beats = if settings.beats_listen.is_empty() {
        None
    } else {
        Some(
            TcpListener::bind(&settings.beats_listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: settings.beats_listen.clone(),
                    source,
                })?,
        )
    };
    let mut bound = Vec::new();
    for (name, l) in &kafka {
        bound.push((name.clone(), l.local_addr()?));
    }
    let kafka_addr = bound[0].1;
    let http_addr = http.local_addr()?;
    let beats_addr = match &beats {
        Some(l) => l.local_addr()?.to_string(),
        None => "off".to_string(),
    };
    broker.set_bound_addresses(&bound);

    let (stop_tx, stop_rx) = watch::channel(false);
    let quorum = start_quorum(&settings, &broker, stop_rx.clone()).await?;

    // Pipelines are built before the ready line, so a configuration error stops
    // `serve` with the file, line and column.
    let ctx = crate::pipeline::context::Context {
        local: Some(std::sync::Arc::new(crate::client::local::LocalAccess::new(
            broker.clone(),
            &own_listener(&bound),
        ))),
        local_addresses: local_addresses(&bound, &broker.endpoints()),
        beats_port: beats
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port()),
        beats_topic: settings.beats_fallback_topic.clone(),
        http_port: Some(http_addr.port()),
        data_dir: settings.data_dir.clone(),
        vars: settings.pipeline_vars.clone(),
        ..Default::default()
    };
    let pipelines = crate::pipeline::service::PipelineSet::start(
        &settings.pipelines_dir,
        &ctx,
        settings.pipeline_workers,
        settings.pipeline_batch_size,
    )?;
    let pipeline_names = pipelines.names();
    let pipelines = std::sync::Arc::new(tokio::sync::Mutex::new(pipelines));

    let configured = ConnectionCaps {
        kafka: settings.max_connections,
        beats: settings.beats_max_connections,
        http: settings.http_max_connections,
    };
    let caps =
        crate::net::connection_caps(descriptor_limit, crate::net::open_descriptors(), configured);
    tracing::info!(
        descriptor_limit,
        kafka = caps.kafka,
        beats = caps.beats,
        http = caps.http,
        "connection caps"
    );
    if caps != configured
        && [caps.kafka, caps.beats, caps.http]
            .iter()
            .any(|c| *c < 1000)
    {
        tracing::warn!(
            descriptor_limit,
            kafka = caps.kafka,
            beats = caps.beats,
            http = caps.http,
            "connection caps lowered to fit the open-file limit; raise `ulimit -n` (the hard limit) for more"
        );
    }
    let memory = std::sync::Arc::new(crate::net::MemoryBudget::new(
        settings.queued_max_request_bytes,
    ));

    let kafka_tasks: Vec<_> = kafka
        .into_iter()
        .map(|(name, l)| {
            tokio::spawn(listener::serve(
                broker.clone(),
                l,
                name,
                caps.kafka,
                memory.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let maintenance = tokio::spawn(broker.clone().run_maintenance(stop_rx.clone()));
    let router = std::sync::Arc::new(crate::beats::routing::Router::new(
        &settings.beats_topic,
        &settings.beats_fallback_topic,
        settings.beats_key_field.as_deref(),
    ));
    let beats_task = beats.map(|l| {
        tokio::spawn(crate::beats::server::serve(
            broker.clone(),
            l,
            router,
            beats_tls,
            caps.beats,
            memory.clone(),
            stop_rx.clone(),
        ))
    });
    let http_task = tokio::spawn(crate::http::serve(
        http,
        crate::http::router(broker.clone(), pipelines.clone()),
        http_tls,
        crate::http::HttpLimits::from_settings(&settings, caps.http),
        stop_rx.clone(),
    ));

    let stop_signal = shutdown_signal()?;
    tracing::info!(kafka = ?bound, http = %http_addr, beats = %beats_addr, data_dir = %settings.data_dir.display(), pipelines = ?pipeline_names, "logbridge ready");
    {
        // Best effort: a full disk under a redirected stdout must not stop serving.
        let mut out = std::io::stdout().lock();
        let written = writeln!(
            out,
            "logbridge ready kafka={kafka_addr} http={http_addr} beats={beats_addr}"
        )
        .and_then(|_| out.flush());
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot write the ready line to stdout");
        }
    }

    stop_signal.await;
    tracing::info!("shutting down: stopping pipelines, finishing in-flight requests");
    let running = std::mem::replace(
        &mut *pipelines.lock().await,
        crate::pipeline::service::PipelineSet::empty(),
    );
    running.stop().await;
    if let Some(q) = &quorum {
        // Leaderships move before the listeners close, so clients find the new
        // leaders at once (Kafka's controlled shutdown).
        q.controlled_shutdown(std::time::Duration::from_secs(5))
            .await;
        // The image that moved them, applied here before the image follower stops.
        let (b, image) = (broker.clone(), q.image());
        let _ = tokio::task::spawn_blocking(move || b.apply_image(&image)).await;
        // Whatever this node still leads, it leads no more: produces waiting for
        // their ISR are answered NOT_LEADER_OR_FOLLOWER now, not at their timeout.
        broker.stop_leading();
    }
    let _ = stop_tx.send(true);
    // Parked JoinGroup/SyncGroup requests are answered now rather than after their
    // rebalance timeout.
    broker.groups.shutdown();
    for t in kafka_tasks {
        let _ = t.await;
    }
    if let Some(t) = beats_task {
        let _ = t.await;
    }
    let _ = http_task.await;
    let _ = maintenance.await;
    if let Some(q) = quorum {
        q.shutdown().await;
    }
    let closing = broker.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .ok();
    tracing::info!("logbridge stopped cleanly");
    Ok(())
}

/// Registers SIGTERM and SIGINT handlers now (so a signal that arrives right after the
/// ready line is not lost) and returns a future that completes on the first of them.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, std::io::Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
