//! The tenferro crate's integration tests, one module per topic, linked into a single
//! test binary (one link instead of thirty; run one topic with
//! `cargo test --test integration <module>::`).

mod activations;
mod ad_edge_cases;
mod arith;
mod attack_regressions;
mod complex_inverse_trig;
mod concise_api;
mod eager_contract;
mod example_programs;
mod fuzz;
mod horizontal_dot;
mod i32;
mod interop;
mod jax_vocab;
mod jit;
mod linalg_edges;
mod nn_init;
mod no_panic;
mod op_table;
mod optim;
mod promotion;
mod random;
mod reductions;
mod reference_values;
mod resource_limits;
mod runtime_errors;
mod spec_autodiff_guide;
mod structural;
mod upstream_parity;
mod vmap_property;
mod xla;
mod xla_workloads;
