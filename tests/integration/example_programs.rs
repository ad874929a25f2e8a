//! The five programs of the guides run (small sizes) and check their own results.

#[path = "../../examples/debugging.rs"]
mod debugging;
#[path = "../../examples/gp_hvp.rs"]
mod gp_hvp;
#[path = "../../examples/ground_state.rs"]
mod ground_state;
#[path = "../../examples/mlp_classifier.rs"]
mod mlp_classifier;
#[path = "../../examples/mps_norm.rs"]
mod mps_norm;

#[test]
fn mps_norm_gradient_satisfies_eulers_theorem() {
    mps_norm::main().unwrap();
}

#[test]
fn variational_ground_state_reaches_the_eigh_ground_energy() {
    ground_state::main().unwrap();
}

#[test]
fn mlp_classifier_trains_below_the_target_loss() {
    mlp_classifier::main().unwrap();
}

#[test]
fn gp_regression_hvp_matches_finite_differences() {
    gp_hvp::main().unwrap();
}

#[test]
fn debugging_reports_the_bad_op_and_prints_the_ir() {
    debugging::main().unwrap();
}

use tenferro::ad::{EagerContext, EagerTensor};
use tenferro::prelude::*;

/// The MLP loss in eager mode; `p` in name order (b1, b2, w1, w2).
fn mlp_eager_loss(
    p: &[EagerTensor],
    x: &EagerTensor,
    y: &EagerTensor,
) -> tenferro::ad::Result<EagerTensor> {
    let h = (x.matmul(&p[2])? + &p[0]).relu()?;
    let logits = h.matmul(&p[3])? + &p[1];
    Ok(-(y * logits.log_softmax(-1)?)
        .sum_axes(&[-1], false)?
        .mean()?)
}

/// The example's loss trained as a `jit_params` step (tree-mapped update) and the same
/// loss written for eager mode train the same.
#[test]
fn jit_params_training_matches_eager_training() -> Result<()> {
    let x = Tensor::from_fn([8, 2], |[i, j]| ((3 * i + 5 * j) % 7) as f64 / 7.0 - 0.5)?;
    let y = Tensor::from_fn([8, 2], |[i, j]| f64::from(j == i % 2))?;
    let init = |k, s| Tensor::from_fn(s, |[a, b]| ((13 * a + 7 * b + k) % 17) as f64 / 21.25 - 0.4);
    let mut p = Params::new().with("b1", init(1, [1, 4])?);
    p = p.with("w1", init(0, [2, 4])?).with("b2", init(3, [1, 2])?);
    p = p.with("w2", init(2, [4, 2])?);
    let ctx = EagerContext::new(CpuBackend::new());
    let (xe, ye) = (ctx.from_tensor(x.clone()), ctx.from_tensor(y.clone()));
    // name order: b1, b2, w1, w2
    let mut pe: Vec<EagerTensor> = p
        .values()
        .map(|t| ctx.from_tensor(t.clone()).requires_grad(true))
        .collect();
    let mut step = jit_params(|p, a| {
        let l = mlp_classifier::loss(p, &a[0], &a[1])?;
        let g = grad_params(&l, p)?;
        Ok((p.zip_map(&g, |_, w, g| w - g * 0.5)?, vec![l]))
    })?;
    for _ in 0..20 {
        let (next, out) = step.call_params(&p, &[x.clone(), y.clone()])?;
        p = next;
        let l = mlp_eager_loss(&pe, &xe, &ye)?;
        l.backward()?;
        assert!((l.value()?.item::<f64>()? - out[0].item::<f64>()?).abs() < 1e-12);
        let _no_grad = ctx.no_grad_guard();
        for w in &mut pe {
            let g = ctx.from_tensor(w.grad().expect("every parameter gets a gradient"));
            *w = (&*w - g * 0.5).requires_grad(true);
        }
    }
    for (traced, eager) in p.values().zip(&pe) {
        let (a, b) = (traced.to_vec::<f64>()?, eager.value()?.to_vec::<f64>()?);
        assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-12));
    }
    Ok(())
}
