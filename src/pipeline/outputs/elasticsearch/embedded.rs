//! The embedded default: with no `hosts`, each index is appended as NDJSON to
//! `<data_dir>/indices/<index>.ndjson` (one document per line, `@metadata` left out),
//! so the appliance runs its example pipeline end to end without Elasticsearch.
//! Every document counts as indexed once its file write returns. The files are
//! append-only: every action, update and delete included, appends the event.

use std::io::Write;
use std::sync::atomic::Ordering;

use super::bulk::Doc;

impl super::Elasticsearch {
    pub(super) fn write_embedded(&self, docs: &[Doc]) -> Result<(), String> {
        std::fs::create_dir_all(&self.embedded_dir).map_err(|e| e.to_string())?;
        let mut by_index: Vec<(&str, Vec<u8>)> = Vec::new();
        for d in docs {
            let i = match by_index.iter().position(|(n, _)| *n == d.index) {
                Some(i) => i,
                None => {
                    by_index.push((&d.index, Vec::new()));
                    by_index.len() - 1
                }
            };
            by_index[i].1.extend_from_slice(&d.source);
            by_index[i].1.push(b'\n');
        }
        for (index, bytes) in by_index {
            // Index names are lowercase and have no `/` (Elasticsearch's own rules).
            let name: String = index
                .chars()
                .map(|c| if c == '/' || c == '\\' { '_' } else { c })
                .collect();
            let path = self.embedded_dir.join(format!("{name}.ndjson"));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        self.stats
            .indexed
            .fetch_add(docs.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
