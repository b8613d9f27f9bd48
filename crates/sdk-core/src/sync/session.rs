//! The session the sync steps authenticate with: the built-in Auth client's session,
//! kept in the store so that a restarted app is still signed in, or tokens handed
//! over by the app's own auth ([`TokenProvider`]), which the replica never stores.
//! A token about to expire is refreshed before it is used, and a request refused
//! with 401 is tried once more with a fresh one ([`SyncContext::authed`]).
//!
//! Refreshes are single-flight: a push, a pull and the Realtime client can all find
//! the same token refused at once (the network came back after it expired), and each
//! refresh spends the refresh token it used. So one refresh runs at a time, and a
//! caller that waited for it takes the session it brought instead of refreshing again.
//!
//! [`SyncContext::authed`]: crate::sync::context::SyncContext::authed

use async_lock::Mutex;
use serde_json::json;

use super::error::SyncError;
use crate::local::store::{Store, StoreError, WriteBatch};
use crate::net::auth::{self, ProvidedToken, Session, TokenProvider, SESSION_KEY};
use crate::net::client::Client;
use crate::net::transport::Http;

/// Seconds before expiry at which a session is refreshed before use.
const REFRESH_AHEAD_S: i64 = 60;

/// The current session, or the app's token provider.
pub struct Sessions {
    session: Mutex<Option<Session>>,
    /// Held while a refresh runs (see the module docs).
    refreshing: Mutex<()>,
    /// When set, tokens come from the app's own auth instead of `session`.
    provider: Option<Box<dyn TokenProvider>>,
}

impl Sessions {
    /// The session persisted in `store`, if any.
    pub async fn load<S: Store>(store: &S) -> Result<Sessions, StoreError> {
        Ok(Sessions { session: Mutex::new(stored(store).await?), refreshing: Mutex::new(()), provider: None })
    }

    /// Take tokens from the app's own auth from now on.
    pub fn set_provider(&mut self, provider: Box<dyn TokenProvider>) {
        self.provider = Some(provider);
    }

    /// Whether tokens come from the app's own auth.
    pub fn has_provider(&self) -> bool {
        self.provider.is_some()
    }

    /// Read the session again from the store (another process sharing it may have
    /// refreshed it, spending the old refresh token).
    pub async fn reload<S: Store>(&self, store: &S) -> Result<(), StoreError> {
        if self.provider.is_none() {
            *self.session.lock().await = stored(store).await?;
        }
        Ok(())
    }

    /// Persist `s` and use it from now on.
    pub async fn keep<S: Store>(&self, store: &S, s: Session) -> Result<Session, StoreError> {
        store.apply(WriteBatch { meta: vec![(SESSION_KEY.into(), Some(json!(s)))], ..Default::default() }).await?;
        *self.session.lock().await = Some(s.clone());
        Ok(s)
    }

    /// The session as held, without refreshing it.
    pub async fn held(&self) -> Option<Session> {
        self.session.lock().await.clone()
    }

    /// Forget the session held in memory (the caller removes it from the store).
    pub async fn forget(&self) {
        *self.session.lock().await = None;
    }

    /// Who is signed in, as far as this replica knows, without asking the network.
    pub async fn user_id(&self) -> Option<String> {
        match &self.provider {
            Some(p) => p.current().await.map(|t| t.user_id),
            None => self.session.lock().await.as_ref().map(|s| s.user_id.clone()),
        }
    }

    /// The current session, refreshed first if it expires within a minute.
    pub async fn current<S: Store, H: Http>(&self, store: &S, client: &Client<H>, now_s: i64) -> Result<Session, SyncError> {
        if let Some(p) = &self.provider {
            return p.current().await.map(provided).ok_or(SyncError::NotSignedIn);
        }
        let s = self.session.lock().await.clone().ok_or(SyncError::NotSignedIn)?;
        if !due(&s, now_s) {
            return Ok(s);
        }
        self.refresh_unless(store, client, now_s, |s| !due(s, now_s)).await
    }

    /// Refresh the access token now (refresh-token rotation).
    pub async fn refresh<S: Store, H: Http>(&self, store: &S, client: &Client<H>, now_s: i64) -> Result<Session, SyncError> {
        self.refresh_unless(store, client, now_s, |_| false).await
    }

    /// A fresh session after the server refused `refused` (an access token): refreshed
    /// now, unless a refresh that ran meanwhile already replaced that token.
    pub async fn replace<S: Store, H: Http>(&self, store: &S, client: &Client<H>, now_s: i64, refused: &str) -> Result<Session, SyncError> {
        self.refresh_unless(store, client, now_s, |s| s.access_token != refused).await
    }

    /// Refresh, one at a time; a caller that finds the session `good` once its turn
    /// comes (a refresh that ran meanwhile brought it) takes it as it is.
    async fn refresh_unless<S: Store, H: Http>(
        &self,
        store: &S,
        client: &Client<H>,
        now_s: i64,
        good: impl Fn(&Session) -> bool,
    ) -> Result<Session, SyncError> {
        let _one = self.refreshing.lock().await;
        if let Some(p) = &self.provider {
            if let Some(now) = p.current().await.map(provided) {
                if good(&now) {
                    return Ok(now);
                }
            }
            return p.refresh().await.map(provided).ok_or(SyncError::NotSignedIn);
        }
        let s = self.session.lock().await.clone().ok_or(SyncError::NotSignedIn)?;
        if good(&s) {
            return Ok(s);
        }
        let fresh = auth::refresh(client, &s.refresh_token, now_s).await?;
        Ok(self.keep(store, fresh).await?)
    }
}

/// Whether `s` is to be refreshed before use (it expires within a minute).
fn due(s: &Session, now_s: i64) -> bool {
    s.expires_at - now_s <= REFRESH_AHEAD_S
}

async fn stored<S: Store>(store: &S) -> Result<Option<Session>, StoreError> {
    match store.meta(SESSION_KEY).await? {
        Some(v) => Ok(Some(serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("session: {e}")))?)),
        None => Ok(None),
    }
}

/// A provider's token as a session that never needs refreshing by us.
fn provided(t: ProvidedToken) -> Session {
    Session {
        access_token: t.access_token,
        refresh_token: String::new(),
        expires_at: i64::MAX,
        user_id: t.user_id,
        email: None,
    }
}
