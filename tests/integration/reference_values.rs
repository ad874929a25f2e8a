//! Derivatives against values worked out by hand (the conventions users compare with).

use num_complex::Complex64;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};

fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new()).run(&p).unwrap()
}

#[test]
fn complex_grad_of_real_loss_is_pytorch_convention() {
    // L = Σ |z·z|² = Σ (x² + y²)²: ∂L/∂x + i ∂L/∂y = 4 z |z|².
    let zs = vec![
        Complex64::new(1.0, 2.0),
        Complex64::new(-0.5, 0.25),
        Complex64::new(0.0, -3.0),
    ];
    let z = TracedTensor::from_vec_col_major(vec![3], zs.clone());
    let a = (&z * &z).abs();
    let loss = (&a * &a).sum();
    let g = run(&AdContext::new().grad(&loss, &z).unwrap());
    for (got, z) in g.as_slice::<Complex64>().unwrap().iter().zip(&zs) {
        let want = z * 4.0 * z.norm_sqr();
        assert!((got - want).norm() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn holomorphic_vjp_multiplies_by_the_conjugate_derivative() {
    // f(z) = exp(z): vjp with cotangent c is c · conj(exp(z)).
    let z0 = Complex64::new(0.3, -1.2);
    let c0 = Complex64::new(2.0, 0.5);
    let z = TracedTensor::from_vec_col_major(vec![1], vec![z0]);
    let c = TracedTensor::from_vec_col_major(vec![1], vec![c0]);
    let v = run(&AdContext::new().vjp(&z.exp(), &z, &c).unwrap());
    let want = c0 * z0.exp().conj();
    assert!((v.as_slice::<Complex64>().unwrap()[0] - want).norm() < 1e-12);
    // and jvp multiplies by the derivative itself
    let j = run(&AdContext::new().jvp(&z.exp(), &z, &c).unwrap());
    let want = c0 * z0.exp();
    assert!((j.as_slice::<Complex64>().unwrap()[0] - want).norm() < 1e-12);
}

#[test]
fn values_at_nondifferentiable_points_follow_jax() {
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.0_f64, 0.0]);
    let g = |l: &TracedTensor| run(&ad.grad(l, &x).unwrap()).to_vec::<f64>().unwrap();
    assert_eq!(g(&x.abs().sum()), vec![0.0, 0.0]);
    assert_eq!(g(&x.sign().sum()), vec![0.0, 0.0]);
    assert_eq!(g(&x.sqrt().sum()), vec![f64::INFINITY, f64::INFINITY]);
    let y = TracedTensor::from_vec_col_major(vec![2], vec![0.0_f64, 1.0]);
    // maximum(x, y) with a tie at index 0 splits the gradient evenly
    assert_eq!(g(&x.maximum(&y).sum()), vec![0.5, 0.0]);
}

#[test]
fn hessian_vector_product_of_a_quadratic_is_exact() {
    // f(x) = ½ xᵀ A x with symmetric A: H v = A v.
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![2.0_f64, 1.0, 1.0, 3.0]);
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.7_f64, -1.1]);
    let v = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let f = (&x * &a.matmul(&x).unwrap()).sum() * 0.5;
    let ad = AdContext::new();
    let hv = ad.jvp(&ad.grad(&f, &x).unwrap(), &x, &v).unwrap();
    assert_eq!(run(&hv).to_vec::<f64>().unwrap(), vec![4.0, 7.0]);
}

#[test]
fn single_precision_gradients() {
    use num_complex::Complex32;
    let x = TracedTensor::from_vec_col_major(vec![3], vec![0.5_f32, -1.0, 2.0]);
    let g = run(&AdContext::new().grad(&x.sin().sum(), &x).unwrap());
    assert_eq!(g.dtype(), tenferro_runtime::DType::F32);
    for (got, x) in g
        .as_slice::<f32>()
        .unwrap()
        .iter()
        .zip([0.5_f32, -1.0, 2.0])
    {
        assert!((got - x.cos()).abs() < 1e-6, "{got} vs {}", x.cos());
    }
    let z0 = Complex32::new(1.0, -0.5);
    let z = TracedTensor::from_vec_col_major(vec![1], vec![z0]);
    let loss = (&z * &z.conj()).real().sum(); // |z|², grad 2z
    let g = run(&AdContext::new().grad(&loss, &z).unwrap());
    assert_eq!(g.as_slice::<Complex32>().unwrap(), &[z0 * 2.0]);
}
