//! Backward from recorded values against the derivation that recomputes the forward from
//! the leaves (`Mode::Vjp`, what `backward` ran before it read residuals): the gradients
//! are bit for bit the same, and the backward program holds no forward instruction.

use super::graph::{bind, leaf_value, walk, Mode, Wrt};
use super::{EagerContext, EagerTensor};
use crate::error::Result;
use num_complex::Complex64;
use tenferro_cpu::CpuBackend;
use tenferro_ir::Tensor;

/// Deterministic values in [-1, 1].
fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + 1.0) * (seed as f64 + 0.5) * 0.37).sin())
        .collect()
}

fn input(ctx: &EagerContext, shape: &[usize], seed: u64, grad: bool) -> Result<EagerTensor> {
    let n = shape.iter().product();
    Ok(ctx
        .from_vec_col_major(shape.to_vec(), values(n, seed))?
        .requires_grad(grad))
}

/// The gradients of `loss` with respect to every leaf it reaches, from `mode`'s program,
/// and the number of instructions named `op` in that program.
fn grads(loss: &EagerTensor, mode: Mode, op: &str) -> Result<(Vec<Tensor>, usize)> {
    let root = loss.node.as_ref().expect("the loss is tracked");
    let w = walk(root, Wrt::AllLeaves, mode);
    let t = loss.ctx.transform_for(&w)?;
    let wrt: Vec<Tensor> = w.wrt.iter().map(|l| leaf_value(l).clone()).collect();
    let seed = Tensor::full(&loss.ty(), 1.0);
    let out = loss
        .ctx
        .run_transform(&t, &bind(&t.derived, &w, &wrt, &[seed])?)?;
    let n = t
        .derived
        .program
        .insts()
        .iter()
        .filter(|i| i.op.name() == op)
        .count();
    Ok((out, n))
}

/// Asserts that both derivations give the same bits; returns the count of `op` in the
/// recomputing program and in the one from residuals.
fn same_bits(loss: &EagerTensor, op: &str) -> Result<(usize, usize)> {
    let (old, n_old) = grads(loss, Mode::Vjp, op)?;
    let (new, n_new) = grads(loss, Mode::Backward, op)?;
    assert_eq!(old.len(), new.len());
    for (a, b) in old.iter().zip(&new) {
        assert_eq!(a.ty(), b.ty());
        assert_eq!(format!("{:?}", a.data()), format!("{:?}", b.data()));
    }
    Ok((n_old, n_new))
}

#[test]
fn mlp_gradients_are_bitwise_equal_and_not_recomputed() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let x = input(&ctx, &[8, 4], 1, false)?;
    let y = input(&ctx, &[8, 3], 2, false)?;
    let (w1, b1) = (
        input(&ctx, &[4, 16], 3, true)?,
        input(&ctx, &[16], 4, true)?,
    );
    let (w2, b2) = (input(&ctx, &[16, 3], 5, true)?, input(&ctx, &[3], 6, true)?);
    let h = (&x.matmul(&w1)? + &b1).tanh()?;
    let d = &(&h.matmul(&w2)? + &b2) - &y;
    let loss = (&d * &d).reduce_mean(&[0, 1])?;
    assert_eq!(same_bits(&loss, "tanh")?, (1, 0), "tanh ran again");
    // Forward: x·W1, h·W2. Backward: dW2 = hᵀ·g, dh = g·W2ᵀ, dW1 = xᵀ·dpre (x is not
    // differentiated: no dx).
    assert_eq!(same_bits(&loss, "dot_general")?, (2 + 3, 3));
    // The forward's `h·W2 + b2 - y` is not computed again either.
    assert_eq!(same_bits(&loss, "sub")?.1, 1, "only 1 - tanh² subtracts");
    Ok(())
}

#[test]
fn chain_reusing_values_is_bitwise_equal() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let x = input(&ctx, &[5], 7, true)?;
    let a = x.sin()?;
    let b = &a * &a;
    let c = (&b + &a).exp()?;
    let loss = (&(&c * &x) + &b).sum()?;
    assert_eq!(same_bits(&loss, "sin")?, (1, 0));
    assert_eq!(same_bits(&loss, "exp")?, (1, 0));
    Ok(())
}

#[test]
fn complex_values_are_bitwise_equal() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let re = values(4, 8);
    let im = values(4, 9);
    let z = ctx
        .from_vec_col_major(
            vec![4],
            re.iter()
                .zip(&im)
                .map(|(&r, &i)| Complex64::new(r, i))
                .collect(),
        )?
        .requires_grad(true);
    let e = z.exp()?;
    let loss = (&(&e * &z.conj()?) + &(&z * &z)).real()?.sum()?;
    assert_eq!(same_bits(&loss, "exp")?, (1, 0));
    Ok(())
}

#[test]
fn leaves_without_grad_are_bitwise_equal() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let x = input(&ctx, &[3, 3], 10, true)?;
    let c = input(&ctx, &[3, 3], 11, false)?;
    // A tracked value cut off with detach, and a leaf the loss uses only through it.
    let frozen = input(&ctx, &[3, 3], 12, true)?;
    let d = frozen.tanh()?.detach();
    let loss = (&(&x.matmul(&c)?.tanh()? * &d) + &x).sum()?;
    let (old, _) = grads(&loss, Mode::Vjp, "tanh")?;
    assert_eq!(old.len(), 1, "only x is differentiated");
    assert_eq!(same_bits(&loss, "tanh")?, (1, 0));
    loss.backward()?;
    assert!(frozen.grad().is_none() && x.grad().is_some());
    Ok(())
}
