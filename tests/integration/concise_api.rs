//! The concise program API: host-tensor constructors, `TracedTensor::index`, the
//! function-style transforms (`jit`, `jit_params`, `grad_params`, `eval`, `compile`) and
//! `Jit::call_array`.

use tenferro::prelude::*;

#[test]
fn from_fn_indexes_logically_in_any_rank() -> Result<()> {
    let a = Tensor::from_fn([2, 3], |[i, j]| (10 * i + j) as f64)?;
    assert_eq!(a.shape(), [2, 3]);
    assert_eq!(
        a.to_vec_row_major::<f64>()?,
        [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
    );
    let b = Tensor::from_fn([2, 1, 2], |[i, j, k]| (i + 2 * j + 4 * k) as i64)?;
    assert_eq!(b.as_slice::<i64>()?, [0, 1, 4, 5]);
    assert_eq!(Tensor::from_fn([], |[]| 7.0_f64)?.item::<f64>()?, 7.0);
    assert_eq!(Tensor::from_fn([3, 0], |_| 1.0_f64)?.numel(), 0);
    let err = Tensor::from_fn([usize::MAX, 2], |_| 0.0_f64).unwrap_err();
    assert!(err.to_string().contains("Tensor::from_fn"), "{err}");
    Ok(())
}

#[test]
fn from_slice_is_row_major_and_checks_the_length() -> Result<()> {
    let a = Tensor::from_slice(&[1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])?;
    assert_eq!(a.as_slice::<f64>()?, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    let err = Tensor::from_slice(&[1.0_f64, 2.0], &[3]).unwrap_err();
    assert!(
        err.to_string().contains("[3]") && err.to_string().contains("2"),
        "{err}"
    );
    let t = TracedTensor::from_slice(&[1.0_f64, 2.0, 3.0, 4.0], &[2, 2])?;
    assert_eq!(eval(&t.index(1)?)?.to_vec::<f64>()?, [3.0, 4.0]);
    assert!(TracedTensor::from_slice(&[1.0_f64], &[2]).is_err());
    Ok(())
}

#[test]
fn item_reads_one_element_and_names_the_shape_otherwise() -> Result<()> {
    assert_eq!(Tensor::from_slice(&[2.5_f64], &[1, 1])?.item::<f64>()?, 2.5);
    let err = Tensor::from_slice(&[1.0_f64, 2.0], &[2])?
        .item::<f64>()
        .unwrap_err();
    assert!(err.to_string().contains("Tensor::item") && err.to_string().contains("[2]"));
    assert!(Tensor::scalar(1.0_f64).item::<f32>().is_err());
    Ok(())
}

#[test]
fn index_takes_axis_zero_and_reports_out_of_range() -> Result<()> {
    let m = TracedTensor::from_fn([3, 2], |[i, j]| (10 * i + j) as f64)?;
    assert_eq!(eval(&m.index(2)?)?.to_vec::<f64>()?, [20.0, 21.0]);
    assert_eq!(eval(&m.index(1)?.index(1)?)?.item::<f64>()?, 11.0);
    let err = m.index(3).unwrap_err();
    assert!(err.to_string().contains("index 3") && err.to_string().contains("[3, 2]"));
    assert!(TracedTensor::scalar(1.0_f64).index(0).is_err());
    // the gradient flows back into the selected row only
    let g = eval(&grad(&m.index(1)?.sum(), &m)?)?;
    assert_eq!(g.to_vec_row_major::<f64>()?, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    Ok(())
}

#[test]
fn host_tensors_convert_into_traced_constants() -> Result<()> {
    let t: TracedTensor = Tensor::from_slice(&[1.0_f64, 2.0], &[2])?.into();
    assert_eq!(eval(&(&t * 2.0))?.to_vec::<f64>()?, [2.0, 4.0]);
    Ok(())
}

#[test]
fn host_tensor_errors_convert_into_the_crate_error() {
    fn build() -> Result<Tensor> {
        Ok(Tensor::from_slice(&[1.0_f64], &[2])?)
    }
    assert!(matches!(build(), Err(Error::Runtime(_))));
}

#[test]
fn grad_params_keeps_the_names() -> Result<()> {
    let p: Params<TracedTensor> = [
        ("a", TracedTensor::from_slice(&[1.0_f64, 2.0], &[2])?),
        ("b", TracedTensor::scalar(3.0_f64)),
    ]
    .into_iter()
    .collect();
    let g = grad_params(&(&p["a"] * &p["b"]).sum(), &p)?;
    assert_eq!(g.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(eval(&g["a"])?.to_vec::<f64>()?, [3.0, 3.0]);
    assert_eq!(eval(&g["b"])?.item::<f64>()?, 3.0);
    Ok(())
}

#[test]
fn jit_call_array_unpacks_and_checks_the_count() -> Result<()> {
    let mut f = jit(|a| Ok(vec![&a[0] + 1.0, &a[0] * 2.0]))?;
    let [a, b] = f.call_array(&[Tensor::scalar(3.0_f64)])?;
    assert_eq!((a.item::<f64>()?, b.item::<f64>()?), (4.0, 6.0));
    let err = f.call_array::<3>(&[Tensor::scalar(3.0_f64)]).unwrap_err();
    assert!(err.to_string().contains("Jit::call_array") && err.to_string().contains("3"));
    assert_eq!(f.stats().misses, 1);
    Ok(())
}

#[test]
fn jit_runs_linalg_and_its_gradient() -> Result<()> {
    // d/dA log det A = A^{-T}; for A = diag(2, 4) that is diag(1/2, 1/4)
    let mut f = jit(|a| {
        let logdet = a[0].cholesky()?.diagonal(0, 0, 1)?.log().sum() * 2.0;
        Ok(vec![grad(&logdet, &a[0])?])
    })?;
    let a = Tensor::from_slice(&[2.0_f64, 0.0, 0.0, 4.0], &[2, 2])?;
    let g = f.call(&[a])?.remove(0).to_vec::<f64>()?;
    assert!(
        (g[0] - 0.5).abs() < 1e-12 && (g[3] - 0.25).abs() < 1e-12,
        "{g:?}"
    );
    Ok(())
}

#[test]
fn compile_reports_a_recorded_shape_error() {
    let bad = &TracedTensor::input(DType::F64, &[2]) + &TracedTensor::input(DType::F64, &[3]);
    let err = compile(&bad.sum()).unwrap_err().to_string();
    assert!(err.contains("[2]") || err.contains("f64[2]"), "{err}");
}

#[test]
fn eval_many_rejects_placeholders() {
    let x = TracedTensor::input(DType::F64, &[2]);
    assert!(eval_many(&[x.sum()]).is_err());
}
