//! Complex asin, acos, atan, asinh, acosh and atanh against NumPy's C99 Annex G values
//! (`tests/data/complex_inverse_trig.txt`, printed by `complex_inverse_trig.py`): the
//! reference evaluator and the CPU backend, fused and unfused, in c64 and c32, on the
//! branch cuts with both signs of zero, at tiny, huge and near-±1 operands, at infinities
//! and NaNs, and at random points.
//!
//! A NaN part must be NaN, an infinite or zero part must have the same bits (signed zeros
//! included); a finite nonzero part must be within `ULPS · ε · |want|` of it (ε of the
//! dtype; `|want|` at least the smallest normal).

use num_complex::{Complex32, Complex64};
use tenferro_cpu::CpuBackend;
use tenferro_ir::eval::eval_op;
use tenferro_ir::{DType, Op, Tensor, UnaryOp};
use tenferro_runtime::{CompileOptions, GraphCompiler, GraphExecutor, TracedTensor};

/// The bound on a finite nonzero part, in units of `ε · |want|`.
const ULPS: f64 = 4.0;

/// The ops in the order of the table's columns.
const OPS: [UnaryOp; 6] = [
    UnaryOp::Asin,
    UnaryOp::Acos,
    UnaryOp::Atan,
    UnaryOp::Asinh,
    UnaryOp::Acosh,
    UnaryOp::Atanh,
];

/// The table's operands and, per op, its results, for one dtype.
struct Table {
    inputs: Vec<Complex64>,
    outputs: [Vec<Complex64>; 6],
}

fn table(dtype: &str) -> Table {
    let text = include_str!("../data/complex_inverse_trig.txt");
    let mut t = Table {
        inputs: Vec::new(),
        outputs: Default::default(),
    };
    for line in text.lines().filter(|l| l.starts_with(dtype)) {
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().unwrap_or_else(|_| panic!("bad number {w:?}")))
            .collect();
        assert_eq!(v.len(), 14, "{line}");
        t.inputs.push(Complex64::new(v[0], v[1]));
        for (k, out) in t.outputs.iter_mut().enumerate() {
            out.push(Complex64::new(v[2 + 2 * k], v[3 + 2 * k]));
        }
    }
    assert!(t.inputs.len() > 500, "{dtype}: {} lines", t.inputs.len());
    t
}

fn tensor(dtype: DType, z: &[Complex64]) -> Tensor {
    let n = vec![z.len()];
    match dtype {
        DType::C64 => Tensor::from_vec_col_major(n, z.to_vec()),
        _ => Tensor::from_vec_col_major(
            n,
            z.iter()
                .map(|z| Complex32::new(z.re as f32, z.im as f32))
                .collect(),
        ),
    }
    .unwrap()
}

/// The error of `got` against `want` in units of `ε · |want|`: 0 when equal (same bits
/// for zeros and infinities, both NaN), infinite when a special value differs.
fn ulps(got: f64, want: f64, dtype: DType) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if want == 0.0 || want.is_infinite() || got.is_infinite() {
        return if got.to_bits() == want.to_bits() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let (eps, tiny) = match dtype {
        DType::C64 => (f64::EPSILON, f64::MIN_POSITIVE),
        _ => (f32::EPSILON as f64, f32::MIN_POSITIVE as f64),
    };
    (got - want).abs() / (eps * want.abs().max(tiny))
}

/// Checks `got` against `want` elementwise and returns the largest error in ulps.
fn check(what: &str, got: &Tensor, inputs: &[Complex64], want: &[Complex64]) -> f64 {
    assert_eq!(got.numel(), want.len(), "{what}");
    let mut worst: f64 = 0.0;
    for (i, (z, w)) in inputs.iter().zip(want).enumerate() {
        let g = got.data().get_c64(i);
        let e = ulps(g.re, w.re, got.dtype()).max(ulps(g.im, w.im, got.dtype()));
        assert!(
            e <= ULPS,
            "{what} at {z:?}: got {g:?}, want {w:?} ({e} ulp)"
        );
        worst = worst.max(e);
    }
    worst
}

/// Runs `y` (a function of `x`) on the CPU backend with fusion on or off.
fn cpu(y: &TracedTensor, x: &TracedTensor, xv: &Tensor, fusion: bool) -> Tensor {
    let p =
        GraphCompiler::with_options(CompileOptions::new().opt_level(tenferro_passes::OptLevel::O0))
            .compile(y)
            .unwrap();
    GraphExecutor::new(CpuBackend::new().with_fusion(fusion))
        .run_with_inputs(&p, &[(x, xv.clone())])
        .unwrap()
}

fn agrees_with_numpy(dtype: DType, name: &str) {
    let t = table(name);
    let xv = tensor(dtype, &t.inputs);
    let x = TracedTensor::input(dtype, &[t.inputs.len()]);
    for (u, want) in OPS.into_iter().zip(&t.outputs) {
        let what = |how: &str| format!("{} on {dtype:?} ({how})", u.name());
        let evaluated = eval_op(&Op::Unary(u), &[&xv]).unwrap().remove(0);
        let worst = check(&what("evaluator"), &evaluated, &t.inputs, want);
        eprintln!("{}: worst {worst:.2} ulp", what("evaluator"));
        // alone, and fused into a chain with an exact negation after it
        let alone = x.unary(u);
        let chain = alone.unary(UnaryOp::Neg);
        let negated: Vec<Complex64> = want.iter().map(|w| -w).collect();
        for fusion in [true, false] {
            let how = format!("cpu, fusion {fusion}");
            check(&what(&how), &cpu(&alone, &x, &xv, fusion), &t.inputs, want);
            let how = format!("cpu, negated, fusion {fusion}");
            check(
                &what(&how),
                &cpu(&chain, &x, &xv, fusion),
                &t.inputs,
                &negated,
            );
        }
    }
}

#[test]
fn c64_agrees_with_numpy() {
    agrees_with_numpy(DType::C64, "c64 ");
}

#[test]
fn c32_agrees_with_numpy() {
    agrees_with_numpy(DType::C32, "c32 ");
}

#[test]
fn branch_cuts_follow_the_sign_of_zero() {
    // asin(5 ± 0i) = π/2 ± i·acosh 5: the table's worked example, checked directly.
    let xv = tensor(
        DType::C64,
        &[Complex64::new(5.0, 0.0), Complex64::new(5.0, -0.0)],
    );
    let y = eval_op(&Op::Unary(UnaryOp::Asin), &[&xv])
        .unwrap()
        .remove(0);
    let (a, b) = (y.data().get_c64(0), y.data().get_c64(1));
    assert_eq!(a.re, std::f64::consts::FRAC_PI_2);
    assert!(
        (a.im - 5f64.acosh()).abs() <= 2.0 * f64::EPSILON * a.im,
        "{a}"
    );
    assert_eq!((b.re, b.im.to_bits()), (a.re, (-a.im).to_bits()));
}
