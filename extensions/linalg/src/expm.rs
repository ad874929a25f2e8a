//! Matrix exponential `expm`, written entirely as traced ops (matmul, `linalg.solve`,
//! adds, select), so its derivatives of any order come from composing the rules of those
//! ops — no Fréchet-derivative rule of its own.
//!
//! **Algorithm**: scaling and squaring with the diagonal `[13/13]` Padé approximant
//! (Higham 2005, the `m = 13` branch of `scipy.linalg.expm` / MATLAB's `expm`):
//! `s = max(0, ceil(log2(‖A‖₁ / θ₁₃)))`, `θ₁₃ = 5.371920351148152`, `R = (V − U)⁻¹ (V + U)`
//! for `A / 2ˢ`, then `s` squarings. The lower-degree approximants Higham uses for small
//! norms are not used (degree 13 is at least as accurate, only a few matmuls dearer).
//!
//! **The scaling exponent** depends on `A`'s values, but a traced program has a static
//! structure. So `s` is computed **in the graph**, per batch element (from `‖A‖₁`, with
//! `stop_gradient`: it is piecewise constant), and the program always performs
//! `s_max` squaring steps, each `X ← select(k < s, X X, X)`. When `A` is a constant
//! (known at trace time) `s_max` is the largest `s` its batch needs; otherwise
//! `s_max = 20` ([`EXPM_MAX_SQUARINGS`]), which gives full Padé-13 accuracy (backward
//! error about the unit roundoff) for `‖A‖₁ <= θ₁₃ · 2²⁰ ≈ 5.6e6`; beyond that `s` is
//! clamped to 20 and the approximant is evaluated at a norm above `θ₁₃` (accuracy
//! degrades gracefully, but `e^A` of such a matrix overflows unless its spectrum is far
//! in the left half-plane). The selected-away squarings are computed but discarded by a
//! select (never multiplied by zero), so an overflow there does not leak into the result
//! or its derivatives. `‖A‖₁ = 0` gives `s = 0`.
//!
//! Errors: shape and dtype at trace time; NaN / infinity in `A` is the run-time error of
//! `linalg.solve` (non-finite operand).

use crate::ops::{solve_op, square_type};
use crate::util::{cast, eye_like, mm, ok};
use tenferro_ir::TensorType;
use tenferro_runtime::{Result, TracedTensor};

/// The number of squaring steps in the program of `expm` of a non-constant matrix.
pub const EXPM_MAX_SQUARINGS: usize = 20;

const THETA13: f64 = 5.371920351148152;

const PADE13: [f64; 14] = [
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
];

fn scaling(norm: f64) -> usize {
    if norm <= THETA13 || !norm.is_finite() {
        return 0;
    }
    ((norm / THETA13).log2().ceil().max(0.0) as usize).min(EXPM_MAX_SQUARINGS)
}

/// The largest scaling exponent over the batch of a constant matrix (trace time).
fn constant_squarings(a: &TracedTensor) -> Option<usize> {
    let t = a.constant_value()?;
    let s = t.shape();
    let (n, m) = (s[0], s[1]);
    let nb: usize = s[2..].iter().product();
    let mut best = 0;
    for b in 0..nb {
        let mut norm = 0.0f64;
        for j in 0..m {
            let col: f64 = (0..n)
                .map(|i| t.data().get_c64(b * n * m + j * n + i).norm())
                .sum();
            norm = norm.max(col);
        }
        best = best.max(scaling(norm));
    }
    Some(best)
}

pub(crate) fn expm(a: &TracedTensor) -> Result<TracedTensor> {
    let ty = square_type("expm", a)?;
    let rank = ty.rank();
    let real = ty.dtype.real();
    let smax = constant_squarings(a).unwrap_or(EXPM_MAX_SQUARINGS);
    // s per batch element (real dtype, shape [b..]).
    let s = if smax == 0 {
        None
    } else {
        let norm = ok(a.abs().reduce_sum(&[0]).reduce_max(&[0]).stop_gradient())?;
        let l2 = ok(&ok(&norm / THETA13)?.log() * std::f64::consts::LOG2_E)?;
        let s = ok(l2.ceil().clamp(0.0, smax as f64))?;
        Some(s)
    };
    let full_dims: Vec<usize> = (2..rank).collect();
    let spread_b = |x: &TracedTensor| x.broadcast_in_dim(&ty.shape, &full_dims);
    let x = match &s {
        None => a.clone(),
        Some(s) => {
            let f = ok(ok(s * (-std::f64::consts::LN_2))?.exp())?; // 2^-s
            ok(a * &cast(&spread_b(&f)?, ty.dtype)?)?
        }
    };
    let b = &PADE13;
    let eye = eye_like(&x)?;
    let a2 = mm(&x, &x)?;
    let a4 = mm(&a2, &a2)?;
    let a6 = mm(&a4, &a2)?;
    let lin = |c: [f64; 3], i: f64| -> Result<TracedTensor> {
        let t = ok(&ok(&ok(&a6 * c[0])? + &ok(&a4 * c[1])?)? + &ok(&a2 * c[2])?)?;
        if i == 0.0 {
            Ok(t)
        } else {
            ok(&t + &ok(&eye * i)?)
        }
    };
    let u_inner =
        ok(&mm(&a6, &lin([b[13], b[11], b[9]], 0.0)?)? + &lin([b[7], b[5], b[3]], b[1])?)?;
    let u = mm(&x, &u_inner)?;
    let v = ok(&mm(&a6, &lin([b[12], b[10], b[8]], 0.0)?)? + &lin([b[6], b[4], b[2]], b[0])?)?;
    let mut r = solve_op(&ok(&v - &u)?, &ok(&v + &u)?, false)?;
    if let Some(s) = &s {
        for k in 0..smax {
            let pred = spread_b(&s.greater(&TracedTensor::full(
                &TensorType::new(real, vec![]),
                k as f64,
            )))?;
            let sq = mm(&r, &r)?;
            r = ok(TracedTensor::select(&pred, &sq, &r))?;
        }
    }
    Ok(r)
}
