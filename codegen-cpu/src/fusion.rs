//! Fusion partitioning: splits a function's instructions into [`FusionGroup`]s that run as
//! one pass over memory, and single steps (GEMM, extension ops, gather / scatter, layout
//! copies, constants). Every decision is recorded as a [`FusionNote`] with its reason.
//!
//! Rules, applied to the instructions in program order:
//! 1. Elementwise ops (unary, binary, compare, select, convert) join the groups of their
//!    operands that are computed in a group; several such groups are merged. A group that
//!    is *sealed* (one of its values was already read by an instruction outside it, so it
//!    must run before that instruction) is never extended.
//! 2. A reduction joins the group of its operand as an epilogue: the operand is folded in
//!    the same pass. Its result is complete only after the whole pass, so no instruction
//!    joins a group through an epilogue result.
//! 3. `broadcast_in_dim`, `slice` and `reshape` of a value that is not computed in an open
//!    group are *views*: each consuming group reads them with a strided load from the
//!    underlying buffer (the only producers the partitioner duplicates: a load is cheaper
//!    than a stored copy). A view is materialised (a strided-copy step) only when a
//!    non-fusable instruction or the program's result needs it. A reshape of a value
//!    computed in an open group is an alias inside that group.
//! 4. Expensive producers are never duplicated: every elementwise op and reduction is in
//!    exactly one group; a value used by several groups or steps is stored once.
//! 5. A group holds at most [`MAX_GROUP_OPS`] ops (elementwise ops and reductions).
//! 6. `dot_general`, transpose, pad, concatenate, gather, scatter_add, iota, constants and
//!    extension ops are boundaries: single steps.
//!
//! A group runs at the position of its last member. Rule 1's sealing guarantees that every
//! value a group reads from outside is computed before it, and every value it stores is
//! read only after it.
//!
//! Imports no module of this crate; `schedule`, the program and the planner import it.

use std::fmt;
use tenferro_ir::{col_major_strides, DType, Function, Op, ReduceOp};

/// Why a whole floating-point product is not fused.
const WHOLE_PRODUCT: &str =
    "boundary: a product into one element runs sequentially (fused lanes could overflow)";

/// The most ops (elementwise ops and reductions) one fusion group may hold.
pub const MAX_GROUP_OPS: usize = 64;

/// A strided view of a materialised buffer: element `i` (column-major multi-index over the
/// view's shape) is `base[offset + Σ i_a · strides[a]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ViewInfo {
    pub base: usize,
    pub offset: usize,
    pub strides: Vec<usize>,
}

/// Where a value lives, as decided by the partitioner.
#[derive(Clone, Debug)]
pub(crate) enum ValueClass {
    /// In its own buffer: a parameter or the result of a single step.
    Materialized,
    /// Computed inside a group; `epilogue` for reduction results.
    InGroup { group: usize, epilogue: bool },
    /// Never stored: consumers load it through a strided view.
    View(ViewInfo),
}

/// One fusion group: instruction indices in program order and the size of its iteration
/// space (the element count of every non-epilogue value in it).
#[derive(Clone, Debug)]
pub struct FusionGroup {
    pub id: usize,
    pub insts: Vec<usize>,
    pub numel: usize,
}

/// What the partitioner did with one instruction, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FusionNote {
    /// Instruction index.
    pub inst: usize,
    /// First result value index.
    pub value: usize,
    pub op: String,
    pub decision: String,
}

impl fmt::Display for FusionNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{} = {}: {}", self.value, self.op, self.decision)
    }
}

/// An element of the execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Group(usize),
    Single(usize),
}

/// The result of partitioning.
pub(crate) struct Partition {
    /// Groups, numbered in execution order.
    pub groups: Vec<FusionGroup>,
    pub class: Vec<ValueClass>,
    pub units: Vec<Unit>,
    pub notes: Vec<FusionNote>,
    /// Materialised views (by instruction) whose operand is itself a view: the step
    /// copies from the underlying buffer through the composed view.
    pub composed_views: Vec<(usize, ViewInfo)>,
}

struct GroupState {
    insts: Vec<usize>,
    numel: usize,
    ops: usize,
    sealed: Option<String>,
    merged_into: Option<usize>,
}

struct Partitioner<'f> {
    f: &'f Function,
    consumers: Vec<Vec<usize>>,
    is_output: Vec<bool>,
    class: Vec<ValueClass>,
    groups: Vec<GroupState>,
    notes: Vec<FusionNote>,
    singles: Vec<usize>,
    composed_views: Vec<(usize, ViewInfo)>,
}

fn is_loader(op: &Op) -> bool {
    op.is_elementwise() || matches!(op, Op::Reduce { .. })
}

fn boundary_reason(op: &Op) -> &'static str {
    match op {
        Op::DotGeneral(_) => "boundary: dot_general runs as a GEMM",
        Op::Transpose { .. } => "boundary: transpose runs as a strided copy",
        Op::Pad { .. } => "boundary: pad runs as fill + strided copy",
        Op::Concatenate { .. } => "boundary: concatenate runs as strided copies",
        Op::Gather { .. } => "boundary: gather reads data-dependent positions",
        Op::ScatterAdd { .. } => "boundary: scatter_add writes data-dependent positions",
        Op::Iota { .. } => "boundary: iota is its own step",
        Op::Argsort { .. } => "boundary: argsort sorts whole lines",
        Op::Cumulative { .. } => "boundary: a scan runs sequentially along its axis",
        Op::Constant(_) => "boundary: constant (no work at run time)",
        Op::Extension(_) => "boundary: extension op runs its registered kernel",
        _ => "boundary",
    }
}

impl<'f> Partitioner<'f> {
    fn root(&self, mut g: usize) -> usize {
        while let Some(n) = self.groups[g].merged_into {
            g = n;
        }
        g
    }

    fn numel(&self, v: usize) -> usize {
        self.f.ty(tenferro_ir::Value::from_index(v)).numel()
    }

    fn shape(&self, v: usize) -> &[usize] {
        &self.f.ty(tenferro_ir::Value::from_index(v)).shape
    }

    /// The group a value is computed in (its current root), if any.
    fn group_of(&self, v: usize) -> Option<(usize, bool)> {
        match self.class[v] {
            ValueClass::InGroup { group, epilogue } => Some((self.root(group), epilogue)),
            _ => None,
        }
    }

    fn seal(&mut self, g: usize, why: String) {
        let g = self.root(g);
        if self.groups[g].sealed.is_none() {
            self.groups[g].sealed = Some(why);
        }
    }

    fn note(&mut self, k: usize, decision: String) {
        let inst = &self.f.insts()[k];
        self.notes.push(FusionNote {
            inst: k,
            value: inst.results.first().map(|r| r.index()).unwrap_or(0),
            op: inst.op.name().to_string(),
            decision,
        });
    }

    /// `true` when view value `u` must be stored: a program output, or read by an
    /// instruction that cannot load it through a view.
    fn view_needs_storage(&self, u: usize, contiguous: bool) -> bool {
        if self.is_output[u] {
            return true;
        }
        self.consumers[u].iter().any(|&c| {
            let inst = &self.f.insts()[c];
            match &inst.op {
                Op::BroadcastInDim { .. } | Op::Slice { .. } => false,
                Op::Reshape { .. } => !contiguous,
                // A whole float product runs as its own step, which reads stored operands.
                Op::Reduce { kind, .. } => {
                    self.is_whole_float_product(*kind, inst.results[0].index())
                }
                op => !is_loader(op),
            }
        })
    }

    /// Seals the group of every operand of `k` that `k` reads from outside it.
    fn seal_operands(&mut self, k: usize, except: Option<usize>) {
        let inst = &self.f.insts()[k];
        let who = format!(
            "read by %{} ({})",
            inst.results.first().map(|r| r.index()).unwrap_or(0),
            inst.op.name()
        );
        let args: Vec<usize> = inst.args.iter().map(|a| a.index()).collect();
        for a in args {
            let g = match &self.class[a] {
                ValueClass::InGroup { group, .. } => Some(*group),
                ValueClass::View(vi) => match self.class[vi.base] {
                    ValueClass::InGroup { group, .. } => Some(group),
                    _ => None,
                },
                ValueClass::Materialized => None,
            };
            if let Some(g) = g {
                let g = self.root(g);
                if Some(g) != except {
                    self.seal(g, format!("its value %{a} is {who}"));
                }
            }
        }
    }

    fn new_group(&mut self, k: usize, numel: usize) -> usize {
        self.groups.push(GroupState {
            insts: vec![k],
            numel,
            ops: 1,
            sealed: None,
            merged_into: None,
        });
        self.groups.len() - 1
    }

    fn view_of(&self, k: usize) -> ViewInfo {
        let inst = &self.f.insts()[k];
        let a = inst.args[0].index();
        let base = match &self.class[a] {
            ValueClass::View(vi) => vi.clone(),
            _ => ViewInfo {
                base: a,
                offset: 0,
                strides: col_major_strides(self.shape(a)),
            },
        };
        let out_shape = &inst.results[0];
        let out_shape = self.shape(out_shape.index()).to_vec();
        match &inst.op {
            Op::BroadcastInDim { dims, .. } => {
                let xs = self.shape(a);
                let mut strides = vec![0usize; out_shape.len()];
                for (i, &d) in dims.iter().enumerate() {
                    if xs[i] != 1 {
                        strides[d] = base.strides[i];
                    }
                }
                ViewInfo {
                    base: base.base,
                    offset: base.offset,
                    strides,
                }
            }
            Op::Slice { starts, .. } => ViewInfo {
                base: base.base,
                offset: base.offset
                    + starts
                        .iter()
                        .zip(&base.strides)
                        .map(|(s, t)| s * t)
                        .sum::<usize>(),
                strides: base.strides.clone(),
            },
            // Reshape of a contiguous view (checked by the caller).
            _ => ViewInfo {
                base: base.base,
                offset: base.offset,
                strides: col_major_strides(&out_shape),
            },
        }
    }

    fn is_contiguous_view(&self, v: usize) -> bool {
        match &self.class[v] {
            ValueClass::View(vi) => {
                let shape = self.shape(v);
                let cm = col_major_strides(shape);
                shape
                    .iter()
                    .zip(vi.strides.iter().zip(&cm))
                    .all(|(&n, (s, c))| n == 1 || s == c)
            }
            _ => true,
        }
    }

    fn run(&mut self) {
        for k in 0..self.f.insts().len() {
            let inst = &self.f.insts()[k];
            let op = inst.op.clone();
            let r = inst.results[0].index();
            match &op {
                op if op.is_elementwise() => self.elementwise(k, r),
                Op::Reduce { kind, .. } if self.is_whole_float_product(*kind, r) => {
                    self.seal_operands(k, None);
                    self.note(k, WHOLE_PRODUCT.to_string());
                    self.singles.push(k);
                }
                Op::Reduce { .. } => self.reduce(k, r),
                Op::Reshape { .. } | Op::BroadcastInDim { .. } | Op::Slice { .. } => {
                    self.view(k, r, &op)
                }
                op => {
                    self.seal_operands(k, None);
                    let why = boundary_reason(op).to_string();
                    self.note(k, why);
                    self.singles.push(k);
                }
            }
        }
    }

    /// A floating-point product into one element: fused, it would combine 8 interleaved
    /// lanes, and one lane's partial product can overflow while another underflows
    /// (`inf · 0 = NaN`) where the sequential product is finite. It runs as its own step,
    /// in the reference evaluator's order.
    fn is_whole_float_product(&self, kind: ReduceOp, r: usize) -> bool {
        kind == ReduceOp::Prod
            && self.numel(r) == 1
            && !matches!(self.value_dtype(r), DType::I32 | DType::I64 | DType::Bool)
    }

    fn value_dtype(&self, v: usize) -> DType {
        self.f.ty(tenferro_ir::Value::from_index(v)).dtype
    }

    fn view(&mut self, k: usize, r: usize, op: &Op) {
        let a = self.f.insts()[k].args[0].index();
        if let (Op::Reshape { .. }, Some((g, false))) = (op, self.group_of(a)) {
            if self.groups[g].sealed.is_none() {
                self.class[r] = ValueClass::InGroup {
                    group: g,
                    epilogue: false,
                };
                self.groups[g].insts.push(k);
                self.note(k, format!("alias inside group g{g}"));
                return;
            }
        }
        let operand_contiguous = self.is_contiguous_view(a);
        if matches!(op, Op::Reshape { .. }) && !operand_contiguous {
            // The operand view was materialised (view_needs_storage saw this reshape).
            self.class[a] = ValueClass::Materialized;
        }
        let vi = self.view_of(k);
        self.class[r] = ValueClass::View(vi);
        let contiguous = self.is_contiguous_view(r);
        if self.view_needs_storage(r, contiguous) {
            if let ValueClass::View(vi) = &self.class[r] {
                if vi.base != a {
                    self.composed_views.push((k, vi.clone()));
                }
            }
            self.class[r] = ValueClass::Materialized;
            self.seal_operands(k, None);
            self.note(
                k,
                "materialised: read by a non-fusable instruction or returned".into(),
            );
            self.singles.push(k);
        } else {
            self.note(
                k,
                "view: inlined as a strided load into each consuming group".into(),
            );
        }
    }

    /// Groups `k` may join through its operands, with notes on those it may not.
    fn candidates(&mut self, k: usize, numel: usize) -> Vec<usize> {
        let args: Vec<usize> = self.f.insts()[k].args.iter().map(|a| a.index()).collect();
        let mut excluded: Vec<(usize, String)> = Vec::new();
        let mut cands: Vec<usize> = Vec::new();
        for &a in &args {
            match &self.class[a] {
                ValueClass::InGroup { group, epilogue } => {
                    let g = self.root(*group);
                    if *epilogue {
                        excluded.push((
                            g,
                            format!("%{a} is a reduction result, complete only after the pass"),
                        ));
                    } else if self.groups[g].numel != numel {
                        excluded.push((
                            g,
                            format!(
                                "iteration spaces differ ({} vs {numel} elements)",
                                self.groups[g].numel
                            ),
                        ));
                    } else if !cands.contains(&g) {
                        cands.push(g);
                    }
                }
                ValueClass::View(vi) => {
                    if let Some((g, _)) = self.group_of(vi.base) {
                        excluded.push((g, format!("reads its value %{} through a view", vi.base)));
                    }
                }
                ValueClass::Materialized => {}
            }
        }
        let mut out = Vec::new();
        for g in cands {
            if let Some((_, why)) = excluded.iter().find(|(e, _)| *e == g) {
                let why = why.clone();
                self.note(k, format!("not into g{g}: {why}"));
                continue;
            }
            if let Some(s) = &self.groups[g].sealed {
                let why = s.clone();
                self.note(k, format!("not into g{g}: sealed ({why})"));
                continue;
            }
            out.push(g);
        }
        for (g, why) in excluded {
            if !out.contains(&g) {
                self.note(k, format!("not into g{g}: {why}"));
            }
        }
        out
    }

    /// Merges `cands` (largest first, within the size bound) and adds `k`; a new group
    /// when nothing fits.
    fn join(&mut self, k: usize, numel: usize, mut cands: Vec<usize>) -> usize {
        cands.sort_by_key(|&g| std::cmp::Reverse(self.groups[g].ops));
        let mut chosen: Vec<usize> = Vec::new();
        let mut ops = 1;
        for g in cands {
            if ops + self.groups[g].ops <= MAX_GROUP_OPS {
                ops += self.groups[g].ops;
                chosen.push(g);
            } else {
                self.note(
                    k,
                    format!("not into g{g}: the merged group would exceed {MAX_GROUP_OPS} ops"),
                );
            }
        }
        let target = match chosen.first() {
            Some(&t) => t,
            None => {
                let g = self.new_group(k, numel);
                self.note(k, format!("starts group g{g}"));
                return g;
            }
        };
        for &g in &chosen[1..] {
            let insts = std::mem::take(&mut self.groups[g].insts);
            self.groups[target].insts.extend(insts);
            self.groups[g].merged_into = Some(target);
            self.groups[g].ops = 0;
        }
        self.groups[target].insts.push(k);
        self.groups[target].ops = ops;
        if chosen.len() > 1 {
            let names: Vec<String> = chosen.iter().map(|g| format!("g{g}")).collect();
            self.note(k, format!("merges {} into g{target}", names.join(", ")));
        } else {
            self.note(k, format!("joins g{target}"));
        }
        target
    }

    fn elementwise(&mut self, k: usize, r: usize) {
        let numel = self.numel(r);
        let cands = self.candidates(k, numel);
        let g = self.join(k, numel, cands);
        self.seal_operands(k, Some(g));
        self.class[r] = ValueClass::InGroup {
            group: g,
            epilogue: false,
        };
    }

    fn reduce(&mut self, k: usize, r: usize) {
        let a = self.f.insts()[k].args[0].index();
        let numel = self.numel(a);
        let cands = self.candidates(k, numel);
        let g = if cands.is_empty() {
            let g = self.new_group(k, numel);
            self.note(
                k,
                format!("starts group g{g} (reduction of a stored value)"),
            );
            g
        } else {
            let g = self.join(k, numel, cands);
            if let Some(n) = self.notes.last_mut() {
                n.decision.push_str(" as epilogue");
            }
            g
        };
        self.seal_operands(k, Some(g));
        self.class[r] = ValueClass::InGroup {
            group: g,
            epilogue: true,
        };
    }
}

/// Partitions `f` (already type-checked) into fusion groups and single steps.
pub(crate) fn partition(f: &Function) -> Partition {
    let n = f.num_values();
    let mut consumers = vec![Vec::new(); n];
    for (k, inst) in f.insts().iter().enumerate() {
        for a in &inst.args {
            if !consumers[a.index()].contains(&k) {
                consumers[a.index()].push(k);
            }
        }
    }
    let mut is_output = vec![false; n];
    for o in f.outputs() {
        is_output[o.index()] = true;
    }
    let mut p = Partitioner {
        f,
        consumers,
        is_output,
        class: vec![ValueClass::Materialized; n],
        groups: Vec::new(),
        notes: Vec::new(),
        singles: Vec::new(),
        composed_views: Vec::new(),
    };
    p.run();

    // Execution order: groups at their last member, singles at their own position.
    let mut positioned: Vec<(usize, Unit)> = Vec::new();
    let mut renumber = vec![usize::MAX; p.groups.len()];
    let mut live: Vec<usize> = (0..p.groups.len())
        .filter(|&g| p.groups[g].merged_into.is_none())
        .collect();
    live.sort_by_key(|&g| p.groups[g].insts.iter().max().copied());
    let mut groups = Vec::new();
    for (new_id, &g) in live.iter().enumerate() {
        renumber[g] = new_id;
        let mut insts = p.groups[g].insts.clone();
        insts.sort_unstable();
        let last = *insts.last().unwrap_or(&0);
        positioned.push((last, Unit::Group(new_id)));
        groups.push(FusionGroup {
            id: new_id,
            insts,
            numel: p.groups[g].numel,
        });
    }
    for &k in &p.singles {
        positioned.push((k, Unit::Single(k)));
    }
    positioned.sort_by_key(|(pos, _)| *pos);
    let mut class = p.class.clone();
    for c in class.iter_mut() {
        if let ValueClass::InGroup { group, .. } = c {
            *group = renumber[p.root(*group)];
        }
    }
    // Notes name groups by their final numbers.
    let mut notes = p.notes.clone();
    for note in notes.iter_mut() {
        note.decision = rename_groups(&note.decision, |g| renumber[p.root(g)]);
    }
    Partition {
        groups,
        class,
        units: positioned.into_iter().map(|(_, u)| u).collect(),
        notes,
        composed_views: p.composed_views.clone(),
    }
}

/// Rewrites every `g<number>` in `s` through `map`.
fn rename_groups(s: &str, map: impl Fn(usize) -> usize) -> String {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let at_word_start = i == 0 || !(bytes[i - 1] as char).is_ascii_alphanumeric();
        if bytes[i] == b'g' && at_word_start {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 {
                if let Ok(g) = s[i + 1..j].parse::<usize>() {
                    out.push_str(&format!("g{}", map(g)));
                    i = j;
                    continue;
                }
            }
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}
