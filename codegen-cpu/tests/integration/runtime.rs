//! The backend behind the runtime: input checks, extension kernels per executor, and a
//! compiled program re-run on new values through `GraphExecutor`.

use tenferro_cpu::CpuBackend;
use tenferro_ir::{
    BinaryOp, DType, DotDims, ExtensionOp, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp,
};
use tenferro_runtime::{
    Backend, ExtensionRegistry, GraphCompiler, GraphExecutor, RuntimeError, TracedTensor,
};

fn double_op() -> ExtensionOp {
    ExtensionOp::new("test.double", vec![TensorType::new(DType::F64, vec![2])])
}

fn register_double(reg: &mut ExtensionRegistry) -> tenferro_runtime::Result<()> {
    reg.register("test.double", |_op, args| {
        let v: Vec<f64> = args[0].as_slice::<f64>()?.iter().map(|x| 2.0 * x).collect();
        Ok(vec![Tensor::from_vec_col_major(vec![2], v)?])
    })
}

fn extension_function() -> Function {
    let mut f = Function::new("ext");
    let x = f.add_param(TensorType::new(DType::F64, vec![2]));
    let d = f.push(Op::Extension(double_op()), &[x]).unwrap();
    let y = f.push1(Op::Unary(UnaryOp::Neg), &d).unwrap();
    f.set_outputs(vec![y]);
    f
}

#[test]
fn threads_settings() {
    assert!(CpuBackend::new().threads() >= 1);
    assert_eq!(CpuBackend::with_threads(3).threads(), 3);
    assert_eq!(CpuBackend::with_threads(0).threads(), 1);
}

#[test]
fn missing_extension_kernel_names_the_op() {
    let b = CpuBackend::with_threads(1);
    let p = b.prepare(&extension_function()).unwrap();
    let x = Tensor::from_vec_col_major(vec![2], vec![1.0, 2.0]).unwrap();
    let err = b
        .execute(&p, std::slice::from_ref(&x), &ExtensionRegistry::new())
        .unwrap_err();
    assert_eq!(
        err,
        RuntimeError::MissingKernel {
            op: "test.double".into()
        }
    );
    assert!(err.to_string().contains("test.double"));
    let mut reg = ExtensionRegistry::new();
    register_double(&mut reg).unwrap();
    let out = b.execute(&p, &[x], &reg).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), [-2.0, -4.0]);
}

#[test]
fn extension_registered_on_one_executor_only() {
    let x = TracedTensor::input(DType::F64, &[2]);
    let y = TracedTensor::apply1(Op::Extension(double_op()), &[&x]);
    let prog = GraphCompiler::new().compile(&y).unwrap();
    let mut with = GraphExecutor::new(CpuBackend::with_threads(1));
    with.register_extension(register_double).unwrap();
    let mut without = GraphExecutor::new(CpuBackend::with_threads(1));
    let v = Tensor::from_vec_col_major(vec![2], vec![1.5, -1.0]).unwrap();
    let out = with.run_with_inputs(&prog, &[(&x, v.clone())]).unwrap();
    assert_eq!(out.to_vec::<f64>().unwrap(), [3.0, -2.0]);
    let err = without.run_with_inputs(&prog, &[(&x, v)]).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MissingKernel { op } if op == "test.double"),
        "{err}"
    );
}

#[test]
fn bad_inputs_are_reported() {
    let b = CpuBackend::with_threads(1);
    let p = b.prepare(&extension_function()).unwrap();
    let reg = ExtensionRegistry::new();
    let e = b.execute(&p, &[], &reg).unwrap_err().to_string();
    assert!(e.contains("1 input"), "{e}");
    let wrong = Tensor::from_vec_col_major(vec![3], vec![1.0f64, 2.0, 3.0]).unwrap();
    let e = b.execute(&p, &[wrong], &reg).unwrap_err().to_string();
    assert!(e.contains("f64[3]") && e.contains("f64[2]"), "{e}");
    // A function whose recorded result type is wrong is rejected by prepare.
    let mut g = Function::new("g");
    let x = g.add_param(TensorType::new(DType::F64, vec![2]));
    let y = g.push_unchecked(
        Op::Unary(UnaryOp::Exp),
        vec![x],
        vec![TensorType::new(DType::F32, vec![2])],
    );
    g.set_outputs(y);
    let e = b.prepare(&g).unwrap_err().to_string();
    assert!(e.contains("exp") && e.contains("f32[2]"), "{e}");
}

#[test]
fn compiled_program_reruns_on_new_values() {
    // y = sum_j (A x)_j^2 + exp(x_0) with A a constant.
    let a = TracedTensor::from_vec_col_major(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let x = TracedTensor::input(DType::F64, &[3]);
    let ax = TracedTensor::apply1(Op::DotGeneral(DotDims::matmul()), &[&a, &x]);
    let sq = TracedTensor::apply1(Op::Binary(BinaryOp::Mul), &[&ax, &ax]);
    let s = TracedTensor::apply1(
        Op::Reduce {
            kind: ReduceOp::Sum,
            axes: vec![0],
        },
        &[&sq],
    );
    let x0 = TracedTensor::apply1(
        Op::Slice {
            starts: vec![0],
            limits: vec![1],
        },
        &[&x],
    );
    let x0 = TracedTensor::apply1(Op::Reshape { shape: vec![] }, &[&x0]);
    let e = TracedTensor::apply1(Op::Unary(UnaryOp::Exp), &[&x0]);
    let y = TracedTensor::apply1(Op::Binary(BinaryOp::Add), &[&s, &e]);
    let prog = GraphCompiler::new().compile(&y).unwrap();
    let mut exec = GraphExecutor::new(CpuBackend::new());
    let expect = |xv: [f64; 3]| {
        let r0 = xv[0] + 3.0 * xv[1] + 5.0 * xv[2];
        let r1 = 2.0 * xv[0] + 4.0 * xv[1] + 6.0 * xv[2];
        r0 * r0 + r1 * r1 + xv[0].exp()
    };
    for xv in [[1.0, 0.0, -1.0], [0.5, 2.0, 3.0], [0.0, 0.0, 0.0]] {
        let t = Tensor::from_vec_col_major(vec![3], xv.to_vec()).unwrap();
        let out = exec.run_with_inputs(&prog, &[(&x, t)]).unwrap();
        let got = out.to_vec::<f64>().unwrap()[0];
        assert!(
            (got - expect(xv)).abs() <= 1e-12 * expect(xv).abs().max(1.0),
            "{got}"
        );
    }
    // The prepared program is cached: one entry shared by every run.
    let p1 = exec.prepare(&prog).unwrap();
    let p2 = exec.prepare(&prog).unwrap();
    assert!(std::sync::Arc::ptr_eq(&p1, &p2));
}
