//! Program statistics for a fixed catalogue of derivative programs: for each program and
//! optimization level, one JSON line with the instruction count, the cost model's
//! estimated flops and bytes, and the whole compile time (tracing + AD + pipeline +
//! backend preparation).
//!
//! Run: `cargo run --release --example ir_stats`

use std::error::Error;
use std::time::Instant;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_linalg::TracedTensorLinalgExt;
use tenferro_runtime::{
    CompileOptions, DType, GraphCompiler, GraphExecutor, OptLevel, Program, TracedTensor,
};

type Res<T> = Result<T, Box<dyn Error>>;

/// Traces a catalogue program and returns the values to compile.
type Builder = fn() -> Res<Vec<TracedTensor>>;

/// Gradient of a 3-layer MLP (batch 256, width 512, tanh, mean squared loss) w.r.t. all
/// weights and biases.
fn mlp_grad() -> Res<Vec<TracedTensor>> {
    let (b, d) = (256, 512);
    let x = TracedTensor::input(DType::F64, &[b, d]);
    let y = TracedTensor::input(DType::F64, &[b, d]);
    let w: Vec<TracedTensor> = (0..3)
        .map(|_| TracedTensor::input(DType::F64, &[d, d]))
        .collect();
    let bias: Vec<TracedTensor> = (0..3)
        .map(|_| TracedTensor::input(DType::F64, &[d]))
        .collect();
    let h1 = (&x.matmul(&w[0])? + &bias[0]).tanh();
    let h2 = (&h1.matmul(&w[1])? + &bias[1]).tanh();
    let out = &h2.matmul(&w[2])? + &bias[2];
    let r = &out - &y;
    let loss = (&r * &r).reduce_mean(&[0, 1]);
    let ad = AdContext::builder().build()?;
    let wrt: Vec<&TracedTensor> = vec![&w[0], &bias[0], &w[1], &bias[1], &w[2], &bias[2]];
    Ok(ad.grad_many(&loss, &wrt)?)
}

/// Hessian-vector product `jvp(grad f)(x; v)` of `f(x) = Σ tanh(A·x)²`, A 1000×1000.
fn hvp() -> Res<Vec<TracedTensor>> {
    let n = 1000;
    let a = TracedTensor::input(DType::F64, &[n, n]);
    let x = TracedTensor::input(DType::F64, &[n]);
    let v = TracedTensor::input(DType::F64, &[n]);
    let h = a.matmul(&x)?.tanh();
    let f = (&h * &h).reduce_sum(&[0]);
    let ad = AdContext::builder().build()?;
    let g = ad.grad(&f, &x)?;
    Ok(vec![ad.jvp(&g, &x, &v)?])
}

/// Gradient of the elementwise chain `Σ exp(sin(x)·y + cos(x))·0.5 − tanh(x)`, f64[1e6].
fn chain_grad() -> Res<Vec<TracedTensor>> {
    let n = 1_000_000;
    let x = TracedTensor::input(DType::F64, &[n]);
    let y = TracedTensor::input(DType::F64, &[n]);
    let e = (&(&x.sin() * &y) + &x.cos()).exp();
    let loss = (&(&e * 0.5) - &x.tanh()).reduce_sum(&[0]);
    let ad = AdContext::builder().build()?;
    Ok(vec![ad.grad(&loss, &x)?])
}

/// Gradient of `Σ cholesky(A)` w.r.t. A, 512×512.
fn cholesky_grad() -> Res<Vec<TracedTensor>> {
    let a = TracedTensor::input(DType::F64, &[512, 512]);
    let loss = a.cholesky()?.reduce_sum(&[0, 1]);
    let ad = AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules()?)
        .build()?;
    Ok(vec![ad.grad(&loss, &a)?])
}

/// Gradient of the real loss `Σ |z·z|²` w.r.t. complex z, c64[1e5].
fn complex_grad() -> Res<Vec<TracedTensor>> {
    let z = TracedTensor::input(DType::C64, &[100_000]);
    let a = (&z * &z).abs();
    let loss = (&a * &a).reduce_sum(&[0]);
    let ad = AdContext::builder().build()?;
    Ok(vec![ad.grad(&loss, &z)?])
}

fn compile(build: Builder, level: OptLevel) -> Res<(Program, f64)> {
    let start = Instant::now();
    let outputs = build()?;
    let refs: Vec<&TracedTensor> = outputs.iter().collect();
    let program =
        GraphCompiler::with_options(CompileOptions::new().opt_level(level)).compile_many(&refs)?;
    let mut executor = GraphExecutor::new(CpuBackend::new());
    executor.register_extension(tenferro_linalg::register_runtime)?;
    executor.prepare(&program)?;
    Ok((program, start.elapsed().as_secs_f64() * 1e3))
}

fn main() -> Res<()> {
    let catalogue: [(&str, Builder); 5] = [
        ("mlp_grad", mlp_grad),
        ("hvp_tanh_1000", hvp),
        ("chain_grad_1e6", chain_grad),
        ("cholesky_grad_512", cholesky_grad),
        ("complex_grad_1e5", complex_grad),
    ];
    for (name, build) in catalogue {
        for (level, label) in [
            (OptLevel::O0, "O0"),
            (OptLevel::O1, "O1"),
            (OptLevel::O2, "O2"),
        ] {
            // Warm once, then report the best of five compiles (the first pays page faults).
            let mut best = f64::INFINITY;
            let mut last = None;
            for _ in 0..5 {
                let (program, ms) = compile(build, level)?;
                best = best.min(ms);
                last = Some(program);
            }
            let program = last.expect("compiled at least once");
            let cost = tenferro_passes::estimate(program.function());
            println!(
                "{{\"program\": \"{name}\", \"level\": \"{label}\", \"instructions\": {}, \"est_flops\": {:.0}, \"est_bytes\": {:.0}, \"compile_ms\": {best:.3}}}",
                program.function().insts().len(),
                cost.flops,
                cost.bytes,
            );
        }
    }
    Ok(())
}
