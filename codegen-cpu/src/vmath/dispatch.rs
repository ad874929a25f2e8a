//! Slice drivers and their per-ISA instantiation: the same `#[inline(always)]` loops are
//! compiled once inside `#[target_feature(enable = "avx2,fma")]` functions and once for the
//! baseline target, and [`super::Isa`] picks one at run time.

use super::{f32 as k32, f64 as k64, Isa};
use tenferro_ir::UnaryOp;

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

/// Whether any lane of `s` is out of range (a branch-free OR-reduction).
#[inline(always)]
fn any_out_of_range<T: Copy>(s: &[T], out_of_range: &impl Fn(T) -> bool) -> bool {
    s.iter().fold(false, |acc, &x| acc | out_of_range(x))
}

/// `dst[i] = fast(src[i])`, or `slow(src[i])` where `out_of_range(src[i])`.
#[inline(always)]
fn map_guarded<T: Copy>(
    src: &[T],
    dst: &mut [T],
    fast: impl Fn(T) -> T,
    out_of_range: impl Fn(T) -> bool,
    slow: impl Fn(T) -> T,
) {
    for (s, d) in src.chunks(BLOCK).zip(dst.chunks_mut(BLOCK)) {
        map(s, d, &fast);
        if any_out_of_range(s, &out_of_range) {
            for (d, &x) in d.iter_mut().zip(s) {
                if out_of_range(x) {
                    *d = slow(x);
                }
            }
        }
    }
}

/// In-place [`map_guarded`]: the block is copied first so the fix-up sees the inputs.
#[inline(always)]
fn map_guarded_inplace<T: Copy + Default>(
    buf: &mut [T],
    fast: impl Fn(T) -> T,
    out_of_range: impl Fn(T) -> bool,
    slow: impl Fn(T) -> T,
) {
    let mut copy = [T::default(); BLOCK];
    for d in buf.chunks_mut(BLOCK) {
        let s = &mut copy[..d.len()];
        s.copy_from_slice(d);
        map(s, d, &fast);
        if any_out_of_range(s, &out_of_range) {
            for (d, &x) in d.iter_mut().zip(s.iter()) {
                if out_of_range(x) {
                    *d = slow(x);
                }
            }
        }
    }
}

/// `(sin_dst[i], cos_dst[i]) = fast(src[i])`, or `slow(src[i])` where
/// `out_of_range(src[i])`; blocked like [`map_guarded`].
#[inline(always)]
fn map2_guarded<T: Copy>(
    src: &[T],
    sin_dst: &mut [T],
    cos_dst: &mut [T],
    fast: impl Fn(T) -> (T, T),
    out_of_range: impl Fn(T) -> bool,
    slow: impl Fn(T) -> (T, T),
) {
    let blocks = src
        .chunks(BLOCK)
        .zip(sin_dst.chunks_mut(BLOCK))
        .zip(cos_dst.chunks_mut(BLOCK));
    for ((s, a), b) in blocks {
        for ((&x, a), b) in s.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
            (*a, *b) = fast(x);
        }
        if any_out_of_range(s, &out_of_range) {
            for ((&x, a), b) in s.iter().zip(a.iter_mut()).zip(b.iter_mut()) {
                if out_of_range(x) {
                    (*a, *b) = slow(x);
                }
            }
        }
    }
}

macro_rules! sincos_driver {
    ($t:ident, $k:ident, $run:ident) => {
        #[inline(always)]
        fn $run(src: &[$t], sin_dst: &mut [$t], cos_dst: &mut [$t]) {
            map2_guarded(
                src,
                sin_dst,
                cos_dst,
                $k::sincos_fast,
                |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                |x: $t| x.sin_cos(),
            )
        }
    };
}

sincos_driver!(f64, k64, run_sincos_f64);
sincos_driver!(f32, k32, run_sincos_f32);

/// The real-valued semantics of `sign` (NaN and ±0 pass through), as in `tenferro_ir::eval`.
macro_rules! sign_of {
    ($t:ty) => {
        |x: $t| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            }
        }
    };
}

/// Expands to a `match` of `$op` that calls `$plain!(lane_fn)` for the unguarded ops and
/// `$guarded!(fast, out_of_range, slow)` for exp (slow: the full-range kernel) and sin/cos
/// (slow: std).
macro_rules! per_op {
    ($op:expr, $t:ident, $k:ident, $plain:ident, $guarded:ident) => {
        match $op {
            UnaryOp::Neg => $plain!(|x: $t| -x),
            UnaryOp::Exp => $guarded!($k::exp_fast, |x: $t| x.abs() > $k::EXP_FAST_LIMIT, $k::exp),
            UnaryOp::Log => $plain!($k::log),
            UnaryOp::Sin => $guarded!(
                $k::sin_fast,
                |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                |x: $t| x.sin()
            ),
            UnaryOp::Cos => $guarded!(
                $k::cos_fast,
                |x: $t| x.abs() > $k::SINCOS_FAST_LIMIT,
                |x: $t| x.cos()
            ),
            UnaryOp::Tanh => $plain!($k::tanh),
            UnaryOp::Sqrt => $plain!(|x: $t| x.sqrt()),
            UnaryOp::Rsqrt => $plain!(|x: $t| 1.0 / x.sqrt()),
            UnaryOp::Abs => $plain!(|x: $t| x.abs()),
            UnaryOp::Sign => $plain!(sign_of!($t)),
            UnaryOp::Expm1 => $plain!($k::expm1),
            UnaryOp::Log1p => $plain!($k::log1p),
            UnaryOp::Conj | UnaryOp::Real => $plain!(|x: $t| x),
            UnaryOp::Imag => $plain!(|_: $t| 0.0),
        }
    };
}

macro_rules! drivers {
    ($t:ident, $k:ident, $run:ident, $run_inplace:ident) => {
        #[inline(always)]
        fn $run(op: UnaryOp, src: &[$t], dst: &mut [$t]) {
            macro_rules! plain {
                ($f:expr) => {
                    map(src, dst, $f)
                };
            }
            macro_rules! guarded {
                ($fast:expr, $oor:expr, $slow:expr) => {
                    map_guarded(src, dst, $fast, $oor, $slow)
                };
            }
            per_op!(op, $t, $k, plain, guarded)
        }

        #[inline(always)]
        fn $run_inplace(op: UnaryOp, buf: &mut [$t]) {
            macro_rules! plain {
                ($f:expr) => {
                    map_inplace(buf, $f)
                };
            }
            macro_rules! guarded {
                ($fast:expr, $oor:expr, $slow:expr) => {
                    map_guarded_inplace(buf, $fast, $oor, $slow)
                };
            }
            per_op!(op, $t, $k, plain, guarded)
        }
    };
}

drivers!(f64, k64, run_f64, run_f64_inplace);
drivers!(f32, k32, run_f32, run_f32_inplace);

/// The AVX2+FMA instantiations. Callers must have checked the CPU features.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f64_(op: UnaryOp, src: &[f64], dst: &mut [f64]) {
        run_f64(op, src, dst)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f64_inplace(op: UnaryOp, buf: &mut [f64]) {
        run_f64_inplace(op, buf)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f32_(op: UnaryOp, src: &[f32], dst: &mut [f32]) {
        run_f32(op, src, dst)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sincos_f64(src: &[f64], s: &mut [f64], c: &mut [f64]) {
        run_sincos_f64(src, s, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sincos_f32(src: &[f32], s: &mut [f32], c: &mut [f32]) {
        run_sincos_f32(src, s, c)
    }
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn f32_inplace(op: UnaryOp, buf: &mut [f32]) {
        run_f32_inplace(op, buf)
    }
}

/// Runs `op` over `src` into `dst` (same length) with the kernels compiled for `isa`,
/// which the caller has checked is available.
pub(super) fn f64_on(isa: Isa, op: UnaryOp, src: &[f64], dst: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only used after `Isa::is_available` confirmed the
        // CPU has AVX2 and FMA.
        Isa::Avx2Fma => unsafe { avx2::f64_(op, src, dst) },
        _ => run_f64(op, src, dst),
    }
}

/// In-place [`f64_on`].
pub(super) fn f64_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f64_inplace(op, buf) },
        _ => run_f64_inplace(op, buf),
    }
}

/// f32 [`f64_on`].
pub(super) fn f32_on(isa: Isa, op: UnaryOp, src: &[f32], dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f32_(op, src, dst) },
        _ => run_f32(op, src, dst),
    }
}

/// In-place [`f32_on`].
pub(super) fn f32_inplace_on(isa: Isa, op: UnaryOp, buf: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::f32_inplace(op, buf) },
        _ => run_f32_inplace(op, buf),
    }
}

/// sin and cos of `src` into `sin_dst` and `cos_dst` (same lengths) with one reduction.
pub(super) fn sincos_f64_on(isa: Isa, src: &[f64], sin_dst: &mut [f64], cos_dst: &mut [f64]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::sincos_f64(src, sin_dst, cos_dst) },
        _ => run_sincos_f64(src, sin_dst, cos_dst),
    }
}

/// f32 [`sincos_f64_on`].
pub(super) fn sincos_f32_on(isa: Isa, src: &[f32], sin_dst: &mut [f32], cos_dst: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `f64_on`.
        Isa::Avx2Fma => unsafe { avx2::sincos_f32(src, sin_dst, cos_dst) },
        _ => run_sincos_f32(src, sin_dst, cos_dst),
    }
}
