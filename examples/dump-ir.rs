//! Shows what tenferro does with a traced computation: the IR as lowered, the IR after
//! every pass of the pipeline (with the pass's statistics), and the IR of `grad` and of
//! `jvp(grad(f))` before and after the pipeline.
//!
//! For each program it then prints what the CPU backend prepared: the partitioner's
//! decision for every instruction (with the reason of each refusal), the fusion groups,
//! each kernel schedule and the memory plan.
//!
//! Run: `cargo run --example dump-ir` (add `-- O0|O1|O2` to pick the optimization level,
//! and `--dot FILE` to write the prepared programs as Graphviz DOT, fusion groups as
//! clusters: `dot -Tsvg FILE -O`; `--stablehlo` to print each program exported to a
//! StableHLO module by tenferro-xla).

use std::error::Error;
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::Backend;
use tenferro_runtime::{
    lower, CompileOptions, DType, GraphCompiler, GraphExecutor, LowerMode, OptLevel, Program,
    Tensor, TracedTensor,
};

fn compile_and_show(
    title: &str,
    t: &TracedTensor,
    inputs: &[(&TracedTensor, Tensor)],
    level: OptLevel,
    dot: &mut String,
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
    show_cpu_program(&program, dot)?;
    let mut executor = GraphExecutor::new(CpuBackend::new());
    let result = executor.run_with_inputs(&program, inputs)?;
    println!(
        "--- result: shape {:?}, {:?} ---\n",
        result.shape(),
        result.data()
    );
    Ok(())
}

/// Prints the fusion decisions, groups, schedules and memory plan of the CPU backend's
/// prepared form of `program`, and appends its DOT graph to `dot`.
fn show_cpu_program(program: &Program, dot: &mut String) -> Result<(), Box<dyn Error>> {
    let prepared = CpuBackend::new().prepare(program.function())?;
    println!("--- fusion decisions ---");
    for note in prepared.fusion_notes() {
        println!("  {note}");
    }
    println!(
        "--- prepared for the CPU: {} fusion group(s), {} step(s), peak {} bytes ---",
        prepared.fusion_groups().len(),
        prepared.steps().len(),
        prepared.peak_bytes()
    );
    println!("{prepared}");
    dot.push_str(&prepared.to_dot());
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut level = OptLevel::O2;
    let mut dot_file: Option<String> = None;
    let mut stablehlo = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "O0" => level = OptLevel::O0,
            "O1" => level = OptLevel::O1,
            "O2" => level = OptLevel::O2,
            "--dot" => {
                i += 1;
                dot_file = Some(args.get(i).cloned().ok_or("--dot needs a file name")?);
            }
            "--stablehlo" => stablehlo = true,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
        i += 1;
    }
    let mut dot = String::new();
    let ad = AdContext::builder().build()?;

    // f(x) = sum(tanh(A x)^2)
    let a = TracedTensor::from_vec_col_major(vec![2, 2], vec![1.0_f64, 0.5, -0.25, 2.0]);
    // x and v are placeholders: their values are given at run time, so the IR keeps them.
    let x = TracedTensor::input_named("x", DType::F64, &[2]);
    let v = TracedTensor::input_named("v", DType::F64, &[2]);
    let x_val = Tensor::from_vec_col_major(vec![2], vec![0.3_f64, -0.7])?;
    let v_val = Tensor::from_vec_col_major(vec![2], vec![1.0_f64, 0.0])?;
    let f = |x: &TracedTensor| -> Result<TracedTensor, Box<dyn Error>> {
        let h = a.matmul(x)?.tanh();
        Ok((&h * &h).reduce_sum(&[0]))
    };

    let y = f(&x)?;
    compile_and_show(
        "f(x) = sum(tanh(A x)^2)",
        &y,
        &[(&x, x_val.clone())],
        level,
        &mut dot,
    )?;

    if stablehlo {
        show_stablehlo("f(x) = sum(tanh(A x)^2)", &y, level)?;
    }

    let g = ad.grad(&y, &x)?;
    compile_and_show("grad f", &g, &[(&x, x_val.clone())], level, &mut dot)?;
    if stablehlo {
        show_stablehlo("grad f", &g, level)?;
    }

    let hvp = ad.jvp(&g, &x, &v)?;
    compile_and_show(
        "jvp(grad f) (Hessian-vector product)",
        &hvp,
        &[(&x, x_val), (&v, v_val)],
        level,
        &mut dot,
    )?;
    if stablehlo {
        show_stablehlo("jvp(grad f) (Hessian-vector product)", &hvp, level)?;
    }
    if let Some(path) = dot_file {
        std::fs::write(&path, dot)?;
        println!("wrote {path}");
    }
    Ok(())
}

/// Prints the program of `t` exported to StableHLO (MLIR text) by tenferro-xla.
fn show_stablehlo(title: &str, t: &TracedTensor, level: OptLevel) -> Result<(), Box<dyn Error>> {
    let program = GraphCompiler::with_options(CompileOptions::new().opt_level(level)).compile(t)?;
    println!("=== {title}: StableHLO (tenferro-xla) ===");
    println!("{}", tenferro_xla::program_to_stablehlo(&program)?);
    Ok(())
}
