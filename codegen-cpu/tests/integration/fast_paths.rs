//! The executor's fast paths: buffers reused across runs and uninitialised results give
//! the same bits as a fresh program; GEMMs that write their transpose, paired sin / cos,
//! broadcast scalars read in place, and the vectorised complex abs / sign agree with the
//! reference evaluator.

use crate::common;

use common::*;
use num_complex::{Complex32, Complex64};
use tenferro_cpu::CpuBackend;
use tenferro_ir::{
    BinaryOp, DType, Data, DotDims, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp, Value,
};
use tenferro_runtime::{Backend, ExtensionRegistry};

fn param(f: &mut Function, dt: DType, shape: &[usize]) -> Value {
    f.add_param(TensorType::new(dt, shape.to_vec()))
}

fn splat(f: &mut Function, dt: DType, v: f64, shape: &[usize]) -> Value {
    let c = f
        .push1(Op::Constant(Tensor::full(&TensorType::scalar(dt), v)), &[])
        .unwrap();
    f.push1(
        Op::BroadcastInDim {
            shape: shape.to_vec(),
            dims: vec![],
        },
        &[c],
    )
    .unwrap()
}

fn rand_tensor(dt: DType, shape: &[usize], seed: u64) -> Tensor {
    SeedRng::new(seed).tensor(&TensorType::new(dt, shape.to_vec()), false)
}

fn matmul(f: &mut Function, a: Value, b: Value) -> Value {
    f.push1(
        Op::DotGeneral(DotDims {
            lhs_contract: vec![1],
            rhs_contract: vec![0],
            lhs_batch: vec![],
            rhs_batch: vec![],
        }),
        &[a, b],
    )
    .unwrap()
}

fn transpose(f: &mut Function, a: Value) -> Value {
    f.push1(Op::Transpose { perm: vec![1, 0] }, &[a]).unwrap()
}

/// A program with intermediates of several kinds: fused groups (in place and pooled),
/// a GEMM and its transpose, a row reduction, a whole reduction.
fn mixed(dt: DType, m: usize, n: usize) -> Function {
    let mut f = Function::new("mixed");
    let a = param(&mut f, dt, &[m, n]);
    let b = param(&mut f, dt, &[n, m]);
    let e = f.push1(Op::Unary(UnaryOp::Tanh), &[a]).unwrap();
    let two = splat(&mut f, dt, 2.0, &[m, n]);
    let g = f.push1(Op::Binary(BinaryOp::Mul), &[e, two]).unwrap();
    let p = matmul(&mut f, g, b);
    let pt = transpose(&mut f, p);
    let q = f.push1(Op::Binary(BinaryOp::Sub), &[pt, pt]).unwrap();
    let h = f.push1(Op::Binary(BinaryOp::Add), &[q, pt]).unwrap();
    let rows = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[h],
        )
        .unwrap();
    let total = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0, 1],
            },
            &[g],
        )
        .unwrap();
    f.set_outputs(vec![h, rows, total]);
    f
}

/// Fills the allocator's free lists with NaN-patterned memory of about `bytes`, so that
/// an uninitialised result that a kernel failed to write would very likely show NaNs.
fn poison_heap(bytes: usize) {
    let mut held = Vec::new();
    for size in [bytes, bytes / 2, bytes / 4, 4096, 256, 64] {
        for _ in 0..4 {
            held.push(vec![f64::NAN; size.max(1) / 8 + 1]);
        }
    }
    drop(held);
}

#[test]
fn buffers_reused_across_runs_give_the_bits_of_a_fresh_program() {
    for (dt, threads, fusion) in [
        (DType::F64, 1, true),
        (DType::F64, 2, true),
        (DType::F32, 1, true),
        (DType::C64, 2, true),
        (DType::F64, 1, false),
    ] {
        let f = mixed(dt, 24, 40);
        let backend = CpuBackend::with_threads(threads).with_fusion(fusion);
        let prepared = backend.prepare(&f).unwrap();
        let reg = ExtensionRegistry::new();
        assert_eq!(prepared.cached_bytes(), 0);
        for run in 0..4u64 {
            let inputs = [
                rand_tensor(dt, &[24, 40], 10 + run),
                rand_tensor(dt, &[40, 24], 20 + run),
            ];
            poison_heap(24 * 40 * 16);
            let got = backend.execute(&prepared, &inputs, &reg).unwrap();
            // A program prepared afresh: nothing cached, nothing stale.
            let fresh = backend.prepare(&f).unwrap();
            let want = backend.execute(&fresh, &inputs, &reg).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.bits_eq(w),
                    "{dt} threads {threads} fusion {fusion} run {run}"
                );
            }
            let reference = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            for (g, w) in got.iter().zip(&reference) {
                let ok = match g.dtype() {
                    DType::F32 => close_rel(g, w, 1e-3),
                    _ => close_rel(g, w, 1e-9),
                };
                assert!(ok, "{dt} vs reference, run {run}");
            }
        }
        // Intermediates were kept for the next run.
        assert!(prepared.cached_bytes() > 0, "{dt} fusion {fusion}");
    }
}

fn close_rel(g: &Tensor, w: &Tensor, tol: f64) -> bool {
    let scale = (0..w.numel())
        .map(|i| w.data().get_c64(i).norm())
        .fold(1.0f64, f64::max);
    (0..g.numel()).all(|i| (g.data().get_c64(i) - w.data().get_c64(i)).norm() <= tol * scale)
}

#[test]
fn stale_pool_contents_never_leak_into_results() {
    // Run 1 fills every intermediate with NaN / inf; run 2 must not see any of it.
    let f = mixed(DType::F64, 16, 16);
    let backend = CpuBackend::with_threads(1);
    let prepared = backend.prepare(&f).unwrap();
    let reg = ExtensionRegistry::new();
    let bad = [
        Tensor::full(&TensorType::new(DType::F64, vec![16, 16]), f64::NAN),
        Tensor::full(&TensorType::new(DType::F64, vec![16, 16]), f64::INFINITY),
    ];
    backend.execute(&prepared, &bad, &reg).unwrap();
    let inputs = [
        rand_tensor(DType::F64, &[16, 16], 3),
        rand_tensor(DType::F64, &[16, 16], 4),
    ];
    let got = backend.execute(&prepared, &inputs, &reg).unwrap();
    for t in &got {
        let v = t.to_vec::<f64>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    }
}

#[test]
fn gemm_writes_the_transpose_of_its_product() {
    for dt in [DType::F64, DType::F32, DType::C64, DType::I64] {
        let (m, k, n) = (7, 5, 3);
        let mut f = Function::new("gemm_t");
        let a = param(&mut f, dt, &[m, k]);
        let b = param(&mut f, dt, &[k, n]);
        let p = matmul(&mut f, a, b);
        let pt = transpose(&mut f, p);
        f.set_outputs(vec![pt]);
        let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
        let kernels: Vec<&str> = prepared.steps().iter().map(|s| s.kernel_name()).collect();
        if dt == DType::I64 {
            assert_eq!(kernels, ["dot_i64"], "{dt}");
        } else {
            assert_eq!(kernels, ["gemm_transposed_out"], "{dt}");
        }
        let inputs = [rand_tensor(dt, &[m, k], 1), rand_tensor(dt, &[k, n], 2)];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        for fusion in [true, false] {
            let got = run_cpu_with(&f, &inputs, 2, fusion);
            assert_eq!(got[0].shape(), &[n, m]);
            if dt == DType::I64 {
                assert!(got[0].bits_eq(&want[0]));
            } else {
                let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
                assert!(close_rel(&got[0], &want[0], tol), "{dt}");
            }
        }
    }
    // A product read by something else keeps its own step.
    let mut f = Function::new("gemm_shared");
    let a = param(&mut f, DType::F64, &[4, 4]);
    let p = matmul(&mut f, a, a);
    let pt = transpose(&mut f, p);
    let s = f.push1(Op::Binary(BinaryOp::Add), &[p, pt]).unwrap();
    f.set_outputs(vec![s]);
    let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert!(prepared.steps().iter().any(|s| s.kernel_name() == "gemm"));
    let inputs = [rand_tensor(DType::F64, &[4, 4], 5)];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    assert!(close_rel(&run_cpu(&f, &inputs, 1)[0], &want[0], 1e-12));
}

#[test]
fn gemm_writing_its_transpose_packs_a_column_major_lhs() {
    // Writing Pᵀ = Bᵀ·Aᵀ, the GEMM streams Aᵀ: with 130 output rows a column-major A is
    // packed row-major; a row-major A (a `[k, m]` parameter contracted on axis 0) is read
    // in place.
    for (lhs_transposed, kernel) in [
        (false, "pack_gemm_transposed_out"),
        (true, "gemm_transposed_out"),
    ] {
        for dt in [DType::F32, DType::F64, DType::C32, DType::C64] {
            let (m, k, n) = (40, 20, 130);
            let mut f = Function::new("gemm_t_pack");
            let a_shape = if lhs_transposed { [k, m] } else { [m, k] };
            let a = param(&mut f, dt, &a_shape);
            let b = param(&mut f, dt, &[k, n]);
            let dims = DotDims {
                lhs_contract: vec![usize::from(!lhs_transposed)],
                rhs_contract: vec![0],
                lhs_batch: vec![],
                rhs_batch: vec![],
            };
            let p = f.push1(Op::DotGeneral(dims), &[a, b]).unwrap();
            let pt = transpose(&mut f, p);
            f.set_outputs(vec![pt]);
            let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
            let kernels: Vec<&str> = prepared.steps().iter().map(|s| s.kernel_name()).collect();
            assert_eq!(kernels, [kernel], "{dt}");
            let inputs = [rand_tensor(dt, &a_shape, 1), rand_tensor(dt, &[k, n], 2)];
            let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            for threads in [1, 2] {
                let got = run_cpu(&f, &inputs, threads);
                assert_eq!(got[0].shape(), &[n, m]);
                assert_close(&got[0], &want[0], &format!("{dt} {threads} threads"));
            }
        }
    }
}

#[test]
fn paired_sin_and_cos_match_separate_ones() {
    for dt in [DType::F64, DType::F32] {
        for cos_first in [false, true] {
            let n = 3000;
            let mut f = Function::new("trig");
            let x = param(&mut f, dt, &[n]);
            let (u1, u2) = if cos_first {
                (UnaryOp::Cos, UnaryOp::Sin)
            } else {
                (UnaryOp::Sin, UnaryOp::Cos)
            };
            let a = f.push1(Op::Unary(u1), &[x]).unwrap();
            let y = f.push1(Op::Binary(BinaryOp::Mul), &[a, x]).unwrap();
            let b = f.push1(Op::Unary(u2), &[x]).unwrap();
            let z = f.push1(Op::Binary(BinaryOp::Sub), &[y, b]).unwrap();
            // `a` stored (an output), `b` only inside the group.
            f.set_outputs(vec![z, a]);
            let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
            let text = prepared.to_string();
            let pair = if cos_first {
                "cos and sin"
            } else {
                "sin and cos"
            };
            assert!(text.contains(pair), "{text}");
            let mut inputs = [rand_tensor(dt, &[n], 9)];
            // Large and special arguments too.
            if dt == DType::F64 {
                let mut v = inputs[0].to_vec::<f64>().unwrap();
                v[..6].copy_from_slice(&[0.0, -0.0, 1e5, -3e8, 1e300, f64::NAN]);
                inputs[0] = Tensor::new(vec![n], Data::F64(v)).unwrap();
            }
            let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            for threads in [1, 2] {
                let got = run_cpu(&f, &inputs, threads);
                for (g, w) in got.iter().zip(&want) {
                    assert_close_nan(g, w, &format!("{dt} cos_first {cos_first}"));
                }
            }
        }
    }
}

#[test]
fn broadcast_scalars_are_read_in_place_and_exact() {
    for dt in [DType::F64, DType::F32, DType::C64, DType::I64] {
        let n = 2500;
        let mut f = Function::new("scalars");
        let x = param(&mut f, dt, &[n]);
        let three = splat(&mut f, dt, 3.0, &[n]);
        let a = f.push1(Op::Binary(BinaryOp::Mul), &[x, three]).unwrap();
        let b = f.push1(Op::Binary(BinaryOp::Sub), &[three, a]).unwrap();
        let c = f.push1(Op::Binary(BinaryOp::Add), &[b, x]).unwrap();
        f.set_outputs(vec![c]);
        let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
        let text = prepared.to_string();
        assert!(text.contains("]*"), "{text}");
        assert!(!text.contains("load"), "{text}");
        let inputs = [rand_tensor(dt, &[n], 4)];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        for threads in [1, 2] {
            assert!(run_cpu(&f, &inputs, threads)[0].bits_eq(&want[0]), "{dt}");
        }
    }
}

#[test]
fn complex_abs_and_sign_are_close_to_hypot_including_edge_values() {
    let edge = [
        (0.0, 0.0),
        (-0.0, 0.0),
        (1e-200, 0.0),
        (3e-170, -4e-170),
        (1e200, 1e200),
        (-1.7e308, 1.7e308),
        (f64::INFINITY, 1.0),
        (1.0, f64::NEG_INFINITY),
        (f64::NAN, 0.0),
        (0.0, f64::NAN),
        (f64::INFINITY, f64::NAN),
        (f64::NAN, f64::NEG_INFINITY),
        (5e-324, 0.0),
        (3.0, 4.0),
    ];
    let n = 1000;
    let mut rng = SeedRng::new(17);
    let mut vals: Vec<(f64, f64)> = (0..n)
        .map(|_| (rng.float(false), rng.float(false)))
        .collect();
    // Edge values spread over several tiles.
    for (i, e) in edge.iter().enumerate() {
        vals[i * 70 + 3] = *e;
    }
    for (dt, sign_first) in [
        (DType::C64, false),
        (DType::C32, false),
        (DType::C64, true),
        (DType::C32, true),
    ] {
        let data = match dt {
            DType::C64 => Data::C64(vals.iter().map(|&(r, i)| Complex64::new(r, i)).collect()),
            _ => Data::C32(
                vals.iter()
                    .map(|&(r, i)| Complex32::new(r as f32, i as f32))
                    .collect(),
            ),
        };
        let z = Tensor::new(vec![n], data).unwrap();
        let mut f = Function::new("abs_sign");
        let p = param(&mut f, dt, &[n]);
        // abs and sign of one operand, in both orders.
        let (a, s) = if sign_first {
            let s = f.push1(Op::Unary(UnaryOp::Sign), &[p]).unwrap();
            (f.push1(Op::Unary(UnaryOp::Abs), &[p]).unwrap(), s)
        } else {
            let a = f.push1(Op::Unary(UnaryOp::Abs), &[p]).unwrap();
            (a, f.push1(Op::Unary(UnaryOp::Sign), &[p]).unwrap())
        };
        let s2 = f.push1(Op::Unary(UnaryOp::Sign), &[s]).unwrap();
        let scaled = f.push1(Op::Convert { to: dt }, &[a]).unwrap();
        let back = f.push1(Op::Binary(BinaryOp::Mul), &[scaled, s]).unwrap();
        f.set_outputs(vec![a, s, s2, back]);
        let want = tenferro_ir::eval::eval(&f, std::slice::from_ref(&z)).unwrap();
        let got = run_cpu(&f, std::slice::from_ref(&z), 1);
        if dt == DType::C64 {
            // c64 abs and sign of one operand share one square root (a twin op).
            let text = CpuBackend::with_threads(1).prepare(&f).unwrap().to_string();
            let pair = if sign_first {
                "sign and abs"
            } else {
                "abs and sign"
            };
            assert!(text.contains(pair), "{text}");
        }
        let tol = if dt == DType::C64 { 8e-16 } else { 4e-7 };
        for (g, w) in got.iter().zip(&want) {
            for (i, v) in vals.iter().enumerate() {
                let (gv, wv) = (g.data().get_c64(i), w.data().get_c64(i));
                // Equal (infinities included), both NaN, or finite and close.
                let same_class = |a: f64, b: f64| {
                    a == b
                        || (a.is_nan() && b.is_nan())
                        || (a.is_finite()
                            && b.is_finite()
                            && (a - b).abs() <= tol * b.abs().max(1e-300))
                };
                assert!(
                    same_class(gv.re, wv.re) && same_class(gv.im, wv.im),
                    "{dt} element {i} ({v:?}): {gv} vs {wv}"
                );
            }
        }
    }
}

#[test]
fn concurrent_runs_of_one_program_agree() {
    // Runs on several threads share the prepared program (and its buffer cache).
    let f = mixed(DType::F64, 20, 30);
    let backend = CpuBackend::with_threads(2);
    let prepared = backend.prepare(&f).unwrap();
    let inputs: Vec<[Tensor; 2]> = (0..4u64)
        .map(|s| {
            [
                rand_tensor(DType::F64, &[20, 30], 100 + s),
                rand_tensor(DType::F64, &[30, 20], 200 + s),
            ]
        })
        .collect();
    let want: Vec<Vec<Tensor>> = inputs
        .iter()
        .map(|i| {
            let fresh = backend.prepare(&f).unwrap();
            backend
                .execute(&fresh, i, &ExtensionRegistry::new())
                .unwrap()
        })
        .collect();
    std::thread::scope(|sc| {
        for t in 0..4 {
            let (backend, prepared, inputs, want) = (&backend, &prepared, &inputs, &want);
            sc.spawn(move || {
                let reg = ExtensionRegistry::new();
                for k in 0..20 {
                    let i = (t + k) % inputs.len();
                    let got = backend.execute(prepared, &inputs[i], &reg).unwrap();
                    for (g, w) in got.iter().zip(&want[i]) {
                        assert!(g.bits_eq(w), "thread {t} run {k}");
                    }
                }
            });
        }
    });
}

#[test]
fn large_results_on_huge_pages_are_complete() {
    // 9.6 MB results: fresh allocations that ask for transparent huge pages.
    let n = 1_200_000;
    let mut f = Function::new("large");
    let x = param(&mut f, DType::F64, &[n]);
    let two = splat(&mut f, DType::F64, 2.0, &[n]);
    let y = f.push1(Op::Binary(BinaryOp::Mul), &[x, two]).unwrap();
    let z = f.push1(Op::Binary(BinaryOp::Sub), &[y, x]).unwrap();
    f.set_outputs(vec![y, z]);
    let inputs = [rand_tensor(DType::F64, &[n], 8)];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    for threads in [1, 2] {
        poison_heap(n * 8);
        let got = run_cpu(&f, &inputs, threads);
        for (g, w) in got.iter().zip(&want) {
            assert!(g.bits_eq(w), "threads {threads}");
        }
    }
}

#[test]
fn vectorised_c64_mul_gives_the_bits_of_complex_mul_including_odd_tails_and_in_place() {
    // Odd lengths leave a one-element tail per tile; `x·x`, `(x·y)·y` and `y·(x·y)`
    // read the destination slot in place; special values (inf, NaN, zero) included.
    for n in [1usize, 7, 1001] {
        let x = SeedRng::new(40 + n as u64).tensor(&TensorType::new(DType::C64, vec![n]), true);
        let y = rand_tensor(DType::C64, &[n], 50 + n as u64);
        let mut f = Function::new("c64_mul");
        let px = param(&mut f, DType::C64, &[n]);
        let py = param(&mut f, DType::C64, &[n]);
        let sq = f.push1(Op::Binary(BinaryOp::Mul), &[px, px]).unwrap();
        let xy = f.push1(Op::Binary(BinaryOp::Mul), &[px, py]).unwrap();
        let xyy = f.push1(Op::Binary(BinaryOp::Mul), &[xy, py]).unwrap();
        let yxyy = f.push1(Op::Binary(BinaryOp::Mul), &[py, xyy]).unwrap();
        let out = f.push1(Op::Binary(BinaryOp::Mul), &[yxyy, sq]).unwrap();
        f.set_outputs(vec![sq, xy, out]);
        let inputs = [x, y];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        let got = run_cpu(&f, &inputs, 1);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            for i in 0..n {
                let (gv, wv) = (g.data().get_c64(i), w.data().get_c64(i));
                let same =
                    |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(
                    same(gv.re, wv.re) && same(gv.im, wv.im),
                    "n {n} output {k} element {i}: {gv} vs {wv}"
                );
            }
        }
    }
}

/// Groups that are one binary op over broadcast and sliced operands run without tile
/// slots (the schedule says `direct`); they give the reference evaluator's bits at one and
/// two threads, for every numeric dtype.
#[test]
fn one_binary_op_over_broadcasts_runs_direct_with_the_reference_bits() {
    // (operand types, the op's operands built from %a and %b, result type): a batched
    // outer product, a broadcast row against a slice, a broadcast scalar, and runs longer
    // than a parallel block (blocks start and end inside runs).
    let cases = [
        (
            "{d}[40000]",
            "{d}[40000,3]",
            "  %x = broadcast_in_dim {shape = [40000, 3], dims = [0]} %a : {d}[40000,3]
  %r = {op} %b, %x : {d}[40000,3]",
        ),
        (
            "{d}[64,16,16]",
            "{d}[64,40]",
            "  %x = broadcast_in_dim {shape = [64, 40, 16, 16], dims = [0, 2, 3]} %a : {d}[64,40,16,16]
  %y = broadcast_in_dim {shape = [64, 40, 16, 16], dims = [0, 1]} %b : {d}[64,40,16,16]
  %r = {op} %x, %y : {d}[64,40,16,16]",
        ),
        (
            "{d}[100,300]",
            "{d}[130,300]",
            "  %x = slice {starts = [20, 0], limits = [120, 300]} %b : {d}[100,300]
  %y = {op} %a, %x : {d}[100,300]",
        ),
        (
            "{d}[]",
            "{d}[50,700]",
            "  %x = broadcast_in_dim {shape = [50, 700], dims = []} %a : {d}[50,700]
  %y = transpose {perm = [0, 1]} %b : {d}[50,700]
  %r = {op} %y, %x : {d}[50,700]",
        ),
    ];
    for dt in numeric() {
        let d = dt.to_string();
        for op in ["add", "mul", "sub"] {
            for (ta, tb, body) in &cases {
                let body = body.replace("{d}", &d).replace("{op}", op);
                let (ta, tb) = (ta.replace("{d}", &d), tb.replace("{d}", &d));
                let last = body.lines().last().unwrap().trim();
                let res = last.split(" = ").next().unwrap();
                let rty = last.rsplit(" : ").next().unwrap();
                let text = format!(
                    "func @f(%a: {ta}, %b: {tb}) -> ({rty}) {{\n{body}\n  return {res}\n}}\n"
                );
                let f =
                    tenferro_ir::parse_and_verify(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                let prepared = CpuBackend::new().prepare(&f).unwrap();
                assert!(prepared.to_string().contains("direct:"), "{prepared}");
                let a = SeedRng::new(5).tensor(f.ty(f.params()[0]), false);
                let b = SeedRng::new(6).tensor(f.ty(f.params()[1]), false);
                let want = tenferro_ir::eval::eval(&f, &[a.clone(), b.clone()]).unwrap();
                for threads in [1, 2] {
                    let got = run_cpu(&f, &[a.clone(), b.clone()], threads);
                    assert!(
                        got[0].bits_eq(&want[0]),
                        "{dt} {op} case {ta} {tb} at {threads} threads"
                    );
                }
            }
        }
    }
}

/// A `conj` or real-to-complex `convert` (of a real `u + u` too) read by one complex
/// `mul` only is folded into it (the schedule shows `conj(..)` / `real-as-complex(..)`),
/// and so is a product's only reader `y + y` (`twice mul`); the result keeps the bits of
/// the unfused ops, including special values, broadcast scalars, odd tails and two
/// threads. Values read twice or stored are not folded and stay exact too.
#[test]
fn conj_and_real_operands_folded_into_complex_mul_keep_the_reference_bits() {
    for dt in [DType::C64, DType::C32] {
        let rt = dt.real();
        for n in [1usize, 3, 7, 1001, 20_000] {
            let x = SeedRng::new(60 + n as u64).tensor(&TensorType::new(dt, vec![n]), true);
            let y = SeedRng::new(70 + n as u64).tensor(&TensorType::new(dt, vec![n]), true);
            let r = SeedRng::new(80 + n as u64).tensor(&TensorType::new(rt, vec![n]), true);
            let mut f = Function::new("folds");
            let (px, py, pr) = (
                param(&mut f, dt, &[n]),
                param(&mut f, dt, &[n]),
                param(&mut f, rt, &[n]),
            );
            let un = |f: &mut Function, u: UnaryOp, a: Value| f.push1(Op::Unary(u), &[a]).unwrap();
            let real = |f: &mut Function, a: Value| f.push1(Op::Convert { to: dt }, &[a]).unwrap();
            let mul = |f: &mut Function, a: Value, b: Value| {
                f.push1(Op::Binary(BinaryOp::Mul), &[a, b]).unwrap()
            };
            let cx = un(&mut f, UnaryOp::Conj, px);
            let a = mul(&mut f, cx, py);
            let cy = un(&mut f, UnaryOp::Conj, py);
            let b = mul(&mut f, px, cy);
            let rr = real(&mut f, pr);
            let c = mul(&mut f, py, rr);
            let (cx2, rr2) = (un(&mut f, UnaryOp::Conj, px), real(&mut f, pr));
            let d = mul(&mut f, cx2, rr2);
            // Read twice: not folded.
            let cy2 = un(&mut f, UnaryOp::Conj, py);
            let e = mul(&mut f, cy2, cy2);
            // A broadcast scalar beside a folded operand.
            let s = splat(&mut f, dt, -1.5, &[n]);
            let cx3 = un(&mut f, UnaryOp::Conj, px);
            let g = mul(&mut f, cx3, s);
            // Stored: not folded.
            let h = un(&mut f, UnaryOp::Conj, px);
            let hy = mul(&mut f, h, py);
            // Chained: a folded operand read from a slot.
            let ca = un(&mut f, UnaryOp::Conj, a);
            let k = mul(&mut f, ca, d);
            let add = |f: &mut Function, a: Value, b: Value| {
                f.push1(Op::Binary(BinaryOp::Add), &[a, b]).unwrap()
            };
            // A real `r + r` under the convert (r also read elsewhere), and the
            // product's `y + y`: both summed inside the mul.
            let rr3 = add(&mut f, pr, pr);
            let c3 = real(&mut f, rr3);
            let cx4 = un(&mut f, UnaryOp::Conj, px);
            let prod = mul(&mut f, cx4, c3);
            let yy = add(&mut f, prod, prod);
            // A doubled plain product whose sum is read by a later folded mul.
            let z = mul(&mut f, px, py);
            let zz = add(&mut f, z, z);
            let cz = un(&mut f, UnaryOp::Conj, zz);
            let w = mul(&mut f, cz, yy);
            // A product read beside its sum: not doubled.
            let v = mul(&mut f, px, c);
            let vv = add(&mut f, v, v);
            f.set_outputs(vec![a, b, c, d, e, g, h, hy, k, yy, w, v, vv]);
            let inputs = [x, y, r];
            let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
            if dt == DType::C64 && n > 1 {
                let text = CpuBackend::with_threads(1).prepare(&f).unwrap().to_string();
                assert!(text.contains("mul conj(in0), in1"), "{text}");
                assert!(text.contains("real-as-complex(in2)"), "{text}");
                assert!(text.contains("t0 = conj in0 : c64"), "{text}");
                assert!(text.contains("out0 = conj in0 : c64"), "{text}");
                assert!(text.contains("mul conj(out0), out1"), "{text}");
                // Input numbers are per group: in0 is the real parameter there.
                assert!(
                    text.contains("twice mul conj(in1), real-as-complex(in0 + in0)"),
                    "{text}"
                );
                assert!(text.contains("t0 = twice mul in1, in2"), "{text}");
                assert!(text.contains("mul conj(t0), out0"), "{text}");
            }
            for threads in [1, 2] {
                let got = run_cpu(&f, &inputs, threads);
                for (o, (g, w)) in got.iter().zip(&want).enumerate() {
                    for i in 0..n {
                        let (gv, wv) = (g.data().get_c64(i), w.data().get_c64(i));
                        let same = |a: f64, b: f64| {
                            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
                        };
                        assert!(
                            same(gv.re, wv.re) && same(gv.im, wv.im),
                            "{dt} n {n} threads {threads} output {o} element {i}: {gv} vs {wv}"
                        );
                    }
                }
            }
        }
    }
}

/// `f` on the CPU backend at 1 and 2 threads, fused and not, gives the reference
/// evaluator's result (bit for bit for integers).
fn matches_reference(f: &Function, inputs: &[Tensor], dt: DType, what: &str) {
    let want = tenferro_ir::eval::eval(f, inputs).unwrap();
    for (threads, fusion) in [(1, true), (2, true), (1, false)] {
        let got = run_cpu_with(f, inputs, threads, fusion);
        assert_eq!(got[0].shape(), want[0].shape(), "{what}");
        if dt == DType::I64 {
            assert!(got[0].bits_eq(&want[0]), "{what}");
        } else {
            let tol = if dt == DType::F32 { 1e-5 } else { 1e-12 };
            assert!(close_rel(&got[0], &want[0], tol), "{what}");
        }
    }
}

/// A product read only by a transpose: every permutation of every kind of product
/// (batched or not, free axes from one side, both or neither, operand axes in any order)
/// gives the reference evaluator's result, at 1 and 2 threads, fused or not; a batched
/// product (off batch lanes) and its transpose run as one step.
#[test]
fn products_write_any_transpose_of_themselves() {
    let mut rng = SeedRng::new(17);
    for case in 0..400 {
        let dt = [DType::F64, DType::F32, DType::C64, DType::I64][case % 4];
        let nb = rng.below(3);
        let (lf, rf, nc) = (rng.below(3), rng.below(3), rng.below(3));
        let mut ext = || [1, 2, 3, 4, 5, 12][rng.below(6)];
        let bs: Vec<usize> = (0..nb).map(|_| ext()).collect();
        let ls: Vec<usize> = (0..lf).map(|_| ext()).collect();
        let rs: Vec<usize> = (0..rf).map(|_| ext()).collect();
        let cs: Vec<usize> = (0..nc).map(|_| ext()).collect();
        // Logical axes of each operand (0 batch, 1 free, 2 contract; index) in a
        // shuffled order.
        let mut side = |free: &[usize]| {
            let mut axes: Vec<(usize, usize)> = (0..nb)
                .map(|i| (0, i))
                .chain((0..free.len()).map(|i| (1, i)))
                .chain((0..nc).map(|i| (2, i)))
                .collect();
            for i in (1..axes.len()).rev() {
                axes.swap(i, rng.below(i + 1));
            }
            axes
        };
        let la = side(&ls);
        let ra = side(&rs);
        let shape_of = |axes: &[(usize, usize)], free: &[usize]| -> Vec<usize> {
            axes.iter().map(|&(g, i)| [&bs, free, &cs][g][i]).collect()
        };
        let pos = |axes: &[(usize, usize)], g: usize| -> Vec<usize> {
            let n = axes.iter().filter(|a| a.0 == g).count();
            (0..n)
                .map(|i| axes.iter().position(|&a| a == (g, i)).unwrap())
                .collect()
        };
        let (lshape, rshape) = (shape_of(&la, &ls), shape_of(&ra, &rs));
        let dims = DotDims {
            lhs_batch: pos(&la, 0),
            rhs_batch: pos(&ra, 0),
            lhs_contract: pos(&la, 2),
            rhs_contract: pos(&ra, 2),
        };
        let rank = nb + lf + rf;
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let mut f = Function::new("product_transpose");
        let a = param(&mut f, dt, &lshape);
        let b = param(&mut f, dt, &rshape);
        let p = f.push1(Op::DotGeneral(dims.clone()), &[a, b]).unwrap();
        let t = f.push1(Op::Transpose { perm: perm.clone() }, &[p]).unwrap();
        f.set_outputs(vec![t]);
        let what = format!("case {case}: {dt} {lshape:?} x {rshape:?} {dims:?} perm {perm:?}");
        let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
        let batched = bs.iter().product::<usize>() > 1;
        let lanes = prepared
            .steps()
            .iter()
            .any(|s| s.kernel_name() == "lane_gemm");
        if batched && !lanes {
            assert_eq!(prepared.steps().len(), 1, "{what}");
        }
        let inputs = [
            rand_tensor(dt, &lshape, case as u64),
            rand_tensor(dt, &rshape, case as u64 + 1000),
        ];
        matches_reference(&f, &inputs, dt, &what);
    }
}

/// A batched product whose result is transposed to the rhs free axes, then the lhs free
/// axes, then the batch (`jib,kjb->kib`: a batched matmul in column-major order with its
/// operands' roles swapped) writes each batch element's product row-major straight into
/// its block: one step, no scratch and no copy, on the own GEMM (f64 and f32 large enough
/// for it) and on faer (small and complex products), with the reference evaluator's
/// result at 1 and 2 threads.
#[test]
fn a_batched_product_writes_its_rhs_first_transpose_in_place() {
    for (dt, [m, n, k, b]) in [
        (DType::F64, [300, 260, 270, 3]),
        (DType::F32, [96, 80, 72, 2]),
        (DType::F64, [5, 7, 6, 4]),
        (DType::C64, [9, 6, 11, 3]),
    ] {
        let mut f = Function::new("batched_transposed");
        let a = param(&mut f, dt, &[k, m, b]);
        let c = param(&mut f, dt, &[n, k, b]);
        let dims = DotDims {
            lhs_batch: vec![2],
            rhs_batch: vec![2],
            lhs_contract: vec![0],
            rhs_contract: vec![1],
        };
        let p = f.push1(Op::DotGeneral(dims), &[a, c]).unwrap();
        let t = f
            .push1(
                Op::Transpose {
                    perm: vec![2, 1, 0],
                },
                &[p],
            )
            .unwrap();
        f.set_outputs(vec![t]);
        let what = format!("{dt} {m} x {n} x {k}, batch {b}");
        let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
        let steps = prepared.steps();
        assert_eq!(steps.len(), 1, "{what}");
        assert!(
            steps[0].op_name().ends_with("[n, m, batch] layout"),
            "{what}: {}",
            steps[0].op_name()
        );
        let inputs = [
            rand_tensor(dt, &[k, m, b], 5),
            rand_tensor(dt, &[n, k, b], 6),
        ];
        matches_reference(&f, &inputs, dt, &what);
    }
}

/// An unbatched product whose transpose reorders the lhs free axes among themselves (a
/// tensor-network step: `abcde,fcb->adef` then `adef->daef`) reads the lhs free axes in
/// the new order and runs as one step.
#[test]
fn a_transpose_within_one_operands_axes_is_read_into_the_product() {
    let mut f = Function::new("reordered");
    let a = param(&mut f, DType::F64, &[6, 5, 4, 6, 3]);
    let b = param(&mut f, DType::F64, &[40, 5, 4]);
    let dims = DotDims {
        lhs_contract: vec![2, 1],
        rhs_contract: vec![2, 1],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let p = f.push1(Op::DotGeneral(dims), &[a, b]).unwrap();
    let t = f
        .push1(
            Op::Transpose {
                perm: vec![1, 0, 2, 3],
            },
            &[p],
        )
        .unwrap();
    f.set_outputs(vec![t]);
    let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert_eq!(prepared.steps().len(), 1);
    let inputs = [
        rand_tensor(DType::F64, &[6, 5, 4, 6, 3], 3),
        rand_tensor(DType::F64, &[40, 5, 4], 4),
    ];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    for threads in [1, 2] {
        assert!(close_rel(
            &run_cpu(&f, &inputs, threads)[0],
            &want[0],
            1e-12
        ));
    }
}

/// A batched product read only by another product (directly or through a transpose the
/// first one absorbs) is left in its `[m, n, batch]` scratch and read through its strides
/// (or, transposed to rhs free, lhs free, batch, written in that layout directly):
/// random chains agree with the reference evaluator at 1 and 2 threads, fused or not,
/// with the reader's operand on either side and its axes in any role.
#[test]
fn a_product_reads_a_batched_product_in_its_scratch_layout() {
    let mut rng = SeedRng::new(29);
    for case in 0..300 {
        let dt = [DType::F64, DType::F32, DType::C64, DType::I64][case % 4];
        let ext = |rng: &mut SeedRng| [2, 3, 4, 5, 12][rng.below(5)];
        let (b, m, n, k) = (ext(&mut rng), ext(&mut rng), ext(&mut rng), ext(&mut rng));
        // P = [b, m, n]: batch 0 with batch 2 of a [m, k, b] and batch 0 of a [b, k, n].
        let mut f = Function::new("chain");
        let a = param(&mut f, dt, &[m, k, b]);
        let bb = param(&mut f, dt, &[b, k, n]);
        let pd = DotDims {
            lhs_batch: vec![2],
            rhs_batch: vec![0],
            lhs_contract: vec![1],
            rhs_contract: vec![1],
        };
        let mut x = f.push1(Op::DotGeneral(pd), &[a, bb]).unwrap();
        let mut xs = vec![b, m, n];
        if rng.below(2) == 1 {
            let mut perm = vec![0, 1, 2];
            for i in (1..3).rev() {
                perm.swap(i, rng.below(i + 1));
            }
            xs = perm.iter().map(|&p| xs[p]).collect();
            x = f.push1(Op::Transpose { perm }, &[x]).unwrap();
        }
        // Each of x's axes is a batch (0), free (1) or contracted (2) axis of the reader.
        let roles: Vec<usize> = (0..3).map(|_| rng.below(3)).collect();
        let extra: Vec<usize> = (0..rng.below(3)).map(|_| ext(&mut rng)).collect();
        // The other operand: x's batch and contracted axes, then its own free axes,
        // shuffled.
        let mut other: Vec<(usize, usize)> = (0..3)
            .filter(|&i| roles[i] != 1)
            .map(|i| (0, i))
            .chain((0..extra.len()).map(|i| (1, i)))
            .collect();
        for i in (1..other.len()).rev() {
            other.swap(i, rng.below(i + 1));
        }
        let oshape: Vec<usize> = other
            .iter()
            .map(|&(g, i)| if g == 0 { xs[i] } else { extra[i] })
            .collect();
        let c = param(&mut f, dt, &oshape);
        let at = |i: usize| other.iter().position(|&o| o == (0, i)).unwrap();
        let xb: Vec<usize> = (0..3).filter(|&i| roles[i] == 0).collect();
        let xc: Vec<usize> = (0..3).filter(|&i| roles[i] == 2).collect();
        let cb: Vec<usize> = xb.iter().map(|&i| at(i)).collect();
        let cc: Vec<usize> = xc.iter().map(|&i| at(i)).collect();
        let x_lhs = rng.below(2) == 0;
        let dims = if x_lhs {
            DotDims {
                lhs_batch: xb,
                rhs_batch: cb,
                lhs_contract: xc,
                rhs_contract: cc,
            }
        } else {
            DotDims {
                lhs_batch: cb,
                rhs_batch: xb,
                lhs_contract: cc,
                rhs_contract: xc,
            }
        };
        let args = if x_lhs { [x, c] } else { [c, x] };
        let y = f.push1(Op::DotGeneral(dims.clone()), &args).unwrap();
        f.set_outputs(vec![y]);
        let what = format!("case {case}: {dt} x {xs:?} roles {roles:?} other {oshape:?} {dims:?}");
        let prepared = CpuBackend::with_threads(1).prepare(&f).unwrap();
        let steps = prepared.steps();
        assert_eq!(steps.len(), 2, "{what}");
        // Unless the reader runs on batch lanes (which read the batch-first layout in
        // place), the first product keeps its scratch layout, or writes its transpose's
        // batch-last layout directly.
        assert!(
            steps[1].kernel_name() == "lane_gemm"
                || steps[0].op_name().ends_with("[m, n, batch] layout")
                || steps[0].op_name().ends_with("[n, m, batch] layout"),
            "{what}: {} then {}",
            steps[0].op_name(),
            steps[1].kernel_name()
        );
        let inputs = [
            rand_tensor(dt, &[m, k, b], case as u64),
            rand_tensor(dt, &[b, k, n], case as u64 + 1000),
            rand_tensor(dt, &oshape, case as u64 + 2000),
        ];
        matches_reference(&f, &inputs, dt, &what);
    }
}

/// A program run in a loop keeps a bounded pool: the gather's result (a kernel that
/// allocates its own) is released into the pool every run and never taken back, and the
/// pool used to grow by that buffer per run (memory and run time growing without bound).
#[test]
fn a_program_run_many_times_keeps_a_bounded_pool() {
    let f = tenferro_ir::parse::parse_and_verify(
        "func @main(%0: f64[4,4]) -> (f64[]) {
           %1 = reshape {shape = [16]} %0 : f64[16]
           %2 = constant i64[4] [0, 5, 10, 15]
           %3 = gather {axis = 0} %1, %2 : f64[4]
           %4 = reduce_sum {axes = [0]} %3 : f64[]
           return %4
         }",
    )
    .unwrap();
    let backend = CpuBackend::new();
    let prepared = backend.prepare(&f).unwrap();
    let reg = ExtensionRegistry::new();
    let x = Tensor::from_vec_col_major(vec![4, 4], (0..16).map(f64::from).collect()).unwrap();
    let mut after_two = 0;
    for run in 0..200 {
        let got = backend
            .execute(&prepared, std::slice::from_ref(&x), &reg)
            .unwrap();
        assert_eq!(got[0].to_vec::<f64>().unwrap(), vec![30.0]);
        if run == 1 {
            after_two = prepared.cached_bytes();
        }
    }
    let kept = prepared.cached_bytes();
    assert!(
        kept <= after_two.max(4 * 8 * 5),
        "pool grew to {kept} bytes"
    );
}
