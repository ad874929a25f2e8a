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
use std::collections::HashMap;
use tenferro_ir::{Function, Op};

/// What one run of the e-graph pass did.
#[derive(Clone, Debug, PartialEq)]
pub struct EGraphReport {
    /// How saturation ended.
    pub saturation: SaturationReport,
    /// E-nodes and e-classes at the end of saturation.
    pub nodes: usize,
    /// E-classes after saturation.
    pub classes: usize,
    /// Scores ([`crate::cost::score`]) of the input and of the extracted function.
    pub score_before: f64,
    /// Cost-model score of the result.
    pub score_after: f64,
    /// `true` when the extracted function was not kept (not cheaper, or inconsistent).
    pub kept_input: bool,
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
            Op::Extension(_) => {
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
pub fn simplify_with(f: &mut Function, rules: &[Rule], opts: &EGraphOptions) -> EGraphReport {
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
    if keep {
        *f = extracted.expect("kept only when extracted");
    }
    EGraphReport {
        saturation,
        nodes: t.egraph.total_number_of_nodes(),
        classes: t.egraph.number_of_classes(),
        score_before,
        score_after,
        kept_input: !keep,
    }
}

/// The pipeline's entry point: [`simplify`] with its report as pass statistics.
pub fn run(f: &mut Function, opts: &EGraphOptions) -> crate::PassStats {
    let r = simplify(f, opts);
    let stop = match r.saturation.stop {
        StopReason::Saturated => "saturated",
        StopReason::NodeLimit => "node_limit",
        StopReason::IterLimit => "iter_limit",
        StopReason::TimeLimit => "time_limit",
    };
    crate::PassStats {
        changed: !r.kept_input,
        counters: vec![
            ("iterations", r.saturation.iterations as u64),
            ("rewrites", r.saturation.rewrites() as u64),
            ("enodes", r.nodes as u64),
            ("eclasses", r.classes as u64),
            (stop, 1),
            ("kept_input", u64::from(r.kept_input)),
        ],
    }
}
