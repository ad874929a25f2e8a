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
    let loss = (&x * &x)?.reduce_sum(&[0])?;
    loss.backward()?;
    let g: Option<Tensor> = x.grad();
    assert_eq!(vals(&g.unwrap()), vec![2.0, 4.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    let v: Tensor = loss.value();
    assert_eq!(vals(&v), vec![14.0]);
    let ad = AdContext::builder().build()?;
    let ctx2 = EagerContext::with_ad_context(CpuBackend::new(), ad);
    let y = ctx2.scalar(2.0_f64);
    assert_eq!(vals(&(&y * 3.0)?.value()), vec![6.0]);
    Ok(())
}

#[test]
fn ops_run_at_once_with_broadcasting_and_scalars() -> Result<()> {
    let ctx = ctx();
    let a = ctx.from_vec_col_major(vec![2, 2], vec![1.0_f64, 2.0, 3.0, 4.0])?;
    let b = ctx.from_vec_col_major(vec![2], vec![10.0_f64, 20.0])?;
    assert_eq!(vals(&(&a + &b)?.value()), vec![11.0, 12.0, 23.0, 24.0]);
    assert_eq!(vals(&(2.0 - &a)?.value()), vec![1.0, 0.0, -1.0, -2.0]);
    assert_eq!(vals(&(&a / 2.0)?.value()), vec![0.5, 1.0, 1.5, 2.0]);
    assert_eq!(vals(&(-&a)?.value()), vec![-1.0, -2.0, -3.0, -4.0]);
    assert_eq!(vals(&a.matmul(&a)?.value()), vec![7.0, 10.0, 15.0, 22.0]);
    assert_eq!(vals(&a.t()?.value()), vec![1.0, 3.0, 2.0, 4.0]);
    assert_eq!(vals(&a.reduce_mean(&[1])?.value()), vec![2.0, 3.0]);
    assert_eq!(vals(&a.sum()?.value()), vec![10.0]);
    assert_eq!(
        vals(&a.broadcast_to(&[2, 2])?.value()),
        vec![1.0, 2.0, 3.0, 4.0]
    );
    assert_eq!(
        vals(
            &a.pad(&[1, 0], &[0, 0], 9.0)?
                .slice(&[0, 0], &[2, 1])?
                .value()
        ),
        vec![9.0, 1.0]
    );
    let i = ctx.from_vec_col_major(vec![3], vec![1_i64, 0, 1])?;
    assert_eq!(vals(&b.gather(&i, 0)?.value()), vec![20.0, 10.0, 20.0]);
    let c = EagerTensor::concatenate(&[&b, &b], 0)?;
    assert_eq!(vals(&c.value()), vec![10.0, 20.0, 10.0, 20.0]);
    let m = a.greater(&b)?;
    assert_eq!(m.dtype(), DType::Bool);
    let s = EagerTensor::select(&m, &a, &b)?;
    assert_eq!(vals(&s.value()), vec![10.0, 10.0, 20.0, 20.0]);
    let io = ctx.iota(DType::F64, &[3], 0)?;
    assert_eq!(vals(&io.value()), vec![0.0, 1.0, 2.0]);
    Ok(())
}

#[test]
fn second_backward_accumulates_and_second_run_compiles_nothing() -> Result<()> {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, -2.0])?
        .requires_grad(true);
    let loss = (&x * &x)?.sum()?;
    loss.backward()?;
    loss.backward()?;
    assert_eq!(vals(&x.grad().unwrap()), vec![4.0, -8.0]);
    let before = ctx.stats();
    let y = ctx
        .from_vec_col_major(vec![2], vec![3.0_f64, 4.0])?
        .requires_grad(true);
    let l2 = (&y * &y)?.sum()?;
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
    let f = |x: &EagerTensor| (&(x * x)? * x)?.sum();
    let x = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0])?;
    let v = ctx.from_vec_col_major(vec![2], vec![1.0_f64, -1.0])?;
    let g = ctx.grad(f, &x)?;
    close(&vals(&g.value()), &[3.0, 12.0]);
    let (g2, hv) = ctx.jvp(|x| ctx.grad(f, x), &x, &v)?;
    close(&vals(&g2.value()), &[3.0, 12.0]);
    close(&vals(&hv.value()), &[6.0, -12.0]);
    // grad of grad through backward.
    let xl = x.clone().requires_grad(true);
    let s = ctx.grad(f, &xl)?.sum()?;
    s.backward()?;
    close(&vals(&xl.grad().unwrap()), &[6.0, 12.0]);
    Ok(())
}
