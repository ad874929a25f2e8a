//! Test helpers: running traced values, deterministic noise, a naive reference einsum on
//! host data, and a reader for the `.npy` fixtures.
#![allow(dead_code)]

use tenferro_cpu::CpuBackend;
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};

pub fn run(t: &TracedTensor) -> Tensor {
    let p = GraphCompiler::new().compile(t).unwrap();
    GraphExecutor::new(CpuBackend::new()).run(&p).unwrap()
}

pub fn vals(t: &TracedTensor) -> Vec<f64> {
    run(t).to_vec::<f64>().unwrap()
}

pub fn col(shape: &[usize], data: Vec<f64>) -> TracedTensor {
    TracedTensor::from_vec_col_major(shape.to_vec(), data)
}

/// Column-major traced operands of these shapes and data.
pub fn operands(shapes: &[Vec<usize>], data: &[Vec<f64>]) -> Vec<TracedTensor> {
    shapes
        .iter()
        .zip(data)
        .map(|(s, d)| col(s, d.clone()))
        .collect()
}

/// Deterministic pseudo-random numbers in [-1, 1).
pub fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// An axis of a reference operand: a global index id and whether it is broadcast (extent 1
/// against a longer index: always read at 0).
#[derive(Clone, Copy, Debug)]
pub struct Ax {
    pub id: usize,
    pub bcast: bool,
}

/// Naive einsum by nested loops over every index (column-major data everywhere):
/// `out[o] = Σ Π_k x_k[..]`. `output` may repeat an index (diagonal embedding: entries off
/// the diagonal are 0).
pub fn naive(sizes: &[usize], inputs: &[Vec<Ax>], data: &[Vec<f64>], output: &[usize]) -> Vec<f64> {
    // Indices no operand reads are not looped over.
    let mut used = vec![false; sizes.len()];
    for a in inputs.iter().flatten() {
        used[a.id] = true;
    }
    let sizes: Vec<usize> = (0..sizes.len())
        .map(|i| if used[i] { sizes[i] } else { 1 })
        .collect();
    let sizes = &sizes[..];
    let out_shape: Vec<usize> = output.iter().map(|&i| sizes[i]).collect();
    let n_out: usize = out_shape.iter().product();
    let mut out = vec![0.0; n_out];
    let total: usize = sizes.iter().product();
    let mut idx = vec![0usize; sizes.len()];
    for _ in 0..total {
        let mut p = 1.0;
        for (axes, d) in inputs.iter().zip(data) {
            let (mut off, mut stride) = (0, 1);
            for a in axes {
                let ext = if a.bcast { 1 } else { sizes[a.id] };
                let i = if a.bcast { 0 } else { idx[a.id] };
                off += i * stride;
                stride *= ext;
            }
            p *= d[off];
        }
        let (mut off, mut stride) = (0, 1);
        for (k, &o) in output.iter().enumerate() {
            off += idx[o] * stride;
            stride *= out_shape[k];
        }
        out[off] += p;
        // advance the column-major counter
        for (k, v) in idx.iter_mut().enumerate() {
            *v += 1;
            if *v < sizes[k] {
                break;
            }
            *v = 0;
        }
    }
    // Repeated output indices were written only on their diagonal (the same idx), which is
    // exactly the embedding.
    out
}

/// Reads a C-order little-endian f64 `.npy`: (shape, data in C order).
pub fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f64>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..6], b"\x93NUMPY");
    let (hlen, start) = if b[6] == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&b[start..start + hlen]).unwrap();
    assert!(
        header.contains("'<f8'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let sh = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = sh
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f64> = b[start + hlen..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, data)
}

/// C-order data of `shape` to column-major data of the same logical tensor.
pub fn c_to_col(shape: &[usize], c: &[f64]) -> Vec<f64> {
    let n: usize = shape.iter().product();
    let mut out = vec![0.0; n];
    let r = shape.len();
    let mut idx = vec![0usize; r];
    for v in c.iter().take(n) {
        // idx is the C-order counter (last axis fastest)
        let (mut off, mut stride) = (0, 1);
        for a in 0..r {
            off += idx[a] * stride;
            stride *= shape[a];
        }
        out[off] = *v;
        for a in (0..r).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

pub fn assert_close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= rtol * scale,
        "{what}: max|got - want| = {err:e} > {rtol:e} * {scale:e}\n got {got:?}\nwant {want:?}"
    );
}
