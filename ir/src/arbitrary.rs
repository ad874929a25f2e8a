//! Proptest strategies (cargo feature `arbitrary`): random *well-typed* functions over
//! the core ops ([`arb_function`]) and input tensors for them ([`arb_inputs`]).
//!
//! A function is built from 1–3 parameters of random small types (dims 1–4, rank 0–3,
//! dtypes from [`ArbConfig::dtypes`]; some named, with any characters) and a list of random 64-bit step seeds; each step
//! appends one op (plus the converts, constants or predicates it needs for its operands)
//! by asking the typing rules, so every generated function passes [`crate::verify()`].
//! Shrinking removes steps and shrinks seeds toward 0. Gather / scatter indices are
//! in-range i64 constants; argsort sorts a parameter (converted), never a computed value. Tensors stay small (at most [`MAX_NUMEL`] elements).
//!
//! With [`ArbConfig::value_safe`], only ops whose results are bit-for-bit independent of
//! evaluation order and of the math library are generated: no transcendentals, div, pow,
//! sum/prod reductions or scans, dot_general or scatter_add, no complex abs/sign/mul and no i64
//! mul (which can overflow). Optimized and unoptimized programs must then agree exactly.

use crate::dtype::{DType, TensorType};
use crate::function::{Function, Value};
use crate::infer::{gather_shape, infer_types};
use crate::op::{BinaryOp, CmpOp, DotDims, Op, ReduceOp, UnaryOp};
use crate::tensor::{Data, Tensor};
use num_complex::{Complex32, Complex64};
use proptest::collection::vec;
use proptest::prelude::*;

/// Largest element count of any generated value.
pub const MAX_NUMEL: usize = 256;

/// What [`arb_function`] generates.
#[derive(Clone, Debug)]
pub struct ArbConfig {
    /// Dtypes of parameters, constants and iotas, and the targets of converts
    /// (bool values also arise from comparisons). Empty means `[f64]`.
    pub dtypes: Vec<DType>,
    /// Maximum number of generation steps (each appends one to a few instructions).
    pub max_steps: usize,
    /// Generate only ops whose results do not depend on evaluation order or libm
    /// (see the module documentation).
    pub value_safe: bool,
}

impl Default for ArbConfig {
    /// f64, f32, c64, i64 and i32; up to 12 steps; every op.
    fn default() -> Self {
        ArbConfig {
            dtypes: vec![DType::F64, DType::F32, DType::C64, DType::I64, DType::I32],
            max_steps: 12,
            value_safe: false,
        }
    }
}

impl ArbConfig {
    /// The default config restricted to value-safe ops.
    pub fn value_safe() -> Self {
        ArbConfig {
            value_safe: true,
            ..ArbConfig::default()
        }
    }

    /// The default config with these dtypes.
    pub fn with_dtypes(dtypes: &[DType]) -> Self {
        ArbConfig {
            dtypes: dtypes.to_vec(),
            ..ArbConfig::default()
        }
    }
}

/// Random well-typed functions named `main` (see the module documentation).
pub fn arb_function(config: ArbConfig) -> impl Strategy<Value = Function> {
    let mut config = config;
    if config.dtypes.is_empty() {
        config.dtypes = vec![DType::F64];
    }
    let max_steps = config.max_steps.max(1);
    let param = (
        proptest::sample::select(config.dtypes.clone()),
        vec(1usize..=4, 0..=3),
        proptest::option::of(any::<String>()),
    );
    (
        vec(param, 1..=3),
        vec(any::<u64>(), 1..=max_steps),
        vec(any::<u64>(), 0..=2),
    )
        .prop_map(move |(params, steps, outs)| build(&config, &params, &steps, &outs))
}

/// Input tensors for `f`'s parameters: floats and complex parts uniform in [-2, 2),
/// integers in [-5, 5], bools either way.
pub fn arb_inputs(f: &Function) -> impl Strategy<Value = Vec<Tensor>> {
    f.param_types()
        .into_iter()
        .map(arb_tensor)
        .collect::<Vec<_>>()
}

/// A random tensor of type `ty` with the value ranges of [`arb_inputs`].
pub fn arb_tensor(ty: TensorType) -> BoxedStrategy<Tensor> {
    let n = ty.numel();
    let shape = ty.shape.clone();
    let data: BoxedStrategy<Data> = match ty.dtype {
        DType::F32 => vec(-2.0f32..2.0, n).prop_map(Data::F32).boxed(),
        DType::F64 => vec(-2.0f64..2.0, n).prop_map(Data::F64).boxed(),
        DType::C32 => vec((-2.0f32..2.0, -2.0f32..2.0), n)
            .prop_map(|v| Data::C32(v.into_iter().map(|(a, b)| Complex32::new(a, b)).collect()))
            .boxed(),
        DType::C64 => vec((-2.0f64..2.0, -2.0f64..2.0), n)
            .prop_map(|v| Data::C64(v.into_iter().map(|(a, b)| Complex64::new(a, b)).collect()))
            .boxed(),
        DType::I32 => vec(-5i32..=5, n).prop_map(Data::I32).boxed(),
        DType::I64 => vec(-5i64..=5, n).prop_map(Data::I64).boxed(),
        DType::Bool => vec(any::<bool>(), n).prop_map(Data::Bool).boxed(),
    };
    data.prop_map(move |d| match Tensor::new(shape.clone(), d) {
        Ok(t) => t,
        Err(e) => unreachable!("arb_tensor generated {e}"),
    })
    .boxed()
}

/// A small deterministic generator (SplitMix64) driven by one step seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// Kinds of generation step.
#[derive(Clone, Copy, Debug)]
enum Step {
    Unary,
    Binary,
    Compare,
    Select,
    Reduce,
    Dot,
    Transpose,
    Reshape,
    Broadcast,
    Slice,
    Pad,
    Concat,
    Gather,
    ScatterAdd,
    Convert,
    Iota,
    Constant,
    Argsort,
    Cumulative,
}

struct Builder<'a> {
    cfg: &'a ArbConfig,
    f: Function,
    vals: Vec<Value>,
}

fn build(
    cfg: &ArbConfig,
    params: &[(DType, Vec<usize>, Option<String>)],
    steps: &[u64],
    outs: &[u64],
) -> Function {
    let mut b = Builder {
        cfg,
        f: Function::new("main"),
        vals: Vec::new(),
    };
    for (d, s, name) in params {
        let p =
            b.f.add_named_param(TensorType::new(*d, s.clone()), name.clone());
        b.vals.push(p);
    }
    let mut kinds = vec![
        Step::Unary,
        Step::Binary,
        Step::Compare,
        Step::Select,
        Step::Reduce,
        Step::Transpose,
        Step::Reshape,
        Step::Broadcast,
        Step::Slice,
        Step::Pad,
        Step::Concat,
        Step::Gather,
        Step::Convert,
        Step::Iota,
        Step::Constant,
        Step::Argsort,
        Step::Cumulative,
    ];
    if !cfg.value_safe {
        kinds.extend([Step::Dot, Step::ScatterAdd]);
    }
    for &seed in steps {
        let mut r = Rng(seed);
        let kind = r.pick(&kinds);
        b.step(kind, &mut r);
    }
    let last = *b.vals.last().unwrap_or(&b.f.params()[0]);
    let mut outputs = vec![last];
    for &o in outs {
        outputs.push(b.vals[(o % b.vals.len() as u64) as usize]);
    }
    b.f.set_outputs(outputs);
    b.f
}

impl Builder<'_> {
    fn ty(&self, v: Value) -> TensorType {
        self.f.ty(v).clone()
    }

    /// Appends `op` if it type-checks and its results are at most [`MAX_NUMEL`] elements.
    /// An op that does not type-check is a bug of this generator.
    fn push(&mut self, op: Op, args: &[Value]) -> Option<Value> {
        let tys: Vec<&TensorType> = args.iter().map(|&a| self.f.ty(a)).collect();
        let res = match infer_types(&op, &tys) {
            Ok(r) => r,
            Err(e) => panic!("arbitrary: generated an ill-typed {op}: {e}"),
        };
        if res.iter().any(|t| t.numel() > MAX_NUMEL) {
            return None;
        }
        let v = self.f.push_unchecked(op, args.to_vec(), res)[0];
        self.vals.push(v);
        Some(v)
    }

    /// `v`, converted to a config dtype accepted by `ok` when its own is not.
    fn coerce(&mut self, r: &mut Rng, v: Value, ok: impl Fn(DType) -> bool) -> Option<Value> {
        let d = self.f.ty(v).dtype;
        if ok(d) {
            return Some(v);
        }
        let cands: Vec<DType> = self.cfg.dtypes.iter().copied().filter(|&d| ok(d)).collect();
        if cands.is_empty() {
            return None;
        }
        let to = r.pick(&cands);
        self.push(Op::Convert { to }, &[v])
    }

    /// Rank ≥ 1 view of `v` (a rank-0 value is reshaped to `[1]`).
    fn at_least_1d(&mut self, v: Value) -> Option<Value> {
        if self.f.ty(v).rank() == 0 {
            self.push(Op::Reshape { shape: vec![1] }, &[v])
        } else {
            Some(v)
        }
    }

    fn random_shape(r: &mut Rng, min_rank: usize) -> Vec<usize> {
        let rank = min_rank + r.below(4 - min_rank);
        (0..rank).map(|_| 1 + r.below(4)).collect()
    }

    /// A constant of type `ty`: floats are multiples of 1/4 in [-2, 2], integers in [-5, 5].
    fn constant(&mut self, r: &mut Rng, ty: &TensorType) -> Option<Value> {
        let n = ty.numel();
        let mut real = || (r.below(17) as f64 - 8.0) * 0.25;
        let data = match ty.dtype {
            DType::F32 => Data::F32((0..n).map(|_| real() as f32).collect()),
            DType::F64 => Data::F64((0..n).map(|_| real()).collect()),
            DType::C32 => Data::C32(
                (0..n)
                    .map(|_| Complex32::new(real() as f32, real() as f32))
                    .collect(),
            ),
            DType::C64 => Data::C64((0..n).map(|_| Complex64::new(real(), real())).collect()),
            DType::I32 => Data::I32((0..n).map(|_| (real() * 2.5) as i32).collect()),
            DType::I64 => Data::I64((0..n).map(|_| (real() * 2.5) as i64).collect()),
            DType::Bool => Data::Bool((0..n).map(|_| real() > 0.0).collect()),
        };
        let t = Tensor::new(ty.shape.clone(), data).ok()?;
        self.push(Op::Constant(t), &[])
    }

    /// In-range indices for an axis of size `size`: a scalar or a vector of 1–3.
    fn indices(&mut self, r: &mut Rng, size: usize) -> Option<Value> {
        let rank = r.below(2);
        let shape: Vec<usize> = (0..rank).map(|_| 1 + r.below(3)).collect();
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| r.below(size) as i64).collect();
        let t = Tensor::new(shape, Data::I64(data)).ok()?;
        self.push(Op::Constant(t), &[])
    }

    /// A value of `v`'s type: an existing one (possibly `v`) or a new constant.
    fn partner(&mut self, r: &mut Rng, v: Value) -> Option<Value> {
        let ty = self.ty(v);
        let same: Vec<Value> = self
            .vals
            .iter()
            .copied()
            .filter(|&w| *self.f.ty(w) == ty)
            .collect();
        if r.below(3) != 0 {
            Some(r.pick(&same))
        } else {
            self.constant(r, &ty)
        }
    }

    fn cmp_dir(&self, r: &mut Rng, d: DType) -> CmpOp {
        if d.is_complex() {
            r.pick(&[CmpOp::Eq, CmpOp::Ne])
        } else {
            r.pick(&CmpOp::ALL)
        }
    }

    fn step(&mut self, kind: Step, r: &mut Rng) -> Option<Value> {
        let x = r.pick(&self.vals);
        let safe = self.cfg.value_safe;
        match kind {
            Step::Unary => {
                let x = self.coerce(r, x, |d| d != DType::Bool)?;
                let d = self.f.ty(x).dtype;
                let ops: Vec<UnaryOp> = UnaryOp::ALL
                    .into_iter()
                    .filter(|u| {
                        // value-safe programs use only ops that round nothing (complex
                        // abs and sign round through the norm)
                        let exact = u.is_exact()
                            && !(d.is_complex() && matches!(u, UnaryOp::Abs | UnaryOp::Sign));
                        u.accepts(d) && (!safe || exact)
                    })
                    .collect();
                let u = r.pick(&ops);
                self.push(Op::Unary(u), &[x])
            }
            Step::Binary => {
                let x = self.coerce(r, x, |d| d != DType::Bool)?;
                let d = self.f.ty(x).dtype;
                let y = self.partner(r, x)?;
                let ops: Vec<BinaryOp> = BinaryOp::ALL
                    .into_iter()
                    .filter(|b| match b {
                        BinaryOp::Add | BinaryOp::Sub => true,
                        BinaryOp::Max | BinaryOp::Min => !d.is_complex(),
                        BinaryOp::Mul => !safe || d.is_real_float(),
                        BinaryOp::Div => !safe,
                        BinaryOp::Pow => !safe && d.is_float(),
                        BinaryOp::Atan2 | BinaryOp::Rem => !safe && b.accepts(d),
                        // exact integer bit operations
                        BinaryOp::And
                        | BinaryOp::Or
                        | BinaryOp::Xor
                        | BinaryOp::ShiftLeft
                        | BinaryOp::ShiftRightLogical => b.accepts(d),
                    })
                    .collect();
                let b = r.pick(&ops);
                self.push(Op::Binary(b), &[x, y])
            }
            Step::Compare => {
                let y = self.partner(r, x)?;
                let dir = self.cmp_dir(r, self.f.ty(x).dtype);
                self.push(Op::Compare(dir), &[x, y])
            }
            Step::Select => {
                let on_false = self.partner(r, x)?;
                let shape = self.ty(x).shape;
                let preds: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| *self.f.ty(w) == TensorType::new(DType::Bool, shape.clone()))
                    .collect();
                let pred = if !preds.is_empty() && r.coin() {
                    r.pick(&preds)
                } else {
                    let other = self.partner(r, x)?;
                    let dir = self.cmp_dir(r, self.f.ty(x).dtype);
                    self.push(Op::Compare(dir), &[x, other])?
                };
                self.push(Op::Select, &[pred, x, on_false])
            }
            Step::Reduce => {
                let kinds: &[ReduceOp] = if safe {
                    &[ReduceOp::Max, ReduceOp::Min]
                } else {
                    &ReduceOp::ALL
                };
                let kind = r.pick(kinds);
                let x = if matches!(kind, ReduceOp::Max | ReduceOp::Min) {
                    self.coerce(r, x, |d| d != DType::Bool && !d.is_complex())?
                } else {
                    self.coerce(r, x, |d| d != DType::Bool)?
                };
                let axes = (0..self.f.ty(x).rank()).filter(|_| r.coin()).collect();
                self.push(Op::Reduce { kind, axes }, &[x])
            }
            Step::Argsort => {
                // Sorted values come from a parameter: an inexact upstream op could
                // reorder near-ties and change the permutation completely.
                let x = r.pick(self.f.params());
                let x = self.coerce(r, x, |d| !d.is_complex())?;
                let x = self.at_least_1d(x)?;
                let axis = r.below(self.f.ty(x).rank());
                let descending = r.coin();
                self.push(Op::Argsort { axis, descending }, &[x])
            }
            Step::Cumulative => {
                // Sums and products round in scan order: not value-safe.
                let kinds: &[ReduceOp] = if safe {
                    &[ReduceOp::Max, ReduceOp::Min]
                } else {
                    &ReduceOp::ALL
                };
                let kind = r.pick(kinds);
                let x = if matches!(kind, ReduceOp::Max | ReduceOp::Min) {
                    self.coerce(r, x, |d| d != DType::Bool && !d.is_complex())?
                } else {
                    self.coerce(r, x, |d| d != DType::Bool)?
                };
                let x = self.at_least_1d(x)?;
                let axis = r.below(self.f.ty(x).rank());
                let reverse = r.coin();
                self.push(
                    Op::Cumulative {
                        kind,
                        axis,
                        reverse,
                    },
                    &[x],
                )
            }
            Step::Dot => {
                let l = self.coerce(r, x, |d| d != DType::Bool)?;
                let lt = self.ty(l);
                let cands: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| self.f.ty(w).dtype == lt.dtype)
                    .collect();
                let rv = r.pick(&cands);
                let rt = self.ty(rv);
                let mut pairs: Vec<(usize, usize)> = (0..lt.rank())
                    .flat_map(|a| (0..rt.rank()).map(move |b| (a, b)))
                    .filter(|&(a, b)| lt.shape[a] == rt.shape[b])
                    .collect();
                // Shuffle the candidate axis pairs.
                for i in (1..pairs.len()).rev() {
                    let j = r.below(i + 1);
                    pairs.swap(i, j);
                }
                let mut d = DotDims::default();
                let mut rank = lt.rank() + rt.rank();
                for (a, b) in pairs {
                    if rank <= 3 && r.coin() {
                        break;
                    }
                    let used_l = d.lhs_contract.contains(&a) || d.lhs_batch.contains(&a);
                    let used_r = d.rhs_contract.contains(&b) || d.rhs_batch.contains(&b);
                    if used_l || used_r {
                        continue;
                    }
                    if r.below(4) == 0 {
                        d.lhs_batch.push(a);
                        d.rhs_batch.push(b);
                        rank -= 1;
                    } else {
                        d.lhs_contract.push(a);
                        d.rhs_contract.push(b);
                        rank -= 2;
                    }
                }
                if rank > 3 {
                    return None;
                }
                self.push(Op::DotGeneral(d), &[l, rv])
            }
            Step::Transpose => {
                let mut perm: Vec<usize> = (0..self.f.ty(x).rank()).collect();
                for i in (1..perm.len()).rev() {
                    let j = r.below(i + 1);
                    perm.swap(i, j);
                }
                self.push(Op::Transpose { perm }, &[x])
            }
            Step::Reshape => {
                let mut n = self.f.ty(x).numel();
                let rank = r.below(4).max(usize::from(n > 1));
                let mut shape = vec![1; rank];
                let mut p = 2;
                while n > 1 {
                    while !n.is_multiple_of(p) {
                        p += 1;
                    }
                    n /= p;
                    let slot = r.below(rank);
                    shape[slot] *= p;
                }
                self.push(Op::Reshape { shape }, &[x])
            }
            Step::Broadcast => {
                let xt = self.ty(x);
                let extra = if xt.rank() < 3 { r.below(2) } else { 0 };
                let out_rank = xt.rank() + extra;
                // Choose which result axes are new; the others take x's axes in order.
                let mut is_new = vec![false; out_rank];
                let mut placed = 0;
                while placed < extra {
                    let k = r.below(out_rank);
                    if !is_new[k] {
                        is_new[k] = true;
                        placed += 1;
                    }
                }
                let mut shape = Vec::with_capacity(out_rank);
                let mut dims = Vec::with_capacity(xt.rank());
                let mut next = 0;
                for (k, &new) in is_new.iter().enumerate() {
                    if new {
                        shape.push(1 + r.below(3));
                    } else {
                        let s = xt.shape[next];
                        shape.push(if s == 1 { 1 + r.below(3) } else { s });
                        dims.push(k);
                        next += 1;
                    }
                }
                self.push(Op::BroadcastInDim { shape, dims }, &[x])
            }
            Step::Slice => {
                let xt = self.ty(x);
                let mut starts = Vec::new();
                let mut limits = Vec::new();
                for &n in &xt.shape {
                    let s = r.below(n);
                    starts.push(s);
                    limits.push(s + 1 + r.below(n - s));
                }
                self.push(Op::Slice { starts, limits }, &[x])
            }
            Step::Pad => {
                let xt = self.ty(x);
                let low = (0..xt.rank()).map(|_| r.below(2)).collect();
                let high = (0..xt.rank()).map(|_| r.below(2)).collect();
                let v = self.constant(r, &TensorType::scalar(xt.dtype))?;
                self.push(Op::Pad { low, high }, &[x, v])
            }
            Step::Concat => {
                let x = self.at_least_1d(x)?;
                let xt = self.ty(x);
                let axis = r.below(xt.rank());
                let cands: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| {
                        let t = self.f.ty(w);
                        t.dtype == xt.dtype
                            && t.rank() == xt.rank()
                            && (0..t.rank()).all(|a| a == axis || t.shape[a] == xt.shape[a])
                    })
                    .collect();
                let mut args = vec![x];
                let mut numel = xt.numel();
                for _ in 0..r.below(3) {
                    let w = r.pick(&cands);
                    let wn = self.f.ty(w).numel();
                    if numel + wn > MAX_NUMEL {
                        break;
                    }
                    numel += wn;
                    args.push(w);
                }
                self.push(Op::Concatenate { axis }, &args)
            }
            Step::Gather => {
                let x = self.at_least_1d(x)?;
                let xt = self.ty(x);
                let axis = r.below(xt.rank());
                let idx = self.indices(r, xt.shape[axis])?;
                self.push(Op::Gather { axis }, &[x, idx])
            }
            Step::ScatterAdd => {
                let base = self.coerce(r, x, |d| d != DType::Bool)?;
                let base = self.at_least_1d(base)?;
                let bt = self.ty(base);
                let axis = r.below(bt.rank());
                let idx = self.indices(r, bt.shape[axis])?;
                let it = self.ty(idx);
                let want = TensorType::new(bt.dtype, gather_shape(&bt.shape, &it.shape, axis));
                let existing: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| *self.f.ty(w) == want)
                    .collect();
                let upd = if !existing.is_empty() && r.coin() {
                    r.pick(&existing)
                } else {
                    let mut data = Vec::with_capacity(it.numel());
                    for _ in 0..it.numel() {
                        data.push(r.below(bt.shape[axis]) as i64);
                    }
                    let t = Tensor::new(it.shape.clone(), Data::I64(data)).ok()?;
                    let idx2 = self.push(Op::Constant(t), &[])?;
                    self.push(Op::Gather { axis }, &[base, idx2])?
                };
                self.push(Op::ScatterAdd { axis }, &[base, idx, upd])
            }
            Step::Convert => {
                let to = r.pick(&self.cfg.dtypes);
                self.push(Op::Convert { to }, &[x])
            }
            Step::Iota => {
                let numeric: Vec<DType> = self
                    .cfg
                    .dtypes
                    .iter()
                    .copied()
                    .filter(|&d| d != DType::Bool)
                    .collect();
                if numeric.is_empty() {
                    return None;
                }
                let shape = Self::random_shape(r, 1);
                let dim = r.below(shape.len());
                let ty = TensorType::new(r.pick(&numeric), shape);
                self.push(Op::Iota { ty, dim }, &[])
            }
            Step::Constant => {
                let shape = Self::random_shape(r, 0);
                let ty = TensorType::new(r.pick(&self.cfg.dtypes), shape);
                self.constant(r, &ty)
            }
        }
    }
}
