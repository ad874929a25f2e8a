//! Shared helpers of the linalg tests: host matrices as complex column-major vectors,
//! deterministic random data, running traced values on the CPU backend with linalg.
#![allow(dead_code)]

use num_complex::{Complex32, Complex64};
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Program, Tensor, TracedTensor};

pub type C = Complex64;

pub fn c(re: f64, im: f64) -> C {
    C::new(re, im)
}

/// Deterministic pseudo-random numbers in [-1, 1].
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    /// `n` values; complex ones if `complex`.
    pub fn vec(&mut self, n: usize, complex: bool) -> Vec<C> {
        (0..n)
            .map(|_| {
                let re = self.next();
                let im = if complex { self.next() } else { 0.0 };
                c(re, im)
            })
            .collect()
    }
}

/// A host tensor of `dtype` from complex values (the real part for real dtypes).
pub fn tensor(dtype: DType, shape: &[usize], v: &[C]) -> Tensor {
    let s = shape.to_vec();
    match dtype {
        DType::F32 => Tensor::from_vec_col_major(s, v.iter().map(|z| z.re as f32).collect()),
        DType::F64 => Tensor::from_vec_col_major(s, v.iter().map(|z| z.re).collect()),
        DType::C32 => Tensor::from_vec_col_major(
            s,
            v.iter()
                .map(|z| Complex32::new(z.re as f32, z.im as f32))
                .collect(),
        ),
        DType::C64 => Tensor::from_vec_col_major(s, v.to_vec()),
        d => panic!("no test tensors of {d}"),
    }
    .unwrap()
}

pub fn traced(dtype: DType, shape: &[usize], v: &[C]) -> TracedTensor {
    TracedTensor::from_tensor(tensor(dtype, shape, v))
}

/// The values of a tensor as complex numbers.
pub fn values(t: &Tensor) -> Vec<C> {
    (0..t.numel()).map(|i| t.data().get_c64(i)).collect()
}

pub fn tol(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::C32 => 2e-4,
        _ => 1e-10,
    }
}

pub fn assert_close(got: &[C], want: &[C], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().map(|z| z.norm()).fold(1.0, f64::max);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).norm() <= tol * scale,
            "{what}: element {i}: got {g}, want {w} (tol {tol})\n got: {got:?}\nwant: {want:?}"
        );
    }
}

/// Column-major `m x k` times `k x n`.
pub fn matmul(a: &[C], b: &[C], m: usize, k: usize, n: usize) -> Vec<C> {
    let mut out = vec![c(0.0, 0.0); m * n];
    for j in 0..n {
        for p in 0..k {
            for i in 0..m {
                out[i + j * m] += a[i + p * m] * b[p + j * k];
            }
        }
    }
    out
}

/// Conjugate transpose of an `m x n` matrix.
pub fn adjoint(a: &[C], m: usize, n: usize) -> Vec<C> {
    let mut out = vec![c(0.0, 0.0); m * n];
    for j in 0..n {
        for i in 0..m {
            out[j + i * n] = a[i + j * m].conj();
        }
    }
    out
}

pub fn eye(n: usize) -> Vec<C> {
    let mut out = vec![c(0.0, 0.0); n * n];
    for i in 0..n {
        out[i + i * n] = c(1.0, 0.0);
    }
    out
}

/// Block `b` (of size `len`) of a batched vector.
pub fn block(v: &[C], len: usize, b: usize) -> Vec<C> {
    v[b * len..(b + 1) * len].to_vec()
}

/// A random Hermitian positive-definite `n x n` matrix `M Mᴴ + n I`.
pub fn spd(rng: &mut Rng, n: usize, complex: bool) -> Vec<C> {
    let m = rng.vec(n * n, complex);
    let mut a = matmul(&m, &adjoint(&m, n, n), n, n, n);
    for i in 0..n {
        a[i + i * n] += c(n as f64, 0.0);
    }
    a
}

/// A random Hermitian `n x n` matrix.
pub fn hermitian(rng: &mut Rng, n: usize, complex: bool) -> Vec<C> {
    let m = rng.vec(n * n, complex);
    let h = adjoint(&m, n, n);
    m.iter().zip(&h).map(|(a, b)| (a + b) * 0.5).collect()
}

pub fn executor() -> GraphExecutor<CpuBackend> {
    let mut e = GraphExecutor::new(CpuBackend::new());
    e.register_extension(tenferro_linalg::register_runtime)
        .unwrap();
    e
}

#[cfg(feature = "autodiff")]
pub fn ad() -> tenferro_ad::AdContext {
    tenferro_ad::AdContext::builder()
        .with_extension_rules(tenferro_linalg::ad_rules().unwrap())
        .build()
        .unwrap()
}

pub fn compile(outs: &[&TracedTensor]) -> Program {
    GraphCompiler::new().compile_many(outs).unwrap()
}

/// Runs traced values (no placeholders) and returns their values.
pub fn run(outs: &[&TracedTensor]) -> Vec<Tensor> {
    executor().run_many(&compile(outs)).unwrap()
}

/// A compiled function of one placeholder, run on many values.
pub struct Func {
    pub x: TracedTensor,
    pub program: Program,
    pub exec: GraphExecutor<CpuBackend>,
}

impl Func {
    pub fn new(x: TracedTensor, outs: &[&TracedTensor]) -> Func {
        Func {
            program: compile(outs),
            x,
            exec: executor(),
        }
    }
    pub fn eval(&mut self, dtype: DType, shape: &[usize], v: &[C]) -> Vec<Vec<C>> {
        // A program that does not depend on x (a linear map's transpose, ...) reads no input.
        let reads_x = self.program.inputs().iter().any(|p| p.same_as(&self.x));
        let binding = [(&self.x, tensor(dtype, shape, v))];
        let inputs: &[_] = if reads_x { &binding } else { &[] };
        self.exec
            .run_many_with_inputs(&self.program, inputs)
            .unwrap()
            .iter()
            .map(values)
            .collect()
    }
}

/// `Re Σ conj(a)·b`.
pub fn inner(a: &[C], b: &[C]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x.conj() * y).re).sum()
}

pub fn axpy(x: &[C], s: f64, d: &[C]) -> Vec<C> {
    x.iter().zip(d).map(|(a, b)| a + b * s).collect()
}
