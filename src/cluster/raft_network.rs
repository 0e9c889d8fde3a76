//! openraft's network over the cluster transport: one `PeerClient` per target node
//! (shared with the quorum's own calls), each RPC bounded by openraft's deadline, and
//! an answer of the wrong kind taken as a network error, never a panic.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};

use super::raft_store::{NodeId, TypeConfig};
use super::transport::{PeerClient, PeerRequest, PeerResponse, Peers, TransportError};

/// openraft's network: one `PeerClient` per target, shared with the quorum's own calls.
pub struct NetworkFactory {
    peers: Arc<Peers>,
}

impl NetworkFactory {
    pub fn new(peers: Arc<Peers>) -> NetworkFactory {
        NetworkFactory { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Network;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Network {
        Network {
            target,
            client: self.peers.client(target, &node.addr),
        }
    }
}

pub struct Network {
    target: NodeId,
    client: Arc<PeerClient>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Network {
    async fn call(
        &self,
        req: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, Unreachable> {
        self.client
            .call(&req, option.hard_ttl())
            .await
            .map_err(|e| Unreachable::new(&e))
    }
}

fn unexpected<E: std::error::Error>(resp: PeerResponse) -> RPCError<NodeId, BasicNode, E> {
    let e = TransportError::Decode(format!("unexpected answer {resp:?}"));
    RPCError::Network(NetworkError::new(&e))
}

/// The waits before openraft tries an unreachable peer again: 250 ms doubling to 2 s
/// (openraft's default is 500 ms for ever). openraft logs every failed try at ERROR,
/// so a node that is down for a while filled the log four times a second; a returning
/// node is reached within 2 s, well inside its broker session.
fn unreachable_backoff() -> openraft::network::Backoff {
    openraft::network::Backoff::new(
        [250, 500, 1000]
            .into_iter()
            .chain(std::iter::repeat(2000))
            .map(std::time::Duration::from_millis),
    )
}

impl RaftNetwork<TypeConfig> for Network {
    fn backoff(&self) -> openraft::network::Backoff {
        unreachable_backoff()
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(PeerRequest::AppendEntries(rpc), &option).await? {
            PeerResponse::AppendEntries(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self
            .call(PeerRequest::InstallSnapshot(rpc), &option)
            .await?
        {
            PeerResponse::InstallSnapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(PeerRequest::Vote(rpc), &option).await? {
            PeerResponse::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unreachable_peer_is_retried_sooner_first_and_at_most_every_two_seconds() {
        let waits: Vec<u64> = super::unreachable_backoff()
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(waits, vec![250, 500, 1000, 2000, 2000, 2000]);
    }
}
