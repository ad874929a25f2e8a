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

/// `op` on `input` through XLA and through the CPU backend (a one-op program).
fn run_unary_both(
    b: &XlaBackend,
    op: tenferro_ir::UnaryOp,
    input: Tensor,
) -> tenferro_runtime::Result<(Tensor, Tensor)> {
    use tenferro_ir::{Function, Op};
    use tenferro_runtime::Backend;
    let mut f = Function::new("main");
    let a = f.add_param(input.ty());
    let y = f
        .push1(Op::Unary(op), &[a])
        .map_err(|e| tenferro_runtime::RuntimeError::Invalid(format!("{}: {e}", op.name())))?;
    f.set_outputs(vec![y]);
    let reg = tenferro_runtime::ExtensionRegistry::new();
    let got = b.execute(&b.prepare(&f)?, std::slice::from_ref(&input), &reg)?;
    let cpu = CpuBackend::new();
    let want = cpu.execute(&cpu.prepare(&f)?, &[input], &reg)?;
    Ok((got[0].clone(), want[0].clone()))
}

/// Asserts `|xla - cpu| <= tol·max(|cpu|, floor)` for every element (NaN only against
/// NaN; equal non-finite values agree), naming `what` and the input at the worst element.
fn assert_rel(what: &str, input: &Tensor, got: &Tensor, want: &Tensor, floor: f64, tol: f64) {
    for i in 0..got.numel() {
        let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
        let nan = |c: num_complex::Complex64| c.re.is_nan() || c.im.is_nan();
        let ok = g == w
            || (nan(g) && nan(w))
            || (!nan(g) && !nan(w) && (g - w).norm() <= tol * w.norm().max(floor));
        assert!(
            ok,
            "{what} at {}: xla {g}, cpu {w}",
            input.data().get_c64(i)
        );
    }
}

/// Real test points: a dense sweep of [-7, 7], erfc's tail out to where f64 erfc
/// underflows, tiny values, ±0 and ±inf.
fn real_points() -> Vec<f64> {
    let mut v: Vec<f64> = (0..=1400).map(|i| -7.0 + i as f64 * 0.01 + 1e-4).collect();
    v.extend((0..=400).map(|i| 7.0 + i as f64 * 0.05));
    v.extend([
        1e-300,
        -1e-300,
        1e-10,
        -1e-10,
        0.0,
        -0.0,
        f64::INFINITY,
        -f64::INFINITY,
    ]);
    v
}

/// erf and erfc (real floats) export as `chlo.erf` / `chlo.erfc` and agree with the CPU
/// backend relatively, erfc in its tail too: within 1e-13 on f64 (results down to 1e-280,
/// near where erfc underflows) and 1e-5 on f32 (results down to 1e-30; XLA's f32 erfc
/// rounds `x²` to f32 before the exponential, a relative error of about `x² 2^-24` in the
/// tail, 2.5e-6 at x = 8, and the CPU plugin flushes subnormals to zero).
#[test]
fn erf_and_erfc_agree_with_cpu() {
    use tenferro_ir::UnaryOp;
    let Some(b) = xla() else { return };
    let xs = real_points();
    let n = xs.len();
    for op in [UnaryOp::Erf, UnaryOp::Erfc] {
        let t64 = Tensor::from_vec_col_major(vec![n], xs.clone()).unwrap();
        let (g, w) = run_unary_both(&b, op, t64.clone()).unwrap();
        assert_rel(&format!("{op:?} f64"), &t64, &g, &w, 1e-280, 1e-13);
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let t32 = Tensor::from_vec_col_major(vec![n], xs32).unwrap();
        let (g, w) = run_unary_both(&b, op, t32.clone()).unwrap();
        assert_rel(&format!("{op:?} f32"), &t32, &g, &w, 1e-30, 1e-5);
    }
}

/// Complex test points: a grid over [-3, 3]² (off the axes), larger and tiny moduli, and
/// points on the branch cuts of the inverse functions with either sign of zero (where XLA
/// alone would lose the sign in places).
fn complex_points() -> Vec<num_complex::Complex64> {
    let mut v = Vec::new();
    for i in 0..=24 {
        for j in 0..=24 {
            v.push(num_complex::Complex64::new(
                -3.0 + 0.25 * i as f64 + 0.013,
                -3.0 + 0.25 * j as f64 + 0.007,
            ));
        }
    }
    for (re, im) in [
        (1e3, 2e2),
        (-5e2, 1e3),
        (1e-8, -2e-8),
        (0.5, 1e-12),
        (-2.0, -1e-9),
        (2.5, 0.0),
        (2.5, -0.0),
        (-2.5, -0.0),
        (1.5, -0.0),
        (0.0, 2.5),
        (-0.0, 2.5),
        (-0.0, -2.5),
        (-0.0, 1.5),
    ] {
        v.push(num_complex::Complex64::new(re, im));
    }
    v
}

/// The complex inverse trigonometric and hyperbolic functions export as CHLO ops with the
/// same principal branches as the CPU backend: they agree within `1e-9·max(|cpu|, 1)` on
/// c64 and `1e-4·max(|cpu|, 1)` on c32 (the XLA tolerances of `tests/integration/xla.rs`), XLA's c64
/// results invert: `sin(asin z) = z` & co. within `1e-13·max(|z|, 1)` (atan, atanh: for
/// |z| <= 10), and its c32 results are within `1e-5·max(|w|, 1)` of its c64 ones.
#[test]
fn complex_inverse_trig_agrees_with_cpu() {
    use num_complex::{Complex32, Complex64};
    use tenferro_ir::UnaryOp;
    let Some(b) = xla() else { return };
    let zs = complex_points();
    let n = zs.len();
    let inverses: [(UnaryOp, fn(Complex64) -> Complex64); 6] = [
        (UnaryOp::Asin, |w| w.sin()),
        (UnaryOp::Acos, |w| w.cos()),
        (UnaryOp::Atan, |w| w.tan()),
        (UnaryOp::Asinh, |w| w.sinh()),
        (UnaryOp::Acosh, |w| w.cosh()),
        (UnaryOp::Atanh, |w| w.tanh()),
    ];
    for (op, forward) in inverses {
        let t = Tensor::from_vec_col_major(vec![n], zs.clone()).unwrap();
        let (g, w) = run_unary_both(&b, op, t.clone()).unwrap();
        assert_rel(&format!("{op:?} c64"), &t, &g, &w, 1.0, 1e-9);
        // tan and tanh are ill-conditioned at the poles that atan and atanh of a large z
        // approach, so their round trip is checked for |z| <= 10 only.
        let ill = matches!(op, UnaryOp::Atan | UnaryOp::Atanh);
        for (i, &z) in zs.iter().enumerate() {
            if ill && z.norm() > 10.0 {
                continue;
            }
            let back = forward(g.data().get_c64(i));
            assert!(
                (back - z).norm() <= 1e-13 * z.norm().max(1.0),
                "{op:?} c64: forward(xla({z})) = {back}"
            );
        }
        let zs32: Vec<Complex32> = zs
            .iter()
            .map(|z| Complex32::new(z.re as f32, z.im as f32))
            .collect();
        let t = Tensor::from_vec_col_major(vec![n], zs32.clone()).unwrap();
        let (g32, w32) = run_unary_both(&b, op, t).unwrap();
        for i in 0..n {
            let (x, c, x64) = (
                g32.data().get_c64(i),
                w32.data().get_c64(i),
                g.data().get_c64(i),
            );
            let z = zs32[i];
            assert!(
                (x - x64).norm() <= 1e-5 * x64.norm().max(1.0),
                "{op:?} c32 at z = {z}: xla {x}, xla c64 {x64}"
            );
            assert!(
                (x - c).norm() <= 1e-4 * c.norm().max(1.0),
                "{op:?} c32 at z = {z}: xla {x}, cpu {c}"
            );
        }
    }
}

/// The gradient of `sum(erf(x))` through XLA agrees with the CPU backend and with
/// `2/√π e^{-x²}`.
#[test]
fn erf_gradient_on_xla() {
    let Some(b) = xla() else { return };
    let xs: Vec<f64> = (0..41).map(|i| -4.0 + 0.2 * i as f64).collect();
    let x = TracedTensor::from_vec_col_major(vec![xs.len()], xs.clone());
    let loss = x.erf().reduce_sum(&[0]);
    let ad = tenferro_ad::AdContext::builder().build().unwrap();
    let grad = ad.grad(&loss, &x).unwrap();
    let program = GraphCompiler::new().compile(&grad).unwrap();
    let got = GraphExecutor::new(b).run(&program).unwrap();
    let want = GraphExecutor::new(CpuBackend::new()).run(&program).unwrap();
    close(&got, &want, 1e-13);
    for (g, &x) in got.as_slice::<f64>().unwrap().iter().zip(&xs) {
        let exact = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
        assert!(
            (g - exact).abs() <= 1e-13 * exact,
            "erf'({x}) = {g}, want {exact}"
        );
    }
}
