//! Kernel schedules: how one [`FusionGroup`] runs. The iteration space
//! (the group's element count, in column-major order) is cut into *blocks*, the unit of
//! parallel work, and each block into *tiles* small enough for L1. Per tile, strided loads
//! fill their tile slots, then the op list runs over slices of `len ≤ tile` elements (one
//! dtype dispatch per op per tile); values used outside the group are written straight
//! into their output buffers, the others live in reused tile slots. A group that is one
//! binary op whose operands run contiguously (or stay fixed) along its fastest merged axis
//! also gets a `DirectBinary` plan, which skips the tile slots. A `conj` or real-to-
//! complex `convert` read by one complex `mul` only is folded into that mul (a
//! [`Fold`] of its operand) instead of running a tile pass of its own, and so is the
//! product's `y + y` when that is its only reader.
//!
//! Reduction order (fixed, documented, independent of the thread count):
//! - *whole* reductions (scalar result) fold each block into 8 lanes (element `i` of a
//!   tile goes to lane `i mod 8`, tiles in order), combine the lanes `((l0·l1)·l2)…`, then
//!   combine the block partials in block order starting from the identity. Block
//!   boundaries depend only on the group's shape, so results are bit-identical on every
//!   run and with any thread count.
//! - *row* reductions (non-scalar result) fold every output element's inputs in
//!   column-major order, exactly as the reference evaluator does. When the slowest axis is
//!   kept, blocks are whole slices of it (disjoint outputs, run in parallel); otherwise the
//!   group runs as one block.
//!
//! Imports `fusion`, `strided` and `math`; the fused kernels, the program and the planner
//! import it.

use crate::fusion::{FusionGroup, ValueClass};
use crate::strided::coalesce;
use std::collections::HashMap;
use std::fmt;
use tenferro_ir::{
    col_major_strides, BinaryOp, CmpOp, DType, Function, Op, ReduceOp, TensorType, UnaryOp, Value,
};

/// Largest number of elements per parallel block (rounded to the reductions' quantum).
pub(crate) const TARGET_BLOCK: usize = 1 << 15;
/// Smallest block: groups of at most twice this run as one block on the calling thread
/// (a pool round trip costs about as much as the work).
pub(crate) const MIN_BLOCK: usize = 1 << 13;
/// Mid-sized groups are cut into about this many blocks, so that two or more workers get
/// balanced shares (work stealing evens out the rest).
const MIN_BLOCKS: usize = 8;
/// Bytes of tile slots a tile aims to fit in. Measured on the 2-core Zen3 box (L1 32 KiB,
/// L2 512 KiB): 48 KiB (slots mostly in L1, the rest in L2) beats 16 and 24 KiB by 5–15%
/// on long elementwise chains over complex and real vectors (fewer per-op dispatches),
/// and equals them elsewhere.
const TILE_BYTES: usize = 48 * 1024;
/// Most elements per tile.
const MAX_TILE: usize = 4096;
/// Most fastest-axis runs a row reduction folds side by side (`kernels::fused`).
pub(crate) const ROW_GROUP: usize = 4;
/// Shortest fastest-axis run folded side by side with others: shorter runs are several to
/// a tile, and the tile loop overlaps their folds already.
pub(crate) const FAST_ROWS_MIN: usize = 256;

/// Where a tile op reads an operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// A tile slot (the first `len` elements).
    Slot(usize),
    /// External buffer `input`, elements `offset + start .. offset + start + len`.
    Input { input: usize, offset: usize },
    /// The group's output `o` at the tile's positions (written earlier in this tile, or
    /// the donated input buffer of an in-place update).
    Output(usize),
    /// One element, `input[offset]`, for every position (a broadcast scalar; only
    /// binary ops read it).
    Scalar { input: usize, offset: usize },
}

/// Where a tile op writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dst {
    Slot(usize),
    Output(usize),
}

#[derive(Clone, Debug)]
pub(crate) enum TileOpKind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Compare(CmpOp),
    Select,
    Convert(DType),
    /// Copy of the operand (a stored alias).
    Copy,
    /// Fold the operand into reduction `reductions[i]`.
    Reduce(usize),
    /// A complex `mul` reading each operand through a [`Fold`]: the `conj` or real-to-
    /// complex `convert` (of a real value, or of a real `u + u`) that produced it, folded
    /// in (no tile pass of its own). `twice`: the product's only reader, `y + y`, is
    /// folded in too (the op writes that sum).
    MulFolded {
        folds: [Fold; 2],
        twice: bool,
    },
    /// Two unary ops of one operand computed in one pass (see [`Twin`]): the op's `dst`
    /// gets the first of them in program order (`a_first` says whether that is the
    /// twin's first op), `other` the second (IR value `other_value`).
    Twin {
        twin: Twin,
        other: Dst,
        other_value: usize,
        a_first: bool,
    },
}

/// How a [`TileOpKind::MulFolded`] reads one operand. The kernel builds the folded
/// value in registers with the ops the folded ops would have run (a sign flip, a zero
/// imaginary part, a sum), so the product has the unfused bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// The operand as stored.
    Plain,
    /// The operand's conjugate.
    Conj,
    /// A real operand `x` read as the complex `(x, +0)`.
    Real,
    /// A real operand `u` read as the complex `(u + u, +0)`.
    RealTwice,
}

/// Pairs of unary ops of one operand that share their work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Twin {
    /// `sin` and `cos` of a real operand, from one argument reduction.
    SinCos,
    /// `abs` and `sign` of a c64 operand, from one square root.
    AbsSign,
}

impl Twin {
    /// The twin and whether `op` is its first op (`sin`, `abs`), for a unary op whose
    /// operand has dtype `x`.
    fn of(op: &Op, x: DType) -> Option<(Twin, bool)> {
        let real = matches!(x, DType::F32 | DType::F64);
        match op {
            Op::Unary(UnaryOp::Sin) if real => Some((Twin::SinCos, true)),
            Op::Unary(UnaryOp::Cos) if real => Some((Twin::SinCos, false)),
            Op::Unary(UnaryOp::Abs) if x == DType::C64 => Some((Twin::AbsSign, true)),
            Op::Unary(UnaryOp::Sign) if x == DType::C64 => Some((Twin::AbsSign, false)),
            _ => None,
        }
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Twin::SinCos => ("sin", "cos"),
            Twin::AbsSign => ("abs", "sign"),
        }
    }
}

/// One op of the per-tile op list.
#[derive(Clone, Debug)]
pub(crate) struct TileOp {
    pub kind: TileOpKind,
    pub srcs: Vec<Src>,
    /// `None` for reductions.
    pub dst: Option<Dst>,
    /// Result dtype.
    pub dtype: DType,
    /// IR value computed (for display).
    pub value: usize,
}

/// A strided load of a view into a tile slot: flat position `p` of the group reads
/// `input[offset + Σ i_a · strides[a]]` where `i` is `p`'s multi-index over `shape`.
#[derive(Clone, Debug)]
pub(crate) struct StridedLoad {
    pub input: usize,
    pub slot: usize,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    /// Strides over the group's own (uncoalesced) shape.
    pub view_strides: Vec<usize>,
    /// IR value of the view (for display).
    pub value: usize,
}

/// The group is one binary op whose operands run contiguously or stay fixed along the
/// fastest axis of the group's shape: it runs without tile slots, one op call per run of
/// `shape[0]` elements read straight from the operands (see `fused::run`).
#[derive(Clone, Debug)]
pub(crate) struct DirectBinary {
    pub op: BinaryOp,
    /// The group's shape with axes merged where operands and output allow; `shape[0]`
    /// is the run length.
    pub shape: Vec<usize>,
    /// Per operand: input, offset and strides over `shape` (`strides[0]` is 0 or 1).
    pub operands: [(usize, usize, Vec<usize>); 2],
}

/// Shortest run for which a group runs as a [`DirectBinary`]: shorter runs pay more in
/// per-run calls than the tile copies they save.
const DIRECT_MIN_RUN: usize = 16;

#[derive(Clone, Debug)]
pub(crate) enum ReduceMode {
    /// Scalar result: lanes per block, block partials combined in block order.
    Whole,
    /// Column-major fold into `out_len` outputs; `shape` / `out_strides` coalesced.
    /// `outer = Some((quantum, outputs_per_quantum))` when the slowest axis is kept, so
    /// blocks of whole `quantum`-element slices write disjoint outputs.
    Rows {
        shape: Vec<usize>,
        out_strides: Vec<usize>,
        outer: Option<(usize, usize)>,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct ReduceEpilogue {
    pub kind: ReduceOp,
    pub dtype: DType,
    pub out: usize,
    pub mode: ReduceMode,
}

/// How an output buffer is split over blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputKind {
    /// One element per group position.
    Tiles,
    /// Result of reduction `i`.
    Reduction(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct GroupOutput {
    pub value: usize,
    pub ty: TensorType,
    pub kind: OutputKind,
}

/// The schedule of one fusion group. See the module documentation.
#[derive(Clone, Debug)]
pub struct KernelSchedule {
    pub(crate) group: usize,
    pub(crate) numel: usize,
    pub(crate) tile: usize,
    pub(crate) block: usize,
    /// External buffers read (value indices) and their types.
    pub(crate) inputs: Vec<(usize, TensorType)>,
    pub(crate) loads: Vec<StridedLoad>,
    pub(crate) ops: Vec<TileOp>,
    pub(crate) reductions: Vec<ReduceEpilogue>,
    pub(crate) outputs: Vec<GroupOutput>,
    pub(crate) slot_types: Vec<DType>,
    /// `(input, output)` pairs that may share a buffer: every read of the input (at the
    /// tile's own positions) comes at or before the op writing the output.
    pub(crate) inplace_candidates: Vec<(usize, usize)>,
    /// `(input, output)` pairs the memory plan chose (reads rewritten to the output).
    pub(crate) inplace: Vec<(usize, usize)>,
    /// The slot-free plan of a group that is one binary op, when it has one.
    pub(crate) direct: Option<DirectBinary>,
}

impl KernelSchedule {
    /// Elements per tile.
    pub fn tile(&self) -> usize {
        self.tile
    }

    /// Elements per parallel block.
    pub fn block(&self) -> usize {
        self.block
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.numel.div_ceil(self.block.max(1))
    }

    /// Size of the iteration space.
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// Number of ops in the per-tile op list (including reductions and copies).
    pub fn num_ops(&self) -> usize {
        self.ops.len()
    }

    /// IR values this group stores (used outside it).
    pub fn stored_values(&self) -> Vec<usize> {
        self.outputs.iter().map(|o| o.value).collect()
    }

    /// Rewrites reads of `input` to read output `output` (which receives its buffer).
    pub(crate) fn apply_inplace(&mut self, input: usize, output: usize) {
        for op in &mut self.ops {
            for s in &mut op.srcs {
                if matches!(*s, Src::Input { input: i, offset: 0 } if i == input) {
                    *s = Src::Output(output);
                }
            }
        }
        self.inplace.push((input, output));
    }
}

fn src_name(s: &Src) -> String {
    match s {
        Src::Slot(i) => format!("t{i}"),
        Src::Input { input, offset: 0 } => format!("in{input}"),
        Src::Input { input, offset } => format!("in{input}[+{offset}]"),
        Src::Output(o) => format!("out{o}"),
        Src::Scalar { input, offset } => format!("in{input}[{offset}]*"),
    }
}

impl fmt::Display for KernelSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let par = if self.num_blocks() > 1 {
            "parallel over blocks"
        } else {
            "one block"
        };
        writeln!(
            f,
            "schedule g{}: {} elements, tile {}, block {} ({} blocks, {par}), {} tile slots",
            self.group,
            self.numel,
            self.tile,
            self.block,
            self.num_blocks(),
            self.slot_types.len()
        )?;
        for (i, (v, ty)) in self.inputs.iter().enumerate() {
            let donated = self
                .inplace
                .iter()
                .find(|(inp, _)| *inp == i)
                .map(|(_, o)| format!(" (buffer reused in place by out{o})"))
                .unwrap_or_default();
            writeln!(f, "    in{i} = %{v} : {ty}{donated}")?;
        }
        if let Some(d) = &self.direct {
            writeln!(
                f,
                "    direct: {} per run of {} over {:?}, operands read in place",
                d.op.name(),
                d.shape[0],
                d.shape
            )?;
        }
        for l in &self.loads {
            writeln!(
                f,
                "    t{} = load in{} (view %{}) offset {} shape {:?} strides {:?}",
                l.slot, l.input, l.value, l.offset, l.shape, l.strides
            )?;
        }
        for op in &self.ops {
            let mut args: Vec<String> = op.srcs.iter().map(src_name).collect();
            if let TileOpKind::MulFolded { folds, .. } = &op.kind {
                for (a, fd) in args.iter_mut().zip(folds) {
                    match fd {
                        Fold::Plain => {}
                        Fold::Conj => *a = format!("conj({a})"),
                        Fold::Real => *a = format!("real-as-complex({a})"),
                        Fold::RealTwice => *a = format!("real-as-complex({a} + {a})"),
                    }
                }
            }
            let dst = match op.dst {
                Some(Dst::Slot(s)) => format!("t{s}"),
                Some(Dst::Output(o)) => format!("out{o}"),
                None => String::new(),
            };
            match &op.kind {
                TileOpKind::Reduce(r) => {
                    let red = &self.reductions[*r];
                    let mode = match &red.mode {
                        ReduceMode::Whole => "whole: 8 lanes per block, blocks in order".into(),
                        ReduceMode::Rows { outer: Some(_), .. } => {
                            "rows: column-major order, blocks own disjoint outputs".to_string()
                        }
                        ReduceMode::Rows { outer: None, .. } => {
                            "rows: column-major order, sequential".to_string()
                        }
                    };
                    writeln!(
                        f,
                        "    out{} = {} {} ({mode})   ; %{}",
                        red.out,
                        red.kind.name(),
                        args.join(", "),
                        op.value
                    )?;
                }
                kind => {
                    let name = match kind {
                        TileOpKind::Unary(u) => u.name().to_string(),
                        TileOpKind::Binary(b) => b.name().to_string(),
                        TileOpKind::MulFolded { twice: false, .. } => "mul".into(),
                        TileOpKind::MulFolded { twice: true, .. } => "twice mul".into(),
                        TileOpKind::Compare(c) => format!("compare {}", c.name()),
                        TileOpKind::Select => "select".into(),
                        TileOpKind::Convert(d) => format!("convert {d}"),
                        TileOpKind::Copy => "copy".into(),
                        TileOpKind::Twin {
                            twin,
                            other,
                            other_value,
                            a_first,
                        } => {
                            let c = match other {
                                Dst::Slot(x) => format!("t{x}"),
                                Dst::Output(o) => format!("out{o}"),
                            };
                            let (a, b) = twin.names();
                            let (a, b) = if *a_first { (a, b) } else { (b, a) };
                            format!("{a} and {b} -> {c} (%{other_value}) of")
                        }
                        TileOpKind::Reduce(_) => unreachable!("handled above"),
                    };
                    writeln!(
                        f,
                        "    {dst} = {name} {} : {}   ; %{}",
                        args.join(", "),
                        op.dtype,
                        op.value
                    )?;
                }
            }
        }
        let outs: Vec<String> = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| format!("out{i} -> %{}", o.value))
            .collect();
        write!(f, "    store {}", outs.join(", "))
    }
}

fn lcm(a: usize, b: usize) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    if a == 0 || b == 0 {
        a.max(b)
    } else {
        (a / gcd(a, b)).saturating_mul(b)
    }
}

/// Builds the schedule of `group`. `stored(v)` says whether a member value is used
/// outside the group (or returned).
pub(crate) fn build(
    f: &Function,
    group: &FusionGroup,
    class: &[ValueClass],
    stored: &dyn Fn(usize) -> bool,
) -> KernelSchedule {
    let ty = |v: usize| f.ty(Value::from_index(v)).clone();
    let members: Vec<usize> = group.insts.clone();
    let is_member_value: HashMap<usize, usize> = members
        .iter()
        .enumerate()
        .map(|(j, &k)| (f.insts()[k].results[0].index(), j))
        .collect();

    // Last use (member position) of every value read, aliases extending their operand's.
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (j, &k) in members.iter().enumerate() {
        for a in &f.insts()[k].args {
            last_use.insert(a.index(), j);
        }
    }
    // A `conj` or real-to-complex `convert` read only by one complex `mul` of the group
    // (and not stored) is folded into that mul: folded[value] = (fold, its operand). The
    // operand then lives until the mul.
    let mut reads: HashMap<usize, usize> = HashMap::new();
    for &k in &members {
        for a in &f.insts()[k].args {
            *reads.entry(a.index()).or_default() += 1;
        }
    }
    // A member value read only by the member `x + x` (and not stored): that add's
    // member position.
    let doubled_by = |v: usize| -> Option<usize> {
        if stored(v) || reads.get(&v) != Some(&2) {
            return None;
        }
        members.iter().position(|&k| {
            let inst = &f.insts()[k];
            matches!(inst.op, Op::Binary(BinaryOp::Add)) && inst.args.iter().all(|a| a.index() == v)
        })
    };
    let mut folded: HashMap<usize, (Fold, usize)> = HashMap::new();
    // Members computed inside a folded mul: a `u + u` under a real operand, and the
    // `y + y` of a mul's result `y` (doubled[y] = that sum).
    let mut absorbed: Vec<bool> = vec![false; members.len()];
    let mut doubled: HashMap<usize, usize> = HashMap::new();
    for (j, &k) in members.iter().enumerate() {
        let inst = &f.insts()[k];
        let y = inst.results[0].index();
        let d = ty(y).dtype;
        if !matches!(inst.op, Op::Binary(BinaryOp::Mul)) || !d.is_complex() {
            continue;
        }
        for a in &inst.args {
            let a = a.index();
            let Some(&p) = is_member_value.get(&a) else {
                continue;
            };
            if stored(a) || reads.get(&a) != Some(&1) {
                continue;
            }
            let prod = &f.insts()[members[p]];
            let Some(mut x) = prod.args.first().map(|x| x.index()) else {
                continue;
            };
            let fold = match prod.op {
                Op::Unary(UnaryOp::Conj) if ty(x).dtype == d => Fold::Conj,
                Op::Convert { to } if to == d && ty(x).dtype == d.real() => {
                    // A real `u + u` read only here: summed in the mul's registers.
                    let sum = is_member_value.get(&x).copied().filter(|&q| {
                        let add = &f.insts()[members[q]];
                        matches!(add.op, Op::Binary(BinaryOp::Add))
                            && add.args[0] == add.args[1]
                            && !stored(x)
                            && reads.get(&x) == Some(&1)
                    });
                    match sum {
                        Some(q) => {
                            absorbed[q] = true;
                            x = f.insts()[members[q]].args[0].index();
                            Fold::RealTwice
                        }
                        None => Fold::Real,
                    }
                }
                _ => continue,
            };
            folded.insert(a, (fold, x));
            let e = last_use.entry(x).or_insert(j);
            *e = (*e).max(j);
        }
        if let Some(q) = doubled_by(y) {
            absorbed[q] = true;
            doubled.insert(y, f.insts()[members[q]].results[0].index());
        }
    }
    for &k in members.iter().rev() {
        let inst = &f.insts()[k];
        if matches!(inst.op, Op::Reshape { .. }) {
            let (a, r) = (inst.args[0].index(), inst.results[0].index());
            if let Some(&lr) = last_use.get(&r) {
                let e = last_use.entry(a).or_insert(lr);
                *e = (*e).max(lr);
            }
        }
    }

    let mut s = KernelSchedule {
        group: group.id,
        numel: group.numel,
        tile: 0,
        block: 0,
        inputs: Vec::new(),
        loads: Vec::new(),
        ops: Vec::new(),
        reductions: Vec::new(),
        outputs: Vec::new(),
        slot_types: Vec::new(),
        inplace_candidates: Vec::new(),
        inplace: Vec::new(),
        direct: None,
    };
    let mut free_slots: Vec<usize> = Vec::new();
    let alloc = |s: &mut KernelSchedule, free: &mut Vec<usize>, d: DType| -> usize {
        if let Some(pos) = free.iter().position(|&i| s.slot_types[i] == d) {
            return free.remove(pos);
        }
        s.slot_types.push(d);
        s.slot_types.len() - 1
    };
    let input_of = |s: &mut KernelSchedule, v: usize| -> usize {
        if let Some(i) = s.inputs.iter().position(|(x, _)| *x == v) {
            return i;
        }
        s.inputs.push((v, ty(v)));
        s.inputs.len() - 1
    };
    let mut loc: HashMap<usize, Src> = HashMap::new();

    // Views read by members: contiguous ones are direct inputs, others strided loads.
    for &k in &members {
        for a in &f.insts()[k].args {
            let a = a.index();
            if loc.contains_key(&a) || is_member_value.contains_key(&a) {
                continue;
            }
            match &class[a] {
                ValueClass::View(vi) => {
                    let vshape = ty(a).shape;
                    let (cs, cst) = coalesce(&vshape, &[&vi.strides]);
                    let input = input_of(&mut s, vi.base);
                    let flat = cs.is_empty() || (cs.len() == 1 && cst[0][0] == 1);
                    // A broadcast of one element read only by binary ops: those ops
                    // read the element itself (no tile slot filled with copies).
                    let splat = !cs.is_empty()
                        && !vshape.contains(&0)
                        && cst[0].iter().all(|&x| x == 0)
                        && members.iter().all(|&m| {
                            let inst = &f.insts()[m];
                            !inst.args.iter().any(|x| x.index() == a)
                                || matches!(inst.op, Op::Binary(_))
                        });
                    if splat {
                        loc.insert(
                            a,
                            Src::Scalar {
                                input,
                                offset: vi.offset,
                            },
                        );
                    } else if flat && !vshape.contains(&0) {
                        loc.insert(
                            a,
                            Src::Input {
                                input,
                                offset: vi.offset,
                            },
                        );
                    } else {
                        let slot = alloc(&mut s, &mut free_slots, ty(a).dtype);
                        s.loads.push(StridedLoad {
                            input,
                            slot,
                            offset: vi.offset,
                            shape: cs,
                            strides: cst[0].clone(),
                            view_strides: vi.strides.clone(),
                            value: a,
                        });
                        loc.insert(a, Src::Slot(slot));
                    }
                }
                _ => {
                    let input = input_of(&mut s, a);
                    loc.insert(a, Src::Input { input, offset: 0 });
                }
            }
        }
    }

    let new_output = |s: &mut KernelSchedule, v: usize, kind: OutputKind| -> usize {
        s.outputs.push(GroupOutput {
            value: v,
            ty: ty(v),
            kind,
        });
        s.outputs.len() - 1
    };
    let mut freed: Vec<usize> = Vec::new();
    // Twins (a `sin` and a `cos`, or an `abs` and a `sign`, of the same operand): one op
    // at the first of them.
    let twin_of = |k: usize| -> Option<(Twin, bool, usize)> {
        let inst = &f.insts()[k];
        let x = *inst.args.first()?;
        let (t, first) = Twin::of(&inst.op, ty(x.index()).dtype)?;
        let ok = match t {
            Twin::SinCos => {
                let d = ty(x.index()).dtype;
                crate::math::is_transcendental(UnaryOp::Sin, d)
                    && crate::math::is_transcendental(UnaryOp::Cos, d)
            }
            Twin::AbsSign => true,
        };
        ok.then_some((t, first, x.index()))
    };
    // partner[j] = (the twin op's member position, the twin, whether j is its first op).
    let mut partner: Vec<Option<(usize, Twin, bool)>> = vec![None; members.len()];
    let mut paired_later: Vec<bool> = vec![false; members.len()];
    for j in 0..members.len() {
        let Some((t, first, x)) = twin_of(members[j]) else {
            continue;
        };
        if paired_later[j] || partner[j].is_some() {
            continue;
        }
        let hit = (j + 1..members.len())
            .find(|&j2| !paired_later[j2] && twin_of(members[j2]) == Some((t, !first, x)));
        if let Some(j2) = hit {
            partner[j] = Some((j2, t, first));
            paired_later[j2] = true;
        }
    }
    for (j, &k) in members.iter().enumerate() {
        let inst = &f.insts()[k];
        let r = inst.results[0].index();
        let rty = ty(r);
        // The values read, a folded operand replaced by its own operand.
        let read: Vec<(Fold, usize)> = inst
            .args
            .iter()
            .map(|a| {
                let a = a.index();
                folded.get(&a).copied().unwrap_or((Fold::Plain, a))
            })
            .collect();
        // Computed with its partner, earlier; or folded into its reader.
        let skip = paired_later[j] || absorbed[j] || folded.contains_key(&r);
        let srcs: Vec<Src> = if skip {
            Vec::new()
        } else {
            read.iter().map(|(_, a)| loc[a]).collect()
        };
        // A doubled mul writes the sum's value.
        let (r, rty) = match doubled.get(&r) {
            Some(&r2) => (r2, ty(r2)),
            None => (r, rty),
        };
        let kind = match &inst.op {
            _ if skip => None,
            Op::Binary(BinaryOp::Mul)
                if read.iter().any(|(fd, _)| *fd != Fold::Plain)
                    || r != inst.results[0].index() =>
            {
                Some(TileOpKind::MulFolded {
                    folds: [read[0].0, read[1].0],
                    twice: r != inst.results[0].index(),
                })
            }
            Op::Unary(_) if partner[j].is_some() => {
                let (j2, twin, a_first) = partner[j].unwrap_or((j, Twin::SinCos, true));
                let r2 = f.insts()[members[j2]].results[0].index();
                let other = if stored(r2) {
                    Dst::Output(new_output(&mut s, r2, OutputKind::Tiles))
                } else {
                    Dst::Slot(alloc(&mut s, &mut free_slots, ty(r2).dtype))
                };
                loc.insert(
                    r2,
                    match other {
                        Dst::Slot(x) => Src::Slot(x),
                        Dst::Output(o) => Src::Output(o),
                    },
                );
                Some(TileOpKind::Twin {
                    twin,
                    other,
                    other_value: r2,
                    a_first,
                })
            }
            Op::Unary(u) => Some(TileOpKind::Unary(*u)),
            Op::Binary(b) => Some(TileOpKind::Binary(*b)),
            Op::Compare(c) => Some(TileOpKind::Compare(*c)),
            Op::Select => Some(TileOpKind::Select),
            Op::Convert { to } => Some(TileOpKind::Convert(*to)),
            Op::Reshape { .. } => None,
            Op::Reduce { kind, axes } => {
                let a = inst.args[0].index();
                let xshape = ty(a).shape;
                let mode = reduce_mode(&xshape, axes, rty.numel());
                let ridx = s.reductions.len();
                let out = new_output(&mut s, r, OutputKind::Reduction(ridx));
                s.reductions.push(ReduceEpilogue {
                    kind: *kind,
                    dtype: rty.dtype,
                    out,
                    mode,
                });
                s.ops.push(TileOp {
                    kind: TileOpKind::Reduce(s.reductions.len() - 1),
                    srcs: srcs.clone(),
                    dst: None,
                    dtype: rty.dtype,
                    value: r,
                });
                loc.insert(r, Src::Output(out));
                None
            }
            _ => None,
        };
        match (kind, &inst.op) {
            (Some(kind), _) => {
                let dst = if stored(r) {
                    Dst::Output(new_output(&mut s, r, OutputKind::Tiles))
                } else {
                    Dst::Slot(alloc(&mut s, &mut free_slots, rty.dtype))
                };
                s.ops.push(TileOp {
                    kind,
                    srcs: srcs.clone(),
                    dst: Some(dst),
                    dtype: rty.dtype,
                    value: r,
                });
                loc.insert(
                    r,
                    match dst {
                        Dst::Slot(x) => Src::Slot(x),
                        Dst::Output(o) => Src::Output(o),
                    },
                );
            }
            (None, Op::Reshape { .. }) if !skip => {
                let src = srcs[0];
                if stored(r) {
                    let o = new_output(&mut s, r, OutputKind::Tiles);
                    s.ops.push(TileOp {
                        kind: TileOpKind::Copy,
                        srcs: vec![src],
                        dst: Some(Dst::Output(o)),
                        dtype: rty.dtype,
                        value: r,
                    });
                    loc.insert(r, Src::Output(o));
                } else {
                    loc.insert(r, src);
                }
            }
            _ => {}
        }
        // Free slots whose values are dead after this op.
        for &(_, a) in &read {
            if last_use.get(&a) == Some(&j) {
                if let Some(Src::Slot(x)) = loc.get(&a) {
                    let still_used = loc.iter().any(|(v, l)| {
                        *l == Src::Slot(*x) && *v != a && last_use.get(v).is_some_and(|&u| u > j)
                    });
                    if !still_used && !freed.contains(x) {
                        freed.push(*x);
                        free_slots.push(*x);
                    }
                }
            }
        }
        // A slot freed above may be reallocated: forget its old owners' locations only
        // through `freed` bookkeeping (a reused slot is removed from `freed`).
        freed.retain(|x| free_slots.contains(x));
    }

    // In-place candidates: a Tiles output written by a unary / binary op, and an input of
    // the same dtype and size read only at offset 0 and never after that op.
    for (o, out) in s.outputs.iter().enumerate() {
        if out.kind != OutputKind::Tiles {
            continue;
        }
        let Some(j) = s.ops.iter().position(|op| op.dst == Some(Dst::Output(o))) else {
            continue;
        };
        if !matches!(
            s.ops[j].kind,
            TileOpKind::Unary(_) | TileOpKind::Binary(_) | TileOpKind::MulFolded { .. }
        ) {
            continue;
        }
        for (i, (_, ity)) in s.inputs.iter().enumerate() {
            if ity.dtype != out.ty.dtype || ity.numel() != s.numel {
                continue;
            }
            let reads_here = s.ops[..=j].iter().any(|op| {
                op.srcs.contains(&Src::Input {
                    input: i,
                    offset: 0,
                })
            });
            let only_flat = s.loads.iter().all(|l| l.input != i)
                && s.ops.iter().all(|op| {
                    op.srcs.iter().all(|x| match *x {
                        Src::Input { input, offset } => input != i || offset == 0,
                        Src::Scalar { input, .. } => input != i,
                        _ => true,
                    })
                });
            let none_later = s.ops[j + 1..].iter().all(|op| {
                op.srcs
                    .iter()
                    .all(|x| !matches!(x, Src::Input { input, .. } if *input == i))
            });
            let taken = s.inplace_candidates.iter().any(|(ii, _)| *ii == i);
            if reads_here && only_flat && none_later && !taken {
                s.inplace_candidates.push((i, o));
                break;
            }
        }
    }

    // Tile: the live slots of one tile fit in TILE_BYTES; a multiple of 64 in
    // [256, MAX_TILE].
    let slot_bytes: usize = s.slot_types.iter().map(|d| d.size_bytes()).sum();
    let mut tile = TILE_BYTES
        .checked_div(slot_bytes)
        .map_or(MAX_TILE, |t| t.clamp(256, MAX_TILE) / 64 * 64);
    tile = tile.min(group.numel.next_multiple_of(8)).max(8);
    s.tile = tile;

    // Blocks: a multiple of every row reduction's quantum; one block when a row
    // reduction reduces the slowest axis or the group is small.
    let mut quantum = 1usize;
    let mut sequential = false;
    let n = group.numel.max(1);
    for r in &s.reductions {
        if let ReduceMode::Rows {
            outer,
            shape,
            out_strides,
        } = &r.mode
        {
            match outer {
                Some((q, _)) => quantum = lcm(quantum, *q),
                None => sequential = true,
            }
            // A reduction over long fastest-axis runs folds several runs side by side
            // (`kernels::fused`): give each block that many, while two blocks remain.
            if let (Some(&n0), Some(0)) = (shape.first(), out_strides.first()) {
                let group_q = n0.saturating_mul(ROW_GROUP);
                if n0 >= FAST_ROWS_MIN && n / 2 >= group_q {
                    quantum = lcm(quantum, group_q);
                }
            }
        }
    }
    let target = n
        .div_ceil(MIN_BLOCKS)
        .clamp(MIN_BLOCK, TARGET_BLOCK)
        .next_multiple_of(s.tile.max(1));
    s.block = if sequential || n <= 2 * MIN_BLOCK || quantum >= n {
        n
    } else {
        target.next_multiple_of(quantum).min(n)
    };
    s.direct = direct_binary(&s, &ty(s.ops.first().map_or(0, |o| o.value)).shape);
    s
}

/// The [`DirectBinary`] plan of `s`, when `s` is one binary op writing its only output
/// (no reduction) and each operand along the fastest merged axis is contiguous or fixed,
/// over runs of at least [`DIRECT_MIN_RUN`] elements.
fn direct_binary(s: &KernelSchedule, shape: &[usize]) -> Option<DirectBinary> {
    let [op] = s.ops.as_slice() else {
        return None;
    };
    let TileOpKind::Binary(bop) = op.kind else {
        return None;
    };
    if op.dst != Some(Dst::Output(0))
        || s.outputs.len() != 1
        || s.outputs[0].kind != OutputKind::Tiles
        || !s.reductions.is_empty()
        || op.srcs.len() != 2
        || shape.iter().product::<usize>() != s.numel
        || shape.contains(&0)
    {
        return None;
    }
    let dense = tenferro_ir::col_major_strides(shape);
    let operand = |src: &Src| -> Option<(usize, usize, Vec<usize>)> {
        match *src {
            Src::Slot(x) => {
                let l = s.loads.iter().find(|l| l.slot == x)?;
                (l.view_strides.len() == shape.len())
                    .then(|| (l.input, l.offset, l.view_strides.clone()))
            }
            Src::Input { input, offset } => Some((input, offset, dense.clone())),
            Src::Scalar { input, offset } => Some((input, offset, vec![0; shape.len()])),
            Src::Output(_) => None,
        }
    };
    let (a, b) = (operand(&op.srcs[0])?, operand(&op.srcs[1])?);
    let (cs, st) = coalesce(shape, &[&a.2, &b.2, &dense]);
    let unit = |x: &[usize]| x.first().is_some_and(|&s0| s0 <= 1);
    if cs.first().is_none_or(|&n0| n0 < DIRECT_MIN_RUN) || !unit(&st[0]) || !unit(&st[1]) {
        return None;
    }
    Some(DirectBinary {
        op: bop,
        shape: cs,
        operands: [(a.0, a.1, st[0].clone()), (b.0, b.1, st[1].clone())],
    })
}

/// The reduction mode of reducing `x_shape` along `axes` into `out_len` elements.
fn reduce_mode(x_shape: &[usize], axes: &[usize], out_len: usize) -> ReduceMode {
    if out_len == 1 {
        return ReduceMode::Whole;
    }
    let kept: Vec<usize> = (0..x_shape.len()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| x_shape[a]).collect();
    let os = col_major_strides(&out_shape);
    let mut out_strides = vec![0usize; x_shape.len()];
    for (k, &a) in kept.iter().enumerate() {
        out_strides[a] = os[k];
    }
    let (shape, strides) = coalesce(x_shape, &[&out_strides]);
    let out_strides = strides[0].clone();
    let outer = match (shape.last(), out_strides.last()) {
        (Some(_), Some(&s)) if s != 0 && !shape.contains(&0) => {
            let q: usize = shape[..shape.len() - 1].iter().product();
            Some((q, s))
        }
        _ => None,
    };
    ReduceMode::Rows {
        shape,
        out_strides,
        outer,
    }
}
