//! Unit tests of the directory file: write, read, lookups by every key, checksum, failure modes.
