//! The LU family: parity, lu_factor / lu_solve (values, batches, vector right-hand sides,
//! FD gradients and HVPs in the factor's input and the right-hand side), complex slogdet,
//! promotion of mixed-dtype solves, errors, eager; LU with complete pivoting
//! (`full_piv_lu`, `full_piv_lu_solve`: factors, pivots, solves, FD gradients).

#[path = "common/checks.rs"]
mod checks;
mod common;
use checks::*;
use common::*;
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, TracedTensor};

#[test]
fn parity_is_the_permutation_determinant() {
    let n = 4;
    for dt in DT {
        let x = Rng::new(1).vec(n * n * 3, dt.is_complex());
        let a = traced(dt, &[n, n, 3], &x);
        let (p, l, u, parity) = a.lu_with_parity().unwrap();
        let (p0, _, _) = a.lu().unwrap();
        let recon = p.matmul(&l).unwrap().matmul(&u).unwrap();
        let out = run(&[&recon, &parity, &p.det().unwrap(), &p0]);
        assert_close(&values(&out[0]), &x, 1e-12, "P L U");
        assert_close(&values(&out[1]), &values(&out[2]), 1e-12, "parity = det P");
        assert_eq!(out[1].shape(), &[3]);
        assert!(values(&out[1])
            .iter()
            .all(|z| (z.norm() - 1.0).abs() < 1e-14));
    }
}

#[test]
fn lu_factor_and_solve_batched_and_vector() {
    let (n, k, b) = (4, 2, 3);
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(2);
        let x = rng.vec(n * n * b, cx);
        let rhs = rng.vec(n * k * b, cx);
        let a = traced(dt, &[n, n, b], &x);
        let bt = traced(dt, &[n, k, b], &rhs);
        let (lu, perm) = a.lu_factor().unwrap();
        assert_eq!(perm.dtype().unwrap(), DType::I64);
        assert_eq!(perm.shape().unwrap(), vec![n, b]);
        let xs = lu.lu_solve(&perm, &bt).unwrap();
        let want = a.solve(&bt).unwrap();
        let bv = traced(dt, &[n, b], &rhs[..n * b]);
        let xv = lu.lu_solve(&perm, &bv).unwrap();
        let wv = a.solve(&bv).unwrap();
        assert_eq!(xv.shape().unwrap(), vec![n, b]);
        let out = run(&[&xs, &want, &xv, &wv]);
        assert_close(&values(&out[0]), &values(&out[1]), 1e-10, "lu_solve");
        assert_close(&values(&out[2]), &values(&out[3]), 1e-10, "lu_solve vector");
    }
}

#[test]
fn lu_solve_gradients_match_finite_differences() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(3);
        let x = general(&mut rng, n, cx);
        let rhs = rng.vec(n * 2, cx);
        let (dx, drhs) = (rng.vec(n * n, cx), rng.vec(n * 2, cx));
        let bt = traced(dt, &[n, 2], &rhs);
        let at = traced(dt, &[n, n], &x);
        let f = |a: &TracedTensor| {
            let (lu, perm) = a.lu_factor().unwrap();
            wsum(&lu.lu_solve(&perm, &bt).unwrap(), 5)
        };
        check_grad(dt, &[n, n], &x, &dx, f, "lu_solve in A");
        check_hvp(dt, &[n, n], &x, &dx, f, "lu_solve in A");
        let g = |b: &TracedTensor| {
            let (lu, perm) = at.lu_factor().unwrap();
            wsum(&lu.lu_solve(&perm, b).unwrap(), 6)
        };
        check_grad(dt, &[n, 2], &rhs, &drhs, g, "lu_solve in B");
    }
}

#[test]
fn complex_slogdet_has_a_unit_complex_sign_and_gradient() {
    let n = 3;
    let mut rng = Rng::new(4);
    let x = general(&mut rng, n, true);
    let a = traced(DType::C64, &[n, n], &x);
    let (sign, logabs) = a.slogdet().unwrap();
    assert_eq!(logabs.dtype().unwrap(), DType::F64);
    let out = run(&[&sign, &logabs, &a.det().unwrap()]);
    let (s, l, d) = (
        values(&out[0])[0],
        values(&out[1])[0].re,
        values(&out[2])[0],
    );
    assert!((s.norm() - 1.0).abs() < 1e-14);
    assert_close(&[s * l.exp()], &[d], 1e-12, "sign · exp(logabs) = det");
    let dir = rng.vec(n * n, true);
    check_grad(
        DType::C64,
        &[n, n],
        &x,
        &dir,
        |a| a.slogdet().unwrap().1,
        "slogdet logabs",
    );
    check_grad(
        DType::C64,
        &[n, n],
        &x,
        &dir,
        |a| wsum(&a.slogdet().unwrap().0, 7),
        "slogdet sign",
    );
}

#[test]
fn mixed_dtype_solves_promote() {
    let n = 2;
    let a = traced(
        DType::F32,
        &[n, n],
        &[c(2.0, 0.0), c(0.0, 0.0), c(0.0, 0.0), c(4.0, 0.0)],
    );
    let b64 = traced(DType::F64, &[n], &[c(1.0, 0.0), c(1.0, 0.0)]);
    let bc = traced(DType::C64, &[n, 1], &[c(1.0, 1.0), c(0.0, 2.0)]);
    let x1 = a.solve(&b64).unwrap();
    let x2 = a.solve(&bc).unwrap();
    let x3 = a.triangular_solve(&bc, TriangularSolve::default()).unwrap();
    assert_eq!(x1.dtype().unwrap(), DType::F64);
    assert_eq!(x2.dtype().unwrap(), DType::C64);
    assert_eq!(x3.dtype().unwrap(), DType::C64);
    let out = run(&[&x1, &x2]);
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[0.5, 0.25]);
    assert_close(&values(&out[1]), &[c(0.5, 0.5), c(0.0, 0.5)], 1e-15, "c64");
}

#[test]
fn lu_solve_errors() {
    let a = traced(DType::F64, &[3, 3], &Rng::new(1).vec(9, false));
    let (lu, perm) = a.lu_factor().unwrap();
    let b = traced(DType::F64, &[2, 1], &Rng::new(1).vec(2, false));
    let msg = lu.lu_solve(&perm, &b).unwrap_err().to_string();
    assert!(
        msg.contains("lu_solve") && msg.contains("do not match"),
        "{msg}"
    );
    let b = traced(DType::F64, &[3, 1], &Rng::new(1).vec(3, false));
    let msg = lu.lu_solve(&lu, &b).unwrap_err().to_string();
    assert!(msg.contains("i64"), "{msg}");
}

/// An eager context with the linalg kernels and rules.
fn eager_ctx() -> tenferro_ad::EagerContext {
    let ctx = tenferro_ad::EagerContext::with_ad_context(tenferro_cpu::CpuBackend::new(), ad());
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    ctx
}

#[test]
fn eager_lu_factor_solve() {
    let ctx = eager_ctx();
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![0.0_f64, 1.0, 2.0, 0.0])
        .unwrap()
        .requires_grad(true);
    let (_, _, _, parity) = a.lu_with_parity().unwrap();
    assert_eq!(parity.value().unwrap().as_slice::<f64>().unwrap(), &[-1.0]);
    let (lu, perm) = a.lu_factor().unwrap();
    assert_eq!(perm.value().unwrap().as_slice::<i64>().unwrap(), &[1, 0]);
    let b = ctx.from_vec_col_major(vec![2], vec![2.0_f64, 4.0]).unwrap();
    let x = lu.lu_solve(&perm, &b).unwrap();
    assert_eq!(x.value().unwrap().as_slice::<f64>().unwrap(), &[4.0, 1.0]);
}

#[test]
fn cho_solve_matches_solve_with_gradients() {
    let (n, b) = (3, 2);
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(9);
        let a: Vec<C> = (0..b).flat_map(|_| spd(&mut rng, n, cx)).collect();
        let rhs = rng.vec(n * 2 * b, cx);
        let at = traced(dt, &[n, n, b], &a);
        let bt = traced(dt, &[n, 2, b], &rhs);
        let l = at.cholesky().unwrap();
        let out = run(&[&l.cho_solve(&bt).unwrap(), &at.solve(&bt).unwrap()]);
        assert_close(&values(&out[0]), &values(&out[1]), 1e-10, "cho_solve");
        let d = (0..b)
            .flat_map(|_| hermitian(&mut rng, n, cx))
            .collect::<Vec<C>>();
        let f = |a: &TracedTensor| wsum(&a.cholesky().unwrap().cho_solve(&bt).unwrap(), 3);
        check_grad(dt, &[n, n, b], &a, &d, f, "cho_solve");
        check_hvp(dt, &[n, n, b], &a, &d, f, "cho_solve");
    }
}

#[test]
fn full_piv_lu_factors_with_complete_pivots() {
    let n = 4;
    for dt in DT {
        let x = Rng::new(11).vec(n * n * 2, dt.is_complex());
        let a = traced(dt, &[n, n, 2], &x);
        let (p, l, u, q, parity) = a.full_piv_lu().unwrap();
        assert_eq!(parity.dtype().unwrap(), dt.real());
        assert_eq!(parity.shape().unwrap(), vec![2]);
        let lhs = p.matmul(&a).unwrap().matmul(&q.mt().unwrap()).unwrap();
        let rhs = l.matmul(&u).unwrap();
        let det_pq = (&p.det().unwrap() * &q.det().unwrap()).real();
        let out = run(&[&lhs, &rhs, &parity, &det_pq, &l, &u]);
        assert_close(&values(&out[0]), &values(&out[1]), 1e-12, "P A Qᵀ = L U");
        assert_close(
            &values(&out[2]),
            &values(&out[3]),
            0.0,
            "parity = det P det Q",
        );
        let (lv, uv) = (values(&out[4]), values(&out[5]));
        for b in 0..2 {
            let (lb, ub) = (&lv[b * n * n..], &uv[b * n * n..]);
            for j in 0..n {
                for i in 0..n {
                    let (li, ui) = (lb[i + j * n], ub[i + j * n]);
                    match i.cmp(&j) {
                        std::cmp::Ordering::Less => assert_eq!(li.norm(), 0.0),
                        std::cmp::Ordering::Equal => assert_eq!(li, c(1.0, 0.0)),
                        std::cmp::Ordering::Greater => assert_eq!(ui.norm(), 0.0),
                    }
                    // complete pivoting: every multiplier has modulus at most 1, and each
                    // pivot dominates the rest of its row of U
                    assert!(li.norm() <= 1.0 + 1e-12, "{dt} L[{i},{j}] = {li}");
                    assert!(
                        j < i || ub[i + i * n].norm() + 1e-12 >= ui.norm(),
                        "{dt} U[{i},{j}] = {ui} exceeds its pivot"
                    );
                }
            }
        }
    }
}

#[test]
fn full_piv_lu_takes_an_off_column_pivot_and_handles_rank_deficiency() {
    // the largest entry (100) is in column 1: Q swaps the columns, U starts with 100
    let a = traced(
        DType::F64,
        &[2, 2],
        &[c(1.0, 0.0), c(2.0, 0.0), c(100.0, 0.0), c(3.0, 0.0)],
    );
    let (p, l, u, q, parity) = a.full_piv_lu().unwrap();
    let out = run(&[&q, &u, &parity, &p, &l]);
    assert_close(
        &values(&out[0]),
        &[c(0.0, 0.0), c(1.0, 0.0), c(1.0, 0.0), c(0.0, 0.0)],
        0.0,
        "Q",
    );
    assert_eq!(values(&out[1])[0], c(100.0, 0.0));
    // rank 1: the factorization still holds, U's last row is zero
    let r1 = traced(
        DType::F64,
        &[2, 2],
        &[c(1.0, 0.0), c(2.0, 0.0), c(3.0, 0.0), c(6.0, 0.0)],
    );
    let (p, l, u, q, _) = r1.full_piv_lu().unwrap();
    let lhs = p.matmul(&r1).unwrap().matmul(&q.mt().unwrap()).unwrap();
    let out = run(&[&lhs, &l.matmul(&u).unwrap(), &u]);
    assert_close(
        &values(&out[0]),
        &values(&out[1]),
        1e-14,
        "rank-1 P A Qᵀ = L U",
    );
    assert_eq!(values(&out[2])[0], c(6.0, 0.0));
    assert!(values(&out[2])[3].norm() < 1e-15);
}

#[test]
fn full_piv_lu_solve_values_batches_vectors_and_errors() {
    // upstream's example: [[0, 1], [2, 3]] x = [-1, 5] → x = [4, -1]
    let a = traced(
        DType::F64,
        &[2, 2],
        &[c(0.0, 0.0), c(2.0, 0.0), c(1.0, 0.0), c(3.0, 0.0)],
    );
    let bm = traced(DType::F64, &[2, 1], &[c(-1.0, 0.0), c(5.0, 0.0)]);
    let bv = traced(DType::F64, &[2], &[c(-1.0, 0.0), c(5.0, 0.0)]);
    let xm = a.full_piv_lu_solve(&bm).unwrap();
    let xv = a.full_piv_lu_solve(&bv).unwrap();
    assert_eq!(xm.shape().unwrap(), vec![2, 1]);
    assert_eq!(xv.shape().unwrap(), vec![2]);
    let out = run(&[&xm, &xv]);
    let want = [c(4.0, 0.0), c(-1.0, 0.0)];
    assert_close(&values(&out[0]), &want, 1e-15, "full_piv_lu_solve");
    assert_close(&values(&out[1]), &want, 1e-15, "full_piv_lu_solve vector");
    // batched, both dtypes: equal to solve
    let (n, k, b) = (4, 2, 3);
    for dt in DT {
        let mut rng = Rng::new(12);
        let x = rng.vec(n * n * b, dt.is_complex());
        let rhs = rng.vec(n * k * b, dt.is_complex());
        let (a, bt) = (traced(dt, &[n, n, b], &x), traced(dt, &[n, k, b], &rhs));
        let out = run(&[&a.full_piv_lu_solve(&bt).unwrap(), &a.solve(&bt).unwrap()]);
        assert_close(&values(&out[0]), &values(&out[1]), 1e-10, "batched");
    }
    // errors: a shape mismatch names the op; a singular matrix fails at run time
    let bad = traced(DType::F64, &[3, 1], &Rng::new(1).vec(3, false));
    let msg = a.full_piv_lu_solve(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("full_piv_lu_solve") && msg.contains("do not match"),
        "{msg}"
    );
    let rect = traced(DType::F64, &[2, 3], &Rng::new(1).vec(6, false));
    let msg = rect.full_piv_lu().unwrap_err().to_string();
    assert!(
        msg.contains("full_piv_lu") && msg.contains("square"),
        "{msg}"
    );
    let sing = traced(
        DType::F64,
        &[2, 2],
        &[c(1.0, 0.0), c(2.0, 0.0), c(2.0, 0.0), c(4.0, 0.0)],
    );
    let x = sing.full_piv_lu_solve(&bm).unwrap();
    let err = executor()
        .run_many(&compile(&[&x]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("singular"), "singular solve: {err:?}");
}

#[test]
fn full_piv_lu_gradients_match_finite_differences() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(13);
        let x = general(&mut rng, n, cx);
        let rhs = rng.vec(n * 2, cx);
        let (dx, drhs) = (rng.vec(n * n, cx), rng.vec(n * 2, cx));
        let bt = traced(dt, &[n, 2], &rhs);
        let at = traced(dt, &[n, n], &x);
        let f = |a: &TracedTensor| wsum(&a.full_piv_lu_solve(&bt).unwrap(), 5);
        check_grad(dt, &[n, n], &x, &dx, f, "full_piv_lu_solve in A");
        check_hvp(dt, &[n, n], &x, &dx, f, "full_piv_lu_solve in A");
        let g = |b: &TracedTensor| wsum(&at.full_piv_lu_solve(b).unwrap(), 6);
        check_grad(dt, &[n, 2], &rhs, &drhs, g, "full_piv_lu_solve in B");
        let h = |a: &TracedTensor| {
            let (_, l, u, _, _) = a.full_piv_lu().unwrap();
            &wsum(&l, 7) + &wsum(&u, 8)
        };
        check_grad(dt, &[n, n], &x, &dx, h, "full_piv_lu factors");
    }
}

#[test]
fn eager_full_piv_lu() {
    let ctx = eager_ctx();
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![0.0_f64, 2.0, 1.0, 3.0])
        .unwrap()
        .requires_grad(true);
    let (_, _, u, _, parity) = a.full_piv_lu().unwrap();
    assert_eq!(u.value().unwrap().as_slice::<f64>().unwrap()[0], 3.0);
    assert_eq!(parity.value().unwrap().as_slice::<f64>().unwrap(), &[1.0]);
    let b = ctx
        .from_vec_col_major(vec![2], vec![-1.0_f64, 5.0])
        .unwrap();
    let x = a.full_piv_lu_solve(&b).unwrap();
    assert_eq!(x.value().unwrap().as_slice::<f64>().unwrap(), &[4.0, -1.0]);
    // d Σx / dA = -(A⁻ᵀ 1) xᵀ = [[2, -0.5], [-2, 0.5]]
    x.reduce_sum(&[0]).unwrap().backward().unwrap();
    let g = a.grad().unwrap();
    let want = [2.0, -2.0, -0.5, 0.5];
    for (x, y) in g.as_slice::<f64>().unwrap().iter().zip(want) {
        assert!((x - y).abs() < 1e-14, "{g:?} vs {want:?}");
    }
}
