//! Debugging a traced program: the IR of the program and of its gradient can be printed,
//! and the error of a bad op names the op and the shapes. (`cargo run --example dump-ir`
//! prints the IR after every compiler pass.) Run: `cargo run --example debugging`.
//!
//! Size: 12 code lines of Rust for 8 of JAX (1.50x). Counted after rustfmt: every line that
//! is not blank and not a comment (doc comments and this header with the JAX version
//! excluded); the JAX program below likewise, imports included.
//!
//! JAX:
//! ```python
//! import jax, jax.numpy as jnp
//! def f(x, w):
//!     return jnp.sum(jnp.tanh(x @ w))
//! x, w, w_bad = jnp.ones((4, 3)), jnp.ones((3, 2)), jnp.ones((4, 2))
//! print(jax.make_jaxpr(f)(x, w))
//! print(jax.make_jaxpr(jax.grad(f, 1))(x, w))
//! try: f(x, w_bad)
//! except TypeError as e: print(e)
//! ```

use tenferro::prelude::*;

pub fn main() -> Result<()> {
    let x = TracedTensor::input(DType::F64, &[4, 3]);
    let w = TracedTensor::input(DType::F64, &[3, 2]);
    let w_bad = TracedTensor::input(DType::F64, &[4, 2]);
    let f = x.matmul(&w)?.tanh().sum();
    println!("{}\n{}", compile(&f)?, compile(&grad(&f, &w)?)?);
    let err = x.matmul(&w_bad).unwrap_err();
    println!("error: {err}");
    assert!(err.to_string().contains("matmul") && err.to_string().contains("[4, 2]"));
    Ok(())
}
