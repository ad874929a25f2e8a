//! XlaBackend against the CPU backend on traced programs. Tests that need the PJRT plugin
//! skip (pass with a note) when TENFERRO_PJRT_PLUGIN is unset.

use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};
use tenferro_xla::{XlaBackend, PLUGIN_ENV};

fn xla() -> Option<XlaBackend> {
    if std::env::var_os(PLUGIN_ENV).is_none() {
        eprintln!("SKIP: {PLUGIN_ENV} is not set (pip install xla-cpu-pjrt; see README ## XLA)");
        return None;
    }
    Some(XlaBackend::from_env().expect("the plugin named by TENFERRO_PJRT_PLUGIN loads"))
}

fn close(a: &Tensor, b: &Tensor, tol: f64) {
    assert_eq!(a.ty(), b.ty());
    for i in 0..a.numel() {
        let (x, y) = (a.data().get_c64(i), b.data().get_c64(i));
        let d = (x - y).norm();
        assert!(
            d <= tol * (1.0 + y.norm()) || (x.re.is_nan() && y.re.is_nan()),
            "element {i}: xla {x} vs cpu {y}"
        );
    }
}

#[test]
fn readme_gradient_on_xla() {
    let Some(b) = xla() else { return };
    let x = TracedTensor::from_vec_col_major(vec![3], vec![1.0_f64, 2.0, 3.0]);
    let loss = (&x * &x).reduce_sum(&[0]);
    let ad = tenferro_ad::AdContext::builder().build().unwrap();
    let grad = ad.grad(&loss, &x).unwrap();
    let program = GraphCompiler::new().compile(&grad).unwrap();
    let result = GraphExecutor::new(b).run(&program).unwrap();
    assert_eq!(result.as_slice::<f64>().unwrap(), &[2.0, 4.0, 6.0]);
}

#[test]
fn column_major_reshape_transpose_and_matmul() {
    let Some(b) = xla() else { return };
    let a = TracedTensor::input(tenferro_runtime::DType::F64, &[2, 3]);
    let m = TracedTensor::from_vec_col_major(vec![3, 2], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = a.matmul(&m).unwrap();
    let r = a.reshape(&[3, 2]).unwrap();
    let t = a.transpose(&[1, 0]).unwrap();
    let p = GraphCompiler::new().compile_many(&[&y, &r, &t]).unwrap();
    let av =
        Tensor::from_vec_col_major(vec![2, 3], vec![1.0_f64, -2.0, 0.5, 3.0, -1.0, 2.0]).unwrap();
    let got = GraphExecutor::new(b)
        .run_many_with_inputs(&p, &[(&a, av.clone())])
        .unwrap();
    let want = GraphExecutor::new(CpuBackend::new())
        .run_many_with_inputs(&p, &[(&a, av)])
        .unwrap();
    for (g, w) in got.iter().zip(&want) {
        close(g, w, 1e-12);
    }
}

/// `linalg.cholesky` and `linalg.triangular_solve` lowered to StableHLO (matrix axes
/// first in the IR), with a batch axis.
#[test]
fn cholesky_and_triangular_solve() {
    use tenferro_ir::{DType, Function, Op, TensorType};
    use tenferro_linalg::attrs::{Cholesky, TriangularSolve};
    let Some(b) = xla() else { return };
    let mut f = Function::new("main");
    let ty = TensorType::new(DType::F64, [2, 2, 2]);
    let a = f.add_param(ty.clone());
    let l = f
        .push1(Op::Extension(Cholesky.encode(vec![ty.clone()])), &[a])
        .unwrap();
    let solve = TriangularSolve::default().encode(vec![ty.clone()]);
    let x = f.push1(Op::Extension(solve), &[l, a]).unwrap();
    f.set_outputs(vec![l, x]);
    // Batch 0: [[4, 2], [2, 5]] → L = [[2, 0], [1, 2]]; batch 1: 9·I → L = 3·I.
    let av =
        Tensor::from_vec_col_major(vec![2, 2, 2], vec![4.0, 2.0, 2.0, 5.0, 9.0, 0.0, 0.0, 9.0])
            .unwrap();
    let p = tenferro_runtime::Backend::prepare(&b, &f).unwrap();
    let out = tenferro_runtime::Backend::execute(
        &b,
        &p,
        &[av],
        &tenferro_runtime::ExtensionRegistry::new(),
    )
    .unwrap();
    let lv = out[0].to_vec::<f64>().unwrap();
    assert_eq!(lv, [2.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 3.0]);
    // L X = A  ⇒  X = L⁻¹ A = Lᵀ for A = L Lᵀ.
    let xv = out[1].to_vec::<f64>().unwrap();
    let want = [2.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0, 3.0];
    for (g, w) in xv.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{xv:?}");
    }
}

/// The StableHLO export reads `linalg.triangular_solve`'s attributes through their typed
/// form: all four are exported, and a misspelt one is an error naming the op and the key
/// (no plugin needed).
#[test]
fn triangular_solve_export_reads_typed_attributes() {
    use tenferro_ir::{Attr, DType, Function, Op, TensorType};
    use tenferro_linalg::attrs::TriangularSolve;
    let build = |solve: tenferro_ir::ExtensionOp| {
        let mut f = Function::new("main");
        let ty = TensorType::new(DType::F64, [2, 2]);
        let a = f.add_param(ty.clone());
        let x = f.push1(Op::Extension(solve), &[a, a]).unwrap();
        f.set_outputs(vec![x]);
        f
    };
    let ty = vec![TensorType::new(DType::F64, [2, 2])];
    let how = TriangularSolve {
        lower: false,
        left: true,
        adjoint: true,
        unit_diagonal: true,
    };
    let text = tenferro_xla::to_stablehlo(&build(how.encode(ty.clone()))).unwrap();
    assert!(
        text.contains("left_side = true, lower = false, transpose_a = #stablehlo<transpose TRANSPOSE>, unit_diagonal = true"),
        "{text}"
    );
    let mut bad = how.encode(ty);
    bad.attrs.remove("unit_diagonal");
    bad.attrs.insert("unit_diag".into(), Attr::Bool(true));
    let e = tenferro_xla::to_stablehlo(&build(bad))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("linalg.triangular_solve") && e.contains("`unit_diagonal`"),
        "{e}"
    );
}
