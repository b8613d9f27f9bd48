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
//! metadata value; a chunk of a file) becomes a two-element array: a random 96-bit IV
//! (a `Uint8Array`) and AES-GCM's ciphertext with its tag (the `ArrayBuffer`
//! WebCrypto gives, stored as it came). The additional data names the format (`v1`)
//! and binds the value to where it is kept (`r\0table\0local id`, `m\0key`, …), so a
//! sealed value moved to another record does not open. A plaintext value is a string
//! (rows, outbox, history, metadata) or bare bytes (a file chunk); the store reads
//! both, which is what lets a plaintext database be encrypted in place.
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
/// This format's version, first in every sealed value's additional data: a later
/// format gives its values other additional data, so they never open as this one's.
const FORMAT: &str = "v1";
const IV: usize = 12;
/// AES-GCM's tag, after the ciphertext.
const TAG: usize = 16;
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

/// A value's additional data: the format, then where the value is kept.
fn aad_bytes(place: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(FORMAT.len() + 1 + place.len());
    v.extend_from_slice(FORMAT.as_bytes());
    v.push(0);
    v.extend_from_slice(place.as_bytes());
    v
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

    /// Seal each `(where, bytes)` with its additional data, all at once: each becomes
    /// `[iv, ciphertext]` (see the module's docs).
    pub async fn seal_all(&self, items: &[(String, &[u8])]) -> Result<Vec<JsValue>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let subtle = subtle()?;
        let crypto: web_sys::Crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| no_crypto())?.unchecked_into();
        // Every IV of the batch drawn in JavaScript (getRandomValues takes up to 64 KiB
        // at a time); each call below takes a copy of its own (WebCrypto copies its
        // arguments as it is called), so one parameter object serves them all.
        let ivs = Uint8Array::new_with_length((IV * items.len()) as u32);
        let step = (65_536 / IV * IV) as u32;
        let mut at = 0;
        while at < ivs.length() {
            crypto.get_random_values_with_array_buffer_view(&ivs.subarray(at, (at + step).min(ivs.length()))).map_err(|e| js_err("drawing random IVs", e))?;
            at += step;
        }
        let (iv_key, aad_key) = (JsValue::from_str("iv"), JsValue::from_str("additionalData"));
        let alg = obj(&[("name", &"AES-GCM".into())]);
        let mut pending = Vec::with_capacity(items.len());
        let mut kept_ivs = Vec::with_capacity(items.len());
        for (i, (aad, plain)) in items.iter().enumerate() {
            let iv = ivs.slice((i * IV) as u32, ((i + 1) * IV) as u32);
            let _ = Reflect::set(&alg, &iv_key, &iv);
            let _ = Reflect::set(&alg, &aad_key, &bytes(&aad_bytes(aad)));
            pending.push(JsValue::from(subtle.encrypt_with_object_and_u8_array(&alg, &self.key, plain).map_err(|e| js_err("encrypting", e))?));
            kept_ivs.push(iv);
        }
        let done = wait(Ok(Promise::all(&pending.into_iter().collect::<Array>())), "encrypting").await?;
        Ok(Array::from(&done).iter().zip(kept_ivs).map(|(ct, iv)| Array::of2(&iv, &ct).into()).collect())
    }

    /// Open each `(where, sealed)`, all at once: the bytes each held.
    pub async fn open_all(&self, items: &[(String, Sealed)]) -> Result<Vec<Vec<u8>>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let subtle = subtle()?;
        let (iv_key, aad_key) = (JsValue::from_str("iv"), JsValue::from_str("additionalData"));
        let alg = obj(&[("name", &"AES-GCM".into())]);
        let mut pending = Vec::with_capacity(items.len());
        for (aad, sealed) in items {
            let _ = Reflect::set(&alg, &iv_key, &sealed.iv);
            let _ = Reflect::set(&alg, &aad_key, &bytes(&aad_bytes(aad)));
            pending.push(JsValue::from(subtle.decrypt_with_object_and_buffer_source(&alg, &self.key, &sealed.ciphertext).map_err(|e| js_err("decrypting", e))?));
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

/// A sealed value: `[iv, ciphertext]` as kept in IndexedDB.
pub struct Sealed {
    iv: JsValue,
    /// AES-GCM's output: the ciphertext, then the 16-byte tag.
    pub ciphertext: Object,
}

impl Sealed {
    /// How many bytes it holds once opened.
    pub fn plain_len(&self) -> usize {
        (Uint8Array::new(&self.ciphertext).length() as usize).saturating_sub(TAG)
    }

    /// The ciphertext's bytes (to tell whether a record changed).
    pub fn to_vec(&self) -> Vec<u8> {
        Uint8Array::new(&self.ciphertext).to_vec()
    }
}

/// The value as a sealed one, if it is one (plaintext values are strings, and
/// plaintext file chunks bare bytes).
pub fn sealed(v: &JsValue) -> Option<Sealed> {
    if !Array::is_array(v) {
        return None;
    }
    let a = Array::from(v);
    if a.length() != 2 {
        return None;
    }
    let (iv, ciphertext) = (a.get(0), a.get(1));
    if !iv.is_instance_of::<Uint8Array>() || !(ciphertext.is_instance_of::<js_sys::ArrayBuffer>() || ciphertext.is_instance_of::<Uint8Array>()) {
        return None;
    }
    Some(Sealed { iv, ciphertext: ciphertext.unchecked_into() })
}
