//! Equality saturation under hard limits. egg's `Runner` checks its limits only between
//! iterations and overshoots them; this driver checks the node budget before every node it
//! adds and the clock while it searches and applies, so no limit is ever exceeded by more
//! than one rewrite's worth of work.

use super::analysis::{node_type, TGraph};
use super::lang::{TNode, TOp};
use super::rules::{Rhs, Rule};
use egg::Id;
use std::time::{Duration, Instant};
use tenferro_ir::{IrError, TensorType};

/// Limits and rule sets of the e-graph pass.
#[derive(Clone, Debug, PartialEq)]
pub struct EGraphOptions {
    /// Most e-nodes the e-graph may hold (the initial translation counts).
    pub node_limit: usize,
    /// Most search-and-apply iterations.
    pub iter_limit: usize,
    /// Wall-clock budget of the whole pass: a safety net against pathological inputs,
    /// not a tuning knob (the node and iteration budgets decide the outcome). When it
    /// fires, the report's stop reason and the pass statistics say so.
    pub time_limit: Duration,
    /// Add the value-changing [`super::rules::fast_math_rules`].
    pub fast_math: bool,
}

impl Default for EGraphOptions {
    /// Modest limits: the default rules have no commutativity or associativity, so
    /// catalogue programs saturate in a few iterations and a few hundred e-nodes, far
    /// inside the node and iteration budgets; larger functions are simplified in windows
    /// of half the node budget. The time limit is only a backstop against pathological
    /// inputs, far above what the budgets allow in a debug build, so the pass's output
    /// does not depend on the machine's load.
    fn default() -> Self {
        EGraphOptions {
            node_limit: 4_000,
            iter_limit: 10,
            time_limit: Duration::from_secs(5),
            fast_math: false,
        }
    }
}

/// Why saturation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No rule produced anything new: the e-graph is saturated.
    Saturated,
    /// The node budget ran out.
    NodeLimit,
    /// The iteration budget ran out.
    IterLimit,
    /// The time budget ran out.
    TimeLimit,
}

/// What saturation did.
#[derive(Clone, Debug, PartialEq)]
pub struct SaturationReport {
    /// Why saturation ended.
    pub stop: StopReason,
    /// Iterations run.
    pub iterations: usize,
    /// Rewrites that merged two classes, per rule name (rules that never fired omitted).
    pub applied: Vec<(&'static str, usize)>,
    /// Right-hand sides dropped because they did not type-check (a rule bug; tests keep it 0).
    pub ill_typed: usize,
}

impl SaturationReport {
    /// Total number of rewrites that merged classes.
    pub fn rewrites(&self) -> usize {
        self.applied.iter().map(|(_, n)| n).sum()
    }
}

/// Upper bound on the e-nodes adding `rhs` creates.
fn rhs_size(rhs: &Rhs) -> usize {
    match rhs {
        Rhs::Class(_) => 0,
        Rhs::Node(_, args) => 1 + args.iter().map(rhs_size).sum::<usize>(),
        Rhs::Splat(t, _) => 1 + usize::from(t.rank() > 0),
    }
}

/// The type of a right-hand side, or the typing error of one of its nodes.
pub fn rhs_type(eg: &TGraph, rhs: &Rhs) -> Result<TensorType, IrError> {
    match rhs {
        Rhs::Class(id) => Ok(eg[*id].data.ty.clone()),
        Rhs::Splat(t, _) => Ok(t.clone()),
        Rhs::Node(op, args) => {
            let tys = args
                .iter()
                .map(|a| rhs_type(eg, a))
                .collect::<Result<Vec<_>, _>>()?;
            let refs: Vec<&TensorType> = tys.iter().collect();
            node_type(&eg.analysis, op, &refs)
        }
    }
}

/// Adds a (type-checked) right-hand side and returns its class.
pub fn add_rhs(eg: &mut TGraph, rhs: &Rhs) -> Id {
    match rhs {
        Rhs::Class(id) => *id,
        Rhs::Node(op, args) => {
            let children = args.iter().map(|a| add_rhs(eg, a)).collect();
            eg.add(TNode::new(op.clone(), children))
        }
        Rhs::Splat(t, s) => {
            let scalar = s.to_tensor(&TensorType::scalar(t.dtype));
            let c = eg.analysis.intern(scalar);
            let c = eg.add(TNode::leaf(c));
            if t.rank() == 0 {
                c
            } else {
                let op = TOp::Broadcast {
                    shape: t.shape.clone(),
                    dims: vec![],
                };
                eg.add(TNode::new(op, vec![c]))
            }
        }
    }
}

/// Runs `rules` on `eg` until saturation or a limit. The e-graph is rebuilt on return.
pub fn saturate(eg: &mut TGraph, rules: &[Rule], opts: &EGraphOptions) -> SaturationReport {
    let start = Instant::now();
    let out_of_time = || start.elapsed() >= opts.time_limit;
    let mut applied = vec![0usize; rules.len()];
    let mut ill_typed = 0;
    let mut iterations = 0;
    let mut buf = Vec::new();
    eg.rebuild();
    let stop = 'outer: loop {
        if iterations >= opts.iter_limit {
            break StopReason::IterLimit;
        }
        if out_of_time() {
            break StopReason::TimeLimit;
        }
        // E-nodes held by the classes (egg's hash-cons also keeps stale keys, so its
        // `total_size` is not the measure); new nodes are counted as they are added.
        let mut nodes = eg.total_number_of_nodes();
        if nodes >= opts.node_limit {
            break StopReason::NodeLimit;
        }
        // Search: every rule on every node of every class.
        let mut matches: Vec<(Id, usize, Rhs)> = Vec::new();
        for class in eg.classes() {
            if out_of_time() {
                break 'outer StopReason::TimeLimit;
            }
            for node in &class.nodes {
                for (ri, rule) in rules.iter().enumerate() {
                    (rule.apply)(eg, class.id, node, &mut buf);
                    matches.extend(buf.drain(..).map(|rhs| (class.id, ri, rhs)));
                }
            }
        }
        // Apply, within the budgets.
        iterations += 1;
        let mut changed = false;
        let mut stop = None;
        for (k, (id, ri, rhs)) in matches.iter().enumerate() {
            if let Rhs::Class(other) = rhs {
                if eg.find(*other) == eg.find(*id) {
                    continue;
                }
            }
            if k % 16 == 0 && out_of_time() {
                stop = Some(StopReason::TimeLimit);
                break;
            }
            let size = rhs_size(rhs);
            if nodes + size > opts.node_limit {
                stop = Some(StopReason::NodeLimit);
                break;
            }
            match rhs_type(eg, rhs) {
                Ok(t) if t == eg[*id].data.ty => {}
                _ => {
                    ill_typed += 1;
                    continue;
                }
            }
            nodes += size;
            let new = add_rhs(eg, rhs);
            if eg.union(*id, new) {
                changed = true;
                applied[*ri] += 1;
            }
        }
        eg.rebuild();
        if let Some(s) = stop {
            break s;
        }
        if !changed {
            break StopReason::Saturated;
        }
    };
    SaturationReport {
        stop,
        iterations,
        applied: rules
            .iter()
            .zip(applied)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.name, n))
            .collect(),
        ill_typed,
    }
}
