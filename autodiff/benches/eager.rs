//! Eager overhead beside PyTorch's (`/work/shared/peers/RESULTS.md`, 1 thread, f64[4]):
//! PyTorch eager `a + b` 1.42 µs per op, `(x*x).sum().backward()` 72.8 µs per step.
//! Goals: ≤ 0.5 µs per tiny op, ≤ 15 µs per tiny backward step.
//!
//! `eager MLP training step` times one SGD step of a 64×[32, 128, 128, 10] tanh MLP
//! (forward, `backward()`, update under `no_grad`; `tests/integration/support/eager_mlp.rs`); it
//! prints the ops and instructions one step runs. Run
//! `cargo bench -p tenferro-ad --bench eager -- "eager MLP"`.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
#[path = "../tests/integration/support/eager_mlp.rs"]
mod eager_mlp;

use tenferro_ad::EagerContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::{Backend, ExtensionRegistry};

fn eager(c: &mut Criterion) {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let a = ctx
        .from_vec_col_major(vec![4], vec![1.0_f64, 2.0, 3.0, 4.0])
        .unwrap();
    let b = ctx
        .from_vec_col_major(vec![4], vec![0.5_f64, 1.5, 2.5, 3.5])
        .unwrap();
    c.bench_function("eager a + b f64[4]", |bn| {
        bn.iter(|| black_box(black_box(&a) + black_box(&b)))
    });
    // Reference: the backend alone running the prepared `add` (what every eager op pays).
    let mut f = tenferro_ir::Function::new("add");
    let ty = tenferro_ir::TensorType::new(tenferro_ir::DType::F64, vec![4]);
    let (p, q) = (f.add_param(ty.clone()), f.add_param(ty));
    let r = f
        .push1(tenferro_ir::Op::Binary(tenferro_ir::BinaryOp::Add), &[p, q])
        .unwrap();
    f.set_outputs(vec![r]);
    let backend = CpuBackend::with_threads(1);
    let prepared = backend.prepare(&f).unwrap();
    let registry = ExtensionRegistry::new();
    let inputs = [a.value().unwrap(), b.value().unwrap()];
    c.bench_function("backend execute of prepared add f64[4] (reference)", |bn| {
        bn.iter(|| {
            black_box(
                backend
                    .execute(&prepared, black_box(&inputs), &registry)
                    .unwrap(),
            )
        })
    });
    let at = a.clone().requires_grad(true);
    c.bench_function("eager a + b f64[4], a tracked (records a node)", |bn| {
        bn.iter(|| black_box(black_box(&at) + black_box(&b)))
    });
    c.bench_function("eager (x*x).sum().backward() f64[4] (whole step)", |bn| {
        bn.iter(|| {
            let x = a.clone().requires_grad(true);
            let loss = (&x * &x).sum().unwrap();
            loss.backward().unwrap();
            black_box(x.grad())
        })
    });
    let x = a.clone().requires_grad(true);
    let loss = (&x * &x).sum().unwrap();
    c.bench_function("eager backward() only, (x*x).sum() f64[4]", |bn| {
        bn.iter(|| {
            loss.backward().unwrap();
            x.zero_grad();
        })
    });
    let f = |x: &tenferro_ad::EagerTensor| (x * x).sum();
    c.bench_function("eager ctx.grad(|x| (x*x).sum(), x) f64[4]", |bn| {
        bn.iter(|| black_box(ctx.grad(f, black_box(&a)).unwrap()))
    });
}

fn eager_mlp(c: &mut Criterion) {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let mut m = eager_mlp::mlp(&ctx, 64, &[32, 128, 128, 10]).unwrap();
    eager_mlp::step(&ctx, &mut m).unwrap();
    let before = ctx.stats();
    eager_mlp::step(&ctx, &mut m).unwrap();
    let after = ctx.stats();
    eprintln!(
        "eager MLP step: {} ops ({} instructions), {} backward program run(s) ({} instructions)",
        after.ops_run - before.ops_run,
        after.op_insts_run - before.op_insts_run,
        after.transforms_run - before.transforms_run,
        after.transform_insts_run - before.transform_insts_run,
    );
    c.bench_function("eager MLP training step 64x[32,128,128,10] f64", |bn| {
        bn.iter(|| black_box(eager_mlp::step(&ctx, &mut m).unwrap()))
    });
}

criterion_group!(benches, eager, eager_mlp);
criterion_main!(benches);
