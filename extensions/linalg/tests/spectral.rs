//! Truncated SVDs, SVD with a regularised derivative, pinv and lstsq: reconstructions
//! (batched), finite-difference gradients of gauge-invariant losses (f64, c64), HVPs,
//! rank-deficient inputs (finite derivatives, no NaN), errors and eager mode.

#[path = "common/checks.rs"]
mod checks;
mod common;
use checks::*;
use common::*;
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt};
use tenferro_runtime::{DType, TracedTensor};

/// `X diag(s) Y` for a batch of real `s`.
fn recon(u: &TracedTensor, s: &TracedTensor, vh: &TracedTensor) -> TracedTensor {
    let sh = u.shape().unwrap();
    let dims: Vec<usize> = std::iter::once(1).chain(2..sh.len()).collect();
    let d = s
        .convert(u.dtype().unwrap())
        .unwrap()
        .broadcast_in_dim(&sh, &dims)
        .unwrap();
    (u * &d).matmul(vh).unwrap()
}

/// A gauge-invariant loss of truncated factors: the truncated matrix, the projector
/// `U Uᴴ` and the squared magnitudes of `Vh`'s entries.
fn gauge_free(u: &TracedTensor, s: &TracedTensor, vh: &TracedTensor) -> TracedTensor {
    let p = u.matmul(&adj(u)).unwrap();
    let q = vh.abs().square();
    let l = &(&wsum(&recon(u, s, vh), 1) + &wsum(&p, 2)) + &wsum(&q, 3);
    &l + &wsum(s, 4)
}

/// A random `m x n` matrix of rank `r`.
fn low_rank(rng: &mut Rng, m: usize, n: usize, r: usize, cx: bool) -> Vec<C> {
    let b = rng.vec(m * r, cx);
    let c = rng.vec(r * n, cx);
    matmul(&b, &c, m, r, n)
}

#[test]
fn svd_truncated_is_the_best_rank_k_approximation_batched() {
    let (m, n, b, k) = (5, 3, 2, 2);
    for dt in DT {
        let x = Rng::new(1).vec(m * n * b, dt.is_complex());
        let a = traced(dt, &[m, n, b], &x);
        let (u, s, vh) = a.svd_truncated(k).unwrap();
        assert_eq!(u.shape().unwrap(), vec![m, k, b]);
        assert_eq!(s.shape().unwrap(), vec![k, b]);
        assert_eq!(vh.shape().unwrap(), vec![k, n, b]);
        let resid = (&a - &recon(&u, &s, &vh))
            .abs()
            .square()
            .sum_axes(&[0, 1], false);
        let gram = adj(&u).matmul(&u).unwrap();
        let out = run(&[&resid, &a.svdvals().unwrap(), &s, &gram]);
        let all = values(&out[1]);
        for i in 0..b {
            // Eckart–Young: the residual is the discarded singular value squared.
            let sk = all[i * n + k].re;
            assert!((values(&out[0])[i].re - sk * sk).abs() < 1e-12, "{dt}");
            assert_close(
                &block(&values(&out[2]), k, i),
                &all[i * n..i * n + k],
                1e-14,
                "S",
            );
            assert_close(&block(&values(&out[3]), k * k, i), &eye(k), 1e-12, "UᴴU");
        }
    }
}

#[test]
fn svd_truncated_gradients_match_finite_differences() {
    for (m, n) in [(5, 3), (3, 5), (4, 4)] {
        for dt in DT {
            let cx = dt.is_complex();
            let mut rng = Rng::new(2);
            let x = rng.vec(m * n, cx);
            let d = rng.vec(m * n, cx);
            let f = |a: &TracedTensor| {
                let (u, s, vh) = a.svd_truncated(2).unwrap();
                gauge_free(&u, &s, &vh)
            };
            let what = format!("svd_truncated {m}x{n}");
            check_grad(dt, &[m, n], &x, &d, f, &what);
            check_hvp(dt, &[m, n], &x, &d, f, &what);
            // Rank-deficient (rank 2, repeated zero singular values discarded): finite
            // and correct.
            let lr = low_rank(&mut rng, m, n, 2, cx);
            let g = check_grad(dt, &[m, n], &lr, &d, f, &format!("{what} rank 2"));
            assert!(g.iter().all(|z| z.re.is_finite() && z.im.is_finite()));
            check_hvp(dt, &[m, n], &lr, &d, f, &format!("{what} rank 2"));
        }
    }
}

#[test]
fn svd_truncated_batched_gradient() {
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(12);
        let x = rng.vec(4 * 3 * 2, cx);
        let d = rng.vec(4 * 3 * 2, cx);
        let f = |a: &TracedTensor| {
            let (u, s, vh) = a.svd_truncated(1).unwrap();
            gauge_free(&u, &s, &vh)
        };
        check_grad(dt, &[4, 3, 2], &x, &d, f, "batched svd_truncated");
        check_hvp(dt, &[4, 3, 2], &x, &d, f, "batched svd_truncated");
    }
}

#[test]
fn svd_rtol_masks_and_counts_rank() {
    let (m, n) = (5, 4);
    let mut rng = Rng::new(3);
    for dt in DT {
        let cx = dt.is_complex();
        let mut x = low_rank(&mut rng, m, n, 2, cx);
        x.extend(rng.vec(m * n, cx));
        let a = traced(dt, &[m, n, 2], &x);
        let (u, s, vh, rank) = a.svd_rtol(1e-10).unwrap();
        assert_eq!(rank.dtype().unwrap(), DType::I64);
        let out = run(&[&recon(&u, &s, &vh), &s, &rank]);
        assert_eq!(out[2].as_slice::<i64>().unwrap(), &[2, 4]);
        let sv = values(&out[1]);
        assert_eq!(sv[2], c(0.0, 0.0));
        assert_eq!(sv[3], c(0.0, 0.0));
        assert_close(&values(&out[0]), &x, 1e-12, "rank-2 reconstruction");
        // Gradient of the truncated reconstruction (a gap at the cut) vs FD.
        let y = rng.vec(m * n, cx);
        let d = rng.vec(m * n, cx);
        let f = |a: &TracedTensor| {
            let (u, s, vh, _) = a.svd_rtol(0.3).unwrap();
            gauge_free(&u, &s, &vh)
        };
        check_grad(dt, &[m, n], &y, &d, f, "svd_rtol");
        check_hvp(dt, &[m, n], &y, &d, f, "svd_rtol");
    }
}

#[test]
fn svd_with_options_regularises_degenerate_spectra() {
    // diag(2, 2, 1): the plain rule divides by zero for U; the broadened one does not.
    let n = 3;
    let mut a = vec![c(0.0, 0.0); 9];
    a[0] = c(2.0, 0.0);
    a[4] = c(2.0, 0.0);
    a[8] = c(1.0, 0.0);
    for dt in DT {
        let ad = ad();
        let x = TracedTensor::input(dt, &[n, n]);
        let (u, s, vh) = x.svd_with_options(1e-8).unwrap();
        let loss = &wsum(&u, 1) + &(&wsum(&vh, 2) + &wsum(&s, 3));
        let g = ad.grad(&loss, &x).unwrap();
        let mut func = Func::new(x, &[&g]);
        let out = func.eval(dt, &[n, n], &a);
        assert!(
            out[0].iter().all(|z| z.re.is_finite() && z.im.is_finite()),
            "{dt}: {:?}",
            out[0]
        );
        // Away from degeneracy a tiny eps changes nothing measurable.
        let y = Rng::new(4).vec(n * n, dt.is_complex());
        let d = Rng::new(5).vec(n * n, dt.is_complex());
        check_grad(
            dt,
            &[n, n],
            &y,
            &d,
            |a| {
                let (u, s, vh) = a.svd_with_options(1e-20).unwrap();
                gauge_free(&u, &s, &vh)
            },
            "svd_with_options",
        );
    }
}

#[test]
fn pinv_penrose_conditions_and_gradients() {
    let mut rng = Rng::new(6);
    for dt in DT {
        let cx = dt.is_complex();
        for (m, n, r) in [(4, 3, 3), (3, 4, 3), (4, 4, 2), (5, 3, 1)] {
            let x = low_rank(&mut rng, m, n, r, cx);
            let a = traced(dt, &[m, n], &x);
            let p = a.pinv(None).unwrap();
            assert_eq!(p.shape().unwrap(), vec![n, m]);
            let apa = a.matmul(&p).unwrap().matmul(&a).unwrap();
            let pap = p.matmul(&a).unwrap().matmul(&p).unwrap();
            let ap = a.matmul(&p).unwrap();
            let pa = p.matmul(&a).unwrap();
            let out = run(&[&apa, &pap, &p, &ap, &pa]);
            let what = format!("pinv {m}x{n} rank {r} {dt}");
            assert_close(&values(&out[0]), &x, 1e-10, &what);
            assert_close(&values(&out[1]), &values(&out[2]), 1e-10, &what);
            let ap = values(&out[3]);
            let pa = values(&out[4]);
            assert_close(&ap, &adjoint(&ap, m, m), 1e-10, &what);
            assert_close(&pa, &adjoint(&pa, n, n), 1e-10, &what);
            // Derivatives: FD where the rank is locally constant (full rank); finite for
            // rank-deficient inputs.
            let d = rng.vec(m * n, cx);
            let f = |a: &TracedTensor| wsum(&a.pinv(None).unwrap(), 7);
            if r == m.min(n) {
                check_grad(dt, &[m, n], &x, &d, f, &what);
                check_hvp(dt, &[m, n], &x, &d, f, &what);
            } else {
                let ad = ad();
                let xi = TracedTensor::input(dt, &[m, n]);
                let g = ad.grad(&f(&xi), &xi).unwrap();
                let out = Func::new(xi, &[&g]).eval(dt, &[m, n], &x);
                assert!(
                    out[0].iter().all(|z| z.re.is_finite() && z.im.is_finite()),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn pinv_gradient_at_fixed_rank_deficiency() {
    // The rank-2 manifold: along a direction that keeps rank 2, FD of the pinv is smooth.
    let (m, n) = (4, 3);
    let mut rng = Rng::new(7);
    for dt in DT {
        let cx = dt.is_complex();
        let b = rng.vec(m * 2, cx);
        let cm = rng.vec(2 * n, cx);
        let db = rng.vec(m * 2, cx);
        let x = matmul(&b, &cm, m, 2, n);
        // d(BC) = dB C stays on the manifold (to first order) and its FD is along the curve
        // (B + t dB) C, exactly rank 2.
        let d = matmul(&db, &cm, m, 2, n);
        check_grad(
            dt,
            &[m, n],
            &x,
            &d,
            |a| wsum(&a.pinv(Some(1e-8)).unwrap(), 8),
            "pinv rank 2",
        );
    }
}

#[test]
fn lstsq_full_rank_rank_deficient_vector_and_promotion() {
    let mut rng = Rng::new(8);
    for dt in DT {
        let cx = dt.is_complex();
        let (m, n, k) = (5, 3, 2);
        let x = rng.vec(m * n, cx);
        let bv = rng.vec(m * k, cx);
        let a = traced(dt, &[m, n], &x);
        let b = traced(dt, &[m, k], &bv);
        let r = a.lstsq(&b, None).unwrap();
        // Normal equations: Aᴴ A X = Aᴴ B.
        let ah = adj(&a);
        let lhs = ah.matmul(&a).unwrap().matmul(&r.solution).unwrap();
        let rhs = ah.matmul(&b).unwrap();
        let resid = (&b - &a.matmul(&r.solution).unwrap())
            .abs()
            .square()
            .sum_axes(&[0], false);
        let out = run(&[
            &lhs,
            &rhs,
            &r.residuals,
            &resid,
            &r.rank,
            &r.singular_values,
            &a.svdvals().unwrap(),
        ]);
        assert_close(
            &values(&out[0]),
            &values(&out[1]),
            1e-10,
            "normal equations",
        );
        assert_close(&values(&out[2]), &values(&out[3]), 1e-10, "residuals");
        assert_eq!(out[4].as_slice::<i64>().unwrap(), &[3]);
        assert_close(&values(&out[5]), &values(&out[6]), 0.0, "singular values");
        // Rank-deficient: the minimum-norm solution is pinv(A) B.
        let lr = low_rank(&mut rng, m, 4, 2, cx);
        let a2 = traced(dt, &[m, 4], &lr);
        let r2 = a2.lstsq(&b, None).unwrap();
        let want = a2.pinv(None).unwrap().matmul(&b).unwrap();
        let out = run(&[&r2.solution, &want, &r2.rank]);
        assert_close(
            &values(&out[0]),
            &values(&out[1]),
            1e-10,
            "min-norm solution",
        );
        assert_eq!(out[2].as_slice::<i64>().unwrap(), &[2]);
        // A vector right-hand side, batched.
        let xs = rng.vec(m * n * 2, cx);
        let bs = rng.vec(m * 2, cx);
        let a3 = traced(dt, &[m, n, 2], &xs);
        let b3 = traced(dt, &[m, 2], &bs);
        let r3 = a3.lstsq(&b3, None).unwrap();
        assert_eq!(r3.solution.shape().unwrap(), vec![n, 2]);
        assert_eq!(r3.residuals.shape().unwrap(), vec![2]);
        assert_eq!(r3.rank.shape().unwrap(), vec![2]);
        // Gradients in A and in B.
        let da = rng.vec(m * n, cx);
        let dbv = rng.vec(m * k, cx);
        check_grad(
            dt,
            &[m, n],
            &x,
            &da,
            |a| {
                let r = a.lstsq(&b, None).unwrap();
                &wsum(&r.solution, 9) + &wsum(&r.residuals, 10)
            },
            "lstsq in A",
        );
        check_hvp(
            dt,
            &[m, n],
            &x,
            &da,
            |a| wsum(&a.lstsq(&b, None).unwrap().solution, 9),
            "lstsq in A",
        );
        check_grad(
            dt,
            &[m, k],
            &bv,
            &dbv,
            |b| {
                let r = a.lstsq(b, None).unwrap();
                &wsum(&r.solution, 9) + &wsum(&r.residuals, 10)
            },
            "lstsq in B",
        );
    }
    // f64 matrix, c64 right-hand side: promoted to c64.
    let a = traced(DType::F64, &[3, 2], &Rng::new(1).vec(6, false));
    let b = traced(DType::C64, &[3], &Rng::new(2).vec(3, true));
    assert_eq!(
        a.lstsq(&b, None).unwrap().solution.dtype().unwrap(),
        DType::C64
    );
}

#[test]
fn errors_are_clear() {
    let a = traced(DType::F64, &[4, 3], &Rng::new(1).vec(12, false));
    let e = |r: tenferro_runtime::Result<TracedTensor>| r.unwrap_err().to_string();
    assert!(e(a.svd_truncated(0).map(|t| t.0)).contains("1..=3"));
    assert!(e(a.svd_truncated(4).map(|t| t.0)).contains("1..=3"));
    assert!(e(a.svd_rtol(-1.0).map(|t| t.0)).contains("rtol"));
    assert!(e(a.pinv(Some(f64::NAN))).contains("rtol"));
    assert!(e(a.svd_with_options(f64::INFINITY).map(|t| t.0)).contains("derivative_eps"));
    let b = traced(DType::F64, &[3, 1], &Rng::new(1).vec(3, false));
    assert!(e(a.lstsq(&b, None).map(|r| r.solution)).contains("do not match"));
}

#[test]
fn eager_pinv_and_lstsq() {
    use tenferro_ad::EagerContext;
    use tenferro_cpu::CpuBackend;
    let ctx = EagerContext::with_ad_context(CpuBackend::new(), ad());
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![2.0_f64, 0.0, 0.0, 4.0])
        .unwrap()
        .requires_grad(true);
    let p = a.pinv(None).unwrap();
    assert_eq!(
        p.value().unwrap().as_slice::<f64>().unwrap(),
        &[0.5, 0.0, 0.0, 0.25]
    );
    p.reduce_sum(&[0, 1]).unwrap().backward().unwrap();
    // d tr(1ᵀ A⁻¹ 1) = -A⁻ᵀ 1 1ᵀ A⁻ᵀ.
    let g = a.grad().unwrap();
    let want = [-0.25, -0.125, -0.125, -0.0625];
    for (g, w) in g.as_slice::<f64>().unwrap().iter().zip(want) {
        assert!((g - w).abs() < 1e-14, "{g} vs {w}");
    }
    let b = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 1.0]).unwrap();
    let r = a.lstsq(&b, None).unwrap();
    assert_eq!(
        r.solution.value().unwrap().as_slice::<f64>().unwrap(),
        &[0.5, 0.25]
    );
    let (u, s, vh) = a.svd_truncated(1).unwrap();
    assert_eq!(s.value().unwrap().as_slice::<f64>().unwrap(), &[4.0]);
    assert_eq!(u.value().unwrap().shape(), &[2, 1]);
    assert_eq!(vh.value().unwrap().shape(), &[1, 2]);
}
