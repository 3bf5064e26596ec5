//! fogctl library.
