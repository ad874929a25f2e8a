//! Forward results of every linalg op against defining identities (A = L·Lᴴ, Q·R,
//! U·S·Vh, ...) for f32, f64, c32, c64, with a batch axis, run on the CPU backend.

mod common;
use common::*;
use tenferro_linalg::{ops, TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::DType;

const DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::C32, DType::C64];
const NB: usize = 2;

fn batch_of(rng: &mut Rng, f: impl Fn(&mut Rng) -> Vec<C>) -> Vec<C> {
    (0..NB).flat_map(|_| f(rng)).collect()
}

#[test]
fn cholesky_reconstructs_and_reads_only_the_lower_triangle() {
    let n = 3;
    for (s, dt) in DTYPES.into_iter().enumerate() {
        let mut rng = Rng::new(s as u64);
        let a = batch_of(&mut rng, |r| spd(r, n, dt.is_complex()));
        // Garbage in the strict upper triangle must be ignored.
        let mut a_in = a.clone();
        for b in 0..NB {
            a_in[b * 9 + 2 * 3] = c(100.0, 0.0);
        }
        let l = traced(dt, &[n, n, NB], &a_in).cholesky().unwrap();
        let out = values(&run(&[&l])[0]);
        for b in 0..NB {
            let lb = block(&out, 9, b);
            for j in 0..n {
                for i in 0..j {
                    assert_eq!(lb[i + j * n], c(0.0, 0.0), "{dt}: upper entry");
                }
                assert!(
                    lb[j + j * n].re > 0.0 && lb[j + j * n].im.abs() <= tol(dt),
                    "{dt}: diag(L) = {}",
                    lb[j + j * n]
                );
            }
            let rec = matmul(&lb, &adjoint(&lb, n, n), n, n, n);
            assert_close(&rec, &block(&a, 9, b), tol(dt), &format!("{dt} L·Lᴴ"));
        }
    }
}

#[test]
fn triangular_solve_all_variants() {
    let n = 3;
    let k = 2;
    for dt in [DType::F64, DType::C64, DType::F32] {
        let mut rng = Rng::new(7);
        let cx = dt.is_complex();
        let mut a = rng.vec(n * n, cx);
        for i in 0..n {
            a[i + i * n] += c(3.0, 0.0);
        }
        for lower in [true, false] {
            for left in [true, false] {
                for adjoint_a in [true, false] {
                    for unit in [true, false] {
                        let how = TriangularSolve {
                            lower,
                            left,
                            adjoint: adjoint_a,
                            unit_diagonal: unit,
                        };
                        let bshape = if left { [n, k] } else { [k, n] };
                        let bv = rng.vec(n * k, cx);
                        let x = traced(dt, &[n, n], &a)
                            .triangular_solve(&traced(dt, &bshape, &bv), how)
                            .unwrap();
                        let xv = values(&run(&[&x])[0]);
                        // The matrix the solver sees.
                        let mut t = a.clone();
                        for j in 0..n {
                            for i in 0..n {
                                let keep = if lower { i >= j } else { i <= j };
                                if !keep {
                                    t[i + j * n] = c(0.0, 0.0);
                                }
                                if unit && i == j {
                                    t[i + j * n] = c(1.0, 0.0);
                                }
                            }
                        }
                        let opa = if adjoint_a { adjoint(&t, n, n) } else { t };
                        let rec = if left {
                            matmul(&opa, &xv, n, n, k)
                        } else {
                            matmul(&xv, &opa, k, n, n)
                        };
                        assert_close(&rec, &bv, tol(dt) * 10.0, &format!("{dt} {how:?}"));
                    }
                }
            }
        }
    }
}

#[test]
fn solve_inv_and_adjoint_solve() {
    let n = 3;
    for (s, dt) in DTYPES.into_iter().enumerate() {
        let mut rng = Rng::new(10 + s as u64);
        let cx = dt.is_complex();
        let a = rng.vec(n * n * NB, cx);
        let bm = rng.vec(n * 2 * NB, cx);
        let bv = rng.vec(n * NB, cx);
        let at = traced(dt, &[n, n, NB], &a);
        let x = at.solve(&traced(dt, &[n, 2, NB], &bm)).unwrap();
        let xv = at.solve(&traced(dt, &[n, NB], &bv)).unwrap();
        assert_eq!(xv.shape().unwrap(), vec![n, NB]);
        let xa = ops::solve_op(&at, &traced(dt, &[n, 2, NB], &bm), true).unwrap();
        let inv = at.inv().unwrap();
        let out = run(&[&x, &xv, &xa, &inv]);
        let (x, xv, xa, inv) = (
            values(&out[0]),
            values(&out[1]),
            values(&out[2]),
            values(&out[3]),
        );
        let t = tol(dt) * 100.0;
        for b in 0..NB {
            let ab = block(&a, 9, b);
            assert_close(
                &matmul(&ab, &block(&x, 6, b), n, n, 2),
                &block(&bm, 6, b),
                t,
                "A X = B",
            );
            assert_close(
                &matmul(&ab, &block(&xv, 3, b), n, n, 1),
                &block(&bv, 3, b),
                t,
                "A x = b",
            );
            assert_close(
                &matmul(&adjoint(&ab, n, n), &block(&xa, 6, b), n, n, 2),
                &block(&bm, 6, b),
                t,
                "Aᴴ X = B",
            );
            assert_close(
                &matmul(&ab, &block(&inv, 9, b), n, n, n),
                &eye(n),
                t,
                "A A⁻¹ = I",
            );
        }
    }
}

fn det3(a: &[C]) -> C {
    let m = |i: usize, j: usize| a[i + 3 * j];
    m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0))
}

#[test]
fn lu_det_slogdet() {
    let n = 3;
    for (s, dt) in DTYPES.into_iter().enumerate() {
        let mut rng = Rng::new(20 + s as u64);
        let a = rng.vec(n * n * NB, dt.is_complex());
        let at = traced(dt, &[n, n, NB], &a);
        let (p, l, u) = at.lu().unwrap();
        let det = at.det().unwrap();
        let (sign, logabs) = at.slogdet().unwrap();
        assert_eq!(det.shape().unwrap(), vec![NB]);
        assert_eq!(logabs.dtype().unwrap(), dt.real());
        let out = run(&[&p, &l, &u, &det, &sign, &logabs]);
        let v: Vec<Vec<C>> = out.iter().map(values).collect();
        let t = tol(dt) * 10.0;
        for b in 0..NB {
            let (pb, lb, ub) = (block(&v[0], 9, b), block(&v[1], 9, b), block(&v[2], 9, b));
            for j in 0..n {
                assert_eq!(lb[j + j * n], c(1.0, 0.0));
                for i in 0..j {
                    assert_eq!(lb[i + j * n], c(0.0, 0.0));
                    assert_eq!(ub[j + i * n], c(0.0, 0.0));
                }
            }
            // P is a permutation matrix.
            let ptp = matmul(&adjoint(&pb, n, n), &pb, n, n, n);
            assert_close(&ptp, &eye(n), 0.0, "PᵀP");
            let rec = matmul(&pb, &matmul(&lb, &ub, n, n, n), n, n, n);
            assert_close(&rec, &block(&a, 9, b), t, &format!("{dt} P L U"));
            let d = det3(&block(&a, 9, b));
            assert_close(&[v[3][b]], &[d], t, "det");
            let from_slog = v[4][b] * v[5][b].re.exp();
            assert_close(&[from_slog], &[d], t, "sign·exp(logabsdet)");
            assert!((v[4][b].norm() - 1.0).abs() < t, "|sign| = 1");
        }
    }
}

#[test]
fn qr_reconstructs_with_orthonormal_q_and_nonnegative_diagonal() {
    for (s, dt) in DTYPES.into_iter().enumerate() {
        for (m, n) in [(4, 3), (3, 3), (2, 4)] {
            let mut rng = Rng::new(30 + s as u64);
            let k = m.min(n);
            let a = rng.vec(m * n * NB, dt.is_complex());
            let (q, r) = traced(dt, &[m, n, NB], &a).qr().unwrap();
            assert_eq!(q.shape().unwrap(), vec![m, k, NB]);
            assert_eq!(r.shape().unwrap(), vec![k, n, NB]);
            let out = run(&[&q, &r]);
            let (qv, rv) = (values(&out[0]), values(&out[1]));
            let t = tol(dt) * 10.0;
            for b in 0..NB {
                let (qb, rb) = (block(&qv, m * k, b), block(&rv, k * n, b));
                assert_close(
                    &matmul(&qb, &rb, m, k, n),
                    &block(&a, m * n, b),
                    t,
                    &format!("{dt} {m}x{n} QR"),
                );
                assert_close(
                    &matmul(&adjoint(&qb, m, k), &qb, k, m, k),
                    &eye(k),
                    t,
                    "QᴴQ",
                );
                for j in 0..n {
                    for i in (j + 1)..k {
                        assert_eq!(rb[i + j * k], c(0.0, 0.0), "R upper");
                    }
                }
                for i in 0..k {
                    let d = rb[i + i * k];
                    assert!(d.re >= 0.0 && d.im.abs() <= t, "{dt}: diag(R) = {d}");
                }
            }
        }
    }
}

#[test]
fn svd_reconstructs_and_svdvals_agree() {
    for (s, dt) in DTYPES.into_iter().enumerate() {
        for (m, n) in [(4, 3), (3, 3), (2, 4)] {
            let mut rng = Rng::new(40 + s as u64);
            let k = m.min(n);
            let a = rng.vec(m * n * NB, dt.is_complex());
            let at = traced(dt, &[m, n, NB], &a);
            let (u, sv, vh) = at.svd().unwrap();
            let vals = at.svdvals().unwrap();
            assert_eq!(sv.dtype().unwrap(), dt.real());
            let out = run(&[&u, &sv, &vh, &vals]);
            let v: Vec<Vec<C>> = out.iter().map(values).collect();
            let t = tol(dt) * 10.0;
            assert_close(&v[3], &v[1], t, "svdvals = S");
            for b in 0..NB {
                let (ub, sb, vb) = (
                    block(&v[0], m * k, b),
                    block(&v[1], k, b),
                    block(&v[2], k * n, b),
                );
                for i in 1..k {
                    assert!(sb[i - 1].re >= sb[i].re && sb[i].re >= 0.0, "descending");
                }
                let mut us = ub.clone();
                for j in 0..k {
                    for i in 0..m {
                        us[i + j * m] *= sb[j];
                    }
                }
                assert_close(
                    &matmul(&us, &vb, m, k, n),
                    &block(&a, m * n, b),
                    t,
                    &format!("{dt} {m}x{n} U S Vh"),
                );
                assert_close(
                    &matmul(&adjoint(&ub, m, k), &ub, k, m, k),
                    &eye(k),
                    t,
                    "UᴴU",
                );
                assert_close(
                    &matmul(&vb, &adjoint(&vb, k, n), k, n, k),
                    &eye(k),
                    t,
                    "Vh Vhᴴ",
                );
            }
        }
    }
}

#[test]
fn eigh_diagonalizes_the_hermitian_matrix_of_the_lower_triangle() {
    let n = 3;
    for (s, dt) in DTYPES.into_iter().enumerate() {
        let mut rng = Rng::new(50 + s as u64);
        let a = batch_of(&mut rng, |r| hermitian(r, n, dt.is_complex()));
        let mut a_in = a.clone();
        for b in 0..NB {
            a_in[b * 9 + 3] = c(42.0, 1.0); // entry (0, 1): upper triangle, ignored
        }
        let at = traced(dt, &[n, n, NB], &a_in);
        let (w, v) = at.eigh().unwrap();
        let wo = at.eigvalsh().unwrap();
        let out = run(&[&w, &v, &wo]);
        let (wv, vv, wov) = (values(&out[0]), values(&out[1]), values(&out[2]));
        let t = tol(dt) * 10.0;
        assert_close(&wov, &wv, t, "eigvalsh = W");
        for b in 0..NB {
            let (wb, vb, ab) = (block(&wv, n, b), block(&vv, 9, b), block(&a, 9, b));
            check_eigh(&ab, &wb, &vb, n, t, &format!("{dt}"));
        }
    }
}

/// `w` ascending, `A V = V diag(w)` and `VᴴV = I` (order `n`, within `t`).
fn check_eigh(a: &[C], w: &[C], v: &[C], n: usize, t: f64, what: &str) {
    assert!(
        w.windows(2).all(|p| p[0].re <= p[1].re),
        "{what}: ascending"
    );
    let mut vw = v.to_vec();
    for j in 0..n {
        for i in 0..n {
            vw[i + j * n] *= w[j];
        }
    }
    assert_close(
        &matmul(a, v, n, n, n),
        &vw,
        t,
        &format!("{what}: A V = V W"),
    );
    assert_close(
        &matmul(&adjoint(v, n, n), v, n, n, n),
        &eye(n),
        t,
        &format!("{what}: VᴴV"),
    );
}

#[test]
fn eigh_of_larger_orders_divides_and_conquers_correctly() {
    // Orders past the divide-and-conquer leaf size (64): random Hermitian matrices, and
    // one with every eigenvalue repeated (two identical diagonal blocks, which the merge
    // deflates).
    for (s, dt) in DTYPES.into_iter().enumerate() {
        let mut rng = Rng::new(70 + s as u64);
        let n = 150;
        let random = hermitian(&mut rng, n, dt.is_complex());
        let h = 70;
        let blk = hermitian(&mut rng, h, dt.is_complex());
        let mut twice = vec![c(0.0, 0.0); 4 * h * h];
        for j in 0..h {
            for i in 0..h {
                twice[i + j * 2 * h] = blk[i + j * h];
                twice[h + i + (h + j) * 2 * h] = blk[i + j * h];
            }
        }
        for (a, n) in [(random, n), (twice, 2 * h)] {
            let (w, v) = traced(dt, &[n, n], &a).eigh().unwrap();
            let out = run(&[&w, &v]);
            let (wv, vv) = (values(&out[0]), values(&out[1]));
            check_eigh(&a, &wv, &vv, n, tol(dt) * 20.0, &format!("{dt} n={n}"));
        }
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Random sizes and batches: cholesky reconstructs and solve has a small residual.
        #[test]
        fn cholesky_and_solve_random_sizes(n in 1usize..5, nb in 1usize..3, seed in 0u64..1000) {
            let mut rng = common::Rng::new(seed);
            let a: Vec<C> = (0..nb).flat_map(|_| spd(&mut rng, n, true)).collect();
            let b = rng.vec(n * nb, true);
            let at = traced(DType::C64, &[n, n, nb], &a);
            let l = at.cholesky().unwrap();
            let x = at.solve(&traced(DType::C64, &[n, 1, nb], &b)).unwrap();
            let out = run(&[&l, &x]);
            let (lv, xv) = (values(&out[0]), values(&out[1]));
            for k in 0..nb {
                let lb = block(&lv, n * n, k);
                let ab = block(&a, n * n, k);
                assert_close(&matmul(&lb, &adjoint(&lb, n, n), n, n, n), &ab, 1e-10, "L Lᴴ");
                assert_close(&matmul(&ab, &block(&xv, n, k), n, n, 1), &block(&b, n, k), 1e-10, "A x");
            }
        }
    }
}
