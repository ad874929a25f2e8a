//! The norm ⟨ψ|ψ⟩ of a matrix product state and its gradient with respect to every site
//! tensor, with einsum. Run: `cargo run --example mps_norm`.
//!
//! JAX (9 lines):
//! ```python
//! def norm(As):
//!     E = jnp.ones((1, 1))
//!     for A in As:
//!         E = jnp.einsum("ab,asc,bsd->cd", E, A, A)
//!     return E[0, 0]
//! As = [A0, ..., A9]  # (D_left, d, D_right)
//! n = norm(As)
//! gs = jax.grad(norm)(As)
//! print(n, [g.shape for g in gs])
//! ```

use tenferro::einsum::einsum;
use tenferro::{ad::AdContext, cpu::CpuBackend, GraphCompiler, GraphExecutor, TracedTensor};

/// A site tensor `[dl, d, dr]` with deterministic entries.
fn site(k: usize, dl: usize, d: usize, dr: usize) -> TracedTensor {
    let v = (0..dl * d * dr).map(|i| ((i * 7 + k * 3) % 11) as f64 / 11.0 - 0.3);
    TracedTensor::from_vec_col_major(vec![dl, d, dr], v.collect())
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, d, bond) = (10, 2, 4);
    let dims = |k: usize| {
        (
            if k == 0 { 1 } else { bond },
            if k == n - 1 { 1 } else { bond },
        )
    };
    let sites: Vec<TracedTensor> = (0..n).map(|k| site(k, dims(k).0, d, dims(k).1)).collect();
    let mut env = TracedTensor::from_vec_col_major(vec![1, 1], vec![1.0_f64]);
    for a in &sites {
        env = einsum("ab,asc,bsd->cd", &[&env, a, a])?;
    }
    let norm = env.reshape(&[])?;
    let grads = AdContext::new().grad_many(&norm, &sites.iter().collect::<Vec<_>>())?;
    let mut outs = vec![&norm];
    outs.extend(grads.iter());
    let values = GraphExecutor::new(CpuBackend::new())
        .run_many(&GraphCompiler::new().compile_many(&outs)?)?;
    println!("<psi|psi> = {:.6}", values[0].as_slice::<f64>()?[0]);
    println!(
        "gradient shapes: {:?}",
        values[1..]
            .iter()
            .map(|g| g.shape().to_vec())
            .collect::<Vec<_>>()
    );
    Ok(())
}
