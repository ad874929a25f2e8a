//! A two-layer MLP classifier on a synthetic two-class problem, trained with softmax
//! cross-entropy by gradient descent: once as a compiled traced step, once in eager mode,
//! with the same result. Run: `cargo run --example mlp_classifier`.
//!
//! JAX (13 lines):
//! ```python
//! def loss(p, x, y):
//!     h = jax.nn.relu(x @ p["w1"] + p["b1"])
//!     logits = h @ p["w2"] + p["b2"]
//!     return -jnp.mean(jnp.sum(jax.nn.one_hot(y, 2) * jax.nn.log_softmax(logits), -1))
//! @jax.jit
//! def step(p, x, y):
//!     g = jax.grad(loss)(p, x, y)
//!     return jax.tree.map(lambda a, b: a - 0.5 * b, p, g)
//! p = init()
//! for _ in range(200):
//!     p = step(p, x, y)
//! print(loss(p, x, y))
//! ```

use tenferro::ad::{AdContext, EagerContext, EagerTensor};
use tenferro::{cpu::CpuBackend, DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

const N: usize = 64;

/// Points on two interleaved spirals-ish arcs (row i of x is a point), labels as one-hot.
fn data() -> (Tensor, Tensor) {
    let (mut x, mut y) = (vec![0.0; N * 2], vec![0.0; N * 2]);
    for i in 0..N {
        let (c, t) = (i % 2, i as f64 / N as f64 * 3.0);
        let s = if c == 0 { 1.0 } else { -1.0 };
        x[i] = s * t.cos() + 0.1 * (i as f64 * 1.7).sin();
        x[i + N] = s * t.sin() + 0.1 * (i as f64 * 2.3).cos();
        y[i + N * c] = 1.0;
    }
    (
        Tensor::from_vec_col_major(vec![N, 2], x).unwrap(),
        Tensor::from_vec_col_major(vec![N, 2], y).unwrap(),
    )
}

fn init(shape: &[usize], k: usize) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| (((i * 13 + k * 7) % 17) as f64 / 17.0 - 0.5) * 0.8);
    Tensor::from_vec_col_major(shape.to_vec(), v.collect()).unwrap()
}

/// The loss, written once for traced and (through `EagerTensor`'s identical methods) eager use.
fn loss(
    p: &[TracedTensor],
    x: &TracedTensor,
    y: &TracedTensor,
) -> tenferro::runtime::Result<TracedTensor> {
    let h = (&x.matmul(&p[0])? + &p[1]).relu();
    let logits = &h.matmul(&p[2])? + &p[3];
    Ok(-(y * &logits.log_softmax(-1)).sum_axes(&[-1], false).mean())
}

fn eager_loss(
    p: &[EagerTensor],
    x: &EagerTensor,
    y: &EagerTensor,
) -> tenferro::ad::Result<EagerTensor> {
    let h = (x.matmul(&p[0])? + &p[1]).relu()?;
    let logits = h.matmul(&p[2])? + &p[3];
    Ok(-(y * logits.log_softmax(-1)?)
        .sum_axes(&[-1], false)?
        .mean()?)
}

pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (xv, yv) = data();
    let shapes: [&[usize]; 4] = [&[2, 16], &[1, 16], &[16, 2], &[1, 2]];
    // traced: one compiled step
    let p: Vec<TracedTensor> = shapes
        .iter()
        .map(|s| TracedTensor::input(DType::F64, s))
        .collect();
    let (x, y) = (
        TracedTensor::input(DType::F64, &[N, 2]),
        TracedTensor::input(DType::F64, &[N, 2]),
    );
    let l = loss(&p, &x, &y)?;
    let grads = AdContext::new().grad_many(&l, &p.iter().collect::<Vec<_>>())?;
    let next: Vec<TracedTensor> = p.iter().zip(&grads).map(|(w, g)| w - &(g * 0.5)).collect();
    let mut outs: Vec<&TracedTensor> = next.iter().collect();
    outs.push(&l);
    let step = GraphCompiler::new().compile_many(&outs)?;
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let mut params: Vec<Tensor> = shapes.iter().enumerate().map(|(k, s)| init(s, k)).collect();
    let mut traced_loss = 0.0;
    for _ in 0..200 {
        let mut bind: Vec<(&TracedTensor, Tensor)> = p.iter().zip(params.clone()).collect();
        bind.push((&x, xv.clone()));
        bind.push((&y, yv.clone()));
        let out = ex.run_many_with_inputs(&step, &bind)?;
        traced_loss = out[4].as_slice::<f64>()?[0];
        params = out[..4].to_vec();
    }
    // eager: the same training loop, PyTorch style
    let ctx = EagerContext::new(CpuBackend::new());
    let (xe, ye) = (ctx.from_tensor(xv), ctx.from_tensor(yv));
    let mut pe: Vec<EagerTensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| ctx.from_tensor(init(s, k)).requires_grad(true))
        .collect();
    let mut eager = 0.0;
    for _ in 0..200 {
        let l = eager_loss(&pe, &xe, &ye)?;
        l.backward()?;
        eager = l.value()?.as_slice::<f64>()?[0];
        let _no_grad = ctx.no_grad_guard();
        for w in &mut pe {
            let g = ctx.from_tensor(w.grad().ok_or("a parameter got no gradient")?);
            *w = (&*w - g * 0.5).requires_grad(true);
        }
    }
    println!("loss after 200 steps: traced {traced_loss:.6}, eager {eager:.6}");
    assert!((traced_loss - eager).abs() < 1e-9 && traced_loss < 0.3);
    Ok(())
}
