//! A variational ground state: minimise the Rayleigh quotient ⟨v|H|v⟩ / ⟨v|v⟩ of a 6-site
//! transverse-field Ising chain by gradient descent, and compare with `eigh`.
//! Run: `cargo run --example ground_state`.
//!
//! Code lines (after rustfmt; without blank lines, comments and this header): Rust N_RUST,
//! JAX N_JAX (the program below, imports included).
//!
//! JAX:
//! ```python
//! import jax, jax.numpy as jnp, numpy as np
//! def tfim(n, g):  # H = -sum Z_i Z_i+1 - g sum X_i, open chain
//!     s = np.arange(2**n)
//!     walls = np.bitwise_count((s ^ s >> 1) & (2**(n - 1) - 1))
//!     flip = np.bitwise_count(s[:, None] ^ s[None, :]) == 1
//!     return jnp.asarray(np.diag(2.0 * walls - (n - 1)) - g * flip)
//! H = tfim(6, g=1.0)
//! def energy(v):
//!     return v @ H @ v / (v @ v)
//! step = jax.jit(lambda v: (v - 0.05 * jax.grad(energy)(v), energy(v)))
//! v = jnp.ones(64) / 8
//! for _ in range(400):
//!     v, e = step(v)
//! e0 = jnp.linalg.eigh(H)[0][0]
//! print(e, e0)
//! assert abs(e - e0) < 1e-6
//! ```

use tenferro::prelude::*;

/// H = -Σ Z_i Z_{i+1} - g Σ X_i on `n` sites (open chain), dense.
fn tfim(n: usize, g: f64) -> Result<Tensor> {
    Ok(Tensor::from_fn(&[1 << n, 1 << n], |ix| {
        let (r, s) = (ix[0], ix[1]);
        let walls = ((s ^ s >> 1) & ((1 << (n - 1)) - 1)).count_ones() as f64;
        let diag = f64::from(r == s) * (2.0 * walls - (n - 1) as f64);
        diag - g * f64::from((r ^ s).count_ones() == 1)
    })?)
}

pub fn main() -> Result<()> {
    let h = TracedTensor::from(tfim(6, 1.0)?);
    let energy = |v: &TracedTensor| Ok::<_, Error>(v.matmul(&h.matmul(v)?)? / v.matmul(v)?);
    let mut step = jit(|a| {
        Ok(vec![
            &a[0] - grad(&energy(&a[0])?, &a[0])? * 0.05,
            energy(&a[0])?,
        ])
    })?;
    let (mut v, mut e) = (Tensor::from_fn(&[64], |_| 0.125)?, 0.0);
    for _ in 0..400 {
        let out = step.call(&[v])?;
        (v, e) = (out[0].clone(), out[1].item::<f64>()?);
    }
    let e0 = eval(&h.eigh()?.0)?.to_vec::<f64>()?[0];
    println!("variational energy {e:.8}, exact ground state {e0:.8}");
    assert!((e - e0).abs() < 1e-6);
    Ok(())
}
