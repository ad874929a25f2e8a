//! # tenferro-ad
//!
//! Automatic differentiation as IR → IR transforms, in JAX's model:
//!
//! - **jvp** ([`jvp_function`]): one JVP rule per primitive pushes tangents forward next
//!   to the primal computation. Tangents may be symbolic zeros (`None`), which are never
//!   materialised; integer and bool values have no tangent.
//! - **linearize** ([`linearize()`]): jvp with the tangents as fresh placeholders, then
//!   partial evaluation (lowering with the placeholders as the cut) so that the linear
//!   function holds only tangent-dependent instructions; primal residuals become its
//!   parameters.
//! - **transpose** ([`transpose_function`]): one transpose rule per linear primitive turns
//!   the linear function into its adjoint.
//! - **vjp** = linearize + transpose ([`vjp_function`]); **grad** = vjp with a cotangent of
//!   one on a scalar loss.
//!
//! The entry points on traced values are [`AdContext`] (`grad`, `vjp`, `jvp`, their
//! `_many` forms, `value_and_grad`) and the method syntax of [`TracedTensorAdExt`]. Their
//! results are ordinary `TracedTensor`s, so transforms compose: `jvp(grad(f))` is a
//! Hessian-vector product, `grad(grad(f))` a second derivative, and so on to any order.
//! The lower-level transforms work on any [`tenferro_ir::Function`] with traced primal
//! values, which is what eager mode reuses on recorded programs.
//!
//! ```
//! use tenferro_ad::{AdContext, TracedTensorAdExt};
//! use tenferro_cpu::CpuBackend;
//! use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};
//!
//! let x = TracedTensor::from_vec_col_major(vec![2], vec![0.5_f64, -1.0]);
//! let loss = (&x * &x.sin()).sum();
//! let g = loss.grad(&x).unwrap(); // sin x + x cos x
//! let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
//! let h = AdContext::new().jvp(&g, &x, &ones).unwrap(); // 2 cos x - x sin x
//! let program = GraphCompiler::new().compile_many(&[&g, &h]).unwrap();
//! let out = GraphExecutor::new(CpuBackend::new()).run_many(&program).unwrap();
//! let d2 = out[1].as_slice::<f64>().unwrap();
//! assert!((d2[0] - (2.0 * 0.5_f64.cos() - 0.5 * 0.5_f64.sin())).abs() < 1e-12);
//! ```
//!
//! ## Beyond grad
//!
//! - `grad_optional` / `vjp_optional` / `jvp_optional` (and `_many`) return `None` where
//!   the output does not depend on an input; the plain forms return zeros.
//! - [`AdContext::jacfwd`], [`AdContext::jacrev`], [`AdContext::hessian`] (and `_many`)
//!   build whole Jacobians as one traced program, shape `shape(y) ++ shape(x)` (see
//!   [`jacobian`]).
//! - [`AdContext::custom_jvp`], [`AdContext::custom_vjp`] and [`AdContext::checkpoint`]
//!   give a traced function user-defined derivatives or rematerialisation (see
//!   [`custom`]); they rest on the IR's `barrier` op.
//!
//! ## Semantics
//!
//! - A loss that does not depend on `x` has gradient zeros of `x`'s type (as JAX).
//! - `grad` of a value with more than one element is [`AdError::NonScalarLoss`].
//! - Broadcasting (`broadcast_in_dim`) transposes to a sum over the broadcast axes, so the
//!   gradient of a broadcast operand has the operand's shape.
//! - `maximum` / `minimum` send half the tangent / cotangent to each operand where they
//!   tie; `reduce_max` / `reduce_min` split it evenly among all tied elements (as JAX).
//! - Values at non-differentiable points follow JAX: `d|x|/dx = sign(x)`, which is `0` at
//!   `x = 0`; `sqrt'(0) = +inf` (so a zero tangent through `sqrt` at 0 gives NaN);
//!   `sign' = 0` for reals; `d(x^y)/dx = 0` where `y = 0`, and `d(x^y)/dy` uses `ln 1`
//!   where `x = 0`. For complex `z`, `d|z| = Re(conj(sign z)·dz)` and
//!   `d sign(z) = i·sign(z)·Im(conj(sign z)·dz)/|z|`, both `0` at `z = 0`.
//! - `reduce_prod`'s derivative is exact at zeros and costs O(n): with `z` zeros in a
//!   reduced group and `P` the product of its non-zero elements, the product of the
//!   others is `P / x_i` when `z = 0`, `P` at the zero when `z = 1`, and 0 otherwise.
//!
//! ## Complex numbers
//!
//! Forward mode is the ordinary derivative: for a holomorphic `f`, `jvp` gives
//! `f'(z)·dz`; for non-holomorphic ops (`abs`, `conj`, `real`, `imag`, `sign`) it is the
//! real-linear directional derivative. Reverse mode is the adjoint under the real inner
//! product `⟨a, b⟩ = Re(Σ conj(a)·b)`: `vjp` returns `Jᵀ·ct` with
//! `⟨ct, J·t⟩ = ⟨Jᵀ·ct, t⟩` for all `t`. Consequences:
//!
//! - for a real loss `L` of `z = x + iy`, `grad` is `∂L/∂x + i·∂L/∂y` (PyTorch's value;
//!   JAX returns its conjugate);
//! - for a holomorphic `f`, the vjp with cotangent `c` is `c·conj(f'(z))`;
//! - `grad` of a complex scalar uses the cotangent `1 + 0i`, i.e. it is the gradient of
//!   the loss's real part.
//!
//! Worked example: `L(z) = |z|² = x² + y²`, traced as `real(z·conj(z))`. Then
//! `∂L/∂x = 2x`, `∂L/∂y = 2y`, and `grad` returns `2x + 2iy = 2z`; at `z = 3 + 4i` that is
//! `6 + 8i` (JAX gives `6 − 8i`). Step by step: `real` transposes the cotangent `1` to
//! `1 + 0i`; the product `z·conj(z)` sends `1·conj(conj z) = z` to its first factor and
//! `1·conj(z)` to the `conj` node, which transposes it to `z`; the two add up to `2z`.
//!
//! ## Extension ops
//!
//! An extension op (e.g. `linalg.cholesky`) is differentiable only through the
//! [`Rules`] an [`AdContext`] was built with. Reaching one with no rule is
//! [`AdError::MissingRule`] naming the op and the mode (`jvp` or `transpose`), never a
//! silent zero; two rule sets covering one op make `build` fail with
//! [`AdError::DuplicateRule`].

mod build;
pub mod context;
pub mod custom;
pub mod eager;
pub mod error;
pub mod jacobian;
pub mod jvp;
pub mod linearize;
pub mod rules;
pub mod transpose;
pub mod vmap;

pub use context::{AdContext, AdContextBuilder, TracedTensorAdExt};
pub use custom::CustomFn;
pub use eager::{EagerContext, EagerStats, EagerTensor, NoGradGuard, OpKey};
pub use error::{AdError, Result};
pub use jvp::{jvp_function, JvpOutputs};
pub use linearize::{linearize, vjp_function, vjp_functions, Linearized, VjpFunctions};
pub use rules::{ExtensionRule, Rules, TransposeArg};
pub use transpose::transpose_function;
pub use vmap::{vmap, Vmapped};
