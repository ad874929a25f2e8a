//! Horizontal fusion of products that share an operand: independent `dot_general`s with
//! the same operand on one side (same value, same dimension numbers) and operands of one
//! type on the other become one product over the others stacked on a new trailing axis,
//! followed by a slice per original result. `A·x` and `A·v` (a value and a tangent, as in
//! a Hessian-vector product) then read `A` once instead of twice.
//!
//! Fusion applies only where it saves memory traffic: the shared operand must be at least
//! [`MIN_SHARED_RATIO`] times larger than each stacked operand (stacking copies those),
//! and no member may depend on another's result. The merged product sits where the last
//! member was, and the function is re-sorted (stable topological order) so that users of
//! earlier members follow it. Values are the same products, but a GEMM over several
//! columns may sum in another order than one over a single column, so results can differ
//! in the last bits; the pass is in O2 only.

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use tenferro_ir::{DotDims, Function, Inst, Op, TensorType, Value};

/// The shared operand must have at least this many times the bytes of each stacked one.
pub const MIN_SHARED_RATIO: usize = 4;

/// At most this many products are merged into one.
const MAX_GROUP: usize = 16;

/// A merge key: the shared operand, whether it is the lhs, the dimension numbers and the
/// type of the stacked operands.
type Key = (Value, bool, DotDims, TensorType);

/// The dots of one merge, in program order.
struct Group {
    key: Key,
    members: Vec<usize>,
}

/// Instruction index of each value's producer (`None` for parameters).
fn producers(f: &Function) -> Vec<Option<usize>> {
    let mut p = vec![None; f.num_values()];
    for (i, inst) in f.insts().iter().enumerate() {
        for &r in &inst.results {
            if let Some(slot) = p.get_mut(r.index()) {
                *slot = Some(i);
            }
        }
    }
    p
}

/// Whether value `v` depends (transitively) on any instruction in `targets`.
fn depends_on(f: &Function, prod: &[Option<usize>], v: Value, targets: &[usize]) -> bool {
    let mut seen = vec![false; f.insts().len()];
    let mut stack: Vec<usize> = prod.get(v.index()).copied().flatten().into_iter().collect();
    while let Some(i) = stack.pop() {
        if targets.contains(&i) {
            return true;
        }
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for &a in &f.insts()[i].args {
            if let Some(Some(p)) = prod.get(a.index()) {
                stack.push(*p);
            }
        }
    }
    false
}

/// The merge keys of a dot (lhs shared first), where the size rule allows one.
fn keys(f: &Function, inst: &Inst) -> Vec<Key> {
    let Op::DotGeneral(dims) = &inst.op else {
        return Vec::new();
    };
    let [lhs, rhs] = inst.args[..] else {
        return Vec::new();
    };
    if lhs == rhs {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (shared, other, shared_is_lhs) in [(lhs, rhs, true), (rhs, lhs, false)] {
        let (ts, to) = (f.ty(shared), f.ty(other));
        if ts.size_bytes() >= MIN_SHARED_RATIO * to.size_bytes().max(1) {
            out.push((shared, shared_is_lhs, dims.clone(), to.clone()));
        }
    }
    out
}

/// Greedy grouping in program order: a dot joins the first open group of one of its keys
/// whose members it does not depend on; otherwise it opens a group.
fn groups(f: &Function) -> Vec<Group> {
    let prod = producers(f);
    let all: Vec<(usize, Vec<Key>)> = f
        .insts()
        .iter()
        .enumerate()
        .map(|(i, inst)| (i, keys(f, inst)))
        .filter(|(_, k)| !k.is_empty())
        .collect();
    let mut count: HashMap<&Key, usize> = HashMap::new();
    for (_, ks) in &all {
        for k in ks {
            *count.entry(k).or_default() += 1;
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    for (i, ks) in &all {
        let inst = &f.insts()[*i];
        let candidates: Vec<&Key> = ks.iter().filter(|k| count[k] >= 2).collect();
        let joined = candidates.iter().any(|k| {
            let other = if k.1 { inst.args[1] } else { inst.args[0] };
            let g = groups.iter_mut().find(|g| {
                g.key == **k
                    && g.members.len() < MAX_GROUP
                    && !depends_on(f, &prod, other, &g.members)
            });
            match g {
                Some(g) => {
                    g.members.push(*i);
                    true
                }
                None => false,
            }
        });
        if !joined {
            if let Some(k) = candidates.first() {
                groups.push(Group {
                    key: (*k).clone(),
                    members: vec![*i],
                });
            }
        }
    }
    groups.retain(|g| g.members.len() >= 2);
    groups
}

/// Merges independent products that share an operand. Counter: `merged` (products
/// folded into another).
pub fn run(f: &mut Function) -> Result<PassStats, PassError> {
    let groups = groups(f);
    if groups.is_empty() {
        return Ok(PassStats {
            changed: false,
            counters: vec![("merged", 0)],
        });
    }
    let n = f.insts().len();
    // Scheduling nodes: one per instruction not in a group, one per group (placed at its
    // last member). `node_of[i]` is instruction i's node.
    let mut node_of: Vec<usize> = (0..n).collect();
    let mut group_of_node: HashMap<usize, usize> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        let last = *g.members.last().unwrap_or(&0);
        for &m in &g.members {
            node_of[m] = last;
        }
        group_of_node.insert(last, gi);
    }
    let prod = producers(f);
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, inst) in f.insts().iter().enumerate() {
        let me = node_of[i];
        for &a in &inst.args {
            if let Some(Some(p)) = prod.get(a.index()) {
                let d = node_of[*p];
                if d != me && !deps[me].contains(&d) {
                    deps[me].push(d);
                    users[d].push(me);
                }
            }
        }
    }
    let live: Vec<bool> = (0..n).map(|i| node_of[i] == i).collect();
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n)
        .filter(|&i| live[i] && waiting[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            waiting[u] -= 1;
            if waiting[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() != live.iter().filter(|&&l| l).count() {
        return Err(PassError::Failed {
            pass: "hdot".to_string(),
            message: "merging products would create a cycle".to_string(),
        });
    }

    let mut r = Rebuild::new(f, "hdot");
    let mut merged = 0u64;
    for i in order {
        let Some(&gi) = group_of_node.get(&i) else {
            let inst = &f.insts()[i];
            let args = r.args(inst)?;
            r.emit(inst, inst.op.clone(), args);
            continue;
        };
        let g = &groups[gi];
        emit_group(f, &mut r, g)?;
        merged += g.members.len() as u64 - 1;
    }
    *f = r.finish()?;
    Ok(PassStats {
        changed: true,
        counters: vec![("merged", merged)],
    })
}

/// Emits a group: the stacked operands, one product, and a slice and reshape per member.
fn emit_group(f: &Function, r: &mut Rebuild<'_>, g: &Group) -> Result<(), PassError> {
    let (shared, shared_is_lhs, dims, other_ty) = &g.key;
    let ir = |e: tenferro_ir::IrError| PassError::Failed {
        pass: "hdot".to_string(),
        message: e.to_string(),
    };
    let rank = other_ty.rank();
    let mut col_shape = other_ty.shape.clone();
    col_shape.push(1);
    let mut cols = Vec::with_capacity(g.members.len());
    for &m in &g.members {
        let inst = &f.insts()[m];
        let other = r.get(if *shared_is_lhs {
            inst.args[1]
        } else {
            inst.args[0]
        })?;
        let col =
            r.g.push1(
                Op::Reshape {
                    shape: col_shape.clone(),
                },
                &[other],
            )
            .map_err(ir)?;
        cols.push(col);
    }
    let stacked =
        r.g.push1(Op::Concatenate { axis: rank }, &cols)
            .map_err(ir)?;
    let shared_rank = f.ty(*shared).rank();
    let shared = r.get(*shared)?;
    let args = if *shared_is_lhs {
        [shared, stacked]
    } else {
        [stacked, shared]
    };
    let product = r.g.push1(Op::DotGeneral(dims.clone()), &args).map_err(ir)?;
    // The stacking axis is the last free axis of its operand: after the batch axes, the
    // lhs free axes and (when it is the rhs) the rhs free axes.
    let prod_ty = r.g.ty(product).clone();
    let free =
        |rank: usize, contract: &[usize], batch: &[usize]| rank - contract.len() - batch.len();
    let nb = dims.lhs_batch.len();
    let axis = if *shared_is_lhs {
        nb + free(shared_rank, &dims.lhs_contract, &dims.lhs_batch)
            + free(rank, &dims.rhs_contract, &dims.rhs_batch)
    } else {
        nb + free(rank, &dims.lhs_contract, &dims.lhs_batch)
    };
    for (j, &m) in g.members.iter().enumerate() {
        let inst = &f.insts()[m];
        let mut starts = vec![0; prod_ty.rank()];
        let mut limits = prod_ty.shape.clone();
        starts[axis] = j;
        limits[axis] = j + 1;
        let part =
            r.g.push1(Op::Slice { starts, limits }, &[product])
                .map_err(ir)?;
        let want: Vec<usize> = f.ty(inst.results[0]).shape.clone();
        let out =
            r.g.push1(Op::Reshape { shape: want }, &[part])
                .map_err(ir)?;
        r.bind(inst, &[out]);
    }
    Ok(())
}
