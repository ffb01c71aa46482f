//! libFuzzer target: the `json` reader (see `tests/it/fuzz/check.rs` for the properties).
#![no_main]

#[path = "../../tests/it/fuzz/check.rs"]
#[allow(dead_code)] // a target uses a part of the properties
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::fuzz_reader(
    cognito_migrate::source::Format::Json,
    data
));
