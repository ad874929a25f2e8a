use tenferro_ad::AdContext;
use tenferro_runtime::{CompileOptions, DType, GraphCompiler, OptLevel, TracedTensor};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ad = AdContext::builder().build()?;
    let n = 5;
    let a = TracedTensor::input(DType::F64, &[n, n]);
    let x = TracedTensor::input(DType::F64, &[n]);
    let v = TracedTensor::input(DType::F64, &[n]);
    let t = a.matmul(&x)?.tanh();
    let f = (&t * &t).sum();
    let g = ad.grad(&f, &x)?;
    let h = ad.jvp(&g, &x, &v)?;
    let program =
        GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O2)).compile(&h)?;
    println!("{}", tenferro_ir::print(program.function()));
    Ok(())
}
