//! libFuzzer target: every password hash parser (see `tests/fuzz/check.rs` for the properties).
#![no_main]

#[path = "../../tests/fuzz/check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::fuzz_hash(data));
