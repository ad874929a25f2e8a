//! Plan quality and planning time on the shipped instances, per planner, beside upstream's
//! stored paths (re-costed here). One line per (instance, planner):
//! `cargo run --release -p tenferro-einsum --example plan_instances [-- NAME_PREFIX]`.

use std::time::Instant;
use tenferro_einsum::{instances, plan_einsum, EinsumOptions, Optimize, AUTO_OPTIMAL_MAX};

fn main() {
    let filter = std::env::args().nth(1).unwrap_or_default();
    println!("instance | n | planner | log10 flops | opt_einsum log10 | log2 size | transposes | plan ms");
    for name in instances::names() {
        if !name.starts_with(&filter) {
            continue;
        }
        let inst = instances::load(&name).unwrap();
        let n = inst.shapes.len();
        let mut planners: Vec<(String, Optimize)> = vec![
            ("auto".into(), Optimize::Auto),
            ("greedy".into(), Optimize::Greedy),
            ("treesa(1x20)".into(), Optimize::tree_sa_fast()),
            (
                "treesa(4x50)".into(),
                Optimize::TreeSa {
                    ntrials: 4,
                    niters: 50,
                },
            ),
        ];
        if n <= 2 * AUTO_OPTIMAL_MAX {
            planners.push(("optimal".into(), Optimize::Optimal));
        }
        for p in &inst.upstream {
            planners.push((
                format!("upstream {}", p.kind),
                Optimize::Path(p.path.clone()),
            ));
        }
        for (label, optimize) in planners {
            let t = Instant::now();
            let r = plan_einsum(
                &inst.subscripts,
                &inst.shapes,
                &EinsumOptions {
                    optimize,
                    memory_limit: None,
                },
            );
            let ms = t.elapsed().as_secs_f64() * 1e3;
            match r {
                Ok(p) => println!(
                    "{name} | {n} | {label} | {:.4} | {:.4} | {:.2} | {} | {ms:.1}",
                    p.log10_flops(),
                    p.flops_opt_einsum.max(1.0).log10(),
                    p.log2_size(),
                    p.transposes
                ),
                Err(e) => println!("{name} | {n} | {label} | error: {e}"),
            }
        }
        for p in &inst.upstream {
            println!(
                "{name} | {n} | upstream {} (stored) | {:.4} | | {:.2} | |",
                p.kind, p.log10_flops, p.log2_size
            );
        }
    }
}
