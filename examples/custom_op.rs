//! Defining a differentiable op outside the tenferro crates, with the same public API that
//! tenferro-linalg uses: an [`ExtensionOp`] traced with `TracedTensor::apply`, a kernel
//! registered on one executor, and JVP / transpose rules registered on one `AdContext`.
//!
//! Two ops:
//! - `demo.softplus`: `y = ln(1 + eˣ)`, elementwise. Its JVP is `dy = demo.scale(dx, σ(x))`
//!   with `σ(x) = e^(x - y)`, so its tangent program uses the next op.
//! - `demo.scale`: `y = x · s`, elementwise, linear in `x`. It has a JVP
//!   (`dy = scale(dx, s) + scale(ds, x)`) and a transpose rule (`x̄ = scale(ȳ, s)`), which
//!   reverse mode needs because the op appears linearly in tangent programs.
//!
//! The example differentiates `Σ softplus(x)` to second order (grad, jvp of grad, grad of
//! grad) and compares with the closed forms `σ(x)` and `σ(x)(1 - σ(x))`.
//!
//! Run: `cargo run --example custom_op`.

use std::error::Error;
use tenferro_ad::{AdContext, AdError, ExtensionRule, Rules, TransposeArg};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::{ExtensionOp, Op};
use tenferro_runtime::{
    ExtensionRegistry, GraphCompiler, GraphExecutor, RuntimeError, Tensor, TracedTensor,
};

const SOFTPLUS: &str = "demo.softplus";
const SCALE: &str = "demo.scale";

// ---------------------------------------------------------------- tracing

/// Traces `demo.softplus(x)`; the result has `x`'s type.
fn softplus(x: &TracedTensor) -> Result<TracedTensor, RuntimeError> {
    let op = ExtensionOp::new(SOFTPLUS, vec![x.ty()?]);
    Ok(TracedTensor::apply(Op::Extension(op), &[x]).remove(0))
}

/// Traces `demo.scale(x, s) = x · s` (operands of one type).
fn scale(x: &TracedTensor, s: &TracedTensor) -> Result<TracedTensor, RuntimeError> {
    let (tx, ts) = (x.ty()?, s.ty()?);
    if tx != ts {
        return Err(RuntimeError::invalid_op(
            SCALE,
            format!("operands {tx} and {ts} must have one type"),
        ));
    }
    Ok(TracedTensor::apply(Op::Extension(ExtensionOp::new(SCALE, vec![tx])), &[x, s]).remove(0))
}

// ---------------------------------------------------------------- kernels

fn f64_operand<'a>(op: &ExtensionOp, t: &'a Tensor) -> Result<&'a [f64], RuntimeError> {
    t.as_slice::<f64>()
        .map_err(|_| RuntimeError::kernel(&op.name, format!("operand {} must be f64", t.ty())))
}

fn softplus_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
    let x = f64_operand(op, args[0])?;
    // ln(1 + e^x) without overflow.
    let y = x
        .iter()
        .map(|&v| v.max(0.0) + (-v.abs()).exp().ln_1p())
        .collect();
    Ok(vec![Tensor::from_vec_col_major(
        args[0].shape().to_vec(),
        y,
    )?])
}

fn scale_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>, RuntimeError> {
    let (x, s) = (f64_operand(op, args[0])?, f64_operand(op, args[1])?);
    let y = x.iter().zip(s).map(|(a, b)| a * b).collect();
    Ok(vec![Tensor::from_vec_col_major(
        args[0].shape().to_vec(),
        y,
    )?])
}

/// Registers the demo kernels (pass to `GraphExecutor::register_extension`).
fn register_demo(reg: &mut ExtensionRegistry) -> Result<(), RuntimeError> {
    reg.register(SOFTPLUS, softplus_kernel)?;
    reg.register(SCALE, scale_kernel)
}

// ---------------------------------------------------------------- AD rules

struct SoftplusRule;

impl ExtensionRule for SoftplusRule {
    fn jvp(
        &self,
        _op: &ExtensionOp,
        inputs: &[TracedTensor],
        outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>, AdError> {
        let Some(dx) = &tangents[0] else {
            return Ok(vec![None]);
        };
        // σ(x) = e^(x - softplus(x)), from the primal output.
        let sigmoid = (&inputs[0] - &outputs[0]).exp();
        Ok(vec![Some(scale(dx, &sigmoid)?)])
    }
}

struct ScaleRule;

impl ExtensionRule for ScaleRule {
    fn jvp(
        &self,
        _op: &ExtensionOp,
        inputs: &[TracedTensor],
        _outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>, AdError> {
        let (x, s) = (&inputs[0], &inputs[1]);
        let d1 = match &tangents[0] {
            Some(dx) => Some(scale(dx, s)?),
            None => None,
        };
        let d2 = match &tangents[1] {
            Some(ds) => Some(scale(ds, x)?),
            None => None,
        };
        Ok(vec![match (d1, d2) {
            (Some(a), Some(b)) => Some(&a + &b),
            (a, b) => a.or(b),
        }])
    }

    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>, AdError> {
        let s = args[1].primal().ok_or_else(|| {
            AdError::NotDifferentiable(format!("`{}` is linear in its first operand only", op.name))
        })?;
        let ct = match &cotangents[0] {
            Some(ct) => Some(scale(ct, s)?),
            None => None,
        };
        Ok(vec![ct, None])
    }
}

/// The demo's rule set (pass to `AdContext::builder().with_extension_rules`).
fn demo_rules() -> Result<Rules, AdError> {
    let mut rules = Rules::new();
    rules.register(SOFTPLUS, SoftplusRule)?;
    rules.register(SCALE, ScaleRule)?;
    Ok(rules)
}

// ---------------------------------------------------------------- differentiate

fn main() -> Result<(), Box<dyn Error>> {
    let xs = vec![-2.0_f64, -0.5, 0.0, 1.0, 3.0];
    let n = xs.len();
    let x = TracedTensor::input(tenferro_runtime::DType::F64, &[n]);
    let v = TracedTensor::from_vec_col_major(vec![n], vec![1.0_f64; n]);

    let ad = AdContext::builder()
        .with_extension_rules(demo_rules()?)
        .build()?;
    let loss = softplus(&x)?.sum();
    let grad = ad.grad(&loss, &x)?; // σ(x)
    let hvp = ad.jvp(&grad, &x, &v)?; // σ(x)(1 - σ(x)) (diagonal Hessian times ones)
    let grad_of_grad = ad.grad(&grad.sum(), &x)?; // the same, by reverse over reverse

    let program = GraphCompiler::new().compile_many(&[&loss, &grad, &hvp, &grad_of_grad])?;
    println!("{program}");

    let input = Tensor::from_vec_col_major(vec![n], xs.clone())?;
    // An executor without the demo kernels reports the op it lacks.
    let mut plain = GraphExecutor::new(CpuBackend::new());
    match plain.run_many_with_inputs(&program, &[(&x, input.clone())]) {
        Err(e) => println!("without the demo kernels: {e}"),
        Ok(_) => return Err("an executor without demo kernels ran demo ops".into()),
    }

    let mut executor = GraphExecutor::new(CpuBackend::new());
    executor.register_extension(register_demo)?;
    let out = executor.run_many_with_inputs(&program, &[(&x, input)])?;
    let (l, g, h, gg) = (
        out[0].as_slice::<f64>()?,
        out[1].as_slice::<f64>()?,
        out[2].as_slice::<f64>()?,
        out[3].as_slice::<f64>()?,
    );
    println!("loss Σ softplus(x) = {:.6}", l[0]);
    println!(
        "{:>6} {:>12} {:>12} {:>14} {:>14}",
        "x", "grad", "σ(x)", "jvp(grad)", "grad(Σ grad)"
    );
    for i in 0..n {
        let sig = 1.0 / (1.0 + (-xs[i]).exp());
        let d2 = sig * (1.0 - sig);
        println!(
            "{:>6.2} {:>12.8} {:>12.8} {:>14.8} {:>14.8}",
            xs[i], g[i], sig, h[i], gg[i]
        );
        for (what, got, want) in [
            ("grad", g[i], sig),
            ("hvp", h[i], d2),
            ("grad of grad", gg[i], d2),
        ] {
            if (got - want).abs() > 1e-12 {
                return Err(format!("{what} at x = {}: {got} != {want}", xs[i]).into());
            }
        }
    }
    println!("first and second derivatives match σ(x) and σ(x)(1 - σ(x))");
    Ok(())
}
