//! Slice drivers and their per-ISA instantiation: the same `#[inline(always)]` loops are
//! compiled inside `#[target_feature]` functions for AVX-512 and for AVX2+FMA and once for
//! the baseline target, [`Isa`] picks one at run time (or std's functions). Imports
//! `isa`, `f64` and `f32`; only the vmath facade imports it.

use super::isa::{has_polynomial_kernel, Isa};
use super::{f32 as k32, f64 as k64};
use tenferro_ir::{DType, ElemMap, UnaryOp};

/// Elements per block of the guarded (sin/cos) loops: the fast kernel runs over the block
/// as a plain vectorised loop, one vectorised OR-reduction checks the block's range, and
/// only blocks holding an out-of-range lane take the scalar fix-up.
const BLOCK: usize = 64;

/// Elements of `src` through `f` into `dst` (a plain loop the vectoriser takes whole).
#[inline(always)]
fn map<T: Copy>(src: &[T], dst: &mut [T], f: impl Fn(T) -> T) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f(s);
    }
}

/// `buf[i] = f(buf[i])`.
#[inline(always)]
fn map_inplace<T: Copy>(buf: &mut [T], f: impl Fn(T) -> T) {
    for v in buf.iter_mut() {
        *v = f(*v);
    }
}

/// A plain loop over the op table's semantics: `dst[i] = f(src[i])`, in place when `src`
/// is `None`. vmath runs the ops without a kernel here through it, and so do fused tiles.
pub(crate) struct TableLoop<'a, T> {
    pub(crate) src: Option<&'a [T]>,
    pub(crate) dst: &'a mut [T],
}

impl<T: Copy> ElemMap<T, T> for TableLoop<'_, T> {
    type Out = ();
    #[inline(always)]
    fn map<F: Fn(T) -> T + Copy>(self, f: F) {
        match self.src {
            Some(src) => map(src, self.dst, f),
            None => map_inplace(self.dst, f),
        }
    }
}

/// The op table's real semantics of one float type.
trait TableSemantics: Copy + Sized {
    const NAN: Self;
    const DTYPE: DType;
    fn run(op: UnaryOp, l: TableLoop<'_, Self>) -> Option<()>;
}

impl TableSemantics for f64 {
    const NAN: f64 = f64::NAN;
    const DTYPE: DType = DType::F64;
    #[inline(always)]
    fn run(op: UnaryOp, l: TableLoop<'_, f64>) -> Option<()> {
        op.map_f64(l)
    }
}

impl TableSemantics for f32 {
    const NAN: f32 = f32::NAN;
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn run(op: UnaryOp, l: TableLoop<'_, f32>) -> Option<()> {
        op.map_f32(l)
    }
}

/// `dst = op(src)` (or in place) through the op table; an op with no real semantics
/// (never routed here by the library) writes NaN.
#[inline(always)]
fn table<T: TableSemantics>(op: UnaryOp, src: Option<&[T]>, dst: &mut [T]) {
    if T::run(
        op,
        TableLoop {
            src,
            dst: &mut *dst,
        },
    )
    .is_none()
    {
        dst.fill(T::NAN);
    }
}

/// The tier flags of a block, from one pass of branch-free OR-reductions: whether some
/// lane is beyond the short tier, and whether some lane is out of the fast kernel's range.
#[inline(always)]
fn block_tiers<T: Copy>(
    s: &[T],
    beyond_short: &impl Fn(T) -> bool,
    out_of_range: &impl Fn(T) -> bool,
) -> (bool, bool) {
    s.iter().fold((false, false), |(a, b), &x| {
        (a | beyond_short(x), b | out_of_range(x))
    })
}

/// A kernel in three tiers, chosen once per block of [`BLOCK`] elements: `short` when no
/// lane is `beyond_short`, else `fast`, with `slow` redoing the lanes that are
/// `out_of_range` of `fast`. (The tier can change the last bit of an in-range result, so
/// an element's result may depend on the other elements of its block; every tier is
/// within the accuracy contract, and the same slice always gives the same bits.)
struct Tiers<S, B, F, O, L> {
    short: S,
    beyond_short: B,
    fast: F,
    out_of_range: O,
    slow: L,
}

/// `dst[i] = f(src[i])` with the tier of each block.
#[inline(always)]
fn map_tiered<T: Copy, S, B, F, O, L>(src: &[T], dst: &mut [T], k: Tiers<S, B, F, O, L>)
where
    S: Fn(T) -> T,
    B: Fn(T) -> bool,
    F: Fn(T) -> T,
    O: Fn(T) -> bool,
    L: Fn(T) -> T,
{
    for (s, d) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        let (beyond, oor) = block_tiers(s, &k.beyond_short, &k.out_of_range);
        if !beyond {
            map(s, d, &k.short);
        } else {
            map(s, d, &k.fast);
            if oor {
                for (d, &x) in d.iter_mut().zip(s) {
                    if (k.out_of_range)(x) {
                        *d = (k.slow)(x);
                    }
                }
            }
        }
    }
}

/// In-place [`map_tiered`]: blocks needing the fix-up are copied first so it sees the
/// inputs.
#[inline(always)]
fn map_tiered_inplace<T: Copy + Default, S, B, F, O, L>(buf: &mut [T], k: Tiers<S, B, F, O, L>)
where
    S: Fn(T) -> T,
    B: Fn(T) -> bool,
    F: Fn(T) -> T,
    O: Fn(T) -> bool,
    L: Fn(T) -> T,
{
    let mut copy = [T::default(); BLOCK];
    for d in buf.chunks_mut(BLOCK) {
        let (beyond, oor) = block_tiers(d, &k.beyond_short, &k.out_of_range);
        if !beyond {
            map_inplace(d, &k.short);
        } else if !oor {
            map_inplace(d, &k.fast);
        } else {
            let s = &mut copy[..d.len()];
            s.copy_from_slice(d);
            map(s, d, &k.fast);
            for (d, &x) in d.iter_mut().zip(s.iter()) {
                if (k.out_of_range)(x) {
                    *d = (k.slow)(x);
                }
            }
        }
    }
}

/// `(sin_dst[i], cos_dst[i]) = f(src[i])` with the tier of each block (see [`Tiers`]).
#[inline(always)]
fn map2_tiered<T: Copy, S, B, F, O, L>(
    src: &[T],
    sin_dst: &mut [T],
    cos_dst: &mut [T],
    k: Tiers<S, B, F, O, L>,
) where
    S: Fn(T) -> (T, T),
    B: Fn(T) -> bool,
    F: Fn(T) -> (T, T),
    O: Fn(T) -> bool,
    L: Fn(T) -> (T, T),
{
    let blocks = src
        .chunks(BLOCK)
        .zip(sin_dst.chunks_mut(BLOCK))
        .zip(cos_dst.chunks_mut(BLOCK));
    for ((s, a), b) in blocks {
        let (beyond, oor) = block_tiers(s, &k.beyond_short, &k.out_of_range);
        if !beyond {
            for ((&x, a), b) in s.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
                (*a, *b) = (k.short)(x);
            }
            continue;
        }
        for ((&x, a), b) in s.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
            (*a, *b) = (k.fast)(x);
        }
        if oor {
            for ((&x, a), b) in s.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
                if (k.out_of_range)(x) {
                    (*a, *b) = (k.slow)(x);
                }
            }
        }
    }
}

macro_rules! sincos_driver {
    ($t:ident, $k:ident, $run:ident) => {
        #[inline(always)]
        fn $run(src: &[$t], sin_dst: &mut [$t], cos_dst: &mut [$t]) {
            map2_tiered(
                src,
                sin_dst,
                cos_dst,
                Tiers {
                    short: $k::sincos_short,
                    beyond_short: |x: $t| x.abs() > $k::SINCOS_SHORT_LIMIT,
                    fast: $k::sincos_fast,
                    out_of_range: |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                    slow: |x: $t| x.sin_cos(),
                },
            )
        }
    };
}

sincos_driver!(f64, k64, run_sincos_f64);
sincos_driver!(f32, k32, run_sincos_f32);

/// Expands to a `match` of `$op` that calls `$plain!(lane_fn)` for the single-tier ops and
/// `$tiered!(Tiers { .. })` for exp (short: |x| <= 708, beyond it the full-range kernel),
/// sin/cos (short reduction, double-double reduction, std beyond the fast range), tanh,
/// erf (short: |x| < 1) and logistic (short: |x| <= 708). `$extra` lists the single-tier kernels only one float type has.
macro_rules! per_op {
    ($op:expr, $t:ident, $k:ident, $plain:ident, $tiered:ident, $table:ident,
     [$($extra:ident => $extra_fn:path),*]) => {
        match $op {
            UnaryOp::Exp => $tiered!(Tiers {
                short: $k::exp_fast,
                beyond_short: |x: $t| x.abs() > $k::EXP_FAST_LIMIT,
                fast: $k::exp,
                out_of_range: |_: $t| false,
                slow: $k::exp,
            }),
            UnaryOp::Log => $plain!($k::log),
            UnaryOp::Sin => $tiered!(Tiers {
                short: $k::sin_short,
                beyond_short: |x: $t| x.abs() > $k::SINCOS_SHORT_LIMIT,
                fast: $k::sin_fast,
                out_of_range: |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                slow: |x: $t| x.sin(),
            }),
            UnaryOp::Cos => $tiered!(Tiers {
                short: $k::cos_short,
                beyond_short: |x: $t| x.abs() > $k::SINCOS_SHORT_LIMIT,
                fast: $k::cos_fast,
                out_of_range: |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                slow: |x: $t| x.cos(),
            }),
            UnaryOp::Tanh => $tiered!(Tiers {
                short: $k::tanh_short,
                beyond_short: |x: $t| x.abs() > $k::TANH_SHORT_LIMIT,
                fast: $k::tanh,
                out_of_range: |_: $t| false,
                slow: $k::tanh,
            }),
            UnaryOp::Expm1 => $plain!($k::expm1),
            UnaryOp::Log1p => $plain!($k::log1p),
            UnaryOp::Erf => $tiered!(Tiers {
                short: $k::erf_short,
                beyond_short: |x: $t| x.abs() >= $k::ERF_SHORT_LIMIT,
                fast: $k::erf,
                out_of_range: |_: $t| false,
                slow: $k::erf,
            }),
            UnaryOp::Logistic => $tiered!(Tiers {
                short: $k::logistic_short,
                beyond_short: |x: $t| x.abs() > $k::LOGISTIC_SHORT_LIMIT,
                fast: $k::logistic,
                out_of_range: |_: $t| false,
                slow: $k::logistic,
            }),
            $(UnaryOp::$extra => $plain!($extra_fn),)*
            // Ops without a kernel here run on the op table's scalar semantics. An op
            // that claims a polynomial kernel must have its arm above.
            other => {
                debug_assert!(
                    !has_polynomial_kernel(other, <$t as TableSemantics>::DTYPE),
                    "vmath: {other:?} claims a polynomial kernel but has no arm"
                );
                $table!(other)
            }
        }
    };
}

macro_rules! drivers {
    ($t:ident, $k:ident, $run:ident, $run_inplace:ident, $extra:tt) => {
        #[inline(always)]
        fn $run(op: UnaryOp, src: &[$t], dst: &mut [$t]) {
            macro_rules! plain {
                ($f:expr) => {
                    map(src, dst, $f)
                };
            }
            macro_rules! tiered {
                ($tiers:expr) => {
                    map_tiered(src, dst, $tiers)
                };
            }
            macro_rules! by_table {
                ($o:expr) => {
                    table($o, Some(src), dst)
                };
            }
            per_op!(op, $t, $k, plain, tiered, by_table, $extra)
        }

        #[inline(always)]
        fn $run_inplace(op: UnaryOp, buf: &mut [$t]) {
            macro_rules! plain {
                ($f:expr) => {
                    map_inplace(buf, $f)
                };
            }
            macro_rules! tiered {
                ($tiers:expr) => {
                    map_tiered_inplace(buf, $tiers)
                };
            }
            macro_rules! by_table {
                ($o:expr) => {
                    table($o, None, buf)
                };
            }
            per_op!(op, $t, $k, plain, tiered, by_table, $extra)
        }
    };
}

drivers!(f64, k64, run_f64, run_f64_inplace, []);
drivers!(f32, k32, run_f32, run_f32_inplace, [Erfc => k32::erfc]);

/// std's function for the transcendental `op` on `$t` ([`Isa::Std`]), `None` for the
/// others (which [`Isa::Std`] runs on the op table's semantics).
macro_rules! std_fn {
    ($t:ident, $op:expr) => {
        match $op {
            UnaryOp::Exp => Some($t::exp as fn($t) -> $t),
            UnaryOp::Log => Some($t::ln as fn($t) -> $t),
            UnaryOp::Sin => Some($t::sin as fn($t) -> $t),
            UnaryOp::Cos => Some($t::cos as fn($t) -> $t),
            UnaryOp::Tanh => Some($t::tanh as fn($t) -> $t),
            UnaryOp::Expm1 => Some($t::exp_m1 as fn($t) -> $t),
            UnaryOp::Log1p => Some($t::ln_1p as fn($t) -> $t),
            _ => None,
        }
    };
}

/// One instantiation of the slice drivers inside `#[target_feature]` functions. Callers
/// must have checked the CPU features.
macro_rules! isa_module {
    ($name:ident, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use super::*;

            #[target_feature(enable = $features)]
            pub(super) unsafe fn f64_(op: UnaryOp, src: &[f64], dst: &mut [f64]) {
                run_f64(op, src, dst)
            }
            #[target_feature(enable = $features)]
            pub(super) unsafe fn f64_inplace(op: UnaryOp, buf: &mut [f64]) {
                run_f64_inplace(op, buf)
            }
            #[target_feature(enable = $features)]
            pub(super) unsafe fn f32_(op: UnaryOp, src: &[f32], dst: &mut [f32]) {
                run_f32(op, src, dst)
            }
            #[target_feature(enable = $features)]
            pub(super) unsafe fn f32_inplace(op: UnaryOp, buf: &mut [f32]) {
                run_f32_inplace(op, buf)
            }
            #[target_feature(enable = $features)]
            pub(super) unsafe fn sincos_f64(src: &[f64], s: &mut [f64], c: &mut [f64]) {
                run_sincos_f64(src, s, c)
            }
            #[target_feature(enable = $features)]
            pub(super) unsafe fn sincos_f32(src: &[f32], s: &mut [f32], c: &mut [f32]) {
                run_sincos_f32(src, s, c)
            }
        }
    };
}

isa_module!(avx2, "avx2,fma");
isa_module!(avx512, "avx512f,avx512dq,avx512vl,avx2,fma");

/// Runs `op` over `src` into `dst` (same length) with the kernels compiled for `isa`,
/// which the caller has checked is available.
pub(super) fn f64_on(isa: Isa, op: UnaryOp, src: &[f64], dst: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only used after `Isa::is_available` confirmed the
        // CPU has AVX2 and FMA.
        Isa::Avx2Fma => unsafe { avx2::f64_(op, src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::f64_(op, src, dst) },
        Isa::Std => match std_fn!(f64, op) {
            Some(f) => map(src, dst, f),
            None => table(op, Some(src), dst),
        },
        _ => run_f64(op, src, dst),
    }
}

/// In-place [`f64_on`].
pub(super) fn f64_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f64_inplace(op, buf) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::f64_inplace(op, buf) },
        Isa::Std => match std_fn!(f64, op) {
            Some(f) => map_inplace(buf, f),
            None => table(op, None, buf),
        },
        _ => run_f64_inplace(op, buf),
    }
}

/// f32 [`f64_on`].
pub(super) fn f32_on(isa: Isa, op: UnaryOp, src: &[f32], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f32_(op, src, dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::f32_(op, src, dst) },
        Isa::Std => match std_fn!(f32, op) {
            Some(f) => map(src, dst, f),
            None => table(op, Some(src), dst),
        },
        _ => run_f32(op, src, dst),
    }
}

/// In-place [`f32_on`].
pub(super) fn f32_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f32_inplace(op, buf) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::f32_inplace(op, buf) },
        Isa::Std => match std_fn!(f32, op) {
            Some(f) => map_inplace(buf, f),
            None => table(op, None, buf),
        },
        _ => run_f32_inplace(op, buf),
    }
}

/// sin and cos of `src` into `sin_dst` and `cos_dst` (same lengths) with one reduction.
pub(super) fn sincos_f64_on(isa: Isa, src: &[f64], sin_dst: &mut [f64], cos_dst: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::sincos_f64(src, sin_dst, cos_dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::sincos_f64(src, sin_dst, cos_dst) },
        Isa::Std => {
            for ((&x, s), c) in src.iter().zip(sin_dst.iter_mut()).zip(cos_dst.iter_mut()) {
                (*s, *c) = x.sin_cos();
            }
        }
        _ => run_sincos_f64(src, sin_dst, cos_dst),
    }
}

/// f32 [`sincos_f64_on`].
pub(super) fn sincos_f32_on(isa: Isa, src: &[f32], sin_dst: &mut [f32], cos_dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::sincos_f32(src, sin_dst, cos_dst) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for `Isa::Avx2Fma`, with AVX-512 F/DQ/VL.
        Isa::Avx512 => unsafe { avx512::sincos_f32(src, sin_dst, cos_dst) },
        Isa::Std => {
            for ((&x, s), c) in src.iter().zip(sin_dst.iter_mut()).zip(cos_dst.iter_mut()) {
                (*s, *c) = x.sin_cos();
            }
        }
        _ => run_sincos_f32(src, sin_dst, cos_dst),
    }
}
