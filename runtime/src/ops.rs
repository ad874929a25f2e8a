//! The tracing surface of [`TracedTensor`]: operators with NumPy broadcasting and dtype
//! promotion, one method per elementwise op, reductions, and structural ops.
//!
//! Operators and elementwise methods cannot return `Result`: an invalid use (shape
//! mismatch, bad axis, unsupported dtype) is recorded in the value and reported by
//! whatever consumes it. Structural ops return `Result` at once.

use crate::error::{Result, RuntimeError};
use crate::traced::TracedTensor;
use std::ops::{Add, Div, Mul, Neg, Sub};
use tenferro_ir::{BinaryOp, CmpOp, DType, DotDims, Op, ReduceOp, Tensor, TensorType, UnaryOp};

/// The dtype two operands promote to: bool < i32 < i64 < f32 < f64, and real with complex
/// gives the complex dtype of the wider precision.
#[track_caller]
pub fn promote(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    let rank = |d: DType| match d {
        Bool => 0,
        I32 => 1,
        I64 => 2,
        F32 | C32 => 3,
        F64 | C64 => 4,
    };
    let wide = if rank(a) >= rank(b) { a } else { b };
    if a.is_complex() || b.is_complex() {
        wide.complex().unwrap_or(C64)
    } else {
        wide
    }
}

/// The NumPy broadcast of two shapes (trailing axes align), or None if incompatible.
#[track_caller]
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// The traced value, or one that carries the error, located at the caller's call site. A
/// value carrying an error traced inside this crate is re-located too (a closure's call
/// site here is no place to report): [`TracedTensor::from_error`] does it.
#[track_caller]
pub(crate) fn ok_or_recorded(r: Result<TracedTensor>) -> TracedTensor {
    match r.and_then(|t| t.error().map_or(Ok(t), Err)) {
        Ok(t) => t,
        Err(e) => TracedTensor::from_error(e),
    }
}

impl TracedTensor {
    /// Converts to `dtype` if needed (no instruction when already of that dtype).
    #[track_caller]
    fn cast(&self, dtype: DType) -> Result<TracedTensor> {
        if self.dtype()? == dtype {
            Ok(self.clone())
        } else {
            self.convert(dtype)
        }
    }

    /// NumPy-style broadcast to `shape` (trailing axes align); no instruction when the
    /// shape already matches.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<TracedTensor> {
        let s = self.shape()?;
        if s == shape {
            return Ok(self.clone());
        }
        if s.len() > shape.len() || broadcast_shapes(&s, shape).as_deref() != Some(shape) {
            return Err(RuntimeError::invalid_op(
                "broadcast_to",
                format!("cannot broadcast shape {s:?} to {shape:?}"),
            ));
        }
        let offset = shape.len() - s.len();
        let dims: Vec<usize> = (0..s.len()).map(|i| i + offset).collect();
        self.broadcast_in_dim(shape, &dims)
    }

    /// Promotes and broadcasts two operands to one type (NumPy rules).
    #[track_caller]
    pub(crate) fn unify(
        op: &str,
        a: &TracedTensor,
        b: &TracedTensor,
    ) -> Result<(TracedTensor, TracedTensor)> {
        let (ta, tb) = (a.ty()?, b.ty()?);
        let shape = broadcast_shapes(&ta.shape, &tb.shape).ok_or_else(|| {
            RuntimeError::invalid_op(
                op,
                format!(
                    "operands {} and {} cannot be broadcast together",
                    a.described(&ta),
                    b.described(&tb)
                ),
            )
        })?;
        let dtype = promote(ta.dtype, tb.dtype);
        Ok((
            a.cast(dtype)?.broadcast_to(&shape)?,
            b.cast(dtype)?.broadcast_to(&shape)?,
        ))
    }

    /// This tensor as the `what` index operand of `op`, in i64: i64 as it is, i32
    /// converted (as JAX, any integer dtype indexes); another dtype is an error naming
    /// `op`, `what` and the operand.
    #[track_caller]
    pub(crate) fn as_index(&self, op: &str, what: &str) -> Result<TracedTensor> {
        let ty = self.ty()?;
        match ty.dtype {
            DType::I64 => Ok(self.clone()),
            DType::I32 => self.convert(DType::I64),
            DType::F32 | DType::F64 | DType::C32 | DType::C64 | DType::Bool => Err(
                RuntimeError::invalid_op(op, format!("{what} {ty} must be integers (i32 or i64)")),
            ),
        }
    }

    /// A scalar `v` of this tensor's dtype, broadcast to its shape.
    #[track_caller]
    pub(crate) fn splat_like(&self, v: f64) -> Result<TracedTensor> {
        let ty = self.ty()?;
        TracedTensor::from_tensor(Tensor::full(&TensorType::scalar(ty.dtype), v))
            .broadcast_to(&ty.shape)
    }

    /// Elementwise binary op with broadcasting and promotion.
    #[track_caller]
    pub fn binary(&self, op: BinaryOp, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded(
            TracedTensor::unify(op.name(), self, other)
                .map(|(a, b)| TracedTensor::apply1(Op::Binary(op), &[&a, &b])),
        )
    }

    /// Elementwise binary op with a Rust float, weakly typed as in JAX: it takes a float or
    /// complex tensor's dtype (`f32 * 2.0` stays f32), and promotes an integer or bool
    /// tensor to the default float f64 (`i64 * 0.5` and `i32 * 0.5` are f64, as NumPy,
    /// JAX and PyTorch).
    #[track_caller]
    pub fn binary_scalar(&self, op: BinaryOp, v: f64, scalar_on_left: bool) -> TracedTensor {
        ok_or_recorded((|| {
            let x = crate::reductions::float_of(self)?;
            let s = x.splat_like(v)?;
            Ok(if scalar_on_left {
                TracedTensor::apply1(Op::Binary(op), &[&s, &x])
            } else {
                TracedTensor::apply1(Op::Binary(op), &[&x, &s])
            })
        })())
    }

    /// Multiplies by the real `factor`, keeping the dtype (upstream tenferro's
    /// `scale_real`; `x * factor` with the scalar weakly typed, except that integers stay
    /// integers): float and complex tensors are multiplied by `factor`, an integer tensor
    /// by `factor` rounded half away from zero (`i64 [1, 2, -3]` scaled by 2.7 is
    /// `[3, 6, -9]`). Errors name `scale_real`: a bool operand, or with an integer operand
    /// a factor that is not finite or does not fit the dtype once rounded.
    #[track_caller]
    pub fn scale_real(&self, factor: f64) -> Result<TracedTensor> {
        let dtype = self.dtype()?;
        if dtype == DType::Bool {
            return Err(RuntimeError::invalid_op(
                "scale_real",
                format!("operand {} is bool; expected a numeric tensor", self.ty()?),
            ));
        }
        if !dtype.is_int() {
            return checked(self.binary_scalar(BinaryOp::Mul, factor, false));
        }
        let rounded = factor.round();
        // The i64 range as f64: [-2^63, 2^63).
        if !rounded.is_finite() || rounded < -(2f64.powi(63)) || rounded >= 2f64.powi(63) {
            return Err(RuntimeError::invalid_op(
                "scale_real",
                format!(
                    "factor {factor} cannot scale integer operand {}: expected a finite factor \
                     that rounds into the i64 range",
                    self.ty()?
                ),
            ));
        }
        checked(self.binary_int_scalar(BinaryOp::Mul, rounded as i64, false))
    }

    /// Multiplies a complex tensor by the complex `factor`, keeping its dtype (upstream
    /// tenferro's `scale_complex`; `factor` is rounded to c32 for a c32 operand). Errors
    /// name `scale_complex`: an operand that is not complex (convert it first).
    #[track_caller]
    pub fn scale_complex(&self, factor: num_complex::Complex64) -> Result<TracedTensor> {
        let ty = self.ty()?;
        if !ty.dtype.is_complex() {
            return Err(RuntimeError::invalid_op(
                "scale_complex",
                format!("operand {ty} is not complex; expected a c32 or c64 tensor"),
            ));
        }
        let s = TracedTensor::scalar(factor).convert(ty.dtype)?;
        checked(self * &s)
    }

    /// [`TracedTensor::binary_scalar`] with the Rust float given as a traced f64 scalar
    /// `s` (a run-time operand rather than a constant), with the same weak typing: `s` is
    /// converted to this tensor's float or complex dtype, and an integer or `bool` tensor
    /// becomes f64. Eager mode uses this, so a changing scalar (a learning rate, Adam's
    /// bias correction) reuses one compiled op.
    #[track_caller]
    pub fn binary_weak_scalar(
        &self,
        op: BinaryOp,
        s: &TracedTensor,
        scalar_on_left: bool,
    ) -> TracedTensor {
        ok_or_recorded((|| {
            let x = crate::reductions::float_of(self)?;
            let ty = x.ty()?;
            if s.ty()? != TensorType::scalar(DType::F64) {
                return Err(RuntimeError::invalid_op(
                    op.name(),
                    format!("the weak scalar must be f64[], not {}", s.ty()?),
                ));
            }
            let s = s.cast(ty.dtype)?.broadcast_to(&ty.shape)?;
            Ok(if scalar_on_left {
                TracedTensor::apply1(Op::Binary(op), &[&s, &x])
            } else {
                TracedTensor::apply1(Op::Binary(op), &[&x, &s])
            })
        })())
    }

    /// Elementwise binary op with a Rust integer, weakly typed as in JAX: it takes the
    /// tensor's dtype (`f32 * 2` stays f32, `i64 * 2` stays i64, `i32 * 2` stays i32); a
    /// bool tensor becomes i64. A scalar outside the i32 range with an i32 tensor is an
    /// error (as JAX's overflow error), not a silent wrap.
    #[track_caller]
    pub fn binary_int_scalar(&self, op: BinaryOp, v: i64, scalar_on_left: bool) -> TracedTensor {
        ok_or_recorded((|| {
            let x = match self.dtype()? {
                DType::Bool => self.convert(DType::I64)?,
                DType::F32 | DType::F64 | DType::C32 | DType::C64 | DType::I32 | DType::I64 => {
                    self.clone()
                }
            };
            let ty = x.ty()?;
            let s = match ty.dtype {
                DType::I64 => Tensor::scalar(v),
                DType::I32 => Tensor::scalar(i32::try_from(v).map_err(|_| {
                    RuntimeError::invalid_op(
                        op.name(),
                        format!("the integer scalar {v} does not fit in the i32 operand {ty}"),
                    )
                })?),
                d @ (DType::F32 | DType::F64 | DType::C32 | DType::C64 | DType::Bool) => {
                    Tensor::full(&TensorType::scalar(d), v as f64)
                }
            };
            let s = TracedTensor::from_tensor(s).broadcast_to(&ty.shape)?;
            Ok(if scalar_on_left {
                TracedTensor::apply1(Op::Binary(op), &[&s, &x])
            } else {
                TracedTensor::apply1(Op::Binary(op), &[&x, &s])
            })
        })())
    }

    /// Elementwise unary op.
    #[track_caller]
    pub fn unary(&self, op: UnaryOp) -> TracedTensor {
        TracedTensor::apply1(Op::Unary(op), &[self])
    }

    /// Elementwise comparison with broadcasting and promotion; the result is bool.
    #[track_caller]
    pub fn compare(&self, dir: CmpOp, other: &TracedTensor) -> TracedTensor {
        ok_or_recorded(
            TracedTensor::unify("compare", self, other)
                .map(|(a, b)| TracedTensor::apply1(Op::Compare(dir), &[&a, &b])),
        )
    }

    /// [`TracedTensor::select`] under upstream tenferro's name, returning the error at once
    /// (`jnp.where(pred, on_true, on_false)`; the predicate is bool).
    #[track_caller]
    pub fn where_select(
        pred: &TracedTensor,
        on_true: &TracedTensor,
        on_false: &TracedTensor,
    ) -> Result<TracedTensor> {
        checked(TracedTensor::select(pred, on_true, on_false))
    }

    /// `where(pred, on_true, on_false)` with broadcasting of all three and promotion of the branches.
    #[track_caller]
    pub fn select(
        pred: &TracedTensor,
        on_true: &TracedTensor,
        on_false: &TracedTensor,
    ) -> TracedTensor {
        ok_or_recorded((|| {
            let (t, f) = TracedTensor::unify("select", on_true, on_false)?;
            let ps = pred.shape()?;
            let ts = t.shape()?;
            let shape = broadcast_shapes(&ps, &ts).ok_or_else(|| {
                RuntimeError::invalid_op("select", format!("predicate shape {ps:?} and branch shape {ts:?} cannot be broadcast together"))
            })?;
            let (p, t, f) = (
                pred.broadcast_to(&shape)?,
                t.broadcast_to(&shape)?,
                f.broadcast_to(&shape)?,
            );
            Ok(TracedTensor::apply1(Op::Select, &[&p, &t, &f]))
        })())
    }

    /// `x^y` elementwise (float / complex).
    #[track_caller]
    pub fn pow(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::Pow, other)
    }

    /// `x^p` with a real exponent.
    #[track_caller]
    pub fn powf(&self, p: f64) -> TracedTensor {
        self.binary_scalar(BinaryOp::Pow, p, false)
    }

    /// Elementwise maximum (NaN-propagating; real dtypes).
    #[track_caller]
    pub fn maximum(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::Max, other)
    }

    /// Elementwise minimum (NaN-propagating; real dtypes).
    #[track_caller]
    pub fn minimum(&self, other: &TracedTensor) -> TracedTensor {
        self.binary(BinaryOp::Min, other)
    }

    /// `self == other` elementwise.
    #[track_caller]
    pub fn equal(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Eq, other)
    }
    /// `self != other` elementwise.
    #[track_caller]
    pub fn not_equal(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Ne, other)
    }
    /// `self < other` elementwise.
    #[track_caller]
    pub fn less(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Lt, other)
    }
    /// `self <= other` elementwise.
    #[track_caller]
    pub fn less_equal(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Le, other)
    }
    /// `self > other` elementwise.
    #[track_caller]
    pub fn greater(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Gt, other)
    }
    /// `self >= other` elementwise.
    #[track_caller]
    pub fn greater_equal(&self, other: &TracedTensor) -> TracedTensor {
        self.compare(CmpOp::Ge, other)
    }

    #[track_caller]
    fn reduce(&self, kind: ReduceOp, axes: &[usize]) -> TracedTensor {
        let mut axes = axes.to_vec();
        axes.sort_unstable();
        TracedTensor::apply1(Op::Reduce { kind, axes }, &[self])
    }

    /// Sum over `axes` (removed from the shape). An invalid axis is recorded.
    #[track_caller]
    pub fn reduce_sum(&self, axes: &[usize]) -> TracedTensor {
        self.reduce(ReduceOp::Sum, axes)
    }
    /// Product over `axes`.
    #[track_caller]
    pub fn reduce_prod(&self, axes: &[usize]) -> TracedTensor {
        self.reduce(ReduceOp::Prod, axes)
    }
    /// Maximum over `axes` (real dtypes), as `lax.reduce_max`: `-inf` (the identity) for an
    /// empty reduction, where [`TracedTensor::max_axes`] is an error.
    #[track_caller]
    pub fn reduce_max(&self, axes: &[usize]) -> TracedTensor {
        self.reduce(ReduceOp::Max, axes)
    }
    /// Minimum over `axes` (real dtypes), as `lax.reduce_min`: `+inf` for an empty
    /// reduction.
    #[track_caller]
    pub fn reduce_min(&self, axes: &[usize]) -> TracedTensor {
        self.reduce(ReduceOp::Min, axes)
    }

    /// Sum of all elements (a scalar).
    #[track_caller]
    pub fn sum(&self) -> TracedTensor {
        match self.shape() {
            Ok(s) => self.reduce_sum(&(0..s.len()).collect::<Vec<_>>()),
            Err(e) => TracedTensor::from_error(e),
        }
    }

    /// Mean over `axes`.
    #[track_caller]
    pub fn reduce_mean(&self, axes: &[usize]) -> TracedTensor {
        match self.shape() {
            Ok(s) => {
                let n: usize = axes.iter().filter_map(|&a| s.get(a)).product();
                &self.reduce_sum(axes) / (n as f64)
            }
            Err(e) => TracedTensor::from_error(e),
        }
    }

    /// General contraction (StableHLO dot_general): result axes are batch, lhs free, rhs free.
    #[track_caller]
    pub fn dot_general(&self, rhs: &TracedTensor, dims: DotDims) -> Result<TracedTensor> {
        let (a, b) = TracedTensor::unify_dtype("dot_general", self, rhs)?;
        checked(TracedTensor::apply1(Op::DotGeneral(dims), &[&a, &b]))
    }

    #[track_caller]
    fn unify_dtype(
        op: &str,
        a: &TracedTensor,
        b: &TracedTensor,
    ) -> Result<(TracedTensor, TracedTensor)> {
        let _ = op;
        let d = promote(a.dtype()?, b.dtype()?);
        Ok((a.cast(d)?, b.cast(d)?))
    }

    /// Matrix product. Column-major batches: matrices are the first two axes, batch axes
    /// follow and must match. A rank-1 operand is a vector (`[m,k]·[k] → [m]`,
    /// `[k]·[k,n] → [n]`, `[k]·[k] → []`).
    #[track_caller]
    pub fn matmul(&self, rhs: &TracedTensor) -> Result<TracedTensor> {
        let (sa, sb) = (self.shape()?, rhs.shape()?);
        let bad = || {
            RuntimeError::invalid_op(
                "matmul",
                format!("operands of shapes {sa:?} and {sb:?} cannot be multiplied (need [m,k,batch..] x [k,n,batch..] with equal batch axes, or vectors)"),
            )
        };
        let dims = match (sa.len(), sb.len()) {
            (0, _) | (_, 0) => return Err(bad()),
            (1, 1) => DotDims {
                lhs_contract: vec![0],
                rhs_contract: vec![0],
                ..DotDims::default()
            },
            (2, 1) => DotDims {
                lhs_contract: vec![1],
                rhs_contract: vec![0],
                ..DotDims::default()
            },
            (1, 2) => DotDims {
                lhs_contract: vec![0],
                rhs_contract: vec![0],
                ..DotDims::default()
            },
            (ra, rb) if ra == rb => {
                if sa[2..] != sb[2..] {
                    return Err(bad());
                }
                let batch: Vec<usize> = (2..ra).collect();
                let d = DotDims {
                    lhs_contract: vec![1],
                    rhs_contract: vec![0],
                    lhs_batch: batch.clone(),
                    rhs_batch: batch,
                };
                if sa[1] != sb[0] {
                    return Err(bad());
                }
                // dot_general puts batch axes first; move them back behind the matrix axes.
                let y = self.dot_general(rhs, d)?;
                if ra == 2 {
                    return Ok(y);
                }
                let nb = ra - 2;
                let mut perm: Vec<usize> = vec![nb, nb + 1];
                perm.extend(0..nb);
                return y.transpose(&perm);
            }
            _ => return Err(bad()),
        };
        let k_a = sa[dims.lhs_contract[0]];
        let k_b = sb[dims.rhs_contract[0]];
        if k_a != k_b {
            return Err(bad());
        }
        self.dot_general(rhs, dims)
    }

    /// Permutes axes: result axis `i` is operand axis `perm[i]`.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(
            Op::Transpose {
                perm: perm.to_vec(),
            },
            &[self],
        ))
    }

    /// Swaps the first two axes (matrix transpose; batch axes stay).
    #[track_caller]
    pub fn t(&self) -> Result<TracedTensor> {
        let r = self.shape()?.len();
        if r < 2 {
            return Err(RuntimeError::invalid_op(
                "t",
                format!("operand of rank {r} has no two matrix axes"),
            ));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(0, 1);
        self.transpose(&perm)
    }

    /// Column-major reshape to `shape` (same element count).
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            &[self],
        ))
    }

    /// StableHLO broadcast_in_dim: operand axis `i` becomes result axis `dims[i]`.
    #[track_caller]
    pub fn broadcast_in_dim(&self, shape: &[usize], dims: &[usize]) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(
            Op::BroadcastInDim {
                shape: shape.to_vec(),
                dims: dims.to_vec(),
            },
            &[self],
        ))
    }

    /// The block `starts[i]..limits[i]` on each axis.
    #[track_caller]
    pub fn slice(&self, starts: &[usize], limits: &[usize]) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(
            Op::Slice {
                starts: starts.to_vec(),
                limits: limits.to_vec(),
            },
            &[self],
        ))
    }

    /// Pads with `low[i]` / `high[i]` copies of `value` before / after each axis.
    #[track_caller]
    pub fn pad(&self, low: &[usize], high: &[usize], value: f64) -> Result<TracedTensor> {
        let v = TracedTensor::from_tensor(Tensor::full(&TensorType::scalar(self.dtype()?), value));
        checked(TracedTensor::apply1(
            Op::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
            },
            &[self, &v],
        ))
    }

    /// Joins tensors along `axis` (dtypes promote).
    #[track_caller]
    pub fn concatenate(parts: &[&TracedTensor], axis: usize) -> Result<TracedTensor> {
        if parts.is_empty() {
            return Err(RuntimeError::invalid_op(
                "concatenate",
                "no operands given".to_string(),
            ));
        }
        let mut d = parts[0].dtype()?;
        for p in parts {
            d = promote(d, p.dtype()?);
        }
        let cast: Vec<TracedTensor> = parts.iter().map(|p| p.cast(d)).collect::<Result<_>>()?;
        let refs: Vec<&TracedTensor> = cast.iter().collect();
        checked(TracedTensor::apply1(Op::Concatenate { axis }, &refs))
    }

    /// `take(self, indices, axis)`: result shape is `shape[..axis] ++ indices.shape ++
    /// shape[axis+1..]`; indices (i64, or i32 converted to i64) are clamped into range.
    #[track_caller]
    pub fn gather(&self, indices: &TracedTensor, axis: usize) -> Result<TracedTensor> {
        let indices = indices.as_index("gather", "indices")?;
        checked(TracedTensor::apply1(Op::Gather { axis }, &[self, &indices]))
    }

    /// Adds `updates` (gather-shaped) into a copy of `self` at `indices` (i64, or i32
    /// converted to i64) along `axis`.
    #[track_caller]
    pub fn scatter_add(
        &self,
        indices: &TracedTensor,
        updates: &TracedTensor,
        axis: usize,
    ) -> Result<TracedTensor> {
        let indices = indices.as_index("scatter_add", "indices")?;
        checked(TracedTensor::apply1(
            Op::ScatterAdd { axis },
            &[self, &indices, updates],
        ))
    }

    /// Converts to `dtype`.
    #[track_caller]
    pub fn convert(&self, dtype: DType) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(Op::Convert { to: dtype }, &[self]))
    }

    /// Indices along axis `dim` of a tensor of type `dtype[shape]`.
    #[track_caller]
    pub fn iota(dtype: DType, shape: &[usize], dim: usize) -> Result<TracedTensor> {
        checked(TracedTensor::apply1(
            Op::Iota {
                ty: TensorType::new(dtype, shape.to_vec()),
                dim,
            },
            &[],
        ))
    }
}

/// Turns a value with a recorded error into `Err`, located at the caller when it was
/// traced inside this crate (as [`ok_or_recorded`]).
#[track_caller]
pub(crate) fn checked(t: TracedTensor) -> Result<TracedTensor> {
    match t.error() {
        Some(e) => Err(e.at_caller(file!(), std::panic::Location::caller())),
        None => Ok(t),
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {
        impl TracedTensor {
            $( $(#[$doc])* #[track_caller] pub fn $name(&self) -> TracedTensor { self.unary(UnaryOp::$op) } )*
        }
    };
}

tenferro_ir::for_each_unary_op!(unary_methods);

macro_rules! binary_operators {
    ($($trait:ident $method:ident $op:ident;)*) => {$(
        impl $trait<&TracedTensor> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { self.binary(BinaryOp::$op, rhs) }
        }
        impl $trait<TracedTensor> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { self.binary(BinaryOp::$op, &rhs) }
        }
        impl $trait<&TracedTensor> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { self.binary(BinaryOp::$op, rhs) }
        }
        impl $trait<TracedTensor> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { self.binary(BinaryOp::$op, &rhs) }
        }
        impl $trait<f64> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: f64) -> TracedTensor { self.binary_scalar(BinaryOp::$op, rhs, false) }
        }
        impl $trait<f64> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: f64) -> TracedTensor { self.binary_scalar(BinaryOp::$op, rhs, false) }
        }
        impl $trait<&TracedTensor> for f64 {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { rhs.binary_scalar(BinaryOp::$op, self, true) }
        }
        impl $trait<TracedTensor> for f64 {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { rhs.binary_scalar(BinaryOp::$op, self, true) }
        }
        impl $trait<i64> for &TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: i64) -> TracedTensor { self.binary_int_scalar(BinaryOp::$op, rhs, false) }
        }
        impl $trait<i64> for TracedTensor {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: i64) -> TracedTensor { self.binary_int_scalar(BinaryOp::$op, rhs, false) }
        }
        impl $trait<&TracedTensor> for i64 {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: &TracedTensor) -> TracedTensor { rhs.binary_int_scalar(BinaryOp::$op, self, true) }
        }
        impl $trait<TracedTensor> for i64 {
            type Output = TracedTensor;
            #[track_caller] fn $method(self, rhs: TracedTensor) -> TracedTensor { rhs.binary_int_scalar(BinaryOp::$op, self, true) }
        }
    )*};
}

binary_operators! {
    Add add Add;
    Sub sub Sub;
    Mul mul Mul;
    Div div Div;
}

impl Neg for &TracedTensor {
    type Output = TracedTensor;
    #[track_caller]
    fn neg(self) -> TracedTensor {
        self.unary(UnaryOp::Neg)
    }
}

impl Neg for TracedTensor {
    type Output = TracedTensor;
    #[track_caller]
    fn neg(self) -> TracedTensor {
        self.unary(UnaryOp::Neg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_shapes_align_trailing_axes() {
        assert_eq!(broadcast_shapes(&[3, 1], &[4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[], &[2, 2]), Some(vec![2, 2]));
        assert_eq!(broadcast_shapes(&[2], &[3]), None);
    }

    #[test]
    fn promotion_lattice() {
        assert_eq!(promote(DType::F32, DType::F64), DType::F64);
        assert_eq!(promote(DType::F64, DType::C32), DType::C64);
        assert_eq!(promote(DType::I64, DType::F32), DType::F32);
        assert_eq!(promote(DType::Bool, DType::I64), DType::I64);
        assert_eq!(promote(DType::I32, DType::I64), DType::I64);
        assert_eq!(promote(DType::I64, DType::I32), DType::I64);
        assert_eq!(promote(DType::Bool, DType::I32), DType::I32);
        assert_eq!(promote(DType::I32, DType::F32), DType::F32);
        assert_eq!(promote(DType::I32, DType::C32), DType::C32);
        assert_eq!(promote(DType::I32, DType::I32), DType::I32);
    }

    #[test]
    fn i32_weak_scalars() {
        let a = TracedTensor::from_vec_col_major(vec![2], vec![1_i32, 2]);
        assert_eq!((&a * 2).dtype().unwrap(), DType::I32);
        assert_eq!((2 - &a).dtype().unwrap(), DType::I32);
        assert_eq!((&a * 0.5).dtype().unwrap(), DType::F64);
        let msg = (&a + (1_i64 << 40)).error().expect("error").to_string();
        assert!(
            msg.contains("add") && msg.contains("1099511627776") && msg.contains("i32"),
            "{msg}"
        );
    }

    #[test]
    fn operator_shape_mismatch_is_recorded_with_shapes() {
        let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
        let b = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]);
        let c = &(&a + &b) * 2.0;
        let msg = c.error().expect("error recorded").to_string();
        assert!(
            msg.contains("add") && msg.contains("f64[2]") && msg.contains("f64[3]"),
            "{msg}"
        );
    }

    #[test]
    fn bad_reduction_axis_is_recorded() {
        let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
        let msg = a.reduce_sum(&[1]).error().expect("error").to_string();
        assert!(
            msg.contains("reduce_sum") && msg.contains("axis 1"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_data_length_is_recorded() {
        let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, 2.0]);
        let msg = a.exp().error().expect("error").to_string();
        assert!(
            msg.contains("from_vec_col_major") && msg.contains("[2, 2]"),
            "{msg}"
        );
    }

    #[test]
    fn mixed_precision_promotes_to_f64() {
        let a = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]);
        let b = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
        assert_eq!((&a * &b).dtype().unwrap(), DType::F64);
        assert_eq!(a.abs().dtype().unwrap(), DType::F32);
    }

    #[test]
    fn matmul_shapes() {
        let a = TracedTensor::zeros(&TensorType::new(DType::F64, vec![2, 3, 4]));
        let b = TracedTensor::zeros(&TensorType::new(DType::F64, vec![3, 5, 4]));
        assert_eq!(a.matmul(&b).unwrap().shape().unwrap(), vec![2, 5, 4]);
        let v = TracedTensor::zeros(&TensorType::new(DType::F64, vec![3]));
        let m = TracedTensor::zeros(&TensorType::new(DType::F64, vec![2, 3]));
        assert_eq!(m.matmul(&v).unwrap().shape().unwrap(), vec![2]);
        let e = m.matmul(&m).unwrap_err().to_string();
        assert!(e.contains("matmul") && e.contains("[2, 3]"), "{e}");
    }

    #[test]
    fn abs_of_complex_is_real() {
        let z =
            TracedTensor::from_vec_col_major(vec![1], vec![num_complex::Complex64::new(3.0, 4.0)]);
        assert_eq!(z.abs().dtype().unwrap(), DType::F64);
    }
}
