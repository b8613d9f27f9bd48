//! Encryption at rest for the IndexedDB store: what a copied browser profile would
//! otherwise give away (every row, the outbox, the session's tokens, cached files).
//!
//! **The keys.** The app gives key material: 32 bytes, or a WebCrypto `CryptoKey` for
//! HKDF (which may be non-extractable, so the app's own key never reaches this
//! module's memory). Each user's database gets its own keys, derived with HKDF-SHA256
//! with the same salt as the native store's key (`for_user`), so one user's keys open
//! nothing of another user's on a shared browser profile:
//! - an AES-256-CTR `CryptoKey` (info `ctr:` and the user), non-extractable, that
//!   encrypts every document. WebCrypto does the work (in the browser's own native
//!   code, with AES instructions where the CPU has them); the key's bytes never enter
//!   the page's memory;
//! - 32 bytes (info `mac:` and the user) that authenticate each document
//!   (HMAC-SHA256, computed here). Having them lets no one read a document: only the
//!   AES key does that;
//! - 32 bytes (info `index:` and the user) for keyed hashes (HMAC-SHA256) of the
//!   server ids the rows are found by. Those are computed here, synchronously, because
//!   a lookup's key is needed inside IndexedDB requests; the hash key decrypts nothing,
//!   it only lets someone who has it test a guess of a server id;
//! - the first format's AES-256-GCM `CryptoKey` (info: the user alone), which only
//!   opens values written before the second format (see below).
//!
//! **Sealed values** (format `v2`). A document (`d` of a row, an outbox entry, a
//! history entry; a metadata value) becomes one `Uint8Array`: its 16-byte AES-CTR
//! counter block, the ciphertext, and the first 16 bytes of HMAC-SHA256 over `v2`, the
//! length and bytes of where the value is kept (`r\0table\0local id`, `m\0key`, …),
//! the counter block and the ciphertext (encrypt-then-MAC). A file chunk is the same
//! as `[counter block, ciphertext and tag]`, since a bare `Uint8Array` is a plaintext
//! chunk. A value moved to another record, or changed, does not open. A plaintext
//! value is a string (rows, outbox, history, metadata) or bare bytes (a file chunk);
//! the store reads both, which is what lets a plaintext database be encrypted in place.
//! One object per document, not three (an array of two arrays): in Firefox a
//! restore's pages committed faster (10k rows 1.32–1.34x plaintext against 1.39–1.61x).
//!
//! **Why a keystream and not a WebCrypto call per document.** WebCrypto answers with
//! promises, and an IndexedDB transaction commits as soon as the page waits for
//! anything else, so every write used to wait for WebCrypto before its transaction
//! opened: one promise per document. In Firefox each answer costs far more than the AES
//! it carries (a write 1.3–1.5x a plaintext one, a restore 1.4–1.6x). Now the store
//! asks WebCrypto for AES-CTR keystream in segments (64 KiB, or a whole page's worth
//! when a batch needs more: one call for a page of 1,000 rows), each under a fresh
//! random 96-bit nonce with a 32-bit block counter, and a document takes the next
//! whole blocks of it, XORed here. Each keystream byte is used once: it is taken and
//! the segment's mark moved on in one synchronous step (two batches sealing at once
//! cannot interleave inside it), and what a segment has left when it is replaced is
//! dropped. So most writes seal without waiting for anything. Opening still asks
//! WebCrypto per document (its counter block says where its keystream is), after the
//! tag is checked here.
//!
//! **The first format** (`v1`, written before 2026-12-07): `[12-byte IV, AES-GCM
//! ciphertext and tag]` with additional data `v1\0` and the place. Such values still
//! open (an array with a 12-byte first element); anything written now is `v2`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use hmac::{Hmac, Mac};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use sha2::Sha256;
use supasync_core::store::StoreError;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// HKDF's salt, as the native store's (`sdk-native` `store::cipher`): the same app key
/// gives a user the same keys on every platform.
const SALT: &[u8] = b"supasync replica store v1";
/// The format written now, first in every tag's input.
const FORMAT: &str = "v2";
/// The first format, first in its values' additional data.
const FORMAT_V1: &str = "v1";
/// The first format's IV.
const IV: usize = 12;
/// AES-CTR's counter block: a 96-bit nonce, then a 32-bit block counter.
const COUNTER: usize = 16;
const NONCE: usize = 12;
const BLOCK: usize = 16;
/// The tag after the ciphertext, in both formats (AES-GCM's; HMAC-SHA256's first 16 bytes).
const TAG: usize = 16;
/// Keystream asked for at a time when a batch needs less.
const SEGMENT: usize = 64 * 1024;
/// The largest batch whose like is fetched ahead: a restore's page is about 0.7 MB; a
/// large file's chunks are sealed once, so keystream for another would be wasted.
const AHEAD_MAX: usize = 2 * 1024 * 1024;
/// How a file chunk's place begins (`records::blob_aad`): a sealed chunk is kept as
/// `[counter block, ciphertext and tag]`, since a bare `Uint8Array` is a plaintext
/// chunk; every other sealed value is one `Uint8Array`, the three one after the other
/// (one object per document: fewer for IndexedDB to clone and the page to collect).
const CHUNK_PLACE: &str = "b\0";
/// How a metadata value's place begins (`records::meta_aad`): those values are kept in
/// memory once sealed or opened (the sync cursors are read on every page).
pub(super) const META_PLACE: &str = "m\0";
/// The metadata key of the check value: a known text sealed with the store's key, so
/// a wrong key is found at open, not as a corrupt record later.
pub const CHECK_KEY: &str = "supasync.cipher";
const CHECK_TEXT: &str = "supasync replica key check v1";

/// A segment of keystream from WebCrypto under one nonce, whose blocks from `used` on
/// are still free.
struct Segment {
    nonce: [u8; NONCE],
    bytes: Vec<u8>,
    used: usize,
}

impl Segment {
    fn empty() -> Segment {
        Segment { nonce: [0; NONCE], bytes: Vec::new(), used: 0 }
    }

    fn free(&self) -> usize {
        self.bytes.len() - self.used
    }

    /// The counter block of the next free block.
    fn counter(&self) -> [u8; COUNTER] {
        let mut counter = [0u8; COUNTER];
        counter[..NONCE].copy_from_slice(&self.nonce);
        counter[NONCE..].copy_from_slice(&((self.used / BLOCK) as u32).to_be_bytes());
        counter
    }

    /// XOR `plain` with the next free blocks into `out`; they are used up (and zeroed).
    fn take(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        let stream = &mut self.bytes[self.used..self.used + plain.len()];
        out.extend(plain.iter().zip(stream.iter()).map(|(p, k)| p ^ k));
        stream.fill(0);
        self.used += blocks(plain.len()) * BLOCK;
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.bytes.fill(0);
    }
}

/// The keystream not used yet: the segment being taken from, and the next one, asked
/// for in the background when the current one runs low (so a restore's next page
/// seals without waiting for WebCrypto either).
struct Keystream {
    current: Segment,
    next: Option<Segment>,
    /// A background request is under way.
    fetching: bool,
}

/// A fresh segment of at least `len` bytes under a new random nonce.
async fn segment(key: &CryptoKey, len: usize) -> Result<Segment, StoreError> {
    let mut nonce = [0u8; NONCE];
    crypto()?.get_random_values_with_u8_array(&mut nonce).map_err(|e| js_err("drawing a random nonce", e))?;
    let mut counter = [0u8; COUNTER];
    counter[..NONCE].copy_from_slice(&nonce);
    let alg = obj(&[("name", &"AES-CTR".into()), ("counter", &bytes(&counter)), ("length", &JsValue::from(32))]);
    let zeros = vec![0u8; len.div_ceil(BLOCK) * BLOCK];
    let stream = wait(subtle()?.encrypt_with_object_and_u8_array(&alg, key, &zeros), "encrypting").await?;
    Ok(Segment { nonce, bytes: Uint8Array::new(&stream).to_vec(), used: 0 })
}

/// How much keystream to ask for when a batch needs `need` bytes: a quarter more, so
/// the next batch of about its size (a restore's next page) fits too.
fn ahead(need: usize) -> usize {
    (need + need / 4).max(SEGMENT)
}

fn blocks(len: usize) -> usize {
    len.div_ceil(BLOCK)
}

/// A user's store keys (see the module's docs).
pub struct StoreCipher {
    ctr: CryptoKey,
    /// The first format's key, for values written in it.
    gcm: CryptoKey,
    /// HMAC-SHA256 keyed for the tags and for the index hashes, cloned for each value
    /// (the key's two blocks are hashed once). The key bytes are zeroed once keyed;
    /// the hash states they leave are kept for the store's life.
    /// (Boxed: a store holds its cipher inline.)
    tag_hmac: Box<Hmac<Sha256>>,
    hash_hmac: Box<Hmac<Sha256>>,
    keystream: Rc<RefCell<Keystream>>,
    /// Metadata values opened or sealed here, by counter block: the store reads its
    /// few metadata values (sync marks, the session) again and again, and each open
    /// would wait for WebCrypto. A value is found here only once its tag has been
    /// checked, and a counter block is never used for two values, so what is kept is
    /// exactly what opening it would give.
    opened_meta: RefCell<HashMap<[u8; COUNTER], Vec<u8>>>,
}

/// How many metadata values [`StoreCipher::opened_meta`] keeps before it starts over.
const KEPT_META: usize = 256;

impl std::fmt::Debug for StoreCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCipher(…)")
    }
}

fn crypto() -> Result<web_sys::Crypto, StoreError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(|_| no_crypto())?;
    crypto.dyn_into().map_err(|_| no_crypto())
}

fn subtle() -> Result<SubtleCrypto, StoreError> {
    Ok(crypto()?.subtle())
}

fn no_crypto() -> StoreError {
    StoreError::Key("this page has no WebCrypto (crypto.subtle needs a secure context: https or localhost), so the replica cannot be encrypted".into())
}

fn js_err(what: &str, e: JsValue) -> StoreError {
    let name = Reflect::get(&e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default();
    let message = Reflect::get(&e, &"message".into()).ok().and_then(|n| n.as_string()).or_else(|| e.as_string()).unwrap_or_default();
    StoreError::Key(format!("{what}: {name} {message}").trim_end().to_string())
}

fn corrupt_record() -> StoreError {
    StoreError::Corrupt("a record does not decrypt with this replica's key: it was changed or moved outside supasync".into())
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

/// A first-format value's additional data: the format, then where the value is kept.
fn aad_v1(place: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(FORMAT_V1.len() + 1 + place.len());
    v.extend_from_slice(FORMAT_V1.as_bytes());
    v.push(0);
    v.extend_from_slice(place.as_bytes());
    v
}

async fn wait(p: Result<Promise, JsValue>, what: &str) -> Result<JsValue, StoreError> {
    let p = p.map_err(|e| js_err(what, e))?;
    JsFuture::from(p).await.map_err(|e| js_err(what, e))
}

/// HMAC-SHA256 keyed with 32 derived bytes, which are zeroed.
fn keyed_hmac(bits: &JsValue) -> Box<Hmac<Sha256>> {
    let mut k = [0u8; 32];
    Uint8Array::new(bits).copy_to(&mut k);
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(&k).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    k.fill(0);
    Box::new(mac)
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
        let aes = |name: &str| obj(&[("name", &name.into()), ("length", &JsValue::from(256))]);
        let uses = || -> Array { [JsValue::from_str("encrypt"), JsValue::from_str("decrypt")].into_iter().collect() };
        let what = "deriving the store's keys";
        // All four at once: an open waits for one WebCrypto answer, not four in turn.
        let pending: Array = [
            subtle.derive_key_with_object_and_object(&hkdf(&format!("ctr:{user_id}")), &base, &aes("AES-CTR"), false, &uses()),
            subtle.derive_key_with_object_and_object(&hkdf(user_id), &base, &aes("AES-GCM"), false, &uses()),
            subtle.derive_bits_with_object(&hkdf(&format!("mac:{user_id}")), &base, 256),
            subtle.derive_bits_with_object(&hkdf(&format!("index:{user_id}")), &base, 256),
        ]
        .into_iter()
        .map(|p| p.map(JsValue::from).map_err(|e| js_err(what, e)))
        .collect::<Result<_, _>>()?;
        let keys = Array::from(&wait(Ok(Promise::all(&pending)), what).await?);
        Ok(StoreCipher {
            ctr: keys.get(0).unchecked_into(),
            gcm: keys.get(1).unchecked_into(),
            tag_hmac: keyed_hmac(&keys.get(2)),
            hash_hmac: keyed_hmac(&keys.get(3)),
            keystream: Rc::new(RefCell::new(Keystream { current: Segment::empty(), next: None, fetching: false })),
            opened_meta: RefCell::new(HashMap::new()),
        })
    }

    /// `text`'s keyed hash, as index text (hex of the first 16 bytes of HMAC-SHA256).
    pub fn hash(&self, text: &str) -> String {
        let mut mac = (*self.hash_hmac).clone();
        mac.update(text.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        mac.finalize().into_bytes()[..16].iter().flat_map(|b| [HEX[usize::from(b >> 4)] as char, HEX[usize::from(b & 15)] as char]).collect()
    }

    /// The tag's HMAC over a value's place, counter block and ciphertext.
    fn tag_mac(&self, place: &str, counter: &[u8], ct: &[u8]) -> Hmac<Sha256> {
        let mut mac = (*self.tag_hmac).clone();
        mac.update(FORMAT.as_bytes());
        mac.update(&[0]);
        mac.update(&(place.len() as u32).to_be_bytes());
        mac.update(place.as_bytes());
        mac.update(counter);
        mac.update(ct);
        mac
    }

    /// Seal each `(where, bytes)`: a document becomes one `Uint8Array` of its counter
    /// block, ciphertext and tag, a file chunk `[counter block, ciphertext and tag]`
    /// (see the module's docs). Waits for WebCrypto only when neither the keystream
    /// left nor the next segment holds the whole batch.
    pub async fn seal_all(&self, items: &[(String, &[u8])]) -> Result<Vec<JsValue>, StoreError> {
        let need: usize = items.iter().map(|(_, p)| blocks(p.len()) * BLOCK).sum();
        let ready = {
            let mut ks = self.keystream.borrow_mut();
            if ks.current.free() < need && ks.next.as_ref().is_some_and(|n| n.free() >= need) {
                ks.current = ks.next.take().unwrap_or_else(Segment::empty);
            }
            ks.current.free() >= need
        };
        if !ready {
            let fresh = segment(&self.ctr, ahead(need)).await?;
            // Another batch may have replaced the segment meanwhile: either has room.
            let mut ks = self.keystream.borrow_mut();
            if ks.current.free() < need {
                ks.current = fresh;
            }
        }
        let mut ks = self.keystream.borrow_mut();
        let sealed = items
            .iter()
            .map(|(place, plain)| {
                // The counter block, the ciphertext, the tag.
                let mut whole = Vec::with_capacity(COUNTER + plain.len() + TAG);
                whole.extend_from_slice(&ks.current.counter());
                ks.current.take(plain, &mut whole);
                let tag = self.tag_mac(place, &whole[..COUNTER], &whole[COUNTER..]).finalize().into_bytes();
                whole.extend_from_slice(&tag[..TAG]);
                if place.starts_with(META_PLACE) {
                    let mut counter = [0u8; COUNTER];
                    counter.copy_from_slice(&whole[..COUNTER]);
                    self.keep_meta(counter, plain);
                }
                match place.starts_with(CHUNK_PLACE) {
                    true => Array::of2(&bytes(&whole[..COUNTER]), &bytes(&whole[COUNTER..])).into(),
                    false => bytes(&whole),
                }
            })
            .collect();
        // Ask for the next segment now if what is left would not hold a batch like this one.
        if ks.current.free() < need && need <= AHEAD_MAX && ks.next.is_none() && !ks.fetching {
            ks.fetching = true;
            let (key, slot, len) = (self.ctr.clone(), Rc::clone(&self.keystream), ahead(need));
            wasm_bindgen_futures::spawn_local(async move {
                // A failed request leaves no next segment: the next batch asks itself,
                // and reports the error then.
                let fresh = segment(&key, len).await.ok();
                let mut ks = slot.borrow_mut();
                ks.fetching = false;
                ks.next = fresh;
            });
        }
        Ok(sealed)
    }

    fn keep_meta(&self, counter: [u8; COUNTER], plain: &[u8]) {
        let mut kept = self.opened_meta.borrow_mut();
        if kept.len() >= KEPT_META {
            kept.clear();
        }
        kept.insert(counter, plain.to_vec());
    }

    /// Open each `(where, sealed)`, all at once: the bytes each held. A value whose tag
    /// does not match (changed, moved, or another key's) is a corrupt record.
    pub async fn open_all(&self, items: &[(String, Sealed)]) -> Result<Vec<Vec<u8>>, StoreError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let subtle = subtle()?;
        let (iv_key, aad_key, counter_key) = (JsValue::from_str("iv"), JsValue::from_str("additionalData"), JsValue::from_str("counter"));
        let gcm = obj(&[("name", &"AES-GCM".into())]);
        let ctr = obj(&[("name", &"AES-CTR".into()), ("length", &JsValue::from(32))]);
        let mut pending = Vec::with_capacity(items.len());
        // Values already known (metadata opened or sealed here), by their place in `items`.
        let mut known: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, (place, sealed)) in items.iter().enumerate() {
            let p = match sealed.iv.length() as usize {
                COUNTER => {
                    let all = sealed.to_vec();
                    let (ct, tag) = all.split_at(all.len() - TAG);
                    let mut counter = [0u8; COUNTER];
                    sealed.iv.copy_to(&mut counter);
                    self.tag_mac(place, &counter, ct).verify_truncated_left(tag).map_err(|_| corrupt_record())?;
                    if let Some(plain) = place.starts_with(META_PLACE).then(|| self.opened_meta.borrow().get(&counter).cloned()).flatten() {
                        known.push((i, plain));
                        continue;
                    }
                    let _ = Reflect::set(&ctr, &counter_key, &sealed.iv);
                    subtle.decrypt_with_object_and_u8_array(&ctr, &self.ctr, ct)
                }
                _ => {
                    let _ = Reflect::set(&gcm, &iv_key, &sealed.iv);
                    let _ = Reflect::set(&gcm, &aad_key, &bytes(&aad_v1(place)));
                    subtle.decrypt_with_object_and_buffer_source(&gcm, &self.gcm, &sealed.ciphertext)
                }
            };
            pending.push(JsValue::from(p.map_err(|e| js_err("decrypting", e))?));
        }
        let mut opened: Vec<Vec<u8>> = match pending.is_empty() {
            true => Vec::new(),
            false => {
                let done = JsFuture::from(Promise::all(&pending.into_iter().collect::<Array>())).await.map_err(|_| corrupt_record())?;
                Array::from(&done).iter().map(|b| Uint8Array::new(&b).to_vec()).collect()
            }
        };
        let was_known: Vec<usize> = known.iter().map(|(i, _)| *i).collect();
        for (i, plain) in known {
            opened.insert(i, plain);
        }
        for (i, (place, sealed)) in items.iter().enumerate() {
            if place.starts_with(META_PLACE) && sealed.iv.length() as usize == COUNTER && was_known.binary_search(&i).is_err() {
                let mut counter = [0u8; COUNTER];
                sealed.iv.copy_to(&mut counter);
                self.keep_meta(counter, &opened[i]);
            }
        }
        Ok(opened)
    }

    /// The check value to keep under [`CHECK_KEY`].
    pub async fn check_value(&self) -> Result<JsValue, StoreError> {
        let mut v = self.seal_all(&[(format!("{META_PLACE}{CHECK_KEY}"), CHECK_TEXT.as_bytes())]).await?;
        v.pop().ok_or_else(|| StoreError::Key("sealing the key check gave nothing".into()))
    }

    /// Whether `value` (kept under [`CHECK_KEY`]) was sealed with this key.
    pub async fn opens_check(&self, value: &JsValue) -> bool {
        let Some(sealed) = sealed_doc(value) else { return false };
        matches!(self.open_all(&[(format!("{META_PLACE}{CHECK_KEY}"), sealed)]).await.as_deref(), Ok([b]) if b == CHECK_TEXT.as_bytes())
    }
}

/// A sealed value as kept in IndexedDB: a document's `counter block, ciphertext and
/// tag` in one `Uint8Array`, a file chunk's `[counter block, ciphertext and tag]`, or
/// in the first format `[iv, ciphertext and tag]`.
pub struct Sealed {
    iv: Uint8Array,
    /// The ciphertext, then the 16-byte tag.
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

/// A document (a record's `d`, a metadata value) as a sealed one, if it is one
/// (plaintext documents are strings).
pub fn sealed_doc(v: &JsValue) -> Option<Sealed> {
    match v.dyn_ref::<Uint8Array>() {
        Some(whole) if whole.length() as usize >= COUNTER + TAG => Some(Sealed { iv: whole.subarray(0, COUNTER as u32), ciphertext: whole.subarray(COUNTER as u32, whole.length()).into() }),
        Some(_) => None,
        None => sealed(v),
    }
}

/// A file chunk (or a document in the first format) as a sealed one, if it is one
/// (plaintext file chunks are bare bytes).
pub fn sealed(v: &JsValue) -> Option<Sealed> {
    if !Array::is_array(v) {
        return None;
    }
    let a = Array::from(v);
    if a.length() != 2 {
        return None;
    }
    let (iv, ciphertext) = (a.get(0), a.get(1));
    let iv: Uint8Array = iv.dyn_into().ok()?;
    if !matches!(iv.length() as usize, IV | COUNTER) || !(ciphertext.is_instance_of::<js_sys::ArrayBuffer>() || ciphertext.is_instance_of::<Uint8Array>()) {
        return None;
    }
    if Uint8Array::new(&ciphertext).length() < TAG as u32 {
        return None;
    }
    Some(Sealed { iv, ciphertext: ciphertext.unchecked_into() })
}
