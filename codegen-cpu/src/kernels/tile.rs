//! Tile kernels of fused groups: one op over slices of one tile. The dtype and op are
//! matched once per call, then a tight loop runs (real transcendentals go through
//! [`crate::math`]). Scalar semantics are the reference evaluator's: NaN-propagating
//! max / min, integer division by zero gives 0, wrapping integer arithmetic, and the
//! project's convert rules. An operand given as `None` is the destination itself
//! (an in-place update).

use crate::math;
use crate::schedule::{Fold, TileOpKind, Twin};
use crate::vmath::TableLoop;
use num_complex::{Complex, Complex32, Complex64};
use std::ops::Range;
use tenferro_ir::optable::{max_f32, max_f64, min_f32, min_f64};
use tenferro_ir::{BinaryOp, CmpOp, DType, Data, ElemMap, ElemMap2, ReduceOp, UnaryOp};

/// A read-only slice of one dtype.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Slice<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    C32(&'a [Complex32]),
    C64(&'a [Complex64]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
}

/// A mutable slice of one dtype.
#[derive(Debug)]
pub(crate) enum SliceMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    C32(&'a mut [Complex32]),
    C64(&'a mut [Complex64]),
    I32(&'a mut [i32]),
    I64(&'a mut [i64]),
    Bool(&'a mut [bool]),
}

macro_rules! each_variant {
    ($e:expr, $v:ident => $body:expr, $From:ident => $To:ident) => {
        match $e {
            $From::F32($v) => $To::F32($body),
            $From::F64($v) => $To::F64($body),
            $From::C32($v) => $To::C32($body),
            $From::C64($v) => $To::C64($body),
            $From::I32($v) => $To::I32($body),
            $From::I64($v) => $To::I64($body),
            $From::Bool($v) => $To::Bool($body),
        }
    };
}

impl<'a> Slice<'a> {
    /// `self[r]`.
    pub(crate) fn sub(self, r: Range<usize>) -> Slice<'a> {
        each_variant!(self, v => &v[r], Slice => Slice)
    }
}

/// `d[r]` as a slice.
pub(crate) fn slice_of(d: &Data, r: Range<usize>) -> Slice<'_> {
    match d {
        Data::F32(v) => Slice::F32(&v[r]),
        Data::F64(v) => Slice::F64(&v[r]),
        Data::C32(v) => Slice::C32(&v[r]),
        Data::C64(v) => Slice::C64(&v[r]),
        Data::I32(v) => Slice::I32(&v[r]),
        Data::I64(v) => Slice::I64(&v[r]),
        Data::Bool(v) => Slice::Bool(&v[r]),
    }
}

/// `d[r]` as a mutable slice.
pub(crate) fn slice_mut_of(d: &mut Data, r: Range<usize>) -> SliceMut<'_> {
    match d {
        Data::F32(v) => SliceMut::F32(&mut v[r]),
        Data::F64(v) => SliceMut::F64(&mut v[r]),
        Data::C32(v) => SliceMut::C32(&mut v[r]),
        Data::C64(v) => SliceMut::C64(&mut v[r]),
        Data::I32(v) => SliceMut::I32(&mut v[r]),
        Data::I64(v) => SliceMut::I64(&mut v[r]),
        Data::Bool(v) => SliceMut::Bool(&mut v[r]),
    }
}

impl<'a> SliceMut<'a> {
    /// A read-only view of `self[r]`.
    pub(crate) fn sub(&self, r: Range<usize>) -> Slice<'_> {
        each_variant!(self, v => &v[r], SliceMut => Slice)
    }

    /// A mutable view of `self[r]`.
    pub(crate) fn sub_mut(&mut self, r: Range<usize>) -> SliceMut<'_> {
        each_variant!(self, v => &mut v[r], SliceMut => SliceMut)
    }

    /// Splits at `mid` (like `split_at_mut`).
    pub(crate) fn split_at(self, mid: usize) -> (SliceMut<'a>, SliceMut<'a>) {
        match self {
            SliceMut::F32(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::F32(a), SliceMut::F32(b))
            }
            SliceMut::F64(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::F64(a), SliceMut::F64(b))
            }
            SliceMut::C32(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::C32(a), SliceMut::C32(b))
            }
            SliceMut::C64(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::C64(a), SliceMut::C64(b))
            }
            SliceMut::I32(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::I32(a), SliceMut::I32(b))
            }
            SliceMut::I64(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::I64(a), SliceMut::I64(b))
            }
            SliceMut::Bool(v) => {
                let (a, b) = v.split_at_mut(mid);
                (SliceMut::Bool(a), SliceMut::Bool(b))
            }
        }
    }
}

/// The whole of `d` as a mutable slice.
pub(crate) fn whole_mut(d: &mut Data) -> SliceMut<'_> {
    let n = d.len();
    slice_mut_of(d, 0..n)
}

type KResult = std::result::Result<(), String>;

fn mismatch(what: &str) -> String {
    format!("operands of unexpected dtypes for {what}")
}

#[inline(always)]
fn map1<T: Copy, R>(src: &[T], dst: &mut [R], f: impl Fn(T) -> R) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = f(x);
    }
}

/// `dst[i] = f(a[i], b[i])`; an operand of length 1 (while `dst` is longer) is a
/// broadcast scalar; `None` is the destination itself.
#[inline(always)]
fn map2_same<T: Copy>(a: Option<&[T]>, b: Option<&[T]>, dst: &mut [T], f: impl Fn(T, T) -> T) {
    let n = dst.len();
    let splat = |x: &[T]| x.len() == 1 && n != 1;
    match (a, b) {
        (Some(a), Some(b)) if splat(a) && splat(b) => dst.fill(f(a[0], b[0])),
        (Some(a), Some(b)) if splat(a) => {
            let x = a[0];
            for (d, &y) in dst.iter_mut().zip(b) {
                *d = f(x, y);
            }
        }
        (Some(a), Some(b)) if splat(b) => {
            let y = b[0];
            for (d, &x) in dst.iter_mut().zip(a) {
                *d = f(x, y);
            }
        }
        (Some(a), Some(b)) => {
            for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                *d = f(x, y);
            }
        }
        (None, Some(b)) if splat(b) => {
            let y = b[0];
            for d in dst.iter_mut() {
                *d = f(*d, y);
            }
        }
        (None, Some(b)) => {
            for (d, &y) in dst.iter_mut().zip(b) {
                *d = f(*d, y);
            }
        }
        (Some(a), None) if splat(a) => {
            let x = a[0];
            for d in dst.iter_mut() {
                *d = f(x, *d);
            }
        }
        (Some(a), None) => {
            for (d, &x) in dst.iter_mut().zip(a) {
                *d = f(x, *d);
            }
        }
        (None, None) => {
            for d in dst.iter_mut() {
                *d = f(*d, *d);
            }
        }
    }
}

/// A tile loop for the op table's complex → real semantics.
struct TableMapToReal<'a, T, R> {
    src: &'a [T],
    dst: &'a mut [R],
}

impl<T: Copy, R> ElemMap<T, R> for TableMapToReal<'_, T, R> {
    type Out = ();
    #[inline(always)]
    fn map<F: Fn(T) -> R + Copy>(self, f: F) {
        map1(self.src, self.dst, f)
    }
}

/// The error for an op the table gives no semantics for this dtype (the verifier rejects
/// such programs, so this is reached only through a malformed schedule).
fn no_semantics(u: UnaryOp, dtype: &str) -> String {
    format!("`{}` has no semantics for {dtype} operands", u.name())
}

macro_rules! real_unary {
    ($name:ident, $t:ty, $dtype:expr, $map:ident, $vec:path, $vec_inplace:path) => {
        /// The vectorised kernel where vmath has one, else the op table's semantics.
        #[inline(always)]
        fn $name(u: UnaryOp, src: Option<&[$t]>, d: &mut [$t]) -> KResult {
            if math::is_transcendental(u, $dtype) {
                match src {
                    Some(a) => $vec(u, a, d),
                    None => $vec_inplace(u, d),
                }
                return Ok(());
            }
            u.$map(TableLoop { src, dst: d })
                .ok_or_else(|| no_semantics(u, stringify!($t)))
        }
    };
}
real_unary!(
    unary_f64,
    f64,
    DType::F64,
    map_f64,
    math::unary_f64,
    math::unary_f64_inplace
);
real_unary!(
    unary_f32,
    f32,
    DType::F32,
    map_f32,
    math::unary_f32,
    math::unary_f32_inplace
);

/// Squared norms in `[NORM_LO, f64::MAX]` give `sqrt(re² + im²)` within about one ulp of
/// `hypot`; outside (overflow, underflow, zero, non-finite) `hypot` is used.
const NORM_LO: f64 = 1e-290;

#[inline(always)]
fn norm_ok(s: f64) -> bool {
    (NORM_LO..=f64::MAX).contains(&s)
}

/// `|z|` for every element: a vectorisable `sqrt(re² + im²)`, with `norm` (hypot) for
/// the elements whose squared norm is out of range (checked per tile).
#[inline(always)]
fn norm_c64(a: &[Complex64], d: &mut [f64]) {
    // A u64 flag (not a bool) keeps the range check in vector registers.
    let mut bad = 0u64;
    for (o, z) in d.iter_mut().zip(a) {
        let s = z.re * z.re + z.im * z.im;
        bad |= !norm_ok(s) as u64;
        *o = s.sqrt();
    }
    if bad != 0 {
        for (o, z) in d.iter_mut().zip(a) {
            if !norm_ok(z.re * z.re + z.im * z.im) {
                *o = z.norm();
            }
        }
    }
}

/// The sign of complex numbers, `z / |z|` (0 at 0), with the norm of [`norm_c64`].
trait FastSign: Sized {
    fn fast_sign(a: &[Self], d: &mut [Self]);
}

impl FastSign for Complex64 {
    #[inline(always)]
    fn fast_sign(a: &[Self], d: &mut [Self]) {
        let mut bad = 0u64;
        for (o, z) in d.iter_mut().zip(a) {
            let s = z.re * z.re + z.im * z.im;
            bad |= !norm_ok(s) as u64;
            // One division per element: in the checked range `1 / |z|` is normal, and
            // `x · (1 / |z|)` is within about one ulp of `x / |z|`.
            let r = 1.0 / s.sqrt();
            *o = Complex64::new(z.re * r, z.im * r);
        }
        if bad != 0 {
            for (o, z) in d.iter_mut().zip(a) {
                if !norm_ok(z.re * z.re + z.im * z.im) {
                    let n = z.norm();
                    *o = if n == 0.0 {
                        Complex64::new(0.0, 0.0)
                    } else {
                        Complex64::new(z.re / n, z.im / n)
                    };
                }
            }
        }
    }
}

impl FastSign for Complex32 {
    #[inline(always)]
    fn fast_sign(a: &[Self], d: &mut [Self]) {
        for (o, z) in d.iter_mut().zip(a) {
            let (re, im) = (z.re as f64, z.im as f64);
            let n = (re * re + im * im).sqrt();
            *o = if n == 0.0 {
                Complex32::new(0.0, 0.0)
            } else {
                Complex32::new((re / n) as f32, (im / n) as f32)
            };
        }
    }
}

#[inline(always)]
fn fast_sign<T: FastSign>(a: &[T], d: &mut [T]) {
    T::fast_sign(a, d)
}

macro_rules! complex_unary {
    ($name:ident, $t:ty, $map:ident) => {
        /// The complex sign through [`fast_sign`], every other op through the op table.
        #[inline(always)]
        fn $name(u: UnaryOp, src: Option<&[Complex<$t>]>, d: &mut [Complex<$t>]) -> KResult {
            if u == UnaryOp::Sign {
                match src {
                    Some(a) => fast_sign(a, d),
                    None => {
                        // In place: through a copy of each chunk.
                        let mut buf = [Complex::<$t>::new(0.0, 0.0); 64];
                        for c in d.chunks_mut(64) {
                            let b = &mut buf[..c.len()];
                            b.copy_from_slice(c);
                            fast_sign(b, c);
                        }
                    }
                }
                return Ok(());
            }
            u.$map(TableLoop { src, dst: d })
                .ok_or_else(|| no_semantics(u, concat!("complex ", stringify!($t))))
        }
    };
}
complex_unary!(unary_c64, f64, map_c64);
complex_unary!(unary_c32, f32, map_c32);

/// An integer unary op of the table over one tile (`None` operand: the destination).
macro_rules! int_unary {
    ($u:expr, $variant:ident, $map:ident, $name:literal, $src:expr, $d:expr) => {{
        let a = match $src {
            None => None,
            Some(Slice::$variant(a)) => Some(a),
            _ => return Err(mismatch($u.name())),
        };
        $u.$map(TableLoop { src: a, dst: $d })
            .ok_or_else(|| no_semantics($u, $name))
    }};
}

#[inline(always)]
fn unary(u: UnaryOp, src: Option<Slice<'_>>, dst: SliceMut<'_>) -> KResult {
    match (dst, src) {
        (SliceMut::F64(d), None) => unary_f64(u, None, d),
        (SliceMut::F64(d), Some(Slice::F64(a))) => unary_f64(u, Some(a), d),
        (SliceMut::F32(d), None) => unary_f32(u, None, d),
        (SliceMut::F32(d), Some(Slice::F32(a))) => unary_f32(u, Some(a), d),
        // |z| has a vectorised norm; the other complex → real ops come from the table.
        (SliceMut::F64(d), Some(Slice::C64(a))) if u == UnaryOp::Abs => {
            norm_c64(a, d);
            Ok(())
        }
        (SliceMut::F32(d), Some(Slice::C32(a))) if u == UnaryOp::Abs => {
            map1(a, d, |z| {
                let (re, im) = (z.re as f64, z.im as f64);
                // Exact squares, one rounding in the sum: never overflows or underflows.
                let r = (re * re + im * im).sqrt() as f32;
                // hypot(±inf, NaN) is +inf.
                if z.re.is_infinite() || z.im.is_infinite() {
                    f32::INFINITY
                } else {
                    r
                }
            });
            Ok(())
        }
        (SliceMut::F64(d), Some(Slice::C64(a))) => u
            .map_c64_to_real(TableMapToReal { src: a, dst: d })
            .ok_or_else(|| no_semantics(u, "complex f64 (with a real result)")),
        (SliceMut::F32(d), Some(Slice::C32(a))) => u
            .map_c32_to_real(TableMapToReal { src: a, dst: d })
            .ok_or_else(|| no_semantics(u, "complex f32 (with a real result)")),
        (SliceMut::C64(d), None) => unary_c64(u, None, d),
        (SliceMut::C64(d), Some(Slice::C64(a))) => unary_c64(u, Some(a), d),
        (SliceMut::C32(d), None) => unary_c32(u, None, d),
        (SliceMut::C32(d), Some(Slice::C32(a))) => unary_c32(u, Some(a), d),
        (SliceMut::I32(d), src) => int_unary!(u, I32, map_i32, "i32", src, d),
        (SliceMut::I64(d), src) => int_unary!(u, I64, map_i64, "i64", src, d),
        _ => Err(mismatch(u.name())),
    }
}

/// A tile loop for the op table's binary semantics (`None` operands: the destination).
struct TableMap2<'a, T> {
    a: Option<&'a [T]>,
    b: Option<&'a [T]>,
    dst: &'a mut [T],
}

impl<T: Copy> ElemMap2<T> for TableMap2<'_, T> {
    type Out = ();
    #[inline(always)]
    fn map<F: Fn(T, T) -> T + Copy>(self, f: F) {
        map2_same(self.a, self.b, self.dst, f)
    }
}

/// `d = a · b` over c64 tiles (`None` is the destination itself). Operands of the tile's
/// length go through the vector kernels of [`mul_folded`] when the CPU has AVX (same
/// bits as `Complex64 * Complex64`).
#[inline(always)]
fn mul_c64(a: Option<&[Complex64]>, b: Option<&[Complex64]>, d: &mut [Complex64]) {
    #[cfg(target_arch = "x86_64")]
    {
        let n = d.len();
        let full = |x: Option<&[Complex64]>| x.is_none_or(|x| x.len() == n);
        if full(a) && full(b) && std::arch::is_x86_feature_detected!("avx") {
            let dp = d.as_mut_ptr() as *mut f64;
            let ap = a.map_or(dp as *const f64, |x| x.as_ptr() as *const f64);
            let bp = b.map_or(dp as *const f64, |x| x.as_ptr() as *const f64);
            // SAFETY: AVX is available (checked above); `ap` and `bp` point at `n`
            // readable complex numbers (the operands, or `d` itself), `dp` at `n`
            // writable ones, and element `i` is read before it is written.
            unsafe { cmul::mul([Fold::Plain; 2], false, ap, bp, dp, n) };
            return;
        }
    }
    map2_same(a, b, d, |p: Complex64, q: Complex64| p * q)
}

/// One operand of [`mul_folded`]: complex, real (a [`Fold::Real`] operand), or the
/// destination itself (`None` in the op's operand list).
#[derive(Clone, Copy)]
enum Factor<'a, T> {
    Complex(&'a [Complex<T>]),
    Real(&'a [T]),
    Dst,
}

/// The slices a [`Factor`] of one precision takes: its complex and real dtypes.
trait FactorOf: Sized {
    fn factor(x: Slice<'_>) -> Option<Factor<'_, Self>>;
}

macro_rules! factor_of {
    ($($T:ty: $C:ident $R:ident),*) => {$(
        impl FactorOf for $T {
            fn factor(x: Slice<'_>) -> Option<Factor<'_, $T>> {
                match x {
                    Slice::$C(v) => Some(Factor::Complex(v)),
                    Slice::$R(v) => Some(Factor::Real(v)),
                    _ => None,
                }
            }
        }
    )*};
}
factor_of!(f64: C64 F64, f32: C32 F32);

impl<'a, T: FactorOf> Factor<'a, T> {
    /// The operand read through `fold`, or why it does not fit.
    fn new(x: Option<Slice<'a>>, fold: Fold) -> std::result::Result<Self, String> {
        let f = match x {
            None => Factor::Dst,
            Some(x) => T::factor(x).ok_or_else(|| mismatch("mul"))?,
        };
        match (fold, &f) {
            (Fold::Real | Fold::RealTwice, Factor::Real(_))
            | (Fold::Plain | Fold::Conj, Factor::Complex(_) | Factor::Dst) => Ok(f),
            _ => Err(mismatch("mul")),
        }
    }
}

impl<T> Factor<'_, T> {
    /// Elements, or `None` for the destination.
    fn len(&self) -> Option<usize> {
        match self {
            Factor::Complex(x) => Some(x.len()),
            Factor::Real(x) => Some(x.len()),
            Factor::Dst => None,
        }
    }
}

/// `d = fa(a) · fb(b)` over complex tiles, each operand read through its [`Fold`]: as
/// stored, conjugated (the imaginary part negated), or a real operand `x` as `(x, +0)` or
/// `(x + x, +0)`; with `twice`, `d = y + y` for that product `y`. The complex product is
/// the same expression as `Complex * Complex` and the sums are the same additions, so
/// the result has the bits of the unfused ops. Operands of one element are broadcast,
/// as for binary ops.
fn mul_folded(
    folds: [Fold; 2],
    twice: bool,
    a: Option<Slice<'_>>,
    b: Option<Slice<'_>>,
    dst: SliceMut<'_>,
) -> KResult {
    match dst {
        SliceMut::C64(d) => {
            let (fa, fb) = (Factor::<f64>::new(a, folds[0])?, Factor::new(b, folds[1])?);
            #[cfg(target_arch = "x86_64")]
            {
                let n = d.len();
                let full = |f: &Factor<'_, f64>| f.len().is_none_or(|l| l == n);
                if full(&fa) && full(&fb) && std::arch::is_x86_feature_detected!("avx") {
                    let dp = d.as_mut_ptr() as *mut f64;
                    let ptr = |f: &Factor<'_, f64>| match f {
                        Factor::Complex(x) => x.as_ptr() as *const f64,
                        Factor::Real(x) => x.as_ptr(),
                        Factor::Dst => dp as *const f64,
                    };
                    let (ap, bp) = (ptr(&fa), ptr(&fb));
                    // SAFETY: AVX is available (checked above); `ap` and `bp` point at `n`
                    // readable operands (complex numbers, or reals for a `Real` fold, as
                    // `Factor::new` checked), `dp` at `n` writable complex numbers, and
                    // element `i` is read before it is written.
                    unsafe { cmul::mul(folds, twice, ap, bp, dp, n) };
                    return Ok(());
                }
            }
            mul_folded_scalar(folds, twice, fa, fb, d);
            Ok(())
        }
        SliceMut::C32(d) => {
            let (fa, fb) = (Factor::<f32>::new(a, folds[0])?, Factor::new(b, folds[1])?);
            mul_folded_scalar(folds, twice, fa, fb, d);
            Ok(())
        }
        _ => Err(mismatch("mul")),
    }
}

/// [`mul_folded`] element by element (a length-1 operand broadcast).
fn mul_folded_scalar<T>(
    folds: [Fold; 2],
    twice: bool,
    a: Factor<'_, T>,
    b: Factor<'_, T>,
    d: &mut [Complex<T>],
) where
    T: Copy + Default + std::ops::Neg<Output = T> + std::ops::Add<Output = T>,
    Complex<T>: std::ops::Mul<Output = Complex<T>>,
{
    let n = d.len();
    // Index step: 0 for a broadcast element.
    let step = |f: &Factor<'_, T>| usize::from(f.len().is_none_or(|l| l != 1 || n == 1));
    let (sa, sb) = (step(&a), step(&b));
    let at = |f: &Factor<'_, T>, fold: Fold, i: usize, own: Complex<T>| -> Complex<T> {
        let z = match f {
            Factor::Complex(x) => x[i],
            Factor::Real(x) if fold == Fold::RealTwice => Complex::new(x[i] + x[i], T::default()),
            Factor::Real(x) => Complex::new(x[i], T::default()),
            Factor::Dst => own,
        };
        match fold {
            Fold::Conj => Complex::new(z.re, -z.im),
            Fold::Plain | Fold::Real | Fold::RealTwice => z,
        }
    };
    for i in 0..n {
        let own = d[i];
        let y = at(&a, folds[0], i * sa, own) * at(&b, folds[1], i * sb, own);
        d[i] = if twice {
            Complex::new(y.re + y.re, y.im + y.im)
        } else {
            y
        };
    }
}

/// The x86-64 kernels of c64 products, `d[i] = fa(a[i]) · fb(b[i])` (doubled with
/// `twice`) over `n` full-length operands (see [`mul_folded`]): four products per 512-bit
/// vector on AVX-512, two per 256-bit vector on AVX. Both compute each part as
/// `Complex * Complex` does (two products, then one subtraction or addition; no FMA), so
/// they give its bits.
#[cfg(target_arch = "x86_64")]
mod cmul {
    use super::Fold;
    use num_complex::Complex64;
    use std::arch::x86_64::*;

    const PLAIN: u8 = 0;
    const CONJ: u8 = 1;
    const REAL: u8 = 2;
    const REAL_TWICE: u8 = 3;

    /// Runs the kernel for `folds` and `twice`, the widest the CPU has.
    ///
    /// # Safety
    /// The CPU has AVX; `a` and `b` point at `n` readable operands (complex numbers, or
    /// reals for a `Real` / `RealTwice` fold), `d` at `n` writable complex numbers;
    /// element `i` of an operand that aliases `d` is read before `d[i]` is written.
    pub(super) unsafe fn mul(
        folds: [Fold; 2],
        twice: bool,
        a: *const f64,
        b: *const f64,
        d: *mut f64,
        n: usize,
    ) {
        let wide = std::arch::is_x86_feature_detected!("avx512f");
        // Every (fold, fold) pair, each with and without the doubling.
        macro_rules! go {
            ($($fa:ident $ca:ident, $fb:ident $cb:ident);* $(;)?) => {
                match (folds, twice) {
                    $(
                        ([Fold::$fa, Fold::$fb], false) => run::<$ca, $cb, false>(wide, a, b, d, n),
                        ([Fold::$fa, Fold::$fb], true) => run::<$ca, $cb, true>(wide, a, b, d, n),
                    )*
                }
            };
        }
        // SAFETY: the caller's contract.
        unsafe {
            go!(
                Plain PLAIN, Plain PLAIN; Plain PLAIN, Conj CONJ;
                Plain PLAIN, Real REAL; Plain PLAIN, RealTwice REAL_TWICE;
                Conj CONJ, Plain PLAIN; Conj CONJ, Conj CONJ;
                Conj CONJ, Real REAL; Conj CONJ, RealTwice REAL_TWICE;
                Real REAL, Plain PLAIN; Real REAL, Conj CONJ;
                Real REAL, Real REAL; Real REAL, RealTwice REAL_TWICE;
                RealTwice REAL_TWICE, Plain PLAIN; RealTwice REAL_TWICE, Conj CONJ;
                RealTwice REAL_TWICE, Real REAL; RealTwice REAL_TWICE, RealTwice REAL_TWICE;
            )
        }
    }

    /// One kernel instance: whole groups of four on AVX-512 (`wide`), the rest on AVX.
    ///
    /// # Safety
    /// As [`mul`]; `wide` only if the CPU has AVX-512F.
    #[inline(always)]
    unsafe fn run<const FA: u8, const FB: u8, const TW: bool>(
        wide: bool,
        a: *const f64,
        b: *const f64,
        d: *mut f64,
        n: usize,
    ) {
        // SAFETY: the caller's contract.
        unsafe {
            let done = if wide {
                mul512::<FA, FB, TW>(a, b, d, n)
            } else {
                0
            };
            mul256::<FA, FB, TW>(a, b, d, done, n)
        }
    }

    /// Elements `i .. i + 4` of `p`, folded by `F`.
    #[inline(always)]
    unsafe fn four<const F: u8>(p: *const f64, i: usize) -> __m512d {
        // SAFETY (whole block): the caller reads elements `i .. i + 4` of `p`; AVX-512F.
        unsafe {
            match F {
                // Four reals into the even (real) lanes, +0 in the odd ones.
                REAL => _mm512_maskz_expandloadu_pd(0x55, p.add(i)),
                REAL_TWICE => {
                    let r = _mm512_maskz_expandloadu_pd(0x55, p.add(i));
                    _mm512_add_pd(r, r)
                }
                CONJ => {
                    let sign = _mm512_set_epi64(i64::MIN, 0, i64::MIN, 0, i64::MIN, 0, i64::MIN, 0);
                    let x = _mm512_castpd_si512(_mm512_loadu_pd(p.add(2 * i)));
                    _mm512_castsi512_pd(_mm512_xor_epi64(x, sign))
                }
                _ => _mm512_loadu_pd(p.add(2 * i)),
            }
        }
    }

    /// Whole groups of four products from element 0; returns how many it wrote.
    #[target_feature(enable = "avx512f")]
    unsafe fn mul512<const FA: u8, const FB: u8, const TW: bool>(
        a: *const f64,
        b: *const f64,
        d: *mut f64,
        n: usize,
    ) -> usize {
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY (whole block): indices below n, see `mul`.
            unsafe {
                let x = four::<FA>(a, i);
                let y = four::<FB>(b, i);
                let p = _mm512_mul_pd(x, _mm512_movedup_pd(y));
                let q = _mm512_mul_pd(_mm512_permute_pd(x, 0x55), _mm512_permute_pd(y, 0xff));
                // Real lanes p - q, imaginary lanes p + q.
                let mut r = _mm512_mask_sub_pd(_mm512_add_pd(p, q), 0x55, p, q);
                if TW {
                    r = _mm512_add_pd(r, r);
                }
                _mm512_storeu_pd(d.add(2 * i), r);
            }
            i += 4;
        }
        i
    }

    /// Elements `i .. i + 2` of `p`, folded by `F`.
    #[inline(always)]
    unsafe fn two<const F: u8>(p: *const f64, i: usize) -> __m256d {
        // SAFETY (whole block): the caller reads elements `i .. i + 2` of `p`; AVX.
        unsafe {
            match F {
                REAL | REAL_TWICE => {
                    let mut r = _mm_loadu_pd(p.add(i));
                    if F == REAL_TWICE {
                        r = _mm_add_pd(r, r);
                    }
                    let z = _mm_setzero_pd();
                    _mm256_set_m128d(_mm_unpackhi_pd(r, z), _mm_unpacklo_pd(r, z))
                }
                CONJ => _mm256_xor_pd(
                    _mm256_loadu_pd(p.add(2 * i)),
                    _mm256_set_pd(-0.0, 0.0, -0.0, 0.0),
                ),
                _ => _mm256_loadu_pd(p.add(2 * i)),
            }
        }
    }

    /// Element `i` of `p`, folded by `F`.
    #[inline(always)]
    unsafe fn one<const F: u8>(p: *const f64, i: usize) -> Complex64 {
        // SAFETY (whole block): the caller reads element `i` of `p`.
        unsafe {
            match F {
                REAL => Complex64::new(*p.add(i), 0.0),
                REAL_TWICE => Complex64::new(*p.add(i) + *p.add(i), 0.0),
                CONJ => Complex64::new(*p.add(2 * i), -*p.add(2 * i + 1)),
                _ => Complex64::new(*p.add(2 * i), *p.add(2 * i + 1)),
            }
        }
    }

    /// Products `from .. n`, two per vector, the last one alone.
    #[target_feature(enable = "avx")]
    unsafe fn mul256<const FA: u8, const FB: u8, const TW: bool>(
        a: *const f64,
        b: *const f64,
        d: *mut f64,
        from: usize,
        n: usize,
    ) {
        let mut i = from;
        while i + 2 <= n {
            // SAFETY (whole block): indices below n, see `mul`.
            unsafe {
                let x = two::<FA>(a, i);
                let y = two::<FB>(b, i);
                let p = _mm256_mul_pd(x, _mm256_movedup_pd(y));
                let q = _mm256_mul_pd(_mm256_permute_pd(x, 0b0101), _mm256_permute_pd(y, 0b1111));
                let mut r = _mm256_addsub_pd(p, q);
                if TW {
                    r = _mm256_add_pd(r, r);
                }
                _mm256_storeu_pd(d.add(2 * i), r);
            }
            i += 2;
        }
        if i < n {
            // SAFETY: as above, for the last element.
            unsafe {
                let mut z = one::<FA>(a, i) * one::<FB>(b, i);
                if TW {
                    z = Complex64::new(z.re + z.re, z.im + z.im);
                }
                *d.add(2 * i) = z.re;
                *d.add(2 * i + 1) = z.im;
            }
        }
    }
}

/// Typed operand of a same-dtype op, `None` meaning "the destination".
macro_rules! operand {
    ($s:expr, $V:ident, $what:expr) => {
        match $s {
            None => None,
            Some(Slice::$V(x)) => Some(x),
            Some(_) => return Err(mismatch($what)),
        }
    };
}

/// The binary op through the op table's semantics (c64 `mul` through [`mul_c64`]).
#[inline(always)]
fn binary(op: BinaryOp, a: Option<Slice<'_>>, b: Option<Slice<'_>>, dst: SliceMut<'_>) -> KResult {
    let w = op.name();
    let done = match dst {
        SliceMut::F64(d) => op.map_f64(TableMap2 {
            a: operand!(a, F64, w),
            b: operand!(b, F64, w),
            dst: d,
        }),
        SliceMut::F32(d) => op.map_f32(TableMap2 {
            a: operand!(a, F32, w),
            b: operand!(b, F32, w),
            dst: d,
        }),
        SliceMut::C64(d) if op == BinaryOp::Mul => {
            mul_c64(operand!(a, C64, w), operand!(b, C64, w), d);
            Some(())
        }
        SliceMut::C64(d) => op.map_c64(TableMap2 {
            a: operand!(a, C64, w),
            b: operand!(b, C64, w),
            dst: d,
        }),
        SliceMut::C32(d) => op.map_c32(TableMap2 {
            a: operand!(a, C32, w),
            b: operand!(b, C32, w),
            dst: d,
        }),
        SliceMut::I32(d) => op.map_i32(TableMap2 {
            a: operand!(a, I32, w),
            b: operand!(b, I32, w),
            dst: d,
        }),
        SliceMut::I64(d) => op.map_i64(TableMap2 {
            a: operand!(a, I64, w),
            b: operand!(b, I64, w),
            dst: d,
        }),
        SliceMut::Bool(_) => None,
    };
    done.ok_or_else(|| format!("`{w}` has no semantics for these operands"))
}

#[inline(always)]
fn cmp2<T: Copy>(a: &[T], b: &[T], d: &mut [bool], f: impl Fn(T, T) -> bool) {
    for ((o, &x), &y) in d.iter_mut().zip(a).zip(b) {
        *o = f(x, y);
    }
}

#[inline(always)]
fn ordered<T: PartialOrd + Copy>(c: CmpOp, a: &[T], b: &[T], d: &mut [bool]) {
    match c {
        CmpOp::Eq => cmp2(a, b, d, |p, q| p == q),
        CmpOp::Ne => cmp2(a, b, d, |p, q| p != q),
        CmpOp::Lt => cmp2(a, b, d, |p, q| p < q),
        CmpOp::Le => cmp2(a, b, d, |p, q| p <= q),
        CmpOp::Gt => cmp2(a, b, d, |p, q| p > q),
        CmpOp::Ge => cmp2(a, b, d, |p, q| p >= q),
    }
}

#[inline(always)]
fn equality<T: PartialEq + Copy>(c: CmpOp, a: &[T], b: &[T], d: &mut [bool]) -> KResult {
    match c {
        CmpOp::Eq => cmp2(a, b, d, |p, q| p == q),
        CmpOp::Ne => cmp2(a, b, d, |p, q| p != q),
        _ => return Err("ordered comparison of complex operands".into()),
    }
    Ok(())
}

#[inline(always)]
fn compare(c: CmpOp, a: Slice<'_>, b: Slice<'_>, dst: SliceMut<'_>) -> KResult {
    let SliceMut::Bool(d) = dst else {
        return Err(mismatch("compare"));
    };
    match (a, b) {
        (Slice::F64(x), Slice::F64(y)) => ordered(c, x, y, d),
        (Slice::F32(x), Slice::F32(y)) => ordered(c, x, y, d),
        (Slice::I32(x), Slice::I32(y)) => ordered(c, x, y, d),
        (Slice::I64(x), Slice::I64(y)) => ordered(c, x, y, d),
        (Slice::Bool(x), Slice::Bool(y)) => ordered(c, x, y, d),
        (Slice::C64(x), Slice::C64(y)) => equality(c, x, y, d)?,
        (Slice::C32(x), Slice::C32(y)) => equality(c, x, y, d)?,
        _ => return Err(mismatch("compare")),
    }
    Ok(())
}

#[inline(always)]
fn pick<T: Copy>(p: &[bool], t: &[T], f: &[T], d: &mut [T]) {
    for (((o, &c), &x), &y) in d.iter_mut().zip(p).zip(t).zip(f) {
        *o = if c { x } else { y };
    }
}

#[inline(always)]
fn select(p: Slice<'_>, t: Slice<'_>, f: Slice<'_>, dst: SliceMut<'_>) -> KResult {
    let Slice::Bool(p) = p else {
        return Err(mismatch("select"));
    };
    match (dst, t, f) {
        (SliceMut::F64(d), Slice::F64(a), Slice::F64(b)) => pick(p, a, b, d),
        (SliceMut::F32(d), Slice::F32(a), Slice::F32(b)) => pick(p, a, b, d),
        (SliceMut::C64(d), Slice::C64(a), Slice::C64(b)) => pick(p, a, b, d),
        (SliceMut::C32(d), Slice::C32(a), Slice::C32(b)) => pick(p, a, b, d),
        (SliceMut::I32(d), Slice::I32(a), Slice::I32(b)) => pick(p, a, b, d),
        (SliceMut::I64(d), Slice::I64(a), Slice::I64(b)) => pick(p, a, b, d),
        (SliceMut::Bool(d), Slice::Bool(a), Slice::Bool(b)) => pick(p, a, b, d),
        _ => return Err(mismatch("select")),
    }
    Ok(())
}

/// Element conversions with the project's convert rules.
trait FromElem: Copy {
    fn from_f32(x: f32) -> Self;
    fn from_f64(x: f64) -> Self;
    fn from_c32(x: Complex32) -> Self;
    fn from_c64(x: Complex64) -> Self;
    fn from_i32(x: i32) -> Self;
    fn from_i64(x: i64) -> Self;
    fn from_bool(x: bool) -> Self;
}

fn b2f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl FromElem for f64 {
    fn from_f32(x: f32) -> f64 {
        x as f64
    }
    fn from_f64(x: f64) -> f64 {
        x
    }
    fn from_c32(x: Complex32) -> f64 {
        x.re as f64
    }
    fn from_c64(x: Complex64) -> f64 {
        x.re
    }
    fn from_i32(x: i32) -> f64 {
        x as f64
    }
    fn from_i64(x: i64) -> f64 {
        x as f64
    }
    fn from_bool(x: bool) -> f64 {
        b2f(x)
    }
}

impl FromElem for f32 {
    fn from_f32(x: f32) -> f32 {
        x
    }
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    fn from_c32(x: Complex32) -> f32 {
        x.re
    }
    fn from_c64(x: Complex64) -> f32 {
        x.re as f32
    }
    fn from_i32(x: i32) -> f32 {
        x as f32
    }
    fn from_i64(x: i64) -> f32 {
        x as f32
    }
    fn from_bool(x: bool) -> f32 {
        b2f(x) as f32
    }
}

impl FromElem for Complex32 {
    fn from_f32(x: f32) -> Self {
        Complex32::new(x, 0.0)
    }
    fn from_f64(x: f64) -> Self {
        Complex32::new(x as f32, 0.0)
    }
    fn from_c32(x: Complex32) -> Self {
        x
    }
    fn from_c64(x: Complex64) -> Self {
        Complex32::new(x.re as f32, x.im as f32)
    }
    fn from_i32(x: i32) -> Self {
        Complex32::new(x as f32, 0.0)
    }
    fn from_i64(x: i64) -> Self {
        Complex32::new(x as f32, 0.0)
    }
    fn from_bool(x: bool) -> Self {
        Complex32::new(b2f(x) as f32, 0.0)
    }
}

impl FromElem for Complex64 {
    fn from_f32(x: f32) -> Self {
        Complex64::new(x as f64, 0.0)
    }
    fn from_f64(x: f64) -> Self {
        Complex64::new(x, 0.0)
    }
    fn from_c32(x: Complex32) -> Self {
        Complex64::new(x.re as f64, x.im as f64)
    }
    fn from_c64(x: Complex64) -> Self {
        x
    }
    fn from_i32(x: i32) -> Self {
        Complex64::new(x as f64, 0.0)
    }
    fn from_i64(x: i64) -> Self {
        Complex64::new(x as f64, 0.0)
    }
    fn from_bool(x: bool) -> Self {
        Complex64::new(b2f(x), 0.0)
    }
}

/// Integer targets: floats truncate (saturating, NaN → 0), integers wrap to the width.
macro_rules! int_from_elem {
    ($t:ty) => {
        impl FromElem for $t {
            fn from_f32(x: f32) -> $t {
                x as $t
            }
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            fn from_c32(x: Complex32) -> $t {
                x.re as $t
            }
            fn from_c64(x: Complex64) -> $t {
                x.re as $t
            }
            fn from_i32(x: i32) -> $t {
                x as $t
            }
            fn from_i64(x: i64) -> $t {
                x as $t
            }
            fn from_bool(x: bool) -> $t {
                x as $t
            }
        }
    };
}
int_from_elem!(i32);
int_from_elem!(i64);

impl FromElem for bool {
    fn from_f32(x: f32) -> bool {
        x != 0.0
    }
    fn from_f64(x: f64) -> bool {
        x != 0.0
    }
    fn from_c32(x: Complex32) -> bool {
        x.re != 0.0 || x.im != 0.0
    }
    fn from_c64(x: Complex64) -> bool {
        x.re != 0.0 || x.im != 0.0
    }
    fn from_i32(x: i32) -> bool {
        x != 0
    }
    fn from_i64(x: i64) -> bool {
        x != 0
    }
    fn from_bool(x: bool) -> bool {
        x
    }
}

#[inline(always)]
fn convert_into<T: FromElem>(src: Slice<'_>, d: &mut [T]) {
    match src {
        Slice::F32(a) => map1(a, d, T::from_f32),
        Slice::F64(a) => map1(a, d, T::from_f64),
        Slice::C32(a) => map1(a, d, T::from_c32),
        Slice::C64(a) => map1(a, d, T::from_c64),
        Slice::I32(a) => map1(a, d, T::from_i32),
        Slice::I64(a) => map1(a, d, T::from_i64),
        Slice::Bool(a) => map1(a, d, T::from_bool),
    }
}

#[inline(always)]
fn convert(src: Slice<'_>, dst: SliceMut<'_>) {
    match dst {
        SliceMut::F32(d) => convert_into(src, d),
        SliceMut::F64(d) => convert_into(src, d),
        SliceMut::C32(d) => convert_into(src, d),
        SliceMut::C64(d) => convert_into(src, d),
        SliceMut::I32(d) => convert_into(src, d),
        SliceMut::I64(d) => convert_into(src, d),
        SliceMut::Bool(d) => convert_into(src, d),
    }
}

/// Runs elementwise op `kind` over `srcs` into `dst` (all of one tile's length; a binary
/// op's operand may be a broadcast scalar of length 1). Compiled twice: with AVX2 (chosen
/// at run time when the CPU has it) and for the baseline target. Both give the same bits:
/// no op is contracted into an FMA.
pub(crate) fn eval(kind: &TileOpKind, srcs: &[Option<Slice<'_>>], dst: SliceMut<'_>) -> KResult {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { eval_avx2(kind, srcs, dst) };
        }
    }
    eval_generic(kind, srcs, dst)
}

/// [`eval`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn eval_avx2(kind: &TileOpKind, srcs: &[Option<Slice<'_>>], dst: SliceMut<'_>) -> KResult {
    eval_generic(kind, srcs, dst)
}

#[inline(always)]
fn eval_generic(kind: &TileOpKind, srcs: &[Option<Slice<'_>>], dst: SliceMut<'_>) -> KResult {
    let need = |i: usize| -> std::result::Result<Slice<'_>, String> {
        srcs.get(i)
            .copied()
            .flatten()
            .ok_or_else(|| format!("operand {i} of a tile op is missing"))
    };
    match kind {
        TileOpKind::Unary(u) => unary(*u, srcs.first().copied().flatten(), dst),
        TileOpKind::Binary(b) => binary(
            *b,
            srcs.first().copied().flatten(),
            srcs.get(1).copied().flatten(),
            dst,
        ),
        TileOpKind::MulFolded { folds, twice } => mul_folded(
            *folds,
            *twice,
            srcs.first().copied().flatten(),
            srcs.get(1).copied().flatten(),
            dst,
        ),
        TileOpKind::Compare(c) => compare(*c, need(0)?, need(1)?, dst),
        TileOpKind::Select => select(need(0)?, need(1)?, need(2)?, dst),
        TileOpKind::Convert(_) | TileOpKind::Copy => {
            convert(need(0)?, dst);
            Ok(())
        }
        TileOpKind::Reduce(_) => Err("a reduction is not an elementwise op".into()),
        TileOpKind::Twin { .. } => Err("a twin op has two destinations".into()),
    }
}

/// Runs twin op `twin` over one tile: `a` gets its first op (`sin`), `b` its second
/// (`cos`); the same bits as the two ops run separately.
pub(crate) fn twin_eval(twin: Twin, x: Slice<'_>, a: SliceMut<'_>, b: SliceMut<'_>) -> KResult {
    match twin {
        Twin::SinCos => sincos(x, a, b),
        Twin::AbsSign => match (x, a, b) {
            (Slice::C64(x), SliceMut::F64(n), SliceMut::C64(g))
                if x.len() == n.len() && x.len() == g.len() =>
            {
                abs_sign_c64(x, n, g);
                Ok(())
            }
            _ => Err(mismatch("abs and sign")),
        },
    }
}

/// `n = |z|` and `g = sign(z)` for every element. In range (squared norm `s` in
/// `[NORM_LO, f64::MAX]`) on AVX-512: `y ≈ 1 / sqrt(s)` from the 14-bit reciprocal
/// square root and two Newton steps, `n = s·y` corrected once from its exact residual
/// (FMA), and `g = z · r` with `r ≈ 1 / n` two Newton steps from `y`. No square root or
/// division: the two share one divider, which made this the slowest tile op of complex
/// gradients. Within 2 ulps of [`norm_c64`] and the c64 [`FastSign`] (`sqrt(s)` and
/// `z · (1 / sqrt(s))`; on random inputs the same bits), which the other CPUs and the
/// tail compute; out of range through `hypot`, 0 at 0.
#[inline(always)]
fn abs_sign_c64(a: &[Complex64], n: &mut [f64], g: &mut [Complex64]) {
    let mut done = 0;
    let mut bad = 0u64;
    #[cfg(target_arch = "x86_64")]
    if crate::vmath::Isa::Avx512.is_available() {
        // SAFETY: AVX-512F is present; the three slices have one length (checked by
        // `twin_eval`).
        let (d, b) = unsafe { abs_sign_c64_avx512(a, n, g) };
        (done, bad) = (d, b as u64);
    }
    for ((o, s_out), z) in n[done..].iter_mut().zip(&mut g[done..]).zip(&a[done..]) {
        let s = z.re * z.re + z.im * z.im;
        bad |= !norm_ok(s) as u64;
        let q = s.sqrt();
        *o = q;
        let r = 1.0 / q;
        *s_out = Complex64::new(z.re * r, z.im * r);
    }
    if bad != 0 {
        for ((o, s_out), z) in n.iter_mut().zip(g.iter_mut()).zip(a) {
            if !norm_ok(z.re * z.re + z.im * z.im) {
                let m = z.norm();
                *o = m;
                *s_out = if m == 0.0 {
                    Complex64::new(0.0, 0.0)
                } else {
                    Complex64::new(z.re / m, z.im / m)
                };
            }
        }
    }
}

/// The AVX-512 part of [`abs_sign_c64`]: whole groups of 8 elements; returns how many
/// elements it wrote and whether any squared norm was out of range.
///
/// # Safety
/// The CPU has AVX-512F; `n` and `g` are at least as long as `a`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn abs_sign_c64_avx512(
    a: &[Complex64],
    n: &mut [f64],
    g: &mut [Complex64],
) -> (usize, bool) {
    use std::arch::x86_64::*;
    let groups = a.len() / 8;
    let (ap, np, gp) = (
        a.as_ptr().cast::<f64>(),
        n.as_mut_ptr(),
        g.as_mut_ptr().cast::<f64>(),
    );
    let (lo, hi) = (_mm512_set1_pd(NORM_LO), _mm512_set1_pd(f64::MAX));
    let (one, half) = (_mm512_set1_pd(1.0), _mm512_set1_pd(0.5));
    // Lane indices into two vectors of (re, im) pairs: the even (real) and odd lanes, and
    // each of 8 values twice, for the first and the last 4 elements.
    let (re, im) = (
        _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0),
        _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1),
    );
    let (dup0, dup1) = (
        _mm512_set_epi64(3, 3, 2, 2, 1, 1, 0, 0),
        _mm512_set_epi64(7, 7, 6, 6, 5, 5, 4, 4),
    );
    let mut ok: __mmask8 = 0xff;
    for k in 0..groups {
        // SAFETY: group `k` is elements 8k..8k+8 of `a`, `n` and `g` (16 f64 of `a`, `g`).
        unsafe {
            let (z0, z1) = (
                _mm512_loadu_pd(ap.add(16 * k)),
                _mm512_loadu_pd(ap.add(16 * k + 8)),
            );
            let (sq0, sq1) = (_mm512_mul_pd(z0, z0), _mm512_mul_pd(z1, z1));
            // re² + im² of the 8 elements (the bits of the scalar sum).
            let s = _mm512_add_pd(
                _mm512_permutex2var_pd(sq0, re, sq1),
                _mm512_permutex2var_pd(sq0, im, sq1),
            );
            ok &= _mm512_cmp_pd_mask::<_CMP_GE_OQ>(s, lo) & _mm512_cmp_pd_mask::<_CMP_LE_OQ>(s, hi);
            // y ≈ 1/sqrt(s): 14 bits, then 28, then about 53.
            let mut y = _mm512_rsqrt14_pd(s);
            for _ in 0..2 {
                let e = _mm512_fnmadd_pd(_mm512_mul_pd(s, y), y, one);
                y = _mm512_fmadd_pd(_mm512_mul_pd(y, half), e, y);
            }
            // q = s·y, corrected by the exact residual s - q²; r = 1/q from y.
            let q = _mm512_mul_pd(s, y);
            let q = _mm512_fmadd_pd(_mm512_mul_pd(y, half), _mm512_fnmadd_pd(q, q, s), q);
            let r = _mm512_fmadd_pd(y, _mm512_fnmadd_pd(q, y, one), y);
            let r = _mm512_fmadd_pd(r, _mm512_fnmadd_pd(q, r, one), r);
            _mm512_storeu_pd(np.add(8 * k), q);
            _mm512_storeu_pd(
                gp.add(16 * k),
                _mm512_mul_pd(z0, _mm512_permutexvar_pd(dup0, r)),
            );
            _mm512_storeu_pd(
                gp.add(16 * k + 8),
                _mm512_mul_pd(z1, _mm512_permutexvar_pd(dup1, r)),
            );
        }
    }
    (groups * 8, ok != 0xff)
}

/// `s = sin(x)`, `c = cos(x)` over one tile (real operands), from one argument reduction.
fn sincos(x: Slice<'_>, s: SliceMut<'_>, c: SliceMut<'_>) -> KResult {
    match (x, s, c) {
        (Slice::F64(x), SliceMut::F64(s), SliceMut::F64(c))
            if x.len() != s.len() || x.len() != c.len() =>
        {
            return Err("sincos operand and destinations of different lengths".into())
        }
        (Slice::F32(x), SliceMut::F32(s), SliceMut::F32(c))
            if x.len() != s.len() || x.len() != c.len() =>
        {
            return Err("sincos operand and destinations of different lengths".into())
        }
        (Slice::F64(x), SliceMut::F64(s), SliceMut::F64(c)) => math::sincos_f64(x, s, c),
        (Slice::F32(x), SliceMut::F32(s), SliceMut::F32(c)) => math::sincos_f32(x, s, c),
        _ => return Err(mismatch("sincos")),
    }
    Ok(())
}

/// Lanes of a whole reduction.
pub(crate) const LANES: usize = 8;

/// The identity of `kind` for `dtype` (`-inf` / `+inf` for max / min).
pub(crate) fn identity(kind: ReduceOp, dtype: DType, n: usize) -> Data {
    match (kind, dtype) {
        (ReduceOp::Sum, d) => Data::zeros(d, n),
        (ReduceOp::Prod, d) => Data::splat(d, 1.0, n),
        (ReduceOp::Max, DType::I32) => Data::I32(vec![i32::MIN; n]),
        (ReduceOp::Min, DType::I32) => Data::I32(vec![i32::MAX; n]),
        (ReduceOp::Max, DType::I64) => Data::I64(vec![i64::MIN; n]),
        (ReduceOp::Min, DType::I64) => Data::I64(vec![i64::MAX; n]),
        (ReduceOp::Max, d) => Data::splat(d, f64::NEG_INFINITY, n),
        (ReduceOp::Min, d) => Data::splat(d, f64::INFINITY, n),
    }
}

#[inline(always)]
fn fold_lanes<T: Copy>(acc: &mut [T], x: &[T], g: impl Fn(T, T) -> T) {
    let acc: &mut [T; LANES] = match acc.try_into() {
        Ok(a) => a,
        Err(_) => return,
    };
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        super::prefetch_ahead(c.as_ptr());
        for j in 0..LANES {
            acc[j] = g(acc[j], c[j]);
        }
    }
    for (j, &v) in chunks.remainder().iter().enumerate() {
        acc[j] = g(acc[j], v);
    }
}

#[inline(always)]
fn combine_lanes<T: Copy>(acc: &[T], g: impl Fn(T, T) -> T) -> T {
    let mut r = acc[0];
    for &v in &acc[1..] {
        r = g(r, v);
    }
    r
}

/// `$body` with `$g` bound to the step function of reduction `$kind` on `$t`: one
/// expansion per op, so the step is a concrete function the loops in `$body` inline (and
/// vectorise), not a pointer called per element. Complex operands have no ordered
/// (max / min) reduction.
macro_rules! per_op {
    ($kind:expr, $t:ty, $g:ident, $body:expr, sum = $sum:expr, prod = $prod:expr, max = $max:expr, min = $min:expr) => {
        match $kind {
            ReduceOp::Sum => {
                let $g = $sum;
                $body
            }
            ReduceOp::Prod => {
                let $g = $prod;
                $body
            }
            ReduceOp::Max => {
                let $g = $max;
                $body
            }
            ReduceOp::Min => {
                let $g = $min;
                $body
            }
        }
    };
}

macro_rules! per_real_op {
    ($kind:expr, $t:ty, $maxf:ident, $minf:ident, $g:ident, $body:expr) => {
        per_op!(
            $kind,
            $t,
            $g,
            $body,
            sum = |p: $t, q: $t| p + q,
            prod = |p: $t, q: $t| p * q,
            max = $maxf,
            min = $minf
        )
    };
}

macro_rules! per_int_op {
    ($kind:expr, $t:ty, $g:ident, $body:expr) => {
        per_op!(
            $kind,
            $t,
            $g,
            $body,
            sum = <$t>::wrapping_add,
            prod = <$t>::wrapping_mul,
            max = |p: $t, q: $t| p.max(q),
            min = |p: $t, q: $t| p.min(q)
        )
    };
}

macro_rules! per_complex_op {
    ($kind:expr, $t:ty, $g:ident, $body:expr) => {
        match $kind {
            ReduceOp::Sum => {
                let $g = |p: $t, q: $t| p + q;
                $body
            }
            ReduceOp::Prod => {
                let $g = |p: $t, q: $t| p * q;
                $body
            }
            ReduceOp::Max | ReduceOp::Min => {
                return Err("complex operand of an ordered reduction".into())
            }
        }
    };
}

/// `$body` with `$a` (accumulators), `$v` (operand) and `$g` (the step function, see
/// [`per_op`]) bound for the dtype of `$acc` and `$x`.
macro_rules! with_reducer {
    ($kind:expr, $acc:expr, $x:expr, $what:literal, |$g:ident, $a:ident, $v:ident| $body:expr) => {
        match ($acc, $x) {
            (SliceMut::F64($a), Slice::F64($v)) => {
                per_real_op!($kind, f64, max_f64, min_f64, $g, $body)
            }
            (SliceMut::F32($a), Slice::F32($v)) => {
                per_real_op!($kind, f32, max_f32, min_f32, $g, $body)
            }
            (SliceMut::C64($a), Slice::C64($v)) => per_complex_op!($kind, Complex64, $g, $body),
            (SliceMut::C32($a), Slice::C32($v)) => per_complex_op!($kind, Complex32, $g, $body),
            (SliceMut::I32($a), Slice::I32($v)) => per_int_op!($kind, i32, $g, $body),
            (SliceMut::I64($a), Slice::I64($v)) => per_int_op!($kind, i64, $g, $body),
            _ => return Err(concat!("operand of unexpected dtype for ", $what).into()),
        }
    };
}

/// Folds `x` into the `LANES` accumulators `acc` (element `i` into lane `i mod LANES`).
pub(crate) fn reduce_lanes(kind: ReduceOp, acc: SliceMut<'_>, x: Slice<'_>) -> KResult {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { reduce_lanes_avx2(kind, acc, x) };
    }
    reduce_lanes_generic(kind, acc, x)
}

/// [`reduce_lanes`] compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn reduce_lanes_avx2(kind: ReduceOp, acc: SliceMut<'_>, x: Slice<'_>) -> KResult {
    reduce_lanes_generic(kind, acc, x)
}

#[inline(always)]
fn reduce_lanes_generic(kind: ReduceOp, acc: SliceMut<'_>, x: Slice<'_>) -> KResult {
    with_reducer!(kind, acc, x, "a reduction", |g, a, v| fold_lanes(a, v, g));
    Ok(())
}

/// Combines `LANES` accumulators in lane order into `out[0]`, then `out[0]` with `prev`.
pub(crate) fn combine(kind: ReduceOp, lanes: SliceMut<'_>) -> std::result::Result<Data, String> {
    let mut out = match &lanes {
        SliceMut::F32(_) => Data::F32(vec![0.0]),
        SliceMut::F64(_) => Data::F64(vec![0.0]),
        SliceMut::C32(_) => Data::C32(vec![Complex32::new(0.0, 0.0)]),
        SliceMut::C64(_) => Data::C64(vec![Complex64::new(0.0, 0.0)]),
        SliceMut::I32(_) => Data::I32(vec![0]),
        SliceMut::I64(_) => Data::I64(vec![0]),
        SliceMut::Bool(_) => return Err("bool reduction".into()),
    };
    let mut o = whole_mut(&mut out);
    let ro = o.sub_mut(0..1);
    let view = lanes.sub(0..LANES);
    with_reducer!(kind, ro, view, "a reduction", |g, r, v| r[0] =
        combine_lanes(v, g));
    Ok(out)
}

/// `acc[0] = g(acc[0], x[0])` (block partials in block order).
pub(crate) fn fold_scalar(kind: ReduceOp, acc: SliceMut<'_>, x: Slice<'_>) -> KResult {
    with_reducer!(kind, acc, x, "a reduction", |g, a, v| a[0] = g(a[0], v[0]));
    Ok(())
}

/// Row reduction over one run: `out[o + i·os] = g(out[o + i·os], x[i])`, or, when
/// `os == 0`, `out[o] = g(…g(out[o], x[0])…, x[n-1])` in order.
pub(crate) fn reduce_run(
    kind: ReduceOp,
    out: &mut SliceMut<'_>,
    o: usize,
    os: usize,
    x: Slice<'_>,
) -> KResult {
    let out = out.sub_mut(0..out_len(out));
    with_reducer!(kind, out, x, "a reduction", |g, a, v| {
        if os == 0 {
            let mut acc = a[o];
            for &e in v {
                acc = g(acc, e);
            }
            a[o] = acc;
        } else if os == 1 {
            // Contiguous outputs: an elementwise update, which vectorises.
            for (d, &e) in a[o..o + v.len()].iter_mut().zip(v) {
                *d = g(*d, e);
            }
        } else {
            for (i, &e) in v.iter().enumerate() {
                let p = o + i * os;
                a[p] = g(a[p], e);
            }
        }
    });
    Ok(())
}

/// The elements of a slice of this dtype.
trait SliceOf: Sized {
    fn of(x: Slice<'_>) -> Option<&[Self]>;
}

macro_rules! slice_of_impl {
    ($($T:ty: $V:ident),*) => {$(
        impl SliceOf for $T {
            fn of(x: Slice<'_>) -> Option<&[$T]> {
                match x {
                    Slice::$V(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}
slice_of_impl!(f32: F32, f64: F64, Complex32: C32, Complex64: C64, i32: I32, i64: I64);

/// The first `n` elements of `x`, a slice of `like`'s dtype.
fn row_like<'a, T: SliceOf>(x: Slice<'a>, _like: &[T], n: usize) -> Result<&'a [T], String> {
    T::of(x)
        .and_then(|v| v.get(..n))
        .ok_or_else(|| mismatch("an interleaved row fold"))
}

/// Row reductions of two or four runs at once: `out[o_k] = g(…g(out[o_k], x_k[0])…,
/// x_k[n-1])`. Each run keeps its own accumulator and is folded in order (the bits of
/// [`reduce_run`] with `os == 0`), but the chains overlap, where one run at a time waits
/// out the add latency on every element. The `o_k` must be distinct and in `out`.
pub(crate) fn reduce_rows(
    kind: ReduceOp,
    out: &mut SliceMut<'_>,
    o: &[usize],
    x: &[Slice<'_>],
    n: usize,
) -> KResult {
    if (1..o.len()).any(|k| o[..k].contains(&o[k])) {
        return Err("interleaved row fold into one output twice".into());
    }
    let (Some(&x0), true) = (x.first(), o.len() == x.len()) else {
        return Err("interleaved row fold: runs and outputs differ in number".into());
    };
    let out = out.sub_mut(0..out_len(out));
    with_reducer!(kind, out, x0, "a reduction", |g, a, v| {
        if o.iter().any(|&k| k >= a.len()) {
            return Err("interleaved row fold outside its output chunk".into());
        }
        let row = |k: usize| row_like(x[k], v, n);
        // Locals and zipped runs (not arrays indexed in the loop), so the accumulators
        // stay in registers.
        match *o {
            [o0, o1, o2, o3] => {
                let (r0, r1, r2, r3) = (row(0)?, row(1)?, row(2)?, row(3)?);
                let [mut a0, mut a1, mut a2, mut a3] = [a[o0], a[o1], a[o2], a[o3]];
                let line = super::line_of(r0);
                let lines = r0.chunks(line).zip(r1.chunks(line));
                let lines = lines.zip(r2.chunks(line)).zip(r3.chunks(line));
                for (((c0, c1), c2), c3) in lines {
                    for c in [c0, c1, c2, c3] {
                        super::prefetch_ahead(c.as_ptr());
                    }
                    for (((&e0, &e1), &e2), &e3) in c0.iter().zip(c1).zip(c2).zip(c3) {
                        a0 = g(a0, e0);
                        a1 = g(a1, e1);
                        a2 = g(a2, e2);
                        a3 = g(a3, e3);
                    }
                }
                [a[o0], a[o1], a[o2], a[o3]] = [a0, a1, a2, a3];
            }
            [o0, o1] => {
                let (r0, r1) = (row(0)?, row(1)?);
                let [mut a0, mut a1] = [a[o0], a[o1]];
                for (&e0, &e1) in r0.iter().zip(r1) {
                    a0 = g(a0, e0);
                    a1 = g(a1, e1);
                }
                [a[o0], a[o1]] = [a0, a1];
            }
            _ => return Err("interleaved row fold of an odd group".into()),
        }
    });
    Ok(())
}

pub(crate) fn out_len(s: &SliceMut<'_>) -> usize {
    match s {
        SliceMut::F32(v) => v.len(),
        SliceMut::F64(v) => v.len(),
        SliceMut::C32(v) => v.len(),
        SliceMut::C64(v) => v.len(),
        SliceMut::I32(v) => v.len(),
        SliceMut::I64(v) => v.len(),
        SliceMut::Bool(v) => v.len(),
    }
}

/// Copies `n` elements from `src` (starting at `s0`, stride `ss`) to `dst[d0..d0+n]`.
pub(crate) fn strided_run(
    dst: &mut SliceMut<'_>,
    d0: usize,
    src: &Data,
    s0: usize,
    ss: usize,
    n: usize,
) -> KResult {
    macro_rules! run {
        ($d:expr, $s:expr) => {{
            let d = &mut $d[d0..d0 + n];
            if ss == 1 {
                d.copy_from_slice(&$s[s0..s0 + n]);
            } else if ss == 0 {
                d.fill($s[s0]);
            } else {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = $s[s0 + i * ss];
                }
            }
        }};
    }
    match (dst, src) {
        (SliceMut::F64(d), Data::F64(s)) => run!(d, s),
        (SliceMut::F32(d), Data::F32(s)) => run!(d, s),
        (SliceMut::C64(d), Data::C64(s)) => run!(d, s),
        (SliceMut::C32(d), Data::C32(s)) => run!(d, s),
        (SliceMut::I32(d), Data::I32(s)) => run!(d, s),
        (SliceMut::I64(d), Data::I64(s)) => run!(d, s),
        (SliceMut::Bool(d), Data::Bool(s)) => run!(d, s),
        _ => return Err(mismatch("a strided load")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fold_pair_gives_the_bits_of_the_unfused_product_at_every_length() {
        let special = [
            0.0,
            -0.0,
            1.5,
            -2.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-310,
        ];
        let folds = [Fold::Plain, Fold::Conj, Fold::Real, Fold::RealTwice];
        for n in 0..14usize {
            let val =
                |k: usize| special[k % special.len()] + if k % 5 == 0 { 0.0 } else { k as f64 };
            let za: Vec<Complex64> = (0..n)
                .map(|i| Complex64::new(val(3 * i), val(7 * i + 1)))
                .collect();
            let zb: Vec<Complex64> = (0..n)
                .map(|i| Complex64::new(val(5 * i + 2), val(i + 3)))
                .collect();
            let ra: Vec<f64> = (0..n).map(|i| val(11 * i + 4)).collect();
            let rb: Vec<f64> = (0..n).map(|i| val(13 * i + 6)).collect();
            for fa in folds {
                for fb in folds {
                    let pick = |fd: Fold, z: &[Complex64], r: &[f64], i: usize| match fd {
                        Fold::Plain => z[i],
                        Fold::Conj => z[i].conj(),
                        Fold::Real => Complex64::new(r[i], 0.0),
                        Fold::RealTwice => Complex64::new(r[i] + r[i], 0.0),
                    };
                    let want: Vec<Complex64> = (0..n)
                        .map(|i| pick(fa, &za, &ra, i) * pick(fb, &zb, &rb, i))
                        .collect();
                    let real = |fd: Fold| matches!(fd, Fold::Real | Fold::RealTwice);
                    let a = if real(fa) {
                        Slice::F64(&ra)
                    } else {
                        Slice::C64(&za)
                    };
                    let b = if real(fb) {
                        Slice::F64(&rb)
                    } else {
                        Slice::C64(&zb)
                    };

                    for twice in [false, true] {
                        let mut got = vec![Complex64::new(9.0, 9.0); n];
                        let d = SliceMut::C64(&mut got);
                        mul_folded([fa, fb], twice, Some(a), Some(b), d).unwrap();
                        for i in 0..n {
                            let w = if twice { want[i] + want[i] } else { want[i] };
                            let same = |x: f64, y: f64| {
                                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
                            };
                            assert!(
                                same(got[i].re, w.re) && same(got[i].im, w.im),
                                "{fa:?} {fb:?} twice {twice} n {n} element {i}: {} vs {w}",
                                got[i],
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn folded_mul_rejects_operands_of_the_wrong_dtype() {
        let z = [Complex64::new(1.0, 2.0)];
        let r = [1.0f64];
        // Real folds over a complex operand, a Conj fold over a real one.
        for (folds, x) in [
            ([Fold::Real, Fold::Plain], Slice::C64(&z)),
            ([Fold::Plain, Fold::RealTwice], Slice::C64(&z)),
            ([Fold::Conj, Fold::Plain], Slice::F64(&r)),
        ] {
            let mut d = [Complex64::new(0.0, 0.0)];
            let (a, b) = if folds[0] == Fold::Plain {
                (Slice::C64(&z), x)
            } else {
                (x, Slice::C64(&z))
            };
            assert!(mul_folded(folds, true, Some(a), Some(b), SliceMut::C64(&mut d)).is_err());
        }
        // A real destination.
        let mut d = [0.0f64];
        let (a, b) = (Some(Slice::C64(&z)), Some(Slice::C64(&z)));
        assert!(mul_folded(
            [Fold::Conj, Fold::Plain],
            false,
            a,
            b,
            SliceMut::F64(&mut d)
        )
        .is_err());
    }

    /// Ulps between two finite f64 of one sign (`u64::MAX` across signs).
    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            0
        } else if a.is_sign_negative() != b.is_sign_negative() {
            u64::MAX
        } else {
            (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
        }
    }

    /// The twin `abs` and `sign` of c64 are within 2 ulps of `sqrt(re² + im²)` and
    /// `z · (1 / sqrt(re² + im²))` (the unfused kernels' formulas, themselves within 4
    /// ulps of `hypot` and `z / hypot`) for squared norms in range, at every position of a
    /// tile (vector groups and the tail), and exactly `hypot` and `z / hypot` (0 at 0)
    /// outside.
    #[test]
    fn abs_and_sign_within_two_ulps_of_the_unfused_formulas() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut unit = || (next() >> 11) as f64 / (1u64 << 53) as f64;
        let mut z: Vec<Complex64> = (0..4099)
            .map(|_| {
                let e = (unit() * 280.0 - 140.0).round() as i32;
                let d = (unit() * 60.0 - 30.0).round() as i32;
                let (a, b) = (unit() * 2.0 - 1.0, unit() * 2.0 - 1.0);
                Complex64::new(a * 2f64.powi(e), b * 2f64.powi(e + d))
            })
            .collect();
        let specials = [
            Complex64::new(0.0, 0.0),
            Complex64::new(-0.0, 3.0),
            Complex64::new(f64::INFINITY, 1.0),
            Complex64::new(1.0, f64::NAN),
            Complex64::new(1e-300, -2e-300),
            Complex64::new(1e300, 1e300),
            Complex64::new(f64::MIN_POSITIVE, 0.0),
        ];
        for (k, s) in specials.iter().enumerate() {
            z[k * 131 + 5] = *s;
        }
        let mut n = vec![0.0; z.len()];
        let mut g = vec![Complex64::new(0.0, 0.0); z.len()];
        abs_sign_c64(&z, &mut n, &mut g);
        for (i, w) in z.iter().enumerate() {
            let m = w.norm();
            let s = if m == 0.0 {
                Complex64::new(0.0, 0.0)
            } else {
                Complex64::new(w.re / m, w.im / m)
            };
            let sq = w.re * w.re + w.im * w.im;
            if !norm_ok(sq) {
                let same =
                    |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                assert!(
                    same(n[i], m) && same(g[i].re, s.re) && same(g[i].im, s.im),
                    "{w}"
                );
                continue;
            }
            let (q, r) = (sq.sqrt(), 1.0 / sq.sqrt());
            let f = Complex64::new(w.re * r, w.im * r);
            let formula = ulps(q, m).max(ulps(f.re, s.re)).max(ulps(f.im, s.im));
            assert!(formula <= 4, "{w}: formula |z| {q} vs {m}, sign {f} vs {s}");
            let u = ulps(q, n[i])
                .max(ulps(f.re, g[i].re))
                .max(ulps(f.im, g[i].im));
            assert!(u <= 2, "{w}: |z| {} vs {q}, sign {} vs {f}", n[i], g[i]);
        }
    }
}
