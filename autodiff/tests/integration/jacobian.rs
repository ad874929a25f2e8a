//! `grad_optional` / `vjp_optional` / `jvp_optional`, and whole Jacobians and Hessians
//! (`jacfwd`, `jacrev`, `hessian` and their `_many` forms) against finite differences,
//! analytic derivatives and reference numbers computed with JAX.

use crate::common;

use common::*;
use tenferro_ad::AdContext;
use tenferro_runtime::{DType, Tensor, TracedTensor};

/// Reference values computed by JAX (script in the comment below), with x64 enabled:
///
/// ```python
/// import jax, jax.numpy as jnp
/// jax.config.update("jax_enable_x64", True)
/// A = jnp.array([[0.7, -0.3, 0.5], [0.2, 0.9, -0.4]])
/// x = jnp.array([0.3, -0.8, 0.6])
/// f = lambda x: jnp.sum(jnp.tanh(A @ x) ** 2)
/// g = lambda x: jnp.tanh(A @ x) * x[0]
/// M = jnp.array([[1.0, 2.0], [-0.5, 0.25]])
/// h = lambda m: jnp.sin(m @ m)
/// jax.hessian(f)(x); jax.jacfwd(g)(x); jax.jacrev(h)(M)
/// jax.hessian(lambda m: jnp.sum(h(m)))(M)   # each printed with jnp.ravel (C order)
/// ```
mod jax_ref {
    /// JAX 0.10.2, row-major (C order) flattening.
    pub const HESS_SUM_TANH_SQ: [f64; 9] = [
        -0.1439247157045977,
        -0.04184525272559871,
        -0.04578834803882573,
        -0.04184525272559869,
        -0.44793905209880475,
        0.226678125214635,
        -0.04578834803882571,
        0.22667812521463512,
        -0.14673600352807797,
    ];
    /// JAX 0.10.2, row-major (C order) flattening.
    pub const JAC_TANH_TIMES_X0: [f64; 6] = [
        0.7604319721263669,
        -0.05369272274531981,
        0.08948787124219969,
        -0.6870828285301241,
        0.13146768751005217,
        -0.05843008333780096,
    ];
    /// JAX 0.10.2, row-major (C order) flattening.
    pub const JAC_SIN_MATMUL: [f64; 16] = [
        2.0,
        -0.5,
        2.0,
        0.0,
        -1.6022872310938674,
        -1.001429519433667,
        0.0,
        -1.6022872310938674,
        -0.40548155975260897,
        0.0,
        1.0137038993815224,
        -0.40548155975260897,
        0.0,
        -0.29590253754623874,
        1.183610150184955,
        0.29590253754623874,
    ];
    /// JAX 0.10.2, row-major (C order) flattening.
    pub const HESS_SIN_MATMUL_SUM: [f64; 16] = [
        -0.2476142581807106,
        -2.297323975806825,
        0.445277323917429,
        -2.2476142581807106,
        -2.297323975806825,
        -0.7335924480972588,
        0.7857239668317845,
        -2.498844252871998,
        0.445277323917429,
        0.7857239668317845,
        4.138538922012244,
        1.251358432178122,
        -2.2476142581807106,
        -2.498844252871998,
        1.2513584321781221,
        -0.8624838309305826,
    ];
}

const A_ROWS: [[f64; 3]; 2] = [[0.7, -0.3, 0.5], [0.2, 0.9, -0.4]];
const X: [f64; 3] = [0.3, -0.8, 0.6];
const M_ROWS: [[f64; 2]; 2] = [[1.0, 2.0], [-0.5, 0.25]];

fn a_traced() -> TracedTensor {
    // column-major data of the 2x3 matrix
    let data: Vec<f64> = (0..3)
        .flat_map(|j| (0..2).map(move |i| A_ROWS[i][j]))
        .collect();
    TracedTensor::from_vec_col_major(vec![2, 3], data)
}

fn m_value() -> Tensor {
    let data: Vec<f64> = (0..2)
        .flat_map(|j| (0..2).map(move |i| M_ROWS[i][j]))
        .collect();
    Tensor::from_vec_col_major(vec![2, 2], data).unwrap()
}

/// The column-major flat index of a multi-index.
fn col_major(idx: &[usize], shape: &[usize]) -> usize {
    let (mut flat, mut stride) = (0, 1);
    for (i, s) in idx.iter().zip(shape) {
        flat += i * stride;
        stride *= s;
    }
    flat
}

/// Column-major data reordered to C (row-major) order, to compare with JAX's ravel.
fn to_row_major(data: &[f64], shape: &[usize]) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        out.push(data[col_major(&idx, shape)]);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i}: {g} vs {w}\n got {got:?}\nwant {want:?}"
        );
    }
}

// ---------------------------------------------------------------- optional forms

#[test]
fn optional_forms_return_none_without_dependence() {
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let z = TracedTensor::from_vec_col_major(vec![2], vec![3.0_f64, -1.0]);
    let loss = (&z * &z).sum();
    assert!(ad.grad_optional(&loss, &x).unwrap().is_none());
    // the existing form still returns zeros
    assert_eq!(f64s(&run(&ad.grad(&loss, &x).unwrap())), vec![0.0, 0.0]);
    let g = ad.grad_optional(&loss, &z).unwrap().expect("depends on z");
    assert_eq!(f64s(&run(&g)), vec![6.0, -2.0]);

    let both = ad.grad_many_optional(&loss, &[&x, &z, &x]).unwrap();
    assert!(both[0].is_none() && both[1].is_some() && both[2].is_none());

    let y = &z * 2.0;
    let ct = TracedTensor::full(&y.ty().unwrap(), 1.0);
    assert!(ad.vjp_optional(&y, &x, &ct).unwrap().is_none());
    let v = ad.vjp_many_optional(&y, &[&z, &x], &ct).unwrap();
    assert_eq!(f64s(&run(v[0].as_ref().unwrap())), vec![2.0, 2.0]);
    assert!(v[1].is_none());

    let t = TracedTensor::full(&x.ty().unwrap(), 1.0);
    assert!(ad.jvp_optional(&y, &x, &t).unwrap().is_none());
    let d = ad.jvp_optional(&y, &z, &t).unwrap().unwrap();
    assert_eq!(f64s(&run(&d)), vec![2.0, 2.0]);
    assert!(ad.jvp_many_optional(&y, &[&x], &[&t]).unwrap().is_none());
    assert_eq!(f64s(&run(&ad.jvp(&y, &x, &t).unwrap())), vec![0.0, 0.0]);
}

#[test]
fn optional_forms_see_through_stop_gradient_as_no_dependence() {
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let loss = (&x.stop_gradient() * 3.0).sum();
    assert!(ad.grad_optional(&loss, &x).unwrap().is_none());
}

// ---------------------------------------------------------------- Jacobians

/// Central finite-difference Jacobian of a traced function of one input, with the
/// layout `shape(y) ++ shape(x)` in column-major data.
fn fd_jacobian(f: &dyn Fn(&TracedTensor) -> TracedTensor, x: &[f64], xshape: &[usize]) -> Vec<f64> {
    let eps = 1e-6;
    let mut cols = Vec::new();
    for k in 0..x.len() {
        let mut xp = x.to_vec();
        let mut xm = x.to_vec();
        xp[k] += eps;
        xm[k] -= eps;
        let yp = f64s(&run(&f(&TracedTensor::from_vec_col_major(
            xshape.to_vec(),
            xp,
        ))));
        let ym = f64s(&run(&f(&TracedTensor::from_vec_col_major(
            xshape.to_vec(),
            xm,
        ))));
        cols.extend(yp.iter().zip(&ym).map(|(p, m)| (p - m) / (2.0 * eps)));
    }
    cols
}

fn tanh_times_x0(x: &TracedTensor) -> TracedTensor {
    let x0 = x.slice(&[0], &[1]).unwrap();
    &a_traced().matmul(x).unwrap().tanh() * &x0
}

#[test]
fn jacfwd_equals_jacrev_equals_fd_and_jax() {
    let ad = AdContext::new();
    let x = TracedTensor::input(DType::F64, &[3]);
    let y = tanh_times_x0(&x);
    let jf = ad.jacfwd(&y, &x).unwrap();
    let jr = ad.jacrev(&y, &x).unwrap();
    assert_eq!(jf.shape().unwrap(), vec![2, 3]);
    assert_eq!(jr.shape().unwrap(), vec![2, 3]);
    let xv = Tensor::from_vec_col_major(vec![3], X.to_vec()).unwrap();
    let out = run_many_with(&[&jf, &jr], &[(&x, xv)]);
    let (jf, jr) = (f64s(&out[0]), f64s(&out[1]));
    let fd = fd_jacobian(&tanh_times_x0, &X, &[3]);
    assert_close(&jf, &fd, 1e-8, "jacfwd vs FD");
    assert_close(&jr, &fd, 1e-8, "jacrev vs FD");
    assert_close(&jf, &jr, 1e-15, "jacfwd vs jacrev");
    assert_close(
        &to_row_major(&jf, &[2, 3]),
        &jax_ref::JAC_TANH_TIMES_X0,
        1e-14,
        "vs JAX",
    );
}

#[test]
fn jacobian_of_a_matrix_function_has_shape_out_then_in() {
    // y = sin(M·M), 2x2 → 2x2: J has shape [2, 2, 2, 2], J[a,b,c,d] = ∂y[a,b]/∂M[c,d].
    let ad = AdContext::new();
    let m = TracedTensor::input(DType::F64, &[2, 2]);
    let y = m.matmul(&m).unwrap().sin();
    let jf = ad.jacfwd(&y, &m).unwrap();
    let jr = ad.jacrev(&y, &m).unwrap();
    assert_eq!(jr.shape().unwrap(), vec![2, 2, 2, 2]);
    let out = run_many_with(&[&jf, &jr], &[(&m, m_value())]);
    let shape = [2, 2, 2, 2];
    assert_close(
        &to_row_major(&f64s(&out[1]), &shape),
        &jax_ref::JAC_SIN_MATMUL,
        1e-14,
        "jacrev vs JAX",
    );
    assert_close(
        &to_row_major(&f64s(&out[0]), &shape),
        &jax_ref::JAC_SIN_MATMUL,
        1e-14,
        "jacfwd vs JAX",
    );
    let fd = fd_jacobian(&|m| m.matmul(m).unwrap().sin(), &f64s(&m_value()), &[2, 2]);
    assert_close(&f64s(&out[1]), &fd, 1e-8, "jacrev vs FD");

    let s = y.sum();
    let h = ad.hessian(&s, &m).unwrap();
    assert_eq!(h.shape().unwrap(), vec![2, 2, 2, 2]);
    let hv = f64s(&run_with(&h, &[(&m, m_value())]));
    assert_close(
        &to_row_major(&hv, &shape),
        &jax_ref::HESS_SIN_MATMUL_SUM,
        1e-13,
        "hessian vs JAX",
    );
}

#[test]
fn hessian_of_sum_tanh_squared_matches_analytic_and_jax() {
    // f = Σ tanh(Ax)²: H = Aᵀ diag(2(1 - t²)(1 - 3t²)) A with t = tanh(Ax).
    let ad = AdContext::new();
    let x = TracedTensor::input(DType::F64, &[3]);
    let t = a_traced().matmul(&x).unwrap().tanh();
    let f = (&t * &t).sum();
    let h = ad.hessian(&f, &x).unwrap();
    assert_eq!(h.shape().unwrap(), vec![3, 3]);
    let xv = Tensor::from_vec_col_major(vec![3], X.to_vec()).unwrap();
    let got = f64s(&run_with(&h, &[(&x, xv)]));
    let mut want = vec![0.0; 9];
    for row in A_ROWS {
        let u: f64 = (0..3).map(|j| row[j] * X[j]).sum();
        let ti = u.tanh();
        let w = 2.0 * (1.0 - ti * ti) * (1.0 - 3.0 * ti * ti);
        for i in 0..3 {
            for j in 0..3 {
                want[i + 3 * j] += row[i] * w * row[j];
            }
        }
    }
    assert_close(&got, &want, 1e-14, "hessian vs analytic");
    assert_close(
        &to_row_major(&got, &[3, 3]),
        &jax_ref::HESS_SUM_TANH_SQ,
        1e-14,
        "hessian vs JAX",
    );
}

#[test]
fn hessian_of_quadratic_form_is_a_plus_a_transpose() {
    let ad = AdContext::new();
    let a_data = vec![1.0_f64, -2.0, 0.5, 3.0, 0.25, -1.0, 2.0, 0.0, 4.0]; // col-major 3x3
    let a = TracedTensor::from_vec_col_major(vec![3, 3], a_data.clone());
    let x = TracedTensor::from_vec_col_major(vec![3], vec![0.1_f64, 0.2, -0.3]);
    let f = (&x * &a.matmul(&x).unwrap()).sum();
    let h = f64s(&run(&ad.hessian(&f, &x).unwrap()));
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(h[i + 3 * j], a_data[i + 3 * j] + a_data[j + 3 * i]);
        }
    }
}

#[test]
fn many_forms_give_every_block() {
    // f = Σ (x ⊙ y)²: ∂²f/∂x² = diag(2y²), ∂²f/∂x∂y = diag(4xy), ∂²f/∂y² = diag(2x²).
    let ad = AdContext::new();
    let xv = [0.5_f64, -1.5];
    let yv = [2.0_f64, 0.75];
    let x = TracedTensor::from_vec_col_major(vec![2], xv.to_vec());
    let y = TracedTensor::from_vec_col_major(vec![2], yv.to_vec());
    let p = &x * &y;
    let f = (&p * &p).sum();
    let h = ad.hessian_many(&f, &[&x, &y]).unwrap();
    let diag = |d: [f64; 2]| vec![d[0], 0.0, 0.0, d[1]];
    let want = [
        [
            diag([2.0 * yv[0] * yv[0], 2.0 * yv[1] * yv[1]]),
            diag([4.0 * xv[0] * yv[0], 4.0 * xv[1] * yv[1]]),
        ],
        [
            diag([4.0 * xv[0] * yv[0], 4.0 * xv[1] * yv[1]]),
            diag([2.0 * xv[0] * xv[0], 2.0 * xv[1] * xv[1]]),
        ],
    ];
    for i in 0..2 {
        for j in 0..2 {
            assert_close(
                &f64s(&run(&h[i][j])),
                &want[i][j],
                1e-15,
                &format!("block {i}{j}"),
            );
        }
    }
    let jf = ad.jacfwd_many(&p, &[&x, &y]).unwrap();
    let jr = ad.jacrev_many(&p, &[&x, &y]).unwrap();
    for (k, d) in [yv, xv].iter().enumerate() {
        assert_eq!(f64s(&run(&jf[k])), diag(*d));
        assert_eq!(f64s(&run(&jr[k])), diag(*d));
    }
}

#[test]
fn jacobian_without_dependence_is_zeros_and_scalars_work() {
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let z = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]);
    let y = z.sin();
    let j = ad.jacrev(&y, &x).unwrap();
    assert_eq!(j.shape().unwrap(), vec![3, 2]);
    assert_eq!(f64s(&run(&j)), vec![0.0; 6]);
    assert_eq!(f64s(&run(&ad.jacfwd(&y, &x).unwrap())), vec![0.0; 6]);
    // scalar in, scalar out
    let s = TracedTensor::scalar(0.5_f64);
    let e = s.exp();
    let d = ad.jacfwd(&e, &s).unwrap();
    assert_eq!(d.shape().unwrap(), Vec::<usize>::new());
    assert_eq!(f64s(&run(&d)), vec![0.5_f64.exp()]);
    let h = ad.hessian(&e, &s).unwrap();
    assert_eq!(f64s(&run(&h)), vec![0.5_f64.exp()]);
}

#[test]
fn complex_jacobian_is_a_clear_error() {
    let ad = AdContext::new();
    let x = TracedTensor::input(DType::C64, &[2]);
    let err = ad.jacfwd(&x.sin(), &x).unwrap_err().to_string();
    assert!(err.contains("jacfwd") && err.contains("real"), "{err}");
}
