//! AD rules of every linalg op: gradients and JVPs against central finite differences
//! (f64 and c64), the vjp/jvp adjoint identity, Hessian-vector products (jvp of grad)
//! against finite differences of the gradient, and closed forms.

#[path = "common/checks.rs"]
mod checks;
mod common;
use checks::*;
use common::*;
use tenferro_linalg::{ops, TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, TracedTensor};

#[test]
fn cholesky_gradient_jvp_symmetry_and_adjoint() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(1);
        let a = spd(&mut rng, n, cx);
        let d = hermitian(&mut rng, n, cx);
        let g = check_grad(
            dt,
            &[n, n],
            &a,
            &d,
            |x| wsum(&x.cholesky().unwrap(), 5),
            "cholesky",
        );
        assert_close(
            &g,
            &adjoint(&g, n, n),
            1e-12,
            "cholesky gradient is Hermitian",
        );
        check_adjoint(dt, &[n, n], &a, |x| x.cholesky().unwrap(), "cholesky");
    }
}

#[test]
fn cholesky_batched_gradient() {
    let n = 2;
    let mut rng = Rng::new(2);
    let a: Vec<C> = (0..3).flat_map(|_| spd(&mut rng, n, false)).collect();
    let d: Vec<C> = (0..3).flat_map(|_| hermitian(&mut rng, n, false)).collect();
    check_grad(
        DType::F64,
        &[n, n, 3],
        &a,
        &d,
        |x| wsum(&x.cholesky().unwrap(), 6),
        "batched cholesky",
    );
}

#[test]
fn triangular_solve_in_matrix_and_rhs() {
    let n = 3;
    let variants = [
        TriangularSolve::default(),
        TriangularSolve {
            lower: false,
            adjoint: true,
            ..TriangularSolve::default()
        },
        TriangularSolve {
            left: false,
            ..TriangularSolve::default()
        },
        TriangularSolve {
            left: false,
            lower: false,
            adjoint: true,
            unit_diagonal: true,
        },
    ];
    for dt in DT {
        let cx = dt.is_complex();
        for (i, how) in variants.into_iter().enumerate() {
            let mut rng = Rng::new(10 + i as u64);
            let a = general(&mut rng, n, cx);
            let bshape = if how.left { [n, 2] } else { [2, n] };
            let b = rng.vec(2 * n, cx);
            let da = rng.vec(n * n, cx);
            let db = rng.vec(2 * n, cx);
            let bt = traced(dt, &bshape, &b);
            let at = traced(dt, &[n, n], &a);
            let what = format!("triangular_solve {how:?}");
            check_grad(
                dt,
                &[n, n],
                &a,
                &da,
                |x| wsum(&x.triangular_solve(&bt, how).unwrap(), 7),
                &what,
            );
            check_grad(
                dt,
                &bshape,
                &b,
                &db,
                |y| wsum(&at.triangular_solve(y, how).unwrap(), 8),
                &what,
            );
            check_adjoint(
                dt,
                &bshape,
                &b,
                |y| at.triangular_solve(y, how).unwrap(),
                &what,
            );
            check_adjoint(
                dt,
                &[n, n],
                &a,
                |x| x.triangular_solve(&bt, how).unwrap(),
                &what,
            );
        }
    }
}

#[test]
fn solve_and_inv() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(20);
        let a = general(&mut rng, n, cx);
        let b = rng.vec(2 * n, cx);
        let (da, db) = (rng.vec(n * n, cx), rng.vec(2 * n, cx));
        let (at, bt) = (traced(dt, &[n, n], &a), traced(dt, &[n, 2], &b));
        check_grad(
            dt,
            &[n, n],
            &a,
            &da,
            |x| wsum(&x.solve(&bt).unwrap(), 9),
            "solve (A)",
        );
        check_grad(
            dt,
            &[n, 2],
            &b,
            &db,
            |y| wsum(&at.solve(y).unwrap(), 9),
            "solve (B)",
        );
        check_grad(
            dt,
            &[n, 2],
            &b,
            &db,
            |y| wsum(&ops::solve_op(&at, y, true).unwrap(), 9),
            "adjoint solve (B)",
        );
        check_grad(
            dt,
            &[n, n],
            &a,
            &da,
            |x| wsum(&ops::solve_op(x, &bt, true).unwrap(), 9),
            "adjoint solve (A)",
        );
        check_grad(dt, &[n, n], &a, &da, |x| wsum(&x.inv().unwrap(), 10), "inv");
        check_adjoint(dt, &[n, n], &a, |x| x.inv().unwrap(), "inv");
    }
}

#[test]
fn lu_det_slogdet() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(30);
        let a = rng.vec(n * n, cx);
        let da = rng.vec(n * n, cx);
        check_grad(
            dt,
            &[n, n],
            &a,
            &da,
            |x| {
                let (_, l, u) = x.lu().unwrap();
                &wsum(&l, 11) + &wsum(&u, 12)
            },
            "lu",
        );
        check_grad(dt, &[n, n], &a, &da, |x| wsum(&x.det().unwrap(), 13), "det");
        check_grad(
            dt,
            &[n, n],
            &a,
            &da,
            |x| {
                let (s, l) = x.slogdet().unwrap();
                &wsum(&s, 14) + &wsum(&l, 15)
            },
            "slogdet",
        );
        check_adjoint(dt, &[n, n], &a, |x| x.lu().unwrap().2, "lu U");
    }
}

#[test]
fn qr_tall_and_square() {
    for dt in DT {
        let cx = dt.is_complex();
        for (m, n) in [(3, 3), (4, 2)] {
            let mut rng = Rng::new(40);
            let a = rng.vec(m * n, cx);
            let da = rng.vec(m * n, cx);
            check_grad(
                dt,
                &[m, n],
                &a,
                &da,
                |x| {
                    let (q, r) = x.qr().unwrap();
                    &wsum(&q, 16) + &wsum(&r, 17)
                },
                &format!("qr {m}x{n}"),
            );
            check_adjoint(dt, &[m, n], &a, |x| x.qr().unwrap().0, "qr Q");
        }
    }
}

/// A gauge-invariant function of the SVD: every factor contributes.
fn svd_loss(x: &TracedTensor) -> TracedTensor {
    let (u, s, vh) = x.svd().unwrap();
    let s2 = &s * &s;
    let v = adj(&vh);
    let terms = [
        wsum(&s, 18),
        wsum(&scaled(&u, &s2, &vh), 19),
        wsum(&scaled(&u, &s, &adj(&u)), 20),
        wsum(&scaled(&v, &s, &vh), 21),
    ];
    &(&(&terms[0] + &terms[1]) + &terms[2]) + &terms[3]
}

#[test]
fn svd_and_svdvals() {
    for dt in DT {
        let cx = dt.is_complex();
        for (m, n) in [(3, 3), (4, 2), (2, 3)] {
            let mut rng = Rng::new(50 + m as u64);
            let a = rng.vec(m * n, cx);
            let da = rng.vec(m * n, cx);
            let what = format!("svd {m}x{n}");
            check_grad(dt, &[m, n], &a, &da, svd_loss, &what);
            check_grad(
                dt,
                &[m, n],
                &a,
                &da,
                |x| wsum(&x.svdvals().unwrap(), 22),
                "svdvals",
            );
            check_adjoint(dt, &[m, n], &a, |x| x.svd().unwrap().1, "svd S");
        }
    }
}

fn eigh_loss(x: &TracedTensor) -> TracedTensor {
    let (w, v) = x.eigh().unwrap();
    let h = &(&w * &w) + &w;
    &wsum(&w, 23) + &wsum(&scaled(&v, &h, &adj(&v)), 24)
}

#[test]
fn eigh_and_eigvalsh() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(60);
        let a = hermitian(&mut rng, n, cx);
        let d = hermitian(&mut rng, n, cx);
        let g = check_grad(dt, &[n, n], &a, &d, eigh_loss, "eigh");
        assert_close(&g, &adjoint(&g, n, n), 1e-12, "eigh gradient is Hermitian");
        check_grad(
            dt,
            &[n, n],
            &a,
            &d,
            |x| wsum(&x.eigvalsh().unwrap(), 25),
            "eigvalsh",
        );
        check_adjoint(dt, &[n, n], &a, |x| x.eigvalsh().unwrap(), "eigvalsh");
    }
}

#[test]
fn hvp_through_cholesky_solve_and_eigh() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(70);
        let a = spd(&mut rng, n, cx);
        let v = hermitian(&mut rng, n, cx);
        check_hvp(
            dt,
            &[n, n],
            &a,
            &v,
            |x| wsum(&x.cholesky().unwrap(), 26),
            "cholesky",
        );
        let h = hermitian(&mut rng, n, cx);
        check_hvp(dt, &[n, n], &h, &v, eigh_loss, "eigh");
        let g = general(&mut rng, n, cx);
        let b = traced(dt, &[n, 2], &rng.vec(2 * n, cx));
        let dv = rng.vec(n * n, cx);
        check_hvp(
            dt,
            &[n, n],
            &g,
            &dv,
            |x| wsum(&x.solve(&b).unwrap(), 27),
            "solve",
        );
    }
}

#[test]
fn reverse_over_reverse_through_solve() {
    // grad(<grad f, v>) is the same Hessian-vector product.
    let n = 2;
    let mut rng = Rng::new(80);
    let a = general(&mut rng, n, false);
    let v = rng.vec(n * n, false);
    let ad = ad();
    let x = TracedTensor::input(DType::F64, &[n, n]);
    let b = traced(DType::F64, &[n, 1], &rng.vec(n, false));
    let g = ad.grad(&wsum(&x.solve(&b).unwrap(), 28), &x).unwrap();
    let vt = traced(DType::F64, &[n, n], &v);
    let hv_rr = ad.grad(&(&g * &vt).sum(), &x).unwrap();
    let hv_fr = ad.jvp(&g, &x, &vt).unwrap();
    let mut f = Func::new(x, &[&hv_rr, &hv_fr]);
    let out = f.eval(DType::F64, &[n, n], &a);
    assert_close(&out[0], &out[1], 1e-10, "grad-of-grad = jvp-of-grad");
}

#[test]
fn closed_forms() {
    let n = 3;
    let mut rng = Rng::new(90);
    let s = spd(&mut rng, n, false);
    let g = general(&mut rng, n, false);
    let ad = ad();
    let x = TracedTensor::input(DType::F64, &[n, n]);
    // d logdet(A) = A⁻ᵀ, through cholesky (2 Σ log Lᵢᵢ) and through slogdet.
    let l = x.cholesky().unwrap();
    let eye_t = traced(DType::F64, &[n, n], &eye(n));
    let logdet_chol = &(&l * &eye_t).reduce_sum(&[1]).log().sum() * 2.0;
    let g_chol = ad.grad(&logdet_chol, &x).unwrap();
    let g_slog = ad.grad(&x.slogdet().unwrap().1.sum(), &x).unwrap();
    let g_det = ad.grad(&x.det().unwrap().sum(), &x).unwrap();
    let inv_t = x.inv().unwrap().t().unwrap();
    let det = x.det().unwrap();
    // Σ eigenvalues = trace: gradient I. Σ singular values: gradient U Vh.
    let g_tr = ad.grad(&x.eigvalsh().unwrap().sum(), &x).unwrap();
    let g_nuc = ad.grad(&x.svdvals().unwrap().sum(), &x).unwrap();
    let (u, _, vh) = x.svd().unwrap();
    let uvh = u.matmul(&vh).unwrap();
    let mut f = Func::new(
        x,
        &[&g_chol, &g_slog, &g_det, &inv_t, &det, &g_tr, &g_nuc, &uvh],
    );
    let o = f.eval(DType::F64, &[n, n], &s);
    assert_close(&o[0], &o[3], 1e-10, "d logdet (cholesky) = A⁻ᵀ");
    assert_close(&o[1], &o[3], 1e-10, "d log|det| = A⁻ᵀ");
    assert_close(&o[5], &eye(n), 1e-10, "d trace = I");
    let o = f.eval(DType::F64, &[n, n], &g);
    assert_close(&o[1], &o[3], 1e-10, "d log|det| = A⁻ᵀ (general)");
    let want: Vec<C> = o[3].iter().map(|z| z * o[4][0]).collect();
    assert_close(&o[2], &want, 1e-10, "d det = det·A⁻ᵀ");
    assert_close(&o[6], &o[7], 1e-10, "d Σσ = U Vh");
}

#[test]
fn spec_example_gradient_values() {
    // d Σ chol(A) at A = diag(4, 9): diagonal 1/(2·Lᵢᵢ); the off-diagonal derivative
    // 1/L₀₀ = 1/2 is split symmetrically between (0, 1) and (1, 0).
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![4.0_f64, 0.0, 0.0, 9.0]);
    let g = ad()
        .grad(&a.cholesky().unwrap().reduce_sum(&[0, 1]), &a)
        .unwrap();
    let out = values(&run(&[&g])[0]);
    let want = [c(0.25, 0.0), c(0.25, 0.0), c(0.25, 0.0), c(1.0 / 6.0, 0.0)];
    assert_close(&out, &want, 1e-12, "spec gradient");
}

#[test]
fn batched_solve_svd_eigh_gradients() {
    let (n, nb) = (2, 3);
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(100);
        let a: Vec<C> = (0..nb).flat_map(|_| general(&mut rng, n, cx)).collect();
        let h: Vec<C> = (0..nb).flat_map(|_| hermitian(&mut rng, n, cx)).collect();
        let da = rng.vec(n * n * nb, cx);
        let dh: Vec<C> = (0..nb).flat_map(|_| hermitian(&mut rng, n, cx)).collect();
        let b = traced(dt, &[n, 1, nb], &rng.vec(n * nb, cx));
        let shape = [n, n, nb];
        check_grad(
            dt,
            &shape,
            &a,
            &da,
            |x| wsum(&x.solve(&b).unwrap(), 31),
            "batched solve",
        );
        check_grad(
            dt,
            &shape,
            &a,
            &da,
            |x| wsum(&x.det().unwrap(), 32),
            "batched det",
        );
        check_grad(
            dt,
            &shape,
            &a,
            &da,
            |x| wsum(&x.svdvals().unwrap(), 33),
            "batched svdvals",
        );
        check_grad(
            dt,
            &shape,
            &h,
            &dh,
            |x| wsum(&x.eigvalsh().unwrap(), 34),
            "batched eigvalsh",
        );
        check_grad(
            dt,
            &shape,
            &h,
            &dh,
            |x| {
                let (w, v) = x.eigh().unwrap();
                // |V|² weighted: gauge invariant per eigenvector.
                let vv = (&v * &v.conj()).real();
                &wsum(&vv, 35) + &wsum(&w, 36)
            },
            "batched eigh",
        );
    }
}

#[test]
fn degenerate_spectrum_behaviour() {
    // Eigenvalue derivatives stay finite at a repeated eigenvalue (d Σ w = I at A = I),
    // eigenvector derivatives divide by the zero gap and are not finite.
    let n = 2;
    let a = eye(n);
    let x = TracedTensor::input(DType::F64, &[n, n]);
    let ad = ad();
    let g_w = ad.grad(&x.eigvalsh().unwrap().sum(), &x).unwrap();
    let (_, v) = x.eigh().unwrap();
    let g_v = ad.grad(&wsum(&v, 37), &x).unwrap();
    let mut f = Func::new(x, &[&g_w, &g_v]);
    let out = f.eval(DType::F64, &[n, n], &a);
    assert_close(&out[0], &eye(n), 1e-12, "d Σ w at a repeated eigenvalue");
    assert!(
        out[1].iter().any(|z| !z.re.is_finite()),
        "eigenvector gradient at a repeated eigenvalue: {:?}",
        out[1]
    );
}

#[test]
fn det_derivative_at_a_singular_matrix_is_an_error_not_nan() {
    // d det = tr(adj(A) dA) is finite everywhere, but det is differentiated through its LU
    // (dU needs U⁻¹), so at a matrix with a zero pivot the derivative program fails with
    // the singular triangular solve instead of returning NaN.
    let x = TracedTensor::input(DType::F64, &[2, 2]);
    let ad = ad();
    let g = ad.grad(&x.det().unwrap(), &x).unwrap();
    let t = TracedTensor::input(DType::F64, &[2, 2]);
    let j = ad.jvp(&x.det().unwrap(), &x, &t).unwrap();
    for (what, y, inputs) in [("grad", &g, vec![&x]), ("jvp", &j, vec![&x, &t])] {
        let program = compile(&[y]);
        let a = real_t(&[0.0, 0.0, 0.0, 1.0]);
        let bind: Vec<_> = inputs.iter().map(|p| (*p, a.clone())).collect();
        let e = executor()
            .run_many_with_inputs(&program, &bind)
            .expect_err(what)
            .to_string();
        assert!(
            e.contains("linalg.triangular_solve") && e.contains("singular"),
            "{what}: {e}"
        );
    }
    // Away from singular matrices it is the cofactor matrix: [[d, -c], [-b, a]].
    let mut f = Func::new(x, &[&g]);
    let out = f.eval(
        DType::F64,
        &[2, 2],
        &[c(1.0, 0.0), c(2.0, 0.0), c(3.0, 0.0), c(5.0, 0.0)],
    );
    assert_close(
        &out[0],
        &[c(5.0, 0.0), c(-3.0, 0.0), c(-2.0, 0.0), c(1.0, 0.0)],
        1e-12,
        "d det",
    );
}

fn real_t(v: &[f64]) -> tenferro_runtime::Tensor {
    tenferro_runtime::Tensor::from_vec_col_major(vec![2, 2], v.to_vec()).unwrap()
}

/// The value and the derivative of eigenvalues or singular values compile to one
/// factorization (with vectors, which the rule needs): the values-only op declares the
/// op with vectors as its richer variant, and CSE keeps that one.
#[test]
fn values_and_their_derivative_share_one_factorization() {
    let n = 4;
    let ad = ad();
    let mut rng = Rng::new(41);
    let m = rng.vec(n * n, false);
    let sym: Vec<C> = (0..n * n)
        .map(|k| (m[k] + m[(k % n) * n + k / n]) * 0.5)
        .collect();
    let r = rng.vec(n * n, false);
    let dir: Vec<C> = (0..n * n)
        .map(|k| (r[k] + r[(k % n) * n + k / n]) * 0.5)
        .collect();
    let x = traced(DType::F64, &[n, n], &sym);
    let t = traced(DType::F64, &[n, n], &dir);
    let cases: [(&str, TracedTensor); 3] = [
        ("linalg.svd", x.svdvals().unwrap()),
        ("linalg.eigh", x.eigvalsh().unwrap()),
        ("linalg.eig", x.eigvals().unwrap()),
    ];
    for (name, vals) in cases {
        let d = ad.jvp(&vals, &x, &t).unwrap();
        let program = compile(&[&vals, &d]);
        let count = program
            .function()
            .insts()
            .iter()
            .filter(|i| matches!(&i.op, tenferro_ir::Op::Extension(e) if e.name == name))
            .count();
        assert_eq!(
            count,
            1,
            "{name}: {}",
            tenferro_ir::print(program.function())
        );
        // The shared values equal the values-only op's, and the JVP its finite difference.
        let alone = run(&[&vals]);
        let both = run(&[&vals, &d]);
        assert_close(&values(&both[0]), &values(&alone[0]), 1e-12, name);
        let h = 1e-6;
        let shifted = |s: f64| {
            let v: Vec<C> = sym.iter().zip(&dir).map(|(a, b)| a + b * s).collect();
            let xs = traced(DType::F64, &[n, n], &v);
            let out = match name {
                "linalg.svd" => xs.svdvals().unwrap(),
                "linalg.eigh" => xs.eigvalsh().unwrap(),
                _ => xs.eigvals().unwrap(),
            };
            values(&run(&[&out])[0])
        };
        let (p, q) = (shifted(h), shifted(-h));
        let fd: Vec<C> = p.iter().zip(&q).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        let got = values(&both[1]);
        if name != "linalg.eig" {
            assert_close(&got, &fd, 1e-6, name);
        }
    }
}
