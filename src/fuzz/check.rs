//! The oracles: one program checked against the reference evaluator on the CPU backend
//! ([`check_forward`]), and one smooth program's gradient checked against finite
//! differences and its JVP ([`check_grad`]).
//!
//! Forward comparison rules, from what the backend promises (and the backend tests in
//! `codegen-cpu/tests/ops.rs` / `fusion.rs` accept):
//! - a value no inexact kernel touched ([`super::gen::inexact_values`]) must be
//!   bit-identical to the reference, except that NaNs match NaNs whatever their sign and
//!   payload (IEEE 754 leaves the sign of an arithmetic NaN unspecified);
//! - other values must be within the tests' tolerance, `|cpu - ref| <= tol·(1 + |ref|)`
//!   per real component with `tol = 1e-4` when f32 / c32 arithmetic rounded differently
//!   upstream (even if the value was converted to f64 since) and `1e-11` otherwise; NaN
//!   matches NaN, equal infinities match, and an element non-finite on both sides matches
//!   (sums and complex arithmetic over infinities depend on the order of operations);
//!   when the inputs hold infinities or NaNs, an inexact value is compared only where
//!   both sides are finite (exponentials and tanh turn order-dependent infinities finite);
//! - an inexact value beyond tolerance is skipped, not failed, when the reference itself
//!   moves beyond tolerance under another valid order of its sums (reversed, eight
//!   interleaved partial sums as a vector loop adds, or contractions by fused
//!   multiply-adds) or with every inexact op's result
//!   moved by 4 ulps: rounding, not the backend, decides that value;
//! - 2 threads must reproduce 1 thread's bits exactly (README: results repeat bit for bit).

use super::gen::{inexact_values, op_is_inexact, Exactness};
use super::rng::Rng;
use super::{catch, Outcome};
use num_complex::{Complex32, Complex64};
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_ir::eval::SumOrder;
use tenferro_ir::{eval, BinaryOp, CmpOp, DType, Data, Function, Op, Tensor, TensorType, UnaryOp};
use tenferro_passes::{OptLevel, Pipeline};
use tenferro_runtime::{
    Backend, CompileOptions, ExtensionRegistry, GraphCompiler, GraphExecutor, TracedTensor,
};

/// The CPU backends a check runs on, built once (each multi-threaded backend owns a pool).
pub struct Backends {
    /// `(threads, fusion, backend)` for 1 and 2 threads, fusion off and on.
    cpus: Vec<(usize, bool, CpuBackend)>,
    registry: ExtensionRegistry,
}

impl Default for Backends {
    fn default() -> Self {
        Backends::new()
    }
}

impl Backends {
    /// Backends with 1 and 2 threads, fusion off and on.
    pub fn new() -> Backends {
        let mut cpus = Vec::new();
        for threads in [1, 2] {
            for fusion in [false, true] {
                cpus.push((
                    threads,
                    fusion,
                    CpuBackend::with_threads(threads).with_fusion(fusion),
                ));
            }
        }
        Backends {
            cpus,
            registry: ExtensionRegistry::new(),
        }
    }

    /// The backend with these settings (the 1-thread fused one if absent).
    pub fn get(&self, threads: usize, fusion: bool) -> CpuBackend {
        self.cpus
            .iter()
            .find(|(t, f, _)| *t == threads && *f == fusion)
            .map(|(_, _, b)| b.clone())
            .unwrap_or_else(|| CpuBackend::with_threads(1))
    }

    /// Prepares and runs `f`; a panic is reported as `Err("panic: ...")` by the caller.
    fn run(
        &self,
        threads: usize,
        fusion: bool,
        f: &Function,
        inputs: &[Tensor],
    ) -> Result<Result<Vec<Tensor>, String>, String> {
        let b = self.get(threads, fusion);
        catch(|| {
            let p = b.prepare(f).map_err(|e| e.to_string())?;
            b.execute(&p, inputs, &self.registry)
                .map_err(|e| e.to_string())
        })
    }
}

/// Random inputs for `f`'s parameters from `seed`: floats mostly in [-3, 3], sometimes
/// small integers (so comparisons tie) and, for one seed in four, special values
/// (±0, ±inf, NaN) now and then; integers in [-4, 4] with rare extremes (of their width);
/// bools either way.
pub fn random_inputs(f: &Function, seed: u64) -> Vec<Tensor> {
    // Salted: the generator draws the program's constants from `Rng::new(seed)`, and
    // inputs equal to constants would sit exactly on ties and kinks.
    let mut r = Rng::new(seed ^ INPUT_SALT);
    let special = r.one_in(4);
    f.param_types()
        .iter()
        .map(|ty| random_tensor(&mut r, ty, special))
        .collect()
}

/// Mixed into input seeds so inputs never replay the generator's random stream.
pub const INPUT_SALT: u64 = 0x1a9b_07c3_55e1_d2f4;

fn random_float(r: &mut Rng, special: bool) -> f64 {
    match r.below(10) {
        0 if special => [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][r.below(5)],
        1 | 2 => r.below(5) as f64 - 2.0,
        _ => r.uniform(-3.0, 3.0),
    }
}

/// `n` integers of type `$t` in [-4, 4], with its extremes (or 0) one time in twelve.
macro_rules! random_ints {
    ($r:expr, $n:expr, $t:ty) => {
        (0..$n)
            .map(|_| {
                if $r.one_in(12) {
                    [<$t>::MIN, <$t>::MAX, 0][$r.below(3)]
                } else {
                    $r.below(9) as $t - 4
                }
            })
            .collect()
    };
}

/// A random tensor of type `ty` (see [`random_inputs`]); zeros if `ty` is too large.
pub fn random_tensor(r: &mut Rng, ty: &TensorType, special: bool) -> Tensor {
    let n = ty.numel();
    let data = match ty.dtype {
        DType::F32 => Data::F32((0..n).map(|_| random_float(r, special) as f32).collect()),
        DType::F64 => Data::F64((0..n).map(|_| random_float(r, special)).collect()),
        DType::C32 => Data::C32(
            (0..n)
                .map(|_| {
                    Complex32::new(
                        random_float(r, special) as f32,
                        random_float(r, special) as f32,
                    )
                })
                .collect(),
        ),
        DType::C64 => Data::C64(
            (0..n)
                .map(|_| Complex64::new(random_float(r, special), random_float(r, special)))
                .collect(),
        ),
        DType::I32 => Data::I32(random_ints!(r, n, i32)),
        DType::I64 => Data::I64(random_ints!(r, n, i64)),
        DType::Bool => Data::Bool((0..n).map(|_| r.coin()).collect()),
    };
    Tensor::new(ty.shape.clone(), data).unwrap_or_else(|_| Tensor::zeros(ty))
}

/// Compares `got` with `want`: bit-exact for an [`Exactness::Exact`] value, else within
/// the tolerance (of the precision that rounded differently) of the module documentation.
/// Returns a description of the first difference.
pub fn compare(got: &Tensor, want: &Tensor, exactness: Exactness) -> Option<String> {
    if got.ty() != want.ty() {
        return Some(format!("type {} vs reference {}", got.ty(), want.ty()));
    }
    if exactness == Exactness::Exact || matches!(got.dtype(), DType::I32 | DType::I64 | DType::Bool)
    {
        if got.bits_eq(want) {
            return None;
        }
        let i = (0..got.numel())
            .find(|&i| {
                let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
                g.re.to_bits() != w.re.to_bits() || g.im.to_bits() != w.im.to_bits()
            })
            .unwrap_or(0);
        return Some(format!(
            "bits differ at element {i}: cpu {} vs ref {} ({})",
            elem(got, i),
            elem(want, i),
            got.ty()
        ));
    }
    let tol = match (got.dtype(), exactness) {
        (DType::F32 | DType::C32, _) | (_, Exactness::Single) => 1e-4,
        _ => 1e-11,
    };
    // A complex component is compared relative to the whole number's magnitude: rounding
    // in one part of a product lands in both parts at the scale of |z|.
    let close = |g: f64, w: f64, scale: f64| {
        (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * (1.0 + scale)
    };
    for i in 0..got.numel() {
        let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
        // Sums (GEMM, reductions) and complex arithmetic over infinities depend on the
        // order of operations: a non-finite result matches any other non-finite one.
        let both_special =
            !(g.re.is_finite() && g.im.is_finite()) && !(w.re.is_finite() && w.im.is_finite());
        let scale = if got.dtype().is_complex() {
            w.norm()
        } else {
            w.re.abs()
        };
        if !(both_special || (close(g.re, w.re, scale) && close(g.im, w.im, scale))) {
            return Some(format!(
                "element {i}: cpu {} vs ref {} beyond tolerance {tol} ({})",
                elem(got, i),
                elem(want, i),
                got.ty()
            ));
        }
    }
    None
}

/// `true` when every element where `got` and `want` are both finite is within tolerance.
fn differs_only_where_non_finite(got: &Tensor, want: &Tensor, exactness: Exactness) -> bool {
    let finite = |c: num_complex::Complex64| c.re.is_finite() && c.im.is_finite();
    let keep: Vec<usize> = (0..got.numel().min(want.numel()))
        .filter(|&i| finite(got.data().get_c64(i)) && finite(want.data().get_c64(i)))
        .collect();
    let pick = |t: &Tensor| {
        let v: Vec<num_complex::Complex64> = keep.iter().map(|&i| t.data().get_c64(i)).collect();
        Tensor::new(vec![v.len()], Data::C64(v)).ok()
    };
    // The picked elements are c64: keep single-precision tolerance for f32 / c32 data.
    let level = if matches!(got.dtype(), DType::F32 | DType::C32) {
        Exactness::Single
    } else {
        exactness.max(Exactness::Double)
    };
    match (pick(got), pick(want)) {
        (Some(g), Some(w)) => compare(&g, &w, level).is_none(),
        _ => false,
    }
}

/// `true` when `got` and `want` differ only in elements that are NaN on both sides.
pub fn nan_bits_only(got: &Tensor, want: &Tensor) -> bool {
    got.ty() == want.ty()
        && (0..got.numel()).all(|i| {
            let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
            let same = g.re.to_bits() == w.re.to_bits() && g.im.to_bits() == w.im.to_bits();
            same || ((g.re.is_nan() || g.im.is_nan()) && (w.re.is_nan() || w.im.is_nan()))
        })
}

fn elem(t: &Tensor, i: usize) -> String {
    let c = t.data().get_c64(i);
    if t.dtype().is_complex() {
        format!("({:e}, {:e})", c.re, c.im)
    } else {
        format!("{:e}", c.re)
    }
}

/// Optimisation levels every forward program is compiled at.
pub const LEVELS: [OptLevel; 3] = [OptLevel::O0, OptLevel::O1, OptLevel::O2];

/// Runs `f` through the pipeline of `level` with the verifier after every pass.
pub fn optimize(f: &Function, level: OptLevel) -> Outcome<Function> {
    let mut g = f.clone();
    let mut p = Pipeline::for_level(level);
    p.verify_each = true;
    match catch(|| p.run(&mut g, &mut |_| {})) {
        Err(panic) => Outcome::Fail {
            class: "panic:passes".into(),
            message: format!("{level:?}: {panic}"),
        },
        Ok(Err(e)) => Outcome::Fail {
            class: "pass-error".into(),
            message: format!("{level:?}: {e}"),
        },
        Ok(Ok(_)) => Outcome::Pass(g),
    }
}

/// The differential check of one verified program: the reference evaluator on
/// [`random_inputs`] against the CPU backend at O0, O1 and O2, fusion off and on, with 1
/// thread (and 2 threads, bit-identical to 1, when `threads_check`). Programs the
/// reference evaluator rejects are skipped.
pub fn check_forward(
    f: &Function,
    input_seed: u64,
    backends: &Backends,
    threads_check: bool,
) -> Outcome<()> {
    let inputs = random_inputs(f, input_seed);
    let want = match catch(|| eval::eval(f, &inputs)) {
        Err(panic) => {
            return Outcome::Fail {
                class: "panic:eval".into(),
                message: panic,
            }
        }
        Ok(Err(e)) => return Outcome::Skip(format!("reference evaluator: {e}")),
        Ok(Ok(w)) => w,
    };
    let specials = inputs.iter().any(|t| {
        (0..t.numel()).any(|i| {
            let c = t.data().get_c64(i);
            !(c.re.is_finite() && c.im.is_finite())
        })
    });
    for level in LEVELS {
        let g = match optimize(f, level) {
            Outcome::Pass(g) => g,
            Outcome::Skip(s) => return Outcome::Skip(s),
            Outcome::Fail { class, message } => return Outcome::Fail { class, message },
        };
        if g.output_types() != f.output_types() {
            return Outcome::Fail {
                class: "pass-type-change".into(),
                message: format!("{level:?} changed the output types"),
            };
        }
        for fusion in [false, true] {
            let taint = inexact_values(&g, fusion);
            let mut first: Option<Vec<Tensor>> = None;
            let thread_counts: &[usize] = if threads_check { &[1, 2] } else { &[1] };
            for &threads in thread_counts {
                let cfg = format!("{level:?} fusion={fusion} threads={threads}");
                let got = match backends.run(threads, fusion, &g, &inputs) {
                    Err(panic) => {
                        return Outcome::Fail {
                            class: "panic:backend".into(),
                            message: format!("{cfg}: {panic}"),
                        }
                    }
                    Ok(Err(e)) => {
                        return Outcome::Fail {
                            class: "backend-error".into(),
                            message: format!("{cfg}: {e}"),
                        }
                    }
                    Ok(Ok(got)) => got,
                };
                if got.len() != want.len() {
                    return Outcome::Fail {
                        class: "backend-error".into(),
                        message: format!("{cfg}: {} outputs, want {}", got.len(), want.len()),
                    };
                }
                if let Some(one) = &first {
                    for (k, (a, b)) in got.iter().zip(one).enumerate() {
                        if !a.bits_eq(b) {
                            let why = compare(a, b, Exactness::Exact).unwrap_or_default();
                            return Outcome::Fail {
                                class: "threads-mismatch".into(),
                                message: format!("{cfg}: output {k} differs from 1 thread: {why}"),
                            };
                        }
                    }
                    continue;
                }
                for (k, (gt, w)) in got.iter().zip(&want).enumerate() {
                    let exactness = g
                        .outputs()
                        .get(k)
                        .and_then(|o| taint.get(o.index()))
                        .copied()
                        .unwrap_or(Exactness::Single);
                    // With non-finite inputs, an inexact value may be non-finite on one
                    // side only: sums and complex products over infinities depend on the
                    // order of operations, and exponentials and tanh map either to finite
                    // values. Such outputs are compared only where both sides are finite.
                    let lenient = exactness != Exactness::Exact && specials;
                    let mismatch = compare(gt, w, exactness)
                        .filter(|_| !(lenient && differs_only_where_non_finite(gt, w, exactness)));
                    // NaNs whose sign or payload differ are equal: IEEE 754 leaves the sign
                    // of an arithmetic NaN unspecified, and no kernel or rewrite promises it.
                    if let Some(why) = mismatch.filter(|_| !nan_bits_only(gt, w)) {
                        if let Some(skip) = decided_by_rounding(f, &inputs, k, w, exactness) {
                            return Outcome::Skip(skip);
                        }
                        return Outcome::Fail {
                            class: "forward-mismatch".into(),
                            message: format!("{cfg}: output {k} ({exactness:?}): {why}"),
                        };
                    }
                }
                first = Some(got);
            }
        }
    }
    Outcome::Pass(())
}

/// Why output `k` of `f` is decided by rounding, if it is: the reference evaluator moves
/// beyond the tolerance from its result `want` when its sums run in another valid order
/// ([`SumOrder`]), or when the result of every op the backend may round differently
/// ([`op_is_inexact`]) moves by 4 ulps. Catastrophic cancellation in a sum, and ops that
/// amplify a last-bit difference (`rem` of a large quotient, `pow` of a negative base at a
/// nearly integral exponent, a comparison of nearly equal values) make such outputs; a
/// backend that rounds within its documented ulps is then not wrong. Bit-exact outputs
/// are never excused.
fn decided_by_rounding(
    f: &Function,
    inputs: &[Tensor],
    k: usize,
    want: &Tensor,
    exactness: Exactness,
) -> Option<String> {
    if exactness == Exactness::Exact {
        return None;
    }
    let differs = |alt: Option<Vec<Tensor>>| compare(alt?.get(k)?, want, exactness);
    let reordered = [
        SumOrder::Reversed,
        SumOrder::Strided,
        SumOrder::Fused,
        SumOrder::Pairwise,
    ]
    .into_iter()
    .find_map(|order| {
        let why = differs(catch(|| eval::eval_in_order(f, inputs, order)).ok()?.ok())?;
        Some(format!(
            "output {k} depends on the order of sums: the reference in {order:?} order \
                 differs from its sequential result ({why})"
        ))
    });
    reordered.or_else(|| {
        [Nudge::Up, Nudge::Down, Nudge::ToInteger]
            .into_iter()
            .find_map(|how| {
                let g = nudged(f, how)?;
                let why = differs(catch(|| eval::eval(&g, inputs)).ok()?.ok())?;
                Some(format!(
                    "output {k} is decided by rounding: the reference with every inexact op's \
                     result moved {how:?} by up to 4 ulps differs from its result ({why})"
                ))
            })
    })
}

/// How [`nudged`] moves a result: scaled by `1 ± 4ε` of its precision, or (real
/// results) onto the nearest integer when within `4ε` of it relatively, where `pow` of a
/// negative base and `rem` change branch.
#[derive(Clone, Copy, Debug)]
enum Nudge {
    Up,
    Down,
    ToInteger,
}

/// `f` with the result of every op the fused backend may round differently
/// ([`op_is_inexact`]) moved as `how` says.
fn nudged(f: &Function, how: Nudge) -> Option<Function> {
    let mut g = Function::new(f.name.clone());
    let mut map: Vec<Option<tenferro_ir::Value>> = vec![None; f.num_values()];
    for (p, q) in f.params().iter().zip(g.add_params_of(f)) {
        *map.get_mut(p.index())? = Some(q);
    }
    for inst in f.insts() {
        let args: Vec<tenferro_ir::Value> = inst
            .args
            .iter()
            .map(|a| map.get(a.index()).copied().flatten())
            .collect::<Option<_>>()?;
        let dts: Vec<DType> = args.iter().map(|&a| g.ty(a).dtype).collect();
        let inexact = op_is_inexact(&inst.op, &dts, true);
        let results = g.push(inst.op.clone(), &args).ok()?;
        for (r, v) in inst.results.iter().zip(results) {
            let ty = g.ty(v).clone();
            let v = if inexact && ty.dtype.is_float() {
                move_value(&mut g, v, &ty, how)?
            } else {
                v
            };
            *map.get_mut(r.index())? = Some(v);
        }
    }
    let outs = f
        .outputs()
        .iter()
        .map(|o| map.get(o.index()).copied().flatten())
        .collect::<Option<_>>()?;
    g.set_outputs(outs);
    Some(g)
}

/// The loss of a smooth program at `xs` by the reference evaluator (None if not finite).
fn loss_at(f: &Function, xs: &[Tensor]) -> Option<f64> {
    let out = catch(|| eval::eval(f, xs)).ok()?.ok()?;
    let v = out.first()?.as_slice::<f64>().ok()?.first().copied()?;
    v.is_finite().then_some(v)
}

/// `x + s·v` elementwise (f64 tensors of one shape).
fn axpy(x: &Tensor, s: f64, v: &Tensor) -> Option<Tensor> {
    let a = x.as_slice::<f64>().ok()?;
    let b = v.as_slice::<f64>().ok()?;
    let d: Vec<f64> = a.iter().zip(b).map(|(p, q)| p + s * q).collect();
    Tensor::new(x.shape().to_vec(), Data::F64(d)).ok()
}

/// Central difference of `f`'s loss at `xs` along `vs` with step `h`.
fn central(f: &Function, xs: &[Tensor], vs: &[Tensor], h: f64) -> Option<f64> {
    let plus: Vec<Tensor> = xs
        .iter()
        .zip(vs)
        .map(|(x, v)| axpy(x, h, v))
        .collect::<Option<_>>()?;
    let minus: Vec<Tensor> = xs
        .iter()
        .zip(vs)
        .map(|(x, v)| axpy(x, -h, v))
        .collect::<Option<_>>()?;
    Some((loss_at(f, &plus)? - loss_at(f, &minus)?) / (2.0 * h))
}

/// Whether a discrete decision of `f` (a comparison, an index: every bool or integer value
/// it computes) differs anywhere on `x + t·h·v` for `t` in ±1, ±1/2 from its value at
/// `x`. A branch that rounding or the step flips makes the difference quotient measure a
/// jump, not the derivative the program's gradient gives.
fn decisions_change(f: &Function, xs: &[Tensor], vs: &[Tensor], h: f64) -> bool {
    let decisions: Vec<_> = f
        .insts()
        .iter()
        .flat_map(|i| i.results.iter().copied())
        .filter(|&v| f.try_ty(v).is_some_and(|t| !t.dtype.is_float()))
        .collect();
    if decisions.is_empty() {
        return false;
    }
    let mut g = f.clone();
    g.set_outputs(decisions);
    let at = |t: f64| -> Option<Vec<Tensor>> {
        let p: Vec<Tensor> = xs
            .iter()
            .zip(vs)
            .map(|(x, v)| axpy(x, t * h, v))
            .collect::<Option<_>>()?;
        catch(|| eval::eval(&g, &p)).ok()?.ok()
    };
    let Some(here) = at(0.0) else {
        return false;
    };
    [1.0, -1.0, 0.5, -0.5]
        .into_iter()
        .any(|t| at(t).is_none_or(|d| d.iter().zip(&here).any(|(a, b)| !a.bits_eq(b))))
}

/// `v` (of type `ty`, a float) moved as `how` says, by ops appended to `g`.
fn move_value(
    g: &mut Function,
    v: tenferro_ir::Value,
    ty: &TensorType,
    how: Nudge,
) -> Option<tenferro_ir::Value> {
    let eps = match ty.dtype {
        DType::F32 | DType::C32 => f64::from(f32::EPSILON),
        _ => f64::EPSILON,
    };
    let constant = |g: &mut Function, x: f64| -> Option<tenferro_ir::Value> {
        g.push1(Op::Constant(Tensor::try_full(ty, x).ok()?), &[])
            .ok()
    };
    let mul = Op::Binary(BinaryOp::Mul);
    match how {
        Nudge::Up | Nudge::Down => {
            let dir = if matches!(how, Nudge::Up) { 1.0 } else { -1.0 };
            let scale = constant(g, 1.0 + dir * 4.0 * eps)?;
            g.push1(mul, &[v, scale]).ok()
        }
        Nudge::ToInteger if ty.dtype.is_complex() => Some(v),
        Nudge::ToInteger => {
            let tol = constant(g, 4.0 * eps)?;
            let r = g.push1(Op::Unary(UnaryOp::Round), &[v]).ok()?;
            let d = g.push1(Op::Binary(BinaryOp::Sub), &[v, r]).ok()?;
            let d = g.push1(Op::Unary(UnaryOp::Abs), &[d]).ok()?;
            let a = g.push1(Op::Unary(UnaryOp::Abs), &[v]).ok()?;
            let lim = g.push1(mul, &[a, tol]).ok()?;
            let near = g.push1(Op::Compare(CmpOp::Le), &[d, lim]).ok()?;
            g.push1(Op::Select, &[near, r, v]).ok()
        }
    }
}

/// Finite-difference step of [`check_grad`].
pub const FD_STEP: f64 = 1e-5;
/// Relative tolerance of `⟨grad, v⟩` against the central difference.
pub const FD_TOL: f64 = 1e-6;
/// Relative tolerance of `jvp(v)` against `⟨grad, v⟩` (both exact derivatives).
pub const JVP_TOL: f64 = 1e-9;

/// The gradient check of one smooth program `f` (f64 parameters, one f64 scalar output):
/// at inputs uniform in [-2, 2] and a direction `v` uniform in [-1, 1] (both from
/// `seed`), `grad` (tenferro-ad, compiled at O0/O1/O2 and run with fusion off or on, as
/// `seed` picks) must satisfy `|⟨grad, v⟩ - fd| <= FD_TOL·(1 + S)` where `fd` is the
/// central difference with step [`FD_STEP`] and `S = Σ|grad_i·v_i| + |fd|`, and
/// `|jvp(v) - ⟨grad, v⟩| <= JVP_TOL·(1 + S)`. Points where the difference quotient with
/// half the step disagrees (a kink or a jump within the step), or where a comparison or
/// index of the program changes within the step, are skipped.
pub fn check_grad(f: &Function, seed: u64, backends: &Backends) -> Outcome<()> {
    let mut r = Rng::new(seed ^ INPUT_SALT);
    let tys = f.param_types();
    if tys.iter().any(|t| t.dtype != DType::F64)
        || f.output_types() != vec![TensorType::scalar(DType::F64)]
    {
        return Outcome::Skip("not a smooth f64 program with a scalar loss".into());
    }
    let uniform = |r: &mut Rng, ty: &TensorType, lo: f64, hi: f64| {
        let d = (0..ty.numel()).map(|_| r.uniform(lo, hi)).collect();
        Tensor::new(ty.shape.clone(), Data::F64(d)).unwrap_or_else(|_| Tensor::zeros(ty))
    };
    let xs: Vec<Tensor> = tys.iter().map(|t| uniform(&mut r, t, -2.0, 2.0)).collect();
    let vs: Vec<Tensor> = tys.iter().map(|t| uniform(&mut r, t, -1.0, 1.0)).collect();
    let level = super::check::LEVELS[(seed % 3) as usize];
    let fusion = (seed >> 2) & 1 == 1;
    let cfg = format!("{level:?} fusion={fusion}");

    let Some(_) = loss_at(f, &xs) else {
        return Outcome::Skip("loss not finite".into());
    };
    let (Some(fd1), Some(fd2)) = (
        central(f, &xs, &vs, FD_STEP),
        central(f, &xs, &vs, FD_STEP / 2.0),
    ) else {
        return Outcome::Skip("loss not finite near the point".into());
    };

    // Trace the program on placeholders, differentiate, compile, run.
    let ad = catch(|| -> Result<Vec<Tensor>, String> {
        let inputs: Vec<TracedTensor> = tys
            .iter()
            .map(|t| TracedTensor::input(t.dtype, &t.shape))
            .collect();
        let refs: Vec<&TracedTensor> = inputs.iter().collect();
        let loss = TracedTensor::call(f, &refs)
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or("no output")?;
        let ctx = AdContext::new();
        let grads = ctx.grad_many(&loss, &refs).map_err(|e| e.to_string())?;
        let dirs: Vec<TracedTensor> = vs.iter().cloned().map(TracedTensor::from_tensor).collect();
        let drefs: Vec<&TracedTensor> = dirs.iter().collect();
        let jvp = ctx
            .jvp_many(&loss, &refs, &drefs)
            .map_err(|e| e.to_string())?;
        let mut outs: Vec<&TracedTensor> = grads.iter().collect();
        outs.push(&jvp);
        let program = GraphCompiler::with_options(CompileOptions::new().opt_level(level))
            .compile_many(&outs)
            .map_err(|e| e.to_string())?;
        let bind: Vec<(&TracedTensor, Tensor)> = inputs
            .iter()
            .zip(&xs)
            .filter(|(p, _)| program.inputs().iter().any(|q| q.same_as(p)))
            .map(|(p, x)| (p, x.clone()))
            .collect();
        let mut exec = GraphExecutor::new(backends.get(1, fusion));
        exec.run_many_with_inputs(&program, &bind)
            .map_err(|e| e.to_string())
    });
    let outs = match ad {
        Err(panic) => {
            return Outcome::Fail {
                class: "panic:autodiff".into(),
                message: format!("{cfg}: {panic}"),
            }
        }
        Ok(Err(e)) => {
            return Outcome::Fail {
                class: "grad-error".into(),
                message: format!("{cfg}: {e}"),
            }
        }
        Ok(Ok(o)) => o,
    };
    let (Some(jvp_t), grads) = (outs.last(), &outs[..outs.len().saturating_sub(1)]) else {
        return Outcome::Fail {
            class: "grad-error".into(),
            message: format!("{cfg}: no outputs"),
        };
    };
    let mut dot = 0.0;
    let mut scale = 0.0;
    for (g, v) in grads.iter().zip(&vs) {
        let (Ok(gs), Ok(vv)) = (g.as_slice::<f64>(), v.as_slice::<f64>()) else {
            return Outcome::Fail {
                class: "grad-error".into(),
                message: format!("{cfg}: gradient of type {} for an f64 input", g.ty()),
            };
        };
        if g.shape() != v.shape() {
            return Outcome::Fail {
                class: "grad-error".into(),
                message: format!("{cfg}: gradient shape {:?} vs {:?}", g.shape(), v.shape()),
            };
        }
        for (a, b) in gs.iter().zip(vv) {
            dot += a * b;
            scale += (a * b).abs();
        }
    }
    let jvp = jvp_t
        .as_slice::<f64>()
        .ok()
        .and_then(|s| s.first().copied())
        .unwrap_or(f64::NAN);
    // Smoothness is judged on the differences and the program's branches alone (a wrong
    // gradient must not widen it).
    if (fd1 - fd2).abs() > FD_TOL * (1.0 + fd1.abs() + fd2.abs()) {
        return Outcome::Skip("not smooth within the step".into());
    }
    if decisions_change(f, &xs, &vs, FD_STEP) {
        return Outcome::Skip("a comparison or index changes within the step".into());
    }
    let s = 1.0 + scale + fd1.abs();
    // The central difference errs by O(h²): Richardson's extrapolation of the two steps,
    // (4·fd(h/2) − fd(h)) / 3, removes that term where the loss curves strongly.
    let extrapolated = (4.0 * fd2 - fd1) / 3.0;
    if !((dot - fd1).abs() <= FD_TOL * s || (dot - extrapolated).abs() <= FD_TOL * s) {
        return Outcome::Fail {
            class: "grad-mismatch".into(),
            message: format!(
                "{cfg}: <grad, v> = {dot:e} but the central difference is {fd1:e} (half step {fd2:e})"
            ),
        };
    }
    if !((jvp - dot).abs() <= JVP_TOL * s) {
        return Outcome::Fail {
            class: "jvp-mismatch".into(),
            message: format!("{cfg}: jvp(v) = {jvp:e} but <grad, v> = {dot:e}"),
        };
    }
    Outcome::Pass(())
}
