//! Bad input never panics: random chains of traced ops with random (often invalid) axes,
//! shapes and dtypes either work or return errors, through compile, run, grad and jvp.

use proptest::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TensorType, TracedTensor};

#[derive(Clone, Debug)]
enum Step {
    Unary(u8),
    Binary(u8, usize),
    Scalar(u8, f64),
    Reduce(u8, Vec<usize>),
    Transpose(Vec<usize>),
    Reshape(Vec<usize>),
    Broadcast(Vec<usize>, Vec<usize>),
    Slice(Vec<usize>, Vec<usize>),
    Pad(Vec<usize>, Vec<usize>),
    Concat(usize, usize),
    Gather(usize, Vec<i64>),
    Convert(u8),
    Matmul(usize),
    Select(usize, usize),
    /// A vocabulary method (`u8` picks it) with two integer parameters (axes, counts, ...)
    /// and an operand.
    Vocab(u8, i64, i64, usize),
}

fn small_vec(max_len: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max, 0..=max_len)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..15).prop_map(Step::Unary),
        (0u8..7, 0usize..4).prop_map(|(o, i)| Step::Binary(o, i)),
        (0u8..4, -2.0f64..2.0).prop_map(|(o, v)| Step::Scalar(o, v)),
        (0u8..4, small_vec(3, 3)).prop_map(|(k, a)| Step::Reduce(k, a)),
        small_vec(4, 3).prop_map(Step::Transpose),
        small_vec(3, 6).prop_map(Step::Reshape),
        (small_vec(3, 4), small_vec(3, 3)).prop_map(|(s, d)| Step::Broadcast(s, d)),
        (small_vec(3, 3), small_vec(3, 4)).prop_map(|(a, b)| Step::Slice(a, b)),
        (small_vec(3, 2), small_vec(3, 2)).prop_map(|(a, b)| Step::Pad(a, b)),
        (0usize..4, 0usize..3).prop_map(|(i, a)| Step::Concat(i, a)),
        (0usize..3, prop::collection::vec(-3i64..5, 0..4)).prop_map(|(a, i)| Step::Gather(a, i)),
        (0u8..6).prop_map(Step::Convert),
        (0usize..4).prop_map(Step::Matmul),
        (0usize..4, 0usize..4).prop_map(|(a, b)| Step::Select(a, b)),
        (0u8..40, -4i64..5, -4i64..5, 0usize..4).prop_map(|(o, a, b, i)| Step::Vocab(o, a, b, i)),
    ]
}

fn dtype(i: u8) -> DType {
    DType::ALL[i as usize % DType::ALL.len()]
}

fn apply(vals: &[TracedTensor], x: &TracedTensor, s: &Step) -> TracedTensor {
    use tenferro_ir::{BinaryOp, UnaryOp};
    let pick = |i: usize| &vals[i % vals.len()];
    let r = match s {
        Step::Unary(u) => Ok(x.unary(UnaryOp::ALL[*u as usize % 15])),
        Step::Binary(b, i) => Ok(x.binary(BinaryOp::ALL[*b as usize % 7], pick(*i))),
        Step::Scalar(o, v) => Ok(match o {
            0 => x + *v,
            1 => x - *v,
            2 => *v * x,
            _ => x / *v,
        }),
        Step::Reduce(k, a) => Ok(match k {
            0 => x.reduce_sum(a),
            1 => x.reduce_prod(a),
            2 => x.reduce_max(a),
            _ => x.reduce_min(a),
        }),
        Step::Transpose(p) => x.transpose(p),
        Step::Reshape(sh) => x.reshape(sh),
        Step::Broadcast(sh, d) => x.broadcast_in_dim(sh, d),
        Step::Slice(a, b) => x.slice(a, b),
        Step::Pad(a, b) => x.pad(a, b, 1.5),
        Step::Concat(i, a) => TracedTensor::concatenate(&[x, pick(*i)], *a),
        Step::Gather(a, idx) => {
            let n = idx.len();
            x.gather(&TracedTensor::from_vec_col_major(vec![n], idx.clone()), *a)
        }
        Step::Convert(d) => x.convert(dtype(*d)),
        Step::Matmul(i) => x.matmul(pick(*i)),
        Step::Select(p, i) => Ok(TracedTensor::select(&pick(*p).greater(x), x, pick(*i))),
        Step::Vocab(o, a, b, i) => vocab(x, *o, *a, *b, pick(*i)),
    };
    r.unwrap_or_else(TracedTensor::from_error)
}

/// The vocabulary (composites of the table: reductions over signed axes, activations,
/// sorting, structural, arithmetic) with parameters that are often invalid.
fn vocab(
    x: &TracedTensor,
    o: u8,
    a: i64,
    b: i64,
    y: &TracedTensor,
) -> Result<TracedTensor, tenferro_runtime::RuntimeError> {
    let (ax, n) = (a as isize, b.unsigned_abs() as usize);
    let axes = [ax, b as isize];
    let idx = TracedTensor::from_vec_col_major(vec![2], vec![a, b]);
    Ok(match o {
        0 => x.sum_axes(&axes[..n.min(2)], a > 0),
        1 => x.mean_axes(&[ax], b > 0),
        2 => x.max_axes(&[ax], false),
        3 => x.var_axes(&[ax], n, true),
        4 => x.logsumexp(&[ax], b > 0),
        5 => x.softmax(ax),
        6 => x.log_softmax(ax),
        7 => x.argmax(ax, b > 0),
        8 => x.argmin_all(),
        9 => x.sort(ax, b > 0),
        10 => x.argsort(ax, b > 0),
        11 => x.cumsum(ax),
        12 => x.cummax(ax),
        13 => x.top_k(n).0,
        14 => x.expand_dims(ax)?,
        15 => x.squeeze(&[ax])?,
        16 => x.take(&idx, ax)?,
        17 => x.take_along_axis(&idx, ax)?,
        18 => x.repeat(n, ax)?,
        19 => x.tile(&[n, 1])?,
        20 => x.diagonal(a, ax, b as isize)?,
        21 => x.tril(a)?,
        22 => x.trace()?,
        23 => x.flatten()?,
        24 => x.index(n)?,
        25 => x.reverse(&[n])?,
        26 => TracedTensor::stack(&[x, y], ax)?,
        27 => x
            .split_into(n, ax)?
            .into_iter()
            .next()
            .unwrap_or_else(|| x.clone()),
        28 => x.remainder(y),
        29 => x.floor_divide(y),
        30 => x.atan2(y),
        31 => x.bitwise_and(y),
        32 => x.logical_xor(y),
        33 => x % (a as f64),
        34 => x.clip(a as f64, b as f64),
        35 => x.one_hot(n, DType::F64)?,
        36 => x.diag_embed(a)?,
        37 => x.std_axes(&[ax], n, false),
        38 => x.prod_axes(&[ax], true),
        _ => x.all(&[ax], b > 0),
    })
}

fn start(shape: &[usize], d: u8) -> TracedTensor {
    let ty = TensorType::new(dtype(d), shape.to_vec());
    let n = ty.numel();
    let data: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin() * 2.0).collect();
    let t = TracedTensor::from_vec_col_major(shape.to_vec(), data);
    if ty.dtype == DType::F64 {
        t
    } else {
        t.convert(ty.dtype).unwrap_or_else(TracedTensor::from_error)
    }
}

/// Runs the chain; returns whether its value compiled and ran (to check the test reaches
/// the backend and the transforms, not only tracing errors).
fn exercise(vals: Vec<TracedTensor>, steps: &[Step]) -> bool {
    let mut vals = vals;
    for s in steps {
        let x = vals[vals.len() - 1].clone();
        let y = apply(&vals, &x, s);
        vals.push(y);
    }
    let last = vals.last().unwrap().clone();
    let mut ex = GraphExecutor::new(CpuBackend::with_threads(1));
    let ran = match GraphCompiler::new().compile(&last) {
        Ok(p) => ex.run(&p).is_ok(),
        Err(_) => false,
    };
    let ad = AdContext::builder().build().unwrap();
    let loss = last.sum();
    if let Ok(g) = ad.grad(&loss, &vals[0]) {
        if let Ok(p) = GraphCompiler::new().compile(&g) {
            let _ = ex.run(&p);
        }
    }
    let _ = ad.grad(&last, &vals[0]);
    let t = TracedTensor::from_tensor(Tensor::zeros(&vals[0].ty().unwrap()));
    if let Ok(j) = ad.jvp(&last, &vals[0], &t) {
        if let Ok(p) = GraphCompiler::new().compile(&j) {
            let _ = ex.run(&p);
        }
    }
    ran
}

#[test]
fn random_chains_mostly_reach_the_backend() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (small_vec(3, 3), 0u8..4, prop::collection::vec(step(), 1..6));
    let mut ran = 0;
    for _ in 0..64 {
        let (shape, d, steps) = strategy.new_tree(&mut runner).unwrap().current();
        if exercise(vec![start(&shape, d), start(&shape, 1)], &steps) {
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} of 64 random chains compiled and ran");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn random_op_chains_never_panic(
        shape in small_vec(3, 3),
        d in 0u8..4,
        steps in prop::collection::vec(step(), 1..8),
    ) {
        let x = start(&shape, d);
        let other = start(&shape, 1);
        let r = catch_unwind(AssertUnwindSafe(|| {
            exercise(vec![x, other], &steps);
        }));
        prop_assert!(r.is_ok(), "panicked on shape {:?} dtype {:?} steps {:?}", shape, dtype(d), steps);
    }
}
