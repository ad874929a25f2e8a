//! General eigendecomposition (`eig`, `eigvals`) and the matrix exponential (`expm`):
//! reconstructions (batched, f64 / c64), gauge, finite-difference gradients of gauge-fixed
//! and gauge-invariant losses, HVPs, degenerate spectra (a run-time error or the
//! regularised derivative, never NaN), exact exponentials and scipy reference values;
//! also the derivative of wide QR (`m < n`) and `eigh_with_options`.

#[path = "common/checks.rs"]
mod checks;
mod common;
use checks::*;
use common::*;
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt};
use tenferro_runtime::{DType, TracedTensor};

fn diag_mat(w: &TracedTensor, shape: &[usize]) -> TracedTensor {
    let r = w.ty().unwrap().rank();
    let dims: Vec<usize> = std::iter::once(1).chain(2..r + 1).collect();
    w.broadcast_in_dim(shape, &dims).unwrap()
}

#[test]
fn eig_reconstructs_batched_with_the_documented_gauge() {
    let (n, nb) = (4, 3);
    for dt in DT {
        let x = Rng::new(5).vec(n * n * nb, dt.is_complex());
        let a = traced(dt, &[n, n, nb], &x);
        let (w, v) = a.eig().unwrap();
        assert_eq!(w.ty().unwrap().dtype, DType::C64);
        assert_eq!(w.shape().unwrap(), vec![n, nb]);
        assert_eq!(v.shape().unwrap(), vec![n, n, nb]);
        let ac = a.convert(DType::C64).unwrap();
        let resid = &ac.matmul(&v).unwrap() - &(&v * &diag_mat(&w, &[n, n, nb]));
        let out = run(&[&resid, &v, &w, &a.eigvals().unwrap()]);
        assert_close(
            &values(&out[0]),
            &vec![c(0.0, 0.0); n * n * nb],
            1e-12,
            "A V - V W",
        );
        assert_close(&values(&out[3]), &values(&out[2]), 1e-12, "eigvals = eig W");
        let vv = values(&out[1]);
        for col in vv.chunks(n) {
            let nrm: f64 = col.iter().map(|z| z.norm_sqr()).sum();
            assert!((nrm - 1.0).abs() < 1e-12, "unit norm");
            let k = (0..n)
                .max_by(|&i, &j| col[i].norm().partial_cmp(&col[j].norm()).unwrap())
                .unwrap();
            assert!(col[k].im == 0.0 && col[k].re > 0.0, "gauge: {:?}", col[k]);
        }
    }
}

#[test]
fn eigvals_of_known_matrices() {
    // Rotation generator: ±i; upper triangular: its diagonal.
    let a = traced(
        DType::F64,
        &[2, 2],
        &[c(0.0, 0.0), c(1.0, 0.0), c(-1.0, 0.0), c(0.0, 0.0)],
    );
    let w = values(&run(&[&a.eigvals().unwrap()])[0]);
    let mut im: Vec<f64> = w.iter().map(|z| z.im).collect();
    im.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_close(
        &[c(im[0], 0.0), c(im[1], 0.0)],
        &[c(-1.0, 0.0), c(1.0, 0.0)],
        1e-14,
        "±i",
    );
    assert!(w.iter().all(|z| z.re.abs() < 1e-14));
    let t = [c(1.0, 0.0), c(0.0, 0.0), c(5.0, 0.0), c(-2.0, 0.0)];
    let w = values(&run(&[&traced(DType::F64, &[2, 2], &t).eigvals().unwrap()])[0]);
    let mut re: Vec<f64> = w.iter().map(|z| z.re).collect();
    re.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_close(
        &[c(re[0], 0.0), c(re[1], 0.0)],
        &[c(-2.0, 0.0), c(1.0, 0.0)],
        1e-14,
        "triangular",
    );
}

/// A gauge-invariant loss: `Σ |λ|²` and `Σ_i |v_iᴴ B v_i|` for a fixed `B`.
fn invariant_loss(x: &TracedTensor) -> TracedTensor {
    let (w, v) = x.eig().unwrap();
    let n = x.shape().unwrap()[0];
    let b = traced(DType::C64, &[n, n], &Rng::new(11).vec(n * n, true));
    let bv = b.matmul(&v).unwrap();
    let q = (&v.conj() * &bv).reduce_sum(&[0]).abs().reduce_sum(&[0]);
    &w.abs().square().reduce_sum(&[0]) + &q
}

#[test]
fn eig_gradients_match_finite_differences() {
    let n = 4;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(21);
        let x = rng.vec(n * n, cx);
        let d = rng.vec(n * n, cx);
        let sh = [n, n];
        check_grad(
            dt,
            &sh,
            &x,
            &d,
            |x| wsum(&x.eigvals().unwrap(), 1),
            "eigvals",
        );
        check_grad(dt, &sh, &x, &d, invariant_loss, "eig invariant");
        // The gauge makes V itself a smooth function: any weighted sum of its entries.
        check_grad(
            dt,
            &sh,
            &x,
            &d,
            |x| wsum(&x.eig().unwrap().1, 2),
            "eig V (gauge)",
        );
        check_grad(dt, &sh, &x, &d, |x| wsum(&x.eig().unwrap().0, 3), "eig W");
        check_adjoint(dt, &sh, &x, |x| x.eig().unwrap().1, "eig V adjoint");
    }
}

#[test]
fn eig_batched_gradient_matches_finite_differences() {
    let (n, nb) = (3, 2);
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(31);
        let x = rng.vec(n * n * nb, cx);
        let d = rng.vec(n * n * nb, cx);
        check_grad(
            dt,
            &[n, n, nb],
            &x,
            &d,
            |x| wsum(&x.eig().unwrap().1, 4),
            "eig batched",
        );
    }
}

#[test]
fn eig_hvp_matches_finite_differences_of_the_gradient() {
    let n = 3;
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(41);
        let x = rng.vec(n * n, cx);
        let v = rng.vec(n * n, cx);
        check_hvp(
            dt,
            &[n, n],
            &x,
            &v,
            |x| wsum(&x.eigvals().unwrap(), 5),
            "eigvals HVP",
        );
        check_hvp(dt, &[n, n], &x, &v, invariant_loss, "eig invariant HVP");
        check_hvp(
            dt,
            &[n, n],
            &x,
            &v,
            |x| wsum(&x.eig().unwrap().1, 6),
            "eig V HVP",
        );
    }
}

fn err_text(outs: &[&TracedTensor]) -> String {
    match executor().run_many(&compile(outs)) {
        Ok(_) => panic!("expected a run-time error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn repeated_eigenvalues_error_or_regularise_never_nan() {
    // diag(2, 2, 3) plus a strictly upper part: eigenvalues 2, 2, 3 exactly, and not
    // defective (the 2-block is diagonal).
    let a0 = [
        c(2.0, 0.0),
        c(0.0, 0.0),
        c(0.0, 0.0),
        c(0.0, 0.0),
        c(2.0, 0.0),
        c(0.0, 0.0),
        c(1.0, 0.0),
        c(1.0, 0.0),
        c(3.0, 0.0),
    ];
    let ad = ad();
    let a = traced(DType::F64, &[3, 3], &a0);
    let (_, v) = a.eig().unwrap();
    let g = ad.grad(&wsum(&v, 7), &a).unwrap();
    let msg = err_text(&[&g]);
    assert!(
        msg.contains("coincide") && msg.contains("derivative_eps"),
        "{msg}"
    );
    // Eigenvalues only: finite.
    let gw = ad.grad(&wsum(&a.eigvals().unwrap(), 8), &a).unwrap();
    let out = run(&[&gw]);
    assert!(values(&out[0]).iter().all(|z| z.re.is_finite()));
    // Regularised: finite.
    let (_, v) = a.eig_with_options(1e-8).unwrap();
    let g = ad.grad(&wsum(&v, 7), &a).unwrap();
    let out = run(&[&g]);
    assert!(values(&out[0])
        .iter()
        .all(|z| z.re.is_finite() && z.im.is_finite()));
    // Away from degeneracy the regularised derivative is close to the exact one.
    let x = general(&mut Rng::new(3), 3, false);
    let b = traced(DType::F64, &[3, 3], &x);
    let g1 = ad.grad(&wsum(&b.eig().unwrap().1, 7), &b).unwrap();
    let g2 = ad
        .grad(&wsum(&b.eig_with_options(1e-14).unwrap().1, 7), &b)
        .unwrap();
    let out = run(&[&g1, &g2]);
    assert_close(&values(&out[1]), &values(&out[0]), 1e-8, "eps -> 0");
}

#[test]
fn eig_bad_inputs_are_errors() {
    let a = traced(DType::F64, &[2, 3], &Rng::new(1).vec(6, false));
    let e = a.eig().unwrap_err().to_string();
    assert!(e.contains("eig") && e.contains("square"), "{e}");
    assert!(a.eigvals().unwrap_err().to_string().contains("eigvals"));
    assert!(a.expm().unwrap_err().to_string().contains("expm"));
    let sq = traced(DType::F64, &[2, 2], &Rng::new(1).vec(4, false));
    assert!(sq
        .eig_with_options(-1.0)
        .unwrap_err()
        .to_string()
        .contains("derivative_eps"));
    let nan = traced(
        DType::F64,
        &[2, 2],
        &[c(1.0, 0.0), c(f64::NAN, 0.0), c(0.0, 0.0), c(1.0, 0.0)],
    );
    let msg = err_text(&[&nan.eigvals().unwrap()]);
    assert!(msg.contains("NaN"), "{msg}");
    let msg = err_text(&[&nan.expm().unwrap()]);
    assert!(msg.contains("NaN"), "{msg}");
    // Empty matrices and batches.
    let z = traced(DType::F64, &[0, 0, 2], &[]);
    let (w, v) = z.eig().unwrap();
    let out = run(&[&w, &v]);
    assert_eq!(out[0].numel(), 0);
}

#[test]
fn eager_eig_and_expm() {
    use tenferro_ad::EagerContext;
    use tenferro_cpu::CpuBackend;
    let ctx = EagerContext::with_ad_context(CpuBackend::new(), ad());
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![1.0_f64, 0.0, 2.0, 3.0])
        .unwrap()
        .requires_grad(true);
    let w = a.eigvals().unwrap();
    let mut re: Vec<f64> = (0..2)
        .map(|i| w.value().unwrap().data().get_c64(i).re)
        .collect();
    re.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(re, vec![1.0, 3.0]);
    let (_, v) = a.eig().unwrap();
    assert_eq!(v.value().unwrap().shape(), &[2, 2]);
    // d tr(e^A) = e^{Aᵀ}: for A upper triangular [[1, 2], [0, 3]].
    let e = a.expm().unwrap();
    let tr = e.trace().unwrap();
    tr.backward().unwrap();
    let g = a.grad().unwrap();
    let g = g.as_slice::<f64>().unwrap();
    let (e1, e3) = (1f64.exp(), 3f64.exp());
    let want = [e1, e3 - e1, 0.0, e3];
    for (g, w) in g.iter().zip(want) {
        assert!((g - w).abs() < 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
}

fn expm_of(dt: DType, shape: &[usize], x: &[C]) -> Vec<C> {
    values(&run(&[&traced(dt, shape, x).expm().unwrap()])[0])
}

/// `expm` of a placeholder (the in-graph scaling exponent, `s_max` = 20).
fn expm_traced(dt: DType, shape: &[usize], x: &[C]) -> Vec<C> {
    let p = TracedTensor::input(dt, shape);
    let e = p.expm().unwrap();
    Func::new(p, &[&e]).eval(dt, shape, x).remove(0)
}

#[test]
fn expm_exact_values() {
    let z = c(0.0, 0.0);
    let r = |v: f64| c(v, 0.0);
    for f in [expm_of, expm_traced] {
        // Diagonal.
        let d = [r(1.0), z, z, z, r(2.0), z, z, z, r(-1.0)];
        let want = [
            r(1f64.exp()),
            z,
            z,
            z,
            r(2f64.exp()),
            z,
            z,
            z,
            r((-1f64).exp()),
        ];
        assert_close(&f(DType::F64, &[3, 3], &d), &want, 1e-14, "diag");
        // Nilpotent: I + N + N²/2.
        let nil = [z, z, z, r(1.0), z, z, z, r(1.0), z];
        let want = [r(1.0), z, z, r(1.0), r(1.0), z, r(0.5), r(1.0), r(1.0)];
        assert_close(&f(DType::F64, &[3, 3], &nil), &want, 1e-15, "nilpotent");
        // Rotation generators, batched, small and large angle (scaling and squaring).
        let ts = [0.7, 30.0, 0.0];
        let mut x = Vec::new();
        let mut want = Vec::new();
        for t in ts {
            x.extend([z, r(t), r(-t), z]);
            want.extend([r(t.cos()), r(t.sin()), r(-t.sin()), r(t.cos())]);
        }
        assert_close(&f(DType::F64, &[2, 2, 3], &x), &want, 1e-13, "rotation");
        // Complex: diag(i t) gives phases.
        let x = [c(0.0, 2.0), z, z, c(-1.0, 0.5)];
        let want = [c(0.0, 2.0).exp(), z, z, c(-1.0, 0.5).exp()];
        assert_close(&f(DType::C64, &[2, 2], &x), &want, 1e-14, "complex diag");
    }
}

#[test]
fn expm_matches_scipy() {
    // scipy.linalg.expm (SciPy 1.17.1) of the matrices below, column-major.
    let a = [1.0, 0.5, 7.0, 2.0, -4.0, 1.5, -3.0, 6.0, -2.0].map(|v| c(v, 0.0));
    let want = [
        -0.12987039323113747,
        3.337816538075877,
        2.3056183451883454,
        -0.016562499956855634,
        1.3645607101675634,
        0.9853218577735309,
        -0.033277244204979135,
        -0.5146554529926665,
        -0.4731262728508496,
    ]
    .map(|v| c(v, 0.0));
    assert_close(&expm_of(DType::F64, &[3, 3], &a), &want, 1e-13, "scipy f64");
    assert_close(
        &expm_traced(DType::F64, &[3, 3], &a),
        &want,
        1e-13,
        "scipy f64 traced",
    );
    // B = [[1+2i, -i, 0.5], [2, -1+i, 3i], [-2-i, 1, 0.25i]] (row-major here).
    let b = [
        c(1.0, 2.0),
        c(2.0, 0.0),
        c(-2.0, -1.0),
        c(0.0, -1.0),
        c(-1.0, 1.0),
        c(1.0, 0.0),
        c(0.5, 0.0),
        c(0.0, 3.0),
        c(0.0, 0.25),
    ];
    let want = [
        c(0.9572408582065243, 0.6996911887142476),
        c(3.0825613719976914, 1.721627052702075),
        c(0.43796529191418876, -1.948988425341078),
        c(0.9565831699107245, 0.16755090968486153),
        c(0.5373098499008844, 0.05487667007468153),
        c(-0.4666935484490387, 0.10147127159327612),
        c(0.8674541372725029, 1.7623516333827252),
        c(-0.11287452766045392, 2.0175825460202983),
        c(0.35009275035129317, -0.3473515943615217),
    ];
    assert_close(&expm_of(DType::C64, &[3, 3], &b), &want, 1e-13, "scipy c64");
    assert_close(
        &expm_traced(DType::C64, &[3, 3], &b),
        &want,
        1e-13,
        "scipy c64 traced",
    );
}

#[test]
fn expm_agrees_with_eig() {
    // e^A = V diag(e^w) V⁻¹ for a diagonalisable A (batched, f64 and c64).
    let (n, nb) = (4, 2);
    for dt in DT {
        let x = Rng::new(8).vec(n * n * nb, dt.is_complex());
        let a = traced(
            dt,
            &[n, n, nb],
            &x.iter().map(|z| z * 3.0).collect::<Vec<_>>(),
        );
        let (w, v) = a.eig().unwrap();
        let ev = &v * &diag_mat(&w.exp(), &[n, n, nb]);
        let want = v.t().unwrap().solve(&ev.t().unwrap()).unwrap().t().unwrap();
        let got = a.expm().unwrap().convert(DType::C64).unwrap();
        let out = run(&[&got, &want]);
        assert_close(&values(&out[0]), &values(&out[1]), 1e-11, "expm vs eig");
    }
}

#[test]
fn expm_gradients_and_hvp_match_finite_differences() {
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(51);
        // Norm large enough for several squarings.
        let x: Vec<C> = rng.vec(9, cx).iter().map(|z| z * 4.0).collect();
        let d = rng.vec(9, cx);
        check_grad(dt, &[3, 3], &x, &d, |x| wsum(&x.expm().unwrap(), 1), "expm");
        check_hvp(
            dt,
            &[3, 3],
            &x,
            &d,
            |x| wsum(&x.expm().unwrap(), 2),
            "expm HVP",
        );
        let xb = rng.vec(18, cx);
        let db = rng.vec(18, cx);
        check_grad(
            dt,
            &[3, 3, 2],
            &xb,
            &db,
            |x| wsum(&x.expm().unwrap(), 3),
            "expm batched",
        );
        check_adjoint(dt, &[3, 3], &x, |x| x.expm().unwrap(), "expm adjoint");
    }
}

#[test]
fn wide_qr_gradients_and_hvp_match_finite_differences() {
    for (m, n, nb) in [(2, 3, 1), (3, 5, 2)] {
        let shape: Vec<usize> = if nb == 1 { vec![m, n] } else { vec![m, n, nb] };
        for dt in DT {
            let cx = dt.is_complex();
            let mut rng = Rng::new(61);
            let x = rng.vec(m * n * nb, cx);
            let d = rng.vec(m * n * nb, cx);
            let loss = |x: &TracedTensor| {
                let (q, r) = x.qr().unwrap();
                &wsum(&q, 1) + &wsum(&r, 2)
            };
            check_grad(dt, &shape, &x, &d, loss, "wide qr");
            check_adjoint(dt, &shape, &x, |x| x.qr().unwrap().1, "wide qr R adjoint");
            check_hvp(dt, &shape, &x, &d, loss, "wide qr HVP");
        }
    }
}

#[test]
fn eigh_with_options_is_finite_at_degeneracy_and_exact_away_from_it() {
    let ad = ad();
    // diag(1, 1, 2): a repeated eigenvalue.
    let z = c(0.0, 0.0);
    let a0 = [c(1.0, 0.0), z, z, z, c(1.0, 0.0), z, z, z, c(2.0, 0.0)];
    let a = traced(DType::F64, &[3, 3], &a0);
    let (_, v) = a.eigh_with_options(1e-6).unwrap();
    let g = ad.grad(&wsum(&v.abs().square(), 1), &a).unwrap();
    let out = run(&[&g]);
    assert!(values(&out[0]).iter().all(|z| z.re.is_finite()));
    // Away from degeneracy, a tiny eps reproduces the exact derivative.
    for dt in DT {
        let x = hermitian(&mut Rng::new(4), 4, dt.is_complex());
        let b = traced(dt, &[4, 4], &x);
        let loss = |v: &TracedTensor| wsum(&v.matmul(&adj(v)).unwrap(), 2);
        let g1 = ad.grad(&loss(&b.eigh().unwrap().1), &b).unwrap();
        let g2 = ad
            .grad(&loss(&b.eigh_with_options(1e-16).unwrap().1), &b)
            .unwrap();
        let out = run(&[&g1, &g2]);
        assert_close(&values(&out[1]), &values(&out[0]), 1e-9, "eigh eps -> 0");
    }
    assert!(a
        .eigh_with_options(f64::NAN)
        .unwrap_err()
        .to_string()
        .contains("derivative_eps"));
}

fn slice2(x: &TracedTensor, rows: usize, cols: usize) -> TracedTensor {
    let sh = x.shape().unwrap();
    let mut lim = sh.clone();
    lim[0] = rows;
    lim[1] = cols;
    x.slice(&vec![0; sh.len()], &lim).unwrap()
}

#[test]
fn qr_complete_and_svd_full_reconstruct_batched() {
    let nb = 2;
    for (m, n) in [(5, 3), (3, 5), (4, 4)] {
        let k = m.min(n);
        for dt in DT {
            let x = Rng::new(71).vec(m * n * nb, dt.is_complex());
            let a = traced(dt, &[m, n, nb], &x);
            let (q, r) = a.qr_complete().unwrap();
            assert_eq!(q.shape().unwrap(), vec![m, m, nb]);
            assert_eq!(r.shape().unwrap(), vec![m, n, nb]);
            let (u, s, vh) = a.svd_full().unwrap();
            assert_eq!(u.shape().unwrap(), vec![m, m, nb]);
            assert_eq!(s.shape().unwrap(), vec![k, nb]);
            assert_eq!(vh.shape().unwrap(), vec![n, n, nb]);
            let sd = s
                .convert(dt)
                .unwrap()
                .broadcast_in_dim(&[m, k, nb], &[1, 2])
                .unwrap();
            let usv = (&slice2(&u, m, k) * &sd)
                .matmul(&slice2(&vh, k, n))
                .unwrap();
            let out = run(&[
                &(&q.matmul(&r).unwrap() - &a),
                &adj(&q).matmul(&q).unwrap(),
                &r,
                &(&usv - &a),
                &adj(&u).matmul(&u).unwrap(),
                &vh.matmul(&adj(&vh)).unwrap(),
                &s,
                &a.svdvals().unwrap(),
            ]);
            let zeros = vec![c(0.0, 0.0); m * n * nb];
            assert_close(&values(&out[0]), &zeros, 1e-13, "Q R = A");
            assert_close(&values(&out[3]), &zeros, 1e-13, "U S Vh = A");
            assert_close(&values(&out[6]), &values(&out[7]), 1e-13, "S");
            for b in 0..nb {
                assert_close(&block(&values(&out[1]), m * m, b), &eye(m), 1e-13, "QᴴQ");
                assert_close(&block(&values(&out[4]), m * m, b), &eye(m), 1e-13, "UᴴU");
                assert_close(&block(&values(&out[5]), n * n, b), &eye(n), 1e-13, "Vh Vhᴴ");
                let rb = block(&values(&out[2]), m * n, b);
                for j in 0..n {
                    for i in 0..m {
                        let z = rb[i + j * m];
                        if i > j {
                            assert_eq!(z, c(0.0, 0.0), "R lower part");
                        } else if i == j {
                            assert!(z.im == 0.0 && z.re >= 0.0, "diag(R) {z}");
                        }
                    }
                }
            }
        }
    }
    // Empty: the complete bases of a 3 x 0 matrix are identities.
    let z = traced(DType::F64, &[3, 0], &[]);
    let (q, r) = z.qr_complete().unwrap();
    let (u, s, vh) = z.svd_full().unwrap();
    let out = run(&[&q, &r, &u, &s, &vh]);
    assert_eq!(values(&out[0]), eye(3));
    assert_eq!(values(&out[2]), eye(3));
    assert_eq!(out[4].numel(), 0);
}

#[test]
fn complete_modes_differentiate_where_unique_and_fail_clearly_elsewhere() {
    for dt in DT {
        let cx = dt.is_complex();
        let mut rng = Rng::new(81);
        // Wide complete QR equals the reduced one: differentiable.
        let x = rng.vec(15, cx);
        let d = rng.vec(15, cx);
        let loss = |x: &TracedTensor| {
            let (q, r) = x.qr_complete().unwrap();
            &wsum(&q, 1) + &wsum(&r, 2)
        };
        check_grad(dt, &[3, 5], &x, &d, loss, "complete qr (wide)");
        // Square full SVD equals the reduced one.
        let x = rng.vec(9, cx);
        let d = rng.vec(9, cx);
        let loss = |x: &TracedTensor| {
            let (u, s, vh) = x.svd_full().unwrap();
            let p = u.matmul(&adj(&u)).unwrap();
            &(&wsum(&s, 3) + &wsum(&p, 4)) + &wsum(&vh.abs().square(), 5)
        };
        check_grad(dt, &[3, 3], &x, &d, loss, "full svd (square)");
    }
    let ad = ad();
    let t = TracedTensor::input(DType::F64, &[4, 2]);
    let (q, _) = t.qr_complete().unwrap();
    let e = ad.grad(&q.sum(), &t).unwrap_err().to_string();
    assert!(e.contains("complete") && e.contains("not unique"), "{e}");
    let (u, _, _) = t.svd_full().unwrap();
    let e = ad.grad(&u.sum(), &t).unwrap_err().to_string();
    assert!(
        e.contains("full_matrices") && e.contains("not unique"),
        "{e}"
    );
}

#[test]
fn rectangular_lu_reconstructs_and_differentiates() {
    let nb = 2;
    for (m, n) in [(5, 3), (3, 5)] {
        let k = m.min(n);
        for dt in DT {
            let cx = dt.is_complex();
            let x = Rng::new(91).vec(m * n * nb, cx);
            let a = traced(dt, &[m, n, nb], &x);
            let (p, l, u) = a.lu().unwrap();
            assert_eq!(p.shape().unwrap(), vec![m, m, nb]);
            assert_eq!(l.shape().unwrap(), vec![m, k, nb]);
            assert_eq!(u.shape().unwrap(), vec![k, n, nb]);
            let r = &p.matmul(&l).unwrap().matmul(&u).unwrap() - &a;
            let out = run(&[&r, &l, &u, &p.t().unwrap().matmul(&p).unwrap()]);
            assert_close(
                &values(&out[0]),
                &vec![c(0.0, 0.0); m * n * nb],
                1e-13,
                "P L U = A",
            );
            for b in 0..nb {
                assert_close(&block(&values(&out[3]), m * m, b), &eye(m), 0.0, "PᵀP");
                let lb = block(&values(&out[1]), m * k, b);
                let ub = block(&values(&out[2]), k * n, b);
                for j in 0..k {
                    assert_eq!(lb[j + j * m], c(1.0, 0.0), "unit diagonal");
                    for i in 0..j {
                        assert_eq!(lb[i + j * m], c(0.0, 0.0), "L upper part");
                    }
                    // Partial pivoting on |re| + |im|: multipliers of modulus <= √2.
                    for i in j + 1..m {
                        assert!(lb[i + j * m].norm() <= 2f64.sqrt() + 1e-15);
                    }
                }
                for j in 0..n {
                    for i in (j + 1).min(k)..k {
                        assert_eq!(ub[i + j * k], c(0.0, 0.0), "U lower part");
                    }
                }
            }
            let mut rng = Rng::new(92);
            let x1 = rng.vec(m * n, cx);
            let d = rng.vec(m * n, cx);
            let loss = |x: &TracedTensor| {
                let (_, l, u) = x.lu().unwrap();
                &wsum(&l, 1) + &wsum(&u, 2)
            };
            check_grad(dt, &[m, n], &x1, &d, loss, "rectangular lu");
            check_adjoint(dt, &[m, n], &x1, |x| x.lu().unwrap().1, "rectangular lu L");
            check_hvp(dt, &[m, n], &x1, &d, loss, "rectangular lu HVP");
            check_grad(
                dt,
                &[m, n, nb],
                &x,
                &Rng::new(93).vec(m * n * nb, cx),
                loss,
                "rectangular lu batched",
            );
        }
    }
}

#[test]
fn single_precision_eig_and_expm() {
    let n = 4;
    for dt in [DType::F32, DType::C32] {
        let x = Rng::new(5).vec(n * n, dt.is_complex());
        let a = traced(dt, &[n, n], &x);
        let (w, v) = a.eig().unwrap();
        assert_eq!(w.ty().unwrap().dtype, DType::C32);
        let ac = a.convert(DType::C32).unwrap();
        let resid = &ac.matmul(&v).unwrap() - &(&v * &diag_mat(&w, &[n, n]));
        let e = a.expm().unwrap();
        let dt64 = if dt.is_complex() {
            DType::C64
        } else {
            DType::F64
        };
        let e64 = traced(dt64, &[n, n], &x).expm().unwrap();
        let out = run(&[&resid, &e, &e64]);
        assert_close(
            &values(&out[0]),
            &vec![c(0.0, 0.0); n * n],
            1e-5,
            "A V - V W f32",
        );
        assert_close(&values(&out[1]), &values(&out[2]), 1e-5, "expm f32 vs f64");
    }
}
