//! The norm ⟨ψ|ψ⟩ of a matrix product state and its gradient with respect to every site
//! tensor, with einsum; checked with Euler's theorem (the norm is quadratic in each of
//! the n sites, so Σ_k ⟨A_k, ∂N/∂A_k⟩ = 2nN). Run: `cargo run --example mps_norm`.
//!
//! Code lines (after rustfmt; without blank lines, comments and this header): Rust N_RUST,
//! JAX N_JAX (the program below, imports included).
//!
//! JAX:
//! ```python
//! import jax, jax.numpy as jnp, numpy as np
//! def norm(As):
//!     E = jnp.ones((1, 1))
//!     for A in As:
//!         E = jnp.einsum("ab,asc,bsd->cd", E, A, A)
//!     return E[0, 0]
//! n, dim = 10, lambda k, edge: 1 if k == edge else 4
//! def site(k, dl, dr):
//!     return jnp.asarray(np.fromfunction(lambda a, s, c: ((a + dl * (s + 2 * c)) * 7 + 3 * k) % 11 / 11 - 0.3, (dl, 2, dr)))
//! As = [site(k, dim(k, 0), dim(k, n - 1)) for k in range(n)]
//! N, gs = norm(As), jax.grad(norm)(As)
//! print(N, [g.shape for g in gs])
//! assert abs(sum(jnp.vdot(A, g) for A, g in zip(As, gs)) - 2 * n * N) < 1e-9 * N
//! ```

use tenferro::prelude::*;

fn norm(sites: &[TracedTensor]) -> Result<TracedTensor> {
    let mut env = TracedTensor::scalar(1.0).reshape(&[1, 1])?;
    for a in sites {
        env = einsum("ab,asc,bsd->cd", &[&env, a, a])?;
    }
    Ok(env.index(0)?.index(0)?)
}

pub fn main() -> Result<()> {
    let (n, dim) = (10, |k: usize, edge: usize| if k == edge { 1 } else { 4 });
    let site = |k: usize, dl: usize, dr: usize| {
        let f = |i: &[usize]| ((i[0] + dl * (i[1] + 2 * i[2])) * 7 + 3 * k) % 11;
        Tensor::from_fn(&[dl, 2, dr], |i| f(i) as f64 / 11.0 - 0.3).map(TracedTensor::from)
    };
    let sites = (0..n)
        .map(|k| site(k, dim(k, 0), dim(k, n - 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let (nrm, gs) = (norm(&sites)?, grad_many(&norm(&sites)?, &sites)?);
    let euler = sites
        .iter()
        .zip(&gs)
        .fold(TracedTensor::scalar(0.0), |s, (a, g)| s + (a * g).sum());
    let out = eval_many(&[nrm, euler])?;
    let shapes = gs
        .iter()
        .map(|g| g.shape())
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "<psi|psi> = {:.6}, gradient shapes {shapes:?}",
        out[0].item::<f64>()?
    );
    assert!(
        (out[1].item::<f64>()? - 2.0 * n as f64 * out[0].item::<f64>()?).abs()
            < 1e-9 * out[0].item::<f64>()?
    );
    Ok(())
}
