//! This crate's integration tests, one module per topic, linked into a single test
//! binary (run one topic with `cargo test --test integration <module>::`).

mod egraph_pass;
mod egraph_rules;
mod egraph_windows;
mod ir_files;
mod o1_passes;
mod o1_property;
mod sort_scan_egraph;
