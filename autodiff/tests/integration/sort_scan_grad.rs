//! Derivatives of sort, top_k and the cumulative ops: JVPs against central finite
//! differences and VJPs against JVPs through the adjoint identity `⟨ct, J·t⟩ = ⟨Jᵀ·ct, t⟩`
//! (which for cumsum checks that its transpose is the reversed cumsum), in f64 and c64;
//! cumprod with and without zeros; cummax / cummin tie handling; NaN and stable ties of
//! the primal values; eager mirrors.

use crate::common;

use common::*;
use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::ReduceOp;
use tenferro_runtime::{DType, Tensor, TracedTensor};

type F = fn(&TracedTensor) -> TracedTensor;

/// Checks `f` at `x` along a random tangent: JVP vs central differences (tolerance
/// `tol`), and the adjoint identity for the VJP.
fn check_at(name: &str, f: F, x: &Tensor, g: &mut Gen, tol: f64) {
    let ad = AdContext::new();
    let dtype = x.dtype();
    let shape = x.shape().to_vec();
    let xi = TracedTensor::input(dtype, &shape);
    let ti = TracedTensor::input(dtype, &shape);
    let y = f(&xi);
    let yt = y.ty().unwrap_or_else(|e| panic!("{name}: {e}"));
    let ci = TracedTensor::input(yt.dtype, &yt.shape);
    let tv = g.tensor(dtype, &shape, -1.0, 1.0);
    let cv = g.tensor(yt.dtype, &yt.shape, -1.0, 1.0);
    let dy = ad
        .jvp_many(&y, &[&xi], &[&ti])
        .unwrap_or_else(|e| panic!("{name}: jvp: {e}"));
    let ct = ad
        .vjp_many(&y, &[&xi], &ci)
        .unwrap_or_else(|e| panic!("{name}: vjp: {e}"));
    let got = run_many_with(
        &[&dy, &ct[0]],
        &[(&xi, x.clone()), (&ti, tv.clone()), (&ci, cv.clone())],
    );
    let eps = 1e-6;
    let at = |s: f64| run_many_with(&[&y], &[(&xi, axpy(x, s, &tv))]).remove(0);
    let d = axpy(&at(eps), -1.0, &at(-eps));
    let fd = axpy(&d, 1.0 / (2.0 * eps) - 1.0, &d);
    let err = max_rel_err(&got[0], &fd);
    assert!(
        err <= tol,
        "{name} ({dtype}) at {:?}: jvp {:?} vs finite differences {:?} (err {err:e})",
        as_c64(x),
        as_c64(&got[0]),
        as_c64(&fd)
    );
    let lhs = inner(&cv, &got[0]);
    let rhs = inner(&got[1], &tv);
    assert!(
        (lhs - rhs).abs() <= 1e-9 * (1.0 + lhs.abs()),
        "{name} ({dtype}): <ct, J t> = {lhs} but <J^T ct, t> = {rhs}"
    );
    for v in as_c64(&got[0]).iter().chain(as_c64(&got[1]).iter()) {
        assert!(
            v.re.is_finite() && v.im.is_finite(),
            "{name}: non-finite derivative"
        );
    }
}

fn check(name: &str, f: F, dtype: DType, shape: &[usize], seed: u64) {
    let mut g = Gen(seed);
    for _ in 0..3 {
        let x = g.tensor(dtype, shape, -2.0, 2.0);
        check_at(name, f, &x, &mut g, 1e-6);
    }
}

#[test]
fn sort_and_top_k() {
    let cases: [(&str, F); 5] = [
        ("sort axis 0", |x| x.sort(0, false)),
        ("sort axis 1 desc", |x| x.sort(1, true)),
        ("sort axis -1", |x| x.sort(-1, false)),
        ("top_k values", |x| x.top_k(2).0),
        ("sort * x", |x| &x.sort(0, true) * x),
    ];
    for (name, f) in cases {
        check(name, f, DType::F64, &[3, 4], 1);
    }
    check("sort 1-d", |x| x.sort(0, false), DType::F64, &[6], 2);
    check("top_k 1-d", |x| x.top_k(3).0, DType::F64, &[6], 3);
}

#[test]
fn cumsum_f64_and_c64() {
    let cases: [(&str, F); 4] = [
        ("cumsum 0", |x| x.cumsum(0)),
        ("cumsum -1", |x| x.cumsum(-1)),
        ("cumsum reverse", |x| x.cumulative(ReduceOp::Sum, 1, true)),
        ("cumsum^2", |x| {
            let c = x.cumsum(1);
            &c * &c
        }),
    ];
    for (name, f) in cases {
        for dt in [DType::F64, DType::C64] {
            check(name, f, dt, &[3, 4], 4);
        }
    }
}

#[test]
fn cumprod_without_and_with_zeros() {
    let cases: [(&str, F); 3] = [
        ("cumprod 1", |x| x.cumprod(1)),
        ("cumprod 0", |x| x.cumprod(0)),
        ("cumprod reverse", |x| x.cumulative(ReduceOp::Prod, 1, true)),
    ];
    for (name, f) in cases {
        for dt in [DType::F64, DType::C64] {
            check(name, f, dt, &[3, 4], 5);
        }
    }
    // Zeros: none, one, two, at the ends, all.
    let rows: [[f64; 5]; 6] = [
        [1.5, -0.5, 2.0, 0.7, -1.2],
        [1.5, 0.0, 2.0, 0.7, -1.2],
        [0.0, -0.5, 2.0, 0.0, -1.2],
        [1.5, -0.5, 2.0, 0.7, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 1.0, 2.0, 0.0],
    ];
    let mut g = Gen(6);
    for row in rows {
        let x = Tensor::from_vec_col_major(vec![5], row.to_vec()).unwrap();
        let fs: [(&str, F); 2] = [
            ("cumprod at zeros", |x| x.cumprod(0)),
            ("reverse cumprod at zeros", |x| {
                x.cumulative(ReduceOp::Prod, 0, true)
            }),
        ];
        for (name, f) in fs {
            check_at(name, f, &x, &mut g, 1e-7);
            let z = from_c64(
                vec![5],
                DType::C64,
                row.iter()
                    .map(|&r| num_complex::Complex64::new(r, 0.5 * r))
                    .collect(),
            );
            check_at(name, f, &z, &mut g, 1e-7);
        }
    }
    // Exact values at a zero: y = cumprod([2, 0, 3]); dy = [t0, 2 t1, 6 t1].
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![3], vec![2.0, 0.0, 3.0]);
    let t = TracedTensor::from_vec_col_major(vec![3], vec![1.0, 10.0, 100.0]);
    let dy = ad.jvp_many(&x.cumprod(0), &[&x], &[&t]).unwrap();
    assert_eq!(f64s(&run(&dy)), vec![1.0, 20.0, 60.0]);
}

#[test]
fn cummax_and_cummin() {
    let cases: [(&str, F); 4] = [
        ("cummax 1", |x| x.cummax(1)),
        ("cummin 0", |x| x.cummin(0)),
        ("cummax reverse", |x| x.cumulative(ReduceOp::Max, 0, true)),
        ("cummin reverse", |x| x.cumulative(ReduceOp::Min, 1, true)),
    ];
    for (name, f) in cases {
        check(name, f, DType::F64, &[4, 5], 7);
    }
    // Ties: the tangent is the mean over the tied running extrema seen so far.
    let ad = AdContext::new();
    let x = TracedTensor::from_vec_col_major(vec![5], vec![1.0, 1.0, 0.0, 1.0, 2.0]);
    let t = TracedTensor::from_vec_col_major(vec![5], vec![3.0, 6.0, 100.0, 9.0, 5.0]);
    let dy = ad.jvp_many(&x.cummax(0), &[&x], &[&t]).unwrap();
    assert_eq!(f64s(&run(&dy)), vec![3.0, 4.5, 4.5, 6.0, 5.0]);
    let dy = ad
        .jvp_many(&x.cumulative(ReduceOp::Max, 0, true), &[&x], &[&t])
        .unwrap();
    assert_eq!(f64s(&run(&dy)), vec![5.0, 5.0, 5.0, 5.0, 5.0]);
    // After a NaN the tangent is that of the NaN (finite, no 0/0).
    let x = TracedTensor::from_vec_col_major(vec![3], vec![1.0, f64::NAN, 2.0]);
    let dy = ad
        .jvp_many(&x.cummin(0), &[&x], &[&t.slice(&[0], &[3]).unwrap()])
        .unwrap();
    assert_eq!(f64s(&run(&dy)), vec![3.0, 6.0, 6.0]);
}

#[test]
fn primal_values_nan_and_ties() {
    let x = TracedTensor::from_vec_col_major(vec![5], vec![3.0, f64::NAN, 1.0, -0.0, 0.0]);
    let s = f64s(&run(&x.sort(0, false)));
    assert_eq!(&s[..4], &[-0.0, 0.0, 1.0, 3.0]);
    assert!(s[0].is_sign_negative() && s[4].is_nan());
    let s = f64s(&run(&x.sort(0, true)));
    assert!(s[0].is_nan());
    assert_eq!(&s[1..], &[3.0, 1.0, -0.0, 0.0]);
    let i = run(&x.argsort(0, false));
    assert_eq!(i.as_slice::<i64>().unwrap(), &[3, 4, 2, 0, 1]);
    let t = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0, 5.0, 2.0, 5.0, 1.0, 0.0]);
    let (v, k) = t.top_k(2);
    // Rows [1, 2, 1] and [5, 5, 0]: ties by increasing index.
    assert_eq!(f64s(&run(&v)), vec![2.0, 5.0, 1.0, 5.0]);
    assert_eq!(run(&k).as_slice::<i64>().unwrap(), &[1, 0, 0, 1]);
    let c = run(&t.cumsum(1));
    assert_eq!(f64s(&c), vec![1.0, 5.0, 3.0, 10.0, 4.0, 10.0]);
}

#[test]
fn eager_mirrors() {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let x = ctx
        .from_vec_col_major(vec![4], vec![3.0_f64, 1.0, 2.0, 1.0])
        .unwrap()
        .requires_grad(true);
    let i = x.argsort(0, false).unwrap();
    assert_eq!(i.value().unwrap().as_slice::<i64>().unwrap(), &[1, 3, 2, 0]);
    let s = x.sort(0, true).unwrap();
    assert_eq!(f64s(&s.value().unwrap()), vec![3.0, 2.0, 1.0, 1.0]);
    let (v, k) = x.top_k(2).unwrap();
    assert_eq!(f64s(&v.value().unwrap()), vec![3.0, 2.0]);
    assert_eq!(k.value().unwrap().as_slice::<i64>().unwrap(), &[0, 2]);
    assert_eq!(
        f64s(&x.cumsum(0).unwrap().value().unwrap()),
        vec![3.0, 4.0, 6.0, 7.0]
    );
    assert_eq!(
        f64s(&x.cumprod(0).unwrap().value().unwrap()),
        vec![3.0, 3.0, 6.0, 6.0]
    );
    assert_eq!(f64s(&x.cummax(0).unwrap().value().unwrap()), vec![3.0; 4]);
    assert_eq!(
        f64s(&x.cummin(0).unwrap().value().unwrap()),
        vec![3.0, 1.0, 1.0, 1.0]
    );
    let r = x.cumulative(ReduceOp::Sum, -1, true).unwrap();
    assert_eq!(f64s(&r.value().unwrap()), vec![7.0, 4.0, 3.0, 1.0]);
    // d/dx Σ (w ⊙ sort(x, desc)) with w = [1, 2, 3, 4] puts w at the sorted positions.
    let w = ctx
        .from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0])
        .unwrap();
    let loss = (&s * &w).reduce_sum(&[0]).unwrap();
    loss.backward().unwrap();
    assert_eq!(f64s(&x.grad().unwrap()), vec![1.0, 3.0, 2.0, 4.0]);
    assert!(x.argsort(1, false).is_err());
    assert!(x.top_k(5).is_err());
}
