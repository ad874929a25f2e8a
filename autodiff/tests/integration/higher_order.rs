//! Transforms compose: Hessian-vector products by jvp(grad(f)), third derivatives by
//! repeated grad and jvp, and vjp(jvp(f)) against jvp(vjp(f)).

use crate::common;

use common::*;
use tenferro_ad::{AdContext, TracedTensorAdExt};
use tenferro_runtime::{DType, Tensor, TracedTensor};

#[test]
fn hvp_of_sum_tanh_squared_matches_the_analytic_hessian() {
    // f(x) = Σ tanh(A·x)²; ∇f = Aᵀ(2t(1 - t²)) with t = tanh(A·x), and
    // H·v = Aᵀ(w ⊙ (A·v)) with w = 2(1 - t²)(1 - 3t²).
    let (m, n) = (4, 3);
    let mut g = Gen(7);
    let a_val = g.tensor(DType::F64, &[m, n], -1.0, 1.0);
    let x_val = g.tensor(DType::F64, &[n], -1.0, 1.0);
    let v_val = g.tensor(DType::F64, &[n], -1.0, 1.0);

    let a = TracedTensor::from_tensor(a_val.clone());
    let x = TracedTensor::input(DType::F64, &[n]);
    let v = TracedTensor::input(DType::F64, &[n]);
    let t = a.matmul(&x).unwrap().tanh();
    let f = (&t * &t).sum();
    let ad = AdContext::new();
    let grad = ad.grad(&f, &x).unwrap();
    let hvp = ad.jvp(&grad, &x, &v).unwrap();
    let got = f64s(&run_with(&hvp, &[(&x, x_val.clone()), (&v, v_val.clone())]));

    let (av, xv, vv) = (f64s(&a_val), f64s(&x_val), f64s(&v_val));
    let at = |i: usize, j: usize| av[i + m * j];
    let mut want = vec![0.0; n];
    for i in 0..m {
        let u: f64 = (0..n).map(|j| at(i, j) * xv[j]).sum();
        let ti = u.tanh();
        let w = 2.0 * (1.0 - ti * ti) * (1.0 - 3.0 * ti * ti);
        let avi: f64 = (0..n).map(|j| at(i, j) * vv[j]).sum();
        for (j, wj) in want.iter_mut().enumerate() {
            *wj += at(i, j) * w * avi;
        }
    }
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() < 1e-12 * (1.0 + w.abs()),
            "{got:?} vs {want:?}"
        );
    }
}

/// f(x) = x²·sin(x) and its first three derivatives.
fn f3(x: f64) -> [f64; 4] {
    let (s, c) = (x.sin(), x.cos());
    [
        x * x * s,
        2.0 * x * s + x * x * c,
        2.0 * s + 4.0 * x * c - x * x * s,
        6.0 * c - 6.0 * x * s - x * x * c,
    ]
}

#[test]
fn third_derivative_by_grad_grad_grad() {
    for &xv in &[-1.3, 0.0, 0.4, 2.5] {
        let x = TracedTensor::input(DType::F64, &[]);
        let f = &(&x * &x) * &x.sin();
        let d1 = f.grad(&x).unwrap();
        let d2 = d1.grad(&x).unwrap();
        let d3 = d2.grad(&x).unwrap();
        let outs = run_many_with(&[&d1, &d2, &d3], &[(&x, Tensor::scalar(xv))]);
        let want = f3(xv);
        for k in 0..3 {
            let got = f64s(&outs[k])[0];
            assert!(
                (got - want[k + 1]).abs() < 1e-12 * (1.0 + want[k + 1].abs()),
                "derivative {} at {xv}: {got} vs {}",
                k + 1,
                want[k + 1]
            );
        }
    }
}

#[test]
fn third_derivative_by_jvp_of_jvp_of_grad() {
    // Elementwise on a vector: d³/dx³ of Σ f(x_i) along ones, three ways of composing.
    let xs = [-0.7, 0.3, 1.9];
    let x = TracedTensor::input(DType::F64, &[3]);
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    let f = (&(&x * &x) * &x.sin()).sum();
    let ad = AdContext::new();
    let g = ad.grad(&f, &x).unwrap();
    let h = ad.jvp(&g, &x, &ones).unwrap();
    let d3 = ad.jvp(&h, &x, &ones).unwrap();
    let d3_rev = ad.grad(&ad.jvp(&g, &x, &ones).unwrap().sum(), &x).unwrap();
    let xv = Tensor::from_vec_col_major(vec![3], xs.to_vec()).unwrap();
    let outs = run_many_with(&[&d3, &d3_rev], &[(&x, xv)]);
    for out in &outs {
        for (got, &xi) in f64s(out).iter().zip(&xs) {
            let want = f3(xi)[3];
            assert!(
                (got - want).abs() < 1e-12 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
    }
}

#[test]
fn vjp_of_jvp_equals_jvp_of_vjp() {
    // Both are Σ_k ct_k ∇²y_k · t for y = exp(B·x) ⊙ x (Hessians are symmetric).
    let mut g = Gen(11);
    let b = TracedTensor::from_tensor(g.tensor(DType::F64, &[3, 3], -1.0, 1.0));
    let x = TracedTensor::input(DType::F64, &[3]);
    let t = TracedTensor::from_tensor(g.tensor(DType::F64, &[3], -1.0, 1.0));
    let ct = TracedTensor::from_tensor(g.tensor(DType::F64, &[3], -1.0, 1.0));
    let y = &b.matmul(&x).unwrap().exp() * &x;
    let ad = AdContext::new();
    let a1 = ad.vjp(&ad.jvp(&y, &x, &t).unwrap(), &x, &ct).unwrap();
    let a2 = ad.jvp(&ad.vjp(&y, &x, &ct).unwrap(), &x, &t).unwrap();
    let xv = g.tensor(DType::F64, &[3], -1.0, 1.0);
    let outs = run_many_with(&[&a1, &a2], &[(&x, xv)]);
    assert!(max_rel_err(&outs[0], &outs[1]) < 1e-12, "{outs:?}");
    assert!(f64s(&outs[0]).iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn second_derivative_of_complex_holomorphic_function() {
    // f(z) = z³: jvp(jvp) along 1 gives f''(z) = 6z.
    let z0 = num_complex::Complex64::new(0.5, -1.5);
    let z = TracedTensor::input(DType::C64, &[]);
    let one = TracedTensor::full(&z.ty().unwrap(), 1.0);
    let f = &(&z * &z) * &z;
    let d1 = f.jvp(&z, &one).unwrap();
    let d2 = d1.jvp(&z, &one).unwrap();
    let out = run_with(&d2, &[(&z, Tensor::scalar(z0))]);
    let got = as_c64(&out)[0];
    assert!((got - z0 * 6.0).norm() < 1e-12, "{got}");
}
