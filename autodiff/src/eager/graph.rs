//! The recorded program of eager tensors: the autograd graph's nodes ([`Node`],
//! [`NodeRef`]), the walk that gathers what an output depends on into one function, and
//! the derivation of that function's reverse- or forward-mode program, either as a
//! program of the leaves or, for reverse mode, from the values the nodes recorded (their
//! operands and results: the residuals). Pure data and IR work: it imports no other
//! eager module but `fxhash` (the context prepares, caches and runs what is derived
//! here; tensors hold the nodes).

use super::fxhash::FxHasher;
use crate::custom::JvpMode;
use crate::error::{AdError, Result};
use crate::jvp::{jvp_function, jvp_function_mode};
use crate::linearize::vjp_function;
use crate::rules::Rules;
use crate::transpose::transpose_function;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::Arc;
use tenferro_ir::{Data, Function, Tensor, TensorType, Value};
use tenferro_runtime::{
    lower, CompileOptions, GraphCompiler, LowerMode, RuntimeError, TracedId, TracedTensor,
};

/// A node of the autograd graph.
pub(crate) enum Node {
    /// A tensor marked with `requires_grad(true)` (or a transform's fresh input).
    Leaf {
        value: Tensor,
        grad: RefCell<Option<Tensor>>,
    },
    /// A recorded op: its cached function applied to operands (their values, and their
    /// nodes when tracked), and the results it computed. Operand and result values are
    /// the residuals backward reads (they share their buffers with the tensors).
    Apply {
        func: Arc<Function>,
        values: Vec<Tensor>,
        outputs: Vec<Tensor>,
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
    /// Cotangents of the differentiated inputs from one output cotangent, as a program of
    /// the inputs, constants and cotangent alone: it recomputes the forward values it
    /// needs (what a recorded transform must be, to be differentiated again).
    Vjp,
    /// The same cotangents from the values the recorded nodes hold (their operands and
    /// results): no instruction of the forward runs again (`backward`, and the functional
    /// reverse transforms when their result is not recorded).
    Backward,
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
    /// The transform the walk is for (the key's first word).
    pub(crate) mode: Mode,
    /// The structure: the mode, each node's function identity and wiring, the leaves'
    /// types.
    pub(crate) key: Vec<u64>,
}

impl Walk {
    /// Makes the walk ask for the `mode` transform instead.
    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.key[0] = mode as u64;
    }
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
        mode,
        key,
    }
}

/// Where a parameter of a transformed program gets its value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// The i-th differentiated input.
    Wrt(usize),
    /// The i-th constant operand.
    Const(usize),
    /// The i-th seed (cotangent or tangent).
    Seed(usize),
    /// Result `r` of the k-th recorded node (of the walk), as the forward computed it.
    Output(usize, usize),
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

/// Builds the recorded function of `w` and derives its transform (`w.mode`) with `rules`.
pub(crate) fn derive(w: &Walk, rules: &Rules) -> Result<Derived> {
    let (f, funcs) = recorded_function(w)?;
    let (program, sources) = match w.mode {
        Mode::Vjp | Mode::Jvp => from_inputs(&f, w.wrt.len(), w.mode, rules)?,
        Mode::Backward => from_residuals(w, rules)?,
    };
    Ok(Derived {
        key: w.key.clone(),
        _funcs: funcs,
        forward: Arc::new(f),
        program,
        sources,
    })
}

/// The recorded functions of `w` inlined into one: parameters the differentiated leaves
/// then the constants, output the walk's output; and the inlined functions.
fn recorded_function(w: &Walk) -> Result<(Function, Vec<Arc<Function>>)> {
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
        let func = recorded_func(n)?;
        let args: Vec<Value> = refs.iter().map(|&r| value_of(r, &node_vals)).collect();
        let res = f
            .inline(func, &args)
            .map_err(|e| AdError::Internal(format!("eager: inlining `{}`: {e}", func.name)))?;
        node_vals.push(res);
        funcs.push(func.clone());
    }
    let out = match w.output {
        Some(o) => value_of(o, &node_vals),
        None => return Err(independent_output()),
    };
    f.set_outputs(vec![out]);
    Ok((f, funcs))
}

/// The function a recorded node applied.
fn recorded_func(n: &Node) -> Result<&Arc<Function>> {
    match n {
        Node::Apply { func, .. } => Ok(func),
        Node::Leaf { .. } => Err(AdError::Internal("eager: a leaf among recorded ops".into())),
    }
}

fn independent_output() -> AdError {
    AdError::Internal("eager: output does not depend on the inputs".into())
}

/// A fresh placeholder of type `t`.
fn placeholder(t: &TensorType) -> TracedTensor {
    TracedTensor::input(t.dtype, &t.shape)
}

/// The `mode` transform (vjp or jvp) of the recorded function `f` as a program of its
/// parameters (the first `n_wrt` differentiated) and the seeds: the forward values it
/// needs are recomputed from the parameters.
fn from_inputs(
    f: &Function,
    n_wrt: usize,
    mode: Mode,
    rules: &Rules,
) -> Result<(Arc<Function>, Vec<Source>)> {
    let out_ty = f.ty(f.outputs()[0]).clone();
    let primals: Vec<TracedTensor> = f.param_types().iter().map(placeholder).collect();
    let (outs, seeds): (Vec<TracedTensor>, Vec<TracedTensor>) = match mode {
        Mode::Vjp | Mode::Backward => {
            let ct = placeholder(&out_ty);
            let (_, cts) = vjp_function(f, rules, &primals, n_wrt, &[Some(ct.clone())])?;
            (or_zeros(cts, &primals)?, vec![ct])
        }
        Mode::Jvp => {
            let tangents: Vec<TracedTensor> = primals[..n_wrt]
                .iter()
                .map(|p| p.ty().map(|t| placeholder(&t)))
                .collect::<tenferro_runtime::Result<_>>()?;
            let mut ts: Vec<Option<TracedTensor>> = tangents.iter().cloned().map(Some).collect();
            ts.resize(primals.len(), None);
            let o = jvp_function(f, rules, &primals, &ts)?;
            let dy = o.tangents.into_iter().next().flatten();
            (
                vec![dy.unwrap_or_else(|| TracedTensor::zeros(&out_ty))],
                tangents,
            )
        }
    };
    let refs: Vec<&TracedTensor> = outs.iter().collect();
    let program = GraphCompiler::new().compile_many(&refs)?;
    let mut binding: HashMap<TracedId, Source> = HashMap::new();
    for (i, p) in primals.iter().enumerate() {
        let s = if i < n_wrt {
            Source::Wrt(i)
        } else {
            Source::Const(i - n_wrt)
        };
        binding.insert(p.id(), s);
    }
    for (k, s) in seeds.iter().enumerate() {
        binding.insert(s.id(), Source::Seed(k));
    }
    let sources = sources_of(program.inputs(), &binding)?;
    Ok((program.function_arc().clone(), sources))
}

/// `cts`, with zeros of the matching primal's type where a cotangent is zero.
fn or_zeros(cts: Vec<Option<TracedTensor>>, primals: &[TracedTensor]) -> Result<Vec<TracedTensor>> {
    Ok(cts
        .into_iter()
        .zip(primals)
        .map(|(c, p)| c.map_or_else(|| p.ty().map(|t| TracedTensor::zeros(&t)), Ok))
        .collect::<tenferro_runtime::Result<_>>()?)
}

/// Where each input of a program gets its value, from the placeholders' `binding`.
fn sources_of(inputs: &[TracedTensor], binding: &HashMap<TracedId, Source>) -> Result<Vec<Source>> {
    inputs
        .iter()
        .map(|p| {
            binding.get(&p.id()).copied().ok_or_else(|| {
                AdError::Internal(
                    "eager: a transformed program reads an unknown placeholder".into(),
                )
            })
        })
        .collect()
}

/// Reverse mode of `w` from the values its nodes recorded. Each node's function is
/// linearized at placeholders of its recorded operands (tangents chained from node to
/// node), the whole linear map is transposed, and the cotangents are lowered together
/// with each node's results as its linearization recomputed them. Those recomputed
/// results then become parameters bound to the recorded results
/// ([`Source::Output`]), so the instructions that computed them, and everything only they
/// used, are dead and optimized away: the program holds the derivative's instructions
/// and, for a node whose rule needs a value internal to its function (not an operand or
/// a result), that node's instructions up to the value.
fn from_residuals(w: &Walk, rules: &Rules) -> Result<(Arc<Function>, Vec<Source>)> {
    let n_wrt = w.wrt.len();
    let mut binding: HashMap<TracedId, Source> = HashMap::new();
    let mut wrt_ph = Vec::with_capacity(n_wrt);
    let mut tangent_ph = Vec::with_capacity(n_wrt);
    for (i, l) in w.wrt.iter().enumerate() {
        let ty = leaf_value(l).ty();
        if !ty.dtype.is_float() {
            return Err(AdError::NotDifferentiable(format!(
                "linearize: input #{i} has type {ty}; only f32, f64, c32, c64 values are differentiable"
            )));
        }
        let p = placeholder(&ty);
        binding.insert(p.id(), Source::Wrt(i));
        wrt_ph.push(p);
        tangent_ph.push(placeholder(&ty));
    }
    let mut const_ph = Vec::with_capacity(w.consts.len());
    for (i, (v, _)) in w.consts.iter().enumerate() {
        let p = placeholder(&v.ty());
        binding.insert(p.id(), Source::Const(i));
        const_ph.push(p);
    }
    // Per node: placeholders of its recorded results, its results recomputed from the
    // placeholders of its operands, and their tangents.
    let mut result_ph: Vec<Vec<TracedTensor>> = Vec::with_capacity(w.nodes.len());
    let mut recomputed: Vec<Vec<TracedTensor>> = Vec::with_capacity(w.nodes.len());
    let mut tangents: Vec<Vec<Option<TracedTensor>>> = Vec::with_capacity(w.nodes.len());
    for (k, (n, refs)) in w.nodes.iter().enumerate() {
        let func = recorded_func(n)?;
        let mut primals = Vec::with_capacity(refs.len());
        let mut ts = Vec::with_capacity(refs.len());
        for &r in refs {
            let (p, t) = match r {
                ArgRef::Wrt(i) => (&wrt_ph[i], Some(tangent_ph[i].clone())),
                ArgRef::Const(i) => (&const_ph[i], None),
                ArgRef::Node(k, j) => (&result_ph[k][j], tangents[k][j].clone()),
            };
            primals.push(p.clone());
            ts.push(t);
        }
        let o = jvp_function_mode(func, rules, &primals, &ts, JvpMode::Linearize)?;
        let ph: Vec<TracedTensor> = func.output_types().iter().map(placeholder).collect();
        for (j, p) in ph.iter().enumerate() {
            binding.insert(p.id(), Source::Output(k, j));
        }
        result_ph.push(ph);
        recomputed.push(o.primals);
        tangents.push(o.tangents);
    }
    let (out_tangent, out_ty) = match w.output {
        Some(ArgRef::Wrt(i)) => (Some(tangent_ph[i].clone()), wrt_ph[i].ty()?),
        Some(ArgRef::Node(k, j)) => (tangents[k][j].clone(), result_ph[k][j].ty()?),
        Some(ArgRef::Const(_)) | None => return Err(independent_output()),
    };
    let ct = placeholder(&out_ty);
    binding.insert(ct.id(), Source::Seed(0));
    let cts = match out_tangent {
        Some(t) => {
            let cut: Vec<&TracedTensor> = tangent_ph.iter().collect();
            let mut linear = lower(&[&t], &cut, LowerMode::Dependent)?;
            let residuals = linear.params.split_off(n_wrt);
            transpose_function(&linear.function, rules, n_wrt, &residuals, &[Some(ct)])?
        }
        None => vec![None; n_wrt],
    };
    let grads = or_zeros(cts, &wrt_ph)?;
    let mut outs: Vec<&TracedTensor> = grads.iter().collect();
    let mut results = Vec::new();
    for (k, rs) in recomputed.iter().enumerate() {
        for (j, r) in rs.iter().enumerate() {
            outs.push(r);
            results.push(Source::Output(k, j));
        }
    }
    let lowered = lower(&outs, &[], LowerMode::Program)?;
    let mut sources = sources_of(&lowered.params, &binding)?;
    let mut program =
        read_recorded_results(&lowered.function, grads.len(), &results, &mut sources)?;
    CompileOptions::default()
        .pipeline()
        .run(&mut program, &mut |_| {})
        .map_err(|e| RuntimeError::Pass {
            pass: "eager backward".into(),
            message: e.to_string(),
        })?;
    let program = without_unused_params(&program, &mut sources)?;
    Ok((Arc::new(program), sources))
}

/// `f` with its first `n_out` outputs only, where each further output `i` that an
/// instruction computes is replaced by the parameter bound to `results[i - n_out]` (a
/// new one, appended to `sources`, unless a parameter already has that source): the
/// instructions computing it are skipped, and those only they used are left dead for
/// the optimizer.
fn read_recorded_results(
    f: &Function,
    n_out: usize,
    results: &[Source],
    sources: &mut Vec<Source>,
) -> Result<Function> {
    let mut g = Function::new("eager_backward");
    let mut map: Vec<Option<Value>> = vec![None; f.num_values()];
    let mut param_of: HashMap<Source, Value> = HashMap::new();
    for (&p, &s) in f.params().iter().zip(sources.iter()) {
        let v = g.add_param(f.ty(p).clone());
        map[p.index()] = Some(v);
        param_of.insert(s, v);
    }
    for (&o, &s) in f.outputs()[n_out..].iter().zip(results) {
        if map[o.index()].is_none() {
            let v = *param_of.entry(s).or_insert_with(|| {
                sources.push(s);
                g.add_param(f.ty(o).clone())
            });
            map[o.index()] = Some(v);
        }
    }
    copy_body(f, &f.outputs()[..n_out], map, g)
}

/// `f` without the parameters it does not read (and their `sources`).
fn without_unused_params(f: &Function, sources: &mut Vec<Source>) -> Result<Function> {
    let uses = f.use_counts();
    let mut g = Function::new(f.name.clone());
    let mut map: Vec<Option<Value>> = vec![None; f.num_values()];
    let mut kept = Vec::with_capacity(sources.len());
    for (&p, &s) in f.params().iter().zip(sources.iter()) {
        if uses[p.index()] > 0 {
            map[p.index()] = Some(g.add_param(f.ty(p).clone()));
            kept.push(s);
        }
    }
    *sources = kept;
    copy_body(f, f.outputs(), map, g)
}

/// Copies into `g` the instructions of `f` whose results `map` does not bind yet, then
/// sets `g`'s outputs to `outputs`.
fn copy_body(
    f: &Function,
    outputs: &[Value],
    mut map: Vec<Option<Value>>,
    mut g: Function,
) -> Result<Function> {
    let malformed = || AdError::Internal("eager: backward program reads an undefined value".into());
    for inst in f.insts() {
        if inst.results.iter().all(|r| map[r.index()].is_some()) {
            continue;
        }
        let args = inst
            .args
            .iter()
            .map(|a| map[a.index()].ok_or_else(malformed))
            .collect::<Result<Vec<_>>>()?;
        let tys = inst.results.iter().map(|&r| f.ty(r).clone()).collect();
        let vals = g.push_unchecked(inst.op.clone(), args, tys);
        for (r, v) in inst.results.iter().zip(vals) {
            map[r.index()].get_or_insert(v);
        }
    }
    let outs = outputs
        .iter()
        .map(|o| map[o.index()].ok_or_else(malformed))
        .collect::<Result<Vec<_>>>()?;
    g.set_outputs(outs);
    Ok(g)
}

/// The values bound to a transform's parameters: the differentiated inputs `wrt`, the
/// walk's constants and recorded results, the `seeds`.
pub(crate) fn bind(t: &Derived, w: &Walk, wrt: &[Tensor], seeds: &[Tensor]) -> Result<Vec<Tensor>> {
    t.sources
        .iter()
        .map(|s| match *s {
            Source::Wrt(i) => Ok(wrt[i].clone()),
            Source::Const(i) => Ok(w.consts[i].0.clone()),
            Source::Seed(i) => Ok(seeds[i].clone()),
            Source::Output(k, j) => match &*w.nodes[k].0 {
                Node::Apply { outputs, .. } => Ok(outputs[j].clone()),
                Node::Leaf { .. } => {
                    Err(AdError::Internal("eager: a leaf among recorded ops".into()))
                }
            },
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
