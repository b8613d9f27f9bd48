//! Encryption at rest for the IndexedDB store: what a copied browser profile would
//! otherwise give away (every row, the outbox, the session's tokens, cached files).
//!
//! **The keys.** The app gives key material: 32 bytes, or a WebCrypto `CryptoKey` for
//! HKDF (which may be non-extractable, so the app's own key never reaches this
//! module's memory). Each user's database gets its own keys, derived with HKDF-SHA256
//! with the same salt and info as the native store's key (`for_user`), so one user's
//! keys open nothing of another user's on a shared browser profile:
//! - an AES-256-GCM `CryptoKey`, non-extractable, for every document. WebCrypto does
//!   the work (in the browser's own native code, with AES instructions where the CPU
//!   has them); the key's bytes never enter the page's memory;
//! - 32 bytes for keyed hashes (HMAC-SHA256) of the server ids the rows are found by.
//!   Those are computed here, synchronously, because a lookup's key is needed inside
//!   IndexedDB requests; the hash key decrypts nothing, it only lets someone who has it
//!   test a guess of a server id.
//!
//! **Sealed values.** A document (`d` of a row, an outbox entry, a history entry; a
//! metadata value; a chunk of a file) becomes a `Uint8Array`: a format byte, a random
//! 96-bit IV, then AES-GCM's ciphertext and tag. The additional data binds it to where
//! it is kept (`r\0table\0local id`, `m\0key`, …), so a sealed value moved to another
//! record does not open. A plaintext value is a string (rows, outbox, history,
//! metadata) or a bare chunk; the store reads both, which is what lets a plaintext
//! database be encrypted in place and an encrypted one opened.
//!
//! **Timing.** WebCrypto answers with promises, and an IndexedDB transaction commits
//! as soon as the page waits for anything else. So a write seals every value of its
//! batch first (all at once, `Promise.all`) and then opens its transaction; a read
//! finishes its transaction and then opens what it got.

use std::cell::RefCell;

use hmac::{Hmac, Mac};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use sha2::Sha256;
use supasync_core::store::StoreError;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// HKDF's salt, as the native store's (`sdk-native` `store::cipher`): the same app key
/// gives a user the same document key on every platform.
const SALT: &[u8] = b"supasync replica store v1";
/// The first byte of a sealed value: this format (AES-256-GCM, 12-byte IV, 16-byte tag).
const FORMAT: u8 = 1;
const IV: usize = 12;
/// What a sealed value adds to the bytes it holds.
pub const OVERHEAD: usize = 1 + IV + 16;
/// The metadata key of the check value: a known text sealed with the store's key, so
/// a wrong key is found at open, not as a corrupt record later.
pub const CHECK_KEY: &str = "supasync.cipher";
const CHECK_TEXT: &str = "supasync replica key check v1";

/// A user's store keys (see the module's docs).
pub struct StoreCipher {
    key: CryptoKey,
    /// Zeroed on drop.
    hash_key: RefCell<[u8; 32]>,
}

impl Drop for StoreCipher {
    fn drop(&mut self) {
        self.hash_key.borrow_mut().fill(0);
    }
}

impl std::fmt::Debug for StoreCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCipher(…)")
    }
}

fn subtle() -> Result<SubtleCrypto, StoreError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| no_crypto())?;
    let crypto: web_sys::Crypto = crypto.dyn_into().map_err(|_| no_crypto())?;
    Ok(crypto.subtle())
}

fn no_crypto() -> StoreError {
    StoreError::Key("this page has no WebCrypto (crypto.subtle needs a secure context: https or localhost), so the replica cannot be encrypted".into())
}

fn js_err(what: &str, e: JsValue) -> StoreError {
    let name = Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    let message = Reflect::get(&e, &"message".into()).ok().and_then(|n| n.as_string()).or_else(|| e.as_string()).unwrap_or_default();
    StoreError::Key(format!("{what}: {name} {message}").trim_end().to_string())
}

fn obj(fields: &[(&str, &JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a data property on a plain object cannot throw.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

fn bytes(b: &[u8]) -> JsValue {
    Uint8Array::from(b).into()
}

async fn wait(p: Result<Promise, JsValue>, what: &str) -> Result<JsValue, StoreError> {
    let p = p.map_err(|e| js_err(what, e))?;
    JsFuture::from(p).await.map_err(|e| js_err(what, e))
}

impl StoreCipher {
    /// The keys of `user_id`'s store from the app's key material: 32 bytes (a
    /// `Uint8Array`) or an HKDF `CryptoKey` with the `deriveKey` and `deriveBits` usages.
    pub async fn for_user(material: &JsValue, user_id: &str) -> Result<StoreCipher, StoreError> {
        let subtle = subtle()?;
        let usages: Array = [JsValue::from_str("deriveKey"), JsValue::from_str("deriveBits")].into_iter().collect();
        let base: CryptoKey = if let Some(k) = material.dyn_ref::<CryptoKey>() {
            let alg = Reflect::get(&k.algorithm().map(JsValue::from).unwrap_or(JsValue::UNDEFINED), &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
            if alg != "HKDF" {
                return Err(StoreError::Key(format!(
                    "encryptionKey is a CryptoKey for {alg}, not for HKDF: import the key material with crypto.subtle.importKey('raw', bytes, 'HKDF', false, ['deriveKey', 'deriveBits'])"
                )));
            }
            k.clone()
        } else if let Some(raw) = material.dyn_ref::<Uint8Array>() {
            if raw.length() != 32 {
                return Err(StoreError::Key(format!("encryptionKey must be 32 bytes, not {}", raw.length())));
            }
            let alg = obj(&[("name", &"HKDF".into())]);
            wait(subtle.import_key_with_object("raw", raw, &alg, false, &usages), "importing the encryption key").await?.unchecked_into()
        } else {
            return Err(StoreError::Key("encryptionKey must be a Uint8Array of 32 bytes or an HKDF CryptoKey".into()));
        };
        let hkdf = |info: &str| obj(&[("name", &"HKDF".into()), ("hash", &"SHA-256".into()), ("salt", &bytes(SALT)), ("info", &bytes(info.as_bytes()))]);
        let aes = obj(&[("name", &"AES-GCM".into()), ("length", &JsValue::from(256))]);
        let uses: Array = [JsValue::from_str("encrypt"), JsValue::from_str("decrypt")].into_iter().collect();
        let key = wait(subtle.derive_key_with_object_and_object(&hkdf(user_id), &base, &aes, false, &uses), "deriving the store's key").await?;
        let bits = wait(subtle.derive_bits_with_object(&hkdf(&format!("index:{user_id}")), &base, 256), "deriving the store's hash key").await?;
        let mut hash_key = [0u8; 32];
        Uint8Array::new(&bits).copy_to(&mut hash_key);
        Ok(StoreCipher { key: key.unchecked_into(), hash_key: RefCell::new(hash_key) })
    }

    /// `text`'s keyed hash, as index text (hex of the first 16 bytes of HMAC-SHA256).
    pub fn hash(&self, text: &str) -> String {
        let key = self.hash_key.borrow();
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key[..]) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(text.as_bytes());
        mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Seal each `(where, bytes)` with its additional data, all at once.
    pub async fn seal_all(&self, items: &[(String, &[u8])]) -> Result<Vec<JsValue>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let subtle = subtle()?;
        let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| no_crypto())?.unchecked_into();
        // One call for every IV of the batch (getRandomValues takes up to 64 KiB).
        let mut ivs = vec![0u8; IV * items.len()];
        for chunk in ivs.chunks_mut(65_536 / IV * IV) {
            crypto.get_random_values_with_u8_array(chunk).map_err(|e| js_err("drawing random IVs", e))?;
        }
        let mut pending = Vec::with_capacity(items.len());
        for (i, (aad, plain)) in items.iter().enumerate() {
            let iv = &ivs[i * IV..(i + 1) * IV];
            let alg = obj(&[("name", &"AES-GCM".into()), ("iv", &bytes(iv)), ("additionalData", &bytes(aad.as_bytes()))]);
            pending.push(JsValue::from(subtle.encrypt_with_object_and_u8_array(&alg, &self.key, plain).map_err(|e| js_err("encrypting", e))?));
        }
        let done = wait(Ok(Promise::all(&pending.into_iter().collect::<Array>())), "encrypting").await?;
        Ok(Array::from(&done)
            .iter()
            .enumerate()
            .map(|(i, ct)| {
                let ct = Uint8Array::new(&ct);
                let out = Uint8Array::new_with_length(1 + IV as u32 + ct.length());
                out.set_index(0, FORMAT);
                out.set(&Uint8Array::from(&ivs[i * IV..(i + 1) * IV]), 1);
                out.set(&ct, 1 + IV as u32);
                out.into()
            })
            .collect())
    }

    /// Open each `(where, sealed)`, all at once: the bytes each held.
    pub async fn open_all(&self, items: &[(String, Uint8Array)]) -> Result<Vec<Vec<u8>>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let subtle = subtle()?;
        let mut pending = Vec::with_capacity(items.len());
        for (aad, sealed) in items {
            if sealed.length() < OVERHEAD as u32 || sealed.get_index(0) != FORMAT {
                return Err(StoreError::Corrupt(format!("an encrypted record ({}) is not in a format this build reads", aad.replace('\0', "/"))));
            }
            let alg = obj(&[("name", &"AES-GCM".into()), ("iv", &sealed.subarray(1, 1 + IV as u32).into()), ("additionalData", &bytes(aad.as_bytes()))]);
            let ct = sealed.subarray(1 + IV as u32, sealed.length()).to_vec();
            pending.push(JsValue::from(subtle.decrypt_with_object_and_u8_array(&alg, &self.key, &ct).map_err(|e| js_err("decrypting", e))?));
        }
        let done = JsFuture::from(Promise::all(&pending.into_iter().collect::<Array>()))
            .await
            .map_err(|_| StoreError::Corrupt("a record does not decrypt with this replica's key: it was changed or moved outside supasync".into()))?;
        Ok(Array::from(&done).iter().map(|b| Uint8Array::new(&b).to_vec()).collect())
    }

    /// The check value to keep under [`CHECK_KEY`].
    pub async fn check_value(&self) -> Result<JsValue, StoreError> {
        let mut v = self.seal_all(&[(format!("m\0{CHECK_KEY}"), CHECK_TEXT.as_bytes())]).await?;
        v.pop().ok_or_else(|| StoreError::Key("sealing the key check gave nothing".into()))
    }

    /// Whether `value` (kept under [`CHECK_KEY`]) was sealed with this key.
    pub async fn opens_check(&self, value: &JsValue) -> bool {
        let Some(sealed) = sealed(value) else { return false };
        matches!(self.open_all(&[(format!("m\0{CHECK_KEY}"), sealed)]).await.as_deref(), Ok([b]) if b == CHECK_TEXT.as_bytes())
    }
}

/// The value as a sealed one, if it is one (plaintext values are strings).
pub fn sealed(v: &JsValue) -> Option<Uint8Array> {
    if v.is_instance_of::<Uint8Array>() {
        Some(v.clone().unchecked_into())
    } else if v.is_instance_of::<js_sys::ArrayBuffer>() {
        Some(Uint8Array::new(v))
    } else {
        None
    }
}
