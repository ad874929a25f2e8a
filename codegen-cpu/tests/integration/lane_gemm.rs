//! Batched products whose batch axes are the operands' fastest axes run on batch lanes
//! (AVX-512): the results equal the reference evaluator's within rounding and are the
//! same bits at one and two threads, through partial lane blocks, contraction blocks,
//! row and column chunks, and every way of splitting the work over threads.

use crate::common;

use common::SeedRng;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{parse_and_verify, DType};
use tenferro_runtime::{Backend, ExtensionRegistry};

/// `(lhs, rhs, dimension numbers, result)`.
const CASES: &[(&str, &str, &str, &str)] = &[
    // 37 = 4 full f64 blocks and a partial one; k = 150 spans three contraction blocks;
    // m and n are not multiples of the register tile.
    (
        "f64[37,13,150]",
        "f64[37,150,21]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[37,13,21]",
    ),
    // A partial f32 block (19 of 16 + 3 lanes).
    (
        "f32[19,5,7]",
        "f32[19,7,3]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f32[19,5,3]",
    ),
    (
        "f32[48,33,70]",
        "f32[48,70,17]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f32[48,33,17]",
    ),
    // Two batch axes (20 elements), the lhs contracted on its middle axis, the rhs free
    // axis before its contracted one.
    (
        "f64[4,5,9,6]",
        "f64[4,5,3,9]",
        "lhs_batch = [0, 1], rhs_batch = [0, 1], lhs_contract = [2], rhs_contract = [3]",
        "f64[4,5,6,3]",
    ),
    // Matrices of about 140³ (ratio 47): lanes since the threshold is 96; several
    // contraction blocks, partial row and column panels.
    (
        "f64[9,130,150]",
        "f64[9,150,140]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[9,130,140]",
    ),
    (
        "f32[17,131,149]",
        "f32[17,149,141]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f32[17,131,141]",
    ),
    // Many rows: split over rows at two threads.
    (
        "f64[16,150,60]",
        "f64[16,60,10]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[16,150,10]",
    ),
    // Many columns: split over columns, several column chunks.
    (
        "f64[16,10,40]",
        "f64[16,40,300]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[16,10,300]",
    ),
    // Small matrices, long batch: split over batch blocks (a partial one last).
    (
        "f64[20003,3,8]",
        "f64[20003,8,5]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[20003,3,5]",
    ),
    // Two rhs free axes on either side of the contracted one: the rhs column offsets are
    // no progression, so its panels are packed rather than read in place.
    (
        "f64[16,5,7]",
        "f64[16,3,7,4]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [2]",
        "f64[16,5,3,4]",
    ),
    (
        "f32[35,9,20]",
        "f32[35,2,20,5]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [2]",
        "f32[35,9,2,5]",
    ),
    // k = 1 (a batched outer product through the lane kernel).
    (
        "f64[24,6,1]",
        "f64[24,1,5]",
        "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
        "f64[24,6,5]",
    ),
];

fn lanes_available() -> bool {
    cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

#[test]
fn lane_products_match_the_reference_at_one_and_two_threads() {
    for (i, &(lhs, rhs, dims, out)) in CASES.iter().enumerate() {
        check(lhs, rhs, dims, out, i as u64);
    }
}

/// Random batch-first products (batch 16 to 40, matrix sides 1 to 20, either axis order
/// of each operand's matrix) against the reference, at one and two threads.
#[test]
fn random_batch_first_products_match_the_reference() {
    let mut rng = SeedRng::new(77);
    for case in 0..40 {
        let dtype = if rng.below(2) == 0 { "f32" } else { "f64" };
        let (b, m, n, k) = (
            16 + rng.below(25),
            1 + rng.below(20),
            1 + rng.below(20),
            1 + rng.below(20),
        );
        let (lt, rt) = (rng.below(2) == 1, rng.below(2) == 1);
        let (lhs, lc) = if lt {
            (format!("{dtype}[{b},{k},{m}]"), 1)
        } else {
            (format!("{dtype}[{b},{m},{k}]"), 2)
        };
        let (rhs, rc) = if rt {
            (format!("{dtype}[{b},{n},{k}]"), 2)
        } else {
            (format!("{dtype}[{b},{k},{n}]"), 1)
        };
        let dims = format!(
            "lhs_batch = [0], rhs_batch = [0], lhs_contract = [{lc}], rhs_contract = [{rc}]"
        );
        let out = format!("{dtype}[{b},{m},{n}]");
        check(&lhs, &rhs, &dims, &out, 100 + case);
    }
}

fn check(lhs: &str, rhs: &str, dims: &str, out: &str, seed: u64) {
    let lanes = lanes_available();
    let text = format!(
        "func @f(%a: {lhs}, %b: {rhs}) -> ({out}) {{\n  %c = dot_general {{{dims}}} %a, %b\n  return %c\n}}\n"
    );
    let f = parse_and_verify(&text).unwrap();
    let a = SeedRng::new(10 + seed).tensor(f.ty(f.params()[0]), false);
    let b = SeedRng::new(1000 + seed).tensor(f.ty(f.params()[1]), false);
    let run = |threads: usize| {
        let backend = CpuBackend::with_threads(threads);
        let p = backend.prepare(&f).unwrap();
        assert_eq!(
            format!("{p}").contains("lane_gemm"),
            lanes,
            "{lhs} x {rhs}: lane kernel chosen iff the CPU has AVX-512:\n{p}"
        );
        let out = backend
            .execute(&p, &[a.clone(), b.clone()], &ExtensionRegistry::new())
            .unwrap();
        out[0].clone()
    };
    let (one, two) = (run(1), run(2));
    assert!(
        common::bits_eq_any_nan(&one, &two),
        "{lhs} x {rhs}: 1 and 2 threads differ"
    );
    let want = tenferro_ir::eval::eval(&f, &[a.clone(), b.clone()]).unwrap()[0].clone();
    let tol = if one.dtype() == DType::F32 {
        1e-4
    } else {
        1e-12
    };
    let as_f64 = |t: &tenferro_ir::Tensor| -> Vec<f64> {
        match t.dtype() {
            DType::F32 => t
                .to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect(),
            _ => t.to_vec::<f64>().unwrap(),
        }
    };
    let (g, w) = (as_f64(&one), as_f64(&want));
    assert_eq!(g.len(), w.len());
    for (k, (g, w)) in g.iter().zip(&w).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{lhs} x {rhs}: element {k}: {g} vs {w}"
        );
    }
}

/// Batch-first products that do not run on lanes (complex and integer dtypes, a batch
/// shorter than a vector, or matrices large enough for GEMMs) take the packed GEMM path:
/// the same values as the reference, and the same bits at one and two threads.
#[test]
fn other_batch_first_products_match_the_reference() {
    const DIMS: &str = "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [2]";
    let mut cases: Vec<(String, String, String)> = [
        ("c64", 32),
        ("c32", 20),
        ("i64", 16),
        ("f32", 8),
        ("f64", 5),
    ]
    .into_iter()
    .map(|(d, b)| {
        (
            format!("{d}[{b},33,70]"),
            format!("{d}[{b},17,70]"),
            format!("{d}[{b},33,17]"),
        )
    })
    .collect();
    // Large matrices: 8 products of 300 x 290 by 290 x 310.
    cases.push((
        "f64[8,300,290]".into(),
        "f64[8,310,290]".into(),
        "f64[8,300,310]".into(),
    ));
    for (i, (lhs, rhs, out)) in cases.iter().enumerate() {
        let text = format!(
            "func @f(%a: {lhs}, %b: {rhs}) -> ({out}) {{\n  %c = dot_general {{{DIMS}}} %a, %b\n  return %c\n}}\n"
        );
        let f = parse_and_verify(&text).unwrap();
        let a = SeedRng::new(500 + i as u64).tensor(f.ty(f.params()[0]), false);
        let c = SeedRng::new(600 + i as u64).tensor(f.ty(f.params()[1]), false);
        let run = |threads: usize| {
            let backend = CpuBackend::with_threads(threads);
            let p = backend.prepare(&f).unwrap();
            assert!(!format!("{p}").contains("lane_gemm"), "{lhs}: {p}");
            backend
                .execute(&p, &[a.clone(), c.clone()], &ExtensionRegistry::new())
                .unwrap()[0]
                .clone()
        };
        let (one, two) = (run(1), run(2));
        assert!(
            common::bits_eq_any_nan(&one, &two),
            "{lhs}: 1 and 2 threads differ"
        );
        let want = tenferro_ir::eval::eval(&f, &[a.clone(), c.clone()]).unwrap()[0].clone();
        common::assert_close(&one, &want, &format!("{lhs} batch-first product"));
    }
}

/// Batch-first products with an empty side give the empty (or all-zero) result of the
/// reference, at one and two threads, whichever kernel takes them.
#[test]
fn batch_first_products_with_an_empty_side() {
    for (lhs, rhs, out) in [
        ("f64[16,0,7]", "f64[16,7,3]", "f64[16,0,3]"),
        ("f64[16,5,7]", "f64[16,7,0]", "f64[16,5,0]"),
        ("f32[32,5,0]", "f32[32,0,3]", "f32[32,5,3]"),
        ("f64[0,5,7]", "f64[0,7,3]", "f64[0,5,3]"),
    ] {
        let text = format!(
            "func @f(%a: {lhs}, %b: {rhs}) -> ({out}) {{\n  %c = dot_general {{lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]}} %a, %b\n  return %c\n}}\n"
        );
        let f = parse_and_verify(&text).unwrap();
        let a = SeedRng::new(3).tensor(f.ty(f.params()[0]), false);
        let b = SeedRng::new(4).tensor(f.ty(f.params()[1]), false);
        let want = tenferro_ir::eval::eval(&f, &[a.clone(), b.clone()]).unwrap()[0].clone();
        for threads in [1, 2] {
            let backend = CpuBackend::with_threads(threads);
            let p = backend.prepare(&f).unwrap();
            let got = backend
                .execute(&p, &[a.clone(), b.clone()], &ExtensionRegistry::new())
                .unwrap();
            assert!(
                common::bits_eq_any_nan(&got[0], &want),
                "{lhs} x {rhs} at {threads} threads"
            );
        }
    }
}
