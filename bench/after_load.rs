//! What a server does after a bulk load anyway, done before a measurement so the load is
//! not measured twice: autovacuum's work (the push benchmark deletes and reloads the
//! table five times; the dead rows slow every page's index scan until autovacuum gets
//! to them, which it may do in the middle of a measurement, on the same 2 cores), with
//! statistics for the planner (without them PostgreSQL plans each keyset page as a
//! bitmap scan that sorts every row left: 2-4x slower pages), and the dev server's
//! Realtime slot caught up with the load's WAL (else each 100 ms poll
//! decodes it again on these same 2 cores; on hosted Supabase that work runs on
//! Supabase's machines, not beside the device).

use std::time::Duration;

/// Vacuum and analyze `tables`, checkpoint, and wait (up to a minute) until every replication slot
/// is within 16 MB of the WAL's end.
pub async fn settle(db: &tokio_postgres::Client, tables: &[&str]) -> Result<(), tokio_postgres::Error> {
    for t in tables {
        // Table names are this benchmark's own constants, never input.
        db.batch_execute(&format!("vacuum analyze {t}")).await?;
    }
    db.batch_execute("checkpoint").await?;
    for _ in 0..600 {
        let behind: Option<i64> = db
            .query_one("select max(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))::bigint from pg_replication_slots", &[])
            .await?
            .get(0);
        if behind.unwrap_or(0) < 16 << 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
