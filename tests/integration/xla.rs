//! The XLA backend (tenferro-xla over a PJRT plugin) against the CPU backend: random
//! programs from the fuzzer's generator, a gradient program, and plugin errors.
//!
//! Tests that need the plugin SKIP (pass with a printed note) when TENFERRO_PJRT_PLUGIN is
//! unset; `.ci/run` installs `xla-cpu-pjrt` and sets it.
//!
//! Tolerance: XLA's transcendental functions and reduction orders differ from the CPU
//! backend's, so floats agree within `1e-4 · (1 + |cpu|)` for f32 / c32 outputs and
//! `1e-9 · (1 + |cpu|)` for f64 / c64, unless single-precision arithmetic rounded upstream
//! of the value, which then gets the single-precision tolerance (elements non-finite on both sides agree; i64 / bool
//! agree exactly). Complex elements that are NaN on the CPU backend and finite on XLA
//! are not compared (XLA's atanh(±inf + NaN·i) is ±π/2 where C99 gives NaN).

use tenferro::fuzz::check::random_inputs;
use tenferro::fuzz::gen::generate;
use tenferro::fuzz::rng::Rng;
use tenferro::fuzz::{forward_config, grad_config};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{
    Backend, DType, Data, ExtensionRegistry, GraphCompiler, GraphExecutor, Tensor, TracedTensor,
};
use tenferro_xla::{XlaBackend, PLUGIN_ENV};

fn xla() -> Option<XlaBackend> {
    if std::env::var_os(PLUGIN_ENV).is_none() {
        eprintln!(
            "SKIP: {PLUGIN_ENV} is not set (pip install xla-cpu-pjrt; see the README's ## XLA)"
        );
        return None;
    }
    Some(XlaBackend::from_env().expect("the plugin named by TENFERRO_PJRT_PLUGIN loads"))
}

/// The first element where `got` (XLA) and `want` (CPU) disagree beyond the tolerance;
/// `single` when f32 / c32 arithmetic rounded upstream (the value may have been converted
/// to f64 since), which gives an f64 / c64 value the single-precision tolerance.
fn mismatch(got: &Tensor, want: &Tensor, single: bool) -> Option<String> {
    if got.ty() != want.ty() {
        return Some(format!("type {} vs {}", got.ty(), want.ty()));
    }
    let tol = match got.dtype() {
        DType::F32 | DType::C32 => 1e-4,
        DType::F64 | DType::C64 if single => 1e-4,
        DType::F64 | DType::C64 => 1e-9,
        _ => 0.0,
    };
    for i in 0..got.numel() {
        let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
        let fin = |c: num_complex::Complex64| c.re.is_finite() && c.im.is_finite();
        let nan = |c: num_complex::Complex64| c.re.is_nan() || c.im.is_nan();
        // Elements NaN on the CPU backend (C99's value) and finite on XLA are not compared:
        // XLA's atanh(±inf + NaN·i) is ±π/2.
        let cpu_overflow = got.dtype().is_complex() && nan(w) && fin(g);
        let ok = g == w
            || cpu_overflow
            || (nan(g) && nan(w))
            || (!fin(g) && !fin(w) && tol > 0.0)
            || (fin(g) && fin(w) && (g - w).norm() <= tol * (1.0 + w.norm()));
        if !ok {
            return Some(format!("element {i}: xla {g} vs cpu {w} ({})", got.ty()));
        }
    }
    None
}

/// For every value of `f` (by arena index), whether an instruction with an f32 / c32
/// operand is upstream of it (XLA and the CPU backend may round such arithmetic
/// differently by a few single-precision ulps, which a conversion to f64 keeps).
fn single_upstream(f: &tenferro_ir::Function) -> Vec<bool> {
    let mut single = vec![false; f.num_values()];
    for inst in f.insts() {
        let s = inst.args.iter().any(|a| {
            single.get(a.index()).is_some_and(|&s| s)
                || matches!(f.ty(*a).dtype, DType::F32 | DType::C32)
        });
        for r in &inst.results {
            if let Some(slot) = single.get_mut(r.index()) {
                *slot = s;
            }
        }
    }
    single
}

#[test]
fn random_programs_agree_with_cpu() {
    let Some(x) = xla() else { return };
    let cpu = CpuBackend::new();
    let reg = ExtensionRegistry::new();
    let (mut ran, mut unsupported, mut failures) = (0, Vec::new(), Vec::new());
    for seed in 0..200u64 {
        let f = generate(seed, &forward_config(6));
        let inputs = random_inputs(&f, seed);
        let want = match cpu.prepare(&f).and_then(|p| cpu.execute(&p, &inputs, &reg)) {
            Ok(w) => w,
            Err(_) => continue, // a run-time error on the CPU too (e.g. allocation)
        };
        let p = match x.prepare(&f) {
            Ok(p) => p,
            Err(e) if e.to_string().contains("cannot export to StableHLO") => {
                unsupported.push(e.to_string());
                continue;
            }
            Err(e) => {
                failures.push(format!(
                    "seed {seed}: prepare: {e}\n{}",
                    tenferro_ir::print(&f)
                ));
                continue;
            }
        };
        ran += 1;
        match x.execute(&p, &inputs, &reg) {
            Ok(got) => {
                let single = single_upstream(&f);
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    let single = f
                        .outputs()
                        .get(k)
                        .and_then(|v| single.get(v.index()))
                        .is_some_and(|&s| s);
                    if let Some(m) = mismatch(g, w, single) {
                        failures.push(format!(
                            "seed {seed}: output {k}: {m}\n{}",
                            tenferro_ir::print(&f)
                        ));
                    }
                }
            }
            Err(e) => failures.push(format!("seed {seed}: execute: {e}")),
        }
    }
    unsupported.sort();
    unsupported.dedup();
    eprintln!(
        "xla: {ran} programs ran; {} distinct unsupported-op errors: {unsupported:#?}",
        unsupported.len()
    );
    assert!(ran >= 100, "only {ran} programs ran");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn gradient_programs_agree_with_cpu() {
    let Some(x) = xla() else { return };
    let ad = tenferro_ad::AdContext::new();
    let (mut ran, mut failures) = (0, Vec::new());
    for seed in 0..40u64 {
        let f = generate(seed, &grad_config(6));
        let tys = f.param_types();
        if tys.is_empty() {
            continue;
        }
        // Trace the generated loss on placeholders; its gradient in every input is one
        // compiled program, run on both backends.
        let ins: Vec<TracedTensor> = tys
            .iter()
            .map(|t| TracedTensor::input(t.dtype, &t.shape))
            .collect();
        let refs: Vec<&TracedTensor> = ins.iter().collect();
        let loss = TracedTensor::call(&f, &refs).unwrap().remove(0);
        let grads = ad.grad_many(&loss, &refs).unwrap();
        let outs: Vec<&TracedTensor> = grads.iter().collect();
        let prog = GraphCompiler::new().compile_many(&outs).unwrap();
        let mut r = Rng::new(seed);
        let bind: Vec<(&TracedTensor, Tensor)> = ins
            .iter()
            .zip(&tys)
            .map(|(p, t)| {
                let d = (0..t.numel()).map(|_| r.uniform(-2.0, 2.0)).collect();
                (p, Tensor::new(t.shape.clone(), Data::F64(d)).unwrap())
            })
            .filter(|(p, _)| prog.inputs().iter().any(|q| q.same_as(p)))
            .collect();
        let want = GraphExecutor::new(CpuBackend::new())
            .run_many_with_inputs(&prog, &bind)
            .unwrap();
        let got = match GraphExecutor::new(x.clone()).run_many_with_inputs(&prog, &bind) {
            Ok(g) => g,
            Err(e) if e.to_string().contains("cannot export to StableHLO") => continue,
            Err(e) => panic!("seed {seed}: {e}\n{prog}"),
        };
        for (g, w) in got.iter().zip(&want) {
            if let Some(m) = mismatch(g, w, false) {
                failures.push(format!("seed {seed}: {m}\n{prog}"));
            }
        }
        ran += 1;
    }
    assert!(ran >= 20, "only {ran} gradient programs ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn missing_or_wrong_plugin_is_a_clear_error() {
    let e = XlaBackend::new(Some(std::path::Path::new("/nonexistent/libpjrt.so")))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(PLUGIN_ENV) && e.contains("xla-cpu-pjrt"), "{e}");
    // A file that is not a shared library.
    let e = XlaBackend::new(Some(std::path::Path::new(file!())))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot load"), "{e}");
    // A shared library that is not a PJRT plugin.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    if let Some(p) = libc {
        let e = XlaBackend::new(Some(std::path::Path::new(p)))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("not a PJRT plugin"), "{e}");
    }
}
