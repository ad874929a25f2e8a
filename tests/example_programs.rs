//! The five programs of the guides run (small sizes) and check their own results.

#[path = "../examples/debugging.rs"]
mod debugging;
#[path = "../examples/gp_hvp.rs"]
mod gp_hvp;
#[path = "../examples/ground_state.rs"]
mod ground_state;
#[path = "../examples/mlp_classifier.rs"]
mod mlp_classifier;
#[path = "../examples/mps_norm.rs"]
mod mps_norm;

#[test]
fn mps_norm_and_its_gradient() {
    mps_norm::main().unwrap();
}

#[test]
fn variational_ground_state_reaches_the_eigh_ground_energy() {
    ground_state::main().unwrap();
}

#[test]
fn mlp_classifier_trains_the_same_in_traced_and_eager_mode() {
    mlp_classifier::main().unwrap();
}

#[test]
fn gp_regression_hvp_matches_finite_differences() {
    gp_hvp::main().unwrap();
}

#[test]
fn debugging_reports_the_bad_op_and_prints_the_ir() {
    debugging::main().unwrap();
}
