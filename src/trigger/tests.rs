//! Unit tests of the trigger handler.
