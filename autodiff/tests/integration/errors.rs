//! Error cases of the transforms, each with its message.

use tenferro_ad::{AdContext, AdError, TracedTensorAdExt};
use tenferro_runtime::{DType, TracedTensor};

fn x3() -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])
}

#[test]
fn grad_of_a_non_scalar_is_an_error_saying_so() {
    let x = x3();
    let err = x.exp().grad(&x).unwrap_err();
    assert_eq!(
        err,
        AdError::NonScalarLoss {
            ty: "f64[3]".into()
        }
    );
    let msg = err.to_string();
    assert!(
        msg.contains("grad")
            && msg.contains("scalar")
            && msg.contains("f64[3]")
            && msg.contains("vjp"),
        "{msg}"
    );
}

#[test]
fn bad_cotangent_shape_names_the_transform_and_both_types() {
    let x = x3();
    let ct = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 1.0]);
    let err = x.exp().vjp(&x, &ct).unwrap_err();
    assert!(
        matches!(
            err,
            AdError::BadArgument {
                transform: "vjp",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("vjp") && msg.contains("f64[2]") && msg.contains("f64[3]"),
        "{msg}"
    );
}

#[test]
fn bad_cotangent_dtype_is_an_error() {
    let x = x3();
    let ct = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f32, 1.0, 1.0]);
    let msg = x.exp().vjp(&x, &ct).unwrap_err().to_string();
    assert!(msg.contains("f32[3]") && msg.contains("f64[3]"), "{msg}");
}

#[test]
fn bad_tangent_type_names_the_transform_and_both_types() {
    let x = x3();
    let t = TracedTensor::from_vec_col_major(vec![1, 3], vec![1.0_f64, 1.0, 1.0]);
    let err = x.exp().jvp(&x, &t).unwrap_err();
    assert!(
        matches!(
            err,
            AdError::BadArgument {
                transform: "jvp",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("f64[1,3]") && msg.contains("f64[3]"), "{msg}");
    let err = AdContext::new()
        .jvp_many(&x.exp(), &[&x], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 inputs but 0 tangents"), "{err}");
}

#[test]
fn differentiating_with_respect_to_integers_is_not_differentiable() {
    let i = TracedTensor::from_vec_col_major(vec![2], vec![1_i64, 2]);
    let loss = i.convert(DType::F64).unwrap().sum();
    let err = loss.grad(&i).unwrap_err();
    assert!(matches!(err, AdError::NotDifferentiable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("i64[2]") && msg.contains("differentiated"),
        "{msg}"
    );
    let b = TracedTensor::from_vec_col_major(vec![1], vec![true]);
    let y = b.convert(DType::F64).unwrap();
    let err = y.jvp(&b, &b).unwrap_err();
    assert!(matches!(err, AdError::NotDifferentiable(_)), "{err:?}");
}

#[test]
fn tracing_errors_are_reported() {
    let x = x3();
    let y = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let bad = (&x + &y).sum();
    let msg = bad.grad(&x).unwrap_err().to_string();
    assert!(
        msg.contains("add") && msg.contains("f64[3]") && msg.contains("f64[2]"),
        "{msg}"
    );
}

#[test]
fn transposing_a_nonlinear_use_of_a_linear_value_names_the_op() {
    use tenferro_runtime::ir::{BinaryOp, Function, Op, TensorType};
    let mut f = Function::new("square");
    let p = f.add_param(TensorType::new(DType::F64, vec![2]));
    let y = f.push1(Op::Binary(BinaryOp::Mul), &[p, p]).unwrap();
    f.set_outputs(vec![y]);
    let ct = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 1.0]);
    let err = tenferro_ad::transpose_function(&f, &tenferro_ad::Rules::new(), 1, &[], &[Some(ct)])
        .unwrap_err();
    assert!(matches!(err, AdError::Internal(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("`mul`") && msg.contains("nonlinearly"),
        "{msg}"
    );
}

#[test]
fn transpose_checks_cotangent_types() {
    use tenferro_runtime::ir::{Function, Op, TensorType, UnaryOp};
    let mut f = Function::new("negate");
    let p = f.add_param(TensorType::new(DType::F64, vec![2]));
    let y = f.push1(Op::Unary(UnaryOp::Neg), &[p]).unwrap();
    f.set_outputs(vec![y]);
    let ct = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 1.0, 1.0]);
    let msg = tenferro_ad::transpose_function(&f, &tenferro_ad::Rules::new(), 1, &[], &[Some(ct)])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("transpose") && msg.contains("f64[3]") && msg.contains("f64[2]"),
        "{msg}"
    );
}
