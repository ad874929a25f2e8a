//! The function-style entry points JAX users reach for first, with every extension of
//! this crate (linalg kernels and AD rules, einsum) already wired in: [`jit`] and
//! [`jit_params`] (compiled closures called on host tensors), [`grad`], [`grad_params`],
//! [`jvp`] and [`eval`] (run a traced value built from constants, like JAX's eager
//! evaluation). They are re-exported at the crate root and in [`crate::prelude`].
//!
//! ```
//! use tenferro::prelude::*;
//!
//! // jax.jit(lambda v: v - 0.1 * jax.grad(lambda v: jnp.sum(v * v))(v))
//! let mut step = jit(|a| Ok(vec![&a[0] - grad(&(&a[0] * &a[0]).sum(), &a[0])? * 0.1]))?;
//! let v = step.call(&[Tensor::from_slice(&[1.0_f64, -2.0], &[2])?])?.remove(0);
//! assert_eq!(v.to_vec::<f64>()?, [0.8, -1.6]);
//! # Ok::<(), tenferro::Error>(())
//! ```

use tenferro_ad::{AdContext, AdError};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::jit::ParamsResult;
use tenferro_runtime::{GraphCompiler, GraphExecutor, Jit, Params, Program, Tensor, TracedTensor};

/// The error of every fallible operation of the crate: tracing, transforming, compiling
/// and running (runtime and host-tensor errors convert into it with `?`).
pub type Error = AdError;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`AdContext`] with the AD rules of every extension of this crate (linalg), so
/// `cholesky`, `eigh`, `triangular_solve`... differentiate.
pub fn ad_context() -> Result<AdContext> {
    AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules()?)
        .build()
}

/// A CPU executor with the runtime kernels of every extension of this crate registered.
pub fn cpu_executor() -> Result<GraphExecutor<CpuBackend>> {
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.register_extension(tenferro_linalg::register_runtime)?;
    Ok(ex)
}

/// `jax.grad`: the gradient of a scalar `loss` with respect to `x` (itself a traced value,
/// so transforms compose), through [`ad_context`].
pub fn grad(loss: &TracedTensor, x: &TracedTensor) -> Result<TracedTensor> {
    ad_context()?.grad(loss, x)
}

/// The gradients of a scalar `loss` with respect to each of `xs`.
pub fn grad_many(loss: &TracedTensor, xs: &[TracedTensor]) -> Result<Vec<TracedTensor>> {
    ad_context()?.grad_many(loss, &xs.iter().collect::<Vec<_>>())
}

/// `jax.grad` of a function of a parameter dict: the gradient of `loss` with respect to
/// every entry of `params`, under the same names.
pub fn grad_params(
    loss: &TracedTensor,
    params: &Params<TracedTensor>,
) -> Result<Params<TracedTensor>> {
    ad_context()?.grad_params(loss, params)
}

/// `jax.jvp`'s tangent output: the derivative of `y` at `x` along `tangent`. A
/// Hessian-vector product is `jvp(&grad(&loss, &x)?, &x, &v)`.
pub fn jvp(y: &TracedTensor, x: &TracedTensor, tangent: &TracedTensor) -> Result<TracedTensor> {
    ad_context()?.jvp(y, x, tangent)
}

/// Compiles and runs a traced value built from constants (no `input` placeholders), the
/// way JAX evaluates operations on concrete arrays.
///
/// ```
/// use tenferro::prelude::*;
/// let x = TracedTensor::from_tensor(Tensor::from_slice(&[3.0_f64, 4.0], &[2])?);
/// assert_eq!(eval(&(&x * &x).sum().sqrt())?.item::<f64>()?, 5.0);
/// # Ok::<(), tenferro::Error>(())
/// ```
pub fn eval(y: &TracedTensor) -> Result<Tensor> {
    Ok(eval_many(std::slice::from_ref(y))?.remove(0))
}

/// [`eval`] of several values, compiled as one program.
pub fn eval_many(ys: &[TracedTensor]) -> Result<Vec<Tensor>> {
    let program = GraphCompiler::new().compile_many(&ys.iter().collect::<Vec<_>>())?;
    Ok(cpu_executor()?.run_many(&program)?)
}

/// Compiles a traced value into a printable [`Program`] (`jax.make_jaxpr`): `{}` prints
/// its IR; errors recorded while tracing (a bad shape) are reported here.
pub fn compile(y: &TracedTensor) -> Result<Program> {
    Ok(GraphCompiler::new().compile(y)?)
}

/// `jax.jit`: a closure over traced values, traced and compiled once per input signature
/// and called on host tensors with [`Jit::call`]. Autodiff ([`grad`], [`jvp`]) may be used
/// inside, so a whole training step is one compiled program.
///
/// ```
/// use tenferro::prelude::*;
/// let mut f = jit(|a| Ok(vec![(&a[0] * &a[1]).sum()]))?;
/// let x = Tensor::from_slice(&[1.0_f64, 2.0], &[2])?;
/// assert_eq!(f.call(&[x.clone(), x])?[0].item::<f64>()?, 5.0);
/// # Ok::<(), tenferro::Error>(())
/// ```
pub fn jit<F>(f: F) -> Result<Jit<CpuBackend, F>>
where
    F: FnMut(&[TracedTensor]) -> Result<Vec<TracedTensor>>,
{
    Ok(Jit::with_executor(cpu_executor()?, f))
}

/// [`jit`] of a function of a parameter collection and further inputs that returns a
/// parameter collection (the updated weights) and further outputs (the loss), called with
/// [`Jit::call_params`]; JAX's `jax.jit` of a function of a dict.
///
/// ```
/// use tenferro::prelude::*;
/// let mut step = jit_params(|p, a| {
///     let loss = (&p["w"] * &a[0]).sum();
///     let g = grad_params(&loss, p)?;
///     Ok((p.zip_map(&g, |_, w, g| w - g * 0.5)?, vec![loss]))
/// })?;
/// let p = Params::new().with("w", Tensor::from_slice(&[1.0_f64, 1.0], &[2])?);
/// let (p, out) = step.call_params(&p, &[Tensor::from_slice(&[2.0_f64, 4.0], &[2])?])?;
/// assert_eq!((p.require("w")?.to_vec::<f64>()?, out[0].item::<f64>()?), (vec![0.0, -1.0], 6.0));
/// # Ok::<(), tenferro::Error>(())
/// ```
pub fn jit_params<F>(f: F) -> Result<Jit<CpuBackend, F>>
where
    F: FnMut(&Params<TracedTensor>, &[TracedTensor]) -> ParamsResult<Error>,
{
    Ok(Jit::with_executor(cpu_executor()?, f))
}
