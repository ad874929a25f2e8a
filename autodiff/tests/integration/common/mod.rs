//! Helpers of the autodiff integration tests: compile traced values and run them on the
//! CPU backend, host-side inner products, and a small deterministic generator.
#![allow(dead_code)]

use num_complex::Complex64;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};

/// Compiles `t` and runs it, binding placeholders to values.
pub fn run_with(t: &TracedTensor, inputs: &[(&TracedTensor, Tensor)]) -> Tensor {
    let program = GraphCompiler::new().compile(t).expect("compile");
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.run_with_inputs(&program, inputs).expect("run")
}

/// Compiles and runs a value without placeholders.
pub fn run(t: &TracedTensor) -> Tensor {
    run_with(t, &[])
}

/// The elements of a float or complex tensor as complex numbers.
pub fn as_c64(t: &Tensor) -> Vec<Complex64> {
    (0..t.numel()).map(|i| t.data().get_c64(i)).collect()
}

/// The elements of an f64 tensor.
pub fn f64s(t: &Tensor) -> Vec<f64> {
    t.as_slice::<f64>().expect("f64 tensor").to_vec()
}

/// `Re(Σ conj(a)·b)`.
pub fn inner(a: &Tensor, b: &Tensor) -> f64 {
    as_c64(a)
        .iter()
        .zip(as_c64(b))
        .map(|(x, y)| (x.conj() * y).re)
        .sum()
}

/// `a + s·b` elementwise, in `a`'s dtype (f64 or c64).
pub fn axpy(a: &Tensor, s: f64, b: &Tensor) -> Tensor {
    let v: Vec<Complex64> = as_c64(a)
        .iter()
        .zip(as_c64(b))
        .map(|(x, y)| x + y * s)
        .collect();
    from_c64(a.shape().to_vec(), a.dtype(), v)
}

/// A tensor of dtype f64 (imaginary parts dropped) or c64 from complex values.
pub fn from_c64(shape: Vec<usize>, dtype: tenferro_runtime::DType, v: Vec<Complex64>) -> Tensor {
    match dtype {
        tenferro_runtime::DType::C64 => Tensor::from_vec_col_major(shape, v).unwrap(),
        _ => {
            Tensor::from_vec_col_major(shape, v.iter().map(|z| z.re).collect::<Vec<f64>>()).unwrap()
        }
    }
}

/// Largest absolute difference, scaled by `1 + |expected|`.
pub fn max_rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.shape(), want.shape(), "shapes differ");
    as_c64(got)
        .iter()
        .zip(as_c64(want))
        .map(|(g, w)| (g - w).norm() / (1.0 + w.norm()))
        .fold(0.0, f64::max)
}

/// SplitMix64: a small deterministic generator for test data.
pub struct Gen(pub u64);

impl Gen {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// A tensor of `dtype` (f64 or c64) with parts uniform in `[lo, hi)`.
    pub fn tensor(
        &mut self,
        dtype: tenferro_runtime::DType,
        shape: &[usize],
        lo: f64,
        hi: f64,
    ) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<Complex64> = (0..n)
            .map(|_| Complex64::new(self.uniform(lo, hi), self.uniform(lo, hi)))
            .collect();
        from_c64(shape.to_vec(), dtype, v)
    }
}

/// Compiles several traced values into one program and runs it; placeholders the program
/// does not read are skipped.
pub fn run_many_with(outs: &[&TracedTensor], inputs: &[(&TracedTensor, Tensor)]) -> Vec<Tensor> {
    let program = GraphCompiler::new().compile_many(outs).expect("compile");
    let used: Vec<(&TracedTensor, Tensor)> = inputs
        .iter()
        .filter(|(t, _)| program.inputs().iter().any(|p| p.same_as(t)))
        .map(|(t, v)| (*t, v.clone()))
        .collect();
    let mut ex = GraphExecutor::new(CpuBackend::new());
    ex.run_many_with_inputs(&program, &used).expect("run")
}
