//! The derivative checks of `autodiff.rs`, shared by the newer test files: gradients and
//! JVPs against central differences, adjoint identity, HVPs against differences of the
//! gradient. Include with `#[path = "common/checks.rs"] mod checks;` after `mod common;`.
#![allow(dead_code)]

use crate::common::*;
use tenferro_runtime::{DType, TracedTensor};

pub const EPS: f64 = 1e-6;
pub const DT: [DType; 2] = [DType::F64, DType::C64];

/// `Re Σ W ∘ y` with fixed pseudo-random weights `W` of `y`'s type.
pub fn wsum(y: &TracedTensor, seed: u64) -> TracedTensor {
    let ty = y.ty().unwrap();
    let w = Rng::new(seed).vec(ty.numel(), ty.dtype.is_complex());
    let w = traced(ty.dtype, &ty.shape, &w);
    (y * &w).sum().real()
}

pub fn adj(x: &TracedTensor) -> TracedTensor {
    let t = x.t().unwrap();
    if t.dtype().unwrap().is_complex() {
        t.conj()
    } else {
        t
    }
}

/// `X diag(d) Y` for real `d` `[k]`.
pub fn scaled(x: &TracedTensor, d: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    let sx = x.shape().unwrap();
    let dd = d
        .convert(x.dtype().unwrap())
        .unwrap()
        .broadcast_in_dim(&sx, &[1])
        .unwrap();
    (x * &dd).matmul(y).unwrap()
}

/// Checks `grad` and `jvp` of the real scalar `f(x)` at `x0` along `dir` against central
/// differences, and returns the gradient.
pub fn check_grad(
    dt: DType,
    shape: &[usize],
    x0: &[C],
    dir: &[C],
    f: impl Fn(&TracedTensor) -> TracedTensor,
    what: &str,
) -> Vec<C> {
    let ad = ad();
    let x = TracedTensor::input(dt, shape);
    let loss = f(&x);
    let g = ad.grad(&loss, &x).unwrap();
    let j = ad.jvp(&loss, &x, &traced(dt, shape, dir)).unwrap();
    let mut func = Func::new(x, &[&loss, &g, &j]);
    let out = func.eval(dt, shape, x0);
    let (grad, jv) = (out[1].clone(), out[2][0].re);
    let lp = func.eval(dt, shape, &axpy(x0, EPS, dir))[0][0].re;
    let lm = func.eval(dt, shape, &axpy(x0, -EPS, dir))[0][0].re;
    let fd = (lp - lm) / (2.0 * EPS);
    let dg = inner(&grad, dir);
    let scale = fd.abs().max(1.0);
    assert!(
        (dg - fd).abs() <= 1e-6 * scale,
        "{what} {dt}: <grad, d> = {dg}, finite difference {fd}"
    );
    assert!(
        (jv - fd).abs() <= 1e-6 * scale,
        "{what} {dt}: jvp = {jv}, finite difference {fd}"
    );
    grad
}

/// Checks `⟨ct, J t⟩ = ⟨Jᵀ ct, t⟩` for the (possibly non-scalar) `f(x)`.
pub fn check_adjoint(
    dt: DType,
    shape: &[usize],
    x0: &[C],
    f: impl Fn(&TracedTensor) -> TracedTensor,
    what: &str,
) {
    let ad = ad();
    let mut rng = Rng::new(99);
    let x = TracedTensor::input(dt, shape);
    let y = f(&x);
    let yty = y.ty().unwrap();
    let t = rng.vec(x0.len(), dt.is_complex());
    let ct = rng.vec(yty.numel(), yty.dtype.is_complex());
    let jt = ad.jvp(&y, &x, &traced(dt, shape, &t)).unwrap();
    let vj = ad.vjp(&y, &x, &traced(yty.dtype, &yty.shape, &ct)).unwrap();
    let mut func = Func::new(x, &[&jt, &vj]);
    let out = func.eval(dt, shape, x0);
    let (l, r) = (inner(&ct, &out[0]), inner(&out[1], &t));
    assert!(
        (l - r).abs() <= 1e-9 * l.abs().max(1.0),
        "{what} {dt}: <ct, J t> = {l}, <J* ct, t> = {r}"
    );
}

/// Checks `jvp(grad f)(x0)·v` against central differences of the gradient.
pub fn check_hvp(
    dt: DType,
    shape: &[usize],
    x0: &[C],
    v: &[C],
    f: impl Fn(&TracedTensor) -> TracedTensor,
    what: &str,
) {
    let ad = ad();
    let x = TracedTensor::input(dt, shape);
    let g = ad.grad(&f(&x), &x).unwrap();
    let hv = ad.jvp(&g, &x, &traced(dt, shape, v)).unwrap();
    let mut func = Func::new(x, &[&g, &hv]);
    let got = func.eval(dt, shape, x0)[1].clone();
    let gp = func.eval(dt, shape, &axpy(x0, EPS, v))[0].clone();
    let gm = func.eval(dt, shape, &axpy(x0, -EPS, v))[0].clone();
    let fd: Vec<C> = gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * EPS))
        .collect();
    assert_close(
        &got,
        &fd,
        1e-5,
        &format!("{what} {dt}: HVP vs finite differences"),
    );
}

pub fn general(rng: &mut Rng, n: usize, cx: bool) -> Vec<C> {
    let mut a = rng.vec(n * n, cx);
    for i in 0..n {
        a[i + i * n] += c(3.0, 0.0);
    }
    a
}
