//! Degenerate numerical inputs: singular matrices (det, slogdet, lu are exact and finite,
//! solve and derivatives that need an inverse are errors), extreme scales (svd and eigh of
//! 1e300·A are 1e300 times those of A), and non-finite entries (every kernel reports NaN /
//! infinity, naming the op, the operand and the batch element).

mod common;
use common::*;
use tenferro_linalg::{TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, GraphCompiler, RuntimeError, TracedTensor};

const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::C32, DType::C64];

fn real(v: &[f64]) -> Vec<C> {
    v.iter().map(|&x| c(x, 0.0)).collect()
}

fn run_err(outs: &[&TracedTensor]) -> RuntimeError {
    let p = GraphCompiler::new().compile_many(outs).unwrap();
    executor().run_many(&p).unwrap_err()
}

fn assert_msg(e: impl std::fmt::Display, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} lacks {p:?}");
    }
}

/// Singular matrices (column-major, `n x n`) whose LU has an exactly zero pivot before
/// the last column, where an elimination that divides by the pivot produces NaN.
fn singular_cases() -> Vec<(usize, Vec<C>)> {
    let mut rng = Rng::new(3);
    // A random 4 x 4 matrix whose third column is zero.
    let mut zero_col = rng.vec(16, false);
    for i in 0..4 {
        zero_col[i + 2 * 4] = c(0.0, 0.0);
    }
    vec![
        // [[0, 0], [0, 1]].
        (2, real(&[0.0, 0.0, 0.0, 1.0])),
        (2, real(&[0.0; 4])),
        // Rows [1,1,1], [1,1,2], [1,1,3]: the second pivot is zero, the third is not.
        (3, real(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0])),
        (4, zero_col),
    ]
}

/// Checks `A = P L U` with `L` unit lower (multipliers of modulus <= 1), `U` upper, all
/// finite, and returns `diag(U)`.
fn check_lu(dt: DType, n: usize, a: &[C], p: &[C], l: &[C], u: &[C], what: &str) -> Vec<C> {
    for (name, m) in [("P", p), ("L", l), ("U", u)] {
        assert!(
            m.iter().all(|z| z.re.is_finite() && z.im.is_finite()),
            "{what}: {name} is not finite: {m:?}"
        );
    }
    for j in 0..n {
        for i in 0..n {
            if i < j {
                assert_eq!(l[i + j * n], c(0.0, 0.0), "{what}: L upper entry");
            }
            if i > j {
                assert_eq!(u[i + j * n], c(0.0, 0.0), "{what}: U lower entry");
                assert!(l[i + j * n].norm() <= 1.0 + 1e-6, "{what}: |L| > 1");
            }
        }
        assert_eq!(l[j + j * n], c(1.0, 0.0), "{what}: diag(L)");
    }
    let plu = matmul(p, &matmul(l, u, n, n, n), n, n, n);
    assert_close(&plu, a, tol(dt), &format!("{what}: P L U"));
    (0..n).map(|i| u[i + i * n]).collect()
}

#[test]
fn lu_of_a_singular_matrix_is_finite_and_reconstructs() {
    for dt in DTYPES {
        for (k, (n, a)) in singular_cases().into_iter().enumerate() {
            let what = format!("{dt} case {k}");
            let (p, l, u) = traced(dt, &[n, n], &a).lu().unwrap();
            let out = run(&[&p, &l, &u]);
            let [p, l, u] = [0, 1, 2].map(|i| values(&out[i]));
            let d = check_lu(dt, n, &a, &p, &l, &u, &what);
            assert!(d.contains(&c(0.0, 0.0)), "{what}: diag(U) = {d:?}");
        }
    }
}

#[test]
fn lu_of_a_large_singular_matrix_is_finite_and_reconstructs() {
    // Large enough for the blocked, recursive factorization; zero column in the middle.
    let n = 200;
    let mut rng = Rng::new(9);
    let mut a = rng.vec(n * n, false);
    for i in 0..n {
        a[i + 77 * n] = c(0.0, 0.0);
    }
    let (p, l, u) = traced(DType::F64, &[n, n], &a).lu().unwrap();
    let out = run(&[&p, &l, &u]);
    let [p, l, u] = [0, 1, 2].map(|i| values(&out[i]));
    let d = check_lu(DType::F64, n, &a, &p, &l, &u, "200 x 200");
    assert_eq!(d[77], c(0.0, 0.0));
}

#[test]
fn det_and_slogdet_of_a_singular_matrix_are_zero_and_minus_infinity() {
    for dt in DTYPES {
        for (k, (n, a)) in singular_cases().into_iter().enumerate() {
            let x = traced(dt, &[n, n], &a);
            let (s, l) = x.slogdet().unwrap();
            let out = run(&[&x.det().unwrap(), &s, &l]);
            assert_eq!(values(&out[0]), vec![c(0.0, 0.0)], "{dt} case {k}: det");
            assert_eq!(values(&out[1]), vec![c(0.0, 0.0)], "{dt} case {k}: sign");
            assert_eq!(
                values(&out[2]),
                vec![c(f64::NEG_INFINITY, 0.0)],
                "{dt} case {k}: logabsdet"
            );
        }
    }
    // In a batch, a singular element does not disturb a regular one.
    let a = real(&[0.0, 0.0, 0.0, 1.0, 2.0, 1.0, 1.0, 3.0]);
    let out = run(&[&traced(DType::F64, &[2, 2, 2], &a).det().unwrap()]);
    assert_close(&values(&out[0]), &real(&[0.0, 5.0]), 1e-12, "batched det");
}

#[test]
fn solve_with_a_singular_matrix_is_an_error() {
    let a = traced(DType::F64, &[2, 2], &real(&[0.0, 0.0, 0.0, 1.0]));
    let b = traced(DType::F64, &[2, 1], &real(&[1.0, 1.0]));
    assert_msg(
        run_err(&[&a.solve(&b).unwrap()]),
        &["linalg.solve", "singular", "zero pivot in column 0"],
    );
}

/// Column-major `A` and the same matrix times `scale`.
fn scaled_pair(rng: &mut Rng, m: usize, n: usize, cx: bool, scale: f64) -> (Vec<C>, Vec<C>) {
    let a = rng.vec(m * n, cx);
    let b = a.iter().map(|z| z * scale).collect();
    (a, b)
}

#[test]
fn svd_of_a_huge_or_tiny_matrix_is_the_scaled_svd() {
    for dt in DTYPES {
        let exps: &[i32] = if matches!(dt, DType::F32 | DType::C32) {
            &[30, -30, 37]
        } else {
            &[300, -300, 307, -310]
        };
        for &e in exps {
            let scale: f64 = format!("1e{e}").parse().unwrap();
            for (m, n) in [(3, 3), (4, 2), (2, 5)] {
                let what = format!("{dt} 1e{e} {m}x{n}");
                let mut rng = Rng::new(5);
                let (a, big) = scaled_pair(&mut rng, m, n, dt.is_complex(), scale);
                let s_ref = values(&run(&[&traced(dt, &[m, n], &a).svdvals().unwrap()])[0]);
                let x = traced(dt, &[m, n], &big);
                let (u, s, vh) = x.svd().unwrap();
                let out = run(&[&u, &s, &vh, &x.svdvals().unwrap()]);
                let k = m.min(n);
                for si in [values(&out[1]), values(&out[3])] {
                    let back: Vec<C> = si.iter().map(|z| z / scale).collect();
                    assert_close(&back, &s_ref, 10.0 * tol(dt), &format!("{what}: S"));
                }
                // U diag(S / scale) Vh = A.
                let mut us = values(&out[0]);
                let s = values(&out[1]);
                for j in 0..k {
                    for i in 0..m {
                        us[i + j * m] *= s[j] / scale;
                    }
                }
                let rec = matmul(&us, &values(&out[2]), m, k, n);
                assert_close(&rec, &a, 10.0 * tol(dt), &format!("{what}: U S Vh"));
            }
        }
    }
}

#[test]
fn eigh_of_a_huge_or_tiny_matrix_is_the_scaled_eigh() {
    let n = 3;
    for dt in DTYPES {
        let exps: &[i32] = if matches!(dt, DType::F32 | DType::C32) {
            &[30, -30, 37]
        } else {
            &[300, -300, 307, -310]
        };
        for &e in exps {
            let scale: f64 = format!("1e{e}").parse().unwrap();
            let what = format!("{dt} 1e{e}");
            let mut rng = Rng::new(6);
            let a = hermitian(&mut rng, n, dt.is_complex());
            let big: Vec<C> = a.iter().map(|z| z * scale).collect();
            let w_ref = values(&run(&[&traced(dt, &[n, n], &a).eigvalsh().unwrap()])[0]);
            let x = traced(dt, &[n, n], &big);
            let (w, v) = x.eigh().unwrap();
            let out = run(&[&w, &v, &x.eigvalsh().unwrap()]);
            for wi in [values(&out[0]), values(&out[2])] {
                let back: Vec<C> = wi.iter().map(|z| z / scale).collect();
                assert_close(&back, &w_ref, 10.0 * tol(dt), &format!("{what}: W"));
            }
            // V diag(W / scale) Vᴴ = A.
            let mut vw = values(&out[1]);
            for j in 0..n {
                for i in 0..n {
                    vw[i + j * n] *= out_w(&out[0], j) / scale;
                }
            }
            let rec = matmul(&vw, &adjoint(&values(&out[1]), n, n), n, n, n);
            assert_close(&rec, &a, 10.0 * tol(dt), &format!("{what}: V W Vᴴ"));
        }
    }
}

fn out_w(w: &tenferro_runtime::Tensor, j: usize) -> f64 {
    values(w)[j].re
}

const NONFINITE: &str = "contains NaN or infinity";

#[test]
fn nan_or_infinite_input_is_an_error_naming_the_op() {
    for dt in DTYPES {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            // A regular SPD batch element, then one with a bad entry in its lower triangle.
            let mut a = real(&[4.0, 1.0, 1.0, 3.0, 4.0, 1.0, 1.0, 3.0]);
            a[4 + 1] = c(bad, 0.0);
            let x = traced(dt, &[2, 2, 2], &a);
            let b = traced(dt, &[2, 1, 2], &real(&[1.0, 1.0, 1.0, 1.0]));
            let what = |op: &str| format!("{dt} {bad} {op}");
            let cases: Vec<(&str, TracedTensor)> = vec![
                ("linalg.cholesky", x.cholesky().unwrap()),
                ("linalg.solve", x.solve(&b).unwrap()),
                ("linalg.solve", x.inv().unwrap()),
                (
                    "linalg.triangular_solve",
                    x.triangular_solve(&b, TriangularSolve::default()).unwrap(),
                ),
                ("linalg.lu", x.det().unwrap()),
                ("linalg.lu", x.slogdet().unwrap().1),
                ("linalg.lu", x.lu().unwrap().2),
                ("linalg.qr", x.qr().unwrap().1),
                ("linalg.svd", x.svd().unwrap().1),
                ("linalg.svd", x.svdvals().unwrap()),
                ("linalg.eigh", x.eigh().unwrap().0),
                ("linalg.eigh", x.eigvalsh().unwrap()),
            ];
            for (op, y) in cases {
                let e = run_err(&[&y]);
                assert!(
                    matches!(e, RuntimeError::Kernel { op: ref o, .. } if o == op),
                    "{}: {e:?}",
                    what(op)
                );
                assert_msg(&e, &[op, NONFINITE, "batch element 1"]);
            }
            // A bad right-hand side is named as such.
            let good = traced(
                dt,
                &[2, 2, 2],
                &real(&[4.0, 1.0, 1.0, 3.0, 4.0, 1.0, 1.0, 3.0]),
            );
            let bb = traced(dt, &[2, 1, 2], &real(&[1.0, 1.0, bad, 1.0]));
            for (op, y) in [
                ("linalg.solve", good.solve(&bb).unwrap()),
                (
                    "linalg.triangular_solve",
                    good.triangular_solve(&bb, TriangularSolve::default())
                        .unwrap(),
                ),
            ] {
                assert_msg(
                    run_err(&[&y]),
                    &[op, "right-hand side", NONFINITE, "batch element 1"],
                );
            }
        }
    }
}

#[test]
fn all_nan_and_one_nan_inputs_fail_alike() {
    for dt in DTYPES {
        for n_bad in [1, 4] {
            let mut a = real(&[2.0, 1.0, 1.0, 2.0]);
            for z in a.iter_mut().take(n_bad) {
                *z = c(f64::NAN, 0.0);
            }
            let x = traced(dt, &[2, 2], &a);
            for (op, y) in [
                ("linalg.eigh", x.eigvalsh().unwrap()),
                ("linalg.eigh", x.eigh().unwrap().1),
                ("linalg.svd", x.svdvals().unwrap()),
                ("linalg.cholesky", x.cholesky().unwrap()),
                ("linalg.lu", x.det().unwrap()),
                ("linalg.qr", x.qr().unwrap().0),
            ] {
                let e = run_err(&[&y]);
                assert_msg(&e, &[op, "input", NONFINITE]);
                // Not a batch: no batch element is named.
                assert!(!e.to_string().contains("batch"), "{e}");
            }
        }
    }
}

#[test]
fn non_finite_entries_outside_the_read_triangle_are_ignored() {
    // cholesky and eigh read only the lower triangle, a lower triangular solve only its
    // lower triangle (and with a unit diagonal not the diagonal).
    let a = real(&[4.0, 1.0, f64::NAN, 3.0]);
    let x = traced(DType::F64, &[2, 2], &a);
    let l = x.cholesky().unwrap();
    let w = x.eigvalsh().unwrap();
    let b = traced(DType::F64, &[2, 1], &real(&[4.0, 5.0]));
    let t = x.triangular_solve(&b, TriangularSolve::default()).unwrap();
    let unit = traced(
        DType::F64,
        &[2, 2],
        &real(&[f64::NAN, 1.0, f64::NAN, f64::NAN]),
    )
    .triangular_solve(
        &b,
        TriangularSolve {
            unit_diagonal: true,
            ..TriangularSolve::default()
        },
    )
    .unwrap();
    let out = run(&[&l, &w, &t, &unit]);
    assert_close(&values(&out[0])[..2], &real(&[2.0, 0.5]), 1e-12, "L");
    assert!(values(&out[1]).iter().all(|z| z.re.is_finite()));
    assert_close(&values(&out[2]), &real(&[1.0, 4.0 / 3.0]), 1e-12, "L x = b");
    assert_close(&values(&out[3]), &real(&[4.0, 1.0]), 1e-12, "unit L x = b");
}
