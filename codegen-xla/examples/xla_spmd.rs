//! One program over two XLA devices, sharded with Shardy annotations:
//!
//! - data parallel: `y = tanh(W x)` with the batch axis of `x` and `y` split over the
//!   mesh axis "x" (W replicated): each device computes its half of the batch;
//! - model parallel: `C = A B` with the contraction axis split (A by columns, B by rows):
//!   each device computes a partial product and XLA inserts the all-reduce.
//!
//! Prints each device's pieces and checks the assembled results against one device (the
//! CPU backend). Needs TENFERRO_PJRT_PLUGIN (see the README's `## XLA`):
//!
//! ```sh
//! cargo run -p tenferro-xla --example xla_spmd
//! ```

use tenferro_cpu::CpuBackend;
use tenferro_runtime::{DType, GraphCompiler, GraphExecutor, Program, Tensor, TracedTensor};
use tenferro_xla::{Mesh, PartitionSpec, Sharding, XlaBackend};

fn main() {
    // The CPU plugin makes N host devices when asked before the client is created.
    let flags = std::env::var("XLA_FLAGS").unwrap_or_default();
    if !flags.contains("xla_force_host_platform_device_count") {
        std::env::set_var(
            "XLA_FLAGS",
            format!("{flags} --xla_force_host_platform_device_count=2"),
        );
    }
    let xla = match XlaBackend::from_env() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("XLA devices: {}", xla.num_devices());
    let mesh = Mesh::new(&[("x", 2)]);

    // Data parallel.
    let w = TracedTensor::input(DType::F64, &[3, 4]);
    let x = TracedTensor::input(DType::F64, &[4, 8]);
    let y = w.matmul(&x).unwrap().tanh();
    let p = GraphCompiler::new().compile(&y).unwrap();
    let wv = tensor(&[3, 4], 0.3);
    let xv = tensor(&[4, 8], 0.1);
    let specs = specs_for(
        &p,
        &[
            (&w, PartitionSpec::replicated()),
            (&x, PartitionSpec::new(&[None, Some("x")])),
        ],
    );
    let sh = Sharding::new(
        mesh.clone(),
        specs,
        vec![PartitionSpec::new(&[None, Some("x")])],
    );
    run(
        "data parallel: y = tanh(W x), batch axis 1 split over \"x\"",
        &xla,
        &p,
        &sh,
        &[(&w, wv), (&x, xv)],
    );

    // Model parallel: the contraction axis k = 6 split over "x".
    let a = TracedTensor::input(DType::F64, &[4, 6]);
    let b = TracedTensor::input(DType::F64, &[6, 5]);
    let c = a.matmul(&b).unwrap();
    let p = GraphCompiler::new().compile(&c).unwrap();
    let specs = specs_for(
        &p,
        &[
            (&a, PartitionSpec::new(&[None, Some("x")])),
            (&b, PartitionSpec::new(&[Some("x"), None])),
        ],
    );
    let sh = Sharding::new(mesh, specs, vec![PartitionSpec::replicated()]);
    run(
        "model parallel: C = A B, contraction axis split over \"x\"",
        &xla,
        &p,
        &sh,
        &[(&a, tensor(&[4, 6], 0.2)), (&b, tensor(&[6, 5], -0.15))],
    );
}

/// A deterministic tensor.
fn tensor(shape: &[usize], s: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| ((i as f64) * s).sin() + 0.1 * i as f64)
        .collect();
    Tensor::from_vec_col_major(shape.to_vec(), v).unwrap()
}

/// The specs in the program's parameter order.
fn specs_for(p: &Program, given: &[(&TracedTensor, PartitionSpec)]) -> Vec<PartitionSpec> {
    p.inputs()
        .iter()
        .map(|q| {
            given
                .iter()
                .find(|(t, _)| t.same_as(q))
                .expect("a spec per input")
                .1
                .clone()
        })
        .collect()
}

fn run(
    title: &str,
    xla: &XlaBackend,
    p: &Program,
    sh: &Sharding,
    bind: &[(&TracedTensor, Tensor)],
) {
    println!("\n== {title}");
    let prepared = xla.prepare_sharded(p.function(), sh).unwrap();
    println!("{}", prepared.mlir);
    let inputs: Vec<Tensor> = p
        .inputs()
        .iter()
        .map(|q| bind.iter().find(|(t, _)| t.same_as(q)).unwrap().1.clone())
        .collect();
    let r = xla.execute_sharded(&prepared, &inputs).unwrap();
    for (i, per) in r.inputs.iter().enumerate() {
        for (d, piece) in per.iter().enumerate() {
            println!(
                "input {i} on device {d}: shape {:?} {:?}",
                piece.shape(),
                piece.to_vec::<f64>().unwrap()
            );
        }
    }
    for (k, per) in r.pieces.iter().enumerate() {
        for (d, piece) in per.iter().enumerate() {
            println!(
                "output {k} on device {d}: shape {:?} {:?}",
                piece.shape(),
                piece.to_vec::<f64>().unwrap()
            );
        }
    }
    let want = GraphExecutor::new(CpuBackend::new())
        .run_many_with_inputs(
            p,
            &bind
                .iter()
                .map(|(t, v)| (*t, v.clone()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    for (g, w) in r.outputs.iter().zip(&want) {
        let (g, w) = (g.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
        let err = g
            .iter()
            .zip(&w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        println!("assembled output vs one device (CPU backend): max |difference| = {err:.2e}");
        assert!(err <= 1e-12, "sharded result differs from one device");
    }
}
