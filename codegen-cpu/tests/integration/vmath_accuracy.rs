//! Accuracy of the vmath kernels against Rust's std functions: max ulp error per op and
//! dtype over dense sweeps of the main domain, random bit patterns across the whole
//! exponent range, and edge values; NaN in gives NaN out; the AVX2 and portable builds
//! give identical bits (any NaN matching any NaN: a produced NaN's sign and payload are
//! left open by IEEE and differ between optimisation levels).

use tenferro_cpu::vmath::{self, Isa};
use tenferro_ir::{DType, UnaryOp};

/// Allowed distance from std, in ulps.
const TOL: u64 = 2;

/// Deterministic splitmix64 stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Position of a float on the ordered line of all floats (-0 just below +0), so the
/// difference of two positions counts the floats between them.
fn ord64(x: f64) -> i128 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        -((b & !(1 << 63)) as i128) - 1
    } else {
        b as i128
    }
}

fn ord32(x: f32) -> i128 {
    let b = x.to_bits();
    if b >> 31 == 1 {
        -((b & !(1 << 31)) as i128) - 1
    } else {
        b as i128
    }
}

/// Ulps between `got` and `want`; NaN matches only NaN.
fn ulps64(got: f64, want: f64) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => (ord64(got) - ord64(want)).unsigned_abs() as u64,
        _ => u64::MAX,
    }
}

fn ulps32(got: f32, want: f32) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => (ord32(got) - ord32(want)).unsigned_abs() as u64,
        _ => u64::MAX,
    }
}

/// One element through the op table's scalar semantics (the standard library's functions).
struct One<T>(T);

impl<T: Copy> tenferro_ir::ElemMap<T, T> for One<T> {
    type Out = T;
    fn map<F: Fn(T) -> T + Copy>(self, f: F) -> T {
        f(self.0)
    }
}

/// The reference the kernels are measured against: the op table's f64 semantics.
fn std64(op: UnaryOp) -> impl Fn(f64) -> f64 + Copy {
    move |x| op.map_f64(One(x)).unwrap_or(f64::NAN)
}

/// The op table's f32 semantics.
fn std32(op: UnaryOp) -> impl Fn(f32) -> f32 + Copy {
    move |x| op.map_f32(One(x)).unwrap_or(f32::NAN)
}

/// Ops whose result must equal the table's bit for bit (no kernel of their own on `dtype`).
fn exact(op: UnaryOp, dtype: DType) -> bool {
    !vmath::has_polynomial_kernel(op, dtype)
}

/// The available polynomial-kernel builds (they must agree bit for bit; [`Isa::Std`] is
/// checked on its own).
fn isas() -> Vec<Isa> {
    [Isa::Avx512, Isa::Avx2Fma, Isa::Portable]
        .into_iter()
        .filter(|i| i.is_available())
        .collect()
}

/// Runs `op` on `xs` with every available build (slice and in-place forms), checks they
/// agree bit for bit, and returns the worst (ulps, input, got, want) against std.
fn worst64(op: UnaryOp, xs: &[f64]) -> (u64, f64, f64, f64) {
    let mut outs = Vec::new();
    for isa in isas() {
        let mut dst = vec![0.0; xs.len()];
        vmath::unary_f64_on(isa, op, xs, &mut dst);
        let mut buf = xs.to_vec();
        vmath::unary_f64_inplace_on(isa, op, &mut buf);
        for (i, (a, b)) in dst.iter().zip(&buf).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{op:?} {isa:?} in-place differs at {}",
                xs[i]
            );
        }
        outs.push((isa, dst));
    }
    let (isa0, first) = &outs[0];
    for (isa, out) in &outs[1..] {
        for (i, (a, b)) in first.iter().zip(out).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{op:?}: {isa0:?} gives {a:e} but {isa:?} gives {b:e} at x = {:e}",
                xs[i]
            );
        }
    }
    let f = std64(op);
    let mut worst = (0, 0.0, 0.0, 0.0);
    for (&x, &got) in xs.iter().zip(first) {
        let want = f(x);
        let u = ulps64(got, want);
        if u > worst.0 {
            worst = (u, x, got, want);
        }
    }
    worst
}

fn worst32(op: UnaryOp, xs: &[f32]) -> (u64, f32, f32, f32) {
    let mut outs = Vec::new();
    for isa in isas() {
        let mut dst = vec![0.0; xs.len()];
        vmath::unary_f32_on(isa, op, xs, &mut dst);
        let mut buf = xs.to_vec();
        vmath::unary_f32_inplace_on(isa, op, &mut buf);
        for (i, (a, b)) in dst.iter().zip(&buf).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{op:?} {isa:?} in-place differs at {}",
                xs[i]
            );
        }
        outs.push((isa, dst));
    }
    let (isa0, first) = &outs[0];
    for (isa, out) in &outs[1..] {
        for (i, (a, b)) in first.iter().zip(out).enumerate() {
            assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "{op:?}: {isa0:?} gives {a:e} but {isa:?} gives {b:e} at x = {:e}",
                xs[i]
            );
        }
    }
    let f = std32(op);
    let mut worst = (0, 0.0, 0.0, 0.0);
    for (&x, &got) in xs.iter().zip(first) {
        let want = f(x);
        let u = ulps32(got, want);
        if u > worst.0 {
            worst = (u, x, got, want);
        }
    }
    worst
}

fn check64(op: UnaryOp, what: &str, xs: &[f64]) {
    let (u, x, got, want) = worst64(op, xs);
    let tol = if exact(op, DType::F64) { 0 } else { TOL };
    assert!(
        u <= tol,
        "{op:?} f64 {what}: {u} ulp at x = {x:e} ({x:?}): got {got:e}, std {want:e}"
    );
}

fn check32(op: UnaryOp, what: &str, xs: &[f32]) {
    let (u, x, got, want) = worst32(op, xs);
    let tol = if exact(op, DType::F32) { 0 } else { TOL };
    assert!(
        u <= tol,
        "{op:?} f32 {what}: {u} ulp at x = {x:e} ({x:?}): got {got:e}, std {want:e}"
    );
}

/// `n` evenly spaced points on [lo, hi] plus small random jitter (so sweeps are not all
/// on a coarse binary grid).
fn sweep(lo: f64, hi: f64, n: usize, rng: &mut Rng) -> Vec<f64> {
    let step = (hi - lo) / n as f64;
    (0..n)
        .map(|i| lo + step * (i as f64 + rng.unit()))
        .collect()
}

/// `n` points spaced evenly in log scale on [lo, hi] (both > 0), both signs if `signed`.
fn log_sweep(lo: f64, hi: f64, n: usize, signed: bool, rng: &mut Rng) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|i| {
            let x = (a + (b - a) * (i as f64 + rng.unit()) / n as f64).exp();
            if signed && i % 2 == 1 {
                -x
            } else {
                x
            }
        })
        .collect()
}

/// Dense sweeps of each op's main domain (about 10^5 points per op in total).
fn main_domains(op: UnaryOp, rng: &mut Rng) -> Vec<(&'static str, Vec<f64>)> {
    const N: usize = 40_000;
    match op {
        UnaryOp::Exp => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[-745.2, 709.8]", sweep(-745.2, 709.8, N, rng)),
            (
                "underflow [-745.2, -700]",
                sweep(-745.2, -700.0, N / 2, rng),
            ),
        ],
        UnaryOp::Expm1 => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[-40, 709.8]", sweep(-40.0, 709.8, N, rng)),
            ("tiny", log_sweep(1e-300, 1e-3, N / 2, true, rng)),
        ],
        UnaryOp::Log => vec![
            ("[0.5, 2]", sweep(0.5, 2.0, N, rng)),
            ("[1e-300, 1e300]", log_sweep(1e-300, 1e300, N, false, rng)),
            ("subnormal", log_sweep(5e-324, 2.2e-308, N / 2, false, rng)),
        ],
        UnaryOp::Log1p => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[1, 1e300]", log_sweep(1.0, 1e300, N, false, rng)),
            ("tiny", log_sweep(1e-300, 1e-3, N / 2, true, rng)),
        ],
        UnaryOp::Sin | UnaryOp::Cos => vec![
            ("[-10, 10]", sweep(-10.0, 10.0, N, rng)),
            ("[-1e5, 1e5]", sweep(-1e5, 1e5, N / 2, rng)),
            (
                "|x| in [1e-10, 2^31]",
                log_sweep(1e-10, 2.2e9, N / 2, true, rng),
            ),
            // Near multiples of pi/2, where the reduction cancels the most.
            (
                "near k pi/2",
                (1..N as i64 / 4)
                    .flat_map(|k| {
                        let c = k as f64 * std::f64::consts::FRAC_PI_2;
                        [
                            c,
                            f64::from_bits(c.to_bits() + 1),
                            f64::from_bits(c.to_bits() - 1),
                        ]
                    })
                    .collect(),
            ),
            // The top of the short-reduction tier (|x| <= 2^20) and just beyond it.
            (
                "short tier top [2^19, 2^20]",
                sweep(524288.0, 1048576.0, N / 2, rng),
            ),
            (
                "short tier boundary",
                sweep(1048000.0, 1049000.0, N / 4, rng),
            ),
            (
                "near k pi/2, k up to 2^20 / (pi/2)",
                (0..N / 4)
                    .flat_map(|_| {
                        let k = (rng.unit() * 667_544.0).floor();
                        let c = k * std::f64::consts::FRAC_PI_2;
                        [
                            c,
                            f64::from_bits(c.to_bits() + 1),
                            f64::from_bits(c.to_bits().saturating_sub(1)),
                        ]
                    })
                    .collect(),
            ),
        ],
        UnaryOp::Tanh => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[-25, 25]", sweep(-25.0, 25.0, N, rng)),
            ("tiny", log_sweep(1e-300, 1e-3, N / 2, true, rng)),
        ],
        UnaryOp::Erf | UnaryOp::Erfc => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[-7, 7]", sweep(-7.0, 7.0, N, rng)),
            // The tail where f32 erfc underflows through the subnormals (and beyond).
            ("tail [3, 12]", sweep(3.0, 12.0, N, rng)),
            ("around |x| = 1", sweep(0.999, 1.001, N / 4, rng)),
            ("around |x| = 6", sweep(5.99, 6.01, N / 4, rng)),
            ("tiny", log_sweep(1e-300, 1e-3, N / 2, true, rng)),
        ],
        UnaryOp::Logistic => vec![
            ("[-1, 1]", sweep(-1.0, 1.0, N, rng)),
            ("[-40, 40]", sweep(-40.0, 40.0, N, rng)),
            // Saturation to 1 and underflow to 0 through the subnormals.
            ("[-750, 750]", sweep(-750.0, 750.0, N, rng)),
            (
                "f32 underflow [-110, -80]",
                sweep(-110.0, -80.0, N / 2, rng),
            ),
            (
                "f64 underflow [-746, -700]",
                sweep(-746.0, -700.0, N / 2, rng),
            ),
            ("tiny", log_sweep(1e-300, 1e-3, N / 2, true, rng)),
        ],
        _ => vec![("[-10, 10]", sweep(-10.0, 10.0, N / 4, rng))],
    }
}

/// Random bit patterns: every exponent and sign, NaNs and infinities included.
fn random_bits64(n: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n).map(|_| f64::from_bits(rng.next())).collect()
}

fn random_bits32(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| f32::from_bits(rng.next() as u32)).collect()
}

fn edges64() -> Vec<f64> {
    let mut v = vec![
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        1.0,
        -1.0,
        // exp overflow / underflow thresholds and neighbours
        709.782712893384,
        709.7827128933841,
        -745.1332191019411,
        -745.1332191019412,
        -708.3964185322641,
        -744.44007192138,
        710.0,
        -746.0,
        1e4,
        -1e4,
        // expm1 / tanh saturation, log1p pole
        -37.5,
        19.0,
        22.0,
        -1.0 + f64::EPSILON / 2.0,
        1e-17,
        -1e-17,
        // sin/cos: around the short-tier and fast-path limits and huge arguments
        1048576.0,
        1048576.0000000001,
        1073741824.0,
        1073741825.0,
        -1073741825.0,
        1e22,
        1e300,
        std::f64::consts::PI,
        std::f64::consts::FRAC_PI_2,
        std::f64::consts::FRAC_PI_4,
    ];
    let neg: Vec<f64> = v.iter().map(|x| -x).collect();
    v.extend(neg);
    v
}

fn edges32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        f32::from_bits(0x007f_ffff),
        f32::MAX,
        f32::EPSILON,
        1.0,
        88.72283,
        88.72284,
        -103.97208,
        -87.33655,
        -9.0,
        -1.0 + f32::EPSILON / 2.0,
        1e-10,
        1073741824.0,
        1073741952.0,
        1e30,
        std::f32::consts::PI,
        std::f32::consts::FRAC_PI_2,
    ];
    let neg: Vec<f32> = v.iter().map(|x| -x).collect();
    v.extend(neg);
    v
}

#[test]
fn f64_main_domains_within_2_ulp_of_std() {
    let mut rng = Rng(1);
    for op in UnaryOp::ALL {
        for (what, xs) in main_domains(op, &mut rng) {
            check64(op, what, &xs);
        }
    }
}

#[test]
fn f32_main_domains_within_2_ulp_of_std() {
    let mut rng = Rng(2);
    for op in UnaryOp::ALL {
        for (what, xs) in main_domains(op, &mut rng) {
            let xs: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            check32(op, what, &xs);
        }
    }
}

#[test]
fn f64_random_bit_patterns_within_2_ulp_of_std() {
    let mut rng = Rng(3);
    let xs = random_bits64(60_000, &mut rng);
    for op in UnaryOp::ALL {
        check64(op, "random bits", &xs);
    }
}

#[test]
fn f32_random_bit_patterns_within_2_ulp_of_std() {
    let mut rng = Rng(4);
    let xs = random_bits32(60_000, &mut rng);
    for op in UnaryOp::ALL {
        check32(op, "random bits", &xs);
    }
}

/// Edge values: within 2 ulp, NaN exactly where std gives NaN, and signed zeros and
/// infinities exactly as std.
#[test]
fn edge_values_match_std() {
    let xs = edges64();
    let xs32 = edges32();
    for op in UnaryOp::ALL {
        check64(op, "edges", &xs);
        check32(op, "edges", &xs32);
        let mut out = vec![0.0; xs.len()];
        vmath::unary_f64(op, &xs, &mut out);
        for (&x, &y) in xs.iter().zip(&out) {
            let want = std64(op)(x);
            if want == 0.0 || want.is_infinite() {
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "{op:?}({x:e}) = {y:e}, std {want:e}"
                );
            }
            if x.is_nan() && !matches!(op, UnaryOp::Imag) {
                assert!(y.is_nan(), "{op:?}(NaN) = {y}");
            }
        }
        let mut out = vec![0.0; xs32.len()];
        vmath::unary_f32(op, &xs32, &mut out);
        for (&x, &y) in xs32.iter().zip(&out) {
            let want = std32(op)(x);
            if want == 0.0 || want.is_infinite() {
                assert_eq!(
                    y.to_bits(),
                    want.to_bits(),
                    "{op:?}({x:e}) = {y:e}, std {want:e}"
                );
            }
            if x.is_nan() && !matches!(op, UnaryOp::Imag) {
                assert!(y.is_nan(), "{op:?}(NaN) = {y}");
            }
        }
    }
}

/// Edge values that fit every op's short tier, in blocks of their own (the general edge
/// list holds huge values, which send its block to the wider tiers).
#[test]
fn small_edge_values_in_short_tiers() {
    let mut xs = vec![
        0.0,
        -0.0,
        f64::NAN,
        -f64::NAN,
        f64::MIN_POSITIVE,
        -f64::MIN_POSITIVE,
        f64::from_bits(1),
        -f64::from_bits(1),
        f64::from_bits(0x000f_ffff_ffff_ffff),
        -f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::EPSILON,
        1e-17,
        -1e-17,
        7.450580596923828e-9,
        -7.450580596923828e-9,
        1.0,
        -1.0,
        19.0,
        -19.0,
        std::f64::consts::FRAC_PI_4,
    ];
    let mut rng = Rng(9);
    xs.extend(log_sweep(5e-324, 2.2e-308, 200, true, &mut rng));
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    for op in UnaryOp::ALL {
        check64(op, "small edges", &xs);
        check32(op, "small edges", &xs32);
        for isa in isas() {
            let mut out = vec![0.0; xs.len()];
            vmath::unary_f64_on(isa, op, &xs, &mut out);
            for (&x, &y) in xs.iter().zip(&out) {
                let want = std64(op)(x);
                if want == 0.0 {
                    assert_eq!(y.to_bits(), want.to_bits(), "{op:?}({x:e}) = {y:e}");
                }
            }
        }
    }
}

/// Large sin/cos arguments scattered among small ones: the per-chunk fallback must fix
/// exactly the out-of-range lanes, at every position in a chunk and in the tail.
#[test]
fn sincos_large_arguments_mixed_into_chunks() {
    let mut rng = Rng(5);
    let xs: Vec<f64> = (0..1003)
        .map(|i| {
            if i % 7 == 3 {
                1e15 * (rng.unit() + 0.5)
            } else if i % 11 == 5 {
                f64::INFINITY
            } else {
                rng.unit() * 6.0 - 3.0
            }
        })
        .collect();
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    for op in [UnaryOp::Sin, UnaryOp::Cos] {
        check64(op, "mixed chunks", &xs);
        check32(op, "mixed chunks", &xs32);
    }
}

/// Lengths that are not a multiple of the chunk width, including the empty slice.
#[test]
fn odd_lengths() {
    let mut rng = Rng(6);
    for n in [0, 1, 3, 7, 8, 9, 15, 17, 31] {
        let xs = sweep(-3.0, 3.0, n, &mut rng);
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        for op in UnaryOp::ALL {
            check64(op, "odd length", &xs);
            check32(op, "odd length", &xs32);
        }
    }
}

/// `sincos` gives the same bits as `sin` and `cos` separately, on every build, including
/// out-of-range lanes and ragged lengths.
#[test]
fn sincos_matches_sin_and_cos() {
    let mut rng = Rng(8);
    let mut xs = sweep(-20.0, 20.0, 997, &mut rng);
    xs.extend(edges64());
    xs.extend(random_bits64(500, &mut rng));
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let n = xs.len();
    for isa in isas() {
        let (mut s, mut c, mut s1, mut c1) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        vmath::sincos_f64_on(isa, &xs, &mut s, &mut c);
        vmath::unary_f64_on(isa, UnaryOp::Sin, &xs, &mut s1);
        vmath::unary_f64_on(isa, UnaryOp::Cos, &xs, &mut c1);
        for i in 0..n {
            assert_eq!(
                s[i].to_bits(),
                s1[i].to_bits(),
                "{isa:?} sincos sin({:e})",
                xs[i]
            );
            assert_eq!(
                c[i].to_bits(),
                c1[i].to_bits(),
                "{isa:?} sincos cos({:e})",
                xs[i]
            );
        }
        let (mut s, mut c, mut s1, mut c1) = (
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
            vec![0.0f32; n],
        );
        vmath::sincos_f32_on(isa, &xs32, &mut s, &mut c);
        vmath::unary_f32_on(isa, UnaryOp::Sin, &xs32, &mut s1);
        vmath::unary_f32_on(isa, UnaryOp::Cos, &xs32, &mut c1);
        for i in 0..n {
            assert_eq!(
                s[i].to_bits(),
                s1[i].to_bits(),
                "{isa:?} sincos sin({:e})",
                xs32[i]
            );
            assert_eq!(
                c[i].to_bits(),
                c1[i].to_bits(),
                "{isa:?} sincos cos({:e})",
                xs32[i]
            );
        }
    }
}

/// `Isa::Std` gives std's bits for every op, in the slice, in-place and sincos forms.
#[test]
fn std_isa_gives_std_bits() {
    let mut rng = Rng(10);
    let mut xs = sweep(-20.0, 20.0, 500, &mut rng);
    xs.extend(edges64());
    xs.extend(random_bits64(500, &mut rng));
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let n = xs.len();
    for op in UnaryOp::ALL {
        let mut out = vec![0.0; n];
        vmath::unary_f64_on(Isa::Std, op, &xs, &mut out);
        let mut buf = xs.clone();
        vmath::unary_f64_inplace_on(Isa::Std, op, &mut buf);
        for i in 0..n {
            let want = std64(op)(xs[i]);
            assert_eq!(ulps64(out[i], want), 0, "{op:?}({:e})", xs[i]);
            assert_eq!(ulps64(buf[i], want), 0, "{op:?}({:e}) in place", xs[i]);
        }
        let mut out = vec![0.0f32; n];
        vmath::unary_f32_on(Isa::Std, op, &xs32, &mut out);
        let mut buf = xs32.clone();
        vmath::unary_f32_inplace_on(Isa::Std, op, &mut buf);
        for i in 0..n {
            let want = std32(op)(xs32[i]);
            assert_eq!(ulps32(out[i], want), 0, "{op:?}({:e})", xs32[i]);
            assert_eq!(ulps32(buf[i], want), 0, "{op:?}({:e}) in place", xs32[i]);
        }
    }
    let (mut s, mut c) = (vec![0.0; n], vec![0.0; n]);
    vmath::sincos_f64_on(Isa::Std, &xs, &mut s, &mut c);
    for i in 0..n {
        assert_eq!(ulps64(s[i], xs[i].sin()), 0, "sin({:e})", xs[i]);
        assert_eq!(ulps64(c[i], xs[i].cos()), 0, "cos({:e})", xs[i]);
    }
    let (mut s, mut c) = (vec![0.0f32; n], vec![0.0f32; n]);
    vmath::sincos_f32_on(Isa::Std, &xs32, &mut s, &mut c);
    for i in 0..n {
        assert_eq!(ulps32(s[i], xs32[i].sin()), 0, "sin({:e})", xs32[i]);
        assert_eq!(ulps32(c[i], xs32[i].cos()), 0, "cos({:e})", xs32[i]);
    }
}

/// `detect` takes AVX-512, else AVX2+FMA when the CPU has it, else the portable build only
/// where its `mul_add` is an FMA instruction, else std (never a software fma in the hot
/// loops).
#[test]
fn detect_never_picks_a_software_fma_build() {
    let isa = Isa::detect();
    assert!(isa.is_available());
    if Isa::Avx512.is_available() {
        assert_eq!(isa, Isa::Avx512);
    } else if Isa::Avx2Fma.is_available() {
        assert_eq!(isa, Isa::Avx2Fma);
    } else if cfg!(any(target_arch = "aarch64", target_feature = "fma")) {
        assert_eq!(isa, Isa::Portable);
    } else {
        assert_eq!(isa, Isa::Std);
    }
}

/// An op with no kernel here runs on the op table's scalar semantics, bit for bit.
#[test]
fn ops_without_a_kernel_run_the_table_semantics() {
    let x: Vec<f64> = (0..100).map(|i| i as f64 * 0.07 - 3.0).collect();
    for op in UnaryOp::ALL {
        if vmath::has_polynomial_kernel(op, DType::F64) || !op.accepts(DType::F64) {
            continue;
        }
        let mut d = vec![0.0; x.len()];
        vmath::unary_f64(op, &x, &mut d);
        let f = std64(op);
        for (g, &v) in d.iter().zip(&x) {
            assert_eq!(g.to_bits(), f(v).to_bits(), "{op:?} at {v}");
        }
    }
}

#[test]
#[should_panic(expected = "source has 3 elements but destination has 2")]
fn length_mismatch_panics_with_message() {
    vmath::unary_f64(UnaryOp::Exp, &[1.0, 2.0, 3.0], &mut [0.0; 2]);
}

/// Prints the max ulp error per op, dtype and domain:
/// `cargo test -p tenferro-cpu --test vmath_accuracy -- --ignored --nocapture`.
#[test]
#[ignore = "report, not a check"]
fn report_max_ulps() {
    let mut rng = Rng(7);
    let bits64 = random_bits64(60_000, &mut rng);
    let bits32 = random_bits32(60_000, &mut rng);
    for op in UnaryOp::ALL {
        let mut domains = main_domains(op, &mut rng);
        domains.push(("edges", edges64()));
        for (what, xs) in domains.iter().chain([&("random bits", bits64.clone())]) {
            let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
            let w64 = worst64(op, xs);
            let w32 = worst32(
                op,
                if *what == "random bits" {
                    &bits32
                } else {
                    &xs32
                },
            );
            println!(
                "{op:?}\t{what}\tf64 {} ulp (x {:?} got {:?} std {:?})\tf32 {} ulp (x {:?} got {:?} std {:?})",
                w64.0, w64.1, w64.2, w64.3, w32.0, w32.1, w32.2, w32.3
            );
        }
    }
}
