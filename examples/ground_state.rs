//! A variational ground state: minimise the Rayleigh quotient ⟨v|H|v⟩ / ⟨v|v⟩ of a 6-site
//! transverse-field Ising chain by gradient descent, and compare with `eigh`.
//! Run: `cargo run --example ground_state`.
//!
//! Size: 24 code lines of Rust for 19 of JAX (1.26x). Counted after rustfmt: every line that
//! is not blank and not a comment (doc comments and this header with the JAX version
//! excluded); the JAX program below likewise, imports included.
//!
//! JAX:
//! ```python
//! import jax, jax.numpy as jnp, numpy as np
//! def tfim(n, g):  # H = -sum Z_i Z_i+1 - g sum X_i, open chain
//!     s = np.arange(2**n)
//!     walls = np.bitwise_count((s ^ s >> 1) % 2**(n - 1))
//!     flip = np.bitwise_count(s[:, None] ^ s[None, :]) == 1
//!     return jnp.asarray(np.diag(2.0 * walls + 1 - n) - g * flip)
//! H = tfim(6, g=1.0)
//! def energy(v):
//!     return v @ H @ v / (v @ v)
//! @jax.jit
//! def step(v):
//!     e, g = jax.value_and_grad(energy)(v)
//!     return v - 0.05 * g, e
//! v = jnp.ones(64) / 8
//! for _ in range(400):
//!     v, e = step(v)
//! e0 = jnp.linalg.eigh(H)[0][0]
//! print(e, e0)
//! assert abs(e - e0) < 1e-6
//! ```

use tenferro::prelude::*;

/// H = -Σ Z_i Z_{i+1} - g Σ X_i on `n` sites (open chain), dense.
fn tfim(n: usize, g: f64) -> Result<TracedTensor> {
    Ok(TracedTensor::from_fn([1 << n, 1 << n], |[r, s]| {
        let walls = ((s ^ s >> 1) % (1 << (n - 1))).count_ones() as f64;
        f64::from(r == s) * (2.0 * walls + 1.0 - n as f64)
            - g * f64::from((r ^ s).count_ones() == 1)
    })?)
}

pub fn main() -> Result<()> {
    let h = tfim(6, 1.0)?;
    let energy = |v: &TracedTensor| Ok::<_, Error>(v.matmul(&h.matmul(v)?)? / v.matmul(v)?);
    let mut step = jit(|a| {
        let e = energy(&a[0])?;
        Ok(vec![&a[0] - grad(&e, &a[0])? * 0.05, e])
    })?;
    let (mut v, mut e) = (Tensor::from_fn([64], |_| 0.125)?, Tensor::scalar(0.0));
    for _ in 0..400 {
        [v, e] = step.call_array(&[v])?;
    }
    let (e, e0) = (e.item::<f64>()?, eval(&h.eigh()?.0)?.to_vec::<f64>()?[0]);
    println!("variational energy {e:.8}, exact ground state {e0:.8}");
    assert!((e - e0).abs() < 1e-6);
    Ok(())
}
