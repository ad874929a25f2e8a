//! Batched primitives on a one-thread and a two-thread CPU backend: batches large enough
//! for the backend to run the kernel inside its pool (so the batch elements run in
//! parallel) give bit-identical results, and a failing batch element other than the
//! first is named the same way at both thread counts.

mod common;
use common::*;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::{ops, TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// Matrix order and batch count: `N * N * NB` elements reach the CPU backend's threshold
/// (2^16) for running an extension kernel inside its pool.
const N: usize = 8;
const NB: usize = 1024;

fn run_with(threads: usize, outs: &[&TracedTensor]) -> Result<Vec<Tensor>, String> {
    let mut e = GraphExecutor::new(CpuBackend::with_threads(threads));
    e.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let p = GraphCompiler::new().compile_many(outs).unwrap();
    e.run_many(&p).map_err(|e| e.to_string())
}

/// The bits of every value (real and imaginary parts as f64, exact for f32).
fn bits(ts: &[Tensor]) -> Vec<Vec<(u64, u64)>> {
    ts.iter()
        .map(|t| {
            values(t)
                .iter()
                .map(|z| (z.re.to_bits(), z.im.to_bits()))
                .collect()
        })
        .collect()
}

/// Runs `outs` at 1 and 2 threads and asserts bit-identical, finite results.
fn same_at_1_and_2_threads(what: &str, outs: &[&TracedTensor]) {
    let one = run_with(1, outs).unwrap_or_else(|e| panic!("{what}: {e}"));
    let two = run_with(2, outs).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        one.iter().all(|t| values(t)
            .iter()
            .all(|z| z.re.is_finite() && z.im.is_finite())),
        "{what}: non-finite result"
    );
    assert!(
        bits(&one) == bits(&two),
        "{what}: results differ at 1 and 2 threads"
    );
}

/// Runs `out` at 1 and 2 threads, expects the same error at both, containing `parts`.
fn same_error_at_1_and_2_threads(what: &str, out: &TracedTensor, parts: &[&str]) {
    let one = run_with(1, &[out]).expect_err(what);
    let two = run_with(2, &[out]).expect_err(what);
    assert_eq!(one, two, "{what}: errors differ at 1 and 2 threads");
    for p in parts {
        assert!(one.contains(p), "{what}: message {one:?} lacks {p:?}");
    }
}

/// `NB` random matrices, each made by `f`.
fn batch(rng: &mut Rng, f: impl Fn(&mut Rng) -> Vec<C>) -> Vec<C> {
    (0..NB).flat_map(|_| f(rng)).collect()
}

fn general(rng: &mut Rng, complex: bool) -> Vec<C> {
    let mut a = rng.vec(N * N, complex);
    for i in 0..N {
        a[i + i * N] += c(2.0, 0.0);
    }
    a
}

#[test]
fn every_batched_primitive_is_bit_identical_at_1_and_2_threads() {
    for dt in [DType::F64, DType::C32] {
        let cx = dt.is_complex();
        let mut rng = Rng::new(11);
        let shape = [N, N, NB];
        let spd_a = traced(dt, &shape, &batch(&mut rng, |r| spd(r, N, cx)));
        let herm = traced(dt, &shape, &batch(&mut rng, |r| hermitian(r, N, cx)));
        let gen = traced(dt, &shape, &batch(&mut rng, |r| general(r, cx)));
        let rhs = traced(dt, &[N, 2, NB], &rng.vec(N * 2 * NB, cx));
        let l = spd_a.cholesky().unwrap();
        same_at_1_and_2_threads(&format!("{dt} cholesky"), &[&l]);
        let t = gen
            .triangular_solve(
                &rhs,
                TriangularSolve {
                    lower: false,
                    ..TriangularSolve::default()
                },
            )
            .unwrap();
        same_at_1_and_2_threads(&format!("{dt} triangular_solve"), &[&t]);
        let x = gen.solve(&rhs).unwrap();
        let xh = ops::solve_op(&gen, &rhs, true).unwrap();
        same_at_1_and_2_threads(&format!("{dt} solve"), &[&x, &xh]);
        let lu = ops::lu_op(&gen).unwrap();
        same_at_1_and_2_threads(&format!("{dt} lu"), &lu.iter().collect::<Vec<_>>());
        let (p, lf, uf, q, parity) = gen.full_piv_lu().unwrap();
        same_at_1_and_2_threads(&format!("{dt} full_piv_lu"), &[&p, &lf, &uf, &q, &parity]);
        let (qq, r) = gen.qr().unwrap();
        same_at_1_and_2_threads(&format!("{dt} qr"), &[&qq, &r]);
        let (u, s, vh) = gen.svd().unwrap();
        let sv = gen.svdvals().unwrap();
        same_at_1_and_2_threads(&format!("{dt} svd"), &[&u, &s, &vh, &sv]);
        let (w, v) = herm.eigh().unwrap();
        let wv = herm.eigvalsh().unwrap();
        same_at_1_and_2_threads(&format!("{dt} eigh"), &[&w, &v, &wv]);
        let (ew, ev) = gen.eig().unwrap();
        let evals = gen.eigvals().unwrap();
        same_at_1_and_2_threads(&format!("{dt} eig"), &[&ew, &ev, &evals]);
    }
}

/// The batch with element `bad` replaced by `m`.
fn with_element(rng: &mut Rng, bad: usize, m: &[C], f: impl Fn(&mut Rng) -> Vec<C>) -> Vec<C> {
    let mut v = batch(rng, f);
    v[bad * N * N..(bad + 1) * N * N].copy_from_slice(m);
    v
}

#[test]
fn the_first_failing_batch_element_is_named_at_1_and_2_threads() {
    let shape = [N, N, NB];
    let dt = DType::F64;
    let mut rng = Rng::new(5);
    // Two failing elements, the later one in another parallel chunk: the first is named.
    let (bad, later) = (700, 1000);
    let mut indefinite = spd(&mut rng, N, false);
    indefinite[0] = c(-1.0, 0.0);
    let mut a = with_element(&mut rng, bad, &indefinite, |r| spd(r, N, false));
    a[later * N * N] = c(-1.0, 0.0);
    let l = traced(dt, &shape, &a).cholesky().unwrap();
    same_error_at_1_and_2_threads(
        "cholesky",
        &l,
        &[
            "linalg.cholesky",
            "not positive definite",
            "(batch element 700)",
        ],
    );

    let singular = vec![c(0.0, 0.0); N * N];
    let mut a = with_element(&mut rng, bad, &singular, |r| general(r, false));
    a[later * N * N..(later + 1) * N * N].copy_from_slice(&singular);
    let rhs = traced(dt, &[N, 1, NB], &rng.vec(N * NB, false));
    let x = traced(dt, &shape, &a).solve(&rhs).unwrap();
    same_error_at_1_and_2_threads(
        "solve",
        &x,
        &["linalg.solve", "singular", "(batch element 700)"],
    );

    // NaN in a later element than the singular one: the singular one is reported.
    a[later * N * N] = c(f64::NAN, 0.0);
    let x = traced(dt, &shape, &a).solve(&rhs).unwrap();
    same_error_at_1_and_2_threads(
        "solve with NaN",
        &x,
        &["linalg.solve", "singular", "(batch element 700)"],
    );
    let mut a = batch(&mut rng, |r| hermitian(r, N, false));
    a[3 + bad * N * N] = c(f64::INFINITY, 0.0);
    let w = traced(dt, &shape, &a).eigvalsh().unwrap();
    same_error_at_1_and_2_threads(
        "eigvalsh",
        &w,
        &[
            "linalg.eigh",
            "NaN or infinity",
            "entry (3, 0) of batch element 700",
        ],
    );
}
