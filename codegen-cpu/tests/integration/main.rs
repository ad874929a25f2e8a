//! This crate's integration tests, one module per topic, linked into a single test
//! binary (run one topic with `cargo test --test integration <module>::`).

mod common;
mod fast_paths;
mod fusion;
mod gemm_threads;
mod lane_gemm;
mod layout;
mod ops;
mod recycling;
mod runtime;
mod scan_kernel;
mod shared_matrix;
mod vmath_accuracy;
