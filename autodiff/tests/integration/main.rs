//! This crate's integration tests, one module per topic, linked into a single test
//! binary (run one topic with `cargo test --test integration <module>::`).

mod checkpoint;
mod common;
mod custom;
mod eager;
mod eager_errors;
mod eager_residuals;
mod eager_vs_traced;
mod errors;
mod extension_rules;
mod higher_order;
mod jacobian;
mod memory;
mod method_syntax;
mod rules_fd;
mod semantics;
mod sort_scan_grad;
mod vmap;
