//! The everyday vocabulary against JAX: values and gradients of `Σ w·f(x)` on the inputs
//! of `tests/data/jax_vocab.txt`, which `benches/jax_vocab_reference.py` wrote with JAX.

use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_ir::{DType, Tensor};
use tenferro_runtime::{GraphCompiler, GraphExecutor, TracedTensor};

struct Case {
    name: String,
    x: Vec<f64>,
    w: Vec<f64>,
    y: Vec<f64>,
    g: Vec<f64>,
}

fn cases() -> Vec<Case> {
    let text = include_str!("../data/jax_vocab.txt");
    let mut out: Vec<Case> = Vec::new();
    let nums = |s: &str| -> Vec<f64> { s.split_whitespace().map(|t| t.parse().unwrap()).collect() };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (tag, rest) = line.split_once(' ').unwrap();
        match tag {
            "case" => out.push(Case {
                name: rest.to_string(),
                x: vec![],
                w: vec![],
                y: vec![],
                g: vec![],
            }),
            "x" => out.last_mut().unwrap().x = nums(rest),
            "w" => out.last_mut().unwrap().w = nums(rest),
            "y" => out.last_mut().unwrap().y = nums(rest),
            "g" => out.last_mut().unwrap().g = nums(rest),
            t => panic!("unknown line tag {t}"),
        }
    }
    out
}

/// The same input the reference used for `atan2_with_p` / `rem_by_p`.
const P: [f64; 7] = [0.2, 0.5, 1.0, 1.7, 2.4, 3.3, 5.0];

/// tenferro's spelling of each case (a 1-D vector in, a 1-D vector out).
fn apply(name: &str, x: &TracedTensor) -> TracedTensor {
    let p = || TracedTensor::from_vec_col_major(vec![7], P.to_vec());
    match name {
        "erf" => x.erf(),
        "erfc" => x.erfc(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "sinh" => x.sinh(),
        "cosh" => x.cosh(),
        "asinh" => x.asinh(),
        "acosh" => x.acosh(),
        "atanh" => x.atanh(),
        "logistic" => x.logistic(),
        "cbrt" => x.cbrt(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        "relu" => x.relu(),
        "gelu_exact" => x.gelu(false),
        "gelu_tanh" => x.gelu(true),
        "silu" => x.silu(),
        "softplus" => x.softplus(),
        "log_sigmoid" => x.log_sigmoid(),
        "clip" => x.clip(-1.0, 1.5),
        "square" => x.square(),
        "reciprocal" => x.reciprocal(),
        "softmax" => x.softmax(-1),
        "log_softmax" => x.log_softmax(0),
        "logsumexp" => x.logsumexp(&[-1], true),
        "mean" => x.mean_axes(&[0], true),
        "var" => x.var_axes(&[0], 0, true),
        "var_ddof1" => x.var_axes(&[0], 1, true),
        "std" => x.std_axes(&[0], 0, true),
        "cumsum" => x.cumsum(0),
        "cumprod" => x.cumprod(0),
        "cummax" => x.cummax(0),
        "sort" => x.sort(0, false),
        "atan2_with_p" => x.binary(tenferro_ir::BinaryOp::Atan2, &p()),
        "rem_by_p" => x.binary(tenferro_ir::BinaryOp::Rem, &p()),
        "stop_gradient_times_x" => &x.stop_gradient() * x,
        "reverse" => x.reverse(&[0]).unwrap(),
        // JAX: tril of the 2x3 matrix whose column-major storage is x, flattened
        // column-major: the same as reshaping x to [2, 3] here.
        "tril_2x3_col_sum" => x
            .reshape(&[2, 3])
            .unwrap()
            .tril(0)
            .unwrap()
            .reshape(&[6])
            .unwrap(),
        other => panic!("no tenferro spelling for {other}"),
    }
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= 1e-12 * (1.0 + w.abs()) || (g.is_nan() && w.is_nan());
        assert!(ok, "{what}[{i}]: tenferro {g} vs JAX {w}");
    }
}

#[test]
fn values_and_gradients_match_jax() {
    let ad = AdContext::new();
    let all = cases();
    assert!(all.len() >= 40);
    for c in &all {
        let n = c.x.len();
        let x = TracedTensor::input(DType::F64, &[n]);
        let y = apply(&c.name, &x);
        let w = TracedTensor::from_vec_col_major(vec![c.w.len()], c.w.clone());
        let loss = (&w * &y).sum();
        let g = ad.grad(&loss, &x).unwrap();
        let p = GraphCompiler::new().compile_many(&[&y, &g]).unwrap();
        let xv = Tensor::from_vec_col_major(vec![n], c.x.clone()).unwrap();
        let out = GraphExecutor::new(CpuBackend::new())
            .run_many_with_inputs(&p, &[(&x, xv)])
            .unwrap();
        close(
            &out[0].to_vec::<f64>().unwrap(),
            &c.y,
            &format!("{} value", c.name),
        );
        close(
            &out[1].to_vec::<f64>().unwrap(),
            &c.g,
            &format!("{} gradient", c.name),
        );
    }
}
