//! Every reader against the properties of [`check::read_checked`]: the seeds as they are, then
//! mutated seeds, random bytes and token soups, each with random options and buffer sizes.

use super::check::{buffer_from_byte, options_from_byte, read_checked};
use super::corpus::seeds;
use super::mutate::{mutated_seed, random_bytes, token_soup, ReaderCase};
use super::runner::run;

fn read_case(case: ReaderCase) -> Result<(), String> {
    read_checked(
        case.format,
        &case.input,
        &options_from_byte(case.options),
        buffer_from_byte(case.buffer),
    )
    .map(|_| ())
}

#[test]
fn every_seed_reads_to_its_end_with_records_at_any_buffer_size() {
    for seed in seeds() {
        for buffer in [0, 1, 7, 64] {
            let out = read_checked(
                seed.format,
                &seed.bytes,
                &Default::default(),
                buffer_from_byte(buffer),
            )
            .unwrap_or_else(|e| panic!("{} (buffer {buffer}): {e}", seed.name));
            assert!(
                out.opened && out.records > 0 && !out.fatal,
                "{} (buffer {buffer}): {out:?}",
                seed.name
            );
        }
    }
}

#[test]
fn mutated_seeds_keep_the_reader_properties() {
    run("mutated seeds", 400, mutated_seed(), read_case);
}

#[test]
fn random_bytes_keep_the_reader_properties() {
    run("random bytes", 300, random_bytes(), read_case);
}

#[test]
fn token_soups_keep_the_reader_properties() {
    run("token soups", 300, token_soup(), read_case);
}
