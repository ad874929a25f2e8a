//! Criterion benches of the fused CPU backend on the peer workloads' kernels (smaller
//! sizes than `examples/bench_suite.rs`, which runs the full peer table): the W2 chain
//! forward and gradient, a STREAM-like triad, a whole sum, a 256×512 MLP layer
//! (GEMM + bias + tanh), and the gradient and Hessian-vector product of `Σ tanh(A·x)²`
//! with `A` of 1000² (one pass over `A` each). Each program is compiled once; the loop
//! times execution only.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, Data, GraphCompiler, GraphExecutor, Program, Tensor, TracedTensor};

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        })
        .collect()
}

fn tensor(shape: &[usize], dt: DType, seed: u64) -> Tensor {
    let v = values(shape.iter().product(), seed);
    let data = match dt {
        DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
        _ => Data::F64(v),
    };
    Tensor::new(shape.to_vec(), data).expect("shape and data agree")
}

struct Case {
    program: Program,
    inputs: Vec<(TracedTensor, Tensor)>,
}

impl Case {
    fn run(&self, exec: &mut GraphExecutor<CpuBackend>) {
        let inputs: Vec<(&TracedTensor, Tensor)> =
            self.inputs.iter().map(|(t, v)| (t, v.clone())).collect();
        exec.run_many_with_inputs(&self.program, &inputs)
            .expect("workload runs");
    }
}

fn w2(n: usize, dt: DType, grad: bool) -> Case {
    let x = TracedTensor::input(dt, &[n]);
    let y0 = TracedTensor::input(dt, &[n]);
    let f = ((x.sin() * &y0 + x.cos()).exp() * 0.5 - x.tanh()).sum();
    let out = if grad {
        AdContext::new().grad(&f, &x).expect("grad of W2")
    } else {
        f
    };
    Case {
        program: GraphCompiler::new().compile(&out).expect("compiles"),
        inputs: vec![(x, tensor(&[n], dt, 1)), (y0, tensor(&[n], dt, 2))],
    }
}

fn triad(n: usize) -> Case {
    let b = TracedTensor::input(DType::F64, &[n]);
    let c = TracedTensor::input(DType::F64, &[n]);
    let a = &b + &(&c * 3.0);
    Case {
        program: GraphCompiler::new().compile(&a).expect("compiles"),
        inputs: vec![
            (b, tensor(&[n], DType::F64, 3)),
            (c, tensor(&[n], DType::F64, 4)),
        ],
    }
}

fn sum(n: usize) -> Case {
    let x = TracedTensor::input(DType::F64, &[n]);
    Case {
        program: GraphCompiler::new().compile(&x.sum()).expect("compiles"),
        inputs: vec![(x, tensor(&[n], DType::F64, 5))],
    }
}

fn mlp_layer() -> Case {
    let x = TracedTensor::input(DType::F64, &[256, 512]);
    let w = TracedTensor::input(DType::F64, &[512, 512]);
    let b = TracedTensor::input(DType::F64, &[512]);
    let h = (x.matmul(&w).expect("shapes agree") + &b).tanh();
    Case {
        program: GraphCompiler::new().compile(&h).expect("compiles"),
        inputs: vec![
            (x, tensor(&[256, 512], DType::F64, 6)),
            (w, tensor(&[512, 512], DType::F64, 7)),
            (b, tensor(&[512], DType::F64, 8)),
        ],
    }
}

/// `A·B` for 1024² f64 operands (the CPU backend runs it on `gemm512`).
fn matmul_1024() -> Case {
    let a = TracedTensor::input(DType::F64, &[1024, 1024]);
    let b = TracedTensor::input(DType::F64, &[1024, 1024]);
    let c = a.matmul(&b).expect("shapes agree");
    Case {
        program: GraphCompiler::new().compile(&c).expect("compiles"),
        inputs: vec![
            (a, tensor(&[1024, 1024], DType::F64, 12)),
            (b, tensor(&[1024, 1024], DType::F64, 13)),
        ],
    }
}

/// The gradient (`hvp = false`) or the Hessian-vector product (W5) of `Σ tanh(A·x)²`.
fn tanh_loss(n: usize, hvp: bool) -> Case {
    let a = TracedTensor::input(DType::F64, &[n, n]);
    let x = TracedTensor::input(DType::F64, &[n]);
    let v = TracedTensor::input(DType::F64, &[n]);
    let t = a.matmul(&x).expect("shapes agree").tanh();
    let f = (&t * &t).sum();
    let ad = AdContext::new();
    let g = ad.grad(&f, &x).expect("grad");
    let (out, inputs) = if hvp {
        let h = ad.jvp(&g, &x, &v).expect("jvp of the grad");
        (h, vec![(v, tensor(&[n], DType::F64, 11))])
    } else {
        (g, vec![])
    };
    let mut all = vec![
        (a, tensor(&[n, n], DType::F64, 9)),
        (x, tensor(&[n], DType::F64, 10)),
    ];
    all.extend(inputs);
    Case {
        program: GraphCompiler::new().compile(&out).expect("compiles"),
        inputs: all,
    }
}

fn bench(c: &mut Criterion) {
    let n = 1_000_000;
    for threads in [1, 2] {
        let mut exec = GraphExecutor::new(CpuBackend::with_threads(threads));
        let mut g = c.benchmark_group(format!("fused_t{threads}"));
        g.sample_size(20);
        g.throughput(Throughput::Elements(n as u64));
        for (name, case) in [
            ("w2_fwd_1e6_f64", w2(n, DType::F64, false)),
            ("w2_grad_1e6_f64", w2(n, DType::F64, true)),
            ("w2_grad_1e6_f32", w2(n, DType::F32, true)),
            ("triad_1e6_f64", triad(n)),
            ("sum_1e6_f64", sum(n)),
        ] {
            g.bench_function(name, |bch| bch.iter(|| case.run(&mut exec)));
        }
        let layer = mlp_layer();
        g.throughput(Throughput::Elements(2 * 256 * 512 * 512));
        g.bench_function("mlp_layer_256x512_f64", |bch| {
            bch.iter(|| layer.run(&mut exec))
        });
        let mm = matmul_1024();
        g.throughput(Throughput::Elements(2 * 1024 * 1024 * 1024));
        g.bench_function("matmul_1024_f64", |bch| bch.iter(|| mm.run(&mut exec)));
        g.throughput(Throughput::Bytes(8_000_000));
        for (name, case) in [
            ("tanh_loss_grad_1000_f64", tanh_loss(1000, false)),
            ("tanh_loss_hvp_1000_f64", tanh_loss(1000, true)),
        ] {
            g.bench_function(name, |bch| bch.iter(|| case.run(&mut exec)));
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
