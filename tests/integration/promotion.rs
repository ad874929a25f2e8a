//! Type promotion as JAX does it: Rust numbers are weakly typed, tensors promote along
//! bool < i32 < i64 < f32 < f64 and real < complex.

use tenferro_ad::EagerContext;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{CmpOp, DType, Tensor};
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new()).run(&p).unwrap()
}

#[test]
fn a_rust_float_keeps_a_float_tensor_dtype() {
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0f32, 2.0]);
    let y = run(&(&x * 2.0));
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 4.0]);
    let z = TracedTensor::from_vec_col_major(vec![1], vec![num_complex::Complex32::new(1.0, 1.0)]);
    assert_eq!(run(&(0.5 * &z)).dtype(), DType::C32);
}

#[test]
fn a_rust_float_makes_an_integer_tensor_float() {
    let i = TracedTensor::from_vec_col_major(vec![4], vec![0i64, 1, 2, 3]);
    let y = run(&(&i * 0.5));
    assert_eq!(y.dtype(), DType::F64);
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![0.0, 0.5, 1.0, 1.5]);
    let m = run(&i.reduce_mean(&[0]));
    assert_eq!(m.to_vec::<f64>().unwrap(), vec![1.5]);
    let b = TracedTensor::from_vec_col_major(vec![2], vec![true, false]);
    assert_eq!(run(&(&b + 1.5)).to_vec::<f64>().unwrap(), vec![2.5, 1.5]);
}

#[test]
fn a_rust_integer_keeps_the_tensor_dtype() {
    let i = TracedTensor::from_vec_col_major(vec![3], vec![1i64, 2, 3]);
    let y = run(&(&i * 2));
    assert_eq!(y.to_vec::<i64>().unwrap(), vec![2, 4, 6]);
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.5f32, 2.0]);
    let y = run(&(3 - &x));
    assert_eq!(y.dtype(), DType::F32);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.5, 1.0]);
    let b = TracedTensor::from_vec_col_major(vec![2], vec![true, false]);
    assert_eq!(run(&(&b + 1)).to_vec::<i64>().unwrap(), vec![2, 1]);
}

#[test]
fn tensors_promote_along_the_lattice() {
    let i = TracedTensor::from_vec_col_major(vec![2], vec![1i64, 2]);
    let f = TracedTensor::from_vec_col_major(vec![2], vec![0.5f32, 0.25]);
    let d = TracedTensor::from_vec_col_major(vec![2], vec![0.5f64, 0.25]);
    let z =
        TracedTensor::from_vec_col_major(vec![2], vec![num_complex::Complex32::new(0.0, 1.0); 2]);
    assert_eq!(run(&(&i + &f)).dtype(), DType::F32);
    assert_eq!(run(&(&f + &d)).dtype(), DType::F64);
    assert_eq!(run(&(&d * &z)).dtype(), DType::C64);
    assert_eq!(run(&(&f * &z)).dtype(), DType::C32);
}

#[test]
fn eager_scalars_promote_as_traced_ones() {
    let ctx = EagerContext::new(CpuBackend::new());
    let i = ctx
        .from_vec_col_major(vec![4], vec![0i64, 1, 2, 3])
        .unwrap();
    let y = &i * 0.5;
    assert_eq!(
        y.value().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 0.5, 1.0, 1.5]
    );
}

#[test]
fn eager_scalars_are_run_time_operands_not_part_of_the_cached_op() {
    let ctx = EagerContext::new(CpuBackend::new());
    let w = ctx
        .from_vec_col_major(vec![3], vec![1.0f32, 2.0, 3.0])
        .unwrap();
    let first = &w * 0.5;
    assert_eq!(
        first.value().unwrap().to_vec::<f32>().unwrap(),
        vec![0.5, 1.0, 1.5]
    );
    let compiled = ctx.stats().ops_compiled;
    for step in 1..50 {
        let lr = 1.0 / (1.0 + step as f64);
        let y = &w * lr;
        assert_eq!(y.value().unwrap().dtype(), DType::F32);
        let want: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|x| x * lr as f32).collect();
        assert_eq!(y.value().unwrap().to_vec::<f32>().unwrap(), want);
        let z = 1.0 - &w;
        assert_eq!(
            z.value().unwrap().to_vec::<f32>().unwrap(),
            vec![0.0, -1.0, -2.0]
        );
    }
    // one more op for `1.0 - w` (scalar on the left), none per new scalar value
    assert_eq!(ctx.stats().ops_compiled, compiled + 1);
}

#[test]
fn i32_promotes_as_in_jax() {
    let a = TracedTensor::from_vec_col_major(vec![3], vec![1i32, -2, 3]);
    // i32 + i64 → i64
    let s = &a + &TracedTensor::from_vec_col_major(vec![3], vec![10i64, 20, 1 << 40]);
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
    let mean = TracedTensor::from_vec_col_major(vec![4], vec![0i32, 1, 2, 3]).mean();
    assert_eq!(mean.dtype().unwrap(), DType::F64);
    assert_eq!(run(&mean).to_vec::<f64>().unwrap(), [1.5]);
    // comparisons promote, then give bool
    let lt = a.compare(
        CmpOp::Lt,
        &TracedTensor::from_vec_col_major(vec![3], vec![2i64, -3, 3]),
    );
    assert_eq!(run(&lt).to_vec::<bool>().unwrap(), [true, false, false]);
}

#[test]
fn a_weak_integer_outside_the_i32_range_is_an_error() {
    let a = TracedTensor::from_vec_col_major(vec![2], vec![1i32, 2]);
    let e = (&a * (1_i64 << 33)).error().expect("recorded").to_string();
    assert!(
        e.contains("mul") && e.contains("8589934592") && e.contains("i32[2]"),
        "{e}"
    );
}
