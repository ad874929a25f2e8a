//! Eager mode: the contract surface, PyTorch-like accumulation / zero_grad / no_grad,
//! caching of ops and backward programs, functional transforms and their composition.

use tenferro_ad::{AdContext, EagerContext, EagerTensor, Result};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, Tensor};

fn ctx() -> EagerContext {
    EagerContext::new(CpuBackend::with_threads(1))
}

fn vals(t: &Tensor) -> Vec<f64> {
    t.as_slice::<f64>().unwrap().to_vec()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-12 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn contract_surface() -> Result<()> {
    let ctx = EagerContext::new(CpuBackend::new());
    let x = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])?
        .requires_grad(true);
    let loss = (&x * &x).reduce_sum(&[0])?;
    loss.backward()?;
    let g: Option<Tensor> = x.grad();
    assert_eq!(vals(&g.unwrap()), vec![2.0, 4.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    let v: Tensor = loss.value()?;
    assert_eq!(vals(&v), vec![14.0]);
    let ad = AdContext::builder().build()?;
    let ctx2 = EagerContext::with_ad_context(CpuBackend::new(), ad);
    let y = ctx2.scalar(2.0_f64);
    assert_eq!(vals(&(&y * 3.0).value()?), vec![6.0]);
    Ok(())
}

#[test]
fn ops_run_at_once_with_broadcasting_and_scalars() -> Result<()> {
    let ctx = ctx();
    let a = ctx.from_vec_col_major(vec![2, 2], vec![1.0_f64, 2.0, 3.0, 4.0])?;
    let b = ctx.from_vec_col_major(vec![2], vec![10.0_f64, 20.0])?;
    assert_eq!(vals(&(&a + &b).value()?), vec![11.0, 12.0, 23.0, 24.0]);
    assert_eq!(vals(&(2.0 - &a).value()?), vec![1.0, 0.0, -1.0, -2.0]);
    assert_eq!(vals(&(&a / 2.0).value()?), vec![0.5, 1.0, 1.5, 2.0]);
    assert_eq!(vals(&(-&a).value()?), vec![-1.0, -2.0, -3.0, -4.0]);
    assert_eq!(vals(&a.matmul(&a)?.value()?), vec![7.0, 10.0, 15.0, 22.0]);
    assert_eq!(vals(&a.t()?.value()?), vec![1.0, 3.0, 2.0, 4.0]);
    assert_eq!(vals(&a.reduce_mean(&[1])?.value()?), vec![2.0, 3.0]);
    assert_eq!(vals(&a.sum()?.value()?), vec![10.0]);
    assert_eq!(
        vals(&a.broadcast_to(&[2, 2])?.value()?),
        vec![1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(
        vals(
            &a.pad(&[1, 0], &[0, 0], 9.0)?
                .slice(&[0, 0], &[2, 1])?
                .value()?
        ),
        vec![9.0, 1.0]
    );
    let i = ctx.from_vec_col_major(vec![3], vec![1_i64, 0, 1])?;
    assert_eq!(vals(&b.gather(&i, 0)?.value()?), vec![20.0, 10.0, 20.0]);
    let c = EagerTensor::concatenate(&[&b, &b], 0)?;
    assert_eq!(vals(&c.value()?), vec![10.0, 20.0, 10.0, 20.0]);
    let m = a.greater(&b)?;
    assert_eq!(m.dtype(), DType::Bool);
    let s = EagerTensor::select(&m, &a, &b)?;
    assert_eq!(vals(&s.value()?), vec![10.0, 10.0, 20.0, 20.0]);
    let io = ctx.iota(DType::F64, &[3], 0)?;
    assert_eq!(vals(&io.value()?), vec![0.0, 1.0, 2.0]);
    Ok(())
}

#[test]
fn second_backward_accumulates_and_second_run_compiles_nothing() -> Result<()> {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, -2.0])?
        .requires_grad(true);
    let loss = (&x * &x).sum()?;
    loss.backward()?;
    loss.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![4.0, -8.0]);
    let before = ctx.stats();
    let y = ctx
        .from_vec_col_major(vec![2], vec![3.0_f64, 4.0])?
        .requires_grad(true);
    let l2 = (&y * &y).sum()?;
    l2.backward()?;
    let after = ctx.stats();
    assert_eq!(after.ops_compiled, before.ops_compiled);
    assert_eq!(after.transforms_compiled, before.transforms_compiled);
    assert_eq!(vals(&y.grad().unwrap()), vec![6.0, 8.0]);
    Ok(())
}

#[test]
fn hvp_by_composing_jvp_of_grad() -> Result<()> {
    let ctx = ctx();
    // f(x) = sum(x^3): grad = 3x^2, H v = 6 x v.
    let f = |x: &EagerTensor| (&(x * x) * x).sum();
    let x = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let v = ctx.from_vec_col_major(vec![2], vec![1.0_f64, -1.0])?;
    let g = ctx.grad(f, &x)?;
    close(&vals(&g.value()?), &[3.0, 12.0]);
    let (g2, hv) = ctx.jvp(|x| ctx.grad(f, x), &x, &v)?;
    close(&vals(&g2.value()?), &[3.0, 12.0]);
    close(&vals(&hv.value()?), &[6.0, -12.0]);
    // grad of grad through backward.
    let xl = x.clone().requires_grad(true);
    let s = ctx.grad(f, &xl)?.sum()?;
    s.backward()?;
    close(&vals(&xl.grad().unwrap()), &[6.0, 12.0]);
    Ok(())
}

#[test]
fn accumulation_zero_grad_and_clones_behave_as_pytorch() -> Result<()> {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?
        .requires_grad(true);
    assert!(x.is_leaf() && x.is_tracked() && x.grad().is_none());
    // Two different losses accumulate: d(sum x²)/dx + d(sum 3x)/dx.
    (&x * &x).sum()?.backward()?;
    (&x * 3.0).sum()?.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![5.0, 7.0]);
    // A clone is the same leaf.
    let xc = x.clone();
    assert_eq!(vals(&xc.grad().unwrap()), vec![5.0, 7.0]);
    xc.zero_grad();
    assert!(x.grad().is_none());
    // A leaf used twice in one expression gets both contributions.
    (&x * &x).sum()?.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 4.0]);
    // Non-leaves have no grad; detach stops tracking; requires_grad(true) on a
    // recorded tensor starts a new leaf.
    let y = &x * 2.0;
    assert!(y.is_tracked() && !y.is_leaf() && y.grad().is_none());
    assert!(!y.detach().is_tracked());
    let z = y.clone().requires_grad(true);
    x.zero_grad();
    (&z * &z).sum()?.backward()?;
    assert_eq!(vals(&z.grad().unwrap()), vec![4.0, 8.0]);
    assert!(x.grad().is_none(), "gradient must stop at the new leaf");
    // A leaf the loss does not use keeps no gradient.
    let unused = ctx.scalar(1.0_f64).requires_grad(true);
    (&x * 1.0).sum()?.backward()?;
    assert!(unused.grad().is_none());
    Ok(())
}

#[test]
fn no_grad_stops_recording() -> Result<()> {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?
        .requires_grad(true);
    assert!(ctx.is_grad_enabled());
    let frozen = ctx.no_grad(|| &x * &x);
    assert!(!frozen.is_tracked());
    assert!(ctx.is_grad_enabled(), "no_grad restores the mode");
    // Only the tracked part contributes: d/dx (sum(x) + sum(frozen)) = 1.
    (&x.sum()? + &frozen.sum()?).backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0, 1.0]);
    {
        let _guard = ctx.no_grad_guard();
        assert!(!ctx.is_grad_enabled());
        assert!(!(&x + 1.0).is_tracked());
        // Functional transforms still differentiate their function inside no_grad.
        let g = ctx.grad(|x| (x * x).sum(), &x)?;
        assert_eq!(vals(&g.value()?), vec![2.0, 4.0]);
        assert!(!g.is_tracked());
    }
    assert!(ctx.is_grad_enabled());
    assert!((&x + 1.0).is_tracked());
    // Grad mode is per context.
    let other = EagerContext::new(CpuBackend::with_threads(1));
    ctx.no_grad(|| assert!(other.is_grad_enabled()));
    Ok(())
}

#[test]
fn repeated_ops_and_backwards_hit_the_caches() -> Result<()> {
    let ctx = ctx();
    let a = ctx.from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0])?;
    let _ = &a + &a;
    let s = ctx.stats();
    for _ in 0..10 {
        let _ = &a + &a;
    }
    let t = ctx.stats();
    assert_eq!(t.ops_compiled, s.ops_compiled);
    assert_eq!(t.ops_run, s.ops_run + 10);
    // A new shape is a new program.
    let b = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let _ = &b + &b;
    assert_eq!(ctx.stats().ops_compiled, s.ops_compiled + 1);
    // Ten training steps derive one backward program.
    let mut w = a.clone().requires_grad(true);
    for _ in 0..10 {
        let loss = (&(&w * &w) * 0.5).sum()?;
        loss.backward()?;
        let g = ctx.from_tensor(w.grad().unwrap());
        w = ctx.no_grad(|| &w - &(&g * 0.1)).requires_grad(true);
    }
    let u = ctx.stats();
    assert_eq!(u.transforms_run, 10);
    assert_eq!(u.transforms_compiled, 1);
    close(
        &vals(&w.value()?),
        &[
            0.9_f64.powi(10),
            2.0 * 0.9_f64.powi(10),
            3.0 * 0.9_f64.powi(10),
            4.0 * 0.9_f64.powi(10),
        ],
    );
    Ok(())
}

#[test]
fn backward_with_and_functional_vjp() -> Result<()> {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])?
        .requires_grad(true);
    let y = &x * &x;
    let ct = ctx.from_vec_col_major(vec![3], vec![1.0_f64, 0.0, -1.0])?;
    y.backward_with(&ct)?;
    assert_eq!(vals(&x.grad().unwrap()), vec![2.0, 0.0, -6.0]);
    let (y2, c) = ctx.vjp(|x| Ok(x * x), &x, &ct)?;
    assert_eq!(vals(&y2.value()?), vec![1.0, 4.0, 9.0]);
    assert_eq!(vals(&c.value()?), vec![2.0, 0.0, -6.0]);
    // jvp of sin along t: cos(x) t.
    let t = ctx.from_vec_col_major(vec![3], vec![1.0_f64, 1.0, 2.0])?;
    let (_, dy) = ctx.jvp(|x| x.sin(), &x, &t)?;
    close(
        &vals(&dy.value()?),
        &[1.0_f64.cos(), 2.0_f64.cos(), 2.0 * 3.0_f64.cos()],
    );
    // A function that ignores its input has zero derivatives.
    let g = ctx.grad(|_| Ok(ctx.scalar(1.0_f64)), &x)?;
    assert_eq!(vals(&g.value()?), vec![0.0, 0.0, 0.0]);
    Ok(())
}

#[test]
fn transforms_compose() -> Result<()> {
    let ctx = ctx();
    // f(x, w) = sum(sin(x) * w); closing over a tracked w, grad wrt x is cos(x) * w, and
    // backward through that grad reaches w: d/dw sum(cos(x) * w) = cos(x).
    let x = ctx.from_vec_col_major(vec![2], vec![0.5_f64, 1.0])?;
    let w = ctx
        .from_vec_col_major(vec![2], vec![2.0_f64, -1.0])?
        .requires_grad(true);
    let g = ctx.grad(|x| (&x.sin()? * &w).sum(), &x)?;
    close(&vals(&g.value()?), &[2.0 * 0.5_f64.cos(), -(1.0_f64.cos())]);
    assert!(g.is_tracked());
    g.sum()?.backward()?;
    close(&vals(&w.grad().unwrap()), &[0.5_f64.cos(), 1.0_f64.cos()]);
    // Third derivative of x^4 / 24 (= x) by grad(grad(grad)).
    let f = |x: &EagerTensor| (&(&(x * x) * x) * &(x / 24.0)).sum();
    let g1 = |x: &EagerTensor| ctx.grad(f, x)?.sum();
    let g2 = |x: &EagerTensor| ctx.grad(g1, x)?.sum();
    let x = ctx.scalar(3.0_f64);
    let g3 = ctx.grad(g2, &x)?;
    close(&vals(&g3.value()?), &[3.0]);
    // vjp of jvp: for f = x³ (elementwise), jvp along t is 3x²t; its vjp wrt x with
    // cotangent c is 6 x t c.
    let x = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let t = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 0.5])?;
    let c = ctx.from_vec_col_major(vec![2], vec![2.0_f64, 1.0])?;
    let cube = |x: &EagerTensor| &(x * x) * x;
    let (_, v) = ctx.vjp(|x| Ok(ctx.jvp(|x| Ok(cube(x)), x, &t)?.1), &x, &c)?;
    close(&vals(&v.value()?), &[12.0, 6.0]);
    Ok(())
}

#[test]
fn long_chains_do_not_overflow_the_stack() -> Result<()> {
    let ctx = ctx();
    let x = ctx.scalar(1.0_f64).requires_grad(true);
    // Recording and freeing a long graph is iterative.
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = &y + 0.0;
    }
    drop(y);
    // Backward through a long chain. (Deeper chains reach the recursion of dropping
    // deep `TracedTensor` traces in tenferro-runtime while the program is derived.)
    let mut y = x.clone();
    for _ in 0..1_000 {
        y = &y * 1.0;
    }
    y.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0]);
    Ok(())
}

#[test]
fn complex_backward_uses_the_pytorch_convention() -> Result<()> {
    use num_complex::Complex64;
    let ctx = ctx();
    // L = |z|² = real(z conj z): grad is 2z (PyTorch's value).
    let z = ctx
        .from_vec_col_major(vec![1], vec![Complex64::new(3.0, 4.0)])?
        .requires_grad(true);
    (&z * &z.conj()?).real()?.sum()?.backward()?;
    assert_eq!(
        z.grad().unwrap().as_slice::<Complex64>().unwrap(),
        &[Complex64::new(6.0, 8.0)]
    );
    Ok(())
}

#[test]
fn trivial_graphs() -> Result<()> {
    let ctx = ctx();
    // The loss is the leaf itself.
    let x = ctx.scalar(2.0_f64).requires_grad(true);
    x.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![1.0]);
    // vjp of the identity returns the cotangent; jvp of the identity the tangent.
    let v = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let c = ctx.from_vec_col_major(vec![2], vec![5.0_f64, 6.0])?;
    let (y, ct) = ctx.vjp(|x| Ok(x.clone()), &v, &c)?;
    assert_eq!(vals(&y.value()?), vec![1.0, 2.0]);
    assert_eq!(vals(&ct.value()?), vec![5.0, 6.0]);
    let (_, t) = ctx.jvp(|x| Ok(x.clone()), &v, &c)?;
    assert_eq!(vals(&t.value()?), vec![5.0, 6.0]);
    // Multi-result ops and raw IR ops: `apply` records like any op.
    let w = v.clone().requires_grad(true);
    let e = EagerTensor::apply1(tenferro_ir::Op::Unary(tenferro_ir::UnaryOp::Exp), &[&w])?;
    e.sum()?.backward()?;
    close(&vals(&w.grad().unwrap()), &[1.0_f64.exp(), 2.0_f64.exp()]);
    Ok(())
}

#[test]
fn operators_take_scalars_on_either_side_and_chain_without_question_marks() -> Result<()> {
    let ctx = ctx();
    let m = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let g = ctx.from_vec_col_major(vec![2], vec![10.0_f64, 20.0])?;
    let ema = &m * 0.9 + &g * 0.1;
    close(&vals(&ema.value()?), &[1.9, 3.8]);
    let left = 1.0 - 2.0 * &m / 4.0 + 3.0 / &g;
    close(&vals(&left.value()?), &[0.8, 0.15]);
    let owned = (m.clone() + g.clone()) * 2.0 - m.clone() / 2.0;
    close(&vals(&owned.value()?), &[21.5, 43.0]);
    close(&vals(&(-(0.5 * &g)).value()?), &[-5.0, -10.0]);
    close(&vals(&(-m).value()?), &[-1.0, -2.0]);
    Ok(())
}
