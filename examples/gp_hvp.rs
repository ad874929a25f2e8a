//! Gaussian-process regression: the negative log marginal likelihood of the kernel
//! hyperparameters θ = (ln ℓ, ln σ_f, ln σ_n), its gradient, and a Hessian-vector product
//! (jvp of grad) checked against finite differences of the gradient.
//! Run: `cargo run --example gp_hvp`.
//!
//! JAX (12 lines):
//! ```python
//! def nll(t, x, y):
//!     K = jnp.exp(2*t[1]) * jnp.exp(-(x[:, None] - x[None, :])**2 / (2*jnp.exp(2*t[0])))
//!     K = K + jnp.exp(2*t[2]) * jnp.eye(len(x))
//!     L = jnp.linalg.cholesky(K)
//!     z = jax.scipy.linalg.solve_triangular(L, y, lower=True)
//!     return 0.5 * z @ z + jnp.sum(jnp.log(jnp.diag(L)))
//! g = jax.grad(nll)(t, x, y)
//! hvp = jax.jvp(lambda t: jax.grad(nll)(t, x, y), (t,), (v,))[1]
//! eps = 1e-5
//! fd = (jax.grad(nll)(t + eps*v, x, y) - jax.grad(nll)(t - eps*v, x, y)) / (2*eps)
//! print(g, hvp, fd)
//! ```

use tenferro::linalg::{TracedTensorLinalgExt, TriangularSolve};
use tenferro::{
    ad::AdContext, cpu::CpuBackend, DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor,
};

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 10;
    let xs: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|x| x.sin() + 0.05 * (3.0 * x).cos())
        .collect();
    let x = TracedTensor::from_vec_col_major(vec![n], xs);
    let y = TracedTensor::from_vec_col_major(vec![n, 1], ys);
    let t = TracedTensor::input(DType::F64, &[3]);
    let v = TracedTensor::input(DType::F64, &[3]);
    let th = |i: usize| t.slice(&[i], &[i + 1]).and_then(|s| s.reshape(&[]));
    let d = &x.reshape(&[n, 1])? - &x.reshape(&[1, n])?;
    let k = &(&(&th(1)? * 2.0).exp() * &(-(&(&d * &d) / &((&th(0)? * 2.0).exp() * 2.0))).exp())
        + &(&(&th(2)? * 2.0).exp() * &TracedTensor::eye(DType::F64, n, None, 0)?);
    let l = k.cholesky()?;
    let z = l.triangular_solve(&y, TriangularSolve::default())?;
    let nll = &((&z * &z).sum() * 0.5) + &l.diagonal(0, 0, 1)?.log().sum();
    let ad = AdContext::builder()
        .with_extension_rules(tenferro::linalg::ad_rules()?)
        .build()?;
    let g = ad.grad(&nll, &t)?;
    let hvp = ad.jvp(&g, &t, &v)?;
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.register_extension(tenferro::linalg::register_runtime)?;
    let program = GraphCompiler::new().compile_many(&[&g, &hvp])?;
    let run = |ex: &mut GraphExecutor<CpuBackend>,
               tv: Vec<f64>|
     -> Result<Vec<Tensor>, Box<dyn std::error::Error>> {
        let tv = Tensor::from_vec_col_major(vec![3], tv)?;
        let vv = Tensor::from_vec_col_major(vec![3], vec![0.3, -0.2, 0.5])?;
        Ok(ex.run_many_with_inputs(&program, &[(&t, tv), (&v, vv)])?)
    };
    let theta = [0.1, 0.0, -1.5];
    let out = run(&mut ex, theta.to_vec())?;
    let eps = 1e-5;
    let at = |s: f64| {
        theta
            .iter()
            .zip([0.3, -0.2, 0.5])
            .map(|(a, b)| a + s * b)
            .collect::<Vec<f64>>()
    };
    let (gp, gm) = (run(&mut ex, at(eps))?, run(&mut ex, at(-eps))?);
    let fd: Vec<f64> = (0..3)
        .map(|i| {
            (gp[0].as_slice::<f64>().unwrap()[i] - gm[0].as_slice::<f64>().unwrap()[i])
                / (2.0 * eps)
        })
        .collect();
    println!(
        "grad {:?}\nhvp  {:?}\nfd   {fd:?}",
        out[0].as_slice::<f64>()?,
        out[1].as_slice::<f64>()?
    );
    for (h, f) in out[1].as_slice::<f64>()?.iter().zip(&fd) {
        assert!((h - f).abs() < 1e-5 * (1.0 + f.abs()));
    }
    Ok(())
}
