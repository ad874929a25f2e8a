//! `dot_general` as batched GEMM. Each operand is seen as `batch` column-major-or-row-major
//! matrices: lhs as `(m, k)` (its free axes, then its contracting axes), rhs as `(k, n)`.
//! When an operand's axis groups are already single strided runs, faer reads it in place;
//! otherwise it is packed once into a contiguous buffer. faer's GEMM runs per batch (c32,
//! c64, and f32 / f64 without AVX-512 or below `gemm512::takes`' sizes); the other f32
//! and f64 products run `gemm512`, which packs both operands itself from any strides; i64
//! and i32 use a plain loop (there is no integer BLAS).
//!
//! faer's x86 GEMM packs its left operand but streams its right operand (`rhs`, or `lhsᵀ`
//! when the transpose of the product is written) in place, one `k`-long column per output
//! column: when that operand's contracting axis is not contiguous, each step of `k` jumps a
//! full row, which at power-of-two strides maps every access to the same cache sets and
//! runs at about half speed. A large enough product therefore packs that operand with its
//! contracting axis contiguous first (an `O(k·n)` tiled copy against `O(m·k·n)` flops).
//! The result `[batch..., m..., n...]` has the batch axes fastest, so batched products go
//! through a `[m, n, batch]` buffer and one strided copy, unless the batch axes are also
//! the operands' fastest axes: those products run on batch lanes (`lane_dot`). The
//! planner folds a transpose of the result into the product
//! ([`DotPlan::absorb_transpose`]: the copy writes the transposed layout, or the operands'
//! free axes are read in the transposed order), and a product that reads a batched
//! product's result takes it in the scratch layout ([`DotPlan::scratch_strides`]), so
//! the copy disappears.

use crate::buffer::{self, BufferPool};
use crate::error::internal;
use crate::kernels::gemm512;
use crate::kernels::lane_dot::{self, LanePlan};
use crate::strided::StridedCopy;
use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use num_complex::{Complex32, Complex64};
use tenferro_ir::{col_major_strides, DType, Data, DotDims, TensorType};
use tenferro_runtime::Result;

/// Which matrix axis of an operand must have stride 1 for it to be read in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// Either (faer reads any column- or row-major matrix).
    Any,
    /// The rows (a column-major matrix); packed `[rows, cols, batch]`.
    Rows,
    /// The columns (a row-major matrix); packed `[cols, rows, batch]`.
    Cols,
}

/// An operand's axes: its shape, its strides in its buffer (column-major unless it is a
/// product left in its scratch layout), and which axes make the matrix rows, columns and
/// batch.
#[derive(Clone, Debug)]
struct OperandAxes {
    shape: Vec<usize>,
    strides: Vec<usize>,
    rows: Vec<usize>,
    cols: Vec<usize>,
    batch: Vec<usize>,
}

/// How one operand is read as `batch` matrices of `rows × cols`.
#[derive(Clone, Debug)]
struct OperandPlan {
    /// A packing copy into a contiguous buffer (`[rows, cols, batch]` or, for
    /// [`Unit::Cols`], `[cols, rows, batch]`), when the operand is not read in place.
    pack: Option<StridedCopy>,
    row_stride: usize,
    col_stride: usize,
    /// Offset of each batch's matrix (column-major order of the batch axes).
    batch_offsets: Vec<usize>,
}

/// The stride of `axes` (in order) flattened column-major, if they form one strided run;
/// `Some(0)` when they hold at most one element.
fn group_stride(shape: &[usize], strides: &[usize], axes: &[usize]) -> Option<usize> {
    let big: Vec<usize> = axes.iter().copied().filter(|&a| shape[a] != 1).collect();
    if big.is_empty() {
        return Some(0);
    }
    for w in big.windows(2) {
        if strides[w[1]] != strides[w[0]] * shape[w[0]] {
            return None;
        }
    }
    Some(strides[big[0]])
}

/// Offsets of every index of `axes` (column-major order) given the operand's strides.
fn offsets(shape: &[usize], strides: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut out = vec![0usize];
    for &a in axes {
        let mut next = Vec::with_capacity(out.len() * shape[a]);
        for i in 0..shape[a] {
            next.extend(out.iter().map(|o| o + i * strides[a]));
        }
        out = next;
    }
    out
}

impl OperandPlan {
    /// The plan of an operand read as `unit` asks; `empty` (the product computes nothing)
    /// leaves out the batch offsets, which `dot` then never reads.
    fn new(ax: &OperandAxes, unit: Unit, empty: bool) -> Self {
        let OperandAxes {
            shape,
            strides,
            rows: row_axes,
            cols: col_axes,
            batch: batch_axes,
        } = ax;
        let rows: usize = row_axes.iter().map(|&a| shape[a]).product();
        let cols: usize = col_axes.iter().map(|&a| shape[a]).product();
        let rs = group_stride(shape, strides, row_axes);
        let cs = group_stride(shape, strides, col_axes);
        if let (Some(rs), Some(cs)) = (rs, cs) {
            let rs = if rows <= 1 { 1 } else { rs };
            let cs = if cols <= 1 { 1 } else { cs };
            let in_place = match unit {
                Unit::Any => rs == 1 || cs == 1,
                Unit::Rows => rs == 1,
                Unit::Cols => cs == 1,
            };
            if in_place {
                return OperandPlan {
                    pack: None,
                    row_stride: rs,
                    col_stride: cs,
                    batch_offsets: if empty {
                        Vec::new()
                    } else {
                        offsets(shape, strides, batch_axes)
                    },
                };
            }
        }
        let (first, second) = if unit == Unit::Cols {
            (col_axes, row_axes)
        } else {
            (row_axes, col_axes)
        };
        let order: Vec<usize> = first
            .iter()
            .chain(second)
            .chain(batch_axes)
            .copied()
            .collect();
        let it_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
        let src: Vec<usize> = order.iter().map(|&a| strides[a]).collect();
        let batch: usize = batch_axes.iter().map(|&a| shape[a]).product();
        let (row_stride, col_stride) = if unit == Unit::Cols {
            (cols.max(1), 1)
        } else {
            (1, rows.max(1))
        };
        OperandPlan {
            pack: Some(StridedCopy::new(
                &it_shape,
                0,
                &src,
                0,
                &col_major_strides(&it_shape),
            )),
            row_stride,
            col_stride,
            batch_offsets: if empty {
                Vec::new()
            } else {
                (0..batch).map(|b| b * rows * cols).collect()
            },
        }
    }
}

/// Fewest output rows for which the GEMM's streamed operand is packed contiguous along
/// `k` (see the module documentation): below it the operand is read too few times for
/// the copy to pay.
const PACK_STREAMED_MIN_ROWS: usize = 128;

/// Whether a GEMM writing `rows × cols` over `k` packs its streamed operand when that
/// operand's contracting axis is strided. Products of one row or column, or of `k = 1`,
/// are matrix-vector products or rank-1 updates that faer runs without the GEMM.
fn pack_streamed(rows: usize, cols: usize, k: usize) -> bool {
    rows >= PACK_STREAMED_MIN_ROWS && cols >= 2 && k >= 2
}

/// How the operands of an `[m, n, k]` product are read. faer's GEMM streams its right
/// operand in place (see the module documentation): `rhs`, or `lhsᵀ` when the transpose
/// of the product is written. When the product has enough output rows to re-read that
/// operand many times, it is packed unless its contracting axis is already contiguous.
/// `gemm512` (`own`) packs both operands itself, from any strides.
fn operand_plans(
    lhs: &OperandAxes,
    rhs: &OperandAxes,
    dtype: DType,
    [m, n, k]: [usize; 3],
    transposed_out: bool,
    own: bool,
) -> (OperandPlan, OperandPlan) {
    let empty = m.saturating_mul(n) == 0 || k == 0;
    let float = !matches!(dtype, DType::I64 | DType::I32);
    let (lhs_unit, rhs_unit) = if !float || own {
        (Unit::Any, Unit::Any)
    } else if transposed_out {
        let pack = pack_streamed(n, m, k);
        (if pack { Unit::Cols } else { Unit::Any }, Unit::Any)
    } else {
        let pack = pack_streamed(m, n, k);
        (Unit::Any, if pack { Unit::Rows } else { Unit::Any })
    };
    (
        OperandPlan::new(lhs, lhs_unit, empty),
        OperandPlan::new(rhs, rhs_unit, empty),
    )
}

/// A planned `dot_general`.
#[derive(Clone, Debug)]
pub(crate) struct DotPlan {
    dtype: DType,
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    lhs_axes: OperandAxes,
    rhs_axes: OperandAxes,
    lhs: OperandPlan,
    rhs: OperandPlan,
    /// `[m, n, batch]` → `[batch, m, n]` copy, for batched products.
    unbatch: Option<StridedCopy>,
    /// The step returns the transpose of the product (`[n, m]`): the GEMM writes its
    /// `m × n` result row-major, which is the transpose in column-major order.
    transposed_out: bool,
    /// The result's rank is `lhs_free + rhs_free` (plus batch axes): how many of its axes
    /// make up `m` and how many make up `n`.
    lhs_free: usize,
    rhs_free: usize,
    /// The product runs on batch lanes, reading the operands in place and writing the
    /// result directly (no pack, no unbatch copy).
    lane: Option<LanePlan>,
    /// Each matrix product runs on `gemm512` ([`gemm512::takes`]).
    own: bool,
    /// The step returns `transpose {out_perm}` of the product (batched products: the
    /// unbatching copy writes that layout); the identity otherwise.
    out_perm: Vec<usize>,
}

impl DotPlan {
    /// The plan, or an error when its per-batch offset tables would not fit in memory.
    /// An empty product (no result element or no contraction step) plans no tables: `dot`
    /// returns or zero-fills before reading them.
    pub(crate) fn new(
        d: &DotDims,
        l: &TensorType,
        r: &TensorType,
        out: &TensorType,
    ) -> Result<DotPlan> {
        let free = |rank: usize, batch: &[usize], contract: &[usize]| -> Vec<usize> {
            (0..rank)
                .filter(|a| !batch.contains(a) && !contract.contains(a))
                .collect()
        };
        let lfree = free(l.rank(), &d.lhs_batch, &d.lhs_contract);
        let rfree = free(r.rank(), &d.rhs_batch, &d.rhs_contract);
        let size = |t: &TensorType, axes: &[usize]| axes.iter().map(|&a| t.shape[a]).product();
        let batch: usize = size(l, &d.lhs_batch);
        let m: usize = size(l, &lfree);
        let k: usize = size(l, &d.lhs_contract);
        let n: usize = size(r, &rfree);
        let lhs_axes = OperandAxes {
            shape: l.shape.clone(),
            strides: col_major_strides(&l.shape),
            rows: lfree.clone(),
            cols: d.lhs_contract.clone(),
            batch: d.lhs_batch.clone(),
        };
        let rhs_axes = OperandAxes {
            shape: r.shape.clone(),
            strides: col_major_strides(&r.shape),
            rows: d.rhs_contract.clone(),
            cols: rfree.clone(),
            batch: d.rhs_batch.clone(),
        };
        let lane = lane_plan(&lhs_axes, &rhs_axes, l.dtype, batch, [m, n, k]);
        let own = lane.is_none() && gemm512::takes(l.dtype, m, n, k);
        let empty = batch.saturating_mul(m).saturating_mul(n) == 0 || k == 0;
        if !empty {
            let need = batch.saturating_mul(2 * std::mem::size_of::<usize>());
            crate::sysmem::check_plan_fits("dot_general", "its operands' batch offsets", need)?;
        }
        let (lhs, rhs) = operand_plans(&lhs_axes, &rhs_axes, l.dtype, [m, n, k], false, own);
        let unbatch = (lane.is_none() && batch > 1 && out.numel() > 0).then(|| {
            StridedCopy::new(&[m, n, batch], 0, &[1, m, m * n], 0, &[batch, batch * m, 1])
        });
        Ok(DotPlan {
            dtype: l.dtype,
            batch,
            m,
            n,
            k,
            lhs,
            rhs,
            lhs_axes,
            rhs_axes,
            unbatch,
            transposed_out: false,
            lhs_free: lfree.len(),
            rhs_free: rfree.len(),
            lane,
            own,
            out_perm: (0..out.rank()).collect(),
        })
    }

    /// Makes the step write `transpose {perm}` of the product instead of the product,
    /// when that saves the transpose's copy; returns whether it did.
    ///
    /// - A batched product whose transpose moves the batch axes last (in order) after
    ///   the lhs free axes and the rhs free axes, one group after the other, each in any
    ///   order, writes each batch element's product straight into its block (row-major
    ///   when the rhs axes come first): nothing is copied. Any other batched product,
    ///   which goes through the `[m, n, batch]` scratch anyway, copies the scratch
    ///   straight into the transposed layout (one copy instead of two).
    /// - An unbatched product whose transpose keeps the lhs free axes together and the
    ///   rhs free axes together reads those axes in their new order (`m` and `n` are the
    ///   same products of extents), and writes its transpose row-major when the rhs axes
    ///   come first. This is declined when it would pack an operand, larger than the
    ///   result, that was read in place.
    ///
    /// Products on batch lanes, and transposes that interleave the two operands' axes,
    /// keep their transpose step.
    pub(crate) fn absorb_transpose(&mut self, perm: &[usize]) -> bool {
        let nb = self.lhs_axes.batch.len();
        let (lf, rf) = (self.lhs_free, self.rhs_free);
        if self.lane.is_some() || self.transposed_out || perm.len() != nb + lf + rf {
            return false;
        }
        let lfree = self.lhs_axes.rows.clone();
        let rfree = self.rhs_axes.cols.clone();
        let is_lhs = |a: usize| a < nb + lf;
        // The free axes of one operand, then the other's (each group in any order):
        // whether the rhs group comes first, and the lhs and rhs axes in their new order.
        let split = |q: &[usize]| -> Option<(bool, Vec<usize>, Vec<usize>)> {
            let (transposed, rows, cols) = if q[..lf].iter().all(|&a| is_lhs(a)) {
                (false, &q[..lf], &q[lf..])
            } else if q[..rf].iter().all(|&a| !is_lhs(a)) {
                (true, &q[rf..], &q[..rf])
            } else {
                return None;
            };
            let rows = rows.iter().map(|&a| lfree[a - nb]).collect();
            let cols = cols.iter().map(|&a| rfree[a - nb - lf]).collect();
            Some((transposed, rows, cols))
        };
        // Batch axes last, in order, after the two groups of free axes: each batch
        // element's GEMM writes its block of the result directly (row-major when the rhs
        // axes come first), with no scratch and no copy.
        let batch_last = self.unbatch.is_some()
            && perm[lf + rf..].iter().copied().eq(0..nb)
            && perm[..lf + rf].iter().all(|&a| a >= nb);
        if batch_last {
            if let Some((transposed, rows, cols)) = split(&perm[..lf + rf]) {
                if self.replan(transposed, rows, cols) {
                    self.unbatch = None;
                    self.out_perm = perm.to_vec();
                    return true;
                }
            }
        }
        if self.unbatch.is_some() {
            let shape = self.product_shape();
            let result: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
            let rstrides = col_major_strides(&result);
            let mut dst = vec![0usize; perm.len()];
            for (i, &a) in perm.iter().enumerate() {
                dst[a] = rstrides[i];
            }
            let order = self.scratch_order();
            let it_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
            let src = col_major_strides(&it_shape);
            let dst: Vec<usize> = order.iter().map(|&a| dst[a]).collect();
            let identity = (0..order.len()).all(|i| it_shape[i] == 1 || src[i] == dst[i]);
            self.unbatch = (!identity).then(|| StridedCopy::new(&it_shape, 0, &src, 0, &dst));
            self.out_perm = perm.to_vec();
            return true;
        }
        let q: Vec<usize> = perm.iter().copied().filter(|&a| a >= nb).collect();
        match split(&q) {
            Some((transposed, rows, cols)) => self.replan(transposed, rows, cols),
            None => false,
        }
    }

    /// Reads the lhs free axes in the order `rows` and the rhs free axes in the order
    /// `cols`, and writes each product row-major when `transposed`; declined (`false`,
    /// nothing changed) when that would pack an operand, larger than the result, that was
    /// read in place.
    fn replan(&mut self, transposed: bool, rows: Vec<usize>, cols: Vec<usize>) -> bool {
        let mut lhs_axes = self.lhs_axes.clone();
        let mut rhs_axes = self.rhs_axes.clone();
        lhs_axes.rows = rows;
        rhs_axes.cols = cols;
        let (lhs, rhs) = operand_plans(
            &lhs_axes,
            &rhs_axes,
            self.dtype,
            [self.m, self.n, self.k],
            transposed,
            self.own,
        );
        let out_numel = self.batch * self.m * self.n;
        let new_pack = |old: &OperandPlan, new: &OperandPlan, ax: &OperandAxes| {
            old.pack.is_none()
                && new.pack.is_some()
                && ax.shape.iter().product::<usize>() > out_numel
        };
        if new_pack(&self.lhs, &lhs, &lhs_axes) || new_pack(&self.rhs, &rhs, &rhs_axes) {
            return false;
        }
        (self.lhs, self.rhs, self.lhs_axes, self.rhs_axes) = (lhs, rhs, lhs_axes, rhs_axes);
        self.transposed_out = transposed;
        true
    }

    /// Extents of the product's axes: batch, lhs free, rhs free (each in the order read).
    fn product_shape(&self) -> Vec<usize> {
        (self.lhs_axes.batch.iter())
            .chain(&self.lhs_axes.rows)
            .map(|&a| self.lhs_axes.shape[a])
            .chain(self.rhs_axes.cols.iter().map(|&a| self.rhs_axes.shape[a]))
            .collect()
    }

    /// The product's axes in the order the `[m, n, batch]` scratch lays them out
    /// column-major: lhs free, rhs free, batch.
    fn scratch_order(&self) -> Vec<usize> {
        let nb = self.lhs_axes.batch.len();
        (nb..nb + self.lhs_free + self.rhs_free)
            .chain(0..nb)
            .collect()
    }

    /// Whether the product runs on batch lanes.
    pub(crate) fn on_lanes(&self) -> bool {
        self.lane.is_some()
    }

    /// The strides of the step's result (its axes as returned, after an absorbed
    /// transpose) in the `[m, n, batch]` scratch of a batched product, when it has one
    /// and copies it into another layout; `None` otherwise.
    pub(crate) fn scratch_strides(&self) -> Option<Vec<usize>> {
        self.unbatch.as_ref()?;
        let shape = self.product_shape();
        let order = self.scratch_order();
        let it_shape: Vec<usize> = order.iter().map(|&a| shape[a]).collect();
        let mut product = vec![0usize; shape.len()];
        for (&a, s) in order.iter().zip(col_major_strides(&it_shape)) {
            product[a] = s;
        }
        Some(self.out_perm.iter().map(|&a| product[a]).collect())
    }

    /// Whether the GEMMs of a batched product write the step's result directly in the
    /// `[m, n, batch]` scratch layout: kept for a reader ([`DotPlan::keep_scratch_layout`])
    /// or the layout of an absorbed transpose.
    pub(crate) fn writes_scratch_layout(&self) -> bool {
        self.batch > 1 && self.lane.is_none() && self.unbatch.is_none() && self.m * self.n > 0
    }

    /// How a batched product that writes its result directly lays it out: `[m, n,
    /// batch]`, or `[n, m, batch]` when each batch element's product is written row-major.
    pub(crate) fn direct_layout(&self) -> Option<&'static str> {
        match (self.writes_scratch_layout(), self.transposed_out) {
            (false, _) => None,
            (true, false) => Some("[m, n, batch] layout"),
            (true, true) => Some("[n, m, batch] layout"),
        }
    }

    /// Makes a batched product leave its result in the `[m, n, batch]` scratch layout
    /// ([`DotPlan::scratch_strides`]) instead of copying it: for a consumer that reads it
    /// through those strides.
    pub(crate) fn keep_scratch_layout(&mut self) {
        self.unbatch = None;
    }

    /// Makes the product read operand `side` (0 lhs, 1 rhs) through `strides` (its
    /// producer's layout) instead of column-major; packs are re-planned. Not for products
    /// on batch lanes.
    pub(crate) fn read_with_strides(&mut self, side: usize, strides: Vec<usize>) {
        if side == 0 {
            self.lhs_axes.strides = strides;
        } else {
            self.rhs_axes.strides = strides;
        }
        (self.lhs, self.rhs) = operand_plans(
            &self.lhs_axes,
            &self.rhs_axes,
            self.dtype,
            [self.m, self.n, self.k],
            self.transposed_out,
            self.own,
        );
    }

    /// Whether the product is worth the backend's threads. Matrix-vector-like products
    /// (`m` or `n` at most 4), bound by reading the matrix, from 2^18 multiply-adds (a
    /// second core's bandwidth). Other products from 2^20 (2^22 for complex: faer's
    /// GEMM), when they split into independent parts: several products of a batch, or at
    /// least two panels of [`MIN_PANEL`] rows or columns. Two threads against one (ms,
    /// `m × k × n`, Intel Xeon VM): f64 32 × 4096 × 32 (no panels: faer's own split) 0.150
    /// against 0.117, 32 × 1024 × 32 0.040-0.045 against 0.028; c64 128 × 64 × 128
    /// 0.16-0.20 against 0.10, while c64 256 × 128 × 256 gains (0.64 against 0.75). Some
    /// real products with a short contraction also run slower on two threads (512 × 4 ×
    /// 512: 0.17 against 0.07) but others of similar sizes gain (1900 × 16 × 256 in the
    /// `lm_batch_likelihood` networks, which ran 11 % slower on one), so they keep the
    /// threads.
    pub(crate) fn worth_threads(&self) -> bool {
        let f = self.flops();
        if self.m.min(self.n) <= 4 {
            return f >= 1 << 18;
        }
        let gemm_min = if self.dtype.is_complex() {
            1 << 22
        } else {
            1 << 20
        };
        let splits = self.batch >= 2 || self.m.max(self.n) >= 2 * MIN_PANEL;
        f >= gemm_min && splits
    }

    /// Multiply-adds of the product.
    pub(crate) fn flops(&self) -> usize {
        self.batch
            .saturating_mul(self.m)
            .saturating_mul(self.n)
            .saturating_mul(self.k)
    }

    pub(crate) fn kernel_name(&self) -> &'static str {
        if self.lane.is_some() {
            return "lane_gemm";
        }
        if self.own {
            return if self.transposed_out {
                "gemm512_transposed_out"
            } else {
                "gemm512"
            };
        }
        match (
            self.dtype,
            self.lhs.pack.is_some() || self.rhs.pack.is_some(),
            self.transposed_out,
        ) {
            (DType::I64, _, _) => "dot_i64",
            (DType::I32, _, _) => "dot_i32",
            (_, false, false) => "gemm",
            (_, false, true) => "gemm_transposed_out",
            (_, true, false) => "pack_gemm",
            (_, true, true) => "pack_gemm_transposed_out",
        }
    }
}

/// The lane plan of a product whose batch axes run with stride 1 in both operands (the
/// result always has them first), when `lane_dot` takes it.
fn lane_plan(
    lhs: &OperandAxes,
    rhs: &OperandAxes,
    dtype: DType,
    batch: usize,
    mnk: [usize; 3],
) -> Option<LanePlan> {
    let bytes = match dtype {
        DType::F32 => 4,
        DType::F64 => 8,
        _ => return None,
    };
    let (ls, rs) = (&lhs.strides, &rhs.strides);
    if group_stride(&lhs.shape, ls, &lhs.batch) != Some(1)
        || group_stride(&rhs.shape, rs, &rhs.batch) != Some(1)
    {
        return None;
    }
    LanePlan::new(bytes, batch, mnk, || {
        [
            offsets(&lhs.shape, ls, &lhs.rows),
            offsets(&lhs.shape, ls, &lhs.cols),
            offsets(&rhs.shape, rs, &rhs.rows),
            offsets(&rhs.shape, rs, &rhs.cols),
        ]
    })
}

/// A read-only faer view of `rows × cols` at the start of `x` with the given strides
/// (one of which is 1 or irrelevant, as planned).
fn view<T>(x: &[T], rows: usize, cols: usize, rs: usize, cs: usize) -> MatRef<'_, T> {
    if rs == 1 {
        MatRef::from_column_major_slice_with_stride(x, rows, cols, cs.max(1))
    } else {
        MatRef::from_row_major_slice_with_stride(x, rows, cols, rs)
    }
}

/// Element-by-element product of batch `b` into `c` (`m × n`, row-major when the transpose
/// is returned): `c[i, j] = Σ_q l[i, q] r[q, j]`, summed from zero in increasing `q` with
/// `add` and `mul` (the reference evaluator's order).
#[allow(clippy::too_many_arguments)]
fn naive_block<T: Copy>(
    p: &DotPlan,
    b: usize,
    l: &[T],
    r: &[T],
    c: &mut [T],
    zero: T,
    add: impl Fn(T, T) -> T,
    mul: impl Fn(T, T) -> T,
) {
    let (lr, lc) = (p.lhs.row_stride, p.lhs.col_stride);
    let (rr, rc) = (p.rhs.row_stride, p.rhs.col_stride);
    let (lo, ro) = (p.lhs.batch_offsets[b], p.rhs.batch_offsets[b]);
    c.fill(zero);
    let (si, sj) = if p.transposed_out { (p.n, 1) } else { (1, p.m) };
    for j in 0..p.n {
        for q in 0..p.k {
            let y = r[ro + q * rr + j * rc];
            let base = lo + q * lc;
            for i in 0..p.m {
                let o = &mut c[i * si + j * sj];
                *o = add(*o, mul(l[base + i * lr], y));
            }
        }
    }
}

/// Rows (or columns) of a GEMM panel handed to one thread are a multiple of this (a
/// whole number of faer's register tiles for every dtype).
const PANEL_ALIGN: usize = 16;
/// Smallest panel worth a thread of its own, in rows (or columns).
const MIN_PANEL: usize = 32;

/// An element type of faer's GEMM, and whether `gemm512` runs its products instead.
trait Gemm:
    faer::traits::ComplexField
    + Copy
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// `dst = a · c` on this thread by `gemm512`; `false` when it does not run it.
    fn own(_dst: MatMut<'_, Self>, _a: MatRef<'_, Self>, _c: MatRef<'_, Self>) -> bool {
        false
    }
}
impl Gemm for f32 {
    fn own(dst: MatMut<'_, f32>, a: MatRef<'_, f32>, c: MatRef<'_, f32>) -> bool {
        gemm512::gemm(dst, a, c)
    }
}
impl Gemm for f64 {
    fn own(dst: MatMut<'_, f64>, a: MatRef<'_, f64>, c: MatRef<'_, f64>) -> bool {
        gemm512::gemm(dst, a, c)
    }
}
impl Gemm for Complex32 {}
impl Gemm for Complex64 {}

/// `dst = a · c` for a single contraction step (`a` one column, `c` one row): each element
/// is `+0 + a_i·c_j`, the reference evaluator's sum (faer's rank-1 update stores the bare
/// product, which is -0 where the product is). `dst` has a unit stride.
fn outer<T: Gemm>(dst: MatMut<'_, T>, a: MatRef<'_, T>, c: MatRef<'_, T>) {
    if dst.row_stride() != 1 {
        return outer(dst.transpose_mut(), c.transpose(), a.transpose());
    }
    let x: Vec<T> = (0..a.nrows()).map(|i| a[(i, 0)]).collect();
    let y: Vec<T> = (0..c.ncols()).map(|j| c[(0, j)]).collect();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { outer_cols_avx2(dst, &x, &y) };
    }
    outer_cols(dst, &x, &y)
}

/// [`outer_cols`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn outer_cols_avx2<T: Gemm>(dst: MatMut<'_, T>, x: &[T], y: &[T]) {
    outer_cols(dst, x, y)
}

/// Column `j` of the column-major `dst` is `+0 + x·y[j]`.
#[inline(always)]
fn outer_cols<T: Gemm>(mut dst: MatMut<'_, T>, x: &[T], y: &[T]) {
    for (j, &yj) in y.iter().enumerate() {
        if let Some(col) = dst.as_mut().col_mut(j).try_as_col_major_mut() {
            for (o, &xi) in col.as_slice_mut().iter_mut().zip(x) {
                *o = T::default() + xi * yj;
            }
        }
    }
}

/// Whether faer may leave a -0 sum in a real product of these sizes (its small-product
/// and matrix-vector kernels start each sum from its first product; its blocked GEMM
/// starts from +0, as the reference evaluator does).
fn small_product(p: &DotPlan) -> bool {
    p.m == 1 || p.n == 1 || p.m * p.n * p.k <= SMALL_MNK
}

/// Largest `m·n·k` of faer's small-product kernel (nano-gemm), with a margin.
const SMALL_MNK: usize = 32 * 32 * 32;

/// `dst = a · c` on `threads` threads. The longer side of the result is cut into one
/// panel per thread and each panel is one sequential GEMM (the threads share the
/// read-only operands and pack their own parts). On two cores this scales 1.8× where
/// faer's own parallel GEMM, which splits every packed block across the threads and
/// synchronises between them, scales 1.6×. With `own` (decided once for the whole
/// product by [`gemm512::takes`]), every panel runs `gemm512`, whose elements do not
/// depend on the split; otherwise each result element is the same sequential faer
/// kernel's sum as in a one-thread run, and results too small to give every thread a
/// panel run on faer's own parallelism.
fn panel_matmul<T: Gemm>(
    mut dst: MatMut<'_, T>,
    a: MatRef<'_, T>,
    c: MatRef<'_, T>,
    one: T,
    threads: usize,
    own: bool,
) {
    let (m, n) = (dst.nrows(), dst.ncols());
    let seq = threads <= 1 || (own && m.max(n) < MIN_PANEL * threads);
    if seq && own && T::own(dst.as_mut(), a, c) {
        return;
    }
    if seq && a.ncols() == 1 {
        return outer(dst, a, c);
    }
    if seq {
        return matmul(dst, Accum::Replace, a, c, one, Par::Seq);
    }
    if n > m {
        // Column panels of `dst` are row panels of its transpose.
        return panel_matmul(
            dst.transpose_mut(),
            c.transpose(),
            a.transpose(),
            one,
            threads,
            own,
        );
    }
    if m < MIN_PANEL * threads {
        return matmul(dst, Accum::Replace, a, c, one, Par::rayon(threads));
    }
    let (t0, t1) = (threads / 2, threads - threads / 2);
    let h = (m * t0)
        .div_ceil(threads)
        .next_multiple_of(PANEL_ALIGN)
        .min(m);
    let (d0, d1) = dst.split_at_row_mut(h);
    let (a0, a1) = a.split_at_row(h);
    rayon::join(
        || panel_matmul(d0, a0, c, one.clone(), t0, own),
        || panel_matmul(d1, a1, c, one.clone(), t1, own),
    );
}

/// A vector: element `i` at `.0[i · .1]`.
#[derive(Clone, Copy)]
struct Strided<'a, T>(&'a [T], usize);

/// Elements per chunk of an inner product: the chunks' sums are added in order, so the
/// result does not depend on how many threads computed them.
const DOT_CHUNK: usize = 1 << 15;
/// Partial sums per chunk (element `i` goes to `i mod DOT_LANES`), added in lane order.
const DOT_LANES: usize = 16;

/// `Σ_i x_i·y_i` over `k` elements, starting from +0: chunks of [`DOT_CHUNK`] elements,
/// each summed on [`DOT_LANES`] lanes, on up to `threads` threads. (faer's path for a
/// 1 × k by k × 1 product ran at about a tenth of the memory bandwidth.)
fn inner<T: Gemm + Send + Sync>(
    x: Strided<'_, T>,
    y: Strided<'_, T>,
    k: usize,
    threads: usize,
) -> T {
    inner_pf::<T, false>(x, y, k, threads)
}

/// [`inner`]; with `PF`, the lines of `x` ahead are requested (the same value).
fn inner_pf<T: Gemm + Send + Sync, const PF: bool>(
    x: Strided<'_, T>,
    y: Strided<'_, T>,
    k: usize,
    threads: usize,
) -> T {
    let chunk =
        |c: usize| inner_part::<T, PF>(x, y, c * DOT_CHUNK, DOT_CHUNK.min(k - c * DOT_CHUNK));
    let chunks = k.div_ceil(DOT_CHUNK);
    let add = |s: T, v: T| s + v;
    if threads > 1 && chunks > 1 {
        use rayon::prelude::*;
        let parts: Vec<T> = (0..chunks).into_par_iter().map(chunk).collect();
        return parts.into_iter().fold(T::default(), add);
    }
    (0..chunks).map(chunk).fold(T::default(), add)
}

/// [`inner_chunk`], in its AVX2 build where the CPU has it.
#[inline(always)]
fn inner_part<T: Gemm, const PF: bool>(
    x: Strided<'_, T>,
    y: Strided<'_, T>,
    i0: usize,
    n: usize,
) -> T {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { inner_chunk_avx2::<T, PF>(x, y, i0, n) };
    }
    inner_chunk::<T, PF>(x, y, i0, n)
}

/// Bytes of a row-major matrix from which a matrix-vector product runs as one inner
/// product per row ([`row_dots`]) rather than on faer. Paired runs on the Xeon VM (f64,
/// one / two threads): 8 MiB 1.14x / 1.03x faer's time, 32 MiB 1.01x, 128 MiB 0.85x /
/// 0.77x; f32 at 64 MiB 1.0x.
const ROW_DOTS_MIN_BYTES: usize = 64 << 20;

/// `y_i = inner(A_i, x)` for each row of the row-major `m × k` matrix `A` (row `i` at
/// `a[i·rs ..][..k]`), rows in stripes on up to `threads` threads; each row is
/// [`inner`]'s sum (chunks of [`DOT_CHUNK`] on [`DOT_LANES`] lanes) with the matrix row
/// the one stream from memory. faer's kernel read a 4096² f64 matrix at 19 GB/s on one
/// thread of the Xeon VM, where NumPy reads 25.
fn row_dots<T: Gemm + Send + Sync>(
    (a, rs): (&[T], usize),
    [m, k]: [usize; 2],
    x: Strided<'_, T>,
    y: &mut [T],
    threads: usize,
) {
    let row = |i: usize| inner_pf::<T, true>(Strided(&a[i * rs..], 1), x, k, 1);
    let y = &mut y[..m];
    let stripe = m.div_ceil(threads.max(1)).max(16);
    if threads > 1 && m > stripe {
        use rayon::prelude::*;
        y.par_chunks_mut(stripe).enumerate().for_each(|(c, ys)| {
            for (i, o) in ys.iter_mut().enumerate() {
                *o = row(c * stripe + i);
            }
        });
    } else {
        for (i, o) in y.iter_mut().enumerate() {
            *o = row(i);
        }
    }
}

/// Rows of a matrix-vector product's result below which it stays with faer.
const MATVEC_MIN_ROWS: usize = 16;
/// Fewest result rows per thread of a matrix-vector product.
const MATVEC_STRIPE: usize = 256;

/// `y = A·x` for the column-major `m × k` matrix `A` (element `(i, q)` at `a[i·rs +
/// q·cs]`, `rs = 1`) on up to `threads` threads (stripes of rows, each computed exactly
/// as alone); `false` (nothing written) for other layouts and short columns, which stay
/// with faer. `y` gathers the columns in order, `y_i = (((+0 + A_i0·x_0) + A_i1·x_1) +
/// …)` (the reference evaluator's sum), four columns per pass over `y`. faer's kernel
/// for this layout ran 1.4x slower than JAX on 4096² f64; for a row-major `A` it is
/// faster than one inner product per row, so that layout keeps it.
fn matvec<T: Gemm + Send + Sync>(
    (a, [rs, cs]): (&[T], [usize; 2]),
    [m, k]: [usize; 2],
    x: Strided<'_, T>,
    y: &mut [T],
    threads: usize,
) -> bool {
    if m < MATVEC_MIN_ROWS {
        return false;
    }
    if rs != 1 {
        let bytes = m.saturating_mul(k).saturating_mul(std::mem::size_of::<T>());
        if cs != 1 || bytes < ROW_DOTS_MIN_BYTES {
            return false;
        }
        row_dots((a, rs), [m, k], x, y, threads);
        return true;
    }
    let y = &mut y[..m];
    let rows = |i0: usize, ys: &mut [T]| add_columns(&a[i0..], cs, k, x, ys);
    let stripe = m
        .div_ceil(threads.max(1))
        .next_multiple_of(16)
        .max(MATVEC_STRIPE);
    if threads > 1 && m > stripe {
        use rayon::prelude::*;
        y.par_chunks_mut(stripe)
            .enumerate()
            .for_each(|(c, ys)| rows(c * stripe, ys));
    } else {
        rows(0, y);
    }
    true
}

/// `y = Σ_q a[q·cs ..][..y.len()]·x_q` from +0, the columns added in order (the
/// reference evaluator's sum), four per pass over `y`; AVX2 where the CPU has it.
fn add_columns<T: Gemm>(a: &[T], cs: usize, k: usize, x: Strided<'_, T>, y: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { gather_columns_avx2(a, cs, k, x, y) };
    }
    gather_columns(a, cs, k, x, y)
}

/// [`gather_columns`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_columns_avx2<T: Gemm>(
    a: &[T],
    cs: usize,
    k: usize,
    x: Strided<'_, T>,
    y: &mut [T],
) {
    gather_columns(a, cs, k, x, y)
}

/// [`add_columns`]' loop.
#[inline(always)]
fn gather_columns<T: Gemm>(a: &[T], cs: usize, k: usize, x: Strided<'_, T>, y: &mut [T]) {
    let n = y.len();
    let col = |q: usize| &a[q * cs..q * cs + n];
    let xq = |q: usize| x.0[q * x.1];
    y.fill(T::default());
    let mut q = 0;
    while q + 4 <= k {
        let (c0, c1, c2, c3) = (col(q), col(q + 1), col(q + 2), col(q + 3));
        let (x0, x1, x2, x3) = (xq(q), xq(q + 1), xq(q + 2), xq(q + 3));
        let cols = c0.iter().zip(c1).zip(c2).zip(c3);
        for (yi, (((&a0, &a1), &a2), &a3)) in y.iter_mut().zip(cols) {
            *yi = (((*yi + a0 * x0) + a1 * x1) + a2 * x2) + a3 * x3;
        }
        q += 4;
    }
    for q in q..k {
        let (c, xv) = (col(q), xq(q));
        for (yi, &ci) in y.iter_mut().zip(c) {
            *yi = *yi + ci * xv;
        }
    }
}

/// [`inner_chunk`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn inner_chunk_avx2<T: Gemm, const PF: bool>(
    x: Strided<'_, T>,
    y: Strided<'_, T>,
    i0: usize,
    n: usize,
) -> T {
    inner_chunk::<T, PF>(x, y, i0, n)
}

/// Elements `i0 .. i0 + n` of the inner product, on [`DOT_LANES`] lanes added in order;
/// with `PF`, the lines of `x` ahead are requested ([`super::prefetch_ahead`]: `x` is the
/// one stream from memory, `y` stays in cache).
#[inline(always)]
fn inner_chunk<T: Gemm, const PF: bool>(
    x: Strided<'_, T>,
    y: Strided<'_, T>,
    i0: usize,
    n: usize,
) -> T {
    let mut acc = [T::default(); DOT_LANES];
    if x.1 == 1 && y.1 == 1 {
        let (a, b) = (&x.0[i0..i0 + n], &y.0[i0..i0 + n]);
        let (ac, bc) = (a.chunks_exact(DOT_LANES), b.chunks_exact(DOT_LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (a, b) in ac.zip(bc) {
            if PF {
                for line in a.chunks(super::line_of(a)) {
                    super::prefetch_ahead(line.as_ptr());
                }
            }
            for l in 0..DOT_LANES {
                acc[l] = acc[l] + a[l] * b[l];
            }
        }
        for (l, (&a, &b)) in ar.iter().zip(br).enumerate() {
            acc[l] = acc[l] + a * b;
        }
    } else {
        for i in 0..n {
            let q = i0 + i;
            acc[i % DOT_LANES] = acc[i % DOT_LANES] + x.0[q * x.1] * y.0[q * y.1];
        }
    }
    acc.into_iter().fold(T::default(), |s, v| s + v)
}

// The kernels read `l` and `r` as planned: the operands themselves, or their packs.
macro_rules! gemm_fn {
    ($name:ident, $t:ty, $one:expr, $finite:expr, $complex:expr) => {
        fn $name(p: &DotPlan, l: &[$t], r: &[$t], out: &mut [$t], par: Par) {
            let mn = p.m * p.n;
            let one = |b: usize, o: &mut [$t], par: Par| {
                let (lb, rb) = (&l[p.lhs.batch_offsets[b]..], &r[p.rhs.batch_offsets[b]..]);
                if mn == 1 {
                    let x = Strided(lb, p.lhs.col_stride);
                    let y = Strided(rb, p.rhs.row_stride);
                    o[0] = inner(x, y, p.k, par.degree());
                    return;
                }
                // A matrix times a vector (`n = 1`), or a vector times a matrix (`m = 1`,
                // as the transposed matrix times the vector).
                let mv = if p.n == 1 {
                    let x = Strided(rb, p.rhs.row_stride);
                    matvec(
                        (lb, [p.lhs.row_stride, p.lhs.col_stride]),
                        [p.m, p.k],
                        x,
                        o,
                        par.degree(),
                    )
                } else if p.m == 1 {
                    let x = Strided(lb, p.lhs.col_stride);
                    matvec(
                        (rb, [p.rhs.col_stride, p.rhs.row_stride]),
                        [p.n, p.k],
                        x,
                        o,
                        par.degree(),
                    )
                } else {
                    false
                };
                if mv {
                    return;
                }
                let a = view(lb, p.m, p.k, p.lhs.row_stride, p.lhs.col_stride);
                let c = view(rb, p.k, p.n, p.rhs.row_stride, p.rhs.col_stride);
                let dst = if p.transposed_out {
                    MatMut::from_row_major_slice_mut(&mut *o, p.m, p.n)
                } else {
                    MatMut::from_column_major_slice_mut(&mut *o, p.m, p.n)
                };
                panel_matmul(dst, a, c, $one, par.degree(), p.own);
                // faer scales complex products by `alpha = 1 + 0i`, which turns an
                // infinite part into NaN (`inf · 0`); a block with a non-finite element
                // is computed again element by element, as IEEE and the reference
                // evaluator give it. Real GEMMs are exact under `· 1`.
                if !o.iter().all($finite) {
                    // Exactly the reference evaluator's sums, from +0.
                    naive_block(p, b, l, r, o, <$t>::default(), |x, y| x + y, |x, y| x * y);
                } else if !p.own && ($complex || small_product(p)) {
                    // Every element is +0 plus its products' sum (the reference
                    // evaluator's), so never -0: where faer may have kept a -0 sum (complex
                    // products, small real ones), `+ 0` turns it into +0 and leaves every
                    // other value as it is.
                    o.iter_mut().for_each(|x| *x = <$t>::default() + *x);
                }
            };
            match par {
                // Several products: one thread per product (each GEMM sequential, so the
                // bits are those of a one-thread run), instead of splitting every small
                // GEMM across the threads.
                Par::Rayon(_) if p.batch > 1 => {
                    use rayon::prelude::*;
                    out.par_chunks_mut(mn)
                        .enumerate()
                        .for_each(|(b, o)| one(b, o, Par::Seq));
                }
                _ => {
                    for (b, o) in out.chunks_mut(mn).enumerate() {
                        one(b, o, par);
                    }
                }
            }
        }
    };
}
gemm_fn!(gemm_f32, f32, 1.0f32, |_: &f32| true, false);
gemm_fn!(gemm_f64, f64, 1.0f64, |_: &f64| true, false);
gemm_fn!(
    gemm_c32,
    Complex32,
    Complex32::new(1.0, 0.0),
    |z: &Complex32| z.is_finite(),
    true
);
gemm_fn!(
    gemm_c64,
    Complex64,
    Complex64::new(1.0, 0.0),
    |z: &Complex64| z.is_finite(),
    true
);

macro_rules! int_dot_fn {
    ($name:ident, $t:ty) => {
        /// Integer product: `out[i + m j] = Σ_p l[i, p] r[p, j]`, wrapping.
        fn $name(p: &DotPlan, l: &[$t], r: &[$t], out: &mut [$t], _par: Par) {
            let mn = p.m * p.n;
            for b in 0..p.batch {
                let c = &mut out[b * mn..(b + 1) * mn];
                naive_block(p, b, l, r, c, 0, <$t>::wrapping_add, <$t>::wrapping_mul);
            }
        }
    };
}
int_dot_fn!(dot_i64, i64);
int_dot_fn!(dot_i32, i32);

/// The operand's pack, when planned: a pooled buffer of the pack's length (which the copy
/// overwrites entirely), filled by up to `par`'s threads.
fn pack(plan: &OperandPlan, x: &Data, pool: &mut BufferPool, par: Par) -> Option<Data> {
    let c = plan.pack.as_ref()?;
    let n = c.numel();
    let dtype = x.dtype();
    let mut d = pool
        .take(dtype, n)
        .unwrap_or_else(|| buffer::fresh_scratch(dtype, n));
    let parts = c.parts(par.degree());
    match (x, &mut d) {
        (Data::F32(s), Data::F32(t)) => c.run_parts(s, t, parts),
        (Data::F64(s), Data::F64(t)) => c.run_parts(s, t, parts),
        (Data::C32(s), Data::C32(t)) => c.run_parts(s, t, parts),
        (Data::C64(s), Data::C64(t)) => c.run_parts(s, t, parts),
        (Data::I32(s), Data::I32(t)) => c.run_parts(s, t, parts),
        (Data::I64(s), Data::I64(t)) => c.run_parts(s, t, parts),
        // No product of this dtype: `dot` rejects it.
        _ => {}
    }
    Some(d)
}

/// `dot_general` of `l` and `r` as planned, into `out` (of the result's dtype and length,
/// contents unspecified). Every element of `out` is written: the GEMM replaces (does not
/// accumulate into) its destination, which covers `out` (or the `[m, n, batch]` scratch
/// that the unbatching copy then copies onto every element of `out`); an empty
/// contraction (`k = 0`) fills `out` with zeros.
pub(crate) fn dot(
    name: &str,
    p: &DotPlan,
    l: &Data,
    r: &Data,
    out: &mut Data,
    pool: &mut BufferPool,
    par: Par,
) -> Result<()> {
    let total = p.batch * p.m * p.n;
    if out.len() != total {
        return Err(internal(name, "result buffer of the wrong length"));
    }
    if total == 0 {
        return Ok(());
    }
    if let Some(lp) = &p.lane {
        let threads = par.degree();
        match (l, r, out) {
            (Data::F32(u), Data::F32(v), Data::F32(o)) => {
                lane_dot::lane_gemm_f32(lp, u, v, o, threads)
            }
            (Data::F64(u), Data::F64(v), Data::F64(o)) => {
                lane_dot::lane_gemm_f64(lp, u, v, o, threads)
            }
            _ => return Err(internal(name, "lane product on operands of another dtype")),
        }
        return Ok(());
    }
    macro_rules! run {
        ($variant:ident, $u:ident, $v:ident, $o:expr, $zero:expr, $kernel:expr) => {{
            if p.k == 0 {
                $o.fill($zero);
                return Ok(());
            }
            let lbuf = pack(&p.lhs, l, pool, par);
            let rbuf = pack(&p.rhs, r, pool, par);
            let $u: &[_] = match &lbuf {
                Some(Data::$variant(t)) => t,
                _ => $u,
            };
            let $v: &[_] = match &rbuf {
                Some(Data::$variant(t)) => t,
                _ => $v,
            };
            match &p.unbatch {
                Some(c) => {
                    // The GEMM writes all `total` elements of the scratch before the copy
                    // reads them.
                    let mut tmp = pool
                        .take(p.dtype, total)
                        .unwrap_or_else(|| buffer::fresh_scratch(p.dtype, total));
                    if let Data::$variant(t) = &mut tmp {
                        $kernel(p, $u, $v, t, par);
                        c.run_parts(t, $o, c.parts(par.degree()));
                    }
                    pool.put(tmp);
                }
                None => $kernel(p, $u, $v, $o, par),
            }
            for b in [lbuf, rbuf].into_iter().flatten() {
                pool.put(b);
            }
        }};
    }
    match (l, r, out) {
        (Data::F32(u), Data::F32(v), Data::F32(o)) => run!(F32, u, v, o, 0.0f32, gemm_f32),
        (Data::F64(u), Data::F64(v), Data::F64(o)) => run!(F64, u, v, o, 0.0f64, gemm_f64),
        (Data::C32(u), Data::C32(v), Data::C32(o)) => {
            run!(C32, u, v, o, Complex32::new(0.0, 0.0), gemm_c32)
        }
        (Data::C64(u), Data::C64(v), Data::C64(o)) => {
            run!(C64, u, v, o, Complex64::new(0.0, 0.0), gemm_c64)
        }
        (Data::I32(u), Data::I32(v), Data::I32(o)) => run!(I32, u, v, o, 0i32, dot_i32),
        (Data::I64(u), Data::I64(v), Data::I64(o)) => run!(I64, u, v, o, 0i64, dot_i64),
        _ => {
            return Err(internal(
                name,
                "operands of unsupported or different dtypes",
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (a Weyl sequence).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let step = 0.754_877_666_246_692_7;
        (0..n)
            .map(|i| ((i as f64 + seed as f64) * step).fract() * 2.0 - 1.0)
            .collect()
    }

    /// The inner product over several chunks, contiguous and strided: the sequential sum
    /// within rounding, and the same bits on one thread and two.
    #[test]
    fn inner_products_match_the_sum_and_the_thread_counts() {
        let k = 2 * DOT_CHUNK + 37;
        for stride in [1, 3] {
            let (x, y) = (noise(k * stride, 1), noise(k * stride, 2));
            let want: f64 = (0..k).map(|i| x[i * stride] * y[i * stride]).sum();
            let scale: f64 = (0..k).map(|i| (x[i * stride] * y[i * stride]).abs()).sum();
            let (a, b) = (Strided(&x[..], stride), Strided(&y[..], stride));
            let one = inner(a, b, k, 1);
            assert!(
                (one - want).abs() <= 1e-13 * scale,
                "stride {stride}: {one} vs {want}"
            );
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            let two = pool.install(|| inner(a, b, k, 2));
            assert_eq!(one.to_bits(), two.to_bits(), "stride {stride}");
            let z: Vec<Complex64> = x
                .iter()
                .zip(&y)
                .map(|(&r, &i)| Complex64::new(r, i))
                .collect();
            let zc = inner(Strided(&z[..], stride), Strided(&z[..], stride), k, 1);
            let zw: Complex64 = (0..k).map(|i| z[i * stride] * z[i * stride]).sum();
            assert!(
                (zc - zw).norm() <= 1e-13 * 2.0 * scale.max(1.0),
                "c64 stride {stride}"
            );
        }
        // A sum of -0 products is +0, as every dot_general sum (also in `matvec`).
        let neg = vec![-0.0f64; 40];
        let one = vec![1.0f64; 40];
        let d = inner(Strided(&neg[..], 1), Strided(&one[..], 1), 40, 1);
        assert!(d == 0.0 && d.is_sign_positive());
    }

    /// A column-major matrix times a vector: every element the sequential sum from +0
    /// (the reference evaluator's bits), on one thread and in stripes on two; other
    /// layouts and short columns are left to faer.
    #[test]
    fn matrix_vector_products_sum_columns_in_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for (m, k, ld) in [(600, 7, 600), (37, 12, 40), (1030, 64, 1031)] {
            let a = noise(ld * k, 3);
            let xs = noise(2 * k, 4);
            let x = Strided(&xs[..], 2);
            let want: Vec<f64> = (0..m)
                .map(|i| (0..k).fold(0.0, |s, q| s + a[i + q * ld] * xs[2 * q]))
                .collect();
            for threads in [1, 2] {
                let mut y = vec![f64::NAN; m];
                let ran = pool.install(|| matvec((&a[..], [1, ld]), [m, k], x, &mut y, threads));
                assert!(ran);
                let bits = |v: &[f64]| v.iter().map(|z| z.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&y), bits(&want), "{m} x {k}, {threads} threads");
            }
        }
        let a = noise(64, 5);
        let mut y = vec![0.0; 8];
        assert!(!matvec(
            (&a[..], [1, 8]),
            [8, 8],
            Strided(&a[..], 1),
            &mut y,
            1
        ));
        assert!(!matvec(
            (&a[..], [8, 1]),
            [16, 4],
            Strided(&a[..], 1),
            &mut y,
            1
        ));
        let neg = vec![-0.0f64; 64];
        let mut y = vec![f64::NAN; 16];
        assert!(matvec(
            (&neg[..], [1, 16]),
            [16, 4],
            Strided(&neg[..], 0),
            &mut y,
            1
        ));
        assert!(y.iter().all(|v| *v == 0.0 && v.is_sign_positive()));
    }

    /// A large row-major matrix times a vector: one inner product per row, each [`inner`]'s
    /// bits (the prefetching build changes no value), within rounding of the sequential
    /// sum, the same on one thread and in stripes on two, f64 and c64; a smaller one stays
    /// with faer.
    #[test]
    fn large_row_major_matrix_vector_products_run_one_inner_product_per_row() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let (m, k, ld) = (70, 120_000, 120_003);
        let a = noise(ld * m, 6);
        let xs = noise(k, 7);
        let x = Strided(&xs[..], 1);
        let bits = |v: &[f64]| v.iter().map(|z| z.to_bits()).collect::<Vec<_>>();
        let want: Vec<f64> = (0..m)
            .map(|i| inner(Strided(&a[i * ld..], 1), x, k, 1))
            .collect();
        for (i, w) in want.iter().enumerate() {
            let seq = (0..k).fold(0.0, |s, q| s + a[i * ld + q] * xs[q]);
            assert!((w - seq).abs() <= 1e-12 * k as f64, "row {i}: {w} vs {seq}");
        }
        for threads in [1, 2] {
            let mut y = vec![f64::NAN; m];
            let ran = pool.install(|| matvec((&a[..], [ld, 1]), [m, k], x, &mut y, threads));
            assert!(ran);
            assert_eq!(bits(&y), bits(&want), "{threads} threads");
        }
        let z: Vec<Complex64> = a[..ld * 35]
            .iter()
            .zip(a[ld * 35..ld * 70].iter())
            .map(|(&r, &i)| Complex64::new(r, i))
            .collect();
        let zx: Vec<Complex64> = xs.iter().map(|&r| Complex64::new(r, 0.5 - r)).collect();
        let mut y = vec![Complex64::new(f64::NAN, 0.0); 35];
        assert!(matvec(
            (&z[..], [ld, 1]),
            [35, k],
            Strided(&zx[..], 1),
            &mut y,
            1
        ));
        for (i, v) in y.iter().enumerate() {
            let w = inner(Strided(&z[i * ld..], 1), Strided(&zx[..], 1), k, 1);
            assert!(v.re.to_bits() == w.re.to_bits() && v.im.to_bits() == w.im.to_bits());
        }
        let mut y = vec![0.0; 64];
        assert!(!matvec((&a[..64 * 64], [64, 1]), [64, 64], x, &mut y, 1));
    }
}
