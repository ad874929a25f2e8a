//! At two threads, batched products run one GEMM per thread and single products one
//! panel of the result per thread (each GEMM sequential): the results are the bits of a
//! one-thread run, and equal the reference evaluator's within rounding.

use crate::common;

use common::{run_cpu, SeedRng};
use tenferro_cpu::CpuBackend;
use tenferro_ir::{parse_and_verify, Function, Tensor};
use tenferro_runtime::{Backend, ExtensionRegistry};

/// The only result of `f` at `threads` threads, as `T`s.
fn result<T: tenferro_ir::Element>(f: &Function, inputs: &[Tensor], threads: usize) -> Vec<T> {
    run_cpu(f, inputs, threads)[0].to_vec::<T>().unwrap()
}

#[test]
fn gemm_is_the_same_at_one_and_two_threads() {
    // 16 products of 64 x 64 x 64, batch axis last (contiguous matrices) and first.
    for (lhs, rhs, dims, out) in [
        (
            "f64[64,64,16]",
            "f64[64,64,16]",
            "lhs_batch = [2], rhs_batch = [2], lhs_contract = [1], rhs_contract = [0]",
            "f64[16,64,64]",
        ),
        (
            "f64[16,64,64]",
            "f64[16,64,64]",
            "lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]",
            "f64[16,64,64]",
        ),
        // One product, cut into row panels (m ≥ n, m not a multiple of the panel size).
        (
            "f64[300,257]",
            "f64[257,200]",
            "lhs_contract = [1], rhs_contract = [0]",
            "f64[300,200]",
        ),
        // One product, cut into column panels (n > m).
        (
            "f64[100,300]",
            "f64[300,500]",
            "lhs_contract = [1], rhs_contract = [0]",
            "f64[100,500]",
        ),
        // One product with the transpose written (row-major result panels).
        (
            "f64[256,300]",
            "f64[140,256]",
            "lhs_contract = [0], rhs_contract = [1]",
            "f64[300,140]",
        ),
    ] {
        let text = format!(
            "func @f(%a: {lhs}, %b: {rhs}) -> ({out}) {{\n  %c = dot_general {{{dims}}} %a, %b\n  return %c\n}}\n"
        );
        let f = parse_and_verify(&text).unwrap();
        let a = SeedRng::new(1).tensor(f.ty(f.params()[0]), false);
        let b = SeedRng::new(2).tensor(f.ty(f.params()[1]), false);
        let inputs = [a.clone(), b.clone()];
        let (one, two) = (result::<f64>(&f, &inputs, 1), result::<f64>(&f, &inputs, 2));
        assert!(
            one.iter()
                .zip(&two)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{lhs}: 1 and 2 threads differ"
        );
        let want = tenferro_ir::eval::eval(&f, &[a.clone(), b.clone()]).unwrap()[0]
            .to_vec::<f64>()
            .unwrap();
        for (g, w) in one.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12, "{lhs}: {g} vs {w}");
        }
    }
}

#[test]
fn a_program_of_several_threaded_steps_gives_the_bits_of_one_thread() {
    // Two products worth threads, a large transpose between them and a fused tail: the
    // whole program runs on a pool thread at two threads.
    let text = "func @f(%a: f64[200,300], %b: f64[300,250]) -> (f64[250,200], f64[200,200]) {
  %c = dot_general {lhs_contract = [1], rhs_contract = [0]} %a, %b : f64[200,250]
  %t = transpose {perm = [1, 0]} %c : f64[250,200]
  %d = dot_general {lhs_contract = [1], rhs_contract = [0]} %c, %t : f64[200,200]
  %e = tanh %d : f64[200,200]
  return %t, %e
}
";
    let f = parse_and_verify(text).unwrap();
    let a = SeedRng::new(3).tensor(f.ty(f.params()[0]), false);
    let b = SeedRng::new(4).tensor(f.ty(f.params()[1]), false);
    let run = |threads: usize| {
        let backend = CpuBackend::with_threads(threads);
        let p = backend.prepare(&f).unwrap();
        let reg = ExtensionRegistry::new();
        // Twice: the second run reuses the first one's buffers.
        backend.execute(&p, &[a.clone(), b.clone()], &reg).unwrap();
        backend
            .execute(&p, &[a.clone(), b.clone()], &reg)
            .unwrap()
            .iter()
            .map(|t| t.to_vec::<f64>().unwrap())
            .collect::<Vec<_>>()
    };
    let (one, two) = (run(1), run(2));
    for (x, y) in one.iter().zip(&two) {
        assert!(x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()));
    }
    let want = tenferro_ir::eval::eval(&f, &[a, b]).unwrap();
    for (g, w) in one.iter().zip(&want) {
        for (p, q) in g.iter().zip(w.to_vec::<f64>().unwrap()) {
            assert!((p - q).abs() <= 1e-9 * (1.0 + q.abs()), "{p} vs {q}");
        }
    }
}

/// A product of [`CHAIN_CASES`].
type ChainCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    [usize; 3],
    [usize; 4],
);

/// Products `(lhs shape, rhs shape, dimension numbers, result shape, [m, n, k], [lhs row
/// stride, lhs step stride, rhs step stride, rhs column stride])` that `gemm512` runs in
/// f32 and in f64 on AVX-512, with tile edges for both (f32 tiles of 32 x 12, f64 of
/// 16 x 12) and several k blocks (700 steps: two of 512 in f32, six of 128 in f64).
const CHAIN_CASES: [ChainCase; 2] = [
    // Column-major operands, row panels with edges (300 = 9·32 + 12 = 18·16 + 12).
    (
        "[300,257]",
        "[257,300]",
        "lhs_contract = [1], rhs_contract = [0]",
        "[300,300]",
        [300, 300, 257],
        [1, 300, 1, 257],
    ),
    // Both operands transposed (contracting axes first, last) and the transpose of the
    // product written (row-major result panels); 150 columns = 12·12 + 6.
    (
        "[700,200]",
        "[150,700]",
        "lhs_contract = [0], rhs_contract = [1]",
        "[200,150]",
        [200, 150, 700],
        [700, 1, 150, 1],
    ),
];

/// Runs each of [`CHAIN_CASES`] in element type `$t` at one and two threads, checks that
/// `gemm512` runs it exactly when the CPU has AVX-512, and that every element is the FMA
/// chain over k in increasing order (exactly on AVX-512, within `$tol` elsewhere).
macro_rules! check_fma_chains {
    ($t:ty, $tol:expr) => {
        let ty = stringify!($t);
        for (lhs, rhs, dims, out, [m, n, k], [lr, lc, rr, rc]) in CHAIN_CASES {
            let text = format!(
                "func @f(%a: {ty}{lhs}, %b: {ty}{rhs}) -> ({ty}{out}) {{\n  %c = dot_general {{{dims}}} %a, %b\n  return %c\n}}\n"
            );
            let f = parse_and_verify(&text).unwrap();
            let a = SeedRng::new(5).tensor(f.ty(f.params()[0]), false);
            let b = SeedRng::new(6).tensor(f.ty(f.params()[1]), false);
            let (av, bv) = (a.to_vec::<$t>().unwrap(), b.to_vec::<$t>().unwrap());
            let avx512 = tenferro_cpu::vmath::Isa::Avx512.is_available();
            for threads in [1, 2] {
                let p = CpuBackend::with_threads(threads).prepare(&f).unwrap();
                let names: Vec<&str> = p.steps().iter().map(|s| s.kernel_name()).collect();
                assert_eq!(
                    names.iter().any(|s| s.starts_with("gemm512")),
                    avx512,
                    "{names:?}"
                );
            }
            let inputs = [a.clone(), b.clone()];
            let (one, two) = (result::<$t>(&f, &inputs, 1), result::<$t>(&f, &inputs, 2));
            for j in 0..n {
                for i in 0..m {
                    let mut chain: $t = 0.0;
                    for p in 0..k {
                        chain = av[i * lr + p * lc].mul_add(bv[p * rr + j * rc], chain);
                    }
                    let (x, y) = (one[i + j * m], two[i + j * m]);
                    let at = format!("{ty}{lhs}: ({i}, {j})");
                    assert_eq!(x.to_bits(), y.to_bits(), "{at} at 1 and 2 threads");
                    if avx512 {
                        assert_eq!(x.to_bits(), chain.to_bits(), "{at}");
                    } else {
                        assert!((x - chain).abs() <= $tol * (1.0 + chain.abs()), "{at}");
                    }
                }
            }
        }
    };
}

#[test]
fn f32_gemm_is_one_fma_chain_per_element_at_one_and_two_threads() {
    // On AVX-512, f32 products with every dimension at least 64 run the register-tiled
    // kernel, whatever the thread count, tile edges and operand layouts.
    check_fma_chains!(f32, 1e-3);
}

#[test]
fn f64_gemm_above_256_cubed_is_one_fma_chain_per_element_at_one_and_two_threads() {
    // On AVX-512, f64 products with every side at least 128 and more than 256³
    // multiply-adds run the same kernel.
    check_fma_chains!(f64, 1e-12);
}

/// A product of random layout: each operand's roles (`[batch,] free, contract`) in a random
/// axis order, the batch (if any) of extent `b`.
struct Layout {
    text: String,
    nb: usize,
    b: usize,
    lperm: Vec<usize>,
    rperm: Vec<usize>,
    lshape: Vec<usize>,
    rshape: Vec<usize>,
}

impl Layout {
    /// An `m × k` by `k × n` product of `ty`, batched by `b` when `b > 1`.
    fn random(r: &mut SeedRng, ty: &str, [m, n, k]: [usize; 3], b: usize) -> Layout {
        let nb = usize::from(b > 1);
        let (lperm, rperm) = (r.perm(nb + 2), r.perm(nb + 2));
        let place = |perm: &[usize], sizes: &[usize]| {
            let mut shape = vec![0; perm.len()];
            for (j, &a) in perm.iter().enumerate() {
                shape[a] = sizes[j];
            }
            shape
        };
        let bsz: Vec<usize> = (0..nb).map(|_| b).collect();
        let lshape = place(&lperm, &[bsz.clone(), vec![m, k]].concat());
        let rshape = place(&rperm, &[bsz.clone(), vec![n, k]].concat());
        let text = format!(
            "func @f(%a: {ty}{lshape:?}, %b: {ty}{rshape:?}) -> ({ty}{:?}) {{\n  %c = dot_general {{lhs_batch = {:?}, rhs_batch = {:?}, lhs_contract = {:?}, rhs_contract = {:?}}} %a, %b\n  return %c\n}}\n",
            [bsz, vec![m, n]].concat(),
            &lperm[..nb],
            &rperm[..nb],
            &lperm[nb + 1..nb + 2],
            &rperm[nb + 1..nb + 2],
        );
        Layout {
            text,
            nb,
            b,
            lperm,
            rperm,
            lshape,
            rshape,
        }
    }

    /// Offsets of batch `q`'s row (lhs) or column (rhs) `e / k`, step `e % k`, for
    /// `e < free · k`.
    fn steps(&self, lhs: bool, q: usize, free: usize, k: usize) -> Vec<usize> {
        let (shape, perm) = if lhs {
            (&self.lshape, &self.lperm)
        } else {
            (&self.rshape, &self.rperm)
        };
        let lead = |x: usize| if self.nb == 1 { vec![q, x] } else { vec![x] };
        (0..free * k)
            .map(|e| offset(shape, perm, &[lead(e / k), vec![e % k]].concat()))
            .collect()
    }
}

/// Column-major offset of the element whose role indices are `idx`, for an operand whose
/// role `j` sits at axis `axis_of[j]` of `shape`.
fn offset(shape: &[usize], axis_of: &[usize], idx: &[usize]) -> usize {
    let strides = tenferro_ir::col_major_strides(shape);
    axis_of.iter().zip(idx).map(|(&a, &i)| i * strides[a]).sum()
}

/// Runs a random-layout product of `$t` at 1 and 2 threads: the same bits, each element
/// the FMA chain over k when `gemm512` runs it (AVX-512; then the program has a `gemm512`
/// step), and within `$tol` of the reference evaluator.
macro_rules! check_layout {
    ($t:ty, $tol:expr, $r:expr, $mnk:expr, $b:expr) => {{
        let [m, n, k] = $mnk;
        let l = Layout::random(&mut $r, stringify!($t), $mnk, $b);
        let f = parse_and_verify(&l.text).unwrap();
        let a = $r.tensor(f.ty(f.params()[0]), false);
        let bt = $r.tensor(f.ty(f.params()[1]), false);
        let (av, bv) = (a.to_vec::<$t>().unwrap(), bt.to_vec::<$t>().unwrap());
        let inputs = [a.clone(), bt.clone()];
        let (one, two) = (result::<$t>(&f, &inputs, 1), result::<$t>(&f, &inputs, 2));
        let want = tenferro_ir::eval::eval(&f, &[a, bt]).unwrap()[0]
            .to_vec::<$t>()
            .unwrap();
        let exact = tenferro_cpu::vmath::Isa::Avx512.is_available();
        let p = CpuBackend::with_threads(2).prepare(&f).unwrap();
        let own = p
            .steps()
            .iter()
            .any(|s| s.kernel_name().starts_with("gemm512"));
        proptest::prop_assert_eq!(own, exact, "{}", l.text);
        for q in 0..l.b {
            let (lo, ro) = (l.steps(true, q, m, k), l.steps(false, q, n, k));
            for j in 0..n {
                for i in 0..m {
                    let o = q + l.b * (i + m * j);
                    proptest::prop_assert_eq!(one[o].to_bits(), two[o].to_bits(), "{}", l.text);
                    if exact {
                        let chain = (0..k).fold(0.0, |s: $t, p| {
                            av[lo[i * k + p]].mul_add(bv[ro[j * k + p]], s)
                        });
                        proptest::prop_assert_eq!(one[o].to_bits(), chain.to_bits(), "{}", l.text);
                    }
                    let w = want[o];
                    let close = (one[o] - w).abs() <= $tol * (1.0 + w.abs());
                    proptest::prop_assert!(close, "{} vs {}", one[o], w);
                }
            }
        }
    }};
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

    /// Random f32 products of 64–140 rows, columns and steps, with or without a batch of
    /// 2 or 3, every axis order.
    #[test]
    fn f32_products_of_any_layout(seed in proptest::prelude::any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let mnk = [64 + r.below(77), 64 + r.below(77), 64 + r.below(77)];
        let b = if r.below(2) == 1 { 2 + r.below(2) } else { 1 };
        check_layout!(f32, 1e-4, r, mnk, b);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3))]

    /// Random f64 products above 256³ multiply-adds (130–169 rows and columns, 1040–1139
    /// steps: nine k blocks), with or without a batch of 2, every axis order.
    #[test]
    fn f64_products_of_any_layout(seed in proptest::prelude::any::<u64>()) {
        let mut r = SeedRng::new(seed);
        let mnk = [130 + r.below(40), 130 + r.below(40), 1040 + r.below(100)];
        let b = if r.below(2) == 1 { 2 } else { 1 };
        check_layout!(f64, 1e-10, r, mnk, b);
    }
}
