//! The recorded program of eager tensors: the autograd graph's nodes ([`Node`],
//! [`NodeRef`]), the walk that gathers what an output depends on into one function, and
//! the derivation of that function's reverse- or forward-mode program. Pure data and IR
//! work: it imports no other eager module but `fxhash` (the context prepares, caches and
//! runs what is derived here; tensors hold the nodes).

use super::fxhash::FxHasher;
use crate::error::{AdError, Result};
use crate::jvp::jvp_function;
use crate::linearize::vjp_function;
use crate::rules::Rules;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use tenferro_ir::{Data, Function, Tensor, Value};
use tenferro_runtime::{GraphCompiler, TracedTensor};

/// A node of the autograd graph.
pub(crate) enum Node {
    /// A tensor marked with `requires_grad(true)` (or a transform's fresh input).
    Leaf {
        value: Tensor,
        grad: RefCell<Option<Tensor>>,
    },
    /// A recorded op: its cached function applied to operands (their values, and their
    /// nodes when tracked).
    Apply {
        func: Arc<Function>,
        values: Vec<Tensor>,
        args: Vec<Option<NodeRef>>,
    },
}

impl Drop for Node {
    /// Frees long chains of nodes without recursion.
    fn drop(&mut self) {
        if let Node::Apply { args, .. } = self {
            let mut stack: Vec<Rc<Node>> = args.drain(..).flatten().map(|r| r.node).collect();
            while let Some(n) = stack.pop() {
                if let Ok(Node::Apply { args, .. }) = Rc::try_unwrap(n).as_mut() {
                    stack.extend(args.drain(..).flatten().map(|r| r.node));
                }
            }
        }
    }
}

/// Result `index` of a node.
#[derive(Clone)]
pub(crate) struct NodeRef {
    pub(crate) node: Rc<Node>,
    pub(crate) index: usize,
}

/// Which transform a cached program computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Cotangents of the differentiated inputs from one output cotangent.
    Vjp,
    /// The output's tangent from one tangent per differentiated input.
    Jvp,
}

/// What a walk differentiates with respect to.
pub(crate) enum Wrt<'a> {
    /// Every leaf reached (`backward`).
    AllLeaves,
    /// These leaves, in order; other leaves are constants (functional transforms).
    Leaves(&'a [Rc<Node>]),
}

/// Where a value of the recorded function comes from.
#[derive(Clone, Copy)]
pub(crate) enum ArgRef {
    /// The i-th differentiated leaf.
    Wrt(usize),
    /// Result `r` of the k-th recorded node.
    Node(usize, usize),
    /// The i-th constant operand.
    Const(usize),
}

enum Status {
    Wrt(usize),
    Dep(usize),
    NonDep,
}

/// The part of the graph an output depends on through the differentiated leaves.
pub(crate) struct Walk {
    /// The differentiated leaves.
    pub(crate) wrt: Vec<Rc<Node>>,
    /// Operands that do not depend on the differentiated leaves: value, and node if tracked.
    pub(crate) consts: Vec<(Tensor, Option<NodeRef>)>,
    /// Recorded nodes that depend on them, in topological order, with their operands.
    nodes: Vec<(Rc<Node>, Vec<ArgRef>)>,
    /// The output; `None` when it does not depend on the differentiated leaves.
    pub(crate) output: Option<ArgRef>,
    /// The structure: each node's function identity and wiring, the leaves' types.
    pub(crate) key: Vec<u64>,
}

/// The value of a leaf (of a recorded node: its first operand's, never asked for).
pub(crate) fn leaf_value(n: &Node) -> &Tensor {
    match n {
        Node::Leaf { value, .. } => value,
        Node::Apply { values, .. } => &values[0],
    }
}

fn push_arg(key: &mut Vec<u64>, a: ArgRef) {
    match a {
        ArgRef::Wrt(i) => key.extend([1, i as u64]),
        ArgRef::Node(k, r) => key.extend([2, k as u64, r as u64]),
        ArgRef::Const(i) => key.extend([3, i as u64]),
    }
}

fn push_type(key: &mut Vec<u64>, t: &Tensor) {
    let mut h = FxHasher::default();
    t.dtype().hash(&mut h);
    key.push(h.finish());
    key.push(t.shape().len() as u64);
    key.extend(t.shape().iter().map(|&d| d as u64));
}

/// Walks the graph from `root` (iteratively: graphs can be deep).
pub(crate) fn walk(root: &NodeRef, wrt: Wrt<'_>, mode: Mode) -> Walk {
    let mut status: HashMap<*const Node, Status> = HashMap::new();
    let all = matches!(wrt, Wrt::AllLeaves);
    let mut wrt_list: Vec<Rc<Node>> = match wrt {
        Wrt::AllLeaves => Vec::new(),
        Wrt::Leaves(l) => {
            for (i, n) in l.iter().enumerate() {
                status.insert(Rc::as_ptr(n), Status::Wrt(i));
            }
            l.to_vec()
        }
    };
    let mut consts = Vec::new();
    let mut nodes: Vec<(Rc<Node>, Vec<ArgRef>)> = Vec::new();
    let mut stack: Vec<(Rc<Node>, bool)> = vec![(root.node.clone(), false)];
    while let Some((n, expanded)) = stack.pop() {
        let p = Rc::as_ptr(&n);
        if status.contains_key(&p) {
            continue;
        }
        match &*n {
            Node::Leaf { .. } => {
                if all {
                    status.insert(p, Status::Wrt(wrt_list.len()));
                    wrt_list.push(n.clone());
                } else {
                    status.insert(p, Status::NonDep);
                }
            }
            Node::Apply { args, values, .. } => {
                if !expanded {
                    stack.push((n.clone(), true));
                    for a in args.iter().rev().flatten() {
                        if !status.contains_key(&Rc::as_ptr(&a.node)) {
                            stack.push((a.node.clone(), false));
                        }
                    }
                    continue;
                }
                let dep = args
                    .iter()
                    .flatten()
                    .any(|a| !matches!(status[&Rc::as_ptr(&a.node)], Status::NonDep));
                if !dep {
                    status.insert(p, Status::NonDep);
                    continue;
                }
                let refs = args
                    .iter()
                    .zip(values)
                    .map(|(a, v)| {
                        let tracked = a.as_ref().map(|r| (r, &status[&Rc::as_ptr(&r.node)]));
                        match tracked {
                            Some((_, Status::Wrt(i))) => ArgRef::Wrt(*i),
                            Some((r, Status::Dep(k))) => ArgRef::Node(*k, r.index),
                            Some((r, Status::NonDep)) => {
                                consts.push((v.clone(), Some(r.clone())));
                                ArgRef::Const(consts.len() - 1)
                            }
                            None => {
                                consts.push((v.clone(), None));
                                ArgRef::Const(consts.len() - 1)
                            }
                        }
                    })
                    .collect();
                status.insert(p, Status::Dep(nodes.len()));
                nodes.push((n.clone(), refs));
            }
        }
    }
    let output = match &status[&Rc::as_ptr(&root.node)] {
        Status::Wrt(i) => Some(ArgRef::Wrt(*i)),
        Status::Dep(k) => Some(ArgRef::Node(*k, root.index)),
        Status::NonDep => None,
    };
    let mut key = vec![mode as u64, wrt_list.len() as u64];
    for l in &wrt_list {
        push_type(&mut key, leaf_value(l));
    }
    for (n, refs) in &nodes {
        if let Node::Apply { func, .. } = &**n {
            key.push(Arc::as_ptr(func) as usize as u64);
        }
        key.push(refs.len() as u64);
        for &r in refs {
            push_arg(&mut key, r);
        }
    }
    match output {
        Some(o) => push_arg(&mut key, o),
        None => key.push(u64::MAX),
    }
    Walk {
        wrt: wrt_list,
        consts,
        nodes,
        output,
        key,
    }
}

/// Where a parameter of a transformed program gets its value.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// The i-th differentiated input.
    Wrt(usize),
    /// The i-th constant operand.
    Const(usize),
    /// The i-th seed (cotangent or tangent).
    Seed(usize),
}

/// The transform of a recorded graph structure, derived and compiled (not yet prepared
/// on a backend).
pub(crate) struct Derived {
    /// The structure it was derived for ([`Walk::key`]).
    pub(crate) key: Vec<u64>,
    /// The recorded functions the key names by address (kept alive so that no other
    /// function can take their address while this entry exists).
    _funcs: Vec<Arc<Function>>,
    /// The recorded function: parameters the differentiated leaves then the constants.
    pub(crate) forward: Arc<Function>,
    /// The transformed program (O1), parameters bound by `sources`.
    pub(crate) program: Arc<Function>,
    pub(crate) sources: Vec<Source>,
}

/// Builds the recorded function of `w` and derives its `mode` transform with `rules`.
pub(crate) fn derive(w: &Walk, mode: Mode, rules: &Rules) -> Result<Derived> {
    let mut f = Function::new("eager_graph");
    let wrt_vals: Vec<Value> = w
        .wrt
        .iter()
        .map(|l| f.add_param(leaf_value(l).ty()))
        .collect();
    let const_vals: Vec<Value> = w.consts.iter().map(|(v, _)| f.add_param(v.ty())).collect();
    let mut node_vals: Vec<Vec<Value>> = Vec::with_capacity(w.nodes.len());
    let mut funcs = Vec::with_capacity(w.nodes.len());
    let value_of = |r: ArgRef, node_vals: &[Vec<Value>]| match r {
        ArgRef::Wrt(i) => wrt_vals[i],
        ArgRef::Const(i) => const_vals[i],
        ArgRef::Node(k, r) => node_vals[k][r],
    };
    for (n, refs) in &w.nodes {
        let Node::Apply { func, .. } = &**n else {
            return Err(AdError::Internal("eager: a leaf among recorded ops".into()));
        };
        let args: Vec<Value> = refs.iter().map(|&r| value_of(r, &node_vals)).collect();
        let res = f
            .inline(func, &args)
            .map_err(|e| AdError::Internal(format!("eager: inlining `{}`: {e}", func.name)))?;
        node_vals.push(res);
        funcs.push(func.clone());
    }
    let out = match w.output {
        Some(o) => value_of(o, &node_vals),
        None => {
            return Err(AdError::Internal(
                "eager: output does not depend on the inputs".into(),
            ))
        }
    };
    f.set_outputs(vec![out]);
    let out_ty = f.ty(out).clone();
    let n_wrt = w.wrt.len();
    let primals: Vec<TracedTensor> = f
        .param_types()
        .iter()
        .map(|t| TracedTensor::input(t.dtype, &t.shape))
        .collect();
    let (outs, seeds): (Vec<TracedTensor>, Vec<TracedTensor>) = match mode {
        Mode::Vjp => {
            let ct = TracedTensor::input(out_ty.dtype, &out_ty.shape);
            let (_, cts) = vjp_function(&f, rules, &primals, n_wrt, &[Some(ct.clone())])?;
            let outs = cts
                .into_iter()
                .zip(&primals)
                .map(|(c, p)| c.map_or_else(|| p.ty().map(|t| TracedTensor::zeros(&t)), Ok))
                .collect::<tenferro_runtime::Result<_>>()?;
            (outs, vec![ct])
        }
        Mode::Jvp => {
            let tangents: Vec<TracedTensor> = primals[..n_wrt]
                .iter()
                .map(|p| p.ty().map(|t| TracedTensor::input(t.dtype, &t.shape)))
                .collect::<tenferro_runtime::Result<_>>()?;
            let mut ts: Vec<Option<TracedTensor>> = tangents.iter().cloned().map(Some).collect();
            ts.resize(primals.len(), None);
            let o = jvp_function(&f, rules, &primals, &ts)?;
            let dy = o.tangents.into_iter().next().flatten();
            (
                vec![dy.unwrap_or_else(|| TracedTensor::zeros(&out_ty))],
                tangents,
            )
        }
    };
    let refs: Vec<&TracedTensor> = outs.iter().collect();
    let program = GraphCompiler::new().compile_many(&refs)?;
    let sources = program
        .inputs()
        .iter()
        .map(|p| {
            if let Some(i) = primals.iter().position(|q| q.same_as(p)) {
                Ok(if i < n_wrt {
                    Source::Wrt(i)
                } else {
                    Source::Const(i - n_wrt)
                })
            } else if let Some(k) = seeds.iter().position(|q| q.same_as(p)) {
                Ok(Source::Seed(k))
            } else {
                Err(AdError::Internal(
                    "eager: a transformed program reads an unknown placeholder".into(),
                ))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Derived {
        key: w.key.clone(),
        _funcs: funcs,
        forward: Arc::new(f),
        program: program.function_arc().clone(),
        sources,
    })
}

/// The values bound to a transform's parameters.
pub(crate) fn bind(
    t: &Derived,
    wrt: &[Tensor],
    consts: &[(Tensor, Option<NodeRef>)],
    seeds: &[Tensor],
) -> Vec<Tensor> {
    t.sources
        .iter()
        .map(|s| match *s {
            Source::Wrt(i) => wrt[i].clone(),
            Source::Const(i) => consts[i].0.clone(),
            Source::Seed(i) => seeds[i].clone(),
        })
        .collect()
}

/// Adds `grads[i]` into the gradient of leaf `leaves[i]` (`backward`'s last step).
pub(crate) fn accumulate(leaves: &[Rc<Node>], grads: Vec<Tensor>) -> Result<()> {
    for (leaf, g) in leaves.iter().zip(grads) {
        if let Node::Leaf { grad, .. } = &**leaf {
            let mut slot = grad.borrow_mut();
            match slot.as_mut() {
                None => *slot = Some(g),
                Some(acc) => add_into(acc, &g)?,
            }
        }
    }
    Ok(())
}

/// `acc += g` elementwise (equal types).
fn add_into(acc: &mut Tensor, g: &Tensor) -> Result<()> {
    if acc.ty() != g.ty() {
        return Err(AdError::Internal(format!(
            "backward: gradient of type {} for a leaf of type {}",
            g.ty(),
            acc.ty()
        )));
    }
    fn add<T: Copy + std::ops::AddAssign>(a: &mut [T], b: &[T]) {
        a.iter_mut().zip(b).for_each(|(x, &y)| *x += y);
    }
    match (acc.data_mut(), g.data()) {
        (Data::F32(a), Data::F32(b)) => add(a, b),
        (Data::F64(a), Data::F64(b)) => add(a, b),
        (Data::C32(a), Data::C32(b)) => add(a, b),
        (Data::C64(a), Data::C64(b)) => add(a, b),
        (Data::I32(a), Data::I32(b)) => add(a, b),
        (Data::I64(a), Data::I64(b)) => add(a, b),
        (Data::Bool(a), Data::Bool(b)) => a.iter_mut().zip(b).for_each(|(x, &y)| *x |= y),
        _ => {
            return Err(AdError::Internal(
                "backward: gradient dtype mismatch".into(),
            ))
        }
    }
    Ok(())
}
