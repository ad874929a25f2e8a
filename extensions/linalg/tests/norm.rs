//! Vector and matrix norms: values against host formulas (f64 and c64, batched, over
//! axes, keepdims), gradients / JVPs / HVPs against finite differences, the subgradient 0
//! at zero (never NaN, at first and second order), overflow safety, errors, eager mode.

#[path = "common/checks.rs"]
mod checks;
mod common;
use checks::*;
use common::*;
use tenferro_linalg::{EagerTensorLinalgExt, MatrixNorm, NormOrd, TracedTensorLinalgExt};
use tenferro_runtime::{DType, TracedTensor};

const VORDS: [f64; 9] = [
    1.0,
    2.0,
    3.0,
    0.5,
    -1.0,
    -2.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
];
const MORDS: [MatrixNorm; 8] = [
    MatrixNorm::Fro,
    MatrixNorm::Nuc,
    MatrixNorm::One,
    MatrixNorm::Two,
    MatrixNorm::Inf,
    MatrixNorm::NegOne,
    MatrixNorm::NegTwo,
    MatrixNorm::NegInf,
];

fn host_vnorm(v: &[f64], p: f64) -> f64 {
    if p == f64::INFINITY {
        v.iter().cloned().fold(0.0, f64::max)
    } else if p == f64::NEG_INFINITY {
        v.iter().cloned().fold(f64::INFINITY, f64::min)
    } else if p == 0.0 {
        v.iter().filter(|x| **x != 0.0).count() as f64
    } else {
        v.iter().map(|x| x.powf(p)).sum::<f64>().powf(1.0 / p)
    }
}

fn re(v: &[C]) -> Vec<f64> {
    v.iter().map(|z| z.re).collect()
}

#[test]
fn vector_norm_values_over_axes() {
    let (m, n) = (4, 3);
    for dt in DT {
        let x = Rng::new(1).vec(m * n, dt.is_complex());
        let mags: Vec<f64> = x.iter().map(|z| z.norm()).collect();
        let xt = traced(dt, &[m, n], &x);
        for p in VORDS {
            let all = xt.vector_norm(p, &[], false).unwrap();
            let cols = xt.vector_norm(p, &[0], false).unwrap();
            let rows = xt.vector_norm(p, &[-1], true).unwrap();
            assert_eq!(all.shape().unwrap(), Vec::<usize>::new());
            assert_eq!(cols.shape().unwrap(), vec![n]);
            assert_eq!(rows.shape().unwrap(), vec![m, 1]);
            assert_eq!(all.dtype().unwrap(), DType::F64);
            let out = run(&[&all, &cols, &rows]);
            let want_all = host_vnorm(&mags, p);
            let want_cols: Vec<f64> = (0..n)
                .map(|j| host_vnorm(&mags[j * m..(j + 1) * m], p))
                .collect();
            let want_rows: Vec<f64> = (0..m)
                .map(|i| host_vnorm(&(0..n).map(|j| mags[i + j * m]).collect::<Vec<_>>(), p))
                .collect();
            let c = |v: &[f64]| v.iter().map(|&r| c(r, 0.0)).collect::<Vec<C>>();
            let what = format!("vector_norm {p} {dt}");
            assert_close(&values(&out[0]), &c(&[want_all]), 1e-12, &what);
            assert_close(&values(&out[1]), &c(&want_cols), 1e-12, &what);
            assert_close(&values(&out[2]), &c(&want_rows), 1e-12, &what);
        }
    }
}

/// Host matrix norms of a column-major `m x n` matrix, the singular-value ones from `s`.
fn host_mnorm(a: &[C], m: usize, n: usize, s: &[f64], ord: MatrixNorm) -> f64 {
    let col = |j: usize| (0..m).map(|i| a[i + j * m].norm()).sum::<f64>();
    let row = |i: usize| (0..n).map(|j| a[i + j * m].norm()).sum::<f64>();
    let fold = |it: Vec<f64>, max: bool| {
        it.into_iter().fold(
            if max { 0.0 } else { f64::INFINITY },
            if max { f64::max } else { f64::min },
        )
    };
    match ord {
        MatrixNorm::Fro => a.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt(),
        MatrixNorm::Nuc => s.iter().sum(),
        MatrixNorm::Two => s[0],
        MatrixNorm::NegTwo => s[s.len() - 1],
        MatrixNorm::One => fold((0..n).map(col).collect(), true),
        MatrixNorm::NegOne => fold((0..n).map(col).collect(), false),
        MatrixNorm::Inf => fold((0..m).map(row).collect(), true),
        MatrixNorm::NegInf => fold((0..m).map(row).collect(), false),
    }
}

#[test]
fn matrix_norm_values_batched() {
    for (m, n) in [(3, 4), (4, 3), (3, 3)] {
        let b = 2;
        for dt in DT {
            let x = Rng::new(2).vec(m * n * b, dt.is_complex());
            let xt = traced(dt, &[m, n, b], &x);
            let s = run(&[&xt.svdvals().unwrap()]);
            let s = re(&values(&s[0]));
            let k = m.min(n);
            for ord in MORDS {
                let y = xt.matrix_norm(ord, false).unwrap();
                let yk = xt.matrix_norm(ord, true).unwrap();
                assert_eq!(y.shape().unwrap(), vec![b]);
                assert_eq!(yk.shape().unwrap(), vec![1, 1, b]);
                let out = run(&[&y]);
                let want: Vec<C> = (0..b)
                    .map(|i| {
                        c(
                            host_mnorm(&block(&x, m * n, i), m, n, &s[i * k..(i + 1) * k], ord),
                            0.0,
                        )
                    })
                    .collect();
                assert_close(
                    &values(&out[0]),
                    &want,
                    1e-12,
                    &format!("matrix_norm {ord:?} {dt} {m}x{n}"),
                );
            }
        }
    }
}

#[test]
fn norm_dispatches_like_numpy() {
    let x = Rng::new(3).vec(24, false);
    let xt = traced(DType::F64, &[2, 3, 4], &x);
    // No ord, no axes: the 2-norm of everything.
    let a = xt.norm(None, None, false).unwrap();
    let want = x.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
    // Two axes (2, 0): the matrix norm of the [4, 2] matrices, batched over axis 1.
    let b = xt
        .norm(Some(NormOrd::P(1.0)), Some(&[2, 0]), false)
        .unwrap();
    let bt = xt
        .transpose(&[2, 0, 1])
        .unwrap()
        .matrix_norm(MatrixNorm::One, false)
        .unwrap();
    let bk = xt.norm(Some(NormOrd::Nuc), Some(&[0, 2]), true).unwrap();
    assert_eq!(bk.shape().unwrap(), vec![1, 3, 1]);
    // One axis: a vector norm.
    let v = xt.norm(Some(NormOrd::P(3.0)), Some(&[1]), true).unwrap();
    let vt = xt.vector_norm(3.0, &[1], true).unwrap();
    assert_eq!(v.shape().unwrap(), vec![2, 1, 4]);
    let out = run(&[&a, &b, &bt, &v, &vt]);
    assert_close(&values(&out[0]), &[c(want, 0.0)], 1e-12, "norm()");
    assert_close(
        &values(&out[1]),
        &values(&out[2]),
        1e-12,
        "norm axes (2, 0)",
    );
    assert_close(&values(&out[3]), &values(&out[4]), 1e-12, "norm one axis");
    // A rank-2 operand with an ord and no axes is a matrix norm.
    let m = traced(DType::F64, &[2, 3], &x[..6]);
    let out = run(&[
        &m.norm(Some(NormOrd::P(f64::INFINITY)), None, false)
            .unwrap(),
        &m.matrix_norm(MatrixNorm::Inf, false).unwrap(),
    ]);
    assert_close(
        &values(&out[0]),
        &values(&out[1]),
        0.0,
        "matrix norm by rank",
    );
}

fn vloss(p: f64) -> impl Fn(&TracedTensor) -> TracedTensor {
    move |x| {
        let v = x.vector_norm(p, &[0], false).unwrap();
        wsum(&v, 3)
    }
}

fn mloss(ord: MatrixNorm) -> impl Fn(&TracedTensor) -> TracedTensor {
    move |x| wsum(&x.matrix_norm(ord, false).unwrap(), 4)
}

#[test]
fn gradients_and_hvps_match_finite_differences() {
    let (m, n, b) = (3, 2, 2);
    let shape = [m, n, b];
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(5);
        let x = rng.vec(m * n * b, cx);
        let d = rng.vec(m * n * b, cx);
        for p in [1.0, 2.0, 3.0, 0.5, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
            let what = format!("vector_norm {p}");
            check_grad(dt, &shape, &x, &d, vloss(p), &what);
            if p.is_finite() && p != 1.0 {
                check_hvp(dt, &shape, &x, &d, vloss(p), &what);
            }
        }
        for ord in MORDS {
            let what = format!("matrix_norm {ord:?}");
            check_grad(dt, &shape, &x, &d, mloss(ord), &what);
            if matches!(ord, MatrixNorm::Fro | MatrixNorm::Nuc | MatrixNorm::Two) {
                check_hvp(dt, &shape, &x, &d, mloss(ord), &what);
            }
        }
    }
}

/// The gradient and the HVP at `x0` (no finite differences: non-smooth points).
fn grad_and_hvp(
    dt: DType,
    shape: &[usize],
    x0: &[C],
    f: &dyn Fn(&TracedTensor) -> TracedTensor,
) -> (Vec<C>, Vec<C>) {
    let ad = ad();
    let x = TracedTensor::input(dt, shape);
    let g = ad.grad(&f(&x), &x).unwrap();
    let v = Rng::new(8).vec(x0.len(), dt.is_complex());
    let hv = ad.jvp(&g, &x, &traced(dt, shape, &v)).unwrap();
    let mut func = Func::new(x, &[&g, &hv]);
    let out = func.eval(dt, shape, x0);
    (out[0].clone(), out[1].clone())
}

#[test]
fn derivative_at_zero_is_the_zero_subgradient_not_nan() {
    let shape = [3, 2];
    for dt in DT {
        let zero = vec![c(0.0, 0.0); 6];
        for p in VORDS {
            let (g, h) = grad_and_hvp(dt, &shape, &zero, &|x| {
                x.vector_norm(p, &[], false).unwrap()
            });
            assert!(
                g.iter().all(|z| *z == c(0.0, 0.0)),
                "vector_norm {p} {dt}: grad at 0 = {g:?}"
            );
            assert!(
                h.iter().all(|z| z.re.is_finite() && z.im.is_finite()),
                "vector_norm {p} {dt}: HVP at 0 = {h:?}"
            );
        }
        for ord in MORDS {
            let (g, h) = grad_and_hvp(dt, &shape, &zero, &|x| x.matrix_norm(ord, false).unwrap());
            assert!(
                g.iter().all(|z| *z == c(0.0, 0.0)),
                "matrix_norm {ord:?} {dt}: grad at 0 = {g:?}"
            );
            assert!(
                h.iter().all(|z| z.re.is_finite() && z.im.is_finite()),
                "matrix_norm {ord:?} {dt}: HVP at 0 = {h:?}"
            );
        }
        // Some zero entries: p-norms with p < 1 stay finite (the zero entries get 0).
        let mut x = Rng::new(9).vec(6, dt.is_complex());
        x[1] = c(0.0, 0.0);
        x[4] = c(0.0, 0.0);
        for p in [0.5, 2.0, 3.0, -1.0] {
            let (g, h) = grad_and_hvp(dt, &shape, &x, &|x| x.vector_norm(p, &[], false).unwrap());
            assert!(
                g.iter()
                    .chain(&h)
                    .all(|z| z.re.is_finite() && z.im.is_finite()),
                "vector_norm {p} {dt} with zero entries: {g:?} {h:?}"
            );
            assert_eq!(g[1], c(0.0, 0.0));
        }
    }
}

#[test]
fn no_overflow_inf_and_nan_propagate() {
    let v = [3e200, 4e200, 0.0].map(|r| c(r, 0.0));
    let t = traced(DType::F64, &[3], &v);
    let tiny = traced(DType::F64, &[3], &[3e-200, 4e-200, 0.0].map(|r| c(r, 0.0)));
    let inf = traced(
        DType::F64,
        &[3],
        &[1.0, f64::INFINITY, 0.0].map(|r| c(r, 0.0)),
    );
    let nan = traced(DType::F64, &[3], &[1.0, f64::NAN, 0.0].map(|r| c(r, 0.0)));
    let out = run(&[
        &t.vector_norm(2.0, &[], false).unwrap(),
        &tiny.vector_norm(2.0, &[], false).unwrap(),
        &t.vector_norm(3.0, &[], false).unwrap(),
        &inf.vector_norm(2.0, &[], false).unwrap(),
        &nan.vector_norm(2.0, &[], false).unwrap(),
    ]);
    let r: Vec<f64> = out.iter().map(|t| values(t)[0].re).collect();
    assert!((r[0] / 5e200 - 1.0).abs() < 1e-14, "{r:?}");
    assert!((r[1] / 5e-200 - 1.0).abs() < 1e-14, "{r:?}");
    let want3 = (27.0_f64 + 64.0).powf(1.0 / 3.0) * 1e200;
    assert!((r[2] / want3 - 1.0).abs() < 1e-14, "{r:?}");
    assert_eq!(r[3], f64::INFINITY);
    assert!(r[4].is_nan());
}

#[test]
fn errors_name_the_op() {
    let x = traced(DType::F64, &[2, 3, 4], &Rng::new(1).vec(24, false));
    let e = |r: tenferro_runtime::Result<TracedTensor>| r.unwrap_err().to_string();
    assert!(e(x.vector_norm(f64::NAN, &[], false)).contains("NaN"));
    assert!(e(x.vector_norm(2.0, &[3], false)).contains("out of range"));
    assert!(e(x.norm(Some(NormOrd::P(3.0)), Some(&[0, 1]), false)).contains("not a matrix norm"));
    assert!(e(x.norm(Some(NormOrd::Fro), Some(&[0]), false)).contains("matrix norm"));
    assert!(e(x.norm(Some(NormOrd::P(2.0)), None, false)).contains("one axis"));
    let v = traced(DType::F64, &[3], &Rng::new(1).vec(3, false));
    assert!(e(v.matrix_norm(MatrixNorm::Fro, false)).contains("rank >= 2"));
    // Integers are norms of f64 values.
    let i = TracedTensor::from_vec_col_major(vec![2], vec![3_i64, 4]);
    let out = run(&[&i.vector_norm(2.0, &[], false).unwrap()]);
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[5.0]);
}

#[test]
fn eager_norms_backward() {
    use tenferro_ad::EagerContext;
    use tenferro_cpu::CpuBackend;
    let ctx = EagerContext::with_ad_context(CpuBackend::new(), ad());
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let x = ctx
        .from_vec_col_major(vec![2, 2], vec![3.0_f64, 0.0, 0.0, 4.0])
        .unwrap()
        .requires_grad(true);
    let n = x.vector_norm(2.0, &[], false).unwrap();
    assert_eq!(n.value().unwrap().as_slice::<f64>().unwrap(), &[5.0]);
    n.backward().unwrap();
    let g = x.grad().unwrap();
    for (g, w) in g
        .as_slice::<f64>()
        .unwrap()
        .iter()
        .zip([0.6, 0.0, 0.0, 0.8])
    {
        assert!((g - w).abs() < 1e-15, "{g} vs {w}");
    }
    let nuc = x.matrix_norm(MatrixNorm::Nuc, false).unwrap();
    assert!((nuc.value().unwrap().as_slice::<f64>().unwrap()[0] - 7.0).abs() < 1e-12);
    let z = ctx
        .from_vec_col_major(vec![2], vec![0.0_f64, 0.0])
        .unwrap()
        .requires_grad(true);
    z.norm(None, None, false).unwrap().backward().unwrap();
    assert_eq!(z.grad().unwrap().as_slice::<f64>().unwrap(), &[0.0, 0.0]);
}

/// Norms of an empty vector, as NumPy: 0 for positive orders (a sum of nothing), inf for
/// negative ones (`0^(1/p)`); the infinity norms (a maximum or minimum of nothing) are
/// errors.
#[test]
fn norms_of_an_empty_vector() {
    let e = TracedTensor::from_vec_col_major(vec![0], Vec::<f64>::new());
    for p in [1.0, 2.0, 3.0, 0.5, 0.0] {
        let y = e.vector_norm(p, &[], false).unwrap();
        assert_eq!(run(&[&y])[0].to_vec::<f64>().unwrap(), vec![0.0], "ord {p}");
    }
    let y = e.vector_norm(-1.5, &[], false).unwrap();
    assert_eq!(run(&[&y])[0].to_vec::<f64>().unwrap(), vec![f64::INFINITY]);
    for p in [f64::INFINITY, f64::NEG_INFINITY] {
        let y = e.vector_norm(p, &[], false);
        let m = match y {
            Err(e) => e.to_string(),
            Ok(y) => tenferro_runtime::GraphCompiler::new()
                .compile(&y)
                .unwrap_err()
                .to_string(),
        };
        assert!(m.contains("empty"), "ord {p}: {m}");
    }
}
