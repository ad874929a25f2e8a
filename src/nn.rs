//! Weight initialisers (as `jax.nn.initializers`), functions of a traced key so they run
//! in a compiled init program or on the host through [`Key::sample`](crate::random::Key::sample).
//!
//! Fans follow JAX's convention for a weight of shape `[..., fan_in, fan_out]` (used as
//! `x.matmul(w)` with `x: [batch, fan_in]`): `fan_in = shape[-2] · receptive`,
//! `fan_out = shape[-1] · receptive`, where `receptive` is the product of the other axes;
//! a vector has `fan_in = fan_out = len`.

use crate::random::{normal, truncated_normal, uniform};
use tenferro_linalg::ops::qr_op;
use tenferro_runtime::{DType, Result, RuntimeError, TracedTensor};

/// Which fan scales the variance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// `fan_in`.
    FanIn,
    /// `fan_out`.
    FanOut,
    /// `(fan_in + fan_out) / 2`.
    FanAvg,
}

/// The distribution of [`variance_scaling`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Normal truncated to ±2 standard deviations, rescaled to keep the variance.
    TruncatedNormal,
    /// Normal.
    Normal,
    /// Uniform on `±√(3·variance)`.
    Uniform,
}

/// `(fan_in, fan_out)` of a weight shape (see the module docs).
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        r => {
            let receptive: usize = shape[..r - 2].iter().product();
            (
                (shape[r - 2] * receptive) as f64,
                (shape[r - 1] * receptive) as f64,
            )
        }
    }
}

/// `jax.nn.initializers.variance_scaling`: samples with variance `scale / fan`.
pub fn variance_scaling(
    key: &TracedTensor,
    dtype: DType,
    shape: &[usize],
    scale: f64,
    mode: FanMode,
    dist: Distribution,
) -> Result<TracedTensor> {
    let (fi, fo) = fans(shape);
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
        FanMode::FanAvg => (fi + fo) / 2.0,
    };
    let var = scale / fan.max(1.0);
    match dist {
        Distribution::TruncatedNormal => {
            // the standard deviation of a unit normal truncated to [-2, 2]
            let std = var.sqrt() / 0.879_625_661_034_239_8;
            Ok(truncated_normal(key, dtype, shape, -2.0, 2.0)? * std)
        }
        Distribution::Normal => Ok(normal(key, dtype, shape)? * var.sqrt()),
        Distribution::Uniform => {
            let lim = (3.0 * var).sqrt();
            uniform(key, dtype, shape, -lim, lim)
        }
    }
}

/// Glorot / Xavier uniform: `U(±√(6/(fan_in + fan_out)))`.
pub fn glorot_uniform(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    variance_scaling(
        key,
        dtype,
        shape,
        1.0,
        FanMode::FanAvg,
        Distribution::Uniform,
    )
}

/// Glorot / Xavier normal (truncated normal with variance `2/(fan_in + fan_out)`, as JAX).
pub fn glorot_normal(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    variance_scaling(
        key,
        dtype,
        shape,
        1.0,
        FanMode::FanAvg,
        Distribution::TruncatedNormal,
    )
}

/// He / Kaiming uniform: `U(±√(6/fan_in))`.
pub fn he_uniform(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    variance_scaling(
        key,
        dtype,
        shape,
        2.0,
        FanMode::FanIn,
        Distribution::Uniform,
    )
}

/// He / Kaiming normal (truncated normal with variance `2/fan_in`, as JAX).
pub fn he_normal(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    variance_scaling(
        key,
        dtype,
        shape,
        2.0,
        FanMode::FanIn,
        Distribution::TruncatedNormal,
    )
}

/// LeCun normal (truncated normal with variance `1/fan_in`).
pub fn lecun_normal(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    variance_scaling(
        key,
        dtype,
        shape,
        1.0,
        FanMode::FanIn,
        Distribution::TruncatedNormal,
    )
}

/// An `[m, n]` matrix with orthonormal columns (`m ≥ n`) or rows (`m < n`), times
/// `scale`, as `jax.nn.initializers.orthogonal`: the Q of a Gaussian matrix's QR with the
/// signs of R's diagonal folded in (so the result is Haar distributed). Runs the
/// `linalg.qr` extension, so the executor needs `tenferro_linalg::register_runtime`.
pub fn orthogonal(
    key: &TracedTensor,
    dtype: DType,
    m: usize,
    n: usize,
    scale: f64,
) -> Result<TracedTensor> {
    let (rows, cols) = (m.max(n), m.min(n));
    let a = normal(key, dtype, &[rows, cols])?;
    let qr = qr_op(&a)?;
    let (q, r) = (&qr[0], &qr[1]);
    let d = r.diagonal(0, 0, 1)?.sign(); // [cols]
    let q = q * &d.reshape(&[1, cols])?;
    let q = if m < n { q.t()? } else { q };
    if q.shape()? != [m, n] {
        return Err(RuntimeError::Invalid(format!(
            "nn::orthogonal: internal shape {:?} for [{m}, {n}]",
            q.shape()?
        )));
    }
    Ok(q * scale)
}
