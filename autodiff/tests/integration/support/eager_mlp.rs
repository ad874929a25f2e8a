//! An eager tanh MLP and its SGD training step, shared by the `eager_residuals` test and
//! the `eager` bench (included with `#[path]`).
#![allow(dead_code)]

use tenferro_ad::{EagerContext, EagerTensor, Result};

/// Deterministic values in [-1, 1) (a multiplicative hash of the index and the seed).
pub fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xC2B2_AE3D);
            (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// The parameters (weight, bias per layer; tracked leaves), inputs and targets.
pub struct Mlp {
    pub params: Vec<EagerTensor>,
    pub x: EagerTensor,
    pub y: EagerTensor,
}

/// A tanh MLP of layer widths `dims` on `batch` samples, with deterministic values.
pub fn mlp(ctx: &EagerContext, batch: usize, dims: &[usize]) -> Result<Mlp> {
    let mut params = Vec::new();
    for (l, w) in dims.windows(2).enumerate() {
        let s = l as u64 * 2;
        params.push(
            ctx.from_vec_col_major(vec![w[0], w[1]], values(w[0] * w[1], s + 1))?
                .requires_grad(true),
        );
        params.push(
            ctx.from_vec_col_major(vec![w[1]], values(w[1], s + 2))?
                .requires_grad(true),
        );
    }
    let (d_in, d_out) = (dims[0], dims[dims.len() - 1]);
    let x = ctx.from_vec_col_major(vec![batch, d_in], values(batch * d_in, 101))?;
    let y = ctx.from_vec_col_major(vec![batch, d_out], values(batch * d_out, 102))?;
    Ok(Mlp { params, x, y })
}

/// The mean squared error of the MLP's output.
pub fn loss(m: &Mlp) -> Result<EagerTensor> {
    let mut h = m.x.clone();
    let layers = m.params.len() / 2;
    for l in 0..layers {
        h = &h.matmul(&m.params[2 * l])? + &m.params[2 * l + 1];
        if l + 1 < layers {
            h = h.tanh()?;
        }
    }
    let d = &h - &m.y;
    (&d * &d).reduce_mean(&[0, 1])
}

/// One SGD step: forward, backward, update (fresh leaves).
pub fn step(ctx: &EagerContext, m: &mut Mlp) -> Result<f64> {
    let l = loss(m)?;
    l.backward()?;
    let new: Vec<EagerTensor> = m
        .params
        .iter()
        .map(|p| {
            let g = ctx.from_tensor(p.grad().expect("a reached leaf has a gradient"));
            ctx.no_grad(|| p - &(&g * 0.1)).requires_grad(true)
        })
        .collect();
    m.params = new;
    Ok(l.to_vec::<f64>()?[0])
}
