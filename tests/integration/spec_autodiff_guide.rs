//! The code blocks of `spec/autodiff-guide.md`, verbatim, as integration tests.
#![allow(unused_imports)]

#[test]
fn reverse_mode_gradient_with_grad() {
    use tenferro_ad::AdContext;
    use tenferro_cpu::CpuBackend;
    use tenferro_linalg::TracedTensorLinalgExt;
    use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

    let x = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]);
    let loss = (&x * &x).reduce_sum(&[0]);
    let ad = AdContext::builder().build().unwrap();
    let grad = ad.grad(&loss, &x).unwrap();

    let mut compiler = GraphCompiler::new();
    let program = compiler.compile(&grad).unwrap();
    let mut executor = GraphExecutor::new(CpuBackend::new());
    let result = executor.run(&program).unwrap();

    assert_eq!(result.shape(), &[3]);
    assert_eq!(result.as_slice::<f64>().unwrap(), &[2.0, 4.0, 6.0]);
}

#[test]
fn gradient_through_linalg() {
    use tenferro_ad::AdContext;
    use tenferro_cpu::CpuBackend;
    use tenferro_linalg::TracedTensorLinalgExt;
    use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

    let mut compiler = GraphCompiler::new();
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![4.0_f64, 0.0, 0.0, 9.0]);
    let factor = a.cholesky().unwrap();
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap();
    let loss = factor.reduce_sum(&[0, 1]);
    let grad_a = ad.grad(&loss, &a).unwrap();
    let program = compiler.compile(&grad_a).unwrap();

    let mut executor = GraphExecutor::new(CpuBackend::new());
    executor
        .register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let result = executor.run(&program).unwrap();
    assert_eq!(result.shape(), &[2, 2]);
}

#[test]
fn vector_jacobian_product_with_vjp() {
    use tenferro_ad::AdContext;
    use tenferro_cpu::CpuBackend;
    use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

    let a = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = TracedTensor::from_vec_col_major(vec![3, 2], vec![0.5_f64, -1.0, 2.0, 1.5, -0.25, 3.0]);
    let cotangent = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, -0.5, 0.25, 2.0]);

    let mut compiler = GraphCompiler::new();
    let y = a.matmul(&b).unwrap();
    let ad = AdContext::builder().build().unwrap();
    let ct_a = ad.vjp(&y, &a, &cotangent).unwrap();
    let program = compiler.compile(&ct_a).unwrap();

    let mut executor = GraphExecutor::new(CpuBackend::new());
    let result = executor.run(&program).unwrap();
    assert_eq!(result.shape(), &[2, 3]);
    // For y = A * B, the cotangent with respect to A is cotangent * B^T.
    assert_eq!(
        result.as_slice::<f64>().unwrap(),
        &[0.875, 2.75, -1.0625, 0.0, 2.75, 5.0],
    );
}

#[test]
fn jacobian_vector_product_with_jvp() {
    use tenferro_ad::AdContext;
    use tenferro_cpu::CpuBackend;
    use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

    let a = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = TracedTensor::from_vec_col_major(vec![3, 2], vec![0.5_f64, -1.0, 2.0, 1.5, -0.25, 3.0]);
    let tangent =
        TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0_f64, -0.5, 0.25, 0.0, 2.0, -1.0]);

    let mut compiler = GraphCompiler::new();
    let y = a.matmul(&b).unwrap();
    let ad = AdContext::builder().build().unwrap();
    let dy = ad.jvp(&y, &a, &tangent).unwrap();
    let program = compiler.compile(&dy).unwrap();

    let mut executor = GraphExecutor::new(CpuBackend::new());
    let result = executor.run(&program).unwrap();
    assert_eq!(result.shape(), &[2, 2]);
    // For y = A * B, the directional derivative with respect to A is dA * B.
    assert_eq!(
        result.as_slice::<f64>().unwrap(),
        &[4.25, -2.25, 7.4375, -3.75],
    );
}
