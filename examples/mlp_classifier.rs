//! A two-layer MLP classifier on a synthetic two-class problem, trained with softmax
//! cross-entropy by gradient descent as one compiled step.
//! Run: `cargo run --example mlp_classifier`.
//!
//! Code lines (after rustfmt; without blank lines, comments and this header): Rust N_RUST,
//! JAX N_JAX (the program below, imports included).
//!
//! JAX:
//! ```python
//! import jax, jax.numpy as jnp, numpy as np
//! def loss(p, x, y):
//!     h = jax.nn.relu(x @ p["w1"] + p["b1"])
//!     logits = h @ p["w2"] + p["b2"]
//!     return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits), -1))
//! @jax.jit
//! def step(p, x, y):
//!     l, g = jax.value_and_grad(loss)(p, x, y)
//!     return jax.tree.map(lambda a, b: a - 0.5 * b, p, g), l
//! i = np.arange(64); s, t = 1 - 2 * (i % 2), i / 64 * 3
//! x = jnp.stack([s * np.cos(t) + 0.1 * np.sin(1.7 * i), s * np.sin(t) + 0.1 * np.cos(2.3 * i)], 1)
//! y = jax.nn.one_hot(i % 2, 2)
//! shapes = {"w1": (2, 16), "b1": (1, 16), "w2": (16, 2), "b2": (1, 2)}
//! init = lambda k, s: np.fromfunction(lambda a, b: ((13 * a + 7 * b + k) % 17) / 17 * 0.8 - 0.4, s)
//! p = {n: jnp.asarray(init(k, s)) for k, (n, s) in enumerate(shapes.items())}
//! for _ in range(200):
//!     p, l = step(p, x, y)
//! print(l)
//! assert l < 0.3
//! ```

use tenferro::prelude::*;

fn loss(p: &Params<TracedTensor>, x: &TracedTensor, y: &TracedTensor) -> Result<TracedTensor> {
    let h = (x.matmul(&p["w1"])? + &p["b1"]).relu();
    let logits = h.matmul(&p["w2"])? + &p["b2"];
    Ok(-(y * logits.log_softmax(-1)).sum_axes(&[-1], false).mean())
}

pub fn main() -> Result<()> {
    let mut step = jit_params(|p, a| {
        let (l, g) = (
            loss(p, &a[0], &a[1])?,
            grad_params(&loss(p, &a[0], &a[1])?, p)?,
        );
        Ok((p.zip_map(&g, |_, w, g| w - g * 0.5)?, vec![l]))
    })?;
    let x = Tensor::from_fn(&[64, 2], |ix| {
        let (i, s, t) = (
            ix[0] as f64,
            1.0 - 2.0 * (ix[0] % 2) as f64,
            ix[0] as f64 / 64.0 * 3.0,
        );
        [
            s * t.cos() + 0.1 * (1.7 * i).sin(),
            s * t.sin() + 0.1 * (2.3 * i).cos(),
        ][ix[1]]
    })?;
    let y = Tensor::from_fn(&[64, 2], |ix| f64::from(ix[1] == ix[0] % 2))?;
    let shapes = [
        ("w1", [2, 16]),
        ("b1", [1, 16]),
        ("w2", [16, 2]),
        ("b2", [1, 2]),
    ];
    let init = |k: usize, s| {
        Tensor::from_fn(s, |i| {
            ((13 * i[0] + 7 * i[1] + k) % 17) as f64 / 17.0 * 0.8 - 0.4
        })
    };
    let mut p = shapes
        .iter()
        .enumerate()
        .map(|(k, (n, s))| Ok((*n, init(k, s)?)))
        .collect::<Result<Params<_>>>()?;
    let mut out = Vec::new();
    for _ in 0..200 {
        (p, out) = step.call_params(&p, &[x.clone(), y.clone()])?;
    }
    println!("loss after 200 steps: {:.6}", out[0].item::<f64>()?);
    assert!(out[0].item::<f64>()? < 0.3);
    Ok(())
}
