//! `andon::event::decode_update` on arbitrary bytes: never panics, and
//! every answer keeps the promises checked in `andon_fuzz` (src/lib.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(u) = andon_fuzz::decode_at_limits(bytes, andon::event::decode_update) {
        andon_fuzz::check_update(bytes, &u);
    }
});
