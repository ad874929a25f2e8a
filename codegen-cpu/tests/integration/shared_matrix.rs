//! `Aᵀ·w(A·X)` in one pass over `A` (the `shared_matrix` step): which programs take it,
//! and that they compute what the reference evaluator does, with the same bits at 1 and 2
//! threads.

use crate::common;

use common::*;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{
    BinaryOp, DType, Data, DotDims, Function, Op, Tensor, TensorType, UnaryOp, Value,
};
use tenferro_runtime::Backend;

/// How a case differs from the plain `Aᵀ·w(A·X)`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Plain,
    /// `A·w` written as `dot_general(A, w)` contracting `A`'s axis 0.
    MatrixFirst,
    /// `y` is also returned.
    YOut,
    /// `w` is also returned.
    WOut,
    /// `w` reads `y` rotated by one row (not at its own rows).
    Rotated,
}

fn dot(f: &mut Function, a: Value, b: Value, lc: usize, rc: usize) -> Value {
    f.push1(
        Op::DotGeneral(DotDims {
            lhs_contract: vec![lc],
            rhs_contract: vec![rc],
            lhs_batch: vec![],
            rhs_batch: vec![],
        }),
        &[a, b],
    )
    .unwrap()
}

/// `A [m, k]`, `X [k]` (`p = None`) or `[k, p]`, `v [m]`: `y = A·X`, `w = tanh(y₀)·y_last
/// + v·y_mid` elementwise, returns `Aᵀ·w`.
fn program(dt: DType, m: usize, k: usize, p: Option<usize>, variant: Variant) -> Function {
    program_with(dt, m, k, p, variant, None)
}

/// A random elementwise expression of the leaves (`y`'s columns, `v`, a broadcast
/// constant), `depth` levels deep.
fn random_expr(f: &mut Function, rng: &mut SeedRng, leaves: &[Value], depth: usize) -> Value {
    if depth == 0 || rng.below(4) == 0 {
        return leaves[rng.below(leaves.len())];
    }
    if rng.below(3) == 0 {
        let u = [UnaryOp::Tanh, UnaryOp::Sin, UnaryOp::Neg, UnaryOp::Abs][rng.below(4)];
        let x = random_expr(f, rng, leaves, depth - 1);
        return f.push1(Op::Unary(u), &[x]).unwrap();
    }
    let b = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Max][rng.below(4)];
    let x = random_expr(f, rng, leaves, depth - 1);
    let y = random_expr(f, rng, leaves, depth - 1);
    f.push1(Op::Binary(b), &[x, y]).unwrap()
}

/// [`program`], with `w` a random expression of seed `expr` when given.
fn program_with(
    dt: DType,
    m: usize,
    k: usize,
    p: Option<usize>,
    variant: Variant,
    expr: Option<u64>,
) -> Function {
    let mut f = Function::new("shared_matrix");
    let a = f.add_param(TensorType::new(dt, vec![m, k]));
    let x_shape = match p {
        None => vec![k],
        Some(p) => vec![k, p],
    };
    let x = f.add_param(TensorType::new(dt, x_shape));
    let v = f.add_param(TensorType::new(dt, vec![m]));
    let y = dot(&mut f, a, x, 1, 0);
    let cols: Vec<Value> = match p {
        None => vec![y],
        Some(p) => (0..p)
            .map(|c| {
                let s = f
                    .push1(
                        Op::Slice {
                            starts: vec![0, c],
                            limits: vec![m, c + 1],
                        },
                        &[y],
                    )
                    .unwrap();
                f.push1(Op::Reshape { shape: vec![m] }, &[s]).unwrap()
            })
            .collect(),
    };
    let first = if variant == Variant::Rotated {
        let head = f
            .push1(
                Op::Slice {
                    starts: vec![1],
                    limits: vec![m],
                },
                &[cols[0]],
            )
            .unwrap();
        let tail = f
            .push1(
                Op::Slice {
                    starts: vec![0],
                    limits: vec![1],
                },
                &[cols[0]],
            )
            .unwrap();
        f.push1(Op::Concatenate { axis: 0 }, &[head, tail]).unwrap()
    } else {
        cols[0]
    };
    let t = f.push1(Op::Unary(UnaryOp::Tanh), &[first]).unwrap();
    let t = f
        .push1(Op::Binary(BinaryOp::Mul), &[t, cols[cols.len() - 1]])
        .unwrap();
    let u = f
        .push1(Op::Binary(BinaryOp::Mul), &[v, cols[cols.len() / 2]])
        .unwrap();
    let mut w = f.push1(Op::Binary(BinaryOp::Add), &[t, u]).unwrap();
    if let Some(seed) = expr {
        let c = f
            .push1(
                Op::Constant(Tensor::full(&TensorType::scalar(dt), 0.75)),
                &[],
            )
            .unwrap();
        let c = f
            .push1(
                Op::BroadcastInDim {
                    shape: vec![m],
                    dims: vec![],
                },
                &[c],
            )
            .unwrap();
        let mut leaves = cols.clone();
        leaves.extend([v, c, w]);
        let mut rng = SeedRng::new(seed);
        // Always reads the first `w`, so no instruction is dead.
        let e = random_expr(&mut f, &mut rng, &leaves, 4);
        w = f.push1(Op::Binary(BinaryOp::Mul), &[e, w]).unwrap();
    }
    let r = if variant == Variant::MatrixFirst {
        dot(&mut f, a, w, 0, 0)
    } else {
        dot(&mut f, w, a, 0, 0)
    };
    match variant {
        Variant::YOut => f.set_outputs(vec![r, y]),
        Variant::WOut => f.set_outputs(vec![r, w]),
        _ => f.set_outputs(vec![r]),
    }
    f
}

fn uses_pass(f: &Function) -> bool {
    let prepared = CpuBackend::with_threads(1).prepare(f).unwrap();
    prepared
        .steps()
        .iter()
        .any(|s| s.kernel_name() == "shared_matrix")
}

fn close(g: &Tensor, w: &Tensor, tol: f64) -> bool {
    let scale = (0..w.numel())
        .map(|i| w.data().get_c64(i).norm())
        .fold(1.0f64, f64::max);
    g.shape() == w.shape()
        && (0..g.numel()).all(|i| (g.data().get_c64(i) - w.data().get_c64(i)).norm() <= tol * scale)
}

/// Runs `f` against the reference at 1 and 2 threads (same bits) and unfused.
fn check(f: &Function, inputs: &[Tensor], what: &str) {
    let want = tenferro_ir::eval::eval(f, inputs).unwrap();
    let one = run_cpu(f, inputs, 1);
    let two = run_cpu(f, inputs, 2);
    let unfused = run_cpu_with(f, inputs, 1, false);
    let tol = if f.ty(f.params()[0]).dtype == DType::F32 {
        1e-4
    } else {
        1e-11
    };
    for (o, w) in want.iter().enumerate() {
        assert!(close(&one[o], w, tol), "{what}: output {o} at 1 thread");
        assert!(
            one[o].bits_eq(&two[o]),
            "{what}: output {o}, 1 and 2 threads differ"
        );
        assert!(close(&unfused[o], w, tol), "{what}: output {o} unfused");
    }
}

fn inputs(dt: DType, m: usize, k: usize, p: Option<usize>, seed: u64) -> Vec<Tensor> {
    let mut rng = SeedRng::new(seed);
    let x_shape = p.map_or(vec![k], |p| vec![k, p]);
    vec![
        rng.tensor(&TensorType::new(dt, vec![m, k]), false),
        rng.tensor(&TensorType::new(dt, x_shape), false),
        rng.tensor(&TensorType::new(dt, vec![m]), false),
    ]
}

/// Shapes around the block and vector edges (rows not a multiple of 16 or of the block,
/// one block or many, `k` not a multiple of 4, one to four columns of `X`) run as one pass
/// and agree with the reference; threads do not change a bit.
#[test]
fn a_matrix_read_once_gives_the_three_steps_result() {
    let mut rng = SeedRng::new(29);
    let shapes = [
        (1000, 1000),
        (1003, 997),
        (130, 513),
        (4099, 17),
        (257, 256),
        (64, 1025),
        (5000, 14),
    ];
    for (case, &(m, k)) in shapes.iter().enumerate() {
        for p in [None, Some(1), Some(2), Some(3), Some(4)] {
            let variant = if rng.below(2) == 0 {
                Variant::Plain
            } else {
                Variant::MatrixFirst
            };
            let f = program(DType::F64, m, k, p, variant);
            let what = format!("m {m}, k {k}, p {p:?}, {variant:?}");
            assert!(uses_pass(&f), "{what}: not one pass");
            check(&f, &inputs(DType::F64, m, k, p, case as u64), &what);
        }
    }
}

/// Random elementwise groups between the products (unary and binary ops over `y`'s
/// columns, `v` and a constant) run as one pass and agree with the reference, with the
/// same bits at 1 and 2 threads.
#[test]
fn any_elementwise_group_between_the_products_runs_in_the_pass() {
    let mut rng = SeedRng::new(31);
    for case in 0..40 {
        let m = 1000 + rng.below(1500);
        let k = 70 + rng.below(700);
        let p = [None, Some(1), Some(2), Some(3), Some(4)][rng.below(5)];
        let f = program_with(DType::F64, m, k, p, Variant::Plain, Some(case));
        let what = format!("case {case}: m {m}, k {k}, p {p:?}");
        assert!(uses_pass(&f), "{what}: not one pass");
        check(&f, &inputs(DType::F64, m, k, p, 1000 + case), &what);
    }
}

/// Programs that must keep their three steps: `y` or `w` read elsewhere, `y` read away
/// from its rows, too many columns, f32, or a matrix too small to pay. Each still agrees
/// with the reference.
#[test]
fn the_pass_is_taken_only_where_it_computes_the_same() {
    let cases = [
        (DType::F64, 600, 300, Some(2), Variant::YOut),
        (DType::F64, 600, 300, Some(2), Variant::WOut),
        (DType::F64, 600, 300, Some(2), Variant::Rotated),
        (DType::F64, 600, 300, Some(5), Variant::Plain),
        (DType::F32, 600, 300, Some(2), Variant::Plain),
        (DType::F64, 60, 30, Some(2), Variant::Plain),
    ];
    for (i, &(dt, m, k, p, variant)) in cases.iter().enumerate() {
        let f = program(dt, m, k, p, variant);
        let what = format!("{dt:?} m {m}, k {k}, p {p:?}, {variant:?}");
        assert!(!uses_pass(&f), "{what}: took the pass");
        check(&f, &inputs(dt, m, k, p, 100 + i as u64), &what);
    }
}

/// A NaN in `A` reaches the result where the three steps put it (everywhere: its row of
/// `y`, so of `w`, enters every element), over several blocks and at 2 threads.
#[test]
fn non_finite_values_pass_through_the_pass() {
    let (m, k) = (1500, 300);
    let f = program(DType::F64, m, k, Some(2), Variant::Plain);
    assert!(uses_pass(&f));
    let mut ins = inputs(DType::F64, m, k, Some(2), 7);
    if let Data::F64(a) = ins[0].data_mut() {
        a[5 + 3 * m] = f64::NAN;
    }
    let want = tenferro_ir::eval::eval(&f, &ins).unwrap();
    let got = run_cpu(&f, &ins, 2);
    for j in 0..k {
        let (g, w) = (got[0].data().get_c64(j).re, want[0].data().get_c64(j).re);
        assert_eq!(g.is_nan(), w.is_nan(), "element {j}");
        if !w.is_nan() {
            assert!((g - w).abs() <= 1e-11 * (1.0 + w.abs()), "element {j}");
        }
    }
}
