//! Eager error cases: a method reports at once, as `Err`; an operator's result carries the
//! error (located at the operator) to the next fallible use. Messages name the op or
//! transform and the types involved.

use tenferro_ad::{AdContext, AdError, EagerContext, EagerTensor, TracedTensorAdExt};
use tenferro_cpu::CpuBackend;
use tenferro_linalg::{EagerTensorLinalgExt, TracedTensorLinalgExt};
use tenferro_runtime::{DType, TracedTensor};

fn ctx() -> EagerContext {
    EagerContext::new(CpuBackend::with_threads(1))
}

/// An f64[2] and an f64[3]: operands that do not broadcast together.
fn mismatched(ctx: &EagerContext) -> (EagerTensor, EagerTensor) {
    let a = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 2.0]).unwrap();
    let b = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])
        .unwrap();
    (a, b)
}

fn spd() -> Vec<f64> {
    vec![4.0, 2.0, 2.0, 5.0]
}

#[test]
fn non_scalar_backward() {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0])
        .unwrap()
        .requires_grad(true);
    let y = &x * 2.0;
    let e = y.backward().unwrap_err();
    assert!(matches!(
        e,
        AdError::BadArgument {
            transform: "backward",
            ..
        }
    ));
    let m = e.to_string();
    assert!(
        m.contains("backward")
            && m.contains("scalar")
            && m.contains("f64[3]")
            && m.contains("backward_with"),
        "{m}"
    );
}

#[test]
fn shape_mismatch_names_op_and_shapes() {
    let ctx = ctx();
    let (a, b) = mismatched(&ctx);
    let m = (&a + &b).error().unwrap().to_string();
    assert!(
        m.contains("add") && m.contains("f64[2]") && m.contains("f64[3]"),
        "{m}"
    );
    let m = a.matmul(&b).unwrap_err().to_string();
    assert!(
        m.contains("matmul") && m.contains("[2]") && m.contains("[3]"),
        "{m}"
    );
    let m = a.reduce_sum(&[1]).unwrap_err().to_string();
    assert!(m.contains("reduce_sum") && m.contains("axis 1"), "{m}");
    let m = a.reshape(&[3]).unwrap_err().to_string();
    assert!(m.contains("reshape"), "{m}");
    let m = ctx
        .from_vec_col_major(vec![2, 2], vec![1.0_f64])
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("from_vec_col_major") && m.contains("[2, 2]"),
        "{m}"
    );
}

#[test]
fn missing_extension_kernel() {
    let ctx = ctx();
    let a = ctx.from_vec_col_major(vec![2, 2], spd()).unwrap();
    let e = a.cholesky().unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("no kernel")
            && m.contains("linalg.cholesky")
            && m.contains("register_extension"),
        "{m}"
    );
    // Registering the kernels on this context fixes it; another context is unaffected.
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let l = a.cholesky().unwrap();
    assert_eq!(l.to_vec::<f64>().unwrap(), vec![2.0, 1.0, 0.0, 2.0]);
    let other = EagerContext::new(CpuBackend::with_threads(1));
    let b = other.from_vec_col_major(vec![2, 2], spd()).unwrap();
    assert!(b.cholesky().unwrap_err().to_string().contains("no kernel"));
}

#[test]
fn missing_ad_rule_is_the_traced_error() {
    let ctx = ctx(); // core rules only
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let a = ctx
        .from_vec_col_major(vec![2, 2], spd())
        .unwrap()
        .requires_grad(true);
    let loss = a.cholesky().unwrap().sum().unwrap(); // the forward runs
    let e = loss.backward().unwrap_err();
    assert!(
        matches!(&e, AdError::MissingRule { op, .. } if op == "linalg.cholesky"),
        "{e}"
    );
    let at = TracedTensor::from_vec_col_major(vec![2, 2], spd());
    let te = at.cholesky().unwrap().sum().grad(&at).unwrap_err();
    assert_eq!(e.to_string(), te.to_string());
    let ge = ctx.grad(|x| x.cholesky()?.sum(), &a).unwrap_err();
    assert_eq!(ge.to_string(), te.to_string());
    // With the rules it differentiates.
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap();
    let ctx = EagerContext::with_ad_context(CpuBackend::with_threads(1), ad);
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let a = ctx
        .from_vec_col_major(vec![2, 2], spd())
        .unwrap()
        .requires_grad(true);
    a.cholesky().unwrap().sum().unwrap().backward().unwrap();
    assert!(a.grad().is_some());
}

#[test]
fn backward_on_untracked_tensor() {
    let ctx = ctx();
    let x = ctx.from_vec_col_major(vec![1], vec![2.0_f64]).unwrap();
    let m = (&x * &x).backward().unwrap_err().to_string();
    assert!(
        m.contains("backward") && m.contains("not tracked") && m.contains("requires_grad"),
        "{m}"
    );
    let xl = x.clone().requires_grad(true);
    let y = ctx.no_grad(|| &xl * &xl);
    let m = y.backward().unwrap_err().to_string();
    assert!(m.contains("no_grad"), "{m}");
}

#[test]
fn kernel_failure_names_the_op() {
    let ctx = ctx();
    ctx.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    let a = ctx
        .from_vec_col_major(vec![2, 2], vec![-1.0_f64, 0.0, 0.0, 1.0])
        .unwrap();
    let m = a.cholesky().unwrap_err().to_string();
    assert!(m.contains("linalg.cholesky"), "{m}");
}

#[test]
fn bad_transform_arguments() {
    let ctx = ctx();
    let x = ctx
        .from_vec_col_major(vec![2], vec![1.0_f64, 2.0])
        .unwrap()
        .requires_grad(true);
    let y = &x * 3.0;
    let c = ctx
        .from_vec_col_major(vec![3], vec![1.0_f64, 1.0, 1.0])
        .unwrap();
    let m = y.backward_with(&c).unwrap_err().to_string();
    assert!(
        m.contains("backward_with") && m.contains("f64[3]") && m.contains("f64[2]"),
        "{m}"
    );
    let e = ctx.grad(|x| Ok(x * 2.0), &x).unwrap_err();
    assert!(
        matches!(&e, AdError::NonScalarLoss { ty } if ty == "f64[2]"),
        "{e}"
    );
    let m = ctx.vjp(|x| x.sum(), &x, &c).unwrap_err().to_string();
    assert!(m.contains("vjp") && m.contains("cotangent"), "{m}");
    let m = ctx.jvp(|x| x.sum(), &x, &c).unwrap_err().to_string();
    assert!(m.contains("jvp") && m.contains("tangent #0"), "{m}");
    let i = ctx.from_vec_col_major(vec![2], vec![1_i64, 2]).unwrap();
    let m = ctx.grad(|x| x.sum(), &i).unwrap_err().to_string();
    assert!(m.contains("grad") && m.contains("i64[2]"), "{m}");
    // An integer leaf is rejected by backward, naming its type.
    let il = i.requires_grad(true);
    let s = il.convert(DType::F64).unwrap().sum().unwrap();
    let m = s.backward().unwrap_err().to_string();
    assert!(m.contains("i64[2]"), "{m}");
}

#[test]
fn tensors_of_two_contexts_do_not_mix() {
    let (c1, c2) = (ctx(), ctx());
    let a = c1.from_vec_col_major(vec![1], vec![1.0_f64]).unwrap();
    let b = c2.from_vec_col_major(vec![1], vec![1.0_f64]).unwrap();
    let m = (&a + &b).error().unwrap().to_string();
    assert!(m.contains("another EagerContext"), "{m}");
}

#[test]
fn a_bad_operator_is_reported_by_the_next_method_with_its_line() {
    let ctx = ctx();
    let (a, b) = mismatched(&ctx);
    let line = line!() + 1;
    let bad = &a + &b;
    let m = bad.exp().unwrap_err().to_string();
    assert!(
        m.contains("add") && m.contains("f64[2]") && m.contains("f64[3]"),
        "{m}"
    );
    assert!(m.contains(&format!("eager_errors.rs:{line}:")), "{m}");
    assert_eq!(bad.error().map(|e| e.to_string()), Some(m.clone()));
    // Every fallible use reports it: reading the value, backward, a transform's input.
    assert_eq!(bad.value().unwrap_err().to_string(), m);
    assert_eq!(bad.to_vec::<f64>().unwrap_err().to_string(), m);
    assert_eq!(bad.sum().unwrap_err().to_string(), m);
    assert_eq!(bad.zeros_like().unwrap_err().to_string(), m);
    assert_eq!(bad.backward().unwrap_err().to_string(), m);
    assert_eq!(ctx.grad(|x| x.sum(), &bad).unwrap_err().to_string(), m);
    assert!(format!("{bad:?}").contains(&m));
    // A well-formed operator carries nothing.
    assert!((&a + &a).error().is_none());
}

#[test]
fn a_carried_error_flows_through_a_chain_and_runs_nothing() {
    let ctx = ctx();
    let (a, b) = mismatched(&ctx);
    let a = a.requires_grad(true);
    let first_line = line!() + 1;
    let bad = &a * &b;
    let before = ctx.stats();
    // A second invalid op later in the chain does not replace the first error.
    let chained = -(2.0 * (&bad + 1.0) - &b) / &a;
    assert_eq!(ctx.stats().ops_run, before.ops_run, "ran ops on an error");
    let m = chained.sum().unwrap_err().to_string();
    assert!(m.contains("mul"), "{m}");
    assert!(m.contains(&format!("eager_errors.rs:{first_line}:")), "{m}");
    assert_eq!(ctx.stats().ops_run, before.ops_run);
    // requires_grad and detach keep the error; the transforms report it from f.
    assert!(chained.clone().requires_grad(true).error().is_some());
    assert!(chained.detach().error().is_some());
    let e = ctx.grad(|x| Ok(x * &b), &a).unwrap_err().to_string();
    assert!(e.contains("mul") && e.contains("f64[3]"), "{e}");
    let ct = ctx.from_vec_col_major(vec![2], vec![1.0_f64, 1.0]).unwrap();
    let e = ctx
        .vjp(|x| Ok(x * 2.0), &a, &(&ct + &b))
        .unwrap_err()
        .to_string();
    assert!(e.contains("add"), "{e}");
    let y = &a * 2.0;
    assert!(y.backward_with(&(&ct + &b)).is_err());
}

#[test]
fn an_error_value_from_an_extension_is_reported() {
    let ctx = ctx();
    let e = EagerTensor::from_error(&ctx, AdError::NotDifferentiable("made by a test".into()));
    let x = ctx.scalar(1.0_f64);
    let m = (&x + &e).exp().unwrap_err().to_string();
    assert_eq!(m, "made by a test");
}
