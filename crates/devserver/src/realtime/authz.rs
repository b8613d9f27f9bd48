//! Realtime Authorization for private channels, as Supabase does it: the caller may
//! receive on a topic if RLS lets its role and claims read a message of that topic in
//! `realtime.messages`, and may send if RLS lets it insert one. `realtime.topic()` is
//! the topic being joined, for policies to test. The check runs in a transaction that
//! is always rolled back: it writes nothing.

use serde_json::{Map, Value};

use crate::state::AppState;

/// What a caller may do on a private topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
}

/// Check `role` with `claims` against the policies on `realtime.messages` for `subtopic`
/// and `extension` (`broadcast` or `presence`).
pub async fn check(st: &AppState, subtopic: &str, extension: &str, role: &str, claims: &Map<String, Value>) -> Result<Access, String> {
    let mut client = st.client().await?;
    let describe = |e: tokio_postgres::Error| format!("Realtime could not check the channel's policies: {}", crate::pgerr::describe(&e));
    let tx = client.transaction().await.map_err(describe)?;
    // A message of the topic must exist for a SELECT policy to be tested against it;
    // it is written as the server (no RLS) and rolled back with everything else.
    tx.execute(
        "INSERT INTO realtime.messages (topic, extension, event, payload, private) VALUES ($1, $2, 'access_probe', '{}', true)",
        &[&subtopic, &extension],
    )
    .await
    .map_err(describe)?;
    let claims_text = Value::Object(claims.clone()).to_string();
    tx.execute(
        "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true), set_config('realtime.topic', $3, true)",
        &[&role, &claims_text, &subtopic],
    )
    .await
    .map_err(describe)?;
    let read = match tx
        .query_one("SELECT EXISTS (SELECT 1 FROM realtime.messages WHERE topic = $1 AND extension = $2)", &[&subtopic, &extension])
        .await
    {
        Ok(row) => row.get::<_, bool>(0),
        Err(_) => false,
    };
    // A refused insert aborts the transaction; nothing follows it.
    let write = tx
        .execute(
            "INSERT INTO realtime.messages (topic, extension, event, payload, private) VALUES ($1, $2, 'access_probe', '{}', true)",
            &[&subtopic, &extension],
        )
        .await
        .is_ok();
    let _ = tx.rollback().await;
    Ok(Access { read: read || role == "service_role", write: write || role == "service_role" })
}
