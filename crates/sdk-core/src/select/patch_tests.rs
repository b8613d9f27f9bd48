//! Live answers updated from changed rows alone ([`run::patch`] for queries in
//! PostgREST's language, [`Query::patched`] for the simple ones) must equal the
//! answers read again from the store: a seeded walk of writes (inserts, edits, nulls,
//! ties, local deletes) checks every step, for pages full and not, and counts how
//! often the patch had to give way to a read.

use serde_json::{json, Value};

use crate::app::query::{Query, RowView};
use crate::local::local_row::{LocalRow, Overlay, RowStatus};
use crate::local::schema::{Schema, TableDecl};
use crate::local::store::{MemoryStore, Store, WriteBatch};
use crate::select::{plan, run, select_keeping, Cardinality, SelectOptions, SelectRequest};

fn schema() -> Schema {
    Schema::new(vec![TableDecl::new("messages").index("conversation_id").column("conversation_id", "text").column("content", "text").column("n", "integer")])
        .expect("schema")
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn random_row(rng: &mut Rng, id: &str) -> LocalRow {
    let n = if rng.next(5) == 0 { Value::Null } else { json!(rng.next(6)) };
    let content = ["a", "b", "ab", "ba", "é"][rng.next(5) as usize];
    let fields = json!({"conversation_id": format!("c{}", rng.next(2)), "content": content, "n": n});
    let overlay = match rng.next(6) {
        0 => Some(Overlay::Deleted),
        _ => Some(Overlay::Fields { fields: fields.as_object().cloned().unwrap_or_default() }),
    };
    LocalRow { table: "messages".into(), local_id: id.into(), server_id: None, mirror: None, overlay, status: RowStatus::Pending, last_pushed: None }
}

fn view(s: &Schema, r: &LocalRow) -> Option<RowView> {
    let decl = s.table(&r.table).ok()?;
    Some(RowView { local_id: r.local_id.clone(), row: r.visible(&decl.local_id)?, status: r.status.clone() })
}

#[test]
fn answers_patched_from_changed_rows_equal_answers_read_again() {
    futures_executor::block_on(async {
        let schema = schema();
        let urls = [
            "messages?conversation_id=eq.c1&order=n.desc&limit=4",
            "messages?select=content,n&order=n.asc.nullsfirst,content&limit=6",
            "messages?content=like.*a*&order=content.desc,n",
            "messages?select=id:content&n=gt.2&limit=3",
            "messages?order=n",
        ];
        let queries = [
            Query::default(),
            Query { filters: vec![("conversation_id".into(), json!("c1"))], order: Some(("n".into(), true)), limit: Some(4) },
            Query { filters: vec![], order: Some(("content".into(), false)), limit: None },
        ];
        let store = MemoryStore::new();
        for t in schema.tables() {
            for i in t.index_defs() {
                store.ensure_index(&t.name, &i).await.expect("index");
            }
        }
        let reqs: Vec<SelectRequest> = urls.iter().map(|u| SelectRequest::parse(u).expect("url").with_options(SelectOptions { count: false, cardinality: Cardinality::Many })).collect();
        let mut pages = vec![];
        for r in &reqs {
            pages.push(select_keeping(&schema, &store, r).await.expect("select").1.expect("patchable"));
        }
        let mut lasts: Vec<Vec<RowView>> = vec![vec![]; queries.len()];
        let (mut patched, mut reread) = (0, 0);
        let mut rng = Rng(0x5eed_2026_1204);
        for step in 0..400 {
            // One to three rows written at once (a batch of events), some twice.
            let mut changed: Vec<LocalRow> = vec![];
            for _ in 0..1 + rng.next(3) {
                let id = format!("m{}", rng.next(12));
                changed.push(random_row(&mut rng, &id));
            }
            store.apply(WriteBatch { put_rows: changed.clone(), ..Default::default() }).await.expect("write");
            for (i, r) in reqs.iter().enumerate() {
                let level = plan::plan(&schema, &r.table, &r.params).expect("plan");
                let (fresh, page) = select_keeping(&schema, &store, r).await.expect("select");
                match run::patch(&schema, &level, &r.options, &pages[i], &changed) {
                    Some((answer, _)) => {
                        assert_eq!(answer, fresh, "step {step}: {} patched from {changed:?}", urls[i]);
                        patched += 1;
                    }
                    None => reread += 1,
                }
                pages[i] = page.expect("patchable");
            }
            for (i, q) in queries.iter().enumerate() {
                let all: Vec<RowView> = store.scan("messages").await.expect("scan").iter().filter_map(|r| view(&schema, r)).collect();
                let fresh = q.arrange(all);
                let views: Vec<(String, Option<RowView>)> = changed.iter().map(|r| (r.local_id.clone(), view(&schema, r))).collect();
                match q.patched(&lasts[i], &views) {
                    Some(answer) => {
                        assert_eq!(answer, fresh, "step {step}: query {i} patched from {changed:?}");
                        patched += 1;
                    }
                    None => reread += 1,
                }
                lasts[i] = fresh;
            }
        }
        // Most changes need no read; a row leaving a full page does.
        assert!(patched > 2 * reread && reread > 0, "patched {patched}, read again {reread}");
    });
}

#[test]
fn answers_with_embeds_counts_or_offsets_are_read_again() {
    futures_executor::block_on(async {
        let schema = Schema::new(vec![
            TableDecl::new("conversations").column("title", "text"),
            TableDecl::new("messages").references("conversation_id", "conversations").index("conversation_id"),
        ])
        .expect("schema");
        let store = MemoryStore::new();
        for url in ["conversations?select=title,messages(*)", "messages?select=count()", "messages?offset=1"] {
            let r = SelectRequest::parse(url).expect("url");
            assert!(select_keeping(&schema, &store, &r).await.expect("select").1.is_none(), "{url}");
        }
        let counted = SelectRequest::parse("messages").expect("url").with_options(SelectOptions { count: true, cardinality: Cardinality::Many });
        assert!(select_keeping(&schema, &store, &counted).await.expect("select").1.is_none());
    });
}
