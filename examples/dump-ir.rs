//! Shows what tenferro does with a traced computation: the IR as lowered, the IR after
//! every pass of the pipeline (with the pass's statistics), and the IR of `grad` and of
//! `jvp(grad(f))` before and after the pipeline.
//!
//! Run: `cargo run --example dump-ir` (add `-- O0|O1|O2` to pick the optimization level).

use std::error::Error;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{
    lower, CompileOptions, DType, GraphCompiler, GraphExecutor, LowerMode, OptLevel, Tensor,
    TracedTensor,
};

fn compile_and_show(
    title: &str,
    t: &TracedTensor,
    inputs: &[(&TracedTensor, Tensor)],
    level: OptLevel,
) -> Result<(), Box<dyn Error>> {
    println!("==================== {title} ====================");
    let lowered = lower(&[t], &[], LowerMode::Program)?;
    println!(
        "--- as lowered ({} instructions) ---",
        lowered.function.insts().len()
    );
    println!("{}", tenferro_ir::print(&lowered.function));
    let options = CompileOptions::new()
        .opt_level(level)
        .verify_each(true)
        .observer(|e| {
            println!(
                "--- after pass `{}` [{}] ({} instructions) ---",
                e.pass,
                e.stats,
                e.function.insts().len()
            );
            println!("{}", tenferro_ir::print(e.function));
        });
    let program = GraphCompiler::with_options(options).compile(t)?;
    let mut executor = GraphExecutor::new(CpuBackend::new());
    let result = executor.run_with_inputs(&program, inputs)?;
    println!(
        "--- result: shape {:?}, {:?} ---\n",
        result.shape(),
        result.data()
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let level = match std::env::args().nth(1).as_deref() {
        Some("O0") => OptLevel::O0,
        Some("O1") => OptLevel::O1,
        _ => OptLevel::O2,
    };
    let ad = AdContext::builder().build()?;

    // f(x) = sum(tanh(A x)^2)
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, 0.5, -0.25, 2.0]);
    // x and v are placeholders: their values are given at run time, so the IR keeps them.
    let x = TracedTensor::input(DType::F64, &[2]);
    let v = TracedTensor::input(DType::F64, &[2]);
    let x_val = Tensor::from_vec_col_major(vec![2], vec![0.3_f64, -0.7])?;
    let v_val = Tensor::from_vec_col_major(vec![2], vec![1.0_f64, 0.0])?;
    let f = |x: &TracedTensor| -> Result<TracedTensor, Box<dyn Error>> {
        let h = a.matmul(x)?.tanh();
        Ok((&h * &h).reduce_sum(&[0]))
    };

    let y = f(&x)?;
    compile_and_show("f(x) = sum(tanh(A x)^2)", &y, &[(&x, x_val.clone())], level)?;

    let g = ad.grad(&y, &x)?;
    compile_and_show("grad f", &g, &[(&x, x_val.clone())], level)?;

    let hvp = ad.jvp(&g, &x, &v)?;
    compile_and_show(
        "jvp(grad f) (Hessian-vector product)",
        &hvp,
        &[(&x, x_val), (&v, v_val)],
        level,
    )?;
    Ok(())
}
