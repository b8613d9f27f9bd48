//! Deployments: one JSON file per deployment in a config directory (the seed's
//! `~/.openwebui-sync/<client>.json`), naming its database, its tenant schema, how
//! often it syncs and whether it does. Every command and the scheduler read them from
//! there, so a changed file is in effect at the next read, with no restart.
//!
//! The Postgres connection string is not in these files: it is a secret shared by all
//! deployments, read from `SUPASYNC_DATABASE_URL` (or `database_url` in the
//! directory's `config.json`, which should then be readable by the operator only).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::AttachError;
use crate::tenant::Tenant;

/// How often a deployment syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Interval {
    /// Only when asked (`deployments sync-now`).
    Manual,
    Every(Duration),
}

impl TryFrom<String> for Interval {
    type Error = AttachError;

    /// `manual`, `hourly`, `daily`, or a count and a unit: `1m`, `5m`, `2h`, `1d`
    /// (from one minute to seven days).
    fn try_from(s: String) -> Result<Interval, AttachError> {
        let bad = || AttachError::Invalid(format!("interval {s:?}: use manual, hourly, daily, or a number with m, h or d (1m to 7d), e.g. 5m"));
        let t = s.trim().to_ascii_lowercase();
        let secs = match t.as_str() {
            "manual" => return Ok(Interval::Manual),
            "hourly" => 3600,
            "daily" => 86_400,
            _ => {
                let (n, unit) = t.split_at(t.len().saturating_sub(1));
                let n: u64 = n.parse().map_err(|_| bad())?;
                n * match unit {
                    "m" => 60,
                    "h" => 3600,
                    "d" => 86_400,
                    _ => return Err(bad()),
                }
            }
        };
        if !(60..=7 * 86_400).contains(&secs) {
            return Err(bad());
        }
        Ok(Interval::Every(Duration::from_secs(secs)))
    }
}

impl From<Interval> for String {
    fn from(i: Interval) -> String {
        match i {
            Interval::Manual => "manual".into(),
            Interval::Every(d) if d.as_secs() % 86_400 == 0 => format!("{}d", d.as_secs() / 86_400),
            Interval::Every(d) if d.as_secs() % 3600 == 0 => format!("{}h", d.as_secs() / 3600),
            Interval::Every(d) => format!("{}m", d.as_secs() / 60),
        }
    }
}

/// One deployment's config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub name: String,
    /// The app's SQLite file.
    pub db: PathBuf,
    pub tenant_schema: String,
    pub interval: Interval,
    pub enabled: bool,
}

impl Deployment {
    pub fn tenant(&self) -> Result<Tenant, AttachError> {
        Tenant::new(&self.name, &self.tenant_schema)
    }
}

/// The config directory.
pub struct Deployments {
    dir: PathBuf,
}

impl Deployments {
    pub fn new(dir: impl Into<PathBuf>) -> Deployments {
        Deployments { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> Result<PathBuf, AttachError> {
        let ok = !name.is_empty() && name.len() <= 100 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') && !name.starts_with('.');
        if !ok {
            return Err(AttachError::Invalid(format!("deployment name {name:?}: use letters, digits, '-', '_' and '.'")));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// One deployment, or a clear error naming the file.
    pub fn get(&self, name: &str) -> Result<Deployment, AttachError> {
        let path = self.file(name)?;
        let text = std::fs::read_to_string(&path).map_err(|e| AttachError::Invalid(format!("deployment {name:?}: {}: {e}", path.display())))?;
        let d: Deployment = serde_json::from_str(&text).map_err(|e| AttachError::Invalid(format!("{}: {e}", path.display())))?;
        if d.name != name {
            return Err(AttachError::Invalid(format!("{} names deployment {:?}", path.display(), d.name)));
        }
        d.tenant()?;
        Ok(d)
    }

    /// Every deployment file in the directory (`config.json` is the directory's own),
    /// by name; a file that does not read is an error naming it.
    pub fn all(&self) -> Result<Vec<Result<Deployment, AttachError>>, AttachError> {
        let mut names = vec![];
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(AttachError::Invalid(format!("{}: {e}", self.dir.display()))),
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json").filter(|s| *s != "config") {
                names.push(stem.to_string());
            }
        }
        names.sort();
        Ok(names.iter().map(|n| self.get(n)).collect())
    }

    /// Write a deployment's file (whole, through a temporary file and a rename, so a
    /// scheduler reading it never sees half of it).
    pub fn save(&self, d: &Deployment) -> Result<(), AttachError> {
        d.tenant()?;
        let path = self.file(&d.name)?;
        std::fs::create_dir_all(&self.dir).map_err(|e| AttachError::Invalid(format!("{}: {e}", self.dir.display())))?;
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(d).map_err(|e| AttachError::Corrupt(e.to_string()))?;
        std::fs::write(&tmp, text + "\n").and_then(|_| std::fs::rename(&tmp, &path)).map_err(|e| AttachError::Invalid(format!("{}: {e}", path.display())))
    }

    /// The Postgres connection string: `SUPASYNC_DATABASE_URL`, else `database_url` in
    /// the directory's `config.json`.
    pub fn database_url(&self) -> Result<String, AttachError> {
        if let Ok(url) = std::env::var("SUPASYNC_DATABASE_URL") {
            return Ok(url);
        }
        let path = self.dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|_| AttachError::Invalid(format!("no database to sync to: set SUPASYNC_DATABASE_URL, or database_url in {}", path.display())))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| AttachError::Invalid(format!("{}: {e}", path.display())))?;
        v.get("database_url").and_then(|u| u.as_str()).map(String::from).ok_or_else(|| AttachError::Invalid(format!("{} has no database_url", path.display())))
    }
}

/// Copy the database to `backups/` in the config directory before it is first synced
/// (SQLite's `VACUUM INTO`: a consistent copy while the app runs); the copy's path.
pub fn back_up(conn: &rusqlite::Connection, deployments: &Deployments, name: &str, now_ms: i64) -> Result<PathBuf, AttachError> {
    let dir = deployments.dir().join("backups");
    std::fs::create_dir_all(&dir).map_err(|e| AttachError::Invalid(format!("{}: {e}", dir.display())))?;
    let path = dir.join(format!("{name}-{now_ms}.db"));
    conn.execute("VACUUM INTO ?1", [path.to_string_lossy()])?;
    Ok(path)
}
