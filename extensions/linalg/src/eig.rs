//! General (non-Hermitian) eigendecomposition `linalg.eig` and its derivative rule.
//!
//! **Values.** `A V = V diag(W)` for a real or complex square `A`; `W` and `V` are complex
//! (c64 for f64 / c64, c32 for f32 / c32), in faer's order (no sorting; for real `A` a
//! conjugate pair is adjacent, positive imaginary part first). **Gauge**: every
//! eigenvector has unit 2-norm and its largest-modulus component (the first one on ties)
//! is real and positive. (LAPACK / NumPy also normalise to unit norm, but make the
//! largest component real only for real input and leave its sign free.) A defective
//! matrix has no basis of eigenvectors: the values are returned, but `V` is (nearly)
//! singular.
//!
//! **Derivatives** (feature `autodiff`, JAX's `eig_jvp_rule` plus the gauge): with
//! `X = V⁻¹ dA V`, `dW = diag(X)` and the raw `dV₀ = V (F ∘ X)`, `F_ij = 1/(w_j − w_i)`
//! off the diagonal and 0 on it; then `dV = dV₀ − V diag(Re(vᵢᴴ dv₀ᵢ)) − V diag(i·Im(dv₀ᵢ[kᵢ]
//! / vᵢ[kᵢ]))` keeps the unit norm and the real positive component `kᵢ` (the argmax,
//! piecewise constant). All of it is traced ops plus `linalg.solve`, so it composes to
//! any order. `V⁻¹` is a solve: a defective (singular `V`) matrix gives `linalg.solve`'s
//! singular-matrix error. **Repeated eigenvalues**: the eigenvector derivative is then
//! undefined, and the rule passes `W` through `linalg.eig_distinct`, whose kernel fails
//! at run time naming the two eigenvalues (`|w_i − w_j| <= 64 ε max|w|`), never NaN;
//! with `derivative_eps > 0` (`eig_with_options`) `F_ij` is instead
//! `conj(d)/(|d|² + eps)`, `d = w_j − w_i` (Lorentzian broadening, finite always). The
//! eigenvalue derivative (`eigvals`) never divides by gaps; it is exact for distinct
//! eigenvalues (at a repeated one the eigenvalues are not differentiable anyway, but
//! the formula gives a finite value as long as `V` is invertible).

use crate::ops::eig_op;
use tenferro_runtime::{Result, TracedTensor};

pub(crate) fn eig(a: &TracedTensor, eps: f64) -> Result<(TracedTensor, TracedTensor)> {
    let mut f = eig_op(a, true, eps)?;
    let v = f.pop().expect("two results");
    let w = f.pop().expect("two results");
    Ok((w, v))
}

pub(crate) fn eigvals(a: &TracedTensor) -> Result<TracedTensor> {
    Ok(eig_op(a, false, 0.0)?.remove(0))
}

#[cfg(feature = "autodiff")]
pub(crate) mod rule {
    use crate::attrs::{decoded, Eigen};
    use crate::ops::{eig_distinct_op, eig_op, solve_op};
    use crate::rules::{eigen_pair, expect_args};
    use crate::util::{cast, diag_part, eye_like, mm, ok, spread};
    use tenferro_ad::{ExtensionRule, Result};
    use tenferro_ir::{DType, ExtensionOp};
    use tenferro_runtime::TracedTensor;

    /// The rule of `linalg.eig` (see the module doc).
    pub(crate) struct EigRule;

    /// `linalg.eig_distinct` is the identity: its tangent passes through.
    pub(crate) struct EigDistinctRule;

    impl ExtensionRule for EigDistinctRule {
        fn jvp(
            &self,
            _op: &ExtensionOp,
            _inputs: &[TracedTensor],
            _outputs: &[TracedTensor],
            tangents: &[Option<TracedTensor>],
        ) -> Result<Vec<Option<TracedTensor>>> {
            Ok(vec![tangents.first().cloned().flatten()])
        }
    }

    impl ExtensionRule for EigRule {
        fn jvp(
            &self,
            op: &ExtensionOp,
            inputs: &[TracedTensor],
            outputs: &[TracedTensor],
            tangents: &[Option<TracedTensor>],
        ) -> Result<Vec<Option<TracedTensor>>> {
            expect_args(op, 1, inputs, tangents)?;
            let Eigen {
                eigenvectors: vectors,
                derivative_eps: eps,
            } = decoded(Eigen::decode_eig(op))?;
            let Some(da) = &tangents[0] else {
                return Ok(vec![None; outputs.len()]);
            };
            let a = &inputs[0];
            let (w, v) = eigen_pair(vectors, outputs, || eig_op(a, true, eps))?;
            let (w, v) = (&w, &v);
            let cd = w.dtype()?;
            let dac = cast(da, cd)?;
            let x = solve_op(v, &mm(&dac, v)?, false)?; // V⁻¹ dA V
            let dw = diag_part(&x)?;
            if !vectors {
                return Ok(vec![Some(dw)]);
            }
            let vshape = v.shape()?;
            let wg = if eps > 0.0 {
                w.clone()
            } else {
                eig_distinct_op(w)?
            };
            let d = ok(&spread(&wg, &vshape, 1)? - &spread(&wg, &vshape, 0)?)?; // w_j - w_i
            let f = if eps > 0.0 {
                let m2 = ok(&ok(ok(&d * &d.conj())?.real())? + eps)?;
                ok(&d.conj() / &cast(&m2, cd)?)?
            } else {
                let e = eye_like(&d)?;
                ok(&ok(1.0 / &ok(&d + &e)?)? - &e)?
            };
            let dv0 = mm(v, &ok(&f * &x)?)?;
            // Gauge: unit norm and a real positive largest component k_j per column.
            let c1 = ok(ok(&v.conj() * &dv0)?.reduce_sum(&[0]).real())?;
            let k = ok(v.abs().stop_gradient().argmax(0, false))?; // [n, b..]
            let kb = spread(&k, &vshape, 1)?;
            let rows = TracedTensor::iota(DType::I64, &vshape, 0)?;
            let mask = cast(&kb.equal(&rows), cd)?;
            let vk = ok((&mask * v).reduce_sum(&[0]))?;
            let dk = ok((&mask * &dv0).reduce_sum(&[0]))?;
            let z = ok(&dk / &vk)?;
            let coef = ok(&cast(&c1, cd)? + &ok(&ok(&z - &z.conj())? * 0.5)?)?;
            let dv = ok(&dv0 - &ok(v * &spread(&coef, &vshape, 1)?)?)?;
            Ok(vec![Some(dw), Some(dv)])
        }
    }
}
