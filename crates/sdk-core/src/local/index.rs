//! Declared indexes: one or more columns of a table, kept in order, so a query reads
//! the rows it shows instead of the whole table.
//!
//! An index entry is one text key per row, made of the row's visible values (overlay
//! over mirror: a pending edit moves the row in its indexes at once), each encoded so
//! that comparing the keys as plain bytes orders the rows as PostgreSQL orders the
//! values, and nulls after every value (PostgreSQL's `ASC NULLS LAST`; read backwards,
//! `DESC NULLS FIRST`). Every store (SQLite, IndexedDB, memory) sorts these keys as
//! bytes and knows nothing of types, so one function decides the order on every
//! platform. Keys are ASCII: IndexedDB compares strings by UTF-16 unit and SQLite by
//! UTF-8 byte, and for ASCII text the two agree.
//!
//! The order is exact where PostgreSQL's is exact: text by bytes (the `C` collation),
//! numbers as numbers, timestamps as instants. Numbers are kept as 64-bit floats, so
//! two integers above 2^53 may share a key: readers treat keys as an order that may
//! tie and re-check values (see `select::run`), never as equality.

use std::fmt::Write;
use std::ops::Bound;

use serde_json::Value;

use crate::local::local_row::{LocalRow, Overlay};
use crate::local::time::instant;

/// One column of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexColumn {
    pub name: String,
    /// Order the column's text as instants (declared `timestamptz`, `timestamp`,
    /// `date`), not as bytes.
    pub instant: bool,
}

/// An index: columns in order. The first columns serve equality filters, the next one
/// the order (and the page) of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDef {
    columns: Vec<IndexColumn>,
}

/// Where a component of a key ends: lower than any byte a component holds, so a value
/// sorts before every longer value it starts.
const END: char = '!';
/// Above every byte a key holds: `prefix + LAST` bounds all keys that start with it.
const LAST: char = '\u{7f}';

impl IndexDef {
    /// An index on `columns`; `None` for no columns or an empty name.
    pub fn new(columns: Vec<IndexColumn>) -> Option<IndexDef> {
        (!columns.is_empty() && columns.iter().all(|c| !c.name.is_empty() && is_plain(&c.name))).then_some(IndexDef { columns })
    }

    /// An index on one column ordered by its values' own JSON types.
    pub fn column(name: &str) -> IndexDef {
        IndexDef { columns: vec![IndexColumn { name: name.to_string(), instant: false }] }
    }

    /// An index on several columns ordered by their values' own JSON types.
    pub fn columns(names: &[&str]) -> IndexDef {
        IndexDef { columns: names.iter().map(|n| IndexColumn { name: n.to_string(), instant: false }).collect() }
    }

    pub fn parts(&self) -> &[IndexColumn] {
        &self.columns
    }

    /// The name a store keeps the index under: `(conversation_id,timestamp@time)`. It
    /// says everything the keys depend on, so an index whose declaration changed is a
    /// new index (built afresh), never old keys read in a new way.
    pub fn name(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| if c.instant { format!("{}@time", c.name) } else { c.name.clone() }).collect();
        format!("({})", cols.join(","))
    }

    /// The index a name from [`IndexDef::name`] stands for (`None` for another text,
    /// such as the per-column names older stores kept).
    pub fn parse(name: &str) -> Option<IndexDef> {
        let inner = name.strip_prefix('(')?.strip_suffix(')')?;
        let columns = inner
            .split(',')
            .map(|c| match c.strip_suffix("@time") {
                Some(n) => IndexColumn { name: n.to_string(), instant: true },
                None => IndexColumn { name: c.to_string(), instant: false },
            })
            .collect();
        IndexDef::new(columns)
    }

    /// The row's key in this index, or `None` for a row the app does not see (deleted
    /// locally, or empty): such rows are in no index.
    pub fn key(&self, row: &LocalRow) -> Option<String> {
        let mut out = String::new();
        for c in &self.columns {
            encode(visible(row, &c.name)?, c.instant, &mut out);
        }
        Some(out)
    }

    /// The row's key through its first `n` columns: what rows that tie on those
    /// columns share (`None` for a row the app does not see).
    pub fn key_through(&self, row: &LocalRow, n: usize) -> Option<String> {
        let mut out = String::new();
        for c in self.columns.iter().take(n) {
            encode(visible(row, &c.name)?, c.instant, &mut out);
        }
        Some(out)
    }

    /// The start of the keys of rows whose first columns hold `values` (as many values
    /// as columns they fix).
    pub fn prefix(&self, values: &[&Value]) -> String {
        let mut out = String::new();
        for (c, v) in self.columns.iter().zip(values) {
            encode(Some(v), c.instant, &mut out);
        }
        out
    }
}

fn is_plain(name: &str) -> bool {
    !name.contains([',', '(', ')', '@', '\0'])
}

/// A column's visible value: `None` when the row is not visible at all, `Some(None)`
/// when the column is absent (which reads as null).
pub fn visible<'r>(row: &'r LocalRow, column: &str) -> Option<Option<&'r Value>> {
    match (&row.overlay, &row.mirror) {
        (Some(Overlay::Deleted), _) | (None, None) => None,
        (Some(Overlay::Fields { fields }), _) if fields.contains_key(column) => Some(fields.get(column)),
        (_, Some(m)) => Some(m.get(column)),
        (_, None) => Some(None),
    }
}

/// Append one value's key component: a tag that orders the types (`b`ool < `j`son <
/// instant `m` < `n`umber < `t`ext < null `z`), its order-keeping payload, then [`END`].
fn encode(v: Option<&Value>, as_instant: bool, out: &mut String) {
    match v {
        None | Some(Value::Null) => out.push('z'),
        Some(Value::Bool(b)) => out.push_str(if *b { "b1" } else { "b0" }),
        Some(Value::Number(n)) => {
            out.push('n');
            let f = n.as_f64().unwrap_or(0.0);
            let bits = f.to_bits();
            // Negative floats reverse their bits' order; positive ones only need the
            // sign bit set above them.
            let ordered = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
            let _ = write!(out, "{ordered:016x}");
        }
        Some(Value::String(s)) => match instant(s).filter(|_| as_instant) {
            Some(micros) => {
                out.push('m');
                let _ = write!(out, "{:016x}", (micros as i64 as u64) ^ (1 << 63));
            }
            None => {
                out.push('t');
                escape(s.as_bytes(), out);
            }
        },
        Some(other) => {
            out.push('j');
            escape(other.to_string().as_bytes(), out);
        }
    }
    out.push(END);
}

/// Bytes as ASCII in the same order: `$`..`}` as they are, lower bytes as `#` and two
/// hex digits (below every plain byte), higher ones as `~` and two hex digits (above).
fn escape(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            0x24..=0x7d => out.push(b as char),
            0..=0x23 => {
                let _ = write!(out, "#{b:02x}");
            }
            _ => {
                let _ = write!(out, "~{b:02x}");
            }
        }
    }
}

/// A range of keys of one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Bound<String>,
    pub upper: Bound<String>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange { lower: Bound::Unbounded, upper: Bound::Unbounded }
    }

    /// The keys that start with `prefix` (all keys for an empty one).
    pub fn prefix(prefix: &str) -> KeyRange {
        if prefix.is_empty() {
            return KeyRange::all();
        }
        KeyRange { lower: Bound::Included(prefix.to_string()), upper: Bound::Excluded(format!("{prefix}{LAST}")) }
    }

    /// Exactly `key`.
    pub fn exactly(key: &str) -> KeyRange {
        KeyRange { lower: Bound::Included(key.to_string()), upper: Bound::Included(key.to_string()) }
    }

    /// What is left of the range once a read in order has passed `key`: the keys after
    /// it (before it, reading backwards).
    pub fn past(&self, key: &str, descending: bool) -> KeyRange {
        let mut r = self.clone();
        if descending {
            r.upper = Bound::Excluded(key.to_string());
        } else {
            r.lower = Bound::Excluded(key.to_string());
        }
        r
    }

    /// What is left once a read in order has passed every key that starts with
    /// `prefix` (a key's first components, see [`IndexDef::key_through`]).
    pub fn past_prefix(&self, prefix: &str, descending: bool) -> KeyRange {
        let mut r = self.clone();
        if descending {
            r.upper = Bound::Excluded(prefix.to_string());
        } else {
            r.lower = Bound::Excluded(format!("{prefix}{LAST}"));
        }
        r
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        let above = match &self.lower {
            Bound::Unbounded => true,
            Bound::Included(l) => key >= l.as_str(),
            Bound::Excluded(l) => key > l.as_str(),
        };
        let below = match &self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => key <= u.as_str(),
            Bound::Excluded(u) => key < u.as_str(),
        };
        above && below
    }

    /// The range as two inclusive-or-not bounds with the unbounded sides filled in
    /// (for stores whose range queries need both: `("", false)` and `("\u{7f}", false)`).
    pub fn closed(&self) -> ((String, bool), (String, bool)) {
        let lower = match &self.lower {
            Bound::Unbounded => (String::new(), false),
            Bound::Included(l) => (l.clone(), false),
            Bound::Excluded(l) => (l.clone(), true),
        };
        let upper = match &self.upper {
            Bound::Unbounded => (LAST.to_string(), true),
            Bound::Included(u) => (u.clone(), false),
            Bound::Excluded(u) => (u.clone(), true),
        };
        (lower, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(v: Value, instant: bool) -> String {
        let mut s = String::new();
        encode(Some(&v), instant, &mut s);
        s
    }

    #[test]
    fn keys_order_as_postgres_orders_values() {
        let nums = [json!(-1e300), json!(-2.5), json!(-1), json!(0), json!(0.5), json!(1), json!(10), json!(1e300)];
        for w in nums.windows(2) {
            assert!(k(w[0].clone(), false) < k(w[1].clone(), false), "{} < {}", w[0], w[1]);
        }
        assert_eq!(k(json!(1), false), k(json!(1.0), false), "equal numbers share a key");
        let texts = ["", "!", "A", "B", "a", "ab", "abc", "b", "~", "é", "€", "😀"];
        for w in texts.windows(2) {
            assert!(w[0].as_bytes() < w[1].as_bytes());
            assert!(k(json!(w[0]), false) < k(json!(w[1]), false), "{:?} < {:?}", w[0], w[1]);
        }
        assert!(k(json!("ab"), false) < k(json!("ab\u{0}"), false), "a prefix sorts first");
        let t = |s: &str| k(json!(s), true);
        assert!(t("2026-12-03T10:00:00+00:00") < t("2026-12-03T10:00:00.5+00:00"));
        assert_eq!(t("2026-12-03T11:00:00+01:00"), t("2026-12-03T10:00:00Z"), "one instant, one key");
        assert!(t("1969-12-31") < t("1970-01-01"));
        assert!(k(json!("zzz"), false) < k(Value::Null, false), "nulls last");
        assert!(k(json!(1e300), false) < k(Value::Null, false));
        for key in [k(json!("😀 \u{0} ~"), false), t("2026-01-01"), k(json!({"a": [1]}), false)] {
            assert!(key.bytes().all(|b| (0x21..0x7f).contains(&b)), "ASCII, no terminator inside: {key}");
        }
    }

    #[test]
    fn composite_keys_order_by_their_columns_in_turn() {
        let idx = IndexDef::new(vec![IndexColumn { name: "c".into(), instant: false }, IndexColumn { name: "ts".into(), instant: true }]).unwrap();
        assert_eq!(idx.name(), "(c,ts@time)");
        assert_eq!(IndexDef::parse(&idx.name()), Some(idx.clone()));
        assert_eq!(IndexDef::parse("conversation_id"), None, "an older store's per-column name");
        let row = |c: &str, ts: &str| LocalRow {
            table: "m".into(),
            local_id: format!("{c}{ts}"),
            server_id: None,
            mirror: json!({"c": c, "ts": ts}).as_object().cloned(),
            overlay: None,
            status: crate::local::local_row::RowStatus::Synced,
            last_pushed: None,
        };
        let a = idx.key(&row("a", "2026-01-02")).unwrap();
        let a2 = idx.key(&row("a", "2026-01-03")).unwrap();
        let ab = idx.key(&row("ab", "2020-01-01")).unwrap();
        assert!(a < a2 && a2 < ab, "{a} {a2} {ab}");
        let p = KeyRange::prefix(&idx.prefix(&[&json!("a")]));
        assert!(p.contains(&a) && p.contains(&a2) && !p.contains(&ab), "the prefix of `a` is not the prefix of `ab`");
        assert!(!p.past(&a, false).contains(&a) && p.past(&a, false).contains(&a2));
        assert!(p.past(&a2, true).contains(&a) && !p.past(&a2, true).contains(&a2));
        let through_c = idx.key_through(&row("a", "2030-01-01"), 1).unwrap();
        assert!(!KeyRange::all().past_prefix(&through_c, false).contains(&a2), "past every key of c = a");
        assert!(KeyRange::all().past_prefix(&through_c, false).contains(&ab));
        assert!(!KeyRange::all().past_prefix(&through_c, true).contains(&a) && KeyRange::all().past_prefix(&idx.key_through(&row("ab", "x"), 1).unwrap(), true).contains(&a2));
    }
}
