//! custom_jvp and custom_vjp on traced functions: a numerically stable softplus
//! derivative, a rule that is really used, higher orders through a custom rule, and a
//! fixed-point solve differentiated by the implicit function theorem.

use crate::common;

use common::*;
use tenferro_ad::{AdContext, CustomFn};
use tenferro_runtime::{DType, Tensor, TracedTensor};

/// softplus(x) = log(1 + exp(x)) with the derivative sigmoid(x) (stable at any x).
fn softplus(ad: &AdContext) -> CustomFn {
    ad.custom_jvp(
        "softplus",
        |x| Ok(vec![(&x[0].exp() + 1.0).log()]),
        |x, t| Ok(vec![&t[0] * &x[0].sigmoid()]),
    )
}

#[test]
fn custom_jvp_softplus_has_a_stable_derivative() {
    let ad = AdContext::new();
    let sp = softplus(&ad);
    let xs = vec![-2.0_f64, 0.0, 1.5, 800.0];
    let x = TracedTensor::input(DType::F64, &[4]);
    let y = sp.call1(&[&x]).unwrap();
    let loss = y.sum();
    let g = ad.grad(&loss, &x).unwrap();
    // the naive derivative exp(x)/(1+exp(x)) is NaN at x = 800
    let naive = ad.grad(&(&x.exp() + 1.0).log().sum(), &x).unwrap();
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    let d = ad.jvp(&y, &x, &ones).unwrap();
    let h = ad.jvp(&g, &x, &ones).unwrap(); // diagonal of the Hessian: s(1 - s)
    let xv = Tensor::from_vec_col_major(vec![4], xs.clone()).unwrap();
    let out = run_many_with(&[&y, &g, &naive, &d, &h], &[(&x, xv)]);
    let (yv, gv, nv, dv, hv) = (
        f64s(&out[0]),
        f64s(&out[1]),
        f64s(&out[2]),
        f64s(&out[3]),
        f64s(&out[4]),
    );
    assert!(nv[3].is_nan(), "the naive derivative at 800 is {}", nv[3]);
    for i in 0..4 {
        let s = 1.0 / (1.0 + (-xs[i]).exp());
        if i < 3 {
            assert!((yv[i] - (1.0 + xs[i].exp()).ln()).abs() < 1e-15);
        }
        assert!((gv[i] - s).abs() < 1e-15, "grad {i}: {} vs {s}", gv[i]);
        assert!((dv[i] - s).abs() < 1e-15, "jvp {i}: {} vs {s}", dv[i]);
        assert!(
            (hv[i] - s * (1.0 - s)).abs() < 1e-15,
            "hvp {i}: {} vs {}",
            hv[i],
            s * (1.0 - s)
        );
    }
    assert_eq!(gv[3], 1.0);
}

#[test]
fn custom_jvp_rule_is_used_in_every_mode_and_order() {
    // f = sin, with a deliberately different "derivative" 2·x·t: grad = 2x, second
    // derivative (the rule differentiated) = 2, in forward, reverse, jacfwd, jacrev and hessian.
    let ad = AdContext::new();
    let f = ad.custom_jvp(
        "fake_sin",
        |x| Ok(vec![x[0].sin()]),
        |x, t| Ok(vec![&(&x[0] * &t[0]) * 2.0]),
    );
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.5_f64, -1.0]);
    let y = f.call1(&[&x]).unwrap();
    assert_eq!(f64s(&run(&y)), vec![0.5_f64.sin(), (-1.0_f64).sin()]);
    let loss = y.sum();
    let g = ad.grad(&loss, &x).unwrap();
    assert_eq!(f64s(&run(&g)), vec![1.0, -2.0]);
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    assert_eq!(f64s(&run(&ad.jvp(&loss, &x, &ones).unwrap())), vec![-1.0]);
    assert_eq!(f64s(&run(&ad.grad(&g.sum(), &x).unwrap())), vec![2.0, 2.0]);
    let jf = f64s(&run(&ad.jacfwd(&y, &x).unwrap()));
    let jr = f64s(&run(&ad.jacrev(&y, &x).unwrap()));
    assert_eq!(jf, vec![1.0, 0.0, 0.0, -2.0]);
    assert_eq!(jr, jf);
    let h = f64s(&run(&ad.hessian(&loss, &x).unwrap()));
    assert_eq!(h, vec![2.0, 0.0, 0.0, 2.0]);
    // a context without the rule refuses to differentiate through the function
    let err = AdContext::new().grad(&loss, &x).unwrap_err().to_string();
    assert!(err.contains("another AdContext"), "{err}");
    // ... and so does a value captured by f and differentiated through it
    let c = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 1.0]);
    let cap = c.clone();
    let g2 = ad.custom_jvp(
        "captures",
        move |x| Ok(vec![&x[0] * &cap]),
        |_x, t| Ok(vec![t[0].clone()]),
    );
    let l2 = g2.call1(&[&x]).unwrap().sum();
    let err = ad.grad(&l2, &c).unwrap_err().to_string();
    assert!(
        err.contains("captures") && err.contains("argument"),
        "{err}"
    );
    assert_eq!(f64s(&run(&ad.grad(&l2, &x).unwrap())), vec![1.0, 1.0]);
}

#[test]
fn custom_functions_with_two_inputs_and_two_outputs() {
    // (u, v) = (x·y, x + y) with the true derivative as the rule.
    let ad = AdContext::new();
    let f = ad.custom_jvp(
        "prod_sum",
        |a| Ok(vec![&a[0] * &a[1], &a[0] + &a[1]]),
        |a, t| Ok(vec![&(&t[0] * &a[1]) + &(&a[0] * &t[1]), &t[0] + &t[1]]),
    );
    let x = TracedTensor::from_vec_col_major(vec![2], vec![2.0_f64, 3.0]);
    let y = TracedTensor::from_vec_col_major(vec![2], vec![-1.0_f64, 0.5]);
    let o = f.call(&[&x, &y]).unwrap();
    let loss = (&(&o[0] * &o[1]).sum() + &o[0].sum()).sin();
    let g = ad.grad_many(&loss, &[&x, &y]).unwrap();
    let plain = {
        let (u, v) = (&x * &y, &x + &y);
        (&(&u * &v).sum() + &u.sum()).sin()
    };
    let gp = ad.grad_many(&plain, &[&x, &y]).unwrap();
    let out = run_many_with(&[&g[0], &g[1], &gp[0], &gp[1]], &[]);
    for k in 0..2 {
        let (a, b) = (f64s(&out[k]), f64s(&out[k + 2]));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-14, "{a:?} vs {b:?}");
        }
    }
}

/// z* with z = 0.5·cos(z) + a (elementwise), by `iters` unrolled iterations from z = a.
fn solve(a: &TracedTensor, iters: usize) -> TracedTensor {
    let mut z = a.clone();
    for _ in 0..iters {
        z = &(&z.cos() * 0.5) + a;
    }
    z
}

/// The fixed-point solve with an implicit-function VJP: at z = g(a, z),
/// ā = (∂g/∂a)ᵀ u with u = z̄ + (∂g/∂z)ᵀ u, solved by iterating the adjoint equation.
fn fixed_point(ad: &AdContext) -> CustomFn {
    let ad2 = ad.clone();
    ad.custom_vjp(
        "fixed_point",
        |a| Ok(vec![solve(&a[0], 80)]),
        |a| {
            let z = solve(&a[0], 80);
            Ok((vec![z.clone()], vec![a[0].clone(), z]))
        },
        move |res, ct| {
            let (a, z) = (&res[0], &res[1]);
            let g = &(&z.cos() * 0.5) + a;
            // Partial derivatives: `z` is itself a traced function of `a`, so both are
            // listed (as cuts) rather than differentiating `g` in `a` through `z`.
            let mut u = ct[0].clone();
            for _ in 0..80 {
                u = &ct[0] + &ad2.vjp_many(&g, &[a, z], &u)?[1];
            }
            Ok(vec![ad2.vjp_many(&g, &[a, z], &u)?.remove(0)])
        },
    )
}

#[test]
fn custom_vjp_fixed_point_uses_the_implicit_function_theorem() {
    let ad = AdContext::new();
    let fp = fixed_point(&ad);
    let av = vec![0.3_f64, -1.2, 2.0];
    let a = TracedTensor::input(DType::F64, &[3]);
    let z = fp.call1(&[&a]).unwrap();
    let loss = (&z * &z).sum();
    let g = ad.grad(&loss, &a).unwrap();
    let unrolled = ad
        .grad(&(&solve(&a, 80) * &solve(&a, 80)).sum(), &a)
        .unwrap();
    let at = Tensor::from_vec_col_major(vec![3], av.clone()).unwrap();
    let out = run_many_with(&[&z, &g, &unrolled], &[(&a, at)]);
    let (zv, gv, uv) = (f64s(&out[0]), f64s(&out[1]), f64s(&out[2]));
    for i in 0..3 {
        assert!((zv[i] - (0.5 * zv[i].cos() + av[i])).abs() < 1e-14);
        // dz/da = 1 / (1 + 0.5 sin z), d(z²)/da = 2z · dz/da
        let want = 2.0 * zv[i] / (1.0 + 0.5 * zv[i].sin());
        assert!((gv[i] - want).abs() < 1e-13, "{i}: {} vs {want}", gv[i]);
        assert!(
            (uv[i] - want).abs() < 1e-12,
            "{i}: unrolled {} vs {want}",
            uv[i]
        );
    }
    let ones = TracedTensor::full(&a.ty().unwrap(), 1.0);
    let err = ad.jvp(&z, &a, &ones).unwrap_err().to_string();
    assert!(
        err.contains("`fixed_point` is a custom_vjp function") && err.contains("custom_jvp"),
        "{err}"
    );
    // hessian uses forward mode over reverse mode: the same error
    let err = ad.hessian(&loss, &a).unwrap_err().to_string();
    assert!(err.contains("custom_vjp"), "{err}");
    // reverse over reverse works: the bwd's traced ops are differentiated
    let gg = ad.grad(&g.sum(), &a).unwrap();
    let ggv = f64s(&run_with(
        &gg,
        &[(&a, Tensor::from_vec_col_major(vec![3], av.clone()).unwrap())],
    ));
    for i in 0..3 {
        // d/da [2z/(1 + 0.5 sin z)] with dz/da = 1/(1 + 0.5 sin z)
        let (zi, d) = (zv[i], 1.0 + 0.5 * zv[i].sin());
        let want = (2.0 / d - 2.0 * zi * 0.5 * zi.cos() / (d * d)) / d;
        assert!((ggv[i] - want).abs() < 1e-12, "{i}: {} vs {want}", ggv[i]);
    }
}

#[test]
fn custom_vjp_bwd_errors_name_the_function() {
    let ad = AdContext::new();
    let f = ad.custom_vjp(
        "bad_bwd",
        |x| Ok(vec![x[0].sin()]),
        |x| Ok((vec![x[0].sin()], vec![x[0].clone()])),
        |_res, _ct| Ok(vec![]),
    );
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.5_f64, -1.0]);
    let loss = f.call1(&[&x]).unwrap().sum();
    let err = ad.grad(&loss, &x).unwrap_err().to_string();
    assert!(
        err.contains("bad_bwd") && err.contains("0 cotangents"),
        "{err}"
    );
}
