//! The eager-mode surface written as a contract in the eager issue, verbatim.

use tenferro_ad::{AdContext, EagerContext};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::Tensor;

#[test]
fn eager_contract_surface() -> Result<(), Box<dyn std::error::Error>> {
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules()?)
        .build()?;
    let _core = EagerContext::new(CpuBackend::new()); // core rules
    let ctx = EagerContext::with_ad_context(CpuBackend::new(), ad); // ad: AdContext with extension rules
    ctx.register_extension(tenferro_linalg::register_runtime)?; // kernels, as on GraphExecutor
    let x = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])?
        .requires_grad(true);
    let loss = (&x * &x).reduce_sum(&[0])?; // operators and methods return Result<EagerTensor>
    loss.backward()?;
    let g: Option<Tensor> = x.grad(); // Tensor as returned by GraphExecutor::run
    assert_eq!(g.unwrap().as_slice::<f64>()?, &[2.0, 4.0, 6.0]);
    loss.backward()?; // a second backward accumulates
    assert_eq!(x.grad().unwrap().as_slice::<f64>()?, &[4.0, 8.0, 12.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
    let v: Tensor = loss.value()?;
    assert_eq!(v.as_slice::<f64>()?, &[14.0]);

    // linalg on eager tensors, differentiated with the context's rules
    use tenferro_linalg::EagerTensorLinalgExt;
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![4.0_f64, 2.0, 2.0, 3.0])?
        .requires_grad(true);
    let (sign, logdet) = a.slogdet()?;
    assert_eq!(sign.value()?.as_slice::<f64>()?, &[1.0]);
    logdet.backward()?;
    // d logdet(A) / dA = inv(A)^T = [[3, -2], [-2, 4]] / 8
    let ga = a.grad().unwrap();
    let want = [0.375, -0.25, -0.25, 0.5];
    for (g, w) in ga.as_slice::<f64>()?.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
    Ok(())
}
