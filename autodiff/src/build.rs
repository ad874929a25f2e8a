//! Small builders of traced values used by the JVP and transpose rules. Operands always
//! have exactly the types the op needs (no broadcasting or promotion happens here), and
//! no-op structural ops (identity permutation, same shape) emit no instruction.

use num_complex::{Complex32, Complex64};
use tenferro_ir::{BinaryOp, CmpOp, DType, DotDims, Op, ReduceOp, Tensor, TensorType, UnaryOp};
use tenferro_runtime::TracedTensor;

pub(crate) fn unary(u: UnaryOp, x: &TracedTensor) -> TracedTensor {
    TracedTensor::apply1(Op::Unary(u), &[x])
}

pub(crate) fn binary(b: BinaryOp, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    TracedTensor::apply1(Op::Binary(b), &[x, y])
}

pub(crate) fn add(x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    binary(BinaryOp::Add, x, y)
}

pub(crate) fn sub(x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    binary(BinaryOp::Sub, x, y)
}

pub(crate) fn mul(x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    binary(BinaryOp::Mul, x, y)
}

pub(crate) fn div(x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    binary(BinaryOp::Div, x, y)
}

pub(crate) fn neg(x: &TracedTensor) -> TracedTensor {
    unary(UnaryOp::Neg, x)
}

/// `conj(x)` for complex `x`; `x` itself for real dtypes.
pub(crate) fn conj(x: &TracedTensor, dtype: DType) -> TracedTensor {
    if dtype.is_complex() {
        unary(UnaryOp::Conj, x)
    } else {
        x.clone()
    }
}

/// The sum of two optional terms, `None` standing for zero.
pub(crate) fn add_opt(a: Option<TracedTensor>, b: Option<TracedTensor>) -> Option<TracedTensor> {
    match (a, b) {
        (Some(a), Some(b)) => Some(add(&a, &b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A rank-0 constant of `dtype` equal to the real number `v`.
pub(crate) fn scalar(dtype: DType, v: f64) -> TracedTensor {
    TracedTensor::from_tensor(Tensor::full(&TensorType::scalar(dtype), v))
}

/// The real number `v` broadcast to type `ty` (a scalar constant and a broadcast, so the
/// IR stays small whatever the shape).
pub(crate) fn splat(ty: &TensorType, v: f64) -> TracedTensor {
    let s = scalar(ty.dtype, v);
    if ty.rank() == 0 {
        s
    } else {
        broadcast_in_dim(&s, &ty.shape, &[])
    }
}

/// Zeros of type `ty` (a materialised zero, used where an op needs every operand).
pub(crate) fn zeros(ty: &TensorType) -> TracedTensor {
    splat(ty, 0.0)
}

/// The imaginary unit of complex dtype `dtype`, broadcast to `shape`.
pub(crate) fn imag_unit(dtype: DType, shape: &[usize]) -> TracedTensor {
    let s = match dtype {
        DType::C32 => TracedTensor::from_tensor(Tensor::scalar(Complex32::new(0.0, 1.0))),
        _ => TracedTensor::from_tensor(Tensor::scalar(Complex64::new(0.0, 1.0))),
    };
    if shape.is_empty() {
        s
    } else {
        broadcast_in_dim(&s, shape, &[])
    }
}

pub(crate) fn compare(c: CmpOp, x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    TracedTensor::apply1(Op::Compare(c), &[x, y])
}

pub(crate) fn select(p: &TracedTensor, t: &TracedTensor, f: &TracedTensor) -> TracedTensor {
    TracedTensor::apply1(Op::Select, &[p, t, f])
}

/// `convert(x)` to `to`, or `x` if it already has that dtype.
pub(crate) fn convert(x: &TracedTensor, from: DType, to: DType) -> TracedTensor {
    if from == to {
        x.clone()
    } else {
        TracedTensor::apply1(Op::Convert { to }, &[x])
    }
}

pub(crate) fn reduce(kind: ReduceOp, x: &TracedTensor, axes: &[usize]) -> TracedTensor {
    if axes.is_empty() && kind == ReduceOp::Sum {
        return x.clone();
    }
    TracedTensor::apply1(
        Op::Reduce {
            kind,
            axes: axes.to_vec(),
        },
        &[x],
    )
}

pub(crate) fn reduce_sum(x: &TracedTensor, axes: &[usize]) -> TracedTensor {
    reduce(ReduceOp::Sum, x, axes)
}

pub(crate) fn broadcast_in_dim(x: &TracedTensor, shape: &[usize], dims: &[usize]) -> TracedTensor {
    TracedTensor::apply1(
        Op::BroadcastInDim {
            shape: shape.to_vec(),
            dims: dims.to_vec(),
        },
        &[x],
    )
}

/// `reshape(x)` to `shape`, or `x` if `from` already is `shape`.
pub(crate) fn reshape(x: &TracedTensor, from: &[usize], shape: &[usize]) -> TracedTensor {
    if from == shape {
        x.clone()
    } else {
        TracedTensor::apply1(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }
}

/// `transpose(x, perm)`, or `x` for the identity permutation.
pub(crate) fn transpose(x: &TracedTensor, perm: &[usize]) -> TracedTensor {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        x.clone()
    } else {
        TracedTensor::apply1(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[x],
        )
    }
}

pub(crate) fn dot_general(x: &TracedTensor, y: &TracedTensor, dims: &DotDims) -> TracedTensor {
    TracedTensor::apply1(Op::DotGeneral(dims.clone()), &[x, y])
}

/// The inverse of a permutation.
pub(crate) fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}
