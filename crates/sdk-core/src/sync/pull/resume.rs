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
//!
//! A large table's restore is split into ranges of transactions walked at once
//! (several pages in flight, see [`super::Pull::restore`]); its mark then holds every
//! range: where each goes on, or that it is done, and the rows each stored. The walks
//! share one [`Ranges`]: each page is stored with the mark of every range as far as it
//! is known stored when the page is handed over, so a mark never points past a row
//! that is not stored, in any range.

use std::sync::Mutex;

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
    /// A restore split into ranges: every range (the first's place is `at` too, for a
    /// build that reads no ranges: it walks from there to the end, merging what it
    /// meets). Empty: one walk, `at` to `upto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<RangeMark>,
}

/// One range of a split restore: the transactions from where it began up to `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RangeMark {
    /// Where its walk goes on; `None`: it is done.
    pub at: Option<PageAt>,
    /// The transaction it ends before (the next range's first, or the snapshot's xmax).
    pub end: i64,
    /// Its rows stored before `at`.
    pub rows: u64,
}

impl RestoreMark {
    /// The table's cursor once this walk is done.
    pub fn cursor(&self) -> Cursor {
        Cursor { next_txid: self.upto, pending: self.pending.clone() }
    }

    /// Its ranges (a mark of one walk: one range).
    pub fn ranges(&self) -> Vec<RangeMark> {
        if self.ranges.is_empty() {
            vec![RangeMark { at: Some(self.at.clone()), end: self.upto, rows: self.rows }]
        } else {
            self.ranges.clone()
        }
    }
}

/// How far each range of a restore is known stored, shared by the ranges' walks.
pub(super) struct Ranges {
    table: String,
    done: Cursor,
    total: Option<u64>,
    ranges: Mutex<Vec<RangeMark>>,
}

impl Ranges {
    pub fn new(table: &str, done: &Cursor, total: Option<u64>, ranges: Vec<RangeMark>) -> Ranges {
        Ranges { table: table.to_string(), done: done.clone(), total, ranges: Mutex::new(ranges) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<RangeMark>) -> T) -> T {
        f(&mut self.ranges.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The ranges as they are now.
    pub fn all(&self) -> Vec<RangeMark> {
        self.with(|r| r.clone())
    }

    pub fn split(&self) -> bool {
        self.with(|r| r.len() > 1)
    }

    /// Range `i`'s page is stored: the range goes on at `at` (`None`: done), `rows` of
    /// it stored before that. Returns the rows stored in every range.
    pub fn stored(&self, i: usize, at: Option<PageAt>, rows: u64) -> u64 {
        self.with(|ranges| {
            if let Some(r) = ranges.get_mut(i) {
                r.at = at;
                r.rows = rows;
            }
            ranges.iter().map(|r| r.rows).sum()
        })
    }

    pub fn total(&self) -> Option<u64> {
        self.total
    }

    pub fn rows(&self) -> u64 {
        self.with(|r| r.iter().map(|r| r.rows).sum())
    }

    /// The mark to store with a page: every range as far as it is known stored.
    pub fn entry(&self) -> (String, Option<Value>) {
        let ranges = self.all();
        let rows = ranges.iter().map(|r| r.rows).sum();
        let first = ranges.first().map(|r| r.at.clone().unwrap_or(PageAt::From(r.end)));
        let mark = RestoreMark {
            at: first.unwrap_or(PageAt::From(self.done.next_txid)),
            upto: self.done.next_txid,
            pending: self.done.pending.clone(),
            rows,
            total: self.total,
            ranges: if ranges.len() > 1 { ranges } else { vec![] },
        };
        entry(&self.table, &mark)
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
            let good = RestoreMark { at: PageAt::From(3), upto: 9, pending: vec![], rows: 1000, total: None, ranges: vec![] };
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
    fn a_split_restore_marks_every_range_as_far_as_it_is_stored() {
        let done = Cursor { next_txid: 90, pending: vec![85] };
        let start = |s: i64, end: i64| RangeMark { at: Some(PageAt::From(s)), end, rows: 0 };
        let r = Ranges::new("messages", &done, Some(3500), vec![start(0, 30), start(30, 60), start(60, 90)]);
        assert!(r.split());
        assert_eq!(r.stored(2, Some(PageAt::After(70, "k".into())), 1000), 1000);
        assert_eq!(r.stored(0, None, 1100), 2100);
        let (k, v) = r.entry();
        assert_eq!(k, "restore:messages");
        let mark: RestoreMark = serde_json::from_value(v.expect("a value")).unwrap();
        assert_eq!((mark.rows, mark.total, mark.cursor()), (2100, Some(3500), done.clone()));
        assert_eq!(
            mark.ranges(),
            [RangeMark { at: None, end: 30, rows: 1100 }, start(30, 60), RangeMark { at: Some(PageAt::After(70, "k".into())), end: 90, rows: 1000 }]
        );
        // A build that reads no ranges goes on from the first range not done to the end.
        assert_eq!(mark.at, PageAt::From(30));
        // One range: the mark of one walk, as builds before ranges wrote it.
        let one = Ranges::new("messages", &done, None, vec![start(0, 90)]);
        one.stored(0, Some(PageAt::Past(12)), 1000);
        let (_, v) = one.entry();
        let v = v.expect("a value");
        assert!(v.get("ranges").is_none(), "{v}");
        let mark: RestoreMark = serde_json::from_value(v).unwrap();
        assert_eq!(mark.ranges(), [RangeMark { at: Some(PageAt::Past(12)), end: 90, rows: 1000 }]);
    }

    #[test]
    fn a_mark_reads_back_as_it_was_stored() {
        for at in [PageAt::From(0), PageAt::After(7, "k".into()), PageAt::Within(7, "k2".into()), PageAt::Past(7)] {
            let mark = RestoreMark { at, upto: 9, pending: vec![8], rows: 2000, total: Some(2510), ranges: vec![] };
            let (k, v) = entry("messages", &mark);
            assert_eq!(k, "restore:messages");
            let back: RestoreMark = serde_json::from_value(v.expect("a value")).unwrap();
            assert_eq!(back, mark);
            assert_eq!(back.cursor(), Cursor { next_txid: 9, pending: vec![8] });
        }
    }
}
