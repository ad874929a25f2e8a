//! The ops of [`EagerTensor`]: the same names, broadcasting, promotion and typing rules as
//! `TracedTensor` (each is the traced op run through [`EagerContext::apply_traced`]), but
//! every op runs at once. Methods return `Result`; the std::ops operators return an
//! `EagerTensor` that carries an invalid op's error, located at the operator's line.

use super::context::{EagerContext, OpKey};
use super::tensor::EagerTensor;
use crate::error::{AdError, Result};
use std::ops::{Add, BitAnd, BitOr, BitXor, Div, Mul, Neg, Rem, Sub};
use tenferro_ir::{BinaryOp, CmpOp, DType, DotDims, Function, Op, ReduceOp, UnaryOp};
use tenferro_runtime::{RuntimeError, TracedTensor};

/// Turns a traced value with a recorded error into `Err`.
fn ok(t: TracedTensor) -> tenferro_runtime::Result<Vec<TracedTensor>> {
    match t.error() {
        Some(e) => Err(e),
        None => Ok(vec![t]),
    }
}

fn ints(v: &[usize]) -> impl Iterator<Item = i64> + '_ {
    v.iter().map(|&x| x as i64)
}

impl EagerTensor {
    /// Runs a one-result op on `args` (self first).
    fn run1<F>(&self, key: OpKey, args: &[&EagerTensor], trace: F) -> Result<EagerTensor>
    where
        F: FnOnce(&[TracedTensor]) -> tenferro_runtime::Result<Vec<TracedTensor>>,
    {
        self.ctx.apply_traced1(key, args, trace)
    }

    /// Applies IR op `op` to `args` as they are (no broadcasting or promotion), as
    /// `TracedTensor::apply`; one tensor per result.
    pub fn apply(op: Op, args: &[&EagerTensor]) -> Result<Vec<EagerTensor>> {
        let Some(first) = args.first() else {
            return Err(RuntimeError::invalid_op(
                op.name(),
                "eager apply needs at least one operand (its context); use EagerContext::apply_traced"
                    .to_string(),
            )
            .into());
        };
        let ctx = first.ctx.clone();
        let o = op.clone();
        ctx.apply_traced(OpKey::Ir(op), args, move |t| {
            let refs: Vec<&TracedTensor> = t.iter().collect();
            let outs = TracedTensor::apply(o, &refs);
            match outs.iter().find_map(|x| x.error()) {
                Some(e) => Err(e),
                None => Ok(outs),
            }
        })
    }

    /// [`EagerTensor::apply`] for single-result ops.
    pub fn apply1(op: Op, args: &[&EagerTensor]) -> Result<EagerTensor> {
        let name = op.name().to_string();
        let mut v = EagerTensor::apply(op, args)?;
        if v.len() != 1 {
            return Err(
                RuntimeError::invalid_op(name, format!("op has {} results", v.len())).into(),
            );
        }
        Ok(v.remove(0))
    }

    /// Applies function `f` to `args` (as `TracedTensor::call`): one tensor per output.
    pub fn call(f: &Function, args: &[&EagerTensor]) -> Result<Vec<EagerTensor>> {
        let Some(first) = args.first() else {
            return Err(RuntimeError::Invalid(format!(
                "call of `{}`: eager call needs at least one argument",
                f.name
            ))
            .into());
        };
        let ctx = first.ctx.clone();
        let text = tenferro_ir::print::print(f);
        ctx.apply_traced(OpKey::Function(text), args, |t| {
            let refs: Vec<&TracedTensor> = t.iter().collect();
            TracedTensor::call(f, &refs)
        })
    }

    /// NumPy-style broadcast to `shape` (trailing axes align).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named("broadcast_to", ints(shape).collect()),
            &[self],
            |t| Ok(vec![t[0].broadcast_to(shape)?]),
        )
    }

    /// Elementwise binary op with broadcasting and promotion.
    pub fn binary(&self, op: BinaryOp, other: &EagerTensor) -> Result<EagerTensor> {
        self.run1(OpKey::Binary(op), &[self, other], |t| {
            ok(t[0].binary(op, &t[1]))
        })
    }

    /// Elementwise binary op with a real scalar, weakly typed as in traced mode. The scalar
    /// is a run-time operand, not part of the cached op: `&w * lr` compiles once whatever
    /// `lr` is.
    pub fn binary_scalar(&self, op: BinaryOp, v: f64, scalar_on_left: bool) -> Result<EagerTensor> {
        let s = self.ctx.scalar(v);
        let which = BinaryOp::ALL.iter().position(|&b| b == op).unwrap_or(0) as i64;
        self.run1(
            OpKey::named("binary_weak_scalar", [which, scalar_on_left as i64]),
            &[self, &s],
            |t| ok(t[0].binary_weak_scalar(op, &t[1], scalar_on_left)),
        )
    }

    /// Elementwise unary op.
    pub fn unary(&self, op: UnaryOp) -> Result<EagerTensor> {
        self.run1(OpKey::Ir(Op::Unary(op)), &[self], |t| ok(t[0].unary(op)))
    }

    /// Elementwise comparison with broadcasting and promotion; the result is bool.
    pub fn compare(&self, dir: CmpOp, other: &EagerTensor) -> Result<EagerTensor> {
        self.run1(OpKey::Compare(dir), &[self, other], |t| {
            ok(t[0].compare(dir, &t[1]))
        })
    }

    /// `where(pred, on_true, on_false)` with broadcasting of all three and promotion of
    /// the branches.
    pub fn select(
        pred: &EagerTensor,
        on_true: &EagerTensor,
        on_false: &EagerTensor,
    ) -> Result<EagerTensor> {
        pred.run1(
            OpKey::Named("select", vec![]),
            &[pred, on_true, on_false],
            |t| ok(TracedTensor::select(&t[0], &t[1], &t[2])),
        )
    }

    /// [`EagerTensor::select`] under upstream tenferro's name (`jnp.where`).
    pub fn where_select(
        pred: &EagerTensor,
        on_true: &EagerTensor,
        on_false: &EagerTensor,
    ) -> Result<EagerTensor> {
        EagerTensor::select(pred, on_true, on_false)
    }

    /// [`TracedTensor::scale_real`] eagerly (one compiled op per factor).
    pub fn scale_real(&self, factor: f64) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named("scale_real", vec![factor.to_bits() as i64]),
            &[self],
            |t| Ok(vec![t[0].scale_real(factor)?]),
        )
    }

    /// [`TracedTensor::scale_complex`] eagerly (one compiled op per factor).
    pub fn scale_complex(&self, factor: num_complex::Complex64) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named(
                "scale_complex",
                vec![factor.re.to_bits() as i64, factor.im.to_bits() as i64],
            ),
            &[self],
            |t| Ok(vec![t[0].scale_complex(factor)?]),
        )
    }

    /// `x^y` elementwise (float / complex).
    pub fn pow(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.binary(BinaryOp::Pow, other)
    }

    /// `x^p` with a real exponent.
    pub fn powf(&self, p: f64) -> Result<EagerTensor> {
        self.binary_scalar(BinaryOp::Pow, p, false)
    }

    /// Elementwise maximum (NaN-propagating; real dtypes).
    pub fn maximum(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.binary(BinaryOp::Max, other)
    }

    /// Elementwise minimum (NaN-propagating; real dtypes).
    pub fn minimum(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.binary(BinaryOp::Min, other)
    }

    /// `self == other` elementwise.
    pub fn equal(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Eq, other)
    }
    /// `self != other` elementwise.
    pub fn not_equal(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Ne, other)
    }
    /// `self < other` elementwise.
    pub fn less(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Lt, other)
    }
    /// `self <= other` elementwise.
    pub fn less_equal(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Le, other)
    }
    /// `self > other` elementwise.
    pub fn greater(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Gt, other)
    }
    /// `self >= other` elementwise.
    pub fn greater_equal(&self, other: &EagerTensor) -> Result<EagerTensor> {
        self.compare(CmpOp::Ge, other)
    }

    fn reduce(&self, kind: ReduceOp, axes: &[usize]) -> Result<EagerTensor> {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        let op = Op::Reduce { kind, axes };
        let o = op.clone();
        self.run1(OpKey::Ir(op), &[self], move |t| {
            ok(TracedTensor::apply1(o, &[&t[0]]))
        })
    }

    /// Sum over `axes` (removed from the shape).
    pub fn reduce_sum(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.reduce(ReduceOp::Sum, axes)
    }
    /// Product over `axes`.
    pub fn reduce_prod(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.reduce(ReduceOp::Prod, axes)
    }
    /// Maximum over `axes` (real dtypes).
    pub fn reduce_max(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.reduce(ReduceOp::Max, axes)
    }
    /// Minimum over `axes` (real dtypes).
    pub fn reduce_min(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.reduce(ReduceOp::Min, axes)
    }

    /// Sum of all elements (a scalar).
    pub fn sum(&self) -> Result<EagerTensor> {
        let axes: Vec<usize> = (0..self.shape().len()).collect();
        self.reduce_sum(&axes)
    }

    /// Mean over `axes`.
    pub fn reduce_mean(&self, axes: &[usize]) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named("reduce_mean", ints(axes).collect()),
            &[self],
            |t| ok(t[0].reduce_mean(axes)),
        )
    }

    /// General contraction (StableHLO dot_general): result axes are batch, lhs free, rhs
    /// free. Dtypes promote.
    pub fn dot_general(&self, rhs: &EagerTensor, dims: DotDims) -> Result<EagerTensor> {
        let mut key = Vec::new();
        for v in [
            &dims.lhs_contract,
            &dims.rhs_contract,
            &dims.lhs_batch,
            &dims.rhs_batch,
        ] {
            key.push(v.len() as i64);
            key.extend(ints(v));
        }
        self.run1(OpKey::Named("dot_general", key), &[self, rhs], |t| {
            Ok(vec![t[0].dot_general(&t[1], dims)?])
        })
    }

    /// Matrix product (matrices are the first two axes, batch axes follow; rank-1
    /// operands are vectors), as `TracedTensor::matmul`.
    pub fn matmul(&self, rhs: &EagerTensor) -> Result<EagerTensor> {
        self.run1(OpKey::Named("matmul", vec![]), &[self, rhs], |t| {
            Ok(vec![t[0].matmul(&t[1])?])
        })
    }

    /// Permutes axes: result axis `i` is operand axis `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<EagerTensor> {
        EagerTensor::apply1(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[self],
        )
    }

    /// Swaps the first two axes (matrix transpose; batch axes stay).
    pub fn t(&self) -> Result<EagerTensor> {
        self.run1(OpKey::Named("t", vec![]), &[self], |t| Ok(vec![t[0].t()?]))
    }

    /// Column-major reshape to `shape` (same element count).
    pub fn reshape(&self, shape: &[usize]) -> Result<EagerTensor> {
        EagerTensor::apply1(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[self],
        )
    }

    /// StableHLO broadcast_in_dim: operand axis `i` becomes result axis `dims[i]`.
    pub fn broadcast_in_dim(&self, shape: &[usize], dims: &[usize]) -> Result<EagerTensor> {
        EagerTensor::apply1(
            Op::BroadcastInDim {
                shape: shape.to_vec(),
                dims: dims.to_vec(),
            },
            &[self],
        )
    }

    /// The block `starts[i]..limits[i]` on each axis.
    pub fn slice(&self, starts: &[usize], limits: &[usize]) -> Result<EagerTensor> {
        EagerTensor::apply1(
            Op::Slice {
                starts: starts.to_vec(),
                limits: limits.to_vec(),
            },
            &[self],
        )
    }

    /// Pads with `low[i]` / `high[i]` copies of `value` before / after each axis.
    pub fn pad(&self, low: &[usize], high: &[usize], value: f64) -> Result<EagerTensor> {
        let mut key = vec![low.len() as i64];
        key.extend(ints(low));
        key.extend(ints(high));
        key.push(value.to_bits() as i64);
        self.run1(OpKey::Named("pad", key), &[self], |t| {
            Ok(vec![t[0].pad(low, high, value)?])
        })
    }

    /// Joins tensors along `axis` (dtypes promote).
    pub fn concatenate(parts: &[&EagerTensor], axis: usize) -> Result<EagerTensor> {
        let Some(first) = parts.first() else {
            return Err(
                RuntimeError::invalid_op("concatenate", "no operands given".to_string()).into(),
            );
        };
        first.run1(OpKey::Named("concatenate", vec![axis as i64]), parts, |t| {
            let refs: Vec<&TracedTensor> = t.iter().collect();
            Ok(vec![TracedTensor::concatenate(&refs, axis)?])
        })
    }

    /// `take(self, indices, axis)`: result shape is `shape[..axis] ++ indices.shape ++
    /// shape[axis+1..]`; indices (i64, or i32 converted to i64) are clamped into range.
    pub fn gather(&self, indices: &EagerTensor, axis: usize) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named("gather", vec![axis as i64]),
            &[self, indices],
            |t| Ok(vec![t[0].gather(&t[1], axis)?]),
        )
    }

    /// Adds `updates` (gather-shaped) into a copy of `self` at `indices` (i64, or i32
    /// converted to i64) along `axis`.
    pub fn scatter_add(
        &self,
        indices: &EagerTensor,
        updates: &EagerTensor,
        axis: usize,
    ) -> Result<EagerTensor> {
        self.run1(
            OpKey::Named("scatter_add", vec![axis as i64]),
            &[self, indices, updates],
            |t| Ok(vec![t[0].scatter_add(&t[1], &t[2], axis)?]),
        )
    }

    /// Converts to `dtype`.
    pub fn convert(&self, dtype: DType) -> Result<EagerTensor> {
        EagerTensor::apply1(Op::Convert { to: dtype }, &[self])
    }

    /// Indices along axis `dim` of a tensor of type `dtype[shape]`, in `ctx`.
    pub fn iota(
        ctx: &EagerContext,
        dtype: DType,
        shape: &[usize],
        dim: usize,
    ) -> Result<EagerTensor> {
        ctx.iota(dtype, shape, dim)
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl EagerTensor {
            $( $(#[$doc])* pub fn $name(&self) -> Result<EagerTensor> { self.unary(UnaryOp::$op) } )*
        }
    };
}

tenferro_ir::for_each_unary_op!(unary_methods);

/// The result of an operator on `operands` (the first gives the context): the first error
/// an operand carries, without running anything; else `run`'s value, or its error located
/// at the operator's source line.
#[track_caller]
fn operator(operands: &[&EagerTensor], run: impl FnOnce() -> Result<EagerTensor>) -> EagerTensor {
    let at = std::panic::Location::caller();
    if let Some(carrier) = operands.iter().find(|a| a.error().is_some()) {
        return (*carrier).clone();
    }
    run().unwrap_or_else(|e| {
        let e = match e {
            AdError::Runtime(r) => AdError::Runtime(r.located(at)),
            other => other,
        };
        EagerTensor::from_error(&operands[0].ctx, e)
    })
}

macro_rules! binary_operators {
    ($($trait:ident $method:ident $op:ident;)*) => {$(
        binary_operators!(@tensor $trait $method $op, &EagerTensor, &EagerTensor);
        binary_operators!(@tensor $trait $method $op, EagerTensor, EagerTensor);
        binary_operators!(@tensor $trait $method $op, &EagerTensor, EagerTensor);
        binary_operators!(@tensor $trait $method $op, EagerTensor, &EagerTensor);
        binary_operators!(@scalar $trait $method $op, &EagerTensor);
        binary_operators!(@scalar $trait $method $op, EagerTensor);
    )*};
    (@tensor $trait:ident $method:ident $op:ident, $lhs:ty, $rhs:ty) => {
        impl $trait<$rhs> for $lhs {
            type Output = EagerTensor;
            #[track_caller]
            fn $method(self, rhs: $rhs) -> EagerTensor {
                operator(&[&self, &rhs], || self.binary(BinaryOp::$op, &rhs))
            }
        }
    };
    (@scalar $trait:ident $method:ident $op:ident, $t:ty) => {
        impl $trait<f64> for $t {
            type Output = EagerTensor;
            #[track_caller]
            fn $method(self, rhs: f64) -> EagerTensor {
                operator(&[&self], || self.binary_scalar(BinaryOp::$op, rhs, false))
            }
        }
        impl $trait<$t> for f64 {
            type Output = EagerTensor;
            #[track_caller]
            fn $method(self, rhs: $t) -> EagerTensor {
                operator(&[&rhs], || rhs.binary_scalar(BinaryOp::$op, self, true))
            }
        }
    };
}

binary_operators! {
    Add add Add;
    Sub sub Sub;
    Mul mul Mul;
    Div div Div;
}

/// Operators whose method is a composite (`%` is `remainder`) or dispatches on the dtype
/// (`&`, `|`, `^`: bitwise on integers, logical on bools).
macro_rules! method_operators {
    ($($trait:ident $method:ident $via:ident;)*) => {$(
        method_operators!(@one $trait $method $via, &EagerTensor, &EagerTensor);
        method_operators!(@one $trait $method $via, EagerTensor, EagerTensor);
        method_operators!(@one $trait $method $via, &EagerTensor, EagerTensor);
        method_operators!(@one $trait $method $via, EagerTensor, &EagerTensor);
    )*};
    (@one $trait:ident $method:ident $via:ident, $lhs:ty, $rhs:ty) => {
        impl $trait<$rhs> for $lhs {
            type Output = EagerTensor;
            #[track_caller]
            fn $method(self, rhs: $rhs) -> EagerTensor {
                operator(&[&self, &rhs], || self.$via(&rhs))
            }
        }
    };
}

impl Rem<f64> for &EagerTensor {
    type Output = EagerTensor;
    #[track_caller]
    fn rem(self, rhs: f64) -> EagerTensor {
        operator(&[self], || self.remainder_scalar(rhs, false))
    }
}

impl Rem<f64> for EagerTensor {
    type Output = EagerTensor;
    #[track_caller]
    fn rem(self, rhs: f64) -> EagerTensor {
        operator(&[&self], || self.remainder_scalar(rhs, false))
    }
}

method_operators! {
    Rem rem remainder;
    BitAnd bitand bitwise_and;
    BitOr bitor bitwise_or;
    BitXor bitxor bitwise_xor;
}

impl Neg for &EagerTensor {
    type Output = EagerTensor;
    #[track_caller]
    fn neg(self) -> EagerTensor {
        operator(&[self], || self.unary(UnaryOp::Neg))
    }
}

impl Neg for EagerTensor {
    type Output = EagerTensor;
    #[track_caller]
    fn neg(self) -> EagerTensor {
        operator(&[&self], || self.unary(UnaryOp::Neg))
    }
}
