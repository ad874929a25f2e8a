//! Generic tests over every op of the op table (`tenferro_ir::optable`): a new op is tested
//! here the moment it is defined. For every unary op and every dtype it accepts:
//! - the CPU backend, fused and unfused, at 1 and 2 threads, against the reference
//!   evaluator (bit-exact, or within 4 ulp for the kernels documented as ≤ 2 ulp);
//! - its JVP against central finite differences (f64 and c64 where accepted);
//! - the adjoint identity ⟨vjp(c), t⟩ = ⟨c, jvp(t)⟩;
//! - the text round trip, O2 (e-graph) equal to O0, and eager equal to traced.

use num_complex::Complex64;
use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_ir::eval::{eval, eval_op};
use tenferro_ir::{
    parse, print, BinaryOp, DType, Domain, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp,
};
use tenferro_passes::OptLevel;
use tenferro_runtime::{CompileOptions, GraphCompiler, GraphExecutor, TracedTensor};

/// Every dtype but bool (which no elementwise arithmetic accepts).
const DTYPES: [DType; 6] = {
    let mut out = [DType::F32; 6];
    let mut i = 0;
    let mut k = 0;
    while i < DType::ALL.len() {
        if !matches!(DType::ALL[i], DType::Bool) {
            out[k] = DType::ALL[i];
            k += 1;
        }
        i += 1;
    }
    out
};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545F4914F6CDD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// `n` values of `dtype` in `[lo, hi]` (real and imaginary parts), plus the special
/// values every kernel must agree on when `specials` is set.
fn values(rng: &mut Rng, dtype: DType, n: usize, lo: f64, hi: f64, specials: bool) -> Tensor {
    let mut re: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    if specials && n > 8 {
        re[..6].copy_from_slice(&[0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NAN]);
    }
    let im: Vec<f64> = (0..n).map(|_| rng.uniform(lo, hi)).collect();
    let shape = vec![n];
    match dtype {
        DType::F64 => Tensor::from_vec_col_major(shape, re).unwrap(),
        DType::F32 => {
            Tensor::from_vec_col_major(shape, re.iter().map(|&v| v as f32).collect()).unwrap()
        }
        DType::C64 => Tensor::from_vec_col_major(
            shape,
            re.iter()
                .zip(&im)
                .map(|(&a, &b)| Complex64::new(a, b))
                .collect(),
        )
        .unwrap(),
        DType::C32 => Tensor::from_vec_col_major(
            shape,
            re.iter()
                .zip(&im)
                .map(|(&a, &b)| num_complex::Complex32::new(a as f32, b as f32))
                .collect(),
        )
        .unwrap(),
        // integers: the reals scaled by 100 (non-finite ones become 7), converted
        DType::I64 | DType::I32 => {
            let scaled: Vec<i64> = re
                .iter()
                .map(|&v| if v.is_finite() { (v * 100.0) as i64 } else { 7 })
                .collect();
            let t = Tensor::from_vec_col_major(shape, scaled).unwrap();
            eval_op(&Op::Convert { to: dtype }, &[&t])
                .unwrap()
                .remove(0)
        }
        DType::Bool => unreachable!("no unary op accepts bool"),
    }
}

/// Every element as (re, im) in f64.
fn parts(t: &Tensor) -> Vec<(f64, f64)> {
    (0..t.numel())
        .map(|i| {
            let z = t.data().get_c64(i);
            (z.re, z.im)
        })
        .collect()
}

fn ulp_close(a: f64, b: f64, eps: f64, ulps: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    (a - b).abs() <= ulps * eps * a.abs().max(b.abs()).max(f64::MIN_POSITIVE)
}

/// Same bits (NaN payloads aside), or within `ulps` when `approx`; integers exactly.
fn agree(got: &Tensor, want: &Tensor, approx: bool) -> bool {
    if got.ty() != want.ty() {
        return false;
    }
    if !got.dtype().is_float() {
        return got.bits_eq(want);
    }
    let eps = match got.dtype() {
        DType::F32 | DType::C32 => f32::EPSILON as f64,
        _ => f64::EPSILON,
    };
    let ulps = if approx { 4.0 } else { 0.0 };
    parts(got)
        .iter()
        .zip(parts(want))
        .all(|(&(a, b), (c, d))| ulp_close(a, c, eps, ulps) && ulp_close(b, d, eps, ulps))
}

/// The kernels documented as within 2 ulp of the table's semantics (checked at 4).
fn approximate(u: UnaryOp, dtype: DType) -> bool {
    tenferro_cpu::fused_ulps(u, dtype) > 0
}

fn accepted(u: UnaryOp) -> Vec<DType> {
    DTYPES.into_iter().filter(|&d| u.accepts(d)).collect()
}

#[test]
fn every_unary_op_has_a_dtype_and_a_result_type() {
    for &u in UnaryOp::ALL.iter() {
        assert!(!accepted(u).is_empty(), "{} accepts no dtype", u.name());
        for d in DTYPES {
            let ty = TensorType::new(d, vec![3]);
            let inferred = tenferro_ir::infer_types(&Op::Unary(u), &[&ty]);
            match u.result_dtype(d) {
                Some(r) => assert_eq!(inferred.unwrap(), vec![ty.with_dtype(r)], "{}", u.name()),
                None => assert!(
                    inferred.is_err(),
                    "{} on {d:?} should be rejected",
                    u.name()
                ),
            }
        }
    }
}

/// Compiles `y` at O0 and runs it on the CPU backend at 1 and 2 threads, fused and
/// unfused, with `inputs` (in the order of the program's parameters), against the
/// reference evaluator: within 4 ulp where `approx(fusion)`, else bit-exact. `what`
/// names the case in a failure.
fn matches_reference(
    y: &TracedTensor,
    inputs: &[(&TracedTensor, Tensor)],
    approx: impl Fn(bool) -> bool,
    what: &str,
) {
    let p0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
        .compile(y)
        .unwrap();
    let values: Vec<Tensor> = inputs.iter().map(|(_, v)| v.clone()).collect();
    let want = eval(p0.function(), &values).unwrap().remove(0);
    for threads in [1, 2] {
        for fusion in [true, false] {
            let backend = CpuBackend::with_threads(threads).with_fusion(fusion);
            let got = GraphExecutor::new(backend)
                .run_with_inputs(&p0, inputs)
                .unwrap();
            assert!(
                agree(&got, &want, approx(fusion)),
                "{what}: {threads} threads, fusion {fusion}"
            );
        }
    }
}

#[test]
fn every_unary_op_runs_on_the_cpu_as_the_reference_evaluator_does() {
    let mut rng = Rng(0x5eed);
    for &u in UnaryOp::ALL.iter() {
        for d in accepted(u) {
            let xv = values(&mut rng, d, 1000, -3.0, 3.0, true);
            let x = TracedTensor::input(d, &[1000]);
            // alone, and inside a fused chain (the op's result feeds another op)
            let alone = x.unary(u);
            let chain = alone.unary(UnaryOp::Neg);
            for y in [&alone, &chain] {
                let what = format!("{} on {d:?}", u.name());
                let approx = approximate(u, d);
                matches_reference(y, &[(&x, xv.clone())], |_| approx, &what);
            }
        }
    }
}

/// `n` integers of the integer dtype `d` in [-1000, 1000], with the extremes of its width
/// one time in sixteen (so sums and products wrap).
fn wide_ints(rng: &mut Rng, d: DType, n: usize) -> Tensor {
    let v: Vec<i64> = (0..n)
        .map(|_| match (rng.next() * 16.0) as u32 {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.uniform(-1000.0, 1000.0) as i64,
        })
        .collect();
    let shape = vec![n];
    match d {
        DType::I64 => Tensor::from_vec_col_major(shape, v).unwrap(),
        DType::I32 => Tensor::from_vec_col_major(
            shape,
            v.iter()
                .map(|&x| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                .collect(),
        )
        .unwrap(),
        other => unreachable!("{other} is not an integer dtype"),
    }
}

#[test]
fn integer_reductions_scans_sorts_and_products_run_on_the_cpu_as_the_reference_evaluator_does() {
    // Sizes past the lane count and the tile / block sizes, so the fused whole
    // reductions, the row reductions and the blocked scans all run.
    let (m, n) = (37, 301);
    let mut rng = Rng(0x1d);
    for d in DTYPES.into_iter().filter(|d| !d.is_float()) {
        let xv = wide_ints(&mut rng, d, m * n).reshaped(vec![m, n]).unwrap();
        let x = TracedTensor::input(d, &[m, n]);
        let mixed = (&x * 3).binary(BinaryOp::Xor, &x);
        let mut outs: Vec<TracedTensor> = Vec::new();
        for kind in [ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min] {
            let reduce = |t: &TracedTensor, axes: &[usize]| match kind {
                ReduceOp::Sum => t.reduce_sum(axes),
                ReduceOp::Prod => t.reduce_prod(axes),
                ReduceOp::Max => t.reduce_max(axes),
                ReduceOp::Min => t.reduce_min(axes),
            };
            for axes in [vec![0], vec![1], vec![0, 1]] {
                // alone, and fused with elementwise work on its operand
                outs.push(reduce(&x, &axes));
                outs.push(reduce(&mixed, &axes));
            }
            outs.push(x.cumulative(kind, 1, false));
            outs.push(x.cumulative(kind, 0, true));
        }
        outs.push(x.argsort(1, true));
        outs.push(x.matmul(&x.transpose(&[1, 0]).unwrap()).unwrap());
        for (i, y) in outs.iter().enumerate() {
            matches_reference(y, &[(&x, xv.clone())], |_| false, &format!("#{i} on {d:?}"));
        }
    }
}

/// A point where every op is smooth: real parts in [0.3, 0.9], imaginary in [0.1, 0.5].
fn smooth_point(rng: &mut Rng, d: DType, n: usize) -> Tensor {
    match d {
        DType::C64 => {
            let v: Vec<Complex64> = (0..n)
                .map(|_| Complex64::new(rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.5)))
                .collect();
            Tensor::from_vec_col_major(vec![n], v).unwrap()
        }
        _ => values(rng, d, n, 0.3, 0.9, false),
    }
}

fn ones(d: DType, n: usize) -> Tensor {
    match d {
        DType::F64 => Tensor::from_vec_col_major(vec![n], vec![1.0f64; n]).unwrap(),
        _ => Tensor::from_vec_col_major(vec![n], vec![Complex64::new(1.0, 0.0); n]).unwrap(),
    }
}

fn axpy(x: &Tensor, s: f64, t: &Tensor) -> Tensor {
    match x.dtype() {
        DType::F64 => {
            let (a, b) = (x.to_vec::<f64>().unwrap(), t.to_vec::<f64>().unwrap());
            let v = a.iter().zip(&b).map(|(p, q)| p + s * q).collect();
            Tensor::from_vec_col_major(x.shape().to_vec(), v).unwrap()
        }
        _ => {
            let (a, b) = (
                x.to_vec::<Complex64>().unwrap(),
                t.to_vec::<Complex64>().unwrap(),
            );
            let v = a.iter().zip(&b).map(|(p, q)| p + q * s).collect();
            Tensor::from_vec_col_major(x.shape().to_vec(), v).unwrap()
        }
    }
}

/// The real inner product Σ Re(conj(a)·b).
fn inner(a: &Tensor, b: &Tensor) -> f64 {
    parts(a)
        .iter()
        .zip(parts(b))
        .map(|(&(p, q), (r, s))| p * r + q * s)
        .sum()
}

fn run(y: &TracedTensor, inputs: &[(&TracedTensor, Tensor)]) -> Tensor {
    let p = GraphCompiler::new().compile(y).unwrap();
    GraphExecutor::new(CpuBackend::new())
        .run_with_inputs(&p, inputs)
        .unwrap()
}

#[test]
fn every_unary_jvp_matches_finite_differences_and_its_vjp_is_the_adjoint() {
    let mut rng = Rng(42);
    let ad = AdContext::new();
    for &u in UnaryOp::ALL.iter() {
        for d in [DType::F64, DType::C64] {
            if !u.accepts(d) {
                continue;
            }
            let n = 6;
            let xv = smooth_point(&mut rng, d, n);
            // [0.3, 0.9] lies in every domain but acosh's (x > 1): shift it there.
            let xv = if u.domain() == Domain::AboveOne {
                axpy(&xv, 1.0, &ones(d, n))
            } else {
                xv
            };
            let tv = smooth_point(&mut rng, d, n);
            let x = TracedTensor::input(d, &[n]);
            let t = TracedTensor::input(d, &[n]);
            let y = x.unary(u);
            let jvp = ad.jvp(&y, &x, &t).unwrap();
            let got = run(&jvp, &[(&x, xv.clone()), (&t, tv.clone())]);
            let h = 1e-6;
            // stop_gradient's derivative is zero by definition: its "function" for the
            // finite differences is a constant.
            let f = |p: &Tensor| {
                let p = if u == UnaryOp::StopGradient { &xv } else { p };
                eval_op(&Op::Unary(u), &[p]).unwrap().remove(0)
            };
            let (fp, fm) = (f(&axpy(&xv, h, &tv)), f(&axpy(&xv, -h, &tv)));
            let fd: Vec<(f64, f64)> = parts(&fp)
                .iter()
                .zip(parts(&fm))
                .map(|(&(a, b), (c, e))| ((a - c) / (2.0 * h), (b - e) / (2.0 * h)))
                .collect();
            for (g, w) in parts(&got).iter().zip(&fd) {
                let err = (g.0 - w.0).abs().max((g.1 - w.1).abs());
                let scale = 1.0 + w.0.abs().max(w.1.abs());
                assert!(
                    err <= 1e-6 * scale,
                    "jvp of {} on {d:?}: {g:?} vs finite differences {w:?}",
                    u.name()
                );
            }
            // ⟨vjp(c), t⟩ = ⟨c, jvp(t)⟩
            let ry = f(&xv);
            let cv = smooth_point(&mut rng, ry.dtype(), n);
            let c = TracedTensor::input(ry.dtype(), &[n]);
            let vjp = ad.vjp(&y, &x, &c).unwrap();
            let back = run(&vjp, &[(&x, xv.clone()), (&c, cv.clone())]);
            let (l, r) = (inner(&back, &tv), inner(&cv, &got));
            assert!(
                (l - r).abs() <= 1e-12 * (1.0 + l.abs()),
                "adjoint identity of {} on {d:?}: {l} vs {r}",
                u.name()
            );
        }
    }
}

#[test]
fn every_unary_op_round_trips_through_text_and_the_egraph_and_matches_eager() {
    let mut rng = Rng(7);
    let ctx = EagerContext::new(CpuBackend::new());
    for &u in UnaryOp::ALL.iter() {
        for d in accepted(u) {
            let x = TracedTensor::input(d, &[16]);
            let y = x.unary(u);
            let p0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
                .compile(&y)
                .unwrap();
            let text = print(p0.function());
            let back: Function = parse(&text).unwrap();
            assert_eq!(print(&back), text, "{}", u.name());
            assert!(text.contains(u.name()), "{text}");
            let xv = values(&mut rng, d, 16, -2.0, 2.0, true);
            let want = eval(&back, std::slice::from_ref(&xv)).unwrap().remove(0);
            let o2 = run(&y, &[(&x, xv.clone())]);
            assert!(agree(&o2, &want, approximate(u, d)), "O2 {}", u.name());
            let eager = ctx
                .from_tensor(xv.clone())
                .unary(u)
                .unwrap()
                .value()
                .unwrap();
            assert!(agree(&eager, &o2, false), "eager {} on {d:?}", u.name());
        }
    }
}

fn accepted2(b: BinaryOp) -> Vec<DType> {
    DTYPES.into_iter().filter(|&d| b.accepts(d)).collect()
}

#[test]
fn every_binary_op_runs_on_the_cpu_as_the_reference_evaluator_does() {
    let mut rng = Rng(0xb1);
    for &b in BinaryOp::ALL.iter() {
        for d in accepted2(b) {
            let (xv, yv) = (
                values(&mut rng, d, 1000, -3.0, 3.0, true),
                values(&mut rng, d, 1000, -3.0, 3.0, false),
            );
            let x = TracedTensor::input(d, &[1000]);
            let y = TracedTensor::input(d, &[1000]);
            let z = x.binary(b, &y);
            // pow and complex division/product have documented non-bit-exact fused kernels
            let approx = b == BinaryOp::Pow || d.is_complex();
            matches_reference(
                &z,
                &[(&x, xv), (&y, yv)],
                |fusion| approx && fusion,
                &format!("{} on {d:?}", b.name()),
            );
        }
    }
}

#[test]
fn every_binary_jvp_matches_finite_differences_and_its_vjp_is_the_adjoint() {
    let mut rng = Rng(0xb2);
    let ad = AdContext::new();
    for &b in BinaryOp::ALL.iter() {
        for d in [DType::F64, DType::C64] {
            if !b.accepts(d) {
                continue;
            }
            let n = 5;
            // x in [0.3, 0.9], y in [1.3, 1.9]: away from every kink, tie and pole
            let xv = smooth_point(&mut rng, d, n);
            let yv = axpy(&smooth_point(&mut rng, d, n), 1.0, &ones(d, n));
            let (tx, ty) = (smooth_point(&mut rng, d, n), smooth_point(&mut rng, d, n));
            let x = TracedTensor::input(d, &[n]);
            let y = TracedTensor::input(d, &[n]);
            let (txi, tyi) = (TracedTensor::input(d, &[n]), TracedTensor::input(d, &[n]));
            let z = x.binary(b, &y);
            let jvp = ad.jvp_many(&z, &[&x, &y], &[&txi, &tyi]).unwrap();
            let inputs = [
                (&x, xv.clone()),
                (&y, yv.clone()),
                (&txi, tx.clone()),
                (&tyi, ty.clone()),
            ];
            let got = run(&jvp, &inputs);
            let h = 1e-6;
            let f = |p: &Tensor, q: &Tensor| eval_op(&Op::Binary(b), &[p, q]).unwrap().remove(0);
            let fp = f(&axpy(&xv, h, &tx), &axpy(&yv, h, &ty));
            let fm = f(&axpy(&xv, -h, &tx), &axpy(&yv, -h, &ty));
            for (g, (p, m)) in parts(&got).iter().zip(parts(&fp).iter().zip(parts(&fm))) {
                let w = ((p.0 - m.0) / (2.0 * h), (p.1 - m.1) / (2.0 * h));
                let err = (g.0 - w.0).abs().max((g.1 - w.1).abs());
                assert!(
                    err <= 1e-6 * (1.0 + w.0.abs().max(w.1.abs())),
                    "jvp of {} on {d:?}: {g:?} vs finite differences {w:?}",
                    b.name()
                );
            }
            // ⟨vjp(c), (tx, ty)⟩ = ⟨c, jvp⟩
            let cv = smooth_point(&mut rng, d, n);
            let c = TracedTensor::input(d, &[n]);
            let gs = ad.vjp_many(&z, &[&x, &y], &c).unwrap();
            let bind = [(&x, xv.clone()), (&y, yv.clone()), (&c, cv.clone())];
            let l = inner(&run(&gs[0], &bind), &tx) + inner(&run(&gs[1], &bind), &ty);
            let r = inner(&cv, &got);
            assert!(
                (l - r).abs() <= 1e-12 * (1.0 + l.abs()),
                "adjoint identity of {} on {d:?}: {l} vs {r}",
                b.name()
            );
        }
    }
}
