//! The i32 dtype end to end: promotion against i64, floats and weak Rust scalars (as JAX
//! with 64-bit types), reductions and scans on the CPU backend (fused and unfused, 1 and
//! 2 threads) against the reference evaluator, i32 index operands, autodiff (an i32 is
//! not differentiable; i32 values inside a differentiated program have zero tangents),
//! eager mode, linalg's rejection, einsum, and the StableHLO export.

use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_ir::eval::eval;
use tenferro_ir::{BinaryOp, CmpOp, ReduceOp};
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_passes::OptLevel;
use tenferro_runtime::{
    CompileOptions, DType, GraphCompiler, GraphExecutor, Tensor, TensorType, TracedTensor,
};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).expect("compile");
    GraphExecutor::new(CpuBackend::new()).run(&p).expect("run")
}

fn i32s(v: &[i32]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec())
}

fn i64s(v: &[i64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec())
}

#[test]
fn promotion_follows_jax() {
    let a = i32s(&[1, -2, 3]);
    // i32 + i64 → i64
    let s = &a + &i64s(&[10, 20, 1 << 40]);
    assert_eq!(s.dtype().unwrap(), DType::I64);
    assert_eq!(run(&s).to_vec::<i64>().unwrap(), [11, 18, (1 << 40) + 3]);
    // i32 with a weak Rust integer stays i32
    let m = &a * 2;
    assert_eq!(m.dtype().unwrap(), DType::I32);
    assert_eq!(run(&m).to_vec::<i32>().unwrap(), [2, -4, 6]);
    // i32 with a weak Rust float becomes the default float f64
    let h = &a * 0.5;
    assert_eq!(h.dtype().unwrap(), DType::F64);
    assert_eq!(run(&h).to_vec::<f64>().unwrap(), [0.5, -1.0, 1.5]);
    // i32 + f32 → f32
    let f = TracedTensor::from_vec_col_major(vec![3], vec![0.25f32, 0.5, 0.75]);
    let g = &a + &f;
    assert_eq!(g.dtype().unwrap(), DType::F32);
    assert_eq!(run(&g).to_vec::<f32>().unwrap(), [1.25, -1.5, 3.75]);
    // bool + i32 → i32
    let b = TracedTensor::from_vec_col_major(vec![3], vec![true, false, true]);
    assert_eq!((&b + &a).dtype().unwrap(), DType::I32);
    // mean of i32 is f64
    let mean = i32s(&[0, 1, 2, 3]).mean();
    assert_eq!(mean.dtype().unwrap(), DType::F64);
    assert_eq!(run(&mean).to_vec::<f64>().unwrap(), [1.5]);
    // comparisons promote, then give bool
    let lt = a.compare(CmpOp::Lt, &i64s(&[2, -3, 3]));
    assert_eq!(run(&lt).to_vec::<bool>().unwrap(), [true, false, false]);
}

#[test]
fn a_weak_integer_outside_the_i32_range_is_an_error() {
    let a = i32s(&[1, 2]);
    let e = (&a * (1_i64 << 33)).error().expect("recorded").to_string();
    assert!(
        e.contains("mul") && e.contains("8589934592") && e.contains("i32[2]"),
        "{e}"
    );
}

#[test]
fn sums_keep_i32_and_wrap_max_and_argmax_as_i64_does() {
    let a = i32s(&[i32::MAX, 1, 5]);
    let s = a.sum();
    assert_eq!(s.dtype().unwrap(), DType::I32);
    assert_eq!(run(&s).to_vec::<i32>().unwrap(), [i32::MIN + 5]);
    assert_eq!(run(&a.max()).to_vec::<i32>().unwrap(), [i32::MAX]);
    let am = a.argmin(0, false);
    assert_eq!(am.dtype().unwrap(), DType::I64);
    assert_eq!(run(&am).to_vec::<i64>().unwrap(), [1]);
    let order = a.argsort(0, false);
    assert_eq!(run(&order).to_vec::<i64>().unwrap(), [1, 2, 0]);
    // widening first gives the exact sum
    let w = a.convert(DType::I64).unwrap().sum();
    assert_eq!(run(&w).to_vec::<i64>().unwrap(), [i32::MAX as i64 + 6]);
}

/// Random i32 values with the extremes now and then.
fn random_i32(n: usize, seed: u64) -> Vec<i32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            match s % 16 {
                0 => i32::MIN,
                1 => i32::MAX,
                k => (s >> 8) as i32 % 1000 - (k as i32),
            }
        })
        .collect()
}

#[test]
fn reductions_and_scans_run_on_the_cpu_as_the_reference_evaluator_does() {
    // Sizes past the lane count and the tile / block sizes, so the fused whole
    // reductions, the row reductions and the blocked scans all run.
    let (m, n) = (37, 301);
    let xv = Tensor::from_vec_col_major(vec![m, n], random_i32(m * n, 0x1234)).unwrap();
    let x = TracedTensor::input(DType::I32, &[m, n]);
    let mut outs: Vec<TracedTensor> = Vec::new();
    let mixed = (&x * 3).binary(BinaryOp::Xor, &x);
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
    for y in &outs {
        let p0 = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
            .compile(y)
            .unwrap();
        let want = eval(p0.function(), std::slice::from_ref(&xv))
            .unwrap()
            .remove(0);
        assert!(matches!(want.dtype(), DType::I32 | DType::I64));
        for threads in [1, 2] {
            for fusion in [true, false] {
                let backend = CpuBackend::with_threads(threads).with_fusion(fusion);
                let got = GraphExecutor::new(backend)
                    .run_with_inputs(&p0, &[(&x, xv.clone())])
                    .unwrap();
                assert!(
                    got.bits_eq(&want),
                    "{}: {threads} threads, fusion {fusion}",
                    tenferro_ir::print(p0.function())
                );
            }
        }
    }
}

#[test]
fn i32_indices_index_as_i64_indices_do() {
    let x = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let (i32_idx, i64_idx) = (i32s(&[2, 0, 5, -1]), i64s(&[2, 0, 5, -1]));
    let same = |a: TracedTensor, b: TracedTensor| {
        let (a, b) = (run(&a), run(&b));
        assert!(a.bits_eq(&b), "{a:?} vs {b:?}");
    };
    same(x.take(&i32_idx, 1).unwrap(), x.take(&i64_idx, 1).unwrap());
    same(
        x.gather(&i32_idx, 1).unwrap(),
        x.gather(&i64_idx, 1).unwrap(),
    );
    let upd = TracedTensor::full(&TensorType::new(DType::F64, vec![2, 4]), 1.0);
    same(
        x.scatter_add(&i32_idx, &upd, 1).unwrap(),
        x.scatter_add(&i64_idx, &upd, 1).unwrap(),
    );
    same(
        i32_idx.one_hot(3, DType::F32).unwrap(),
        i64_idx.one_hot(3, DType::F32).unwrap(),
    );
    let along32 = TracedTensor::from_vec_col_major(vec![2, 1], vec![2i32, 0]);
    let along64 = TracedTensor::from_vec_col_major(vec![2, 1], vec![2i64, 0]);
    same(
        x.take_along_axis(&along32, 1).unwrap(),
        x.take_along_axis(&along64, 1).unwrap(),
    );
    let (r32, c32) = (TracedTensor::scalar(1i32), TracedTensor::scalar(1i32));
    let (r64, c64) = (TracedTensor::scalar(1i64), TracedTensor::scalar(1i64));
    same(
        x.dynamic_slice(&[&r32, &c32], &[1, 2]).unwrap(),
        x.dynamic_slice(&[&r64, &c64], &[1, 2]).unwrap(),
    );
    let blk = TracedTensor::full(&TensorType::new(DType::F64, vec![1, 1]), 9.0);
    same(
        x.dynamic_update_slice(&blk, &[&r32, &c32]).unwrap(),
        x.dynamic_update_slice(&blk, &[&r64, &c64]).unwrap(),
    );
}

#[test]
fn non_integer_indices_are_errors_naming_the_op() {
    let x = TracedTensor::from_vec_col_major(vec![3], vec![1.0f64, 2.0, 3.0]);
    let f = TracedTensor::from_vec_col_major(vec![1], vec![1.0f32]);
    let e = x.take(&f, 0).unwrap_err().to_string();
    assert!(
        e.contains("take") && e.contains("f32[1]") && e.contains("i32 or i64"),
        "{e}"
    );
    let e = f.one_hot(3, DType::F64).unwrap_err().to_string();
    assert!(e.contains("one_hot") && e.contains("f32[1]"), "{e}");
    let s = TracedTensor::scalar(0.5f64);
    let e = x.dynamic_slice(&[&s], &[1]).unwrap_err().to_string();
    assert!(e.contains("dynamic_slice") && e.contains("f64[]"), "{e}");
}

#[test]
fn grad_with_respect_to_an_i32_is_an_error_and_i32_values_have_zero_tangents() {
    let ad = AdContext::new();
    let k = i32s(&[1, 2, 3]);
    let loss = k.convert(DType::F64).unwrap().sum();
    let e = ad.grad(&loss, &k).unwrap_err().to_string();
    assert!(e.contains("i32[3]"), "{e}");
    // d/dx sum(x · k) = k, with k an i32 computed inside the program; the round trip
    // through i32 contributes nothing.
    let x = TracedTensor::from_vec_col_major(vec![3], vec![0.5f64, 1.5, -2.5]);
    let through = x.convert(DType::I32).unwrap().convert(DType::F64).unwrap();
    let loss = (&(&x * &(&k * 1).convert(DType::F64).unwrap()) + &through).sum();
    let g = ad.grad(&loss, &x).unwrap();
    assert_eq!(run(&g).to_vec::<f64>().unwrap(), [1.0, 2.0, 3.0]);
}

#[test]
fn eager_i32_matches_traced_and_is_not_differentiable() {
    let ctx = EagerContext::new(CpuBackend::new());
    let a = ctx.from_tensor(Tensor::from_vec_col_major(vec![3], vec![7i32, -7, 2]).unwrap());
    let b = ctx.from_tensor(Tensor::from_vec_col_major(vec![3], vec![2i32, 2, 0]).unwrap());
    let q = (&a / &b).unwrap().value();
    assert_eq!(q.to_vec::<i32>().unwrap(), [3, -3, 0]);
    let one = ctx.from_tensor(Tensor::from_vec_col_major(vec![3], vec![1i64, 1, 1]).unwrap());
    let w = (&a + &one).unwrap();
    assert_eq!(w.value().to_vec::<i64>().unwrap(), [8, -6, 3]);
    let e = ctx
        .grad(|t| t.convert(DType::F64)?.sum(), &a)
        .unwrap_err()
        .to_string();
    assert!(e.contains("i32[3]"), "{e}");
}

#[test]
fn linalg_rejects_i32_and_einsum_contracts_it() {
    let m = TracedTensor::full(&TensorType::new(DType::I32, vec![2, 2]), 1.0);
    let e = m.cholesky().unwrap_err().to_string();
    assert!(e.contains("cholesky") && e.contains("i32[2,2]"), "{e}");
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1i32, 2, 3, 4]);
    let b = TracedTensor::from_vec_col_major(vec![2], vec![5i32, 6]);
    let y = tenferro_einsum::einsum("ij,j->i", &[&a, &b]).unwrap();
    assert_eq!(y.dtype().unwrap(), DType::I32);
    // a = [[1, 3], [2, 4]] (column-major): a·b = [23, 34]
    assert_eq!(run(&y).to_vec::<i32>().unwrap(), [23, 34]);
}

#[test]
fn stablehlo_spells_i32() {
    let a = TracedTensor::input(DType::I32, &[2]);
    let y = &(&a * 3) / &a;
    let p = GraphCompiler::new().compile(&y).unwrap();
    let text = tenferro_xla::to_stablehlo(p.function()).unwrap();
    assert!(text.contains("tensor<2xi32>"), "{text}");
    assert!(text.contains("stablehlo.divide"), "{text}");
}
