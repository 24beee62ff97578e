//! The `andon.state` changelog decoder on arbitrary bytes: the input is
//! one or more records separated by `andon_fuzz::RECORD_SEP` (an empty one
//! is a tombstone). Each is decoded as a frame and its body as changelog
//! operations (`checkpoint::decode_value`, `changes::decode`, `apply`),
//! and together they are resolved as a state partition
//! (`checkpoint::resolve`): never a panic, and the checks in
//! `andon_fuzz` (src/lib.rs) hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let values = andon_fuzz::split_records(bytes);
    for v in &values {
        andon_fuzz::check_changelog_value(v);
    }
    andon_fuzz::check_changelog_partition(&values);
});
