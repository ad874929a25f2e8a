//! Reductions. The operand is walked once in column-major order with an incremental
//! output offset (stride 0 along reduced axes), so every output element combines its
//! inputs in the same order as the reference evaluator: results are bit-identical.

use crate::error::internal;
use crate::strided::{coalesce, for_each_outer};
use num_complex::Complex;
use tenferro_ir::optable::{max_f32, max_f64, min_f32, min_f64};
use tenferro_ir::{col_major_strides, Data, ReduceOp};
use tenferro_runtime::Result;

/// Iteration plan of a reduction: the operand's shape with coalesced axes, its strides,
/// and the output stride of each axis (0 along reduced axes).
#[derive(Clone, Debug)]
pub(crate) struct ReducePlan {
    shape: Vec<usize>,
    x_strides: Vec<usize>,
    out_strides: Vec<usize>,
    out_len: usize,
}

impl ReducePlan {
    pub(crate) fn new(x_shape: &[usize], axes: &[usize]) -> ReducePlan {
        let kept: Vec<usize> = (0..x_shape.len()).filter(|a| !axes.contains(a)).collect();
        let out_shape: Vec<usize> = kept.iter().map(|&a| x_shape[a]).collect();
        let os = col_major_strides(&out_shape);
        let mut out_strides = vec![0usize; x_shape.len()];
        for (k, &a) in kept.iter().enumerate() {
            out_strides[a] = os[k];
        }
        let xs = col_major_strides(x_shape);
        let (shape, strides) = coalesce(x_shape, &[&xs, &out_strides]);
        ReducePlan {
            shape,
            x_strides: strides[0].clone(),
            out_strides: strides[1].clone(),
            out_len: out_shape.iter().product(),
        }
    }

    /// Folds `x` into `out` (pre-filled with the identity) with `g`.
    fn run<T: Copy>(&self, x: &[T], out: &mut [T], g: impl Fn(T, T) -> T) {
        if self.shape.contains(&0) {
            return;
        }
        if self.shape.is_empty() {
            out[0] = g(out[0], x[0]);
            return;
        }
        let (n0, xs0, os0) = (self.shape[0], self.x_strides[0], self.out_strides[0]);
        for_each_outer(
            &self.shape,
            &[&self.x_strides, &self.out_strides],
            [0, 0],
            |[xo, oo]| {
                if os0 == 0 {
                    let mut acc = out[oo];
                    for i in 0..n0 {
                        acc = g(acc, x[xo + i * xs0]);
                    }
                    out[oo] = acc;
                } else {
                    for i in 0..n0 {
                        let o = oo + i * os0;
                        out[o] = g(out[o], x[xo + i * xs0]);
                    }
                }
            },
        );
    }

    fn fold<T: Copy>(&self, x: &[T], init: T, g: impl Fn(T, T) -> T) -> Vec<T> {
        let mut out = vec![init; self.out_len];
        self.run(x, &mut out, g);
        out
    }
}

/// Reduction `kind` of `x` along the planned axes.
pub(crate) fn reduce(name: &str, kind: ReduceOp, plan: &ReducePlan, x: &Data) -> Result<Data> {
    macro_rules! real {
        ($v:expr, $t:ty, $max:ident, $min:ident) => {
            match kind {
                ReduceOp::Sum => plan.fold($v, 0.0, |a: $t, b: $t| a + b),
                ReduceOp::Prod => plan.fold($v, 1.0, |a: $t, b: $t| a * b),
                ReduceOp::Max => plan.fold($v, <$t>::NEG_INFINITY, $max),
                ReduceOp::Min => plan.fold($v, <$t>::INFINITY, $min),
            }
        };
    }
    // Integers wrap, as the reference evaluator's reductions.
    macro_rules! int {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => plan.fold($v, 0, <$t>::wrapping_add),
                ReduceOp::Prod => plan.fold($v, 1, <$t>::wrapping_mul),
                ReduceOp::Max => plan.fold($v, <$t>::MIN, <$t>::max),
                ReduceOp::Min => plan.fold($v, <$t>::MAX, <$t>::min),
            }
        };
    }
    macro_rules! complex {
        ($v:expr, $t:ty) => {
            match kind {
                ReduceOp::Sum => plan.fold($v, Complex::<$t>::new(0.0, 0.0), |a, b| a + b),
                ReduceOp::Prod => plan.fold($v, Complex::<$t>::new(1.0, 0.0), |a, b| a * b),
                ReduceOp::Max | ReduceOp::Min => {
                    return Err(internal(name, "complex operand of an ordered reduction"))
                }
            }
        };
    }
    Ok(match x {
        Data::F32(v) => Data::F32(real!(v, f32, max_f32, min_f32)),
        Data::F64(v) => Data::F64(real!(v, f64, max_f64, min_f64)),
        Data::C32(v) => Data::C32(complex!(v, f32)),
        Data::C64(v) => Data::C64(complex!(v, f64)),
        Data::I32(v) => Data::I32(int!(v, i32)),
        Data::I64(v) => Data::I64(int!(v, i64)),
        Data::Bool(_) => return Err(internal(name, "bool operand")),
    })
}
