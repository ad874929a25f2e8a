//! A variational ground state: minimise the Rayleigh quotient ⟨v|H|v⟩ / ⟨v|v⟩ of a 6-site
//! transverse-field Ising chain by gradient descent, and compare with `eigh`.
//! Run: `cargo run --example ground_state`.
//!
//! JAX (11 lines):
//! ```python
//! H = tfim_hamiltonian(6, g=1.0)  # 64x64, built in numpy
//! def energy(v):
//!     return v @ H @ v / (v @ v)
//! step = jax.jit(lambda v: v - 0.05 * jax.grad(energy)(v))
//! v = jnp.ones(64) / 8
//! for _ in range(400):
//!     v = step(v)
//! e0 = jnp.linalg.eigh(H)[0][0]
//! print(energy(v), e0)
//! ```

use tenferro::linalg::TracedTensorLinalgExt;
use tenferro::{
    ad::AdContext, cpu::CpuBackend, DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor,
};

/// H = -Σ Z_i Z_{i+1} - g Σ X_i on `n` sites (open chain), dense and column-major.
fn tfim(n: usize, g: f64) -> Vec<f64> {
    let dim = 1 << n;
    let mut h = vec![0.0; dim * dim];
    for s in 0..dim {
        for i in 0..n - 1 {
            let zz = if (s >> i & 1) == (s >> (i + 1) & 1) {
                1.0
            } else {
                -1.0
            };
            h[s + s * dim] -= zz;
        }
        for i in 0..n {
            h[(s ^ (1 << i)) + s * dim] -= g;
        }
    }
    h
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (n, dim) = (6, 64);
    let h = TracedTensor::from_vec_col_major(vec![dim, dim], tfim(n, 1.0));
    let v = TracedTensor::input(DType::F64, &[dim, 1]);
    let energy = (&v.mt()?.matmul(&h.matmul(&v)?)? / &v.mt()?.matmul(&v)?).reshape(&[])?;
    let step = &v - &(&AdContext::new().grad(&energy, &v)? * 0.05);
    let program = GraphCompiler::new().compile_many(&[&step, &energy])?;
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.register_extension(tenferro::linalg::register_runtime)?;
    let mut x = Tensor::from_vec_col_major(vec![dim, 1], vec![0.125_f64; dim])?;
    let mut e = 0.0;
    for _ in 0..400 {
        let out = ex.run_many_with_inputs(&program, &[(&v, x)])?;
        e = out[1].as_slice::<f64>()?[0];
        x = out[0].clone();
    }
    let (w, _) = h.eigh()?;
    let e0 = ex
        .run(&GraphCompiler::new().compile(&w)?)?
        .as_slice::<f64>()?[0];
    println!("variational energy {e:.8}, exact ground state {e0:.8}");
    assert!((e - e0).abs() < 1e-6);
    Ok(())
}
