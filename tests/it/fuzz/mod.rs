//! Fuzzing of the hand-written readers and hash parsers, and a differential test of the JSON
//! reader against serde_json (issue #14, finding 10).
//!
//! The readers parse untrusted bytes (exports of other systems) with their own code: SIMD/SWAR
//! string scans, a streaming record splitter, a csv-core row reader, vendor adapters, and a
//! dozen hash notations. This module runs a bounded campaign inside `cargo test`: mutations
//! of the seed corpus (`samples/`, `tests/fixtures/`), random bytes and token soups through every
//! reader with random options and buffer sizes, mutated reference hashes through every hash
//! parser, and generated JSON documents compared with serde_json's reading of them. The
//! properties themselves are in [`check`], shared with the libFuzzer targets in `fuzz/`. The CSV
//! reader is compared with the `csv` crate in the same way.
//!
//! `COGNITO_FUZZ_CASES=N` sets the cases per property (default: a quick run); with
//! `COGNITO_FUZZ_SECONDS=S` each property runs batches of random cases for about `S` seconds
//! (`scripts/fuzz` uses both for longer campaigns). Findings are fixed with a regression test
//! in [`regressions`].

mod check;
mod corpus;
mod csv_differential;
mod hashes;
mod json_differential;
mod mutate;
mod readers;
mod regressions;
mod runner;
