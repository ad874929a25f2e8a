//! The shipped benchmark instances parse and plan; upstream's stored paths replay with
//! their stored largest intermediate; Auto is within 0.15 (log10 flops) of upstream's
//! path on the larger networks.

use tenferro_einsum::{instances, plan_einsum, EinsumOptions, Optimize};

fn opts(optimize: Optimize) -> EinsumOptions {
    EinsumOptions {
        optimize,
        memory_limit: None,
    }
}

#[test]
fn instances_plan() {
    let names = instances::names();
    assert!(names.len() >= 16, "{names:?}");
    for name in names {
        let inst = instances::load(&name).unwrap();
        let g = plan_einsum(&inst.subscripts, &inst.shapes, &opts(Optimize::Greedy)).unwrap();
        assert_eq!(g.steps.len(), inst.shapes.len() - 1, "{name}");
        for up in &inst.upstream {
            let p = plan_einsum(
                &inst.subscripts,
                &inst.shapes,
                &opts(Optimize::Path(up.path.clone())),
            )
            .unwrap();
            assert!((p.log2_size() - up.log2_size).abs() < 0.01, "{name}: {p}");
        }
    }
}

#[test]
fn auto_close_to_upstream() {
    for name in [
        "str_nw_mera_open_26",
        "lm_batch_likelihood_brackets_4_4d",
        "str_matrix_chain_multiplication_100",
    ] {
        let inst = instances::load(name).unwrap();
        let up = &inst.upstream[0];
        let ours = plan_einsum(&inst.subscripts, &inst.shapes, &opts(Optimize::Auto)).unwrap();
        let theirs = plan_einsum(
            &inst.subscripts,
            &inst.shapes,
            &opts(Optimize::Path(up.path.clone())),
        )
        .unwrap();
        assert!(
            ours.log10_flops() <= theirs.log10_flops() + 0.15,
            "{name}: auto 10^{:.3} vs upstream 10^{:.3}",
            ours.log10_flops(),
            theirs.log10_flops()
        );
    }
}
