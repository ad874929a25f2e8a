//! Debugging a traced program: the error of a bad op names the op and the shapes, the IR
//! of the program and of its gradient can be printed, and every pass can be observed.
//! Run: `cargo run --example debugging`.
//!
//! JAX (7 lines):
//! ```python
//! def f(x, w):
//!     return jnp.sum(jnp.tanh(x @ w))
//! print(jax.make_jaxpr(f)(x, w))
//! print(jax.make_jaxpr(jax.grad(f))(x, w))
//! try: f(x, w_bad)
//! except TypeError as e: print(e)
//! ```

use tenferro::{ad::AdContext, CompileOptions, DType, GraphCompiler, TracedTensor};

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let x = TracedTensor::input(DType::F64, &[4, 3]);
    let w = TracedTensor::input(DType::F64, &[3, 2]);
    let f = x.matmul(&w)?.tanh().sum();
    println!("{}", GraphCompiler::new().compile(&f)?);
    let g = AdContext::new().grad(&f, &w)?;
    let observed = CompileOptions::new().observer(|e| {
        println!(
            "after {}: {} instructions",
            e.pass,
            e.function.insts().len()
        )
    });
    println!("{}", GraphCompiler::with_options(observed).compile(&g)?);
    // a shape error is recorded by the operator and reported, with the shapes, at compile
    let bad = &x + &TracedTensor::input(DType::F64, &[4, 2]);
    let err = GraphCompiler::new().compile(&bad.sum()).unwrap_err();
    println!("error: {err}");
    assert!(err.to_string().contains("[4, 3]") || err.to_string().contains("f64[4,3]"));
    Ok(())
}
