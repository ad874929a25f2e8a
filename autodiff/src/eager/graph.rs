//! The autograd graph of eager tensors and the transforms over it: walking the recorded
//! nodes from an output into one function, deriving its reverse- or forward-mode program
//! with the autodiff crate's rules, caching that program by the graph's structure, and
//! running it (`backward`, and the functional `grad` / `vjp` / `jvp`).

use super::context::{EagerContext, FxHasher, PreparedProgram};
use super::tensor::EagerTensor;
use crate::error::{AdError, Result};
use crate::jvp::jvp_function;
use crate::linearize::vjp_function;
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
enum Wrt<'a> {
    /// Every leaf reached (`backward`).
    AllLeaves,
    /// These leaves, in order; other leaves are constants (functional transforms).
    Leaves(&'a [Rc<Node>]),
}

/// Where a value of the recorded function comes from.
#[derive(Clone, Copy)]
enum ArgRef {
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
struct Walk {
    wrt: Vec<Rc<Node>>,
    /// Operands that do not depend on the differentiated leaves: value, and node if tracked.
    consts: Vec<(Tensor, Option<NodeRef>)>,
    /// Recorded nodes that depend on them, in topological order, with their operands.
    nodes: Vec<(Rc<Node>, Vec<ArgRef>)>,
    /// The output; `None` when it does not depend on the differentiated leaves.
    output: Option<ArgRef>,
    /// The structure: each node's function identity and wiring, the leaves' types.
    key: Vec<u64>,
}

fn leaf_value(n: &Node) -> &Tensor {
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
fn walk(root: &NodeRef, wrt: Wrt<'_>, mode: Mode) -> Walk {
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
enum Source {
    Wrt(usize),
    Const(usize),
    Seed(usize),
}

/// A derived, compiled and prepared transform of a recorded graph structure.
pub(crate) struct CachedTransform {
    key: Vec<u64>,
    /// The recorded functions the key names by address (kept alive so that no other
    /// function can take their address while this entry exists).
    _funcs: Vec<Arc<Function>>,
    /// The recorded function: parameters the differentiated leaves then the constants.
    forward: Arc<Function>,
    /// The transformed program (O1), parameters bound by `sources`.
    program: Arc<Function>,
    prepared: Box<dyn PreparedProgram>,
    sources: Vec<Source>,
}

/// The transform of `w`'s structure, from the cache or derived now.
fn transform_for(ctx: &EagerContext, w: &Walk, mode: Mode) -> Result<Rc<CachedTransform>> {
    let mut h = FxHasher::default();
    w.key.hash(&mut h);
    let hash = h.finish();
    if let Some(bucket) = ctx.shared.transforms.borrow().get(&hash) {
        if let Some(t) = bucket.iter().find(|t| t.key == w.key) {
            return Ok(t.clone());
        }
    }
    let t = Rc::new(derive(ctx, w, mode)?);
    let mut map = ctx.shared.transforms.borrow_mut();
    let count = &ctx.shared.transform_count;
    if count.get() >= super::context::TRANSFORM_CACHE_CAPACITY {
        map.clear();
        count.set(0);
    }
    map.entry(hash).or_default().push(t.clone());
    count.set(count.get() + 1);
    ctx.bump(|s| s.transforms_compiled += 1);
    Ok(t)
}

/// Builds the recorded function of `w` and derives its transform.
fn derive(ctx: &EagerContext, w: &Walk, mode: Mode) -> Result<CachedTransform> {
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
    let rules = ctx.shared.ad.rules();
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
    let prepared = ctx.prepare(program.function())?;
    Ok(CachedTransform {
        key: w.key.clone(),
        _funcs: funcs,
        forward: Arc::new(f),
        program: program.function_arc().clone(),
        prepared,
        sources,
    })
}

/// The values bound to a transform's parameters.
fn bind(
    t: &CachedTransform,
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

fn run(ctx: &EagerContext, t: &CachedTransform, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
    let out = t
        .prepared
        .execute(inputs, &ctx.shared.extensions.borrow())?;
    ctx.bump(|s| s.transforms_run += 1);
    Ok(out)
}

/// `backward`: the vjp of `root` with cotangent `seed`, added into every leaf reached.
pub(crate) fn backward(ctx: &EagerContext, root: &NodeRef, seed: Tensor) -> Result<()> {
    let w = walk(root, Wrt::AllLeaves, Mode::Vjp);
    let t = transform_for(ctx, &w, Mode::Vjp)?;
    let wrt: Vec<Tensor> = w.wrt.iter().map(|l| leaf_value(l).clone()).collect();
    let grads = run(ctx, &t, &bind(&t, &wrt, &w.consts, &[seed]))?;
    for (leaf, g) in w.wrt.iter().zip(grads) {
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

/// The outcome of a functional transform: `f`'s output (recorded as a function of the
/// inputs when they are tracked) and the transform's results.
pub(crate) struct Transformed {
    pub(crate) output: EagerTensor,
    pub(crate) results: Vec<EagerTensor>,
}

/// Checks that `x` can be differentiated by `transform`.
pub(crate) fn check_input(
    ctx: &EagerContext,
    transform: &str,
    i: usize,
    x: &EagerTensor,
) -> Result<()> {
    if !x.ctx.same_as(ctx) {
        return Err(AdError::BadArgument {
            transform: "eager transform",
            message: format!("{transform}: input #{i} belongs to another EagerContext"),
        });
    }
    if !x.dtype().is_float() {
        return Err(AdError::NotDifferentiable(format!(
            "{transform}: input #{i} has type {}; only f32, f64, c32, c64 values can be differentiated",
            x.ty()
        )));
    }
    Ok(())
}

/// Runs `f` on fresh leaves holding the values of `xs` (recording on), then the `mode`
/// transform of what it recorded with seeds from `seeds(output)`: the cotangent of the
/// output (vjp) or one tangent per input (jvp). Results are recorded as ops of the
/// inputs, constants and seeds when grad mode is on and one of them is tracked.
pub(crate) fn transform<F, S>(
    ctx: &EagerContext,
    mode: Mode,
    xs: &[&EagerTensor],
    f: F,
    seeds: S,
) -> Result<Transformed>
where
    F: FnOnce(&[EagerTensor]) -> Result<EagerTensor>,
    S: FnOnce(&EagerTensor) -> Result<Vec<EagerTensor>>,
{
    let leaves: Vec<EagerTensor> = xs
        .iter()
        .map(|x| EagerTensor::leaf(ctx, x.value.clone()))
        .collect();
    let y = ctx.with_grad(|| f(&leaves))?;
    if !y.ctx.same_as(ctx) {
        return Err(AdError::BadArgument {
            transform: "eager transform",
            message: "the function returned a tensor of another EagerContext".into(),
        });
    }
    let seeds = seeds(&y)?;
    let leaf_nodes: Vec<Rc<Node>> = leaves
        .iter()
        .filter_map(|l| l.node.as_ref().map(|r| r.node.clone()))
        .collect();
    let w = y
        .node
        .as_ref()
        .map(|r| walk(r, Wrt::Leaves(&leaf_nodes), mode));
    let Some(w) = w.filter(|w| w.output.is_some()) else {
        // The output does not depend on the inputs: zero derivatives.
        let zeros = match mode {
            Mode::Vjp => xs
                .iter()
                .map(|x| ctx.from_tensor(Tensor::zeros(&x.ty())))
                .collect(),
            Mode::Jvp => vec![ctx.from_tensor(Tensor::zeros(&y.ty()))],
        };
        return Ok(Transformed {
            output: y,
            results: zeros,
        });
    };
    let t = transform_for(ctx, &w, mode)?;
    let wrt: Vec<Tensor> = xs.iter().map(|x| x.value.clone()).collect();
    let seed_vals: Vec<Tensor> = seeds.iter().map(|s| s.value.clone()).collect();
    let inputs = bind(&t, &wrt, &w.consts, &seed_vals);
    let outs = run(ctx, &t, &inputs)?;
    let record = ctx.is_grad_enabled()
        && (xs.iter().any(|x| x.node.is_some())
            || seeds.iter().any(|s| s.node.is_some())
            || w.consts.iter().any(|(_, n)| n.is_some()));
    if !record {
        return Ok(Transformed {
            output: y.detach(),
            results: outs.into_iter().map(|v| ctx.from_tensor(v)).collect(),
        });
    }
    let args: Vec<Option<NodeRef>> = t
        .sources
        .iter()
        .map(|s| match *s {
            Source::Wrt(i) => xs[i].node.clone(),
            Source::Const(i) => w.consts[i].1.clone(),
            Source::Seed(i) => seeds[i].node.clone(),
        })
        .collect();
    let node = Rc::new(Node::Apply {
        func: t.program.clone(),
        values: inputs,
        args,
    });
    let results = outs
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            EagerTensor::new(
                ctx.clone(),
                v,
                Some(NodeRef {
                    node: node.clone(),
                    index,
                }),
            )
        })
        .collect();
    // Re-root the output on the outer inputs: the recorded function applied to them.
    let mut values = wrt;
    values.extend(w.consts.iter().map(|(v, _)| v.clone()));
    let mut args: Vec<Option<NodeRef>> = xs.iter().map(|x| x.node.clone()).collect();
    args.extend(w.consts.iter().map(|(_, n)| n.clone()));
    let fwd = Rc::new(Node::Apply {
        func: t.forward.clone(),
        values,
        args,
    });
    let output = EagerTensor::new(
        ctx.clone(),
        y.value.clone(),
        Some(NodeRef {
            node: fwd,
            index: 0,
        }),
    );
    Ok(Transformed { output, results })
}
