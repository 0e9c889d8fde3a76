//! openraft's storage for the metadata quorum: the Raft log and vote on disk, and the
//! state machine that applies committed commands to the metadata image.
//!
//! On-disk layout, under `<data>/__cluster/`:
//! - `log.jsonl`: one JSON entry per line, appended and fsync'd before openraft is told
//!   the entries are durable; truncation and purging rewrite it (tmp file, rename,
//!   fsync), which is cheap because the metadata log stays short between snapshots;
//! - `vote.json`, `committed.json`, `purged.json`: written the same atomic way;
//! - `snapshot.json`: the last snapshot (its meta and the image), the state machine's
//!   durable form: at start the image is that snapshot, and openraft re-applies the
//!   committed entries after it (`read_committed`).
//!
//! Invariants: the log has no holes; a line is durable before it is acknowledged; a torn
//! last line (a crash mid-append, never acknowledged) is dropped at open, any other
//! unreadable line is an error; the published image is always the applied state.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder,
    Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::sync::watch;

use super::image::{ApplyResult, MetadataCommand, MetadataImage};

openraft::declare_raft_types!(
    /// The metadata quorum's types: commands in, apply results out, nodes by their
    /// cluster address.
    pub TypeConfig:
        D = MetadataCommand,
        R = ApplyResult,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
type StoreResult<T> = Result<T, StorageError<NodeId>>;

/// Writes `value` as JSON to `path` atomically: a crash leaves the old or the new file.
fn write_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        serde_json::to_writer(&mut f, value).map_err(std::io::Error::other)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_json<T: DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

struct LogInner {
    dir: PathBuf,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    file: File,
}

impl LogInner {
    fn log_path(dir: &Path) -> PathBuf {
        dir.join("log.jsonl")
    }

    /// Rewrites `log.jsonl` from the entries held (after a truncate or a purge).
    fn rewrite(&mut self) -> std::io::Result<()> {
        let path = Self::log_path(&self.dir);
        let tmp = path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            let mut buf = Vec::new();
            for e in self.entries.values() {
                serde_json::to_writer(&mut buf, e).map_err(std::io::Error::other)?;
                buf.push(b'\n');
            }
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

/// The Raft log and vote. Cloned handles share one state (openraft reads the log from
/// its replication tasks while the core appends).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

impl LogStore {
    /// The index of the last entry known committed when the log was opened: the image
    /// is not complete before it has been applied up to here.
    pub fn committed_index(&self) -> u64 {
        self.inner.lock().committed.map_or(0, |c| c.index)
    }

    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let path = LogInner::log_path(dir);
        let mut entries = BTreeMap::new();
        if let Ok(text) = fs::read(&path) {
            let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let last = lines.len().saturating_sub(1);
            for (i, line) in lines.iter().enumerate() {
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Entry<TypeConfig>>(line) {
                    Ok(e) => {
                        entries.insert(e.log_id.index, e);
                    }
                    // The last line without its newline: an append cut short by a crash,
                    // never acknowledged.
                    Err(_) if i == last => {
                        tracing::warn!(path = %path.display(), "dropping a torn last entry of the metadata log");
                    }
                    Err(e) => {
                        return Err(std::io::Error::other(format!(
                            "{}: entry {} unreadable: {e}",
                            path.display(),
                            i + 1
                        )))
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut inner = LogInner {
            dir: dir.to_path_buf(),
            entries,
            last_purged: read_json(&dir.join("purged.json"))?,
            vote: read_json(&dir.join("vote.json"))?,
            committed: read_json(&dir.join("committed.json"))?,
            file,
        };
        // A torn line was dropped: the file must not keep it before new appends.
        inner.rewrite()?;
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        let inner = self.inner.lock();
        Ok(inner.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let inner = self.inner.lock();
        let last = inner
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(inner.last_purged);
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        write_atomic(&inner.dir.join("vote.json"), vote)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        Ok(self.inner.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        write_atomic(&inner.dir.join("committed.json"), &committed)
            .map_err(|e| StorageIOError::write(&e))?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> StoreResult<Option<LogId<NodeId>>> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock();
        let mut buf = Vec::new();
        let mut new = Vec::new();
        for e in entries {
            serde_json::to_writer(&mut buf, &e).map_err(|e| StorageIOError::write_logs(&e))?;
            buf.push(b'\n');
            new.push(e);
        }
        let written = inner
            .file
            .write_all(&buf)
            .and_then(|_| inner.file.sync_data());
        if let Err(e) = written {
            // Nothing is taken as appended: the next open drops a torn line.
            callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
            return Err(StorageIOError::write_logs(&e).into());
        }
        for e in new {
            inner.entries.insert(e.log_id.index, e);
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        let _removed = inner.entries.split_off(&log_id.index);
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        // The purge mark is durable first: a crash between the two leaves entries the
        // mark already covers, which are ignored, never a hole.
        write_atomic(&inner.dir.join("purged.json"), &log_id)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        inner.last_purged = Some(log_id);
        let kept = inner.entries.split_off(&(log_id.index + 1));
        inner.entries = kept;
        inner
            .rewrite()
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    image: MetadataImage,
}

struct MachineInner {
    dir: PathBuf,
    image: MetadataImage,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, openraft::BasicNode>,
    snapshot: Option<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>)>,
    snapshots_built: u64,
    published: watch::Sender<Arc<MetadataImage>>,
}

impl MachineInner {
    fn publish(&self) {
        self.published.send_replace(Arc::new(self.image.clone()));
    }

    fn store_snapshot(
        &mut self,
        meta: SnapshotMeta<NodeId, openraft::BasicNode>,
        data: Vec<u8>,
    ) -> StoreResult<()> {
        let image: MetadataImage = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        write_atomic(
            &self.dir.join("snapshot.json"),
            &StoredSnapshot {
                meta: meta.clone(),
                image,
            },
        )
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.snapshot = Some((meta, data));
        Ok(())
    }
}

/// The state machine: the metadata image, published to subscribers after each apply.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<MachineInner>>,
}

impl StateMachine {
    /// Opens the state machine at its last snapshot (or empty).
    pub fn open(
        dir: &Path,
    ) -> std::io::Result<(StateMachine, watch::Receiver<Arc<MetadataImage>>)> {
        fs::create_dir_all(dir)?;
        let stored: Option<StoredSnapshot> = read_json(&dir.join("snapshot.json"))?;
        let (image, last_applied, last_membership, snapshot) = match stored {
            Some(s) => {
                let data = serde_json::to_vec(&s.image).map_err(std::io::Error::other)?;
                (
                    s.image,
                    s.meta.last_log_id,
                    s.meta.last_membership.clone(),
                    Some((s.meta, data)),
                )
            }
            None => (
                MetadataImage::default(),
                None,
                StoredMembership::default(),
                None,
            ),
        };
        let (tx, rx) = watch::channel(Arc::new(image.clone()));
        Ok((
            StateMachine {
                inner: Arc::new(Mutex::new(MachineInner {
                    dir: dir.to_path_buf(),
                    image,
                    last_applied,
                    last_membership,
                    snapshot,
                    snapshots_built: 0,
                    published: tx,
                })),
            },
            rx,
        ))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let mut inner = self.inner.lock();
        let data =
            serde_json::to_vec(&inner.image).map_err(|e| StorageIOError::read_state_machine(&e))?;
        inner.snapshots_built += 1;
        let snapshot_id = match inner.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, inner.snapshots_built),
            None => format!("none-{}", inner.snapshots_built),
        };
        let meta = SnapshotMeta {
            last_log_id: inner.last_applied,
            last_membership: inner.last_membership.clone(),
            snapshot_id,
        };
        inner.store_snapshot(meta.clone(), data.clone())?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        let inner = self.inner.lock();
        Ok((inner.last_applied, inner.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<ApplyResult>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock();
        let mut out = Vec::new();
        for e in entries {
            inner.last_applied = Some(e.log_id);
            inner.image.applied_index = e.log_id.index;
            match &e.payload {
                EntryPayload::Blank => out.push(ApplyResult::Applied),
                EntryPayload::Normal(cmd) => {
                    let r = inner.image.apply(e.log_id.index, cmd);
                    if let ApplyResult::Rejected(why) = &r {
                        tracing::debug!(index = e.log_id.index, %why, "metadata command rejected at apply");
                    }
                    out.push(r);
                }
                EntryPayload::Membership(m) => {
                    inner.last_membership = StoredMembership::new(Some(e.log_id), m.clone());
                    out.push(ApplyResult::Applied);
                }
            }
        }
        inner.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let data = snapshot.into_inner();
        let image: MetadataImage = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut inner = self.inner.lock();
        inner.store_snapshot(meta.clone(), data)?;
        inner.image = image;
        inner.image.applied_index = meta.last_log_id.map_or(0, |l| l.index);
        inner.last_applied = meta.last_log_id;
        inner.last_membership = meta.last_membership.clone();
        inner.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        let inner = self.inner.lock();
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::{StoreBuilder, Suite};

    struct TempStore;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for TempStore {
        async fn build(&self) -> StoreResult<(tempfile::TempDir, LogStore, StateMachine)> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let log = LogStore::open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
            let (sm, _) = StateMachine::open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own storage conformance suite, against our log store and machine.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(TempStore).unwrap();
    }

    #[tokio::test]
    async fn the_log_and_vote_survive_a_reopen_and_a_torn_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut log = LogStore::open(dir.path()).unwrap();
            log.save_vote(&Vote::new(3, 1)).await.unwrap();
            let entries: Vec<Entry<TypeConfig>> = (1..=3)
                .map(|i| Entry {
                    log_id: LogId::new(openraft::CommittedLeaderId::new(3, 1), i),
                    payload: EntryPayload::Normal(MetadataCommand::AllocateProducerIds {
                        count: 10,
                    }),
                })
                .collect();
            let mut inner = log.inner.lock();
            for e in entries {
                let mut line = serde_json::to_vec(&e).unwrap();
                line.push(b'\n');
                inner.file.write_all(&line).unwrap();
            }
            inner.file.write_all(b"{\"log_id\":").unwrap();
        }
        let mut log = LogStore::open(dir.path()).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 1)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(3));
        let text = fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
        assert_eq!(
            text.lines().count(),
            3,
            "the torn line is gone from the file"
        );
    }
}
