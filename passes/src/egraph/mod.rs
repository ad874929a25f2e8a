//! E-graph simplification: translate a function into an egg e-graph over a tensor
//! language, saturate with named rewrite rules under hard limits, extract the cheapest
//! program under [`crate::cost`], and write it back.
//!
//! - [`lang`]: the e-node language (core ops with attributes; constants interned;
//!   parameters and extension results are opaque leaves).
//! - [`analysis`]: each class's type and, when all elements are equal, their value.
//! - [`rules`]: the bit-exact default rules and the `fast_math` rules.
//! - [`saturate`]: the driver and [`EGraphOptions`].
//! - [`extract`]: cost-based extraction that keeps sharing, and the write-back.
//! - [`sexpr`]: a small s-expression form of functions, for one-line rule tests.
//!
//! The pass never makes a function more expensive under [`crate::cost::score`]: when the
//! extracted function scores higher than its input, the input is kept.

pub mod analysis;
pub mod extract;
pub mod lang;
pub mod rules;
pub mod saturate;
pub mod sexpr;

pub use analysis::{ClassData, Splat, TGraph, TensorAnalysis};
pub use lang::{TNode, TOp};
pub use rules::{default_rules, fast_math_rules, Rhs, Rule};
pub use saturate::{saturate, EGraphOptions, SaturationReport, StopReason};

use extract::{Origin, Translation};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use tenferro_ir::{Function, Op, Value, ValueDef};

/// What one run of the e-graph pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct EGraphReport {
    /// How saturation ended; over several windows, the most severe stop (time limit, then
    /// node limit, then iteration limit, then saturated), the most iterations of a
    /// window, and the rewrites and ill-typed right-hand sides of all windows.
    pub saturation: SaturationReport,
    /// E-nodes at the end of saturation (the largest window's).
    pub nodes: usize,
    /// E-classes after saturation (the largest window's).
    pub classes: usize,
    /// Scores ([`crate::cost::score`]) of the input and of the extracted function.
    pub score_before: f64,
    /// Cost-model score of the result.
    pub score_after: f64,
    /// `true` when the input was kept unchanged (nothing cheaper was found, or the
    /// extraction was inconsistent).
    pub kept_input: bool,
    /// Windows saturated (1 when the whole function fits the node budget).
    pub windows: usize,
    /// How many windows stopped for each reason, in the order of [`STOP_REASONS`].
    pub stops: [usize; 4],
}

/// Every [`StopReason`], in the order of [`EGraphReport::stops`].
pub const STOP_REASONS: [StopReason; 4] = [
    StopReason::Saturated,
    StopReason::IterLimit,
    StopReason::NodeLimit,
    StopReason::TimeLimit,
];

fn stop_index(s: StopReason) -> usize {
    match s {
        StopReason::Saturated => 0,
        StopReason::IterLimit => 1,
        StopReason::NodeLimit => 2,
        StopReason::TimeLimit => 3,
    }
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::Saturated => "saturated",
        StopReason::IterLimit => "iter_limit",
        StopReason::NodeLimit => "node_limit",
        StopReason::TimeLimit => "time_limit",
    }
}

/// Translates `f` into an e-graph: one class per value, extension results as leaves.
pub fn translate(f: &Function) -> Translation {
    let mut eg = TGraph::new(TensorAnalysis::default());
    let mut value_class = vec![None; f.num_values()];
    let mut leaf_pos = HashMap::new();
    let mut origins = Vec::new();
    let mut leaf = |eg: &mut TGraph, v: tenferro_ir::Value, pos: usize| {
        let i = v.index() as u32;
        eg.analysis.declare_leaf(i, f.ty(v).clone());
        leaf_pos.insert(i, pos);
        let node = TNode::leaf(TOp::Leaf(i));
        let class = eg.add(node.clone());
        (class, node)
    };
    for &p in f.params() {
        let (class, node) = leaf(&mut eg, p, 0);
        value_class[p.index()] = Some(class);
        origins.push(Origin {
            class,
            node,
            pos: 0,
        });
    }
    let mut pos = 0;
    for inst in f.insts() {
        let op = match &inst.op {
            // Barriers are opaque like extension ops: nothing is rewritten through them.
            Op::Extension(_) | Op::Barrier { .. } => {
                pos += 1;
                for &r in &inst.results {
                    let (class, node) = leaf(&mut eg, r, pos);
                    value_class[r.index()] = Some(class);
                    origins.push(Origin { class, node, pos });
                }
                continue;
            }
            Op::Constant(t) => eg.analysis.intern(t.clone()),
            other => {
                TOp::from_ir(other).expect("every core op but constant has an e-graph operator")
            }
        };
        let children = inst
            .args
            .iter()
            .map(|a| value_class[a.index()].expect("operands are defined before use"))
            .collect();
        let node = TNode::new(op, children);
        let class = eg.add(node.clone());
        value_class[inst.result().index()] = Some(class);
        origins.push(Origin { class, node, pos });
    }
    Translation {
        egraph: eg,
        value_class,
        leaf_pos,
        origins,
    }
}

/// Runs the e-graph pass on `f` in place. `f` must verify (the pipeline runs the verifier
/// first); the result computes the same outputs, bit for bit unless `fast_math`.
pub fn simplify(f: &mut Function, opts: &EGraphOptions) -> EGraphReport {
    let mut rules = default_rules();
    if opts.fast_math {
        rules.extend(fast_math_rules());
    }
    simplify_with(f, &rules, opts)
}

/// [`simplify`] with an explicit rule list.
///
/// A function whose translation fits half the node budget (the other half is room for
/// the rewrites) is saturated whole. A larger one is cut into consecutive windows of
/// instructions that fit it, values defined before a window being leaves of its e-graph
/// and values used after it its outputs; each window is simplified on its own and put
/// back in place. A second round does the same with windows shifted by half a window,
/// so that rewrites across the first round's cuts are found too. The outcome depends
/// only on the function and the node and iteration budgets; the time limit bounds the
/// whole pass and shows in [`EGraphReport::stops`] when it fires.
pub fn simplify_with(f: &mut Function, rules: &[Rule], opts: &EGraphOptions) -> EGraphReport {
    let deadline = Instant::now() + opts.time_limit;
    let budget = (opts.node_limit / 2).max(1);
    let score_before = crate::cost::score(f);
    if f.params().len() + f.insts().len() <= budget {
        let mut r = simplify_whole(f, rules, opts);
        r.score_before = score_before;
        return r;
    }
    let mut reports = Vec::new();
    let mut changed = false;
    for round in 0..2 {
        let cuts = window_cuts(f, budget, round == 1);
        if cuts.len() <= 2 && round == 1 {
            break;
        }
        if let Some(g) = simplify_windows(f, &cuts, rules, opts, deadline, &mut reports) {
            changed = true;
            *f = g;
        }
    }
    let mut total = EGraphReport {
        saturation: SaturationReport {
            stop: StopReason::Saturated,
            iterations: 0,
            applied: Vec::new(),
            ill_typed: 0,
        },
        nodes: 0,
        classes: 0,
        score_before,
        score_after: crate::cost::score(f),
        kept_input: !changed,
        windows: reports.len(),
        stops: [0; 4],
    };
    for r in &reports {
        let s = &mut total.saturation;
        if stop_index(r.saturation.stop) > stop_index(s.stop) {
            s.stop = r.saturation.stop;
        }
        s.iterations = s.iterations.max(r.saturation.iterations);
        s.ill_typed += r.saturation.ill_typed;
        for &(name, n) in &r.saturation.applied {
            match s.applied.iter_mut().find(|(m, _)| *m == name) {
                Some((_, k)) => *k += n,
                None => s.applied.push((name, n)),
            }
        }
        total.nodes = total.nodes.max(r.nodes);
        total.classes = total.classes.max(r.classes);
        for (t, k) in total.stops.iter_mut().zip(r.stops) {
            *t += k;
        }
    }
    total
}

/// Window boundaries over `f`'s instructions: `cuts[k]..cuts[k + 1]` is window `k`. Each
/// window's translation (its instructions' results plus the outside values it reads)
/// stays within `budget` e-nodes unless it is a single instruction. With `shifted`, the
/// first window is half as large, so the cuts fall between the unshifted ones.
fn window_cuts(f: &Function, budget: usize, shifted: bool) -> Vec<usize> {
    let insts = f.insts();
    let mut cuts = vec![0];
    let mut limit = if shifted { (budget / 2).max(1) } else { budget };
    let mut defined: HashSet<Value> = HashSet::new();
    let mut outside: HashSet<Value> = HashSet::new();
    let cost = |inst: &tenferro_ir::Inst, defined: &HashSet<Value>, outside: &HashSet<Value>| {
        let mut leaves: Vec<Value> = inst
            .args
            .iter()
            .copied()
            .filter(|a| !defined.contains(a) && !outside.contains(a))
            .collect();
        leaves.sort_unstable();
        leaves.dedup();
        inst.results.len().max(1) + leaves.len()
    };
    let mut size = 0;
    for (k, inst) in insts.iter().enumerate() {
        let mut c = cost(inst, &defined, &outside);
        if size > 0 && size + c > limit {
            cuts.push(k);
            defined.clear();
            outside.clear();
            size = 0;
            limit = budget;
            c = cost(inst, &defined, &outside);
        }
        for &a in &inst.args {
            if !defined.contains(&a) {
                outside.insert(a);
            }
        }
        defined.extend(inst.results.iter().copied());
        size += c;
    }
    cuts.push(insts.len());
    cuts
}

/// Simplifies each window `cuts[k]..cuts[k + 1]` of `f` on its own (see
/// [`simplify_with`]) and returns the stitched function, or `None` when no window
/// changed (or stitching failed, in which case `f` stands). Appends one report per
/// window.
fn simplify_windows(
    f: &Function,
    cuts: &[usize],
    rules: &[Rule],
    opts: &EGraphOptions,
    deadline: Instant,
    reports: &mut Vec<EGraphReport>,
) -> Option<Function> {
    let insts = f.insts();
    // Index of the last instruction reading each value; outputs count as read at the end.
    let mut last_use = vec![0usize; f.num_values()];
    for (k, inst) in insts.iter().enumerate() {
        for a in &inst.args {
            last_use[a.index()] = k;
        }
    }
    for o in f.outputs() {
        last_use[o.index()] = usize::MAX;
    }
    let mut out = Function::new(f.name.clone());
    let mut map: HashMap<Value, Value> = HashMap::new();
    for (&p, q) in f.params().iter().zip(out.add_params_of(f)) {
        map.insert(p, q);
    }
    let mut changed = false;
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let mut sub = Function::new(f.name.clone());
        let mut inner: HashMap<Value, Value> = HashMap::new();
        let mut inputs: Vec<Value> = Vec::new();
        let mut results: Vec<Value> = Vec::new();
        for inst in &insts[lo..hi] {
            let mut args = Vec::with_capacity(inst.args.len());
            for &a in &inst.args {
                let v = match inner.get(&a) {
                    Some(&v) => v,
                    None => match copy_constant(f, a, &mut sub, &mut inner) {
                        Some(v) => v,
                        None => {
                            let v = sub.add_param(f.ty(a).clone());
                            inner.insert(a, v);
                            inputs.push(a);
                            v
                        }
                    },
                };
                args.push(v);
            }
            let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
            let res = sub.push_unchecked(inst.op.clone(), args, tys);
            for (&old, new) in inst.results.iter().zip(res) {
                inner.insert(old, new);
                results.push(old);
            }
        }
        let live: Vec<Value> = results
            .into_iter()
            .filter(|r| last_use[r.index()] >= hi)
            .collect();
        sub.set_outputs(live.iter().map(|v| inner[v]).collect());
        let remaining = deadline.saturating_duration_since(Instant::now());
        let window_opts = EGraphOptions {
            time_limit: remaining,
            ..opts.clone()
        };
        let r = simplify_whole(&mut sub, rules, &window_opts);
        changed |= !r.kept_input;
        reports.push(r);
        let args = inputs
            .iter()
            .map(|a| map.get(a).copied())
            .collect::<Option<Vec<_>>>()?;
        let vals = out.inline(&sub, &args).ok()?;
        for (old, new) in live.into_iter().zip(vals) {
            map.insert(old, new);
        }
    }
    let outputs = f
        .outputs()
        .iter()
        .map(|o| map.get(o).copied())
        .collect::<Option<Vec<_>>>()?;
    out.set_outputs(outputs);
    if !changed {
        return None;
    }
    // Windows copy the constants they read, so one constant read by several windows
    // comes back once per window: merge the copies. A window's results read by a later
    // window stay its outputs even when that window no longer needs them; drop what
    // became dead. On error `out` is left as stitched, which is still correct.
    let _ = crate::cse::run(&mut out);
    let _ = crate::dce::run(&mut out);
    // Each window only got cheaper, but the stitching can still cost more than the
    // input (a copy CSE cannot merge): keep the input then, as a whole saturation does.
    (crate::cost::score(&out) <= crate::cost::score(f)).then_some(out)
}

/// Copies into `sub` the definition of `v` when it is a constant, or a broadcast or
/// reshape of one, so that a window sees the value (rules match on splats such as
/// `x * 1`) rather than an opaque leaf; returns its value in `sub`, or `None` for other
/// values.
fn copy_constant(
    f: &Function,
    v: Value,
    sub: &mut Function,
    inner: &mut HashMap<Value, Value>,
) -> Option<Value> {
    if let Some(&w) = inner.get(&v) {
        return Some(w);
    }
    let inst = match f.def(v) {
        ValueDef::Inst { inst, .. } => &f.insts()[inst],
        _ => return None,
    };
    let args = match &inst.op {
        Op::Constant(_) => Vec::new(),
        Op::BroadcastInDim { .. } | Op::Reshape { .. } => inst
            .args
            .iter()
            .map(|&a| copy_constant(f, a, sub, inner))
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    let w = *sub
        .push_unchecked(inst.op.clone(), args, vec![f.ty(v).clone()])
        .first()?;
    inner.insert(v, w);
    Some(w)
}

/// One saturation and extraction of the whole of `f`.
fn simplify_whole(f: &mut Function, rules: &[Rule], opts: &EGraphOptions) -> EGraphReport {
    let mut t = translate(f);
    let saturation = saturate(&mut t.egraph, rules, opts);
    let score_before = crate::cost::score(f);
    let extracted = extract::write_back(f, &t);
    let score_after = extracted.as_ref().map_or(f64::INFINITY, crate::cost::score);
    let keep = match &extracted {
        Some(g) => {
            score_after < score_before
                || (score_after == score_before && g.insts().len() <= f.insts().len())
        }
        None => false,
    };
    let mut stops = [0; 4];
    stops[stop_index(saturation.stop)] = 1;
    let report = EGraphReport {
        saturation,
        nodes: t.egraph.total_number_of_nodes(),
        classes: t.egraph.number_of_classes(),
        score_before,
        score_after,
        kept_input: !keep,
        windows: 1,
        stops,
    };
    if let (true, Some(g)) = (keep, extracted) {
        *f = g;
    }
    report
}

/// The pipeline's entry point: [`simplify`] with its report as pass statistics (one
/// counter per stop reason that occurred, counting the windows that stopped so).
pub fn run(f: &mut Function, opts: &EGraphOptions) -> crate::PassStats {
    let r = simplify(f, opts);
    let mut counters = vec![
        ("iterations", r.saturation.iterations as u64),
        ("rewrites", r.saturation.rewrites() as u64),
        ("enodes", r.nodes as u64),
        ("eclasses", r.classes as u64),
    ];
    if r.windows > 1 {
        counters.push(("windows", r.windows as u64));
    }
    for (s, &k) in STOP_REASONS.iter().zip(&r.stops) {
        if k > 0 {
            counters.push((stop_name(*s), k as u64));
        }
    }
    counters.push(("kept_input", u64::from(r.kept_input)));
    crate::PassStats {
        changed: !r.kept_input,
        counters,
    }
}
