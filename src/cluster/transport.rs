//! The inter-node transport on `cluster_listen`: Raft's RPCs (append entries, vote,
//! snapshot chunks) and the quorum's own (a proposal forwarded to the Raft leader, a
//! broker heartbeat to the controller), each a JSON message in a length-prefixed frame:
//! a 4-byte big-endian length, then that many bytes.
//!
//! Invariants: a frame length is checked against `MAX_FRAME_BYTES` before anything is
//! allocated; a frame that does not decode closes its connection with one log line and
//! harms no other; one request at a time per connection, answered in order; every call
//! from this side has a deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::image::{ApplyResult, MetadataCommand};
use super::raft_store::{NodeId, TypeConfig};

/// Largest frame either side accepts: snapshot chunks are 3 MiB by openraft's default,
/// and the metadata of 100k partitions fits well inside.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

/// Most inter-node connections served at once (peers keep two each per direction: Raft
/// traffic, and the quorum's own calls).
const MAX_PEER_CONNECTIONS: usize = 64;
/// A peer connection silent this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A frame must arrive whole within this long of its first byte.
const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum TransportError {
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("undecodable message: {0}")]
    Decode(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("the peer at {0} belongs to another cluster")]
    ForeignCluster(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// The first request on every connection: which cluster the caller belongs to (its
    /// cluster id and voters). A peer of another cluster is turned away before any of
    /// its requests reaches Raft.
    Hello {
        cluster: String,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A metadata change for the Raft leader to commit.
    Propose(MetadataCommand),
    /// A broker's heartbeat to the controller (the Raft leader).
    Heartbeat {
        broker: i32,
        epoch: u64,
    },
    /// A node outside the voters asks to follow the metadata log (as a Raft learner).
    Join {
        node: NodeId,
        addr: String,
    },
}

/// Why a forwarded proposal was not committed.
#[derive(Debug, Clone, Serialize, Deserialize, Error)]
pub enum ProposeRefusal {
    #[error("not the metadata leader (leader {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatReply {
    Accepted,
    /// The receiver is not the controller; try the one named.
    NotController {
        leader: Option<NodeId>,
    },
    /// The controller knows no broker of that id and epoch: register again.
    Unknown,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// Whether the caller belongs to this cluster.
    Hello(bool),
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    Propose(Result<ApplyResult, ProposeRefusal>),
    Heartbeat(HeartbeatReply),
    Join(Result<(), ProposeRefusal>),
}

/// One message as a frame.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, TransportError> {
    let mut out = vec![0u8; 4];
    serde_json::to_writer(&mut out, msg).map_err(|e| TransportError::Decode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME_BYTES {
        return Err(TransportError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Decodes a request frame's body (what the fuzz target drives).
pub fn decode_request(body: &[u8]) -> Result<PeerRequest, TransportError> {
    serde_json::from_slice(body).map_err(|e| TransportError::Decode(e.to_string()))
}

pub fn decode_response(body: &[u8]) -> Result<PeerResponse, TransportError> {
    serde_json::from_slice(body).map_err(|e| TransportError::Decode(e.to_string()))
}

/// The body length a frame header announces, refused above `MAX_FRAME_BYTES`.
pub fn frame_len(header: [u8; 4]) -> Result<usize, TransportError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(TransportError::TooLarge(len));
    }
    Ok(len)
}

/// Reads one frame's body; `Ok(None)` at a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = frame_len(len)?;
    // Grown as the bytes arrive: a length alone reserves nothing.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let got = (&mut *r).take(len as u64).read_to_end(&mut body).await?;
    if got < len {
        return Err(TransportError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Some(body))
}

async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, frame: &[u8]) -> Result<(), TransportError> {
    w.write_all(frame).await?;
    w.flush().await?;
    Ok(())
}

/// What answers the requests that arrive (the quorum).
pub trait PeerHandler: Send + Sync + 'static {
    fn handle(&self, req: PeerRequest) -> impl std::future::Future<Output = PeerResponse> + Send;
}

/// Serves peers on `listener` until `stop` fires.
pub async fn serve<H: PeerHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    cluster: Arc<str>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_PEER_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "cluster listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "cluster listener: too many peer connections, closing one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let cluster = cluster.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            let mut greeted = false;
            loop {
                // A connection silent past IDLE_TIMEOUT is closed (peers reconnect),
                // and a frame must be whole within FRAME_TIMEOUT of its first byte.
                let body = tokio::select! {
                    _ = stop.changed() => return,
                    ready = tokio::time::timeout(IDLE_TIMEOUT, stream.readable()) => match ready {
                        Ok(Ok(())) => match tokio::time::timeout(FRAME_TIMEOUT, read_frame(&mut stream)).await {
                            Ok(b) => b,
                            Err(_) => Err(TransportError::Timeout(FRAME_TIMEOUT)),
                        },
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => return,
                    },
                };
                let req = match body.and_then(|b| match b {
                    Some(b) => decode_request(&b).map(Some),
                    None => Ok(None),
                }) {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "cluster listener: closing a connection");
                        return;
                    }
                };
                let resp = match req {
                    PeerRequest::Hello { cluster: theirs } => {
                        greeted = theirs == *cluster;
                        if !greeted {
                            tracing::warn!(%peer, cluster = %theirs, "cluster listener: a node of another cluster; closing its connection");
                        }
                        PeerResponse::Hello(greeted)
                    }
                    _ if !greeted => {
                        tracing::warn!(%peer, "cluster listener: a request before the hello; closing the connection");
                        return;
                    }
                    req => handler.handle(req).await,
                };
                let written = match encode(&resp) {
                    Ok(frame) => write_frame(&mut stream, &frame).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    tracing::debug!(%peer, error = %e, "cluster listener: cannot answer");
                    return;
                }
                if !greeted {
                    return;
                }
            }
        });
    }
}

/// One peer's address and a connection to it, opened on first use and after a failure
/// (and greeted with this node's cluster identity).
pub struct PeerClient {
    addr: String,
    cluster: Arc<str>,
    conn: tokio::sync::Mutex<Option<TcpStream>>,
}

impl PeerClient {
    pub fn new(addr: String, cluster: Arc<str>) -> PeerClient {
        PeerClient {
            addr,
            cluster,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `req` and waits up to `timeout` (queueing behind other calls included)
    /// for the answer. A kept connection the peer has closed meanwhile is replaced
    /// once, within the same deadline.
    pub async fn call(
        &self,
        req: &PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, TransportError> {
        let frame = encode(req)?;
        let exchange = async {
            let mut conn = self.conn.lock().await;
            // Taken out for the exchange: if it fails or the deadline cancels it, the
            // stream (which may hold half an answer) is dropped, never reused.
            let kept = conn.take();
            let reused = kept.is_some();
            let mut stream = match kept {
                Some(s) => s,
                None => self.connect().await?,
            };
            let mut answer = Self::exchange(&mut stream, &frame).await;
            if reused && matches!(answer, Err(TransportError::Io(_))) {
                stream = self.connect().await?;
                answer = Self::exchange(&mut stream, &frame).await;
            }
            if answer.is_ok() {
                *conn = Some(stream);
            }
            answer
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }

    async fn connect(&self) -> Result<TcpStream, TransportError> {
        let mut s = TcpStream::connect(&self.addr).await?;
        let _ = s.set_nodelay(true);
        let hello = encode(&PeerRequest::Hello {
            cluster: self.cluster.to_string(),
        })?;
        match Self::exchange(&mut s, &hello).await? {
            PeerResponse::Hello(true) => Ok(s),
            _ => Err(TransportError::ForeignCluster(self.addr.clone())),
        }
    }

    async fn exchange(s: &mut TcpStream, frame: &[u8]) -> Result<PeerResponse, TransportError> {
        write_frame(s, frame).await?;
        match read_frame(s).await? {
            Some(body) => decode_response(&body),
            None => Err(TransportError::Io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }
}

/// The peers this node knows, by node id.
pub struct Peers {
    /// This cluster's identity, sent first on every connection.
    cluster: Arc<str>,
    /// Raft's own RPCs, by node.
    clients: parking_lot::RwLock<HashMap<NodeId, Arc<PeerClient>>>,
    /// The quorum's calls (proposals, heartbeats, joins), on connections of their own
    /// so that a slow proposal never holds up Raft, nor Raft a heartbeat.
    control: parking_lot::RwLock<HashMap<NodeId, Arc<PeerClient>>>,
}

impl Peers {
    /// The peers of the cluster named `cluster` (its id and voters).
    pub fn new(cluster: &str) -> Peers {
        Peers {
            cluster: cluster.into(),
            clients: Default::default(),
            control: Default::default(),
        }
    }

    pub fn cluster(&self) -> Arc<str> {
        self.cluster.clone()
    }

    /// Raft's client for `node` at `addr` (a new one if the address changed).
    pub fn client(&self, node: NodeId, addr: &str) -> Arc<PeerClient> {
        Self::get_or_add(&self.clients, &self.cluster, node, addr)
    }

    /// The quorum's client for `node` at `addr`.
    pub fn control(&self, node: NodeId, addr: &str) -> Arc<PeerClient> {
        Self::get_or_add(&self.control, &self.cluster, node, addr)
    }

    fn get_or_add(
        map: &parking_lot::RwLock<HashMap<NodeId, Arc<PeerClient>>>,
        cluster: &Arc<str>,
        node: NodeId,
        addr: &str,
    ) -> Arc<PeerClient> {
        if let Some(c) = map.read().get(&node) {
            if c.addr() == addr {
                return c.clone();
            }
        }
        let c = Arc::new(PeerClient::new(addr.to_string(), cluster.clone()));
        map.write().insert(node, c.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Beat;

    impl PeerHandler for Beat {
        async fn handle(&self, _req: PeerRequest) -> PeerResponse {
            PeerResponse::Heartbeat(HeartbeatReply::Accepted)
        }
    }

    #[tokio::test]
    async fn a_node_of_another_cluster_is_turned_away_before_its_requests_are_handled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(serve(listener, Arc::new(Beat), "ours".into(), stop));
        let beat = PeerRequest::Heartbeat {
            broker: 1,
            epoch: 1,
        };
        let ours = PeerClient::new(addr.clone(), "ours".into());
        assert!(matches!(
            ours.call(&beat, Duration::from_secs(5)).await.unwrap(),
            PeerResponse::Heartbeat(HeartbeatReply::Accepted)
        ));
        let theirs = PeerClient::new(addr.clone(), "theirs".into());
        assert!(matches!(
            theirs.call(&beat, Duration::from_secs(5)).await,
            Err(TransportError::ForeignCluster(_))
        ));
        // A request without the hello closes the connection unanswered.
        let mut raw = TcpStream::connect(&addr).await.unwrap();
        write_frame(&mut raw, &encode(&beat).unwrap())
            .await
            .unwrap();
        assert!(read_frame(&mut raw).await.unwrap_or(None).is_none());
    }

    #[tokio::test]
    async fn a_frame_round_trips_and_an_oversized_length_is_refused_before_allocation() {
        let req = PeerRequest::Heartbeat {
            broker: 2,
            epoch: 7,
        };
        let frame = encode(&req).unwrap();
        let mut r = &frame[..];
        let body = read_frame(&mut r).await.unwrap().unwrap();
        assert!(matches!(
            decode_request(&body).unwrap(),
            PeerRequest::Heartbeat {
                broker: 2,
                epoch: 7
            }
        ));
        let huge = (u32::MAX).to_be_bytes();
        let mut r = &huge[..];
        assert!(matches!(
            read_frame(&mut r).await,
            Err(TransportError::TooLarge(_))
        ));
        assert!(decode_request(b"{\"Nope\":1}").is_err());
    }
}
