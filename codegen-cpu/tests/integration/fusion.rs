//! Fused execution: equal to the unfused path and the reference evaluator on random
//! programs; reduction order fixed (identical bits on every run and thread count); the
//! partitioner's groups and reasons; the memory plan's peak bytes on known programs.

use crate::common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tenferro_cpu::{Alloc, CpuBackend};
use tenferro_ir::arbitrary::{arb_function, arb_inputs, ArbConfig};
use tenferro_ir::{
    BinaryOp, DType, Data, DotDims, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp, Value,
};
use tenferro_runtime::{Backend, ExtensionRegistry};

fn run(f: &Function, inputs: &[Tensor], threads: usize, fusion: bool) -> Vec<Tensor> {
    run_cpu_with(f, inputs, threads, fusion)
}

fn cfg(cases: u32) -> Config {
    Config {
        cases,
        // Fixed seed: the random programs are the same on every run.
        rng_seed: RngSeed::Fixed(0x7e7f_e770),
        failure_persistence: None,
        ..Config::default()
    }
}

fn all_dtypes() -> Vec<DType> {
    DType::ALL.to_vec()
}

proptest! {
    #![proptest_config(cfg(32))]

    /// Programs whose values do not depend on evaluation order or libm: fused (1 and 2
    /// threads) and unfused results are bit-identical to the reference evaluator.
    #[test]
    fn fused_is_bit_exact_on_value_safe_programs(
        (f, inputs) in arb_function(ArbConfig { dtypes: all_dtypes(), ..ArbConfig::value_safe() })
            .prop_flat_map(|f| { let i = arb_inputs(&f); (Just(f), i) })
    ) {
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        for (threads, fusion) in [(1, true), (2, true), (1, false)] {
            let got = run(&f, &inputs, threads, fusion);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!(g.bits_eq(w), "threads {threads} fusion {fusion}\n{g:?}\n{w:?}\n{}", tenferro_ir::print(&f));
            }
        }
    }

    /// Any program: fused results are close to the reference (reductions in tile-lane
    /// order, vectorised transcendentals).
    #[test]
    fn fused_is_close_to_reference_on_random_programs(
        (f, inputs) in arb_function(ArbConfig { dtypes: vec![DType::F64, DType::C64, DType::I64], ..ArbConfig::with_dtypes(&[DType::F64]) })
            .prop_flat_map(|f| { let i = arb_inputs(&f); (Just(f), i) })
    ) {
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        let got = run(&f, &inputs, 2, true);
        for (g, w) in got.iter().zip(&want) {
            assert_close_nan(g, w, &tenferro_ir::print(&f));
        }
    }
}

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

/// The W2 workload: sum(exp(sin(x)·y + cos(x))·0.5 − tanh(x)).
fn w2(dt: DType, n: usize) -> Function {
    let mut f = Function::new("w2");
    let x = param(&mut f, dt, &[n]);
    let y = param(&mut f, dt, &[n]);
    let s = f.push1(Op::Unary(UnaryOp::Sin), &[x]).unwrap();
    let c = f.push1(Op::Unary(UnaryOp::Cos), &[x]).unwrap();
    let sy = f.push1(Op::Binary(BinaryOp::Mul), &[s, y]).unwrap();
    let a = f.push1(Op::Binary(BinaryOp::Add), &[sy, c]).unwrap();
    let e = f.push1(Op::Unary(UnaryOp::Exp), &[a]).unwrap();
    let half = splat(&mut f, dt, 0.5, &[n]);
    let eh = f.push1(Op::Binary(BinaryOp::Mul), &[e, half]).unwrap();
    let t = f.push1(Op::Unary(UnaryOp::Tanh), &[x]).unwrap();
    let d = f.push1(Op::Binary(BinaryOp::Sub), &[eh, t]).unwrap();
    let r = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: vec![0],
            },
            &[d],
        )
        .unwrap();
    f.set_outputs(vec![r]);
    f
}

fn rand_tensor(dt: DType, shape: &[usize], seed: u64) -> Tensor {
    SeedRng::new(seed).tensor(&TensorType::new(dt, shape.to_vec()), false)
}

#[test]
fn w2_is_one_fused_group_with_a_whole_reduction() {
    let f = w2(DType::F64, 100_000);
    let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert_eq!(p.fusion_groups().len(), 1);
    // Constants plus one fused step.
    let fused: Vec<_> = p
        .steps()
        .iter()
        .filter(|s| s.schedule().is_some())
        .collect();
    assert_eq!(fused.len(), 1);
    let k = fused[0].schedule().unwrap();
    assert!(k.num_blocks() > 1 && k.tile() >= 256 && k.tile() <= 4096);
    // Only the scalar result is stored.
    assert_eq!(k.stored_values(), vec![f.outputs()[0].index()]);
    let text = p.to_string();
    assert!(
        text.contains("schedule g0") && text.contains("reduce_sum"),
        "{text}"
    );
    let dot = p.to_dot();
    assert!(dot.contains("subgraph cluster_g0"), "{dot}");
}

#[test]
fn whole_reductions_are_identical_across_runs_and_thread_counts() {
    for dt in [DType::F64, DType::F32] {
        let n = 300_007;
        let f = w2(dt, n);
        let inputs = [rand_tensor(dt, &[n], 1), rand_tensor(dt, &[n], 2)];
        let first = run(&f, &inputs, 2, true);
        for threads in [2, 2, 1] {
            let again = run(&f, &inputs, threads, true);
            assert!(again[0].bits_eq(&first[0]), "{dt} threads {threads}");
        }
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        // The reference sums sequentially: f32 error grows with n.
        let tol = if dt == DType::F32 { 1e-3 } else { 1e-10 };
        let (g, w) = (first[0].data().get_c64(0).re, want[0].data().get_c64(0).re);
        assert!((g - w).abs() <= tol * w.abs(), "{dt}: {g} vs {w}");
    }
}

/// `reduce_sum(exp(x) * 2, axes)` over `shape`.
fn row_reduction(shape: &[usize], axes: &[usize]) -> Function {
    let mut f = Function::new("rows");
    let x = param(&mut f, DType::F64, shape);
    let e = f.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let two = splat(&mut f, DType::F64, 2.0, shape);
    let m = f.push1(Op::Binary(BinaryOp::Mul), &[e, two]).unwrap();
    let r = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Sum,
                axes: axes.to_vec(),
            },
            &[m],
        )
        .unwrap();
    f.set_outputs(vec![r, m]);
    f
}

#[test]
fn row_reductions_match_the_reference_with_one_and_two_threads() {
    // Slowest axis kept (parallel blocks) and reduced (one block); bias-gradient shape.
    for (shape, axes) in [
        (vec![256usize, 512], vec![0usize]),
        (vec![256, 512], vec![1]),
        (vec![7, 300, 40], vec![0, 2]),
        (vec![64, 3, 700], vec![1]),
    ] {
        let f = row_reduction(&shape, &axes);
        let x = rand_tensor(DType::F64, &shape, 3);
        let want = tenferro_ir::eval::eval(&f, std::slice::from_ref(&x)).unwrap();
        let one = run(&f, std::slice::from_ref(&x), 1, true);
        let two = run(&f, std::slice::from_ref(&x), 2, true);
        for i in 0..2 {
            assert_close(&one[i], &want[i], &format!("{shape:?} {axes:?} t1"));
            // Row reductions fold in the reference order: same bits with any threads.
            assert!(one[i].bits_eq(&two[i]), "{shape:?} {axes:?}");
        }
    }
}

#[test]
fn broadcast_and_slice_are_loaded_not_stored() {
    // y = x[1:5, :] * broadcast(b) + 1, with x [6, 300], b [300].
    let mut f = Function::new("views");
    let x = param(&mut f, DType::F64, &[6, 300]);
    let b = param(&mut f, DType::F64, &[300]);
    let s = f
        .push1(
            Op::Slice {
                starts: vec![1, 0],
                limits: vec![5, 300],
            },
            &[x],
        )
        .unwrap();
    let bb = f
        .push1(
            Op::BroadcastInDim {
                shape: vec![4, 300],
                dims: vec![1],
            },
            &[b],
        )
        .unwrap();
    let m = f.push1(Op::Binary(BinaryOp::Mul), &[s, bb]).unwrap();
    let one = splat(&mut f, DType::F64, 1.0, &[4, 300]);
    let y = f.push1(Op::Binary(BinaryOp::Add), &[m, one]).unwrap();
    f.set_outputs(vec![y]);
    let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert_eq!(p.fusion_groups().len(), 1);
    assert_eq!(
        p.steps()
            .iter()
            .filter(|s| s.op_name() != "constant")
            .count(),
        1
    );
    let inputs = [
        rand_tensor(DType::F64, &[6, 300], 4),
        rand_tensor(DType::F64, &[300], 5),
    ];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    for threads in [1, 2] {
        assert!(run(&f, &inputs, threads, true)[0].bits_eq(&want[0]));
    }
}

#[test]
fn refusals_have_reasons() {
    // a = exp(x) is read by a GEMM, so its group is sealed: b = a + 1 starts a new group.
    let mut f = Function::new("sealed");
    let x = param(&mut f, DType::F64, &[8, 8]);
    let a = f.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let d = f.push1(Op::DotGeneral(DotDims::matmul()), &[a, x]).unwrap();
    let one = splat(&mut f, DType::F64, 1.0, &[8, 8]);
    let b = f.push1(Op::Binary(BinaryOp::Add), &[a, one]).unwrap();
    let s = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Max,
                axes: vec![0, 1],
            },
            &[b],
        )
        .unwrap();
    let c = f.push1(Op::Binary(BinaryOp::Mul), &[d, b]).unwrap();
    f.set_outputs(vec![c, s]);
    let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
    let notes: Vec<String> = p.fusion_notes().iter().map(|n| n.to_string()).collect();
    let all = notes.join("\n");
    assert!(all.contains("dot_general: boundary"), "{all}");
    assert!(all.contains("not into g0: sealed"), "{all}");
    assert!(all.contains("as epilogue"), "{all}");
    // c reads the GEMM result: the group holding b was sealed by the reduction? No: the
    // reduction is an epilogue of b's group, and c joins it (b is not a reduction result).
    let inputs = [rand_tensor(DType::F64, &[8, 8], 6)];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    let got = run(&f, &inputs, 1, true);
    assert_close(&got[0], &want[0], "c");
    assert_close(&got[1], &want[1], "s");
}

#[test]
fn group_size_is_bounded() {
    let mut f = Function::new("long");
    let x = param(&mut f, DType::F64, &[16]);
    let mut v = x;
    for _ in 0..(tenferro_cpu::MAX_GROUP_OPS + 10) {
        v = f.push1(Op::Unary(UnaryOp::Neg), &[v]).unwrap();
    }
    f.set_outputs(vec![v]);
    let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert_eq!(p.fusion_groups().len(), 2);
    assert!(p
        .fusion_groups()
        .iter()
        .all(|g| g.insts.len() <= tenferro_cpu::MAX_GROUP_OPS));
    assert!(p
        .fusion_notes()
        .iter()
        .any(|n| n.decision.contains("would exceed")));
    let inputs = [rand_tensor(DType::F64, &[16], 7)];
    let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
    assert!(run(&f, &inputs, 1, true)[0].bits_eq(&want[0]));
}

fn exp_mul_add() -> Function {
    // c = exp(x)·exp(x) + x over f64[1000].
    let mut f = Function::new("chain");
    let x = param(&mut f, DType::F64, &[1000]);
    let a = f.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let b = f.push1(Op::Binary(BinaryOp::Mul), &[a, a]).unwrap();
    let c = f.push1(Op::Binary(BinaryOp::Add), &[b, x]).unwrap();
    f.set_outputs(vec![c]);
    f
}

#[test]
fn peak_bytes_of_known_programs() {
    let f = exp_mul_add();
    // Fused: only the output is allocated.
    let fused = CpuBackend::with_threads(1).prepare(&f).unwrap();
    assert_eq!(fused.peak_bytes(), 8000);
    // Unfused: a and b live together, then b and c.
    let unfused = CpuBackend::with_threads(1)
        .with_fusion(false)
        .prepare(&f)
        .unwrap();
    assert_eq!(unfused.peak_bytes(), 16000);

    // In place: z = tanh(A·B + 1) overwrites the GEMM result, which dies there.
    let mut g = Function::new("inplace");
    let a = param(&mut g, DType::F64, &[10, 10]);
    let b = param(&mut g, DType::F64, &[10, 10]);
    let y = g.push1(Op::DotGeneral(DotDims::matmul()), &[a, b]).unwrap();
    let one = splat(&mut g, DType::F64, 1.0, &[10, 10]);
    let s = g.push1(Op::Binary(BinaryOp::Add), &[y, one]).unwrap();
    let z = g.push1(Op::Unary(UnaryOp::Tanh), &[s]).unwrap();
    g.set_outputs(vec![z]);
    let p = CpuBackend::with_threads(1).prepare(&g).unwrap();
    let fused_step = p.steps().iter().find(|s| s.schedule().is_some()).unwrap();
    assert!(matches!(fused_step.allocs(), [Alloc::InPlace(_)]), "{p}");
    assert_eq!(p.peak_bytes(), 800);
    let inputs = [
        rand_tensor(DType::F64, &[10, 10], 8),
        rand_tensor(DType::F64, &[10, 10], 9),
    ];
    let want = tenferro_ir::eval::eval(&g, &inputs).unwrap();
    assert_close(&run(&g, &inputs, 1, true)[0], &want[0], "in place");

    // Pool: a = exp(x) dies at the transpose; b = -yᵀ·2 cannot overwrite y (returned), so
    // it takes a's released buffer.
    let mut h = Function::new("pool");
    let x = param(&mut h, DType::F64, &[10, 10]);
    let a = h.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let y = h.push1(Op::Transpose { perm: vec![1, 0] }, &[a]).unwrap();
    let n = h.push1(Op::Unary(UnaryOp::Neg), &[y]).unwrap();
    let two = splat(&mut h, DType::F64, 2.0, &[10, 10]);
    let bb = h.push1(Op::Binary(BinaryOp::Mul), &[n, two]).unwrap();
    h.set_outputs(vec![bb, y]);
    let p = CpuBackend::with_threads(1).prepare(&h).unwrap();
    let last = p
        .steps()
        .iter()
        .rev()
        .find(|s| s.schedule().is_some())
        .unwrap();
    assert_eq!(last.allocs(), &[Alloc::Pool], "{p}");
    assert_eq!(p.peak_bytes(), 1600);
    let inputs = [rand_tensor(DType::F64, &[10, 10], 10)];
    let want = tenferro_ir::eval::eval(&h, &inputs).unwrap();
    let got = run(&h, &inputs, 1, true);
    assert_close(&got[0], &want[0], "pool b");
    assert_close(&got[1], &want[1], "pool y");
}

#[test]
fn complex_and_f32_groups_match_the_reference() {
    for dt in [DType::C64, DType::C32, DType::F32] {
        // grad-of-W7-like: 4·|z|²·z computed as (z·conj(z))·z·4, plus a whole sum.
        let mut f = Function::new("cplx");
        let z = param(&mut f, dt, &[5000]);
        let c = f.push1(Op::Unary(UnaryOp::Conj), &[z]).unwrap();
        let zz = f.push1(Op::Binary(BinaryOp::Mul), &[z, c]).unwrap();
        let w = f.push1(Op::Binary(BinaryOp::Mul), &[zz, z]).unwrap();
        let four = splat(&mut f, dt, 4.0, &[5000]);
        let g = f.push1(Op::Binary(BinaryOp::Mul), &[w, four]).unwrap();
        let s = f
            .push1(
                Op::Reduce {
                    kind: ReduceOp::Sum,
                    axes: vec![0],
                },
                &[g],
            )
            .unwrap();
        f.set_outputs(vec![g, s]);
        let inputs = [rand_tensor(dt, &[5000], 11)];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        let got = run(&f, &inputs, 2, true);
        assert!(got[0].bits_eq(&want[0]), "{dt}");
        let rel = if dt == DType::C64 { 1e-11 } else { 1e-3 };
        let (a, b) = (got[1].data().get_c64(0), want[1].data().get_c64(0));
        assert!((a - b).norm() <= rel * b.norm(), "{dt}: {a} vs {b}");
    }
}

#[test]
fn empty_iteration_spaces_give_identities() {
    let mut f = Function::new("empty");
    let x = param(&mut f, DType::F64, &[0, 3]);
    let e = f.push1(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    let r = f
        .push1(
            Op::Reduce {
                kind: ReduceOp::Max,
                axes: vec![0],
            },
            &[e],
        )
        .unwrap();
    f.set_outputs(vec![r, e]);
    let x = Tensor::new(vec![0, 3], Data::F64(vec![])).unwrap();
    let got = run(&f, std::slice::from_ref(&x), 2, true);
    assert_eq!(got[0].to_vec::<f64>().unwrap(), vec![f64::NEG_INFINITY; 3]);
    assert_eq!(got[1].numel(), 0);
}

#[test]
fn prepared_program_runs_repeatedly_with_new_inputs() {
    let f = exp_mul_add();
    let b = CpuBackend::with_threads(2);
    let p = b.prepare(&f).unwrap();
    for seed in 0..3 {
        let x = rand_tensor(DType::F64, &[1000], seed);
        let want = tenferro_ir::eval::eval(&f, std::slice::from_ref(&x)).unwrap();
        let got = b
            .execute(&p, std::slice::from_ref(&x), &ExtensionRegistry::new())
            .unwrap();
        assert_close(&got[0], &want[0], "chain");
    }
}

/// softplus as the activation builds it, `max(x, 0) + log1p(exp(-|x|))`, is one fused group
/// whose exp and log1p run on the vmath vector kernels: the fused result (1 and 2 threads)
/// equals, bit for bit, the same expression over vmath's slice kernels, which differs from
/// the op table's scalar exp / log1p on some of these inputs.
#[test]
fn softplus_fuses_through_the_vector_kernels() {
    use tenferro_cpu::vmath;
    const N: usize = 4096;
    let xs: Vec<f64> = (0..N)
        .map(|i| -30.0 + 60.0 * (i as f64 + 0.37) / N as f64)
        .collect();
    for dt in [DType::F64, DType::F32] {
        let mut f = Function::new("softplus");
        let x = param(&mut f, dt, &[N]);
        let zero = splat(&mut f, dt, 0.0, &[N]);
        let m = f.push1(Op::Binary(BinaryOp::Max), &[x, zero]).unwrap();
        let a = f.push1(Op::Unary(UnaryOp::Abs), &[x]).unwrap();
        let na = f.push1(Op::Unary(UnaryOp::Neg), &[a]).unwrap();
        let e = f.push1(Op::Unary(UnaryOp::Exp), &[na]).unwrap();
        let l = f.push1(Op::Unary(UnaryOp::Log1p), &[e]).unwrap();
        let y = f.push1(Op::Binary(BinaryOp::Add), &[m, l]).unwrap();
        f.set_outputs(vec![y]);
        let p = CpuBackend::with_threads(1).prepare(&f).unwrap();
        assert_eq!(p.fusion_groups().len(), 1, "{dt:?}");
        assert_eq!(p.schedules().len(), 1, "{dt:?}");
        // The expected bits: vmath's kernels for exp and log1p (and, to show the check can
        // fail, the op table's scalar functions, which differ somewhere).
        macro_rules! expected {
            ($t:ty, $unary:path) => {{
                let x: Vec<$t> = xs.iter().map(|&v| v as $t).collect();
                let na: Vec<$t> = x.iter().map(|v| -v.abs()).collect();
                let (mut e, mut l) = (vec![0.0; N], vec![0.0; N]);
                $unary(UnaryOp::Exp, &na, &mut e);
                $unary(UnaryOp::Log1p, &e, &mut l);
                let y: Vec<$t> = x.iter().zip(&l).map(|(v, l)| v.max(0.0) + l).collect();
                let s: Vec<$t> = x
                    .iter()
                    .map(|v| v.max(0.0) + (-v.abs()).exp().ln_1p())
                    .collect();
                let t = |v: Vec<$t>| Tensor::from_vec_col_major(vec![N], v).unwrap();
                (t(y), t(s), t(x))
            }};
        }
        let (want, scalar, input) = if dt == DType::F64 {
            expected!(f64, vmath::unary_f64)
        } else {
            expected!(f32, vmath::unary_f32)
        };
        assert!(
            !want.bits_eq(&scalar),
            "{dt:?}: vmath and std agree everywhere here"
        );
        for threads in [1, 2] {
            let got = run(&f, std::slice::from_ref(&input), threads, true);
            assert!(got[0].bits_eq(&want), "{dt:?}, {threads} threads");
        }
    }
}

/// A random complex elementwise chain rich in the patterns the tile schedule folds into
/// complex multiplies (`conj`, real-to-complex `convert`, `x + x`), with values shared at
/// random (so some folds apply and others are blocked by a second reader) and some
/// intermediates returned. `steps[i] = (op, a, b)` picks operands among earlier values.
fn folds_chain(dt: DType, n: usize, steps: &[(u8, usize, usize)]) -> Function {
    let rt = dt.real();
    let mut f = Function::new("folds_chain");
    let mut cplx = vec![param(&mut f, dt, &[n]), param(&mut f, dt, &[n])];
    let mut real = vec![param(&mut f, rt, &[n])];
    let mut outs = Vec::new();
    for &(op, a, b) in steps {
        let (x, y) = (cplx[a % cplx.len()], cplx[b % cplx.len()]);
        let r = real[a % real.len()];
        let push = |f: &mut Function, op: Op, args: &[Value]| f.push1(op, args).unwrap();
        match op % 8 {
            0 | 1 => cplx.push(push(&mut f, Op::Binary(BinaryOp::Mul), &[x, y])),
            2 => {
                let c = push(&mut f, Op::Unary(UnaryOp::Conj), &[x]);
                cplx.push(push(&mut f, Op::Binary(BinaryOp::Mul), &[c, y]));
            }
            3 => {
                let c = push(&mut f, Op::Convert { to: dt }, &[r]);
                cplx.push(push(&mut f, Op::Binary(BinaryOp::Mul), &[y, c]));
            }
            4 => {
                let s = push(&mut f, Op::Binary(BinaryOp::Add), &[r, r]);
                real.push(s);
                let c = push(&mut f, Op::Convert { to: dt }, &[s]);
                cplx.push(push(&mut f, Op::Binary(BinaryOp::Mul), &[c, x]));
            }
            5 => cplx.push(push(&mut f, Op::Binary(BinaryOp::Add), &[x, x])),
            6 => real.push(push(&mut f, Op::Unary(UnaryOp::Imag), &[x])),
            _ => outs.push(x),
        }
    }
    outs.push(*cplx.last().expect("two parameters"));
    outs.dedup();
    f.set_outputs(outs);
    f
}

proptest! {
    #![proptest_config(cfg(48))]

    /// The folded complex multiplies give the reference evaluator's bits at one and two
    /// threads, special values included (any NaN for a NaN).
    #[test]
    fn folded_complex_muls_are_bit_exact(
        c64 in any::<bool>(),
        n in prop_oneof![1usize..40, 900usize..1300],
        steps in proptest::collection::vec((0u8..8, 0usize..64, 0usize..64), 1..24),
        seed in any::<u64>(),
    ) {
        let dt = if c64 { DType::C64 } else { DType::C32 };
        let f = folds_chain(dt, n, &steps);
        let mut rng = SeedRng::new(seed);
        let inputs = [
            rng.tensor(&TensorType::new(dt, vec![n]), true),
            rng.tensor(&TensorType::new(dt, vec![n]), true),
            rng.tensor(&TensorType::new(dt.real(), vec![n]), true),
        ];
        let want = tenferro_ir::eval::eval(&f, &inputs).unwrap();
        // Equal bits, or NaN in both: which NaN a product of NaNs carries depends on the
        // operand order of one addition, which the compiler may swap (LLVM treats float
        // addition as commutative), so a NaN's sign and payload are not part of the
        // contract, here or in the reference evaluator.
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for threads in [1, 2] {
            let got = run(&f, &inputs, threads, true);
            for (g, w) in got.iter().zip(&want) {
                for i in 0..n {
                    let (x, y) = (g.data().get_c64(i), w.data().get_c64(i));
                    prop_assert!(
                        same(x.re, y.re) && same(x.im, y.im),
                        "threads {threads} element {i}: {x} vs {y}\n{}",
                        tenferro_ir::print(&f)
                    );
                }
            }
        }
    }
}
