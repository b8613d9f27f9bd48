//! Where a restore got to, so that one cut short (the app killed, the device off, the
//! network gone) goes on from there instead of starting over.
//!
//! A restore's walk ([`super::Pull::walk`] over a table this device holds nothing of)
//! keeps a [`RestoreMark`] under `restore:<table>` in the same store batch as each page
//! it writes: where to go on, the snapshot the walk reads below, and the rows stored
//! before that point. A page's mark points at the start of the page before it, which
//! may still be committing when this one is handed over (the one before that was seen
//! stored), so a mark never points past a row that is not stored; the walk that goes on
//! meets rows already stored as taken keys and merges them. The next pull finds the
//! mark, finishes the walk below that snapshot from there, and only then writes the
//! table's cursor (at that snapshot), so what changed since is pulled the usual way,
//! rows looked up. Without the mark a cut restore would
//! walk the whole table again, each page looked up against the rows already held:
//! minutes lost at a million rows.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::page::PageAt;
use crate::local::store::Store;
use crate::sync::cursor::Cursor;
use crate::sync::error::SyncError;

/// How far a table's restore is, as stored with its last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RestoreMark {
    /// Where the walk goes on.
    pub at: PageAt,
    /// The snapshot the walk reads below (`xmax`), and the transactions running then:
    /// the table's cursor once the walk is done.
    pub upto: i64,
    pub pending: Vec<i64>,
    /// Rows stored before `at`, and the server's count of the table when the walk began.
    pub rows: u64,
    pub total: Option<u64>,
}

impl RestoreMark {
    /// The table's cursor once this walk is done.
    pub fn cursor(&self) -> Cursor {
        Cursor { next_txid: self.upto, pending: self.pending.clone() }
    }
}

fn key(table: &str) -> String {
    format!("restore:{table}")
}

/// The mark of `table`'s unfinished restore, if one was cut short.
///
/// A mark this build cannot read (another version of the SDK wrote it) counts as none:
/// the table has no cursor yet, so its next pull walks it from the start, merging the
/// rows it meets, and drops the mark with the cursor it writes. Failing instead would
/// stall every pull of the table for good.
pub(super) async fn read<S: Store>(store: &S, table: &str) -> Result<Option<RestoreMark>, SyncError> {
    Ok(store.meta(&key(table)).await?.and_then(|v| serde_json::from_value(v).ok()))
}

/// The meta entry that stores `mark` with a page.
pub(super) fn entry(table: &str, mark: &RestoreMark) -> (String, Option<Value>) {
    (key(table), serde_json::to_value(mark).ok())
}

/// The meta entry that drops the mark (written with the table's cursor).
pub(super) fn done(table: &str) -> (String, Option<Value>) {
    (key(table), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::store::{MemoryStore, WriteBatch};
    use serde_json::json;

    #[test]
    fn a_mark_this_build_cannot_read_counts_as_none() {
        futures_executor::block_on(async {
            let store = MemoryStore::new();
            let good = RestoreMark { at: PageAt::From(3), upto: 9, pending: vec![], rows: 1000, total: None };
            for (stored, expected) in [
                (json!({"at": "somewhere", "upto": "later"}), None),
                (json!("restore from a newer SDK"), None),
                (Value::Null, None),
                (serde_json::to_value(&good).unwrap(), Some(good.clone())),
            ] {
                store.apply(WriteBatch { meta: vec![(key("messages"), Some(stored.clone()))], ..Default::default() }).await.unwrap();
                assert_eq!(read(&store, "messages").await.unwrap(), expected, "{stored}");
            }
        });
    }

    #[test]
    fn a_mark_reads_back_as_it_was_stored() {
        for at in [PageAt::From(0), PageAt::After(7, "k".into()), PageAt::Within(7, "k2".into()), PageAt::Past(7)] {
            let mark = RestoreMark { at, upto: 9, pending: vec![8], rows: 2000, total: Some(2510) };
            let (k, v) = entry("messages", &mark);
            assert_eq!(k, "restore:messages");
            let back: RestoreMark = serde_json::from_value(v.expect("a value")).unwrap();
            assert_eq!(back, mark);
            assert_eq!(back.cursor(), Cursor { next_txid: 9, pending: vec![8] });
        }
    }
}
