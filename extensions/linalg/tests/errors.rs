//! Every error case of the linalg ops, with its message: shape and dtype errors at trace
//! time, indefinite / singular matrices at run time, a missing kernel on an executor
//! without linalg.

mod common;
use common::*;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::{TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, RuntimeError, TracedTensor};

fn f64m(shape: &[usize], v: &[f64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), v.to_vec())
}

fn zeros(shape: &[usize]) -> TracedTensor {
    f64m(shape, &vec![0.0; shape.iter().product()])
}

fn assert_msg(e: impl std::fmt::Display, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

#[test]
fn non_square_inputs_are_trace_time_errors() {
    let a = zeros(&[2, 3]);
    assert_msg(
        a.cholesky().unwrap_err(),
        &["cholesky", "f64[2,3]", "square"],
    );
    assert_msg(a.inv().unwrap_err(), &["inv", "f64[2,3]", "square"]);
    assert_msg(a.det().unwrap_err(), &["det", "f64[2,3]", "square"]);
    assert_msg(a.slogdet().unwrap_err(), &["slogdet", "f64[2,3]"]);
    assert_msg(a.eigh().unwrap_err(), &["eigh", "f64[2,3]"]);
    assert_msg(a.eigvalsh().unwrap_err(), &["eigvalsh", "f64[2,3]"]);
    assert_msg(
        a.solve(&zeros(&[2, 1])).unwrap_err(),
        &["solve", "f64[2,3]"],
    );
    assert_msg(
        a.triangular_solve(&zeros(&[2, 1]), TriangularSolve::default())
            .unwrap_err(),
        &["triangular_solve", "f64[2,3]"],
    );
}

#[test]
fn mismatched_right_hand_sides_are_trace_time_errors() {
    let a = zeros(&[3, 3, 2]);
    assert_msg(
        a.solve(&zeros(&[2, 1, 2])).unwrap_err(),
        &["solve", "f64[3,3,2]", "f64[2,1,2]"],
    );
    // Batch axes must agree.
    assert_msg(
        a.solve(&zeros(&[3, 1, 4])).unwrap_err(),
        &["solve", "f64[3,1,4]"],
    );
    assert_msg(
        a.solve(&zeros(&[3, 5])).unwrap_err(),
        &["solve", "f64[3,5]"],
    );
    assert_msg(
        a.triangular_solve(
            &zeros(&[3, 2, 2]),
            TriangularSolve {
                left: false,
                ..TriangularSolve::default()
            },
        )
        .unwrap_err(),
        &["triangular_solve", "f64[3,2,2]", "columns of B"],
    );
    // Mixed dtypes are promoted as the core promotes (f32 with f64 is f64).
    let b32 = TracedTensor::from_vec_col_major(vec![3, 1, 2], vec![0.0_f32; 6]);
    assert_eq!(a.solve(&b32).unwrap().dtype().unwrap(), DType::F64);
}

#[test]
fn rank_and_dtype_errors() {
    assert_msg(zeros(&[3]).svd().unwrap_err(), &["svd", "rank >= 2"]);
    assert_msg(zeros(&[3]).qr().unwrap_err(), &["qr", "rank >= 2"]);
    let i = TracedTensor::from_vec_col_major(vec![2, 2], vec![1_i64, 0, 0, 1]);
    assert_msg(
        i.cholesky().unwrap_err(),
        &["cholesky", "i64[2,2]", "f32, f64, c32 or c64"],
    );
    assert_msg(i.svdvals().unwrap_err(), &["svdvals", "i64[2,2]"]);
    // An error recorded earlier in the trace is passed on.
    let bad = &zeros(&[2]) + &zeros(&[3]);
    assert_msg(bad.cholesky().unwrap_err(), &["add"]);
}

fn run_err(t: &TracedTensor) -> RuntimeError {
    let p = GraphCompiler::new().compile(t).unwrap();
    executor().run(&p).unwrap_err()
}

#[test]
fn indefinite_matrix_is_a_run_time_cholesky_error() {
    let a = f64m(&[2, 2], &[1.0, 2.0, 2.0, 1.0]);
    let e = run_err(&a.cholesky().unwrap());
    assert!(
        matches!(e, RuntimeError::Kernel { ref op, .. } if op == "linalg.cholesky"),
        "{e:?}"
    );
    assert_msg(&e, &["linalg.cholesky", "not positive definite", "order 2"]);
    // In a batch, the failing element is named.
    let b = f64m(&[1, 1, 3], &[1.0, 4.0, -1.0]);
    assert_msg(
        run_err(&b.cholesky().unwrap()),
        &["not positive definite", "batch element 2"],
    );
}

#[test]
fn singular_matrix_is_a_run_time_solve_and_inv_error() {
    let a = f64m(&[2, 2], &[1.0, 2.0, 2.0, 4.0]);
    let b = f64m(&[2, 1], &[1.0, 1.0]);
    assert_msg(
        run_err(&a.solve(&b).unwrap()),
        &["linalg.solve", "singular"],
    );
    assert_msg(run_err(&a.inv().unwrap()), &["linalg.solve", "singular"]);
    let t = f64m(&[2, 2], &[1.0, 1.0, 0.0, 0.0]);
    assert_msg(
        run_err(&t.triangular_solve(&b, TriangularSolve::default()).unwrap()),
        &["linalg.triangular_solve", "singular", "(1, 1)"],
    );
    // A singular matrix still has an LU factorization and a zero determinant.
    let d = run(&[&a.det().unwrap()]);
    assert_eq!(d[0].as_slice::<f64>().unwrap(), &[0.0]);
}

#[test]
fn executors_without_linalg_report_the_missing_op_and_are_independent() {
    let a = traced(
        DType::F64,
        &[2, 2],
        &[c(4.0, 0.0), c(0.0, 0.0), c(0.0, 0.0), c(9.0, 0.0)],
    );
    let program = GraphCompiler::new()
        .compile(&a.cholesky().unwrap())
        .unwrap();
    let mut with = executor();
    let mut without = GraphExecutor::new(CpuBackend::new());
    let e = without.run(&program).unwrap_err();
    assert!(
        matches!(e, RuntimeError::MissingKernel { ref op } if op == "linalg.cholesky"),
        "{e:?}"
    );
    assert_msg(&e, &["linalg.cholesky", "register_extension"]);
    let l = with.run(&program).unwrap();
    assert_eq!(l.as_slice::<f64>().unwrap(), &[2.0, 0.0, 0.0, 3.0]);
    // Registering on one executor did not change the other.
    assert!(without.run(&program).is_err());
    assert!(without.extensions().names().is_empty());
    // Registering twice on one executor is an error naming the op.
    let e = with
        .register_extension(tenferro_linalg::register_runtime)
        .unwrap_err();
    assert_msg(e, &["linalg.cholesky", "already registered"]);
}

#[test]
fn missing_ad_rules_are_reported() {
    let a = TracedTensor::input(DType::F64, &[2, 2]);
    let loss = a.cholesky().unwrap().sum();
    let plain = tenferro_ad::AdContext::builder().build().unwrap();
    let e = plain.grad(&loss, &a).unwrap_err();
    assert_msg(e, &["linalg.cholesky", "with_extension_rules"]);
}

/// Trace-time errors name the caller's line (not a line of the linalg crate), for methods
/// that check shapes themselves and for those whose inner ops fail.
#[test]
fn trace_time_errors_name_the_callers_line() {
    let here = |line: u32| format!("(at {}:{line}:", file!());
    let a = zeros(&[2, 3]);
    let (e, line) = (a.cholesky().unwrap_err(), line!());
    assert_msg(e, &[&here(line)]);
    let b = zeros(&[5, 2]);
    let (e, line) = (zeros(&[2, 2]).solve(&b).unwrap_err(), line!());
    assert_msg(e, &[&here(line)]);
    let i = TracedTensor::input(DType::I64, &[3, 3]);
    let (e, line) = (i.svd().unwrap_err(), line!());
    assert_msg(e, &[&here(line)]);
    let (e, line) = (zeros(&[2, 2]).pinv_with_rtol(-1.0).unwrap_err(), line!());
    assert_msg(e, &["pinv", &here(line)]);
}
