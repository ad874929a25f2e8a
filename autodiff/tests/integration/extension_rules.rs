//! Extension ops are differentiable only through the rules of an AdContext; missing
//! rules and duplicate rule sets are errors with messages naming the op and the mode.

use crate::common;

use common::as_c64;
use tenferro_ad::{
    AdContext, AdError, ExtensionRule, Result, Rules, TracedTensorAdExt, TransposeArg,
};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::{ExtensionOp, Op};
use tenferro_runtime::{
    ExtensionRegistry, GraphCompiler, GraphExecutor, RuntimeError, Tensor, TracedTensor,
};

/// `test.cube(x) = x³` (nonlinear) and `test.double(x) = 2x` (linear).
fn ext(name: &str, x: &TracedTensor) -> TracedTensor {
    TracedTensor::apply1(
        Op::Extension(ExtensionOp::new(name, vec![x.ty().unwrap()])),
        &[x],
    )
}

fn register(reg: &mut ExtensionRegistry) -> std::result::Result<(), RuntimeError> {
    reg.register("test.cube", |_op, args: &[&Tensor]| {
        let v: Vec<f64> = args[0]
            .as_slice::<f64>()?
            .iter()
            .map(|x| x * x * x)
            .collect();
        Ok(vec![Tensor::from_vec_col_major(
            args[0].shape().to_vec(),
            v,
        )?])
    })?;
    reg.register("test.double", |_op, args: &[&Tensor]| {
        let v: Vec<f64> = args[0].as_slice::<f64>()?.iter().map(|x| 2.0 * x).collect();
        Ok(vec![Tensor::from_vec_col_major(
            args[0].shape().to_vec(),
            v,
        )?])
    })
}

fn run(t: &TracedTensor) -> Vec<f64> {
    let program = GraphCompiler::new().compile(t).unwrap();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.register_extension(register).unwrap();
    let out = ex.run(&program).unwrap();
    as_c64(&out).iter().map(|z| z.re).collect()
}

struct Cube;

impl ExtensionRule for Cube {
    fn jvp(
        &self,
        _op: &ExtensionOp,
        inputs: &[TracedTensor],
        _outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        let x = &inputs[0];
        Ok(vec![tangents[0].as_ref().map(|d| &(&(x * x) * 3.0) * d)])
    }
}

/// Linear; its tangent uses the op itself, so reverse mode needs its transpose rule.
struct Double {
    with_transpose: bool,
}

impl ExtensionRule for Double {
    fn jvp(
        &self,
        _op: &ExtensionOp,
        _inputs: &[TracedTensor],
        _outputs: &[TracedTensor],
        tangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        Ok(vec![tangents[0].as_ref().map(|d| ext("test.double", d))])
    }

    fn transpose(
        &self,
        op: &ExtensionOp,
        args: &[TransposeArg],
        cotangents: &[Option<TracedTensor>],
    ) -> Result<Vec<Option<TracedTensor>>> {
        if !self.with_transpose {
            return Err(AdError::MissingRule {
                op: op.name.clone(),
                mode: "transpose",
            });
        }
        assert!(args[0].is_linear());
        Ok(vec![cotangents[0].as_ref().map(|c| ext("test.double", c))])
    }
}

fn rules(with_transpose: bool) -> Rules {
    let mut r = Rules::new();
    r.register("test.cube", Cube).unwrap();
    r.register("test.double", Double { with_transpose })
        .unwrap();
    r
}

#[test]
fn extension_rules_give_gradients_and_second_derivatives() {
    // loss = Σ cube(double(x)) = Σ 8x³: grad 24x², second derivative (along ones) 48x.
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, -0.5]);
    let ad = AdContext::builder()
        .with_extension_rules(rules(true))
        .build()
        .unwrap();
    let loss = ext("test.cube", &ext("test.double", &x)).sum();
    let g = ad.grad(&loss, &x).unwrap();
    assert_eq!(run(&g), vec![24.0, 6.0]);
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    let h = ad.jvp(&g, &x, &ones).unwrap();
    assert_eq!(run(&h), vec![48.0, -24.0]);
    let h2 = ad.grad(&g.sum(), &x).unwrap();
    assert_eq!(run(&h2), vec![48.0, -24.0]);
}

#[test]
fn rule_sets_from_several_calls_are_merged() {
    let mut a = Rules::new();
    a.register("test.cube", Cube).unwrap();
    let mut b = Rules::new();
    b.register(
        "test.double",
        Double {
            with_transpose: true,
        },
    )
    .unwrap();
    let ad = AdContext::builder()
        .with_extension_rules(a)
        .with_extension_rules(b)
        .build()
        .unwrap();
    assert_eq!(ad.rules().names(), vec!["test.cube", "test.double"]);
}

#[test]
fn missing_jvp_rule_is_an_error_naming_op_and_mode() {
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let loss = ext("test.cube", &x).sum();
    let err = loss.grad(&x).unwrap_err();
    assert_eq!(
        err,
        AdError::MissingRule {
            op: "test.cube".into(),
            mode: "jvp"
        }
    );
    let msg = err.to_string();
    assert!(msg.contains("test.cube") && msg.contains("jvp"), "{msg}");
    let err = AdContext::new().jvp(&loss, &x, &x).unwrap_err().to_string();
    assert!(err.contains("no jvp rule for op `test.cube`"), "{err}");
}

#[test]
fn missing_transpose_rule_is_an_error_naming_op_and_mode() {
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let ad = AdContext::builder()
        .with_extension_rules(rules(false))
        .build()
        .unwrap();
    let loss = ext("test.double", &x).sum();
    // Forward mode works without a transpose rule ...
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    assert_eq!(run(&ad.jvp(&loss, &x, &ones).unwrap()), vec![4.0]);
    // ... reverse mode needs it.
    let err = ad.grad(&loss, &x).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, AdError::MissingRule { op, mode: "transpose" } if op == "test.double"),
        "{err:?}"
    );
    assert!(
        msg.contains("no transpose rule for op `test.double`"),
        "{msg}"
    );
}

#[test]
fn an_extension_op_off_the_differentiated_path_needs_no_rule() {
    // cube(w) does not depend on x: no rule is asked for.
    let x = TracedTensor::from_vec_col_major(vec![2], vec![1.0_f64, 2.0]);
    let w = TracedTensor::from_vec_col_major(vec![2], vec![3.0_f64, 1.0]);
    let loss = (&x * &ext("test.cube", &w)).sum();
    assert_eq!(run(&loss.grad(&x).unwrap()), vec![27.0, 1.0]);
}

#[test]
fn duplicate_rule_sets_are_an_error() {
    let err = AdContext::builder()
        .with_extension_rules(rules(true))
        .with_extension_rules(rules(true))
        .build()
        .unwrap_err();
    assert!(matches!(&err, AdError::DuplicateRule { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("registered twice")
            && (msg.contains("test.cube") || msg.contains("test.double")),
        "{msg}"
    );
}
