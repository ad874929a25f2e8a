//! The lowered IR of einsum: the transposes the planner places, and that the compiler
//! keeps them (IR in, IR out).

use tenferro_cpu::CpuBackend;
use tenferro_einsum::einsum;
use tenferro_runtime::{lower, Backend, DType, GraphCompiler, LowerMode, TracedTensor};

fn count(f: &tenferro_ir::Function, name: &str) -> usize {
    f.insts().iter().filter(|i| i.op.name() == name).count()
}

#[test]
fn batched_matmul_with_a_long_batch_axis_first_reads_its_operands_in_place() {
    let x = TracedTensor::input(DType::F64, &[32, 64, 64]);
    let y = TracedTensor::input(DType::F64, &[32, 64, 64]);
    let z = einsum("bij,bjk->bik", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    let want = "\
func @main(%0: f64[32,64,64], %1: f64[32,64,64]) -> (f64[32,64,64]) {
  %2 = dot_general {lhs_batch = [0], rhs_batch = [0], lhs_contract = [2], rhs_contract = [1]} %0, %1 : f64[32,64,64]
  return %2
}";
    assert_eq!(tenferro_ir::print(&lowered.function).trim(), want);
    // With AVX-512 the CPU runs it on batch lanes, without any copy.
    let program = GraphCompiler::new().compile(&z).unwrap();
    let prepared = CpuBackend::new().prepare(program.function()).unwrap();
    let text = prepared.to_string();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    {
        assert!(text.contains("lane_gemm(dot_general)"), "{text}");
    }
    assert!(!text.contains("strided_copy"), "{text}");
}

#[test]
fn batched_matmul_with_a_short_batch_axis_first_transposes_it_between_the_matrix_axes() {
    let x = TracedTensor::input(DType::F64, &[8, 64, 64]);
    let y = TracedTensor::input(DType::F64, &[8, 64, 64]);
    let z = einsum("bij,bjk->bik", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    let want = "\
func @main(%0: f64[8,64,64], %2: f64[8,64,64]) -> (f64[8,64,64]) {
  %1 = transpose {perm = [1, 0, 2]} %0 : f64[64,8,64]
  %3 = transpose {perm = [1, 0, 2]} %2 : f64[64,8,64]
  %4 = dot_general {lhs_batch = [1], rhs_batch = [1], lhs_contract = [2], rhs_contract = [0]} %1, %3 : f64[8,64,64]
  return %4
}";
    assert_eq!(tenferro_ir::print(&lowered.function).trim(), want);
    // The optimizing compiler keeps the transposes, and the GEMM reads both in place.
    let program = GraphCompiler::new().compile(&z).unwrap();
    let f = program.function();
    assert_eq!(count(f, "transpose"), 2, "{}", tenferro_ir::print(f));
    let prepared = CpuBackend::new().prepare(f).unwrap();
    let text = prepared.to_string();
    assert!(
        text.contains("gemm(dot_general)") && !text.contains("pack_gemm"),
        "{text}"
    );
}

#[test]
fn batched_matmul_of_large_matrices_with_the_batch_axis_first_is_transposed_for_gemms() {
    // 384³ per batch element: enough multiply-adds per element for GEMMs to beat lanes.
    let x = TracedTensor::input(DType::F64, &[32, 384, 384]);
    let y = TracedTensor::input(DType::F64, &[32, 384, 384]);
    let z = einsum("bij,bjk->bik", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    assert_eq!(
        count(&lowered.function, "transpose"),
        2,
        "{}",
        tenferro_ir::print(&lowered.function)
    );
    let program = GraphCompiler::new().compile(&z).unwrap();
    let text = CpuBackend::new()
        .prepare(program.function())
        .unwrap()
        .to_string();
    // faer's GEMM, or gemm512 on AVX-512.
    let gemm = text.contains("gemm(dot_general)") || text.contains("gemm512(dot_general)");
    assert!(gemm && !text.contains("lane_gemm"), "{text}");
}

#[test]
fn batched_matmul_with_the_batch_axis_last_reads_its_operands_in_place() {
    let x = TracedTensor::input(DType::F64, &[64, 64, 32]);
    let y = TracedTensor::input(DType::F64, &[64, 64, 32]);
    let z = einsum("ijb,jkb->ikb", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    let want = "\
func @main(%0: f64[64,64,32], %1: f64[64,64,32]) -> (f64[64,64,32]) {
  %2 = dot_general {lhs_batch = [2], rhs_batch = [2], lhs_contract = [1], rhs_contract = [0]} %0, %1 : f64[32,64,64]
  %3 = transpose {perm = [1, 2, 0]} %2 : f64[64,64,32]
  return %3
}";
    // Only the result is transposed (dot_general puts the batch axes first).
    assert_eq!(tenferro_ir::print(&lowered.function).trim(), want);
}

#[test]
fn batched_inner_products_lower_to_a_multiply_and_a_sum() {
    let x = TracedTensor::input(DType::F64, &[4096, 256]);
    let y = TracedTensor::input(DType::F64, &[4096, 256]);
    let z = einsum("ij,ij->i", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    let f = &lowered.function;
    assert_eq!(count(f, "dot_general"), 0, "{}", tenferro_ir::print(f));
    assert_eq!(count(f, "mul"), 1, "{}", tenferro_ir::print(f));
    assert_eq!(count(f, "reduce_sum"), 1, "{}", tenferro_ir::print(f));
    // The same with the contracted axis first (the multiply reads a transposed operand).
    let x = TracedTensor::input(DType::F64, &[256, 64]);
    let y = TracedTensor::input(DType::F64, &[256, 64]);
    let z = einsum("ji,ji->i", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    assert_eq!(count(&lowered.function, "dot_general"), 0);
    // A batched matrix-vector product stays a product.
    let v = TracedTensor::input(DType::F64, &[64, 128]);
    let a = TracedTensor::input(DType::F64, &[64, 128, 128]);
    let w = einsum("bij,bj->bi", &[&a, &v]).unwrap();
    let lowered = lower(&[&w], &[], LowerMode::Program).unwrap();
    assert_eq!(count(&lowered.function, "dot_general"), 1);
}

#[test]
fn a_final_batched_outer_product_writes_the_output_order() {
    // C[t,o,k,j] = A[t,j,k] · B[t,o]: the multiply broadcasts both operands straight into
    // the output order; only the small lhs is transposed (its axes k, j swap places).
    let x = TracedTensor::input(DType::F64, &[64, 16, 16]);
    let y = TracedTensor::input(DType::F64, &[64, 64]);
    let z = einsum("tjk,to->tokj", &[&x, &y]).unwrap();
    let lowered = lower(&[&z], &[], LowerMode::Program).unwrap();
    let want = "\
func @main(%0: f64[64,16,16], %3: f64[64,64]) -> (f64[64,64,16,16]) {
  %1 = transpose {perm = [0, 2, 1]} %0 : f64[64,16,16]
  %2 = broadcast_in_dim {shape = [64, 64, 16, 16], dims = [0, 2, 3]} %1 : f64[64,64,16,16]
  %4 = broadcast_in_dim {shape = [64, 64, 16, 16], dims = [0, 1]} %3 : f64[64,64,16,16]
  %5 = mul %2, %4 : f64[64,64,16,16]
  return %5
}";
    assert_eq!(tenferro_ir::print(&lowered.function).trim(), want);
}
