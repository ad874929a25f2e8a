//! Run-time kernels of the linalg primitives: each takes host [`Tensor`]s (matrices on the
//! first two axes, batch axes after them, column-major) and runs its batch elements
//! through one shared loop, [`for_each_batch`]: inside a rayon pool of more than one
//! thread (the CPU backend's) a large enough batch runs as parallel chunks, each with
//! its own faer scratch; otherwise, and always outside a pool, sequentially. Each matrix
//! is factored by faer with explicit parallelism (`Par::Seq` for small matrices and
//! inside parallel batches, the calling pool's threads for large ones; never faer's
//! global setting), except LU of orders up to [`SMALL_LU_MAX`], done by a plain
//! elimination here.
//! Value errors (NaN or infinite input, indefinite, singular, no convergence) are
//! [`RuntimeError::Kernel`]s naming the op, the reason and the first failing batch
//! element, the same at every thread count.

use crate::attrs::{
    Cholesky, EigDistinct, Eigen, FullPivPerm, LinalgOp, Lu, Qr, Solve, Svd, TriangularSolve,
};
use crate::ops::{
    CHOLESKY, EIG, EIGH, EIG_DISTINCT, FULL_PIV_PERM, LU, QR, SOLVE, SVD, TRIANGULAR_SOLVE,
};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::triangular_solve as tri;
use faer::traits::ComplexField;
use faer::{Conj, MatMut, MatRef, Par};
use num_complex::{Complex32, Complex64};
use rayon::iter::{IntoParallelIterator, ParallelIterator};
use std::sync::atomic::{AtomicUsize, Ordering};
use tenferro_ir::{DType, Element, ExtensionOp, Tensor};
use tenferro_runtime::{ExtensionRegistry, Result, RuntimeError};

/// A dtype the kernels run on: f32, f64, c32, c64.
pub(crate) trait Scalar: Element + ComplexField + Copy {
    /// The real dtype's element (f32 for c32, ...).
    type R: Scalar;
    fn modulus(self) -> f64;
    fn conj_s(self) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_real(self) -> Self::R;
    fn mul_s(self, o: Self) -> Self;
    /// `self / |self|` (1 at 0).
    fn phase(self) -> Self;
    /// `self - o`.
    fn sub_s(self, o: Self) -> Self;
    /// `self / o`, without overflow in the intermediate `|o|²` of complex division.
    fn div_s(self, o: Self) -> Self;
    /// `|re| + |im|`, the pivot size of LAPACK's and faer's partial pivoting.
    fn abs1(self) -> f64;
    /// `true` if neither part is NaN or infinite.
    fn is_finite_s(self) -> bool;
    /// The range `[small, big]` of max-abs entries that the iterative factorizations
    /// (SVD, Hermitian eigensolver) handle without overflow or underflow in their
    /// intermediate sums of squares: LAPACK's `sqrt(safe_min) / eps` and its reciprocal.
    fn safe_range() -> (f64, f64);
}

macro_rules! real_scalar {
    ($t:ty) => {
        impl Scalar for $t {
            type R = $t;
            fn modulus(self) -> f64 {
                (self as f64).abs()
            }
            fn conj_s(self) -> Self {
                self
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_real(self) -> $t {
                self
            }
            fn mul_s(self, o: Self) -> Self {
                self * o
            }
            fn phase(self) -> Self {
                if self < 0.0 {
                    -1.0
                } else {
                    1.0
                }
            }
            fn sub_s(self, o: Self) -> Self {
                self - o
            }
            fn div_s(self, o: Self) -> Self {
                self / o
            }
            fn abs1(self) -> f64 {
                (self as f64).abs()
            }
            fn is_finite_s(self) -> bool {
                self.is_finite()
            }
            fn safe_range() -> (f64, f64) {
                let small = (<$t>::MIN_POSITIVE as f64).sqrt() / <$t>::EPSILON as f64;
                (small, 1.0 / small)
            }
        }
    };
}
real_scalar!(f32);
real_scalar!(f64);

macro_rules! complex_scalar {
    ($t:ty, $r:ty) => {
        impl Scalar for $t {
            type R = $r;
            fn modulus(self) -> f64 {
                (self.norm()) as f64
            }
            fn conj_s(self) -> Self {
                self.conj()
            }
            fn from_f64(v: f64) -> Self {
                <$t>::new(v as $r, 0.0)
            }
            fn to_real(self) -> $r {
                self.re
            }
            fn mul_s(self, o: Self) -> Self {
                self * o
            }
            fn phase(self) -> Self {
                let n = self.norm();
                if n == 0.0 {
                    <$t>::new(1.0, 0.0)
                } else {
                    self / n
                }
            }
            fn sub_s(self, o: Self) -> Self {
                self - o
            }
            fn div_s(self, o: Self) -> Self {
                // Scale the divisor to order one first so |o|² cannot overflow.
                let k = o.re.abs() + o.im.abs();
                let (a, b) = (self / k, o / k);
                a * b.conj() / b.norm_sqr()
            }
            fn abs1(self) -> f64 {
                (self.re.abs() + self.im.abs()) as f64
            }
            fn is_finite_s(self) -> bool {
                self.re.is_finite() && self.im.is_finite()
            }
            fn safe_range() -> (f64, f64) {
                <$r as Scalar>::safe_range()
            }
        }
    };
}
complex_scalar!(Complex32, f32);
complex_scalar!(Complex64, f64);

/// Runs `$body` with `$T` bound to the element type of a float / complex dtype.
macro_rules! with_scalar {
    ($op:expr, $dt:expr, $T:ident => $body:expr) => {
        match $dt {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F64 => {
                type $T = f64;
                $body
            }
            DType::C32 => {
                type $T = Complex32;
                $body
            }
            DType::C64 => {
                type $T = Complex64;
                $body
            }
            other => Err(RuntimeError::kernel(
                $op,
                format!("dtype {other} is not supported (need f32, f64, c32 or c64)"),
            )),
        }
    };
}

/// Registers the kernel of every linalg primitive on `reg`. Pass it to
/// `GraphExecutor::register_extension`; executors without it report the missing op.
pub fn register_runtime(reg: &mut ExtensionRegistry) -> Result<()> {
    reg.register(CHOLESKY, guarded(cholesky_kernel))?;
    reg.register(TRIANGULAR_SOLVE, guarded(triangular_solve_kernel))?;
    reg.register(SOLVE, guarded(solve_kernel))?;
    reg.register(LU, guarded(lu_kernel))?;
    reg.register(QR, guarded(qr_kernel))?;
    reg.register(SVD, guarded(svd_kernel))?;
    reg.register(EIGH, guarded(eigh_kernel))?;
    reg.register(EIG, guarded(eig_kernel))?;
    reg.register(EIG_DISTINCT, guarded(eig_distinct_kernel))?;
    reg.register(FULL_PIV_PERM, guarded(full_piv_perm_kernel))?;
    Ok(())
}

type Kernel = fn(&ExtensionOp, &[&Tensor]) -> Result<Vec<Tensor>>;

/// Wraps a kernel: the op's attributes must decode (see [`crate::attrs`]); when every
/// result is empty (a 0×n matrix, an empty batch) there is
/// nothing to compute, so faer is not called; and a panic inside faer on an input it does
/// not expect becomes an error naming the op instead of crossing the public API.
fn guarded(
    kernel: Kernel,
) -> impl Fn(&ExtensionOp, &[&Tensor]) -> Result<Vec<Tensor>> + Send + Sync {
    move |op, args| {
        LinalgOp::decode(op)?;
        if op.results.iter().all(|t| t.numel() == 0) {
            return Ok(op.results.iter().map(Tensor::zeros).collect());
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel(op, args))).unwrap_or_else(
            |_| {
                Err(RuntimeError::kernel(
                    &op.name,
                    format!(
                        "the factorization failed on operands {:?}",
                        args.iter().map(|a| a.ty().to_string()).collect::<Vec<_>>()
                    ),
                ))
            },
        )
    }
}

/// Matrix dimensions and batch count of an operand `[m, n, batch..]`.
fn mat_dims(op: &str, what: &str, t: &Tensor) -> Result<(usize, usize, usize)> {
    let s = t.shape();
    if s.len() < 2 {
        return Err(RuntimeError::kernel(
            op,
            format!("{what} of shape {s:?} is not a (batch of) matrices"),
        ));
    }
    Ok((s[0], s[1], s[2..].iter().product()))
}

/// `(n, batch count)` of a (batch of) square matrices; an error naming `op` otherwise.
fn square_dims(op: &str, a: &Tensor) -> Result<(usize, usize)> {
    let (m, n, nb) = mat_dims(op, "operand", a)?;
    if m != n {
        return Err(RuntimeError::kernel(
            op,
            format!("operand {} is not square ({m} x {n})", a.ty()),
        ));
    }
    Ok((n, nb))
}

fn arity(op: &str, args: &[&Tensor], n: usize) -> Result<()> {
    if args.len() != n {
        return Err(RuntimeError::kernel(
            op,
            format!("expected {n} operands, got {}", args.len()),
        ));
    }
    Ok(())
}

fn batch_note(nb: usize, b: usize) -> String {
    if nb > 1 {
        format!(" (batch element {b})")
    } else {
        String::new()
    }
}

/// Which entries `(i, j)` of a matrix operand a kernel reads.
#[derive(Clone, Copy)]
enum Reads {
    /// Every entry.
    All,
    /// The lower triangle with the diagonal.
    Lower,
    /// The upper triangle with the diagonal.
    Upper,
    /// The strict lower triangle (a unit lower triangular matrix).
    StrictLower,
    /// The strict upper triangle (a unit upper triangular matrix).
    StrictUpper,
}

impl Reads {
    fn reads(self, i: usize, j: usize) -> bool {
        match self {
            Reads::All => true,
            Reads::Lower => i >= j,
            Reads::Upper => i <= j,
            Reads::StrictLower => i > j,
            Reads::StrictUpper => i < j,
        }
    }
}

/// Checks that the entries a kernel reads of batch element `b` of the `m x n` matrices
/// `t` are finite. NaN or infinity is an error naming the op, the operand (`what` and its
/// type), the first such entry and its batch element: no factorization gives a
/// meaningful result for it, and faer would otherwise report it as indefinite, singular
/// or not converging, or return NaN without an error.
fn check_finite<T: Scalar>(op: &str, what: &str, t: &Tensor, reads: Reads, b: usize) -> Result<()> {
    let (m, n, nb) = mat_dims(op, what, t)?;
    let blk = &t.as_slice::<T>()?[b * m * n..(b + 1) * m * n];
    if all_finite(blk) {
        return Ok(());
    }
    for j in 0..n {
        for i in 0..m {
            if !blk[i + j * m].is_finite_s() && reads.reads(i, j) {
                let at = if nb > 1 {
                    format!("entry ({i}, {j}) of batch element {b}")
                } else {
                    format!("entry ({i}, {j})")
                };
                return Err(RuntimeError::kernel(
                    op,
                    format!("{what} {} contains NaN or infinity ({at})", t.ty()),
                ));
            }
        }
    }
    Ok(())
}

/// The power of two `e` by which a matrix with largest entry modulus `amax` is divided
/// before an iterative factorization, so that its entries are of order one; `None` when
/// `amax` is already in the safe range of `T` (or zero). Scaling by a power of two is
/// exact, so the factorization of the scaled matrix is that of the original up to the
/// exact factor `2^e` on singular values / eigenvalues.
fn scaling_exponent<T: Scalar>(amax: f64) -> Option<i32> {
    let (small, big) = T::safe_range();
    if amax == 0.0 || (small..=big).contains(&amax) {
        None
    } else {
        Some(amax.log2().floor() as i32)
    }
}

/// `blk` as a column-major `rows × cols` matrix, divided by `2^e` (in the reused buffer
/// `scaled`) when `exp` is `Some(e)`, read in place otherwise.
fn scaled_matrix<'a, T: Scalar>(
    blk: &'a [T],
    rows: usize,
    cols: usize,
    exp: Option<i32>,
    scaled: &'a mut Vec<T>,
) -> MatRef<'a, T> {
    match exp {
        None => MatRef::from_column_major_slice(blk, rows, cols),
        Some(e) => {
            scaled.clear();
            scaled.extend_from_slice(blk);
            scale_pow2(scaled, -e);
            MatRef::from_column_major_slice(scaled, rows, cols)
        }
    }
}

/// Multiplies every entry of `xs` by `2^e`, in steps small enough that each factor is
/// representable in `T` (f32's exponent range is ±126).
fn scale_pow2<T: Scalar>(xs: &mut [T], e: i32) {
    let mut rest = e;
    while rest != 0 {
        let step = rest.clamp(-100, 100);
        let f = T::from_f64(2f64.powi(step));
        for x in xs.iter_mut() {
            *x = x.mul_s(f);
        }
        rest -= step;
    }
}

/// The number of threads of the rayon pool the kernel runs in; 1 outside any pool (a
/// one-thread backend runs kernels on the caller's thread, and rayon's global pool would
/// otherwise spread a "one thread" run over every core).
fn pool_threads() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Parallelism for one factorization of order `n`: the calling rayon pool's threads (the
/// CPU backend runs extension kernels inside its own pool, so this follows
/// `CpuBackend::with_threads`) for matrices large enough to gain, sequential otherwise
/// and outside any pool (see [`pool_threads`]).
fn par_for(n: usize) -> Par {
    let threads = pool_threads();
    if n >= PAR_MIN_ORDER && threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

/// The smallest order whose factorizations run on several threads (see [`par_for`]).
const PAR_MIN_ORDER: usize = 192;

/// The smallest batch work (batch count times the cost of one element, about `n³`) whose
/// batch elements run in parallel (see [`for_each_batch`]): 2^14 is 32 eighs of order 8
/// (about 0.15 ms) or 28 solves of order 8 with one right-hand side (about 10 µs), well
/// above the few µs a rayon task costs. Not calibrated against a two-core run (the
/// machine it was written on offered no idle second core).
const PAR_BATCH_MIN_WORK: usize = 1 << 14;

/// The smallest work (elements times their cost) of one parallel task of
/// [`for_each_batch`].
const PAR_TASK_MIN_WORK: usize = 1 << 12;

/// The outputs of a batched kernel, split in lockstep between tasks and batch elements.
trait Outs: Send + Sized {
    /// `(the first k batch elements, the rest)`.
    fn split(self, k: usize) -> (Self, Self);
}

/// One output buffer holding `per` values per batch element.
struct Out<'a, T> {
    data: &'a mut [T],
    per: usize,
}

/// The output buffer `v` with `per` values per batch element.
fn out<T>(v: &mut [T], per: usize) -> Out<'_, T> {
    Out { data: v, per }
}

impl<T: Send> Outs for Out<'_, T> {
    fn split(self, k: usize) -> (Self, Self) {
        let (a, b) = self.data.split_at_mut((k * self.per).min(self.data.len()));
        (out(a, self.per), out(b, self.per))
    }
}

impl<T> std::ops::Deref for Out<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.data
    }
}

impl<T> std::ops::DerefMut for Out<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.data
    }
}

impl Outs for () {
    fn split(self, _k: usize) -> (Self, Self) {
        ((), ())
    }
}

macro_rules! outs_tuple {
    ($($o:ident $i:tt),+) => {
        impl<$($o: Outs),+> Outs for ($($o,)+) {
            fn split(self, k: usize) -> (Self, Self) {
                let parts = ($(self.$i.split(k),)+);
                (($(parts.$i.0,)+), ($(parts.$i.1,)+))
            }
        }
    };
}
outs_tuple!(A 0);
outs_tuple!(A 0, B 1);
outs_tuple!(A 0, B 1, C 2);
outs_tuple!(A 0, B 1, C 2, D 3);

/// Runs `body(work, par, b, outs_b)` for every batch element `b` in `0..nb`, where
/// `outs_b` is element `b`'s part of `outs`, `work` a per-task workspace made by
/// `init(par)` (faer scratch, temporaries) and `par` the parallelism of one
/// factorization. Inside a rayon pool of more than one thread, a batch whose work
/// (`nb * cost`, `cost` about the flops of one element) is large enough runs as
/// contiguous chunks of elements in parallel, each factorization sequential (unless the
/// batch is smaller than the pool and the matrices large: then the factorizations are
/// parallel, see [`par_for`] of `order`). Elements are independent and run the same code
/// either way, so results do not depend on the thread count. The error returned is that
/// of the first failing element, as in a sequential loop.
fn for_each_batch<O: Outs, S>(
    nb: usize,
    order: usize,
    cost: usize,
    outs: O,
    init: impl Fn(Par) -> S + Sync,
    body: impl Fn(&mut S, Par, usize, O) -> Result<()> + Sync,
) -> Result<()> {
    let threads = pool_threads();
    let cost = cost.max(1);
    let parallel = threads > 1
        && nb > 1
        && nb.saturating_mul(cost) >= PAR_BATCH_MIN_WORK
        && (order < PAR_MIN_ORDER || nb >= threads);
    let run = |start: usize, len: usize, mut outs: O, first_err: &AtomicUsize, par: Par| {
        let mut work = init(par);
        for b in start..start + len {
            if first_err.load(Ordering::Relaxed) < b {
                // An earlier element failed: its error is the one reported.
                return Ok(());
            }
            let (one, rest) = outs.split(1);
            outs = rest;
            if let Err(e) = body(&mut work, par, b, one) {
                first_err.fetch_min(b, Ordering::Relaxed);
                return Err((b, e));
            }
        }
        Ok(())
    };
    let first_err = AtomicUsize::new(usize::MAX);
    if !parallel {
        return run(0, nb, outs, &first_err, par_for(order)).map_err(|(_, e)| e);
    }
    // Several chunks per thread balance uneven elements and a shared machine.
    let chunk = nb
        .div_ceil(threads * 4)
        .max(PAR_TASK_MIN_WORK.div_ceil(cost))
        .min(nb);
    let mut tasks = Vec::with_capacity(nb.div_ceil(chunk));
    let mut rest = outs;
    let mut start = 0;
    while start < nb {
        let len = chunk.min(nb - start);
        let (part, r) = rest.split(len);
        tasks.push((start, len, part));
        rest = r;
        start += len;
    }
    let results: Vec<std::result::Result<(), (usize, RuntimeError)>> = tasks
        .into_par_iter()
        .map(|(start, len, part)| run(start, len, part, &first_err, Par::Seq))
        .collect();
    match results
        .into_iter()
        .filter_map(|r| r.err())
        .min_by_key(|(b, _)| *b)
    {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

fn tensor<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
    Ok(Tensor::from_vec_col_major(shape.to_vec(), data)?)
}

fn cholesky_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(CHOLESKY, args, 1)?;
    Cholesky::decode(op)?;
    with_scalar!(CHOLESKY, args[0].dtype(), T => cholesky_impl::<T>(op, args[0]))
}

fn cholesky_impl<T: Scalar>(_op: &ExtensionOp, a: &Tensor) -> Result<Vec<Tensor>> {
    use faer::linalg::cholesky::llt::factor::{
        cholesky_in_place, cholesky_in_place_scratch, LltError,
    };
    let (n, nb) = square_dims(CHOLESKY, a)?;
    let x = a.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let mut res = vec![zero; x.len()];
    for_each_batch(
        nb,
        n,
        n * n * n,
        out(&mut res, n * n),
        |par| MemBuffer::new(cholesky_in_place_scratch::<T>(n, par, Default::default())),
        |mem, par, b, mut blk| {
            check_finite::<T>(CHOLESKY, "input", a, Reads::Lower, b)?;
            // Only the lower triangle of the input is read.
            let src = &x[b * n * n..(b + 1) * n * n];
            for j in 0..n {
                blk[j * n + j..(j + 1) * n].copy_from_slice(&src[j * n + j..(j + 1) * n]);
            }
            let l = MatMut::from_column_major_slice_mut(&mut blk, n, n);
            let res = cholesky_in_place(
                l,
                Default::default(),
                par,
                MemStack::new(mem),
                Default::default(),
            );
            if let Err(LltError::NonPositivePivot { index }) = res {
                return Err(RuntimeError::kernel(
                    CHOLESKY,
                    format!(
                        "matrix is not positive definite: the leading minor of order {} is not positive{}",
                        index + 1,
                        batch_note(nb, b)
                    ),
                ));
            }
            for j in 0..n {
                blk[j * n..j * n + j].fill(zero);
            }
            if !all_finite(&blk) {
                return Err(RuntimeError::kernel(
                    CHOLESKY,
                    format!(
                        "the factor is not finite: the matrix is not positive definite to working precision or its entries overflow{}",
                        batch_note(nb, b)
                    ),
                ));
            }
            Ok(())
        },
    )?;
    Ok(vec![tensor(a.shape(), res)?])
}

/// Checks that a triangular matrix has no zero on its diagonal.
fn check_triangular_diag<T: Scalar>(
    op: &str,
    m: MatRef<'_, T>,
    nb: usize,
    b: usize,
    describe: impl Fn(usize) -> String,
) -> Result<()> {
    for i in 0..m.nrows() {
        if m[(i, i)].modulus() == 0.0 {
            return Err(RuntimeError::kernel(
                op,
                format!("{}{}", describe(i), batch_note(nb, b)),
            ));
        }
    }
    Ok(())
}

/// Solves `op(tri) X = rhs` in place for a triangular `tri` given by its lower / upper
/// flag, with optional implicit conjugation and unit diagonal.
fn solve_tri_in_place<T: Scalar>(
    tri_m: MatRef<'_, T>,
    lower: bool,
    conj: Conj,
    unit: bool,
    rhs: MatMut<'_, T>,
    par: Par,
) {
    match (lower, unit) {
        (true, false) => tri::solve_lower_triangular_in_place_with_conj(tri_m, conj, rhs, par),
        (true, true) => tri::solve_unit_lower_triangular_in_place_with_conj(tri_m, conj, rhs, par),
        (false, false) => tri::solve_upper_triangular_in_place_with_conj(tri_m, conj, rhs, par),
        (false, true) => tri::solve_unit_upper_triangular_in_place_with_conj(tri_m, conj, rhs, par),
    }
}

fn triangular_solve_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(TRIANGULAR_SOLVE, args, 2)?;
    with_scalar!(TRIANGULAR_SOLVE, args[0].dtype(), T => triangular_solve_impl::<T>(op, args[0], args[1]))
}

fn triangular_solve_impl<T: Scalar>(
    op: &ExtensionOp,
    a: &Tensor,
    rhs: &Tensor,
) -> Result<Vec<Tensor>> {
    let name = TRIANGULAR_SOLVE;
    let TriangularSolve {
        lower,
        left,
        adjoint,
        unit_diagonal: unit,
    } = TriangularSolve::decode(op)?;
    let (n, n2, nb) = mat_dims(name, "matrix", a)?;
    let (r0, r1, nb2) = mat_dims(name, "right-hand side", rhs)?;
    let k = if left { r0 } else { r1 };
    if n != n2 || k != n || nb != nb2 || rhs.dtype() != a.dtype() {
        return Err(RuntimeError::kernel(
            name,
            format!("operands {} and {} do not match", a.ty(), rhs.ty()),
        ));
    }
    let reads = match (lower, unit) {
        (true, false) => Reads::Lower,
        (true, true) => Reads::StrictLower,
        (false, false) => Reads::Upper,
        (false, true) => Reads::StrictUpper,
    };
    let av = a.as_slice::<T>()?;
    let mut x = rhs.as_slice::<T>()?.to_vec();
    let rsz = r0 * r1;
    for_each_batch(
        nb,
        n,
        n * rsz,
        out(&mut x, rsz),
        |_| (),
        |_, par, b, mut xb| {
            check_finite::<T>(name, "triangular matrix", a, reads, b)?;
            check_finite::<T>(name, "right-hand side", rhs, Reads::All, b)?;
            let am = MatRef::from_column_major_slice(&av[b * n * n..(b + 1) * n * n], n, n);
            if !unit {
                check_triangular_diag(name, am, nb, b, |i| {
                    format!("triangular matrix is singular: zero diagonal entry at ({i}, {i})")
                })?;
            }
            let xm = MatMut::from_column_major_slice_mut(&mut xb, r0, r1);
            match (left, adjoint) {
                // op(A) X = B.
                (true, true) => {
                    solve_tri_in_place(am.transpose(), !lower, Conj::Yes, unit, xm, par)
                }
                (true, false) => solve_tri_in_place(am, lower, Conj::No, unit, xm, par),
                // X op(A) = B  <=>  op(A)^T X^T = B^T.
                (false, true) => {
                    solve_tri_in_place(am, lower, Conj::Yes, unit, xm.transpose_mut(), par)
                }
                (false, false) => solve_tri_in_place(
                    am.transpose(),
                    !lower,
                    Conj::No,
                    unit,
                    xm.transpose_mut(),
                    par,
                ),
            }
            Ok(())
        },
    )?;
    Ok(vec![tensor(rhs.shape(), x)?])
}

/// The largest order that [`lu_block`] factors with [`lu_zero_pivot_safe`] instead of
/// faer: faer's recursive LU costs more below it (measured per 8 x 8 f64 matrix: 0.15 µs
/// against faer's 0.35 µs; the two are even near order 32).
const SMALL_LU_MAX: usize = 16;

/// The workspace of [`lu_block`] and [`lu_rect_zero_pivot_safe`] for `m x n` matrices:
/// faer's scratch and the permutation arrays, made once per task of a batch.
struct LuWork {
    mem: MemBuffer,
    /// The row permutation of the last factorization (see [`lu_block`]).
    perm: Vec<usize>,
    bwd: Vec<usize>,
}

impl LuWork {
    fn new<T: Scalar>(m: usize, n: usize, par: Par) -> LuWork {
        let faer_order = if m == n && n > SMALL_LU_MAX { n } else { 0 };
        LuWork {
            mem: MemBuffer::new(
                faer::linalg::lu::partial_pivoting::factor::lu_in_place_scratch::<usize, T>(
                    faer_order,
                    faer_order,
                    par,
                    Default::default(),
                ),
            ),
            perm: vec![0; m],
            bwd: vec![0; faer_order],
        }
    }
}

/// `true` if every entry is finite (a branch-free scan).
fn all_finite<T: Scalar>(xs: &[T]) -> bool {
    xs.iter().fold(true, |ok, v| ok & v.is_finite_s())
}

/// LU with partial pivoting of one `n x n` block `src` (finite entries) into `lu`:
/// leaves the row permutation in `work.perm` (row `i` of `P^T A` is row `perm[i]` of
/// `A`) and returns the number of transpositions. Orders up to [`SMALL_LU_MAX`] are
/// factored by [`lu_zero_pivot_safe`]; larger ones by faer. faer divides by every pivot,
/// so an exactly zero pivot (a singular matrix) before the last column fills its factors
/// with NaN; then the block is factored again by [`lu_zero_pivot_safe`], which skips the
/// elimination of such a column as LAPACK's `getrf` does.
fn lu_block<T: Scalar>(src: &[T], lu: &mut [T], n: usize, work: &mut LuWork, par: Par) -> usize {
    lu.copy_from_slice(src);
    if n > SMALL_LU_MAX {
        let (info, _) = faer::linalg::lu::partial_pivoting::factor::lu_in_place(
            MatMut::from_column_major_slice_mut(lu, n, n),
            &mut work.perm,
            &mut work.bwd,
            par,
            MemStack::new(&mut work.mem),
            Default::default(),
        );
        if all_finite(lu) {
            return info.transposition_count;
        }
        lu.copy_from_slice(src);
    }
    lu_zero_pivot_safe(lu, n, &mut work.perm)
}

/// Right-looking LU with partial pivoting (pivot: the first entry of largest `|re|+|im|`,
/// as faer and LAPACK choose it) of a column-major `n x n` matrix, in place. A column
/// whose candidates are all zero has a zero pivot: its multipliers stay zero and it
/// eliminates nothing, so `L` and `U` are finite and `A = P L U` still holds, with the
/// zero on `U`'s diagonal. Writes the permutation to `perm` and returns the transposition
/// count, as [`lu_block`].
fn lu_zero_pivot_safe<T: Scalar>(a: &mut [T], n: usize, perm: &mut [usize]) -> usize {
    lu_rect_zero_pivot_safe(a, n, n, perm)
}

/// [`lu_zero_pivot_safe`] of a column-major `m x n` matrix (`min(m, n)` elimination
/// steps; `perm` has length `m`).
fn lu_rect_zero_pivot_safe<T: Scalar>(
    a: &mut [T],
    m: usize,
    n: usize,
    perm: &mut [usize],
) -> usize {
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i;
    }
    let mut swaps = 0;
    for k in 0..m.min(n) {
        let mut r = k;
        let mut best = 0.0;
        for i in k..m {
            let v = a[i + k * m].abs1();
            if v > best {
                best = v;
                r = i;
            }
        }
        if best == 0.0 {
            continue;
        }
        if r != k {
            perm.swap(k, r);
            swaps += 1;
            for j in 0..n {
                a.swap(k + j * m, r + j * m);
            }
        }
        let piv = a[k + k * m];
        for i in k + 1..m {
            a[i + k * m] = a[i + k * m].div_s(piv);
        }
        for j in k + 1..n {
            let ukj = a[k + j * m];
            if ukj.abs1() == 0.0 {
                continue;
            }
            let (left, right) = a.split_at_mut(j * m);
            let lk = &left[k * m..(k + 1) * m];
            let col = &mut right[..m];
            for i in k + 1..m {
                col[i] = col[i].sub_s(lk[i].mul_s(ukj));
            }
        }
    }
    swaps
}

fn solve_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(SOLVE, args, 2)?;
    with_scalar!(SOLVE, args[0].dtype(), T => solve_impl::<T>(op, args[0], args[1]))
}

fn solve_impl<T: Scalar>(op: &ExtensionOp, a: &Tensor, rhs: &Tensor) -> Result<Vec<Tensor>> {
    let name = SOLVE;
    let Solve { adjoint } = Solve::decode(op)?;
    let (n, n2, nb) = mat_dims(name, "matrix", a)?;
    let (r0, k, nb2) = mat_dims(name, "right-hand side", rhs)?;
    if n != n2 || r0 != n || nb != nb2 || rhs.dtype() != a.dtype() {
        return Err(RuntimeError::kernel(
            name,
            format!("operands {} and {} do not match", a.ty(), rhs.ty()),
        ));
    }
    let av = a.as_slice::<T>()?;
    let bv = rhs.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let mut x = vec![zero; bv.len()];
    for_each_batch(
        nb,
        n,
        n * n * (n + k),
        out(&mut x, n * k),
        |par| {
            let tmp = if adjoint { n * k } else { 0 };
            (
                LuWork::new::<T>(n, n, par),
                vec![zero; n * n],
                vec![zero; tmp],
            )
        },
        |(work, lu, tmp), par, b, mut xb| {
            check_finite::<T>(name, "matrix", a, Reads::All, b)?;
            check_finite::<T>(name, "right-hand side", rhs, Reads::All, b)?;
            lu_block::<T>(&av[b * n * n..(b + 1) * n * n], lu, n, work, par);
            let perm = &work.perm;
            let lum = MatRef::from_column_major_slice(lu, n, n);
            check_triangular_diag(name, lum, nb, b, |i| {
                format!("matrix is singular: its LU factorization has a zero pivot in column {i}")
            })?;
            let bb = &bv[b * n * k..(b + 1) * n * k];
            if !adjoint {
                // A = P L U with P^T A = L U: X = U^{-1} L^{-1} (P^T B).
                for j in 0..k {
                    for i in 0..n {
                        xb[i + j * n] = bb[perm[i] + j * n];
                    }
                }
                let mut t = MatMut::from_column_major_slice_mut(&mut xb, n, k);
                solve_tri_in_place(lum, true, Conj::No, true, t.as_mut(), par);
                solve_tri_in_place(lum, false, Conj::No, false, t, par);
            } else {
                // A^H = U^H L^H P^T: P^T X = L^{-H} U^{-H} B.
                tmp.copy_from_slice(bb);
                let mut t = MatMut::from_column_major_slice_mut(tmp, n, k);
                solve_tri_in_place(lum.transpose(), true, Conj::Yes, false, t.as_mut(), par);
                solve_tri_in_place(lum.transpose(), false, Conj::Yes, true, t, par);
                for j in 0..k {
                    for i in 0..n {
                        xb[perm[i] + j * n] = tmp[i + j * n];
                    }
                }
            }
            if !all_finite(&xb) {
                return Err(RuntimeError::kernel(
                    name,
                    format!(
                        "matrix is singular to working precision (non-finite solution){}",
                        batch_note(nb, b)
                    ),
                ));
            }
            Ok(())
        },
    )?;
    Ok(vec![tensor(rhs.shape(), x)?])
}

fn lu_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(LU, args, 1)?;
    Lu::decode(op)?;
    with_scalar!(LU, args[0].dtype(), T => lu_impl::<T>(op, args[0]))
}

fn lu_impl<T: Scalar>(_op: &ExtensionOp, a: &Tensor) -> Result<Vec<Tensor>> {
    let (m, n, nb) = mat_dims(LU, "operand", a)?;
    let k = m.min(n);
    let av = a.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let one = T::from_f64(1.0);
    let (mut p, mut l, mut u) = (
        vec![zero; m * m * nb],
        vec![zero; m * k * nb],
        vec![zero; k * n * nb],
    );
    let mut sign = vec![one; nb];
    for_each_batch(
        nb,
        m.max(n),
        m * n * k,
        (
            out(&mut p, m * m),
            out(&mut l, m * k),
            out(&mut u, k * n),
            out(&mut sign, 1),
        ),
        |par| (vec![zero; m * n], LuWork::new::<T>(m, n, par)),
        |(lu, work), par, b, (mut pb, mut lb, mut ub, mut sb)| {
            check_finite::<T>(LU, "input", a, Reads::All, b)?;
            let src = &av[b * m * n..(b + 1) * m * n];
            let swaps = if m == n {
                lu_block::<T>(src, lu, n, work, par)
            } else {
                // Rectangular: a plain right-looking elimination (sequential, O(m n k)).
                lu.copy_from_slice(src);
                lu_rect_zero_pivot_safe(lu, m, n, &mut work.perm)
            };
            for j in 0..n {
                for i in 0..m {
                    let v = lu[i + j * m];
                    if i > j {
                        if j < k {
                            lb[i + j * m] = v;
                        }
                    } else if i < k {
                        ub[i + j * k] = v;
                    }
                }
            }
            for j in 0..k {
                lb[j + j * m] = one;
            }
            for (j, &r) in work.perm.iter().enumerate() {
                // A = P L U: column j of P has its one in row perm[j].
                pb[r + j * m] = one;
            }
            if swaps % 2 == 1 {
                sb[0] = T::from_f64(-1.0);
            }
            Ok(())
        },
    )?;
    let s = a.shape();
    let bs = &s[2..];
    let shp = |r: usize, c: usize| -> Vec<usize> { [r, c].iter().chain(bs).copied().collect() };
    Ok(vec![
        tensor(&shp(m, m), p)?,
        tensor(&shp(m, k), l)?,
        tensor(&shp(k, n), u)?,
        tensor(bs, sign)?,
    ])
}

fn full_piv_perm_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(FULL_PIV_PERM, args, 1)?;
    FullPivPerm::decode(op)?;
    with_scalar!(FULL_PIV_PERM, args[0].dtype(), T => full_piv_perm_impl::<T>(args[0]))
}

/// Gaussian elimination with complete pivoting on each square batch element: step `k`
/// moves the entry of largest modulus of the remaining block to `(k, k)` (the first such
/// entry in column-major order on ties) and eliminates below it; a remaining block of
/// zeros ends the search (its order is kept). Only the permutations are returned:
/// `P[k, r_k] = 1` and `Q[k, c_k] = 1`, so `(P A Qᵀ)[i, j] = A[r_i, c_j]`.
fn full_piv_perm_impl<T: Scalar>(a: &Tensor) -> Result<Vec<Tensor>> {
    let (n, nb) = square_dims(FULL_PIV_PERM, a)?;
    let av = a.as_slice::<T>()?;
    let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
    let (mut p, mut q) = (vec![zero; n * n * nb], vec![zero; n * n * nb]);
    let mut parity: Vec<T::R> = vec![one.to_real(); nb];
    for_each_batch(
        nb,
        n,
        n * n * n,
        (out(&mut p, n * n), out(&mut q, n * n), out(&mut parity, 1)),
        |_| (vec![zero; n * n], vec![0usize; n], vec![0usize; n]),
        |(w, rows, cols), _, b, (mut pb, mut qb, mut sb)| {
            check_finite::<T>(FULL_PIV_PERM, "input", a, Reads::All, b)?;
            w.copy_from_slice(&av[b * n * n..(b + 1) * n * n]);
            for (i, (r, c)) in rows.iter_mut().zip(cols.iter_mut()).enumerate() {
                (*r, *c) = (i, i);
            }
            let mut swaps = 0usize;
            for k in 0..n {
                let (mut best, mut bi, mut bj) = (0.0f64, k, k);
                for j in k..n {
                    for i in k..n {
                        let v = w[i + j * n].modulus();
                        if v > best {
                            (best, bi, bj) = (v, i, j);
                        }
                    }
                }
                if best == 0.0 {
                    break;
                }
                if bi != k {
                    for j in 0..n {
                        w.swap(k + j * n, bi + j * n);
                    }
                    rows.swap(k, bi);
                    swaps += 1;
                }
                if bj != k {
                    for i in 0..n {
                        w.swap(i + k * n, i + bj * n);
                    }
                    cols.swap(k, bj);
                    swaps += 1;
                }
                let pivot = w[k + k * n];
                for i in k + 1..n {
                    let l = w[i + k * n].div_s(pivot);
                    w[i + k * n] = l;
                    for j in k + 1..n {
                        w[i + j * n] = w[i + j * n].sub_s(l.mul_s(w[k + j * n]));
                    }
                }
            }
            for k in 0..n {
                pb[k + rows[k] * n] = one;
                qb[k + cols[k] * n] = one;
            }
            if swaps % 2 == 1 {
                sb[0] = T::from_f64(-1.0).to_real();
            }
            Ok(())
        },
    )?;
    let s = a.shape();
    Ok(vec![tensor(s, p)?, tensor(s, q)?, tensor(&s[2..], parity)?])
}

fn qr_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(QR, args, 1)?;
    with_scalar!(QR, args[0].dtype(), T => qr_impl::<T>(op, args[0]))
}

fn qr_impl<T: Scalar>(op: &ExtensionOp, a: &Tensor) -> Result<Vec<Tensor>> {
    use faer::linalg::householder;
    use faer::linalg::qr::no_pivoting::factor;
    let (m, n, nb) = mat_dims(QR, "operand", a)?;
    let k = m.min(n);
    // Complete mode: Q is m x m and R is m x n (rows k.. of R are zero).
    let kq = if Qr::decode(op)?.complete { m } else { k };
    let av = a.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let one = T::from_f64(1.0);
    let mut q = vec![zero; m * kq * nb];
    let mut r = vec![zero; kq * n * nb];
    let bs = factor::recommended_block_size::<T>(m, n);
    for_each_batch(
        nb,
        m.max(n),
        m * n * k.max(1),
        (out(&mut q, m * kq), out(&mut r, kq * n)),
        |par| {
            let mem = MemBuffer::new(faer::dyn_stack::StackReq::any_of(&[
                factor::qr_in_place_scratch::<T>(m, n, bs, par, Default::default()),
                householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<T>(
                    m, bs, kq,
                ),
            ]));
            (mem, vec![zero; bs * k], vec![zero; m * n])
        },
        |(mem, coeff, work), par, b, (mut qb, mut rb)| {
            check_finite::<T>(QR, "input", a, Reads::All, b)?;
            for i in 0..kq {
                qb[i + i * m] = one;
            }
            if k == 0 {
                // No reflectors: the complete Q of an m x 0 matrix is the identity.
                return Ok(());
            }
            work.copy_from_slice(&av[b * m * n..(b + 1) * m * n]);
            factor::qr_in_place(
                MatMut::from_column_major_slice_mut(work, m, n),
                MatMut::from_column_major_slice_mut(coeff, bs, k),
                par,
                MemStack::new(mem),
                Default::default(),
            );
            let basis = MatRef::from_column_major_slice(work, m, n);
            householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                basis.get(.., ..k),
                MatRef::from_column_major_slice(coeff, bs, k),
                Conj::No,
                MatMut::from_column_major_slice_mut(&mut qb, m, kq),
                par,
                MemStack::new(mem),
            );
            for j in 0..n {
                for i in 0..=j.min(k - 1) {
                    rb[i + j * kq] = work[i + j * m];
                }
            }
            // Gauge: a real, nonnegative diagonal of R (the unique QR of a full-rank
            // matrix), so that values and derivatives are continuous.
            for i in 0..k {
                let ph = rb[i + i * kq].phase();
                let dii = rb[i + i * kq].modulus();
                let cph = ph.conj_s();
                for j in 0..n {
                    rb[i + j * kq] = cph.mul_s(rb[i + j * kq]);
                }
                // Exactly real (the product above may leave an imaginary rounding).
                rb[i + i * kq] = T::from_f64(dii);
                for row in 0..m {
                    qb[row + i * m] = qb[row + i * m].mul_s(ph);
                }
            }
            Ok(())
        },
    )?;
    let bshape = &a.shape()[2..];
    let qs: Vec<usize> = [m, kq].iter().chain(bshape).copied().collect();
    let rs: Vec<usize> = [kq, n].iter().chain(bshape).copied().collect();
    Ok(vec![tensor(&qs, q)?, tensor(&rs, r)?])
}

fn svd_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(SVD, args, 1)?;
    with_scalar!(SVD, args[0].dtype(), T => svd_impl::<T>(op, args[0]))
}

fn svd_impl<T: Scalar>(op: &ExtensionOp, a: &Tensor) -> Result<Vec<Tensor>> {
    use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
    let svd_attrs = Svd::decode(op)?;
    let compute_uv = svd_attrs.compute_uv;
    let (m, n, nb) = mat_dims(SVD, "operand", a)?;
    let k = m.min(n);
    // `keep`: only the first `kk` singular triplets are returned (a truncated SVD).
    let kk = svd_attrs.keep.map_or(k, |v| v.min(k));
    // `full_matrices`: U is m x m and Vh is n x n (the extra columns / rows complete the
    // orthonormal bases); otherwise the first `kk` columns / rows.
    let full = svd_attrs.full_matrices;
    let (ku, kv) = if full { (m, n) } else { (kk, kk) };
    let av = a.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let one = T::from_f64(1.0);
    let (pu, pv) = if compute_uv { (m * ku, kv * n) } else { (0, 0) };
    let mut u = vec![zero; pu * nb];
    let mut vh = vec![zero; pv * nb];
    let mut s = vec![zero.to_real(); kk * nb];
    let vecs = if compute_uv && full {
        ComputeSvdVectors::Full
    } else if compute_uv {
        ComputeSvdVectors::Thin
    } else {
        ComputeSvdVectors::No
    };
    let (uc, vc) = if full { (m, n) } else { (k, k) };
    for_each_batch(
        nb,
        m.max(n),
        m * n * k.max(1),
        (out(&mut u, pu), out(&mut s, kk), out(&mut vh, pv)),
        |par| {
            let mem = MemBuffer::new(svd_scratch::<T>(m, n, vecs, vecs, par, Default::default()));
            let (ub, vb) = if compute_uv {
                (vec![zero; m * uc], vec![zero; n * vc])
            } else {
                (Vec::new(), Vec::new())
            };
            (mem, faer::diag::Diag::<T>::zeros(k), ub, vb, Vec::new())
        },
        |(mem, sd, ub, vb, scaled), par, b, (mut uo, mut so, mut vho)| {
            check_finite::<T>(SVD, "input", a, Reads::All, b)?;
            if k == 0 {
                // Nothing to factor; the full bases are identities.
                if compute_uv && full {
                    for i in 0..m {
                        uo[i + i * m] = one;
                    }
                    for i in 0..n {
                        vho[i + i * n] = one;
                    }
                }
                return Ok(());
            }
            let blk = &av[b * m * n..(b + 1) * m * n];
            // A matrix with entries far from order one is factored divided by a power of
            // two (faer's iteration overflows or underflows on it); its singular values are
            // multiplied back, its singular vectors are unchanged.
            let amax = blk.iter().fold(0.0, |acc: f64, v| acc.max(v.modulus()));
            let exp = scaling_exponent::<T>(amax);
            let am = scaled_matrix(blk, m, n, exp, scaled);
            let (um, vm) = if compute_uv {
                (
                    Some(MatMut::from_column_major_slice_mut(ub, m, uc)),
                    Some(MatMut::from_column_major_slice_mut(vb, n, vc)),
                )
            } else {
                (None, None)
            };
            if svd(
                am,
                sd.as_mut(),
                um,
                vm,
                par,
                MemStack::new(mem),
                Default::default(),
            )
            .is_err()
            {
                return Err(RuntimeError::kernel(
                    SVD,
                    format!("the SVD iteration did not converge{}", batch_note(nb, b)),
                ));
            }
            let sv = sd.column_vector();
            for (i, x) in so.iter_mut().enumerate() {
                *x = sv[i].to_real();
            }
            if let Some(e) = exp {
                scale_pow2::<T::R>(&mut so, e);
            }
            if compute_uv {
                uo.copy_from_slice(&ub[..m * ku]);
                for i in 0..kv {
                    for j in 0..n {
                        vho[i + j * kv] = vb[j + i * n].conj_s();
                    }
                }
            }
            Ok(())
        },
    )?;
    let bshape = &a.shape()[2..];
    let ss: Vec<usize> = [kk].iter().chain(bshape).copied().collect();
    let s_t = tensor(&ss, s)?;
    if !compute_uv {
        return Ok(vec![s_t]);
    }
    let us: Vec<usize> = [m, ku].iter().chain(bshape).copied().collect();
    let vs: Vec<usize> = [kv, n].iter().chain(bshape).copied().collect();
    Ok(vec![tensor(&us, u)?, s_t, tensor(&vs, vh)?])
}

/// Order from which faer's self-adjoint eigensolver divides and conquers the tridiagonal
/// problem, and the size of the leaves it solves by the QR algorithm. faer's default is
/// 128, so an order-128 matrix ran the QR algorithm whole, its Givens rotations applied
/// to all 128 eigenvector columns. With 64: grad of Σ eigvalsh at order 128 from 1.47 to
/// 1.31 ms (Intel Xeon VM, one thread, back to back); order 512 and batched orders 4
/// and 8 unchanged. (The SVD's bidiagonal solver measured no faster at 32 or 64.)
const EIGH_DC_LEAF: usize = 64;

fn eigh_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(EIGH, args, 1)?;
    with_scalar!(EIGH, args[0].dtype(), T => eigh_impl::<T>(op, args[0]))
}

fn eigh_impl<T: Scalar>(op: &ExtensionOp, a: &Tensor) -> Result<Vec<Tensor>> {
    use faer::linalg::evd::{
        self_adjoint_evd, self_adjoint_evd_scratch, ComputeEigenvectors, SelfAdjointEvdParams,
    };
    let vectors = Eigen::decode_eigh(op)?.eigenvectors;
    let params = || -> faer::Spec<SelfAdjointEvdParams, T> {
        let mut p = <SelfAdjointEvdParams as faer::Auto<T>>::auto();
        p.recursion_threshold = EIGH_DC_LEAF;
        p.into()
    };
    let (n, nb) = square_dims(EIGH, a)?;
    let av = a.as_slice::<T>()?;
    let zero = T::from_f64(0.0);
    let pv = if vectors { n * n } else { 0 };
    let mut v = vec![zero; pv * nb];
    let mut w = vec![zero.to_real(); n * nb];
    let cv = if vectors {
        ComputeEigenvectors::Yes
    } else {
        ComputeEigenvectors::No
    };
    for_each_batch(
        nb,
        n,
        n * n * n,
        (out(&mut w, n), out(&mut v, pv)),
        |par| {
            let mem = MemBuffer::new(self_adjoint_evd_scratch::<T>(n, cv, par, params()));
            (mem, faer::diag::Diag::<T>::zeros(n), Vec::new())
        },
        |(mem, sd, scaled), par, b, (mut wo, mut vo)| {
            check_finite::<T>(EIGH, "input", a, Reads::Lower, b)?;
            let blk = &av[b * n * n..(b + 1) * n * n];
            // faer reads only the lower triangle. A matrix with entries far from order one
            // is factored divided by a power of two, as in the SVD; its eigenvalues are
            // multiplied back, its eigenvectors are unchanged.
            let mut amax = 0.0f64;
            for j in 0..n {
                for x in &blk[j * n + j..(j + 1) * n] {
                    amax = amax.max(x.modulus());
                }
            }
            let exp = scaling_exponent::<T>(amax);
            let am = scaled_matrix(blk, n, n, exp, scaled);
            let vm = vectors.then(|| MatMut::from_column_major_slice_mut(&mut vo, n, n));
            if self_adjoint_evd(am, sd.as_mut(), vm, par, MemStack::new(mem), params()).is_err() {
                return Err(RuntimeError::kernel(
                    EIGH,
                    format!(
                        "the eigenvalue iteration did not converge{}",
                        batch_note(nb, b)
                    ),
                ));
            }
            let ev = sd.column_vector();
            for (i, x) in wo.iter_mut().enumerate() {
                *x = ev[i].to_real();
            }
            if let Some(e) = exp {
                scale_pow2::<T::R>(&mut wo, e);
            }
            Ok(())
        },
    )?;
    let ws: Vec<usize> = [n].iter().chain(&a.shape()[2..]).copied().collect();
    let w_t = tensor(&ws, w)?;
    if !vectors {
        return Ok(vec![w_t]);
    }
    Ok(vec![w_t, tensor(a.shape(), v)?])
}

fn eig_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(EIG, args, 1)?;
    match args[0].dtype() {
        DType::F64 => eig_f64(op, args[0], false),
        DType::C64 => eig_f64(op, args[0], true),
        DType::F32 => eig_f32(op, args[0], false),
        DType::C32 => eig_f32(op, args[0], true),
        other => Err(RuntimeError::kernel(
            EIG,
            format!("dtype {other} is not supported (need f32, f64, c32 or c64)"),
        )),
    }
}

/// The eigenvalue checks and eigenvector gauge of `linalg.eig` on one batch element
/// (eigenvalues `w`, eigenvectors `v` or empty): the eigenvalues must be finite; each
/// eigenvector column is scaled to unit 2-norm and by a phase that makes its
/// largest-modulus component (the first one, on ties) real and positive.
macro_rules! eig_gauge {
    ($name:ident, $r:ty, $c:ty) => {
        fn $name(w: &[$c], v: &mut [$c], n: usize, nb: usize, b: usize) -> Result<()> {
            if w.iter().any(|z| !z.is_finite_s()) {
                return Err(RuntimeError::kernel(
                    EIG,
                    format!(
                        "the eigenvalues are not finite (overflow){}",
                        batch_note(nb, b)
                    ),
                ));
            }
            for (j, col) in v.chunks_exact_mut(n).enumerate() {
                let mut k = 0;
                let mut big: $r = -1.0;
                let mut ss: $r = 0.0;
                for (i, z) in col.iter().enumerate() {
                    let m = z.norm();
                    ss += m * m;
                    if m > big {
                        big = m;
                        k = i;
                    }
                }
                let nrm = ss.sqrt();
                if !(nrm > 0.0 && nrm.is_finite()) {
                    return Err(RuntimeError::kernel(
                        EIG,
                        format!("eigenvector {j} is zero or not finite{}", batch_note(nb, b)),
                    ));
                }
                let ph = col[k].conj() / col[k].norm();
                let f = ph / nrm;
                for z in col.iter_mut() {
                    *z *= f;
                }
                col[k] = <$c>::new(col[k].re, 0.0);
            }
            Ok(())
        }
    };
}
eig_gauge!(eig_gauge_f64, f64, Complex64);
eig_gauge!(eig_gauge_f32, f32, Complex32);

/// `linalg.eig` of an f64 / c64 (`eig_f64`) or f32 / c32 (`eig_f32`) operand, complex
/// or not as `complex_in` says; see [`crate::eig`] for the results and their gauge.
macro_rules! eig_impl {
    ($name:ident, $gauge:ident, $r:ty, $c:ty) => {
        fn $name(op: &ExtensionOp, a: &Tensor, complex_in: bool) -> Result<Vec<Tensor>> {
            use faer::linalg::evd::{evd_cplx, evd_real, evd_scratch, ComputeEigenvectors};
            let vectors = Eigen::decode_eig(op)?.eigenvectors;
            let (n, nb) = square_dims(EIG, a)?;
            let zero = <$c>::new(0.0, 0.0);
            let pv = if vectors { n * n } else { 0 };
            let mut w: Vec<$c> = vec![zero; n * nb];
            let mut v: Vec<$c> = vec![zero; pv * nb];
            let cv = if vectors {
                ComputeEigenvectors::Yes
            } else {
                ComputeEigenvectors::No
            };
            let no = ComputeEigenvectors::No;
            let failed = |b: usize| {
                RuntimeError::kernel(
                    EIG,
                    format!(
                        "the eigenvalue iteration did not converge{}",
                        batch_note(nb, b)
                    ),
                )
            };
            let outs = (out(&mut w, n), out(&mut v, pv));
            if complex_in {
                let av = a.as_slice::<$c>()?;
                for_each_batch(
                    nb,
                    n,
                    n * n * n,
                    outs,
                    |par| {
                        let mem =
                            MemBuffer::new(evd_scratch::<$c>(n, no, cv, par, Default::default()));
                        (mem, faer::diag::Diag::<$c>::zeros(n))
                    },
                    |(mem, sd), par, b, (mut wb, mut vb)| {
                        check_finite::<$c>(EIG, "input", a, Reads::All, b)?;
                        let am =
                            MatRef::from_column_major_slice(&av[b * n * n..(b + 1) * n * n], n, n);
                        let vm =
                            vectors.then(|| MatMut::from_column_major_slice_mut(&mut vb, n, n));
                        evd_cplx::<$r>(
                            am,
                            sd.as_mut(),
                            None,
                            vm,
                            par,
                            MemStack::new(mem),
                            Default::default(),
                        )
                        .map_err(|_| failed(b))?;
                        for (i, x) in wb.iter_mut().enumerate() {
                            *x = sd[i];
                        }
                        $gauge(&wb, &mut vb, n, nb, b)
                    },
                )?;
            } else {
                let av = a.as_slice::<$r>()?;
                for_each_batch(
                    nb,
                    n,
                    n * n * n,
                    outs,
                    |par| {
                        let mem =
                            MemBuffer::new(evd_scratch::<$r>(n, no, cv, par, Default::default()));
                        let sre = faer::diag::Diag::<$r>::zeros(n);
                        let sim = faer::diag::Diag::<$r>::zeros(n);
                        (mem, sre, sim, vec![0.0 as $r; pv])
                    },
                    |(mem, sre, sim, ub), par, b, (mut wb, mut vb)| {
                        check_finite::<$r>(EIG, "input", a, Reads::All, b)?;
                        let am =
                            MatRef::from_column_major_slice(&av[b * n * n..(b + 1) * n * n], n, n);
                        let vm = vectors.then(|| MatMut::from_column_major_slice_mut(ub, n, n));
                        evd_real::<$r>(
                            am,
                            sre.as_mut(),
                            sim.as_mut(),
                            None,
                            vm,
                            par,
                            MemStack::new(mem),
                            Default::default(),
                        )
                        .map_err(|_| failed(b))?;
                        let (re, im) = (sre.column_vector(), sim.column_vector());
                        let mut j = 0;
                        while j < n {
                            if im[j] == 0.0 || j + 1 == n {
                                wb[j] = <$c>::new(re[j], im[j]);
                                if vectors {
                                    for i in 0..n {
                                        vb[i + j * n] = <$c>::new(ub[i + j * n], 0.0);
                                    }
                                }
                                j += 1;
                            } else {
                                // A conjugate pair: columns j, j+1 hold Re v and Im v.
                                wb[j] = <$c>::new(re[j], im[j]);
                                wb[j + 1] = <$c>::new(re[j], -im[j]);
                                if vectors {
                                    for i in 0..n {
                                        let (x, y) = (ub[i + j * n], ub[i + (j + 1) * n]);
                                        vb[i + j * n] = <$c>::new(x, y);
                                        vb[i + (j + 1) * n] = <$c>::new(x, -y);
                                    }
                                }
                                j += 2;
                            }
                        }
                        $gauge(&wb, &mut vb, n, nb, b)
                    },
                )?;
            }
            let ws: Vec<usize> = [n].iter().chain(&a.shape()[2..]).copied().collect();
            let w_t = tensor(&ws, w)?;
            if !vectors {
                return Ok(vec![w_t]);
            }
            Ok(vec![w_t, tensor(a.shape(), v)?])
        }
    };
}
eig_impl!(eig_f64, eig_gauge_f64, f64, Complex64);
eig_impl!(eig_f32, eig_gauge_f32, f32, Complex32);

/// `linalg.eig_distinct`: passes eigenvalues through, failing when two of one batch
/// element coincide: `|w_i - w_j| <= 64 ε max(|w|)` (exactly repeated up to rounding),
/// where the eigenvector derivative `1/(w_j - w_i)` is undefined.
fn eig_distinct_kernel(op: &ExtensionOp, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    arity(EIG_DISTINCT, args, 1)?;
    EigDistinct::decode(op)?;
    let t = args[0];
    let s = t.shape();
    let n = s.first().copied().unwrap_or(1);
    let nb: usize = s.iter().skip(1).product();
    let (vals, eps): (Vec<Complex64>, f64) = match t.dtype() {
        DType::C64 => (t.as_slice::<Complex64>()?.to_vec(), f64::EPSILON),
        DType::C32 => (
            t.as_slice::<Complex32>()?
                .iter()
                .map(|z| Complex64::new(z.re as f64, z.im as f64))
                .collect(),
            f32::EPSILON as f64,
        ),
        other => {
            return Err(RuntimeError::kernel(
                EIG_DISTINCT,
                format!("dtype {other} is not supported (need c32 or c64)"),
            ))
        }
    };
    for_each_batch(
        nb,
        n,
        n * n,
        (),
        |_| (),
        |_, _, b, ()| {
            let blk = &vals[b * n..(b + 1) * n];
            let scale = blk.iter().fold(0.0f64, |m, z| m.max(z.norm()));
            let tol = 64.0 * eps * scale;
            for i in 0..n {
                for j in i + 1..n {
                    if (blk[i] - blk[j]).norm() <= tol {
                        return Err(RuntimeError::kernel(
                            EIG,
                            format!(
                                "the eigenvector derivative is undefined: eigenvalues {i} and {j} coincide ({} and {}){}; use eig_with_options(derivative_eps > 0) for a regularised derivative, or differentiate only eigenvalues (eigvals) or gauge- and subspace-invariant functions",
                                blk[i],
                                blk[j],
                                batch_note(nb, b)
                            ),
                        ));
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(vec![t.clone()])
}
