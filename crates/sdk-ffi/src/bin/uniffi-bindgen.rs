//! uniffi's binding generator, built from this workspace so its version always matches
//! the library's: `cargo run -p supasync-ffi --bin uniffi-bindgen -- generate --library …`.
fn main() {
    uniffi::uniffi_bindgen_main()
}
