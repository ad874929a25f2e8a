//! Random well-typed programs, seeded by [`Rng`].
//!
//! [`op_kinds`] is the one list of what the generator can emit: every [`UnaryOp`],
//! [`BinaryOp`], [`ReduceOp`] (enumerated from their `ALL` lists, so new variants join
//! automatically) and every other core [`Op`] variant. [`kind_of`] matches [`Op`]
//! exhaustively: a new `Op` variant does not compile here until it is given a kind and a
//! builder. Extension ops (e.g. `linalg.*`) are not generated: the reference evaluator
//! cannot run them.
//!
//! Two modes:
//! - [`GenMode::Forward`]: every dtype, every op; the typing rules ([`infer_types`]) decide
//!   which operand types an op accepts, and a `convert` is inserted when needed. Values
//!   computed by inexact kernels ([`inexact_values`]) never feed ops that turn a last-bit
//!   difference into a large one (compare, converts to integers, the unary ops the op table
//!   marks sensitive, complex `pow`), so tolerances stay valid.
//! - [`GenMode::Smooth`]: f64 only, for gradient checks. Each value carries an interval
//!   bound; unary ops get operands in the smooth domain the op table states (positive,
//!   inside (-1, 1), above 1), their result bounds are sampled from the table's semantics,
//!   `div` and `pow` get positive operands (`x*x + 0.5` when needed), and no value may
//!   exceed 1e6 in magnitude. The program's one output is the scalar loss
//!   `reduce_sum(last * W)` with a random constant `W`.
//!
//! Either mode draws extents 1-4; [`GenConfig::large`] draws most shapes from extents up
//! to thousands instead (values of up to [`LARGE_MAX_NUMEL`] elements).

use super::rng::Rng;
use tenferro_ir::{
    gather_shape, infer_types, BinaryOp, CmpOp, DType, Data, Domain, DotDims, ElemMap, Function,
    Op, ReduceOp, Sensitivity, Tensor, TensorType, UnaryOp, Value,
};

use num_complex::{Complex32, Complex64};

/// Largest element count of a generated value.
pub const MAX_NUMEL: usize = 256;

/// Largest element count of a value of a large-shape program ([`GenConfig::large`]):
/// enough for the kernels' size-dependent paths (runs of 256 and more, parallel splits
/// from 2^15 elements) while the reference evaluator stays fast.
pub const LARGE_MAX_NUMEL: usize = 1 << 17;

/// Extents a large-shape program draws from: short, odd, and past the kernels' thresholds.
const LARGE_EXTENTS: [usize; 14] = [1, 2, 3, 5, 8, 17, 33, 64, 100, 257, 300, 513, 1030, 4100];

/// The kind of one generation step: an op family with its variant where it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// An elementwise unary op.
    Unary(UnaryOp),
    /// An elementwise binary op.
    Binary(BinaryOp),
    /// `compare` (any direction).
    Compare,
    /// `select`.
    Select,
    /// A reduction.
    Reduce(ReduceOp),
    /// An inclusive scan (cumsum / cumprod / cummax / cummin).
    Cumulative(ReduceOp),
    /// `argsort`.
    Argsort,
    /// `dot_general`.
    Dot,
    /// `transpose`.
    Transpose,
    /// `reshape`.
    Reshape,
    /// `broadcast_in_dim`.
    Broadcast,
    /// `slice`.
    Slice,
    /// `pad`.
    Pad,
    /// `concatenate`.
    Concat,
    /// `gather`.
    Gather,
    /// `scatter_add`.
    ScatterAdd,
    /// `convert`.
    Convert,
    /// `iota`.
    Iota,
    /// `constant`.
    Constant,
}

/// Every kind the generator emits (see the module documentation).
pub fn op_kinds() -> Vec<OpKind> {
    let mut k: Vec<OpKind> = UnaryOp::ALL.into_iter().map(OpKind::Unary).collect();
    k.extend(BinaryOp::ALL.into_iter().map(OpKind::Binary));
    k.extend(ReduceOp::ALL.into_iter().map(OpKind::Reduce));
    k.extend(ReduceOp::ALL.into_iter().map(OpKind::Cumulative));
    k.push(OpKind::Argsort);
    k.extend([
        OpKind::Compare,
        OpKind::Select,
        OpKind::Dot,
        OpKind::Transpose,
        OpKind::Reshape,
        OpKind::Broadcast,
        OpKind::Slice,
        OpKind::Pad,
        OpKind::Concat,
        OpKind::Gather,
        OpKind::ScatterAdd,
        OpKind::Convert,
        OpKind::Iota,
        OpKind::Constant,
    ]);
    k
}

/// The text-form name of a kind's op (`compare` for every direction).
pub fn kind_name(k: OpKind) -> &'static str {
    match k {
        OpKind::Unary(u) => u.name(),
        OpKind::Binary(b) => b.name(),
        OpKind::Reduce(r) => r.name(),
        OpKind::Cumulative(r) => r.cumulative_name(),
        OpKind::Argsort => "argsort",
        OpKind::Compare => "compare",
        OpKind::Select => "select",
        OpKind::Dot => "dot_general",
        OpKind::Transpose => "transpose",
        OpKind::Reshape => "reshape",
        OpKind::Broadcast => "broadcast_in_dim",
        OpKind::Slice => "slice",
        OpKind::Pad => "pad",
        OpKind::Concat => "concatenate",
        OpKind::Gather => "gather",
        OpKind::ScatterAdd => "scatter_add",
        OpKind::Convert => "convert",
        OpKind::Iota => "iota",
        OpKind::Constant => "constant",
    }
}

/// The kind of an op; None for extension ops, which are not generated.
pub fn kind_of(op: &Op) -> Option<OpKind> {
    Some(match op {
        Op::Unary(u) => OpKind::Unary(*u),
        Op::Binary(b) => OpKind::Binary(*b),
        Op::Compare(_) => OpKind::Compare,
        Op::Select => OpKind::Select,
        Op::Reduce { kind, .. } => OpKind::Reduce(*kind),
        Op::Cumulative { kind, .. } => OpKind::Cumulative(*kind),
        Op::Argsort { .. } => OpKind::Argsort,
        Op::DotGeneral(_) => OpKind::Dot,
        Op::Transpose { .. } => OpKind::Transpose,
        Op::Reshape { .. } => OpKind::Reshape,
        Op::BroadcastInDim { .. } => OpKind::Broadcast,
        Op::Slice { .. } => OpKind::Slice,
        Op::Pad { .. } => OpKind::Pad,
        Op::Concatenate { .. } => OpKind::Concat,
        Op::Gather { .. } => OpKind::Gather,
        Op::ScatterAdd { .. } => OpKind::ScatterAdd,
        Op::Convert { .. } => OpKind::Convert,
        Op::Iota { .. } => OpKind::Iota,
        Op::Constant(_) => OpKind::Constant,
        Op::Extension(_) | Op::Barrier { .. } => return None,
    })
}

/// `true` when the CPU backend may compute `op`'s result on these operand types only
/// approximately: always for `dot_general` (GEMM blocking), and with fusion on also for
/// the vectorised transcendentals, `pow`, complex `div` / `abs` / `sign`, and `sum` /
/// `prod` reductions (whole reductions fold in lane order). Everything else is promised
/// bit-identical to the reference evaluator.
pub fn op_is_inexact(op: &Op, arg_dtypes: &[DType], fused: bool) -> bool {
    let complex = arg_dtypes.iter().any(|d| d.is_complex());
    let float = arg_dtypes.iter().any(|d| d.is_float());
    match op {
        Op::DotGeneral(_) => float,
        _ if !fused => false,
        // The kernels the CPU backend documents as within some ulps of the table.
        Op::Unary(u) => arg_dtypes
            .first()
            .is_some_and(|&d| tenferro_cpu::fused_ulps(*u, d) > 0),
        Op::Binary(BinaryOp::Pow) => float,
        Op::Binary(BinaryOp::Div | BinaryOp::Mul) => complex,
        Op::Reduce {
            kind: ReduceOp::Sum | ReduceOp::Prod,
            ..
        } => float,
        _ => false,
    }
}

/// How far a value may be from the reference evaluator's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exactness {
    /// Bit-identical.
    Exact,
    /// Rounded differently in double precision (f64 / c64) somewhere upstream.
    Double,
    /// Rounded differently in single precision (f32 / c32) somewhere upstream.
    Single,
}

/// For every value of `f` (by arena index), whether it may differ from the reference
/// evaluator's bits: computed by an inexact op ([`op_is_inexact`]) or from such a value,
/// at the worst precision involved.
pub fn inexact_values(f: &Function, fused: bool) -> Vec<Exactness> {
    let mut t = vec![Exactness::Exact; f.num_values()];
    for inst in f.insts() {
        let dts: Vec<DType> = inst
            .args
            .iter()
            .filter_map(|a| f.try_ty(*a).map(|ty| ty.dtype))
            .collect();
        let mut level = inst
            .args
            .iter()
            .filter_map(|a| t.get(a.index()).copied())
            .max()
            .unwrap_or(Exactness::Exact);
        if op_is_inexact(&inst.op, &dts, fused) {
            let single = dts.iter().any(|d| matches!(d, DType::F32 | DType::C32));
            level = level.max(if single {
                Exactness::Single
            } else {
                Exactness::Double
            });
        }
        for r in &inst.results {
            if let Some(slot) = t.get_mut(r.index()) {
                *slot = level;
            }
        }
    }
    t
}

/// What the generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenMode {
    /// Any op on any dtype, for differential runs.
    Forward,
    /// Smooth f64 programs with a scalar loss, for gradient checks.
    Smooth,
}

/// Generator settings.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Forward or smooth.
    pub mode: GenMode,
    /// Most generation steps (each appends one op plus the converts / constants it needs).
    pub max_steps: usize,
    /// Large shapes: extents up to thousands and values up to [`LARGE_MAX_NUMEL`]
    /// elements, for the kernels' paths that small shapes never reach (forward mode).
    pub large: bool,
}

/// A random program from `seed` (see the module documentation).
pub fn generate(seed: u64, cfg: &GenConfig) -> Function {
    let mut r = Rng::new(seed);
    let mut g = Gen {
        r: &mut r,
        f: Function::new("main"),
        vals: Vec::new(),
        iv: Vec::new(),
        mode: cfg.mode,
        large: cfg.large,
    };
    g.run(cfg.max_steps.max(1));
    g.f
}

/// Interval bound of a value in smooth mode: every element lies in `[lo, hi]`.
type Iv = (f64, f64);

/// The largest magnitude a smooth program's value may reach.
const SMOOTH_MAX: f64 = 1e6;

struct Gen<'r> {
    r: &'r mut Rng,
    f: Function,
    vals: Vec<Value>,
    /// Smooth mode: interval of each value, by arena index.
    iv: Vec<Iv>,
    mode: GenMode,
    large: bool,
}

fn hull(a: Iv, b: Iv) -> Iv {
    (a.0.min(b.0), a.1.max(b.1))
}

fn mag(a: Iv) -> f64 {
    a.0.abs().max(a.1.abs())
}

impl Gen<'_> {
    fn smooth(&self) -> bool {
        self.mode == GenMode::Smooth
    }

    fn ty(&self, v: Value) -> TensorType {
        self.f.ty(v).clone()
    }

    fn iv_of(&self, v: Value) -> Iv {
        self.iv
            .get(v.index())
            .copied()
            .unwrap_or((-SMOOTH_MAX, SMOOTH_MAX))
    }

    fn run(&mut self, max_steps: usize) {
        let nparams = 1 + self.r.below(3);
        for _ in 0..nparams {
            let dtype = if self.smooth() {
                DType::F64
            } else {
                self.random_dtype(true)
            };
            let shape = self.random_shape(0);
            let p = self.f.add_param(TensorType::new(dtype, shape));
            self.note(p, (-2.0, 2.0));
        }
        let kinds: Vec<OpKind> = op_kinds()
            .into_iter()
            .filter(|k| !self.smooth() || smooth_kind(*k))
            .collect();
        let steps = 1 + self.r.below(max_steps);
        for _ in 0..steps {
            if let Some(k) = self.r.pick(&kinds) {
                self.step(k);
            }
        }
        let last = self.vals.last().copied();
        let Some(last) = last else { return };
        // Sinks: the values nothing uses (latest first, at most 4), so that little of the
        // program is dead code.
        let uses = self.f.use_counts();
        let sinks: Vec<Value> = self
            .vals
            .iter()
            .rev()
            .copied()
            .filter(|v| uses.get(v.index()).copied().unwrap_or(0) == 0)
            .take(4)
            .collect();
        if self.smooth() {
            // The loss adds up every sink's weighted sum; the first parameter's if none
            // fits under the magnitude bound.
            let mut loss: Option<Value> = None;
            let candidates: Vec<Value> = sinks
                .iter()
                .copied()
                .chain(self.f.params().first().copied())
                .collect();
            for v in candidates {
                if loss.is_some() && self.f.params().first() == Some(&v) {
                    break;
                }
                let Some(part) = self.loss(v) else { continue };
                loss = match loss {
                    None => Some(part),
                    Some(acc) => {
                        let iv = (
                            self.iv_of(acc).0 + self.iv_of(part).0,
                            self.iv_of(acc).1 + self.iv_of(part).1,
                        );
                        self.push(Op::Binary(BinaryOp::Add), &[acc, part], iv)
                            .or(Some(acc))
                    }
                };
            }
            if let Some(l) = loss {
                self.f.set_outputs(vec![l]);
            }
            return;
        }
        let mut outs = sinks;
        if outs.is_empty() {
            outs.push(last);
        }
        self.f.set_outputs(outs);
    }

    /// Records a value (and its interval in smooth mode).
    fn note(&mut self, v: Value, iv: Iv) {
        // Smooth programs compute on f64 only (index constants and predicates are
        // operands, never inputs of further arithmetic).
        if !self.smooth() || self.f.ty(v).dtype == DType::F64 {
            self.vals.push(v);
        }
        if self.iv.len() <= v.index() {
            self.iv.resize(v.index() + 1, (-SMOOTH_MAX, SMOOTH_MAX));
        }
        self.iv[v.index()] = iv;
    }

    fn random_dtype(&mut self, allow_bool: bool) -> DType {
        let ds: Vec<DType> = DType::ALL
            .into_iter()
            .filter(|d| allow_bool || *d != DType::Bool)
            .collect();
        self.r.pick(&ds).unwrap_or(DType::F64)
    }

    /// Rank `min_rank..=3`, extents 1–4; in forward mode an extent is 0 now and then. In
    /// a large-shape program two shapes in three draw from [`LARGE_EXTENTS`] instead
    /// (at most [`LARGE_MAX_NUMEL`] elements).
    fn random_shape(&mut self, min_rank: usize) -> Vec<usize> {
        let rank = min_rank + self.r.below(4 - min_rank.min(3));
        if self.large && !self.r.one_in(3) {
            let mut numel = 1;
            return (0..rank)
                .map(|_| {
                    let fits: Vec<usize> = LARGE_EXTENTS
                        .into_iter()
                        .filter(|&e| numel * e <= LARGE_MAX_NUMEL)
                        .collect();
                    let e = self.r.pick(&fits).unwrap_or(1);
                    numel *= e;
                    e
                })
                .collect();
        }
        let zero_ok = !self.smooth();
        (0..rank)
            .map(|_| {
                if zero_ok && self.r.one_in(24) {
                    0
                } else {
                    1 + self.r.below(4)
                }
            })
            .collect()
    }

    /// Whether the value may feed a discontinuous op (forward mode: not computed inexactly).
    fn exact(&self, v: Value) -> bool {
        // Recomputing the taint per call is quadratic in program size, which stays small.
        inexact_values(&self.f, true).get(v.index()).copied() == Some(Exactness::Exact)
    }

    /// Appends `op` when it type-checks and its results are small; returns its result.
    fn push(&mut self, op: Op, args: &[Value], iv: Iv) -> Option<Value> {
        let tys: Vec<&TensorType> = args.iter().map(|&a| self.f.ty(a)).collect();
        let res = infer_types(&op, &tys).ok()?;
        let max = if self.large {
            LARGE_MAX_NUMEL
        } else {
            MAX_NUMEL
        };
        if res.len() != 1 || res.iter().any(|t| t.numel() > max) {
            return None;
        }
        if self.smooth() && !(mag(iv) <= SMOOTH_MAX) {
            return None;
        }
        let v = *self.f.push_unchecked(op, args.to_vec(), res).first()?;
        self.note(v, iv);
        Some(v)
    }

    /// Whether `op` accepts operands of these types.
    fn accepts(op: &Op, tys: &[TensorType]) -> bool {
        let refs: Vec<&TensorType> = tys.iter().collect();
        infer_types(op, &refs).is_ok()
    }

    /// `v` converted to `d` (itself when it already has dtype `d`).
    fn convert(&mut self, v: Value, d: DType) -> Option<Value> {
        let from = self.f.ty(v).dtype;
        if from == d {
            return Some(v);
        }
        // A float value computed inexactly must not be rounded to an integer or a bool.
        if from.is_float() && !d.is_float() && !self.exact(v) {
            return None;
        }
        let iv = self.iv_of(v);
        self.push(Op::Convert { to: d }, &[v], iv)
    }

    /// Dtypes to try for an operand: its own first, then the others in random order.
    fn dtype_order(&mut self, own: DType) -> Vec<DType> {
        let mut ds: Vec<DType> = DType::ALL.into_iter().filter(|&d| d != own).collect();
        self.r.shuffle(&mut ds);
        if self.smooth() {
            return vec![DType::F64];
        }
        let mut out = vec![own];
        out.extend(ds);
        out
    }

    /// `x` converted to the first dtype (see [`Gen::dtype_order`]) for which `make(dtype)`
    /// yields an op accepting `x` (and `extra` operands of `x`'s type).
    fn fit(&mut self, x: Value, arity: usize, make: impl Fn(DType) -> Op) -> Option<(Value, Op)> {
        let xt = self.ty(x);
        for d in self.dtype_order(xt.dtype) {
            let op = make(d);
            let t = xt.with_dtype(d);
            if Self::accepts(&op, &vec![t; arity]) {
                let x2 = self.convert(x, d)?;
                return Some((x2, op));
            }
        }
        None
    }

    /// A constant of type `ty`: floats are multiples of 1/4 in [-2, 2], integers in [-5, 5];
    /// in smooth mode floats in [-2, 2] at random.
    fn constant(&mut self, ty: &TensorType) -> Option<Value> {
        let n = ty.numel();
        let smooth = self.smooth();
        let r = &mut *self.r;
        let mut real = || {
            if smooth {
                r.uniform(-2.0, 2.0)
            } else {
                (r.below(17) as f64 - 8.0) * 0.25
            }
        };
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
        let (lo, hi) = match &data {
            Data::F64(v) if !v.is_empty() => v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x), b.max(x))
                }),
            _ => (-5.0, 5.0),
        };
        let t = Tensor::new(ty.shape.clone(), data).ok()?;
        self.push(Op::Constant(t), &[], (lo, hi))
    }

    /// A scalar constant broadcast to `shape` (f64).
    fn splat(&mut self, v: f64, ty: &TensorType) -> Option<Value> {
        let c = Tensor::full(&TensorType::scalar(ty.dtype), v);
        let c = self.push(Op::Constant(c), &[], (v, v))?;
        let op = Op::BroadcastInDim {
            shape: ty.shape.clone(),
            dims: vec![],
        };
        self.push(op, &[c], (v, v))
    }

    /// Smooth mode: a value proven positive (at least 0.1), `x` itself or `x*x + 0.5`.
    fn positive(&mut self, x: Value) -> Option<Value> {
        let iv = self.iv_of(x);
        if iv.0 >= 0.1 {
            return Some(x);
        }
        let m = mag(iv);
        let sq = self.push(Op::Binary(BinaryOp::Mul), &[x, x], (0.0, m * m))?;
        let ty = self.ty(x);
        let half = self.splat(0.5, &ty)?;
        self.push(Op::Binary(BinaryOp::Add), &[sq, half], (0.5, m * m + 0.5))
    }

    /// A value of `v`'s type: an existing one (possibly `v`) or a new constant.
    fn partner(&mut self, v: Value) -> Option<Value> {
        let ty = self.ty(v);
        let same: Vec<Value> = self
            .vals
            .iter()
            .copied()
            .filter(|&w| *self.f.ty(w) == ty)
            .collect();
        if !self.r.one_in(3) {
            self.r.pick(&same)
        } else {
            self.constant(&ty)
        }
    }

    /// In-range indices for an axis of size `size` (≥ 1): a scalar or a vector of 1–3.
    fn indices(&mut self, size: usize) -> Option<Value> {
        let rank = self.r.below(2);
        let shape: Vec<usize> = (0..rank).map(|_| 1 + self.r.below(3)).collect();
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| self.r.below(size) as i64).collect();
        let t = Tensor::new(shape, Data::I64(data)).ok()?;
        self.push(Op::Constant(t), &[], (0.0, size as f64))
    }

    /// Rank ≥ 1 view of `v` (a rank-0 value is reshaped to `[1]`).
    fn at_least_1d(&mut self, v: Value) -> Option<Value> {
        if self.f.ty(v).rank() == 0 {
            let iv = self.iv_of(v);
            self.push(Op::Reshape { shape: vec![1] }, &[v], iv)
        } else {
            Some(v)
        }
    }

    fn loss(&mut self, last: Value) -> Option<Value> {
        let ty = self.ty(last);
        let w = self.constant(&ty)?;
        let m = mag(self.iv_of(last)) * 2.0;
        let p = self.push(Op::Binary(BinaryOp::Mul), &[last, w], (-m, m))?;
        let axes: Vec<usize> = (0..ty.rank()).collect();
        let n = ty.numel() as f64;
        self.push(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes,
            },
            &[p],
            (-m * n, m * n),
        )
    }

    /// An operand: one of the three latest values half of the time (deep chains),
    /// any value otherwise.
    fn operand(&mut self) -> Option<Value> {
        let n = self.vals.len();
        if n > 3 && self.r.coin() {
            self.vals.get(n - 1 - self.r.below(3)).copied()
        } else {
            self.r.pick(&self.vals)
        }
    }

    fn step(&mut self, kind: OpKind) -> Option<Value> {
        let x = self.operand()?;
        match kind {
            OpKind::Unary(u) => self.unary(u, x),
            OpKind::Binary(b) => self.binary(b, x),
            OpKind::Compare => {
                let dirs = CmpOp::ALL;
                let dir = self.r.pick(&dirs)?;
                let (x, op) = self.fit(x, 2, |_| Op::Compare(dir))?;
                let y = self.partner(x)?;
                if !self.smooth() && !(self.exact(x) && self.exact(y)) {
                    return None;
                }
                self.push(op, &[x, y], (0.0, 1.0))
            }
            OpKind::Select => {
                let y = self.partner(x)?;
                let shape = self.ty(x).shape;
                let want = TensorType::new(DType::Bool, shape);
                let preds: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| *self.f.ty(w) == want)
                    .collect();
                let pred = match self.r.pick(&preds) {
                    Some(p) if self.r.coin() => p,
                    _ => {
                        let dir = self.r.pick(&CmpOp::ALL)?;
                        let (a, op) = self.fit(x, 2, |_| Op::Compare(dir))?;
                        let b = self.partner(a)?;
                        if !self.smooth() && !(self.exact(a) && self.exact(b)) {
                            return None;
                        }
                        self.push(op, &[a, b], (0.0, 1.0))?
                    }
                };
                let iv = hull(self.iv_of(x), self.iv_of(y));
                self.push(Op::Select, &[pred, x, y], iv)
            }
            OpKind::Reduce(kind) => {
                let rank = self.f.ty(x).rank();
                let axes: Vec<usize> = (0..rank).filter(|_| self.r.coin()).collect();
                let axes2 = axes.clone();
                let (x, op) = self.fit(x, 1, move |_| Op::Reduce {
                    kind,
                    axes: axes2.clone(),
                })?;
                let xt = self.ty(x);
                let n = axes.iter().map(|&a| xt.shape[a]).product::<usize>() as f64;
                let iv = self.combined_iv(kind, x, n)?;
                self.push(op, &[x], iv)
            }
            OpKind::Cumulative(kind) => {
                let x = self.at_least_1d(x)?;
                let axis = self.r.below(self.f.ty(x).rank());
                let reverse = self.r.coin();
                let (x, op) = self.fit(x, 1, move |_| Op::Cumulative {
                    kind,
                    axis,
                    reverse,
                })?;
                let n = self.ty(x).shape[axis] as f64;
                let iv = self.combined_iv(kind, x, n)?;
                self.push(op, &[x], iv)
            }
            OpKind::Argsort => {
                let x = self.at_least_1d(x)?;
                let xt = self.ty(x);
                let axis = self.r.below(xt.rank());
                let descending = self.r.coin();
                let (x, op) = self.fit(x, 1, move |_| Op::Argsort { axis, descending })?;
                // A last-bit difference upstream may reorder the permutation.
                if !self.exact(x) {
                    return None;
                }
                let n = xt.shape[axis] as f64;
                self.push(op, &[x], (0.0, (n - 1.0).max(0.0)))
            }
            OpKind::Dot => self.dot(x),
            OpKind::Transpose => {
                let mut perm: Vec<usize> = (0..self.f.ty(x).rank()).collect();
                self.r.shuffle(&mut perm);
                let iv = self.iv_of(x);
                self.push(Op::Transpose { perm }, &[x], iv)
            }
            OpKind::Reshape => {
                let mut n = self.f.ty(x).numel();
                let rank = self.r.below(4).max(usize::from(n != 1));
                let mut shape = vec![1; rank];
                if n == 0 {
                    let slot = self.r.below(rank);
                    shape[slot] = 0;
                }
                let mut p = 2;
                while n > 1 {
                    while n % p != 0 {
                        p += 1;
                    }
                    n /= p;
                    let slot = self.r.below(rank);
                    shape[slot] *= p;
                }
                let iv = self.iv_of(x);
                self.push(Op::Reshape { shape }, &[x], iv)
            }
            OpKind::Broadcast => {
                let xt = self.ty(x);
                let extra = if xt.rank() < 3 { self.r.below(2) } else { 0 };
                let out_rank = xt.rank() + extra;
                let mut is_new = vec![false; out_rank];
                let mut placed = 0;
                while placed < extra {
                    let k = self.r.below(out_rank);
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
                        shape.push(1 + self.r.below(3));
                    } else {
                        let s = xt.shape[next];
                        shape.push(if s == 1 { 1 + self.r.below(3) } else { s });
                        dims.push(k);
                        next += 1;
                    }
                }
                let iv = self.iv_of(x);
                self.push(Op::BroadcastInDim { shape, dims }, &[x], iv)
            }
            OpKind::Slice => {
                let xt = self.ty(x);
                let mut starts = Vec::new();
                let mut limits = Vec::new();
                // Empty slices only in forward mode (a smooth program's reductions over
                // nothing would be infinite).
                let empty_ok = usize::from(!self.smooth());
                for &n in &xt.shape {
                    if n == 0 {
                        starts.push(0);
                        limits.push(0);
                        continue;
                    }
                    let s = self.r.below(n + empty_ok);
                    starts.push(s);
                    limits
                        .push(s + (1 - empty_ok) + self.r.below(n - s + empty_ok - (1 - empty_ok)));
                }
                let iv = self.iv_of(x);
                self.push(Op::Slice { starts, limits }, &[x], iv)
            }
            OpKind::Pad => {
                let xt = self.ty(x);
                let low = (0..xt.rank()).map(|_| self.r.below(3)).collect();
                let high = (0..xt.rank()).map(|_| self.r.below(3)).collect();
                let v = self.constant(&TensorType::scalar(xt.dtype))?;
                let iv = hull(self.iv_of(x), self.iv_of(v));
                self.push(Op::Pad { low, high }, &[x, v], iv)
            }
            OpKind::Concat => {
                let x = self.at_least_1d(x)?;
                let xt = self.ty(x);
                let axis = self.r.below(xt.rank());
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
                let mut iv = self.iv_of(x);
                for _ in 0..self.r.below(3) {
                    let w = self.r.pick(&cands)?;
                    iv = hull(iv, self.iv_of(w));
                    args.push(w);
                }
                self.push(Op::Concatenate { axis }, &args, iv)
            }
            OpKind::Gather => {
                let x = self.at_least_1d(x)?;
                let xt = self.ty(x);
                let axis = self.r.below(xt.rank());
                let size = xt.shape[axis];
                if size == 0 {
                    return None;
                }
                let idx = self.indices(size)?;
                let iv = self.iv_of(x);
                self.push(Op::Gather { axis }, &[x, idx], iv)
            }
            OpKind::ScatterAdd => {
                // Any numeric dtype: probe with `neg`, which accepts exactly those.
                let (base, _) = self.fit(x, 1, |_| Op::Unary(UnaryOp::Neg))?;
                let base = self.at_least_1d(base)?;
                let bt = self.ty(base);
                let axis = self.r.below(bt.rank());
                let size = bt.shape[axis];
                if size == 0 {
                    return None;
                }
                let idx = self.indices(size)?;
                let it = self.ty(idx);
                let want = TensorType::new(bt.dtype, gather_shape(&bt.shape, &it.shape, axis));
                let existing: Vec<Value> = self
                    .vals
                    .iter()
                    .copied()
                    .filter(|&w| *self.f.ty(w) == want)
                    .collect();
                let upd = match self.r.pick(&existing) {
                    Some(u) if self.r.coin() => u,
                    _ => self.constant(&want)?,
                };
                let m = mag(self.iv_of(base)) + it.numel() as f64 * mag(self.iv_of(upd));
                self.push(Op::ScatterAdd { axis }, &[base, idx, upd], (-m, m))
            }
            OpKind::Convert => {
                let to = self.random_dtype(true);
                self.convert(x, to)
            }
            OpKind::Iota => {
                let shape = self.random_shape(1);
                let dim = self.r.below(shape.len());
                let d = if self.smooth() {
                    DType::F64
                } else {
                    self.random_dtype(false)
                };
                let n = shape.get(dim).copied().unwrap_or(1) as f64;
                let ty = TensorType::new(d, shape);
                self.push(Op::Iota { ty, dim }, &[], (0.0, n))
            }
            OpKind::Constant => {
                let shape = self.random_shape(0);
                let d = if self.smooth() {
                    DType::F64
                } else {
                    self.random_dtype(true)
                };
                self.constant(&TensorType::new(d, shape))
            }
        }
    }

    /// A bound of `kind` combining up to `n` elements of `x` (a reduction or a scan);
    /// `None` for a long product in smooth mode (it could leave the smooth range).
    fn combined_iv(&self, kind: ReduceOp, x: Value, n: f64) -> Option<Iv> {
        let (lo, hi) = self.iv_of(x);
        let m = mag((lo, hi));
        Some(match kind {
            ReduceOp::Sum => (lo.min(0.0) * n, hi.max(0.0) * n),
            ReduceOp::Prod => {
                if self.smooth() && n > 8.0 {
                    return None;
                }
                (-(m.max(1.0).powf(n)), m.max(1.0).powf(n))
            }
            ReduceOp::Max | ReduceOp::Min => (lo, hi),
        })
    }

    fn unary(&mut self, u: UnaryOp, x: Value) -> Option<Value> {
        if !self.smooth() {
            // Ops that turn a last-bit difference into a large one (the op table's
            // sensitivity: a jump, a periodic function of a huge argument, a complex
            // branch cut) need an exact operand.
            let amplifies = match u.sensitivity() {
                Sensitivity::Never => false,
                Sensitivity::Complex => self.f.ty(x).dtype.is_complex(),
                Sensitivity::Always => true,
            };
            if amplifies && !self.exact(x) {
                return None;
            }
            let (x, op) = self.fit(x, 1, |_| Op::Unary(u))?;
            return self.push(op, &[x], (0.0, 0.0));
        }
        // stop_gradient's derivative is zero by definition, not that of its value: smooth
        // programs (checked against finite differences) leave it out.
        if u == UnaryOp::StopGradient {
            return None;
        }
        // Smooth mode (f64): move the operand into the op's smooth domain, then bound the
        // result by sampling the table's semantics over the operand's interval.
        let arg = match u.domain() {
            Domain::All => x,
            Domain::Positive | Domain::NonZero => self.positive(x)?,
            Domain::AboveOne => {
                let p = self.positive(x)?;
                let (lo, hi) = self.iv_of(p);
                let ty = self.ty(p);
                let one = self.splat(1.0, &ty)?;
                self.push(Op::Binary(BinaryOp::Add), &[p, one], (lo + 1.0, hi + 1.0))?
            }
            Domain::OpenUnit => {
                let t = self.push(Op::Unary(UnaryOp::Tanh), &[x], (-1.0, 1.0))?;
                let ty = self.ty(t);
                let s = self.splat(0.9, &ty)?;
                self.push(Op::Binary(BinaryOp::Mul), &[t, s], (-0.9, 0.9))?
            }
        };
        let iv = sampled_range(u, self.iv_of(arg))?;
        self.push(Op::Unary(u), &[arg], iv)
    }

    fn binary(&mut self, b: BinaryOp, x: Value) -> Option<Value> {
        if !self.smooth() {
            let (x, op) = self.fit(x, 2, |_| Op::Binary(b))?;
            let y = self.partner(x)?;
            // Complex pow has the branch cut of log (see `unary`); atan2 jumps by 2π across
            // its cut, and the sign of a zero operand picks the side.
            let cut =
                (b == BinaryOp::Pow && self.f.ty(x).dtype.is_complex()) || b == BinaryOp::Atan2;
            if cut && !(self.exact(x) && self.exact(y)) {
                return None;
            }
            return self.push(op, &[x, y], (0.0, 0.0));
        }
        let y = self.partner(x)?;
        let (a, c) = (self.iv_of(x), self.iv_of(y));
        let corners = |p: Iv, q: Iv, f: &dyn Fn(f64, f64) -> f64| {
            let vs = [f(p.0, q.0), f(p.0, q.1), f(p.1, q.0), f(p.1, q.1)];
            vs.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                })
        };
        match b {
            BinaryOp::Add => self.push(Op::Binary(b), &[x, y], (a.0 + c.0, a.1 + c.1)),
            BinaryOp::Sub => self.push(Op::Binary(b), &[x, y], (a.0 - c.1, a.1 - c.0)),
            BinaryOp::Mul => {
                let iv = corners(a, c, &|p, q| p * q);
                self.push(Op::Binary(b), &[x, y], iv)
            }
            BinaryOp::Max => self.push(Op::Binary(b), &[x, y], (a.0.max(c.0), a.1.max(c.1))),
            BinaryOp::Min => self.push(Op::Binary(b), &[x, y], (a.0.min(c.0), a.1.min(c.1))),
            BinaryOp::Div => {
                let d = self.positive(y)?;
                let di = self.iv_of(d);
                let iv = corners(a, di, &|p, q| p / q);
                self.push(Op::Binary(b), &[x, d], iv)
            }
            BinaryOp::Atan2 => {
                // a positive second operand keeps away from the origin and the cut
                let d = self.positive(y)?;
                let h = std::f64::consts::FRAC_PI_2;
                self.push(Op::Binary(b), &[x, d], (-h, h))
            }
            BinaryOp::Rem => {
                let d = self.positive(y)?;
                let m = mag(a);
                self.push(Op::Binary(b), &[x, d], (-m, m))
            }
            // Integer bit operations: never on the smooth (float) path.
            BinaryOp::And
            | BinaryOp::Or
            | BinaryOp::Xor
            | BinaryOp::ShiftLeft
            | BinaryOp::ShiftRightLogical => None,
            BinaryOp::Pow => {
                // Positive base, exponent squashed into [-2, 2] by 2·tanh.
                let base = self.positive(x)?;
                let t = self.push(Op::Unary(UnaryOp::Tanh), &[y], (-1.0, 1.0))?;
                let ty = self.ty(t);
                let two = self.splat(2.0, &ty)?;
                let e = self.push(Op::Binary(BinaryOp::Mul), &[t, two], (-2.0, 2.0))?;
                let bi = self.iv_of(base);
                let iv = corners(bi, (-2.0, 2.0), &|p, q| p.powf(q));
                self.push(Op::Binary(b), &[base, e], iv)
            }
        }
    }

    fn dot(&mut self, x: Value) -> Option<Value> {
        let (l, _) = self.fit(x, 1, |_| Op::Unary(UnaryOp::Neg))?;
        let lt = self.ty(l);
        let cands: Vec<Value> = self
            .vals
            .iter()
            .copied()
            .filter(|&w| self.f.ty(w).dtype == lt.dtype)
            .collect();
        let rv = self.r.pick(&cands)?;
        let rt = self.ty(rv);
        let mut pairs: Vec<(usize, usize)> = (0..lt.rank())
            .flat_map(|a| (0..rt.rank()).map(move |b| (a, b)))
            .filter(|&(a, b)| lt.shape[a] == rt.shape[b])
            .collect();
        self.r.shuffle(&mut pairs);
        let mut d = DotDims::default();
        let mut rank = lt.rank() + rt.rank();
        let mut k = 1usize;
        for (a, b) in pairs {
            if rank <= 3 && self.r.coin() {
                break;
            }
            let used_l = d.lhs_contract.contains(&a) || d.lhs_batch.contains(&a);
            let used_r = d.rhs_contract.contains(&b) || d.rhs_batch.contains(&b);
            if used_l || used_r {
                continue;
            }
            if self.r.one_in(4) {
                d.lhs_batch.push(a);
                d.rhs_batch.push(b);
                rank -= 1;
            } else {
                d.lhs_contract.push(a);
                d.rhs_contract.push(b);
                k *= lt.shape[a];
                rank -= 2;
            }
        }
        if rank > 4 {
            return None;
        }
        let m = k as f64 * mag(self.iv_of(l)) * mag(self.iv_of(rv));
        self.push(Op::DotGeneral(d), &[l, rv], (-m, m))
    }
}

/// One element through the op table's f64 semantics.
struct One(f64);

impl ElemMap<f64, f64> for One {
    type Out = f64;
    fn map<F: Fn(f64) -> f64 + Copy>(self, f: F) -> f64 {
        f(self.0)
    }
}

/// The range of `u` over `[lo, hi]` from 257 samples of its f64 semantics, widened by a
/// tenth of its width (the functions are smooth there, so extrema between samples are
/// within that margin); `None` if a sample is not finite or exceeds [`SMOOTH_MAX`].
fn sampled_range(u: UnaryOp, (lo, hi): Iv) -> Option<Iv> {
    let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..=256 {
        let x = lo + (hi - lo) * (i as f64 / 256.0);
        let y = u.map_f64(One(x))?;
        if !y.is_finite() || y.abs() > SMOOTH_MAX {
            return None;
        }
        a = a.min(y);
        b = b.max(y);
    }
    let pad = 0.1 * (b - a) + 1e-12;
    Some((a - pad, b + pad))
}

/// Kinds used by smooth programs: all but those without a useful derivative in f64
/// (compare, convert, whose results are bool / other dtypes; select is kept).
fn smooth_kind(k: OpKind) -> bool {
    !matches!(k, OpKind::Compare | OpKind::Convert | OpKind::Argsort)
}
