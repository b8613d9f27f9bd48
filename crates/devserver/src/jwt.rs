//! JSON Web Tokens as Supabase uses them: HS256 with the project secret.
//!
//! By default the secret and the two API keys are the Supabase CLI's well-known demo
//! values, so code written against `supabase start` works unchanged. Verification is
//! strict: only HS256 is accepted (so `alg: none` and algorithm-confusion tokens fail),
//! `exp` is required and checked with no leeway, and `role` must be present.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

/// The Supabase CLI's demo JWT secret.
pub const DEMO_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";
/// The Supabase CLI's demo anon key (signed with [`DEMO_SECRET`]).
pub const DEMO_ANON_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0";
/// The Supabase CLI's demo service-role key (signed with [`DEMO_SECRET`]).
pub const DEMO_SERVICE_ROLE_KEY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6InNlcnZpY2Vfcm9sZSIsImV4cCI6MTk4MzgxMjk5Nn0.EGIM96RAZx35lJzdJsyH-qQwv8Hdp7fsn3W0YpN81IU";

/// Why a token was refused. The variants map onto PostgREST's PGRST301/PGRST303 and
/// Realtime's MalformedJWT / JwtSignatureError / InvalidJWTToken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("Expected 3 parts in JWT; got {0}")]
    Malformed(usize),
    #[error("JWT cryptographic operation failed")]
    BadSignature,
    #[error("JWT expired")]
    Expired { seconds_ago: i64 },
    /// The token does not decode (bad base64, bad JSON, unknown or `none` algorithm).
    #[error("{0}")]
    Invalid(String),
    /// It decodes and verifies, but its claims are not acceptable.
    #[error("{0}")]
    Claims(String),
}

/// The signing keys of one server.
#[derive(Clone)]
pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    pub anon_key: String,
    pub service_role_key: String,
    /// Tokens issued (`iat`) before this second count as expired: tests use it to make
    /// every session's access token expire at once ([`crate::DevServer::expire_tokens`]).
    expired_before: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys { .. }")
    }
}

impl JwtKeys {
    /// Keys for `secret`; the API keys are the demo ones when the secret is the demo one.
    pub fn new(secret: &str) -> JwtKeys {
        let enc = EncodingKey::from_secret(secret.as_bytes());
        let dec = DecodingKey::from_secret(secret.as_bytes());
        let mut keys = JwtKeys {
            enc,
            dec,
            anon_key: String::new(),
            service_role_key: String::new(),
            expired_before: Default::default(),
        };
        if secret == DEMO_SECRET {
            keys.anon_key = DEMO_ANON_KEY.into();
            keys.service_role_key = DEMO_SERVICE_ROLE_KEY.into();
        } else {
            let exp = 1983812996;
            keys.anon_key = keys.sign(&json!({"iss":"supabase-demo","role":"anon","exp":exp}));
            keys.service_role_key = keys.sign(&json!({"iss":"supabase-demo","role":"service_role","exp":exp}));
        }
        keys
    }

    /// Sign claims with HS256.
    pub fn sign(&self, claims: &Value) -> String {
        // Signing a JSON value with a valid HMAC key cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc).unwrap_or_default()
    }

    /// Verify a token and return its claims. Requires `exp` (not passed) and `role`.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        let claims = self.decode(token, "Fields `role` and `exp` are required in JWT")?;
        let cutoff = self.expired_before.load(std::sync::atomic::Ordering::Relaxed);
        if claims.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat < cutoff) {
            return Err(JwtError::Expired { seconds_ago: 0 });
        }
        match claims.get("role") {
            Some(Value::String(r)) if !r.is_empty() => {}
            _ => return Err(JwtError::Claims("Fields `role` and `exp` are required in JWT".into())),
        }
        Ok(claims)
    }

    /// Verify a token this server signed for its own use (Storage's signed URLs):
    /// signature and `exp` only, no `role` required.
    pub fn verify_own(&self, token: &str) -> Result<Map<String, Value>, JwtError> {
        self.decode(token, "the token has no exp")
    }

    /// Check the shape, the HS256 signature and `exp` (not passed); `no_exp` is the
    /// message when it has none.
    fn decode(&self, token: &str, no_exp: &str) -> Result<Map<String, Value>, JwtError> {
        let parts = token.split('.').count();
        if parts != 3 {
            return Err(JwtError::Malformed(parts));
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.validate_aud = false;
        v.validate_exp = false; // checked below, to report how long ago it expired
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.dec, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidAlgorithm | K::InvalidAlgorithmName | K::InvalidKeyFormat => {
                    JwtError::BadSignature
                }
                _ => JwtError::Invalid(format!("invalid JWT: {e}")),
            }
        })?;
        let claims = data.claims;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| JwtError::Claims(no_exp.into()))?;
        let now = now_secs();
        if exp <= now {
            return Err(JwtError::Expired { seconds_ago: now - exp });
        }
        Ok(claims)
    }

    /// From now on, every token issued before this second is expired (refresh tokens
    /// stay valid, as when access tokens run out on their own).
    pub fn expire_issued_tokens(&self) {
        self.expired_before.store(now_secs(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether `key` is the service-role key.
    pub fn is_service_key(&self, key: &str) -> bool {
        !key.is_empty() && key == self.service_role_key
    }

    /// Whether `key` is one of the two API keys (what the gateway accepts as `apikey`).
    pub fn is_api_key(&self, key: &str) -> bool {
        key == self.anon_key || key == self.service_role_key
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_keys_verify_with_demo_secret() {
        let k = JwtKeys::new(DEMO_SECRET);
        assert_eq!(k.verify(DEMO_ANON_KEY).unwrap()["role"], "anon");
        assert_eq!(k.verify(DEMO_SERVICE_ROLE_KEY).unwrap()["role"], "service_role");
    }

    #[test]
    fn refuses_none_forged_expired_and_roleless() {
        let k = JwtKeys::new(DEMO_SECRET);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(br#"{"role":"service_role","exp":4000000000}"#)
        );
        assert!(matches!(k.verify(&none), Err(JwtError::Invalid(_))));
        let other = JwtKeys::new("another-secret-that-is-at-least-32-chars!!");
        let forged = other.sign(&json!({"role":"service_role","exp":4000000000i64}));
        assert_eq!(k.verify(&forged), Err(JwtError::BadSignature));
        let expired = k.sign(&json!({"role":"authenticated","exp":now_secs() - 10}));
        assert!(matches!(k.verify(&expired), Err(JwtError::Expired { seconds_ago }) if seconds_ago >= 10));
        let roleless = k.sign(&json!({"exp":now_secs() + 100}));
        assert!(matches!(k.verify(&roleless), Err(JwtError::Claims(_))));
        assert_eq!(k.verify("abc"), Err(JwtError::Malformed(1)));
    }
}
