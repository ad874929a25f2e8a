//! This crate's integration tests, one module per topic, linked into a single test
//! binary (run one topic with `cargo test --test integration <module>::`).

mod sort_scan;
mod text;
mod verify;
