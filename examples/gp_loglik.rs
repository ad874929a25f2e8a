//! Fits the hyperparameters of a Gaussian process by gradient ascent on its log marginal
//! likelihood, computed through a Cholesky factorization (tenferro-linalg), with the
//! gradient from reverse-mode AD through `linalg.cholesky` and `linalg.triangular_solve`.
//!
//! Model: `y ~ N(0, K)`, `K_ij = σ_f² exp(-(x_i - x_j)² / (2ℓ²)) + σ_n² δ_ij`, with
//! `θ = (ln ℓ, ln σ_f, ln σ_n)`. With `K = L Lᵀ` and `z = L⁻¹ y`:
//! `log p(y) = -½ zᵀz - Σ ln L_ii - (n/2) ln 2π`.
//!
//! The program (loss and gradient) is compiled once with `θ` as a placeholder and run at
//! every step; its IR is printed. Run: `cargo run --example gp_loglik`.

use std::error::Error;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::{TracedTensorLinalgExt, TriangularSolve};
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// `θ[i]` as a scalar.
fn component(theta: &TracedTensor, i: usize) -> Result<TracedTensor, Box<dyn Error>> {
    Ok(theta.slice(&[i], &[i + 1])?.reshape(&[])?)
}

fn main() -> Result<(), Box<dyn Error>> {
    // Data: noisy samples of sin on [0, 5] (deterministic "noise").
    let n = 12;
    let xs: Vec<f64> = (0..n).map(|i| 5.0 * i as f64 / (n - 1) as f64).collect();
    let ys: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| x.sin() + 0.1 * ((i * 7 % 5) as f64 - 2.0) / 2.0)
        .collect();
    let mut d2 = vec![0.0; n * n];
    for j in 0..n {
        for i in 0..n {
            d2[i + j * n] = (xs[i] - xs[j]).powi(2);
        }
    }
    let mut eye = vec![0.0; n * n];
    for i in 0..n {
        eye[i + i * n] = 1.0;
    }
    let d2 = TracedTensor::from_vec_col_major(vec![n, n], d2);
    let eye = TracedTensor::from_vec_col_major(vec![n, n], eye);
    let y = TracedTensor::from_vec_col_major(vec![n, 1], ys);

    // log p(y | θ), traced once with θ as a placeholder.
    let theta = TracedTensor::input(DType::F64, &[3]);
    let (log_l, log_sf, log_sn) = (
        component(&theta, 0)?,
        component(&theta, 1)?,
        component(&theta, 2)?,
    );
    let inv_two_l2 = (&log_l * -2.0).exp() * 0.5;
    let k = &(&(&log_sf * 2.0).exp() * &(-(&d2 * &inv_two_l2)).exp())
        + &(&(&log_sn * 2.0).exp() * &eye);
    let chol = k.cholesky()?;
    let z = chol.triangular_solve(&y, TriangularSolve::default())?;
    let log_diag = (&chol * &eye).reduce_sum(&[1]).log().sum();
    let half_n_log_2pi = 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    let loglik = &(&(&(&z * &z).sum() * -0.5) - &log_diag) - half_n_log_2pi;

    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules()?)
        .build()?;
    let grad = ad.grad(&loglik, &theta)?;
    let program = GraphCompiler::new().compile_many(&[&loglik, &grad])?;
    println!("{program}");

    let mut executor = GraphExecutor::new(CpuBackend::new());
    executor.register_extension(tenferro_linalg::register_runtime)?;

    let mut th = vec![0.0_f64, 0.0, -1.0]; // ℓ = 1, σ_f = 1, σ_n = e⁻¹

    // The AD gradient agrees with central finite differences of the same program.
    let mut eval = |t: &[f64]| -> Result<Vec<Tensor>, Box<dyn Error>> {
        Ok(executor.run_many_with_inputs(
            &program,
            &[(&theta, Tensor::from_vec_col_major(vec![3], t.to_vec())?)],
        )?)
    };
    let g0 = eval(&th)?[1].as_slice::<f64>()?.to_vec();
    for i in 0..3 {
        let eps = 1e-6;
        let (mut tp, mut tm) = (th.clone(), th.clone());
        tp[i] += eps;
        tm[i] -= eps;
        let fd = (eval(&tp)?[0].as_slice::<f64>()?[0] - eval(&tm)?[0].as_slice::<f64>()?[0])
            / (2.0 * eps);
        if (fd - g0[i]).abs() > 1e-5 * fd.abs().max(1.0) {
            return Err(format!("gradient {i}: AD {} vs finite difference {fd}", g0[i]).into());
        }
    }
    println!("gradient at θ₀ {g0:.6?} matches finite differences");
    let lr = 0.05;
    let mut last = f64::NEG_INFINITY;
    println!(
        "{:>4} {:>14} {:>8} {:>8} {:>8}",
        "step", "log p(y|θ)", "ℓ", "σ_f", "σ_n"
    );
    for step in 0..=30 {
        let out = executor.run_many_with_inputs(
            &program,
            &[(&theta, Tensor::from_vec_col_major(vec![3], th.clone())?)],
        )?;
        let value = out[0].as_slice::<f64>()?[0];
        let g = out[1].as_slice::<f64>()?.to_vec();
        if step % 5 == 0 {
            println!(
                "{step:>4} {value:>14.6} {:>8.4} {:>8.4} {:>8.4}",
                th[0].exp(),
                th[1].exp(),
                th[2].exp()
            );
        }
        if value < last - 1e-9 {
            return Err(format!("the objective fell at step {step}: {last} -> {value}").into());
        }
        last = value;
        for (t, gi) in th.iter_mut().zip(&g) {
            *t += lr * gi;
        }
    }
    println!("log-likelihood rose to {last:.6}");
    Ok(())
}
