//! Virgil on the desktop: the multi-device chat of seed 004 as a Tauri 2 app. The app
//! holds one `supasync_native::NativeReplica` (the replica of whoever is signed in, in
//! SQLite files under the app's data directory) and hands it to the web UI through
//! commands (writes, queries, sign-in) and events (live query rows, statuses, channel
//! events): see `sync_commands`. The UI is the web example's React app; only the
//! object behind its hooks differs (`src/tauri-replica.ts`).
//!
//! Configuration comes from the environment, as for the CLI: `SUPABASE_URL`,
//! `SUPABASE_ANON_KEY`, and optionally `VIRGIL_DATA_DIR` (where the replicas live;
//! default: the platform's app data directory), `VIRGIL_DEVICE` (this device's
//! name among the user's devices) and `VIRGIL_ENCRYPTION_KEY` (64 hex digits: the
//! replicas are then encrypted at rest; an app of its own would keep the key in the
//! system's keychain, e.g. with the `keyring` crate, not in its environment).

mod sync_commands;

use std::path::PathBuf;

use supasync_native::core::{ReplicaConfig, Schema};
use tauri::Manager;

/// The chat schema, shared with the CLI demo and the web example.
const SCHEMA: &str = include_str!("../../../chat/schema.json");

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set: start Virgil with ./scripts/tauri-demo.sh, or set SUPABASE_URL and SUPABASE_ANON_KEY"))
}

fn setup(app: &mut tauri::App) -> Result<(), Box<dyn std::error::Error>> {
    let url = env("SUPABASE_URL")?;
    let anon_key = env("SUPABASE_ANON_KEY")?;
    let dir = match std::env::var_os("VIRGIL_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => app.path().app_data_dir()?,
    };
    let device = std::env::var("VIRGIL_DEVICE").unwrap_or_else(|_| "desktop".into());
    let schema = Schema::from_json(SCHEMA).map_err(|e| format!("the chat schema: {e}"))?;
    let cfg = ReplicaConfig::new(&url, &anon_key);
    let replica = match std::env::var("VIRGIL_ENCRYPTION_KEY") {
        Ok(hex) => {
            let key = supasync_native::EncryptionKey::from_hex(&hex).map_err(|e| format!("VIRGIL_ENCRYPTION_KEY: {e}"))?;
            tauri::async_runtime::block_on(supasync_native::open_encrypted_replica(schema, cfg, &dir, key))?
        }
        Err(_) => tauri::async_runtime::block_on(supasync_native::open_replica(schema, cfg, Some(&dir)))?,
    };
    let state = sync_commands::SyncState::new(replica, device);
    state.forward_statuses(app.handle().clone())?;
    app.manage(state);
    Ok(())
}

fn main() {
    let app = tauri::Builder::default().setup(setup).invoke_handler(sync_commands::handler()).build(tauri::generate_context!());
    match app {
        Ok(app) => app.run(|handle, event| {
            if let tauri::RunEvent::Exit = event {
                if let Some(state) = handle.try_state::<sync_commands::SyncState>() {
                    tauri::async_runtime::block_on(state.close());
                }
            }
        }),
        Err(e) => {
            eprintln!("virgil: {e}");
            std::process::exit(1);
        }
    }
}
