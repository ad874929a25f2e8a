//! Extraction: pick one e-node per e-class by the cost model, then write the function
//! back with each class computed once (sharing is kept: a class used twice becomes one
//! value used twice).
//!
//! The choice is egg's bottom-up fixed point (a node's cost is its own score plus its
//! children's), computed here because the score needs the class types. Opaque
//! instructions (extension ops) stay in their original order; a class needed before an
//! opaque instruction whose chosen form depends on a later opaque result falls back to
//! its original node.

use super::analysis::TGraph;
use super::lang::{TNode, TOp};
use crate::cost::{op_score, INST_OVERHEAD};
use egg::Id;
use std::collections::{HashMap, HashSet};
use tenferro_ir::{Function, Op, TensorType, Value};

/// The original e-node of a value of the source function and the number of opaque
/// instructions before it (its leaves are all available from that position on).
#[derive(Clone, Debug)]
pub struct Origin {
    /// The e-class.
    pub class: Id,
    /// Its original node.
    pub node: TNode,
    /// Position of the instruction in the input.
    pub pos: usize,
}

/// The e-graph translation of a function.
pub struct Translation {
    /// The saturated e-graph.
    pub egraph: TGraph,
    /// The class of each value of the source function (by arena index).
    pub value_class: Vec<Option<Id>>,
    /// Position from which each leaf is available (0 for parameters, `k + 1` for results
    /// of the `k`-th opaque instruction).
    pub leaf_pos: HashMap<u32, usize>,
    /// Where each original value came from.
    pub origins: Vec<Origin>,
}

fn node_score(eg: &TGraph, class: Id, n: &TNode) -> f64 {
    match &n.op {
        TOp::Leaf(_) => 0.0,
        TOp::Const(_) => INST_OVERHEAD,
        op => {
            let ir = op.to_ir().expect("non-leaf operators have an IR op");
            let args: Vec<&TensorType> = n.children.iter().map(|&c| &eg[c].data.ty).collect();
            op_score(&ir, &args, &[&eg[class].data.ty])
        }
    }
}

/// The best node of every class: `(cost, node)`, by a fixed point over the classes.
fn choose(eg: &TGraph) -> HashMap<Id, (f64, TNode)> {
    let own: HashMap<Id, Vec<f64>> = eg
        .classes()
        .map(|c| {
            (
                c.id,
                c.nodes.iter().map(|n| node_score(eg, c.id, n)).collect(),
            )
        })
        .collect();
    // Original nodes were added in topological order, so visiting classes by id settles
    // most of them in the first pass.
    let mut classes: Vec<_> = eg.classes().collect();
    classes.sort_unstable_by_key(|c| c.id);
    let mut best: HashMap<Id, (f64, TNode)> = HashMap::new();
    loop {
        let mut changed = false;
        for c in &classes {
            for (n, &s) in c.nodes.iter().zip(&own[&c.id]) {
                let mut cost = s;
                let mut ok = true;
                for ch in &n.children {
                    match best.get(&eg.find(*ch)) {
                        Some((cc, _)) => cost += cc,
                        None => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                let better = best.get(&c.id).is_none_or(|(b, _)| cost < *b);
                if better {
                    best.insert(c.id, (cost, n.clone()));
                    changed = true;
                }
            }
        }
        if !changed {
            return best;
        }
    }
}

/// Writes the function back from the e-graph. `None` if the extraction is inconsistent
/// (an internal problem; the caller then keeps the input).
pub fn write_back(f: &Function, t: &Translation) -> Option<Function> {
    let eg = &t.egraph;
    let best = choose(eg);
    // Position from which each class's chosen form is computable (None: never, e.g. a cycle).
    let mut avail: HashMap<Id, usize> = HashMap::new();
    let mut chosen: Vec<(&Id, &(f64, TNode))> = best.iter().collect();
    chosen.sort_unstable_by_key(|(c, _)| **c);
    loop {
        let mut changed = false;
        for &(&c, (_, n)) in &chosen {
            if avail.contains_key(&c) {
                continue;
            }
            let own = match n.op {
                TOp::Leaf(v) => *t.leaf_pos.get(&v)?,
                _ => 0,
            };
            let mut pos = Some(own);
            for ch in &n.children {
                pos = match (pos, avail.get(&eg.find(*ch))) {
                    (Some(p), Some(&q)) => Some(p.max(q)),
                    _ => None,
                };
            }
            if let Some(p) = pos {
                avail.insert(c, p);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut origin: HashMap<Id, (TNode, usize)> = HashMap::new();
    for o in &t.origins {
        let c = eg.find(o.class);
        let mut node = o.node.clone();
        node.children.iter_mut().for_each(|ch| *ch = eg.find(*ch));
        if origin.get(&c).is_none_or(|(_, p)| o.pos < *p) {
            origin.insert(c, (node, o.pos));
        }
    }

    let mut out = Function::new(f.name.clone());
    let mut leaf_value: HashMap<u32, Value> = HashMap::new();
    for (&p, q) in f.params().iter().zip(out.add_params_of(f)) {
        leaf_value.insert(p.index() as u32, q);
    }
    let mut w = Writer {
        eg,
        best: &best,
        avail: &avail,
        origin: &origin,
        memo: HashMap::new(),
        leaf_value,
    };
    let class_of = |v: Value| t.value_class[v.index()].map(|c| eg.find(c));
    let mut pos = 0;
    for inst in f.insts() {
        if let Op::Extension(_) | Op::Barrier { .. } = &inst.op {
            let args = inst
                .args
                .iter()
                .map(|&a| w.emit(&mut out, class_of(a)?, pos))
                .collect::<Option<Vec<_>>>()?;
            let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
            let res = out.push_unchecked(inst.op.clone(), args, tys);
            for (&old, new) in inst.results.iter().zip(res) {
                w.leaf_value.insert(old.index() as u32, new);
            }
            pos += 1;
        }
    }
    let outputs = f
        .outputs()
        .iter()
        .map(|&o| w.emit(&mut out, class_of(o)?, pos))
        .collect::<Option<Vec<_>>>()?;
    out.set_outputs(outputs);
    Some(out)
}

struct Writer<'a> {
    eg: &'a TGraph,
    best: &'a HashMap<Id, (f64, TNode)>,
    avail: &'a HashMap<Id, usize>,
    origin: &'a HashMap<Id, (TNode, usize)>,
    memo: HashMap<Id, Value>,
    leaf_value: HashMap<u32, Value>,
}

impl Writer<'_> {
    /// The node computing class `c` with only the opaque results before `pos`.
    fn node_at(&self, c: Id, pos: usize) -> Option<&TNode> {
        match (self.avail.get(&c), self.best.get(&c)) {
            (Some(&a), Some((_, n))) if a <= pos => Some(n),
            _ => self.origin.get(&c).map(|(n, _)| n),
        }
    }

    /// The value of class `root`, emitting its missing instructions in post-order.
    fn emit(&mut self, out: &mut Function, root: Id, pos: usize) -> Option<Value> {
        let mut stack = vec![(root, false)];
        let mut in_progress: HashSet<Id> = HashSet::new();
        while let Some((c, expanded)) = stack.pop() {
            if self.memo.contains_key(&c) {
                continue;
            }
            let n = self.node_at(c, pos)?.clone();
            if !expanded {
                if in_progress.contains(&c) {
                    return None; // a cycle among the chosen nodes
                }
                in_progress.insert(c);
                stack.push((c, true));
                for ch in n.children.iter().rev() {
                    let ch = self.eg.find(*ch);
                    if !self.memo.contains_key(&ch) {
                        stack.push((ch, false));
                    }
                }
                continue;
            }
            in_progress.remove(&c);
            let ty = self.eg[c].data.ty.clone();
            let v = match &n.op {
                TOp::Leaf(v) => *self.leaf_value.get(v)?,
                TOp::Const(i) => {
                    let t = self.eg.analysis.constant(*i).clone();
                    out.push_unchecked(Op::Constant(t), vec![], vec![ty])[0]
                }
                op => {
                    let args = n
                        .children
                        .iter()
                        .map(|ch| self.memo.get(&self.eg.find(*ch)).copied())
                        .collect::<Option<Vec<_>>>()?;
                    out.push_unchecked(op.to_ir()?, args, vec![ty])[0]
                }
            };
            self.memo.insert(c, v);
        }
        self.memo.get(&root).copied()
    }
}
