//! Compiled functions (`Jit`): caching per input signature, several inputs and outputs,
//! structured parameters, and composition with autodiff.

use tenferro::ad::{AdContext, AdError};
use tenferro::cpu::CpuBackend;
use tenferro::runtime::{Jit, JitStats, Params, RuntimeError};
use tenferro::{Tensor, TracedTensor};

fn t(shape: &[usize], v: &[f64]) -> Tensor {
    Tensor::from_vec_col_major(shape.to_vec(), v.to_vec()).unwrap()
}

#[test]
fn traces_once_per_signature_and_reruns() {
    let mut traces = 0;
    let mut f = Jit::new(
        CpuBackend::new(),
        |xs: &[TracedTensor]| -> Result<Vec<TracedTensor>, RuntimeError> {
            traces += 1;
            Ok(vec![&xs[0] * &xs[1] + 1.0, xs[0].reduce_sum(&[0])])
        },
    );
    let out = f
        .call(&[t(&[2], &[1.0, 2.0]), t(&[2], &[3.0, 4.0])])
        .unwrap();
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[4.0, 9.0]);
    assert_eq!(out[1].as_slice::<f64>().unwrap(), &[3.0]);
    let out = f
        .call(&[t(&[2], &[5.0, 6.0]), t(&[2], &[1.0, -1.0])])
        .unwrap();
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[6.0, -5.0]);
    assert_eq!(
        f.stats(),
        JitStats {
            hits: 1,
            misses: 1,
            traces: 1,
            evictions: 0
        }
    );
    // A new shape traces again; the old one stays cached.
    let out = f
        .call(&[t(&[3], &[1.0, 2.0, 3.0]), t(&[3], &[1.0, 1.0, 1.0])])
        .unwrap();
    assert_eq!(out[1].as_slice::<f64>().unwrap(), &[6.0]);
    f.call(&[t(&[2], &[0.0, 0.0]), t(&[2], &[0.0, 0.0])])
        .unwrap();
    assert_eq!(f.stats().traces, 2);
    assert_eq!(f.stats().hits, 2);
    // A new dtype traces again too.
    let a32 = Tensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]).unwrap();
    let out = f.call(&[a32.clone(), a32]).unwrap();
    assert_eq!(out[0].as_slice::<f32>().unwrap(), &[2.0, 5.0]);
    assert_eq!(f.stats().traces, 3);
    assert_eq!(f.cached_programs(), 3);
    drop(f);
    assert_eq!(traces, 3);
}

#[test]
fn lru_cache_is_bounded() {
    let mut f = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![xs[0].sum()])
    })
    .capacity(2);
    for n in [1, 2, 3] {
        f.call(&[t(&[n], &vec![1.0; n])]).unwrap();
    }
    assert_eq!(f.cached_programs(), 2);
    assert_eq!(f.stats().evictions, 1);
    // n = 1 was evicted (least recently used), n = 3 is still there.
    f.call(&[t(&[3], &[1.0; 3])]).unwrap();
    assert_eq!(f.stats().hits, 1);
    f.call(&[t(&[1], &[1.0])]).unwrap();
    assert_eq!(f.stats().misses, 4);
    // n = 2 was least recently used now.
    f.call(&[t(&[3], &[1.0; 3])]).unwrap();
    assert_eq!(f.stats().hits, 2);
    f.call(&[t(&[2], &[1.0; 2])]).unwrap();
    assert_eq!(f.stats().misses, 5);
}

#[test]
fn outputs_that_are_inputs_constants_or_absent() {
    let mut f = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![xs[1].clone(), TracedTensor::scalar(7.0_f64)])
    });
    let out = f.call(&[t(&[1], &[1.0]), t(&[2], &[2.0, 3.0])]).unwrap();
    assert_eq!(out[0].as_slice::<f64>().unwrap(), &[2.0, 3.0]);
    assert_eq!(out[1].as_slice::<f64>().unwrap(), &[7.0]);
    let mut g = Jit::new(CpuBackend::new(), |_: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![])
    });
    assert!(g.call(&[t(&[1], &[1.0])]).unwrap().is_empty());
}

#[test]
fn trace_errors_are_returned_and_not_cached() {
    let mut f = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        Ok::<_, RuntimeError>(vec![xs[0].matmul(&xs[1])?])
    });
    let err = f.call(&[t(&[2], &[1.0, 2.0]), t(&[3], &[1.0, 2.0, 3.0])]);
    assert!(err.is_err());
    assert_eq!(f.cached_programs(), 0);
    let ok = f
        .call(&[t(&[2], &[1.0, 2.0]), t(&[2], &[3.0, 4.0])])
        .unwrap();
    assert_eq!(ok[0].as_slice::<f64>().unwrap(), &[11.0]);
}

#[test]
fn composes_with_grad() {
    let ad = AdContext::builder().build().unwrap();
    // value and gradient of sum(tanh(x)^2) in one compiled function
    let mut f = Jit::new(CpuBackend::new(), |xs: &[TracedTensor]| {
        let y = xs[0].tanh();
        let loss = (&y * &y).sum();
        let g = ad.grad(&loss, &xs[0])?;
        Ok::<_, AdError>(vec![loss, g])
    });
    for x in [[0.3, -1.2], [2.0, 0.1]] {
        let out = f.call(&[t(&[2], &x)]).unwrap();
        let loss: f64 = x.iter().map(|v: &f64| v.tanh().powi(2)).sum();
        assert!((out[0].as_slice::<f64>().unwrap()[0] - loss).abs() < 1e-12);
        for (i, &v) in x.iter().enumerate() {
            let th: f64 = v.tanh();
            let g = 2.0 * th * (1.0 - th * th);
            assert!((out[1].as_slice::<f64>().unwrap()[i] - g).abs() < 1e-12);
        }
    }
    assert_eq!(f.stats().traces, 1);
}

#[test]
fn structured_params_training_step() {
    // least squares y = X w + b by gradient descent, one compiled step
    let ad = AdContext::builder().build().unwrap();
    let mut step = Jit::new(
        CpuBackend::new(),
        |p: &Params<TracedTensor>, data: &[TracedTensor]| {
            let (x, y) = (&data[0], &data[1]);
            let pred = x.matmul(p.require("w")?)? + p.require("b")?;
            let r = &pred - y;
            let loss = (&r * &r).reduce_mean(&[0]);
            let names: Vec<&str> = p.names().collect();
            let values: Vec<&TracedTensor> = p.values().collect();
            let grads = ad.grad_many(&loss, &values)?;
            let new: Params<TracedTensor> = names
                .iter()
                .zip(values.iter().zip(&grads))
                .map(|(n, (v, g))| (n.to_string(), *v - &(g * 0.3)))
                .collect();
            Ok::<_, AdError>((new, vec![loss]))
        },
    );
    // X is 4x2 column-major, y = X [2, -1] + 0.5
    let x = t(&[4, 2], &[1.0, 0.0, 1.0, 2.0, 0.0, 1.0, 1.0, -1.0]);
    let xs = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]];
    let yv: Vec<f64> = xs.iter().map(|r| 2.0 * r[0] - r[1] + 0.5).collect();
    let y = t(&[4], &yv);
    let mut params = Params::new()
        .with("w", t(&[2], &[0.0, 0.0]))
        .with("b", Tensor::scalar(0.0_f64));
    let mut losses = Vec::new();
    for _ in 0..600 {
        let (p, out) = step.call_params(&params, &[x.clone(), y.clone()]).unwrap();
        losses.push(out[0].as_slice::<f64>().unwrap()[0]);
        params = p;
    }
    assert_eq!(step.stats().traces, 1);
    assert_eq!(step.stats().hits, 599);
    assert!(losses[599] < 1e-8 * losses[0], "{losses:?}");
    let w = params.require("w").unwrap().as_slice::<f64>().unwrap();
    assert!(
        (w[0] - 2.0).abs() < 1e-3 && (w[1] + 1.0).abs() < 1e-3,
        "{w:?}"
    );
    assert!((params.require("b").unwrap().as_slice::<f64>().unwrap()[0] - 0.5).abs() < 1e-3);
    // Different names are a different signature.
    let other = Params::new()
        .with("v", t(&[2], &[0.0, 0.0]))
        .with("b", Tensor::scalar(0.0_f64));
    assert!(step.call_params(&other, &[x, y]).is_err()); // no parameter `w`
}

#[test]
fn named_placeholders_in_debug_and_errors() {
    use tenferro::runtime::{GraphCompiler, GraphExecutor};
    let x = TracedTensor::input_named("weights", tenferro::DType::F64, &[2]);
    assert_eq!(x.name(), Some("weights"));
    assert!(format!("{x:?}").contains("input `weights`"), "{x:?}");
    let y = TracedTensor::input(tenferro::DType::F64, &[2]);
    assert_eq!(y.name(), None);
    let program = GraphCompiler::new().compile(&(&x + &y)).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    let err = ex
        .run_with_inputs(&program, &[(&y, t(&[2], &[1.0, 2.0]))])
        .unwrap_err();
    assert!(err.to_string().contains("`weights`"), "{err}");
    let err = ex
        .run_with_inputs(&program, &[(&x, t(&[3], &[1.0, 2.0, 3.0]))])
        .unwrap_err();
    assert!(err.to_string().contains("weights"), "{err}");
    // Params placeholders carry the parameter names
    let p = Params::new().with("w", t(&[1], &[0.0])).placeholders();
    assert_eq!(p["w"].name(), Some("w"));
}

#[test]
fn named_placeholders_in_the_ir_text_and_compile_errors() {
    use tenferro::ir::print;
    use tenferro::runtime::{lower, GraphCompiler, LowerMode};
    use tenferro::DType::F64;
    let x = TracedTensor::input_named("x", F64, &[3]);
    let w = TracedTensor::input_named("w", F64, &[2]);
    let b = TracedTensor::input(F64, &[3]);
    let y = &x * &b;
    let lowered = lower(&[&y], &[], LowerMode::Program).unwrap();
    let text = print(&lowered.function);
    assert!(text.contains("f64[3] {name = \"x\"}"), "{text}");
    assert_eq!(text.matches("name = ").count(), 1, "{text}");
    // The names survive the compile pipeline.
    let program = GraphCompiler::new().compile(&y).unwrap();
    let text = print(program.function());
    assert!(text.contains("{name = \"x\"}"), "{text}");
    // An invalid op on named placeholders names them, and where it was written.
    let line = line!() + 1;
    let bad = &x + &w;
    let err = GraphCompiler::new().compile(&bad).unwrap_err().to_string();
    assert!(
        err.contains("add") && err.contains("`x` f64[3]") && err.contains("`w` f64[2]"),
        "{err}"
    );
    assert!(err.contains(&format!("jit.rs:{line}:")), "{err}");
}

#[test]
fn a_missing_traced_parameter_is_an_error_value_not_a_panic() {
    let params: Params<TracedTensor> = [("w", TracedTensor::from(t(&[2], &[1.0, 2.0])))]
        .into_iter()
        .collect();
    let line = line!() + 1;
    let y = &params["wx"] * 2.0;
    let e = tenferro::runtime::GraphCompiler::new()
        .compile(&y)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no parameter named `wx`") && e.contains("\"w\""),
        "{e}"
    );
    assert!(e.contains(&format!("jit.rs:{line}")), "{e}");
    assert_eq!(params["w"].shape().unwrap(), vec![2]);
}
