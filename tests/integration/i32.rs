//! The i32 dtype end to end: integer sums that wrap, i32 index operands, autodiff (an
//! i32 is not differentiable; i32 values inside a differentiated program have zero
//! tangents), eager mode, linalg's rejection, einsum, and the StableHLO export. Its
//! promotion is tested in `promotion.rs`, its kernels against the reference evaluator in
//! `op_table.rs`.

use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TensorType, TracedTensor};

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
    let q = (&a / &b).value().unwrap();
    assert_eq!(q.to_vec::<i32>().unwrap(), [3, -3, 0]);
    let one = ctx.from_tensor(Tensor::from_vec_col_major(vec![3], vec![1i64, 1, 1]).unwrap());
    let w = &a + &one;
    assert_eq!(w.value().unwrap().to_vec::<i64>().unwrap(), [8, -6, 3]);
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
