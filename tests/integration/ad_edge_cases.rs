//! Unusual but legal transform requests: identity, intermediates, repeated inputs.

use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

fn run(t: &TracedTensor) -> Vec<f64> {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new())
        .run(&p)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

fn vec3(v: [f64; 3]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![3], v.to_vec())
}

#[test]
fn identity_transforms() {
    let ad = AdContext::new();
    let x = vec3([1.0, 2.0, 3.0]);
    let t = vec3([0.5, -1.0, 2.0]);
    assert_eq!(run(&ad.vjp(&x, &x, &t).unwrap()), vec![0.5, -1.0, 2.0]);
    assert_eq!(run(&ad.jvp(&x, &x, &t).unwrap()), vec![0.5, -1.0, 2.0]);
    assert_eq!(run(&ad.grad(&x.sum(), &x).unwrap()), vec![1.0, 1.0, 1.0]);
}

#[test]
fn gradient_with_respect_to_an_intermediate() {
    let ad = AdContext::new();
    let x = vec3([1.0, 2.0, 3.0]);
    let h = x.sin();
    let loss = (&h * &h).sum();
    // d loss / d h = 2 h, treating h as the input
    let g = run(&ad.grad(&loss, &h).unwrap());
    for (g, x) in g.iter().zip([1.0_f64, 2.0, 3.0]) {
        assert!((g - 2.0 * x.sin()).abs() < 1e-15);
    }
}

#[test]
fn repeated_and_unused_inputs_in_grad_many() {
    let ad = AdContext::new();
    let x = vec3([1.0, 2.0, 3.0]);
    let y = vec3([4.0, 5.0, 6.0]);
    let loss = (&x * &x).sum();
    let gs = ad.grad_many(&loss, &[&x, &y]).unwrap();
    assert_eq!(run(&gs[0]), vec![2.0, 4.0, 6.0]);
    assert_eq!(run(&gs[1]), vec![0.0, 0.0, 0.0]);
    // the same input twice gets the full gradient at each position (as PyTorch)
    let gs = ad.grad_many(&loss, &[&x, &y, &x]).unwrap();
    assert_eq!(run(&gs[0]), vec![2.0, 4.0, 6.0]);
    assert_eq!(run(&gs[1]), vec![0.0, 0.0, 0.0]);
    assert_eq!(run(&gs[2]), vec![2.0, 4.0, 6.0]);
    // and jvp moves it along the sum of its tangents
    let t = vec3([1.0, 0.0, -1.0]);
    let d = ad.jvp_many(&loss, &[&x, &x], &[&t, &t]).unwrap();
    assert_eq!(run(&d), vec![2.0 * (2.0 * 1.0 + 0.0 - 2.0 * 3.0)]);
}

#[test]
fn grad_of_an_integer_loss_is_an_error() {
    let x = vec3([1.0, 2.0, 3.0]);
    let loss = x.sum().convert(tenferro_runtime::DType::I64).unwrap();
    let e = AdContext::new().grad(&loss, &x).unwrap_err().to_string();
    assert!(e.contains("grad") && e.contains("i64[]"), "{e}");
}
