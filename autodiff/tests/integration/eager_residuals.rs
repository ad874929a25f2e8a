//! The work of an eager MLP training step, counted by `EagerStats`: the backward program
//! reads the forward values the graph recorded, so it runs fewer instructions than the
//! forward ops and the derivative together; it is compiled once for the training loop;
//! and the functional `grad` (not recorded) runs the program `backward` runs.

#[path = "support/eager_mlp.rs"]
mod eager_mlp;

use eager_mlp::{loss, mlp, step, Mlp};
use tenferro_ad::{EagerContext, EagerTensor};
use tenferro_cpu::CpuBackend;

#[test]
fn mlp_step_backward_reads_recorded_values() {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let mut m = mlp(&ctx, 8, &[4, 16, 16, 3]).unwrap();
    let first = step(&ctx, &mut m).unwrap();
    let s0 = ctx.stats();
    let mut last = first;
    for _ in 0..3 {
        last = step(&ctx, &mut m).unwrap();
    }
    let s1 = ctx.stats();
    assert!(last < first, "the loss did not fall: {first} -> {last}");
    assert_eq!(
        s1.transforms_compiled, 1,
        "one backward program for the loop"
    );
    assert_eq!(s1.ops_compiled, s0.ops_compiled, "ops were compiled again");
    let (ops, fwd, bwd) = (
        (s1.ops_run - s0.ops_run) / 3,
        (s1.op_insts_run - s0.op_insts_run) / 3,
        (s1.transform_insts_run - s0.transform_insts_run) / 3,
    );
    // Per step: 17 forward ops (3 matmuls, 3 bias adds, 2 tanh, sub, mul, mean) and 12
    // update ops (a mul and a sub per parameter).
    assert_eq!(ops, 23);
    // The recomputing backward program had 33 instructions: the 12 of the forward from
    // the leaves (3 products, 3 broadcasts, 3 adds, 2 tanh, sub) and 21 of derivative.
    assert_eq!(
        bwd, 21,
        "backward ran {bwd} instructions ({fwd} in the ops)"
    );
}

#[test]
fn functional_grad_runs_the_backward_program() {
    let ctx = EagerContext::new(CpuBackend::with_threads(1));
    let m = mlp(&ctx, 8, &[4, 16, 3]).unwrap();
    let l = loss(&m).unwrap();
    let before = ctx.stats();
    l.backward().unwrap();
    let s0 = ctx.stats();
    let plain: Vec<EagerTensor> = m.params.iter().map(|p| p.detach()).collect();
    let refs: Vec<&EagerTensor> = plain.iter().collect();
    let g = ctx
        .grad_many(
            |ps| {
                let m2 = Mlp {
                    params: ps.to_vec(),
                    x: m.x.clone(),
                    y: m.y.clone(),
                };
                loss(&m2)
            },
            &refs,
        )
        .unwrap();
    let s1 = ctx.stats();
    assert_eq!(
        s1.transforms_compiled, s0.transforms_compiled,
        "grad compiled another program than backward"
    );
    assert_eq!(
        s1.transform_insts_run - s0.transform_insts_run,
        s0.transform_insts_run - before.transform_insts_run
    );
    for (p, gi) in m.params.iter().zip(&g) {
        let (a, b) = (p.grad().unwrap(), gi.value().unwrap());
        assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    }
}
