//! Live answers handed to JavaScript row by row. A live query calls back with its whole
//! answer after every change, but a change touches a row or two: converting the whole
//! list each time (JSON text, then `JSON.parse`) cost about 10 µs a row, a millisecond
//! for a 100-row conversation, paid by every live query on the page before the next one
//! is told. So each live query keeps the JavaScript object it last gave for each row,
//! with the value it was made from, and converts only rows that are new or changed
//! (all of them in one `JSON.parse`). A row that did not change is the very object the
//! app already holds, which React's memoised rows also rely on to skip rendering.
//! Answers are read-only: an app that edits a row object edits the next answer's too.

use std::collections::HashMap;

use serde::Serialize;
use supasync_core::{Cardinality, RowView, SelectResult, SelectedRow};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::js::invalid;

/// The objects one live query last handed over, by the row's local id.
struct Shown<T> {
    by_id: HashMap<String, (T, JsValue)>,
}

impl<T> Default for Shown<T> {
    fn default() -> Self {
        Shown { by_id: HashMap::new() }
    }
}

impl<T: PartialEq + Serialize> Shown<T> {
    /// One JS value per row, in order: the last one for a row (by local id) equal to
    /// what it was made from, else a new one. Rows without a local id (aggregates) are
    /// always converted.
    fn convert(&mut self, rows: Vec<(Option<String>, T)>) -> Result<Vec<JsValue>, JsValue> {
        let mut out: Vec<Option<JsValue>> = Vec::with_capacity(rows.len());
        let mut fresh: Vec<&T> = vec![];
        for (id, row) in &rows {
            match id.as_ref().and_then(|id| self.by_id.get(id)) {
                Some((was, js)) if was == row => out.push(Some(js.clone())),
                _ => {
                    out.push(None);
                    fresh.push(row);
                }
            }
        }
        if !fresh.is_empty() {
            let text = serde_json::to_string(&fresh).map_err(|e| invalid(format!("an answer that is not JSON: {e}")))?;
            let made: js_sys::Array = js_sys::JSON::parse(&text)?.unchecked_into();
            for (i, slot) in out.iter_mut().filter(|s| s.is_none()).enumerate() {
                *slot = Some(made.get(i as u32));
            }
        }
        let out: Vec<JsValue> = out.into_iter().flatten().collect();
        self.by_id = rows.into_iter().zip(&out).filter_map(|((id, row), js)| Some((id?, (row, js.clone())))).collect();
        Ok(out)
    }
}

/// A `db.live` query's answers: `[{local_id, row, status}, …]`.
#[derive(Default)]
pub(crate) struct ShownRowViews(Shown<RowView>);

impl ShownRowViews {
    pub(crate) fn answer(&mut self, rows: Vec<RowView>) -> Result<JsValue, JsValue> {
        let rows = rows.into_iter().map(|r| (Some(r.local_id.clone()), r)).collect();
        Ok(self.0.convert(rows)?.into_iter().collect::<js_sys::Array>().into())
    }
}

/// A `db.from(…).live` query's answers: `{data, count, sync}`, as
/// [`SelectResult::to_json`] gives them.
#[derive(Default)]
pub(crate) struct ShownSelects(Shown<Crossing>);

/// A row of a select answer as it crosses: `[data, {local_id, status} or null]`, so
/// one object per row carries both parts of the answer.
#[derive(PartialEq)]
struct Crossing(SelectedRow);

impl Serialize for Crossing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = &self.0;
        let sync = r.local_id.as_ref().map(|l| serde_json::json!({"local_id": l, "status": r.status}));
        (&r.data, sync).serialize(s)
    }
}

impl ShownSelects {
    pub(crate) fn answer(&mut self, answer: SelectResult, cardinality: Cardinality) -> Result<JsValue, JsValue> {
        let rows = answer.rows.into_iter().map(|r| (r.local_id.clone(), Crossing(r))).collect();
        let data = js_sys::Array::new();
        let sync = js_sys::Array::new();
        for pair in self.0.convert(rows)? {
            let pair: js_sys::Array = pair.unchecked_into();
            data.push(&pair.get(0));
            let s = pair.get(1);
            if !s.is_null() {
                sync.push(&s);
            }
        }
        let data: JsValue = match cardinality {
            Cardinality::Many => data.into(),
            _ if data.length() > 0 => data.get(0),
            _ => JsValue::NULL,
        };
        let o = js_sys::Object::new();
        js_sys::Reflect::set(&o, &"data".into(), &data)?;
        let count = answer.count.map_or(JsValue::NULL, |c| JsValue::from_f64(c as f64));
        js_sys::Reflect::set(&o, &"count".into(), &count)?;
        js_sys::Reflect::set(&o, &"sync".into(), &sync)?;
        Ok(o.into())
    }
}
