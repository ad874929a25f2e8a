//! vmap on random programs over every primitive the fuzzer generates: with random
//! in_axes (including shared operands) and out_axes, the batched program evaluates to the
//! per-example results stacked, bit for bit under the reference evaluator (both combine
//! every reduction and contraction in the same column-major order).

use tenferro::fuzz::check::random_inputs;
use tenferro::fuzz::gen::generate;
use tenferro::fuzz::rng::Rng;
use tenferro::fuzz::{forward_config, item_seed};
use tenferro_ad::vmap;
use tenferro_ir::eval::eval;
use tenferro_ir::{Function, Tensor};
use tenferro_passes::OptLevel;
use tenferro_runtime::{CompileOptions, GraphCompiler, TracedTensor};

const B: usize = 3;

/// Host stack of `parts` along `axis` (through the reference evaluator).
fn stack(parts: &[Tensor], axis: usize) -> Tensor {
    let ts: Vec<TracedTensor> = parts
        .iter()
        .map(|t| TracedTensor::from_tensor(t.clone()))
        .collect();
    let refs: Vec<&TracedTensor> = ts.iter().collect();
    let s = TracedTensor::stack(&refs, axis as isize).unwrap();
    let p = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
        .compile(&s)
        .unwrap();
    eval(p.function(), &[]).unwrap().remove(0)
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    // NaNs compare equal whatever their bits (IEEE 754 leaves them unspecified)
    a.ty() == b.ty() && (a.bits_eq(b) || format!("{:?}", a.data()) == format!("{:?}", b.data()))
}

fn check_one(f: &Function, seed: u64) -> Result<(), String> {
    let mut r = Rng::new(seed);
    let params = f.params();
    let in_axes: Vec<Option<usize>> = params
        .iter()
        .map(|&p| {
            let rank = f.ty(p).rank();
            if r.next_u64() % 3 == 0 {
                None
            } else {
                Some((r.next_u64() % (rank as u64 + 1)) as usize)
            }
        })
        .collect();
    if in_axes.iter().all(Option::is_none) {
        return Ok(());
    }
    let mut per: Vec<Vec<Tensor>> = (0..B)
        .map(|k| random_inputs(f, seed ^ (k as u64 + 1)))
        .collect();
    // batched arguments: per-example values stacked at in_axes (shared ones from example 0)
    let args: Vec<Tensor> = (0..params.len())
        .map(|i| match in_axes[i] {
            Some(ax) => stack(&per.iter().map(|xs| xs[i].clone()).collect::<Vec<_>>(), ax),
            None => per[0][i].clone(),
        })
        .collect();
    for xs in per.iter_mut().skip(1) {
        for (i, ax) in in_axes.iter().enumerate() {
            if ax.is_none() {
                xs[i] = args[i].clone();
            }
        }
    }
    let outs_per: Vec<Vec<Tensor>> = per
        .iter()
        .map(|xs| eval(f, xs).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let out_axes: Vec<usize> = f
        .outputs()
        .iter()
        .map(|&o| (r.next_u64() % (f.ty(o).rank() as u64 + 1)) as usize)
        .collect();
    let placeholders: Vec<TracedTensor> = args
        .iter()
        .map(|a| TracedTensor::input(a.dtype(), a.shape()))
        .collect();
    let refs: Vec<&TracedTensor> = placeholders.iter().collect();
    let g = f.clone();
    let ys = vmap(
        move |xs: &[TracedTensor]| {
            let rs: Vec<&TracedTensor> = xs.iter().collect();
            Ok(TracedTensor::call(&g, &rs)?)
        },
        &in_axes,
        &out_axes,
    )
    .call(&refs)
    .map_err(|e| format!("vmap: {e}"))?;
    let yrefs: Vec<&TracedTensor> = ys.iter().collect();
    let p = GraphCompiler::with_options(CompileOptions::new().opt_level(OptLevel::O0))
        .compile_many(&yrefs)
        .map_err(|e| e.to_string())?;
    let bound: Vec<Tensor> = p
        .inputs()
        .iter()
        .map(|pi| {
            let k = placeholders
                .iter()
                .position(|q| q.same_as(pi))
                .expect("a placeholder of ours");
            args[k].clone()
        })
        .collect();
    let got = eval(p.function(), &bound).map_err(|e| e.to_string())?;
    for (k, ax) in out_axes.iter().enumerate() {
        let want = stack(
            &outs_per.iter().map(|o| o[k].clone()).collect::<Vec<_>>(),
            *ax,
        );
        if !same(&got[k], &want) {
            return Err(format!(
                "output {k} (out_axis {ax}, in_axes {in_axes:?}) differs:\n got {:?}\nwant {:?}",
                got[k].data(),
                want.data()
            ));
        }
    }
    Ok(())
}

#[test]
fn vmap_equals_the_stacked_loop_on_random_programs() {
    let cfg = forward_config(8);
    let mut checked = 0;
    for i in 0..400 {
        let f = generate(item_seed(0x7a3, 1, i), &cfg);
        if f.params().is_empty() {
            continue;
        }
        if let Err(e) = check_one(&f, item_seed(0x7a3, 2, i)) {
            panic!("program {i}:\n{}\n{e}", tenferro_ir::print(&f));
        }
        checked += 1;
    }
    assert!(checked > 300, "only {checked} programs had parameters");
}
