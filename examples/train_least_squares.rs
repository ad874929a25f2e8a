//! Least squares by gradient descent in eager mode: `min_w mean((A w - b)²)`, PyTorch
//! style (`requires_grad`, `backward`, `grad`, an update under `no_grad`). The loss falls
//! toward the noise floor and `w` approaches the weights that generated `b`.
//!
//! `cargo run --example train_least_squares`

use tenferro::ad::{EagerContext, Result};
use tenferro::cpu::CpuBackend;

/// Deterministic pseudo-random numbers in [-1, 1) (a linear congruential generator).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn main() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::new());
    let (m, n) = (64, 3);
    let w_true = [1.5, -2.0, 0.5];
    let a_data = noise(m * n, 7);
    // b = A w_true + 0.01 noise (column-major A: element (i, j) at i + m j).
    let eps = noise(m, 11);
    let b_data: Vec<f64> = (0..m)
        .map(|i| (0..n).map(|j| a_data[i + m * j] * w_true[j]).sum::<f64>() + 0.01 * eps[i])
        .collect();
    let a = ctx.from_vec_col_major(vec![m, n], a_data)?;
    let b = ctx.from_vec_col_major(vec![m], b_data)?;

    let mut w = ctx
        .from_vec_col_major(vec![n], vec![0.0_f64; n])?
        .requires_grad(true);
    let lr = 0.1;
    let mut first = None;
    let mut last = 0.0;
    for step in 0..=150 {
        let r = a.matmul(&w)? - &b;
        let loss = (&r * &r).reduce_mean(&[0])?;
        loss.backward()?;
        let g = ctx.from_tensor(w.grad().expect("w is a tracked leaf"));
        last = loss.to_vec::<f64>()?[0];
        first.get_or_insert(last);
        if step % 15 == 0 {
            println!("step {step:3}  loss {last:.3e}");
        }
        // The update is not part of the graph; the new weights are a fresh leaf.
        w = ctx.no_grad(|| &w - &(&g * lr)).requires_grad(true);
    }
    println!("w = {:?} (true {w_true:?})", w.to_vec::<f64>()?);
    let s = ctx.stats();
    println!(
        "{} ops run, {} compiled; {} backward runs, {} backward program(s) derived",
        s.ops_run, s.ops_compiled, s.transforms_run, s.transforms_compiled
    );
    assert!(
        last < first.unwrap_or(f64::INFINITY) * 1e-3,
        "the loss did not fall"
    );
    Ok(())
}
