//! Slice drivers and their per-ISA instantiation: the same `#[inline(always)]` loops are
//! compiled once inside `#[target_feature(enable = "avx2,fma")]` functions and once for the
//! baseline target, and [`super::Isa`] picks one at run time.

use super::{f32 as k32, f64 as k64, Isa};
use tenferro_ir::UnaryOp;

/// Lanes per chunk of the guarded (sin/cos) loops: two AVX2 vectors of f64, one of f32
/// widened to f64 twice.
const CHUNK: usize = 8;

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

/// One chunk of a guarded op: every lane through `fast`, then, only if one vector compare
/// says some lane is out of the fast range, those lanes again through `slow`.
#[inline(always)]
fn guarded_chunk<T: Copy>(
    s: &[T; CHUNK],
    d: &mut [T; CHUNK],
    fast: &impl Fn(T) -> T,
    out_of_range: &impl Fn(T) -> bool,
    slow: &impl Fn(T) -> T,
) {
    let mut any = false;
    for j in 0..CHUNK {
        d[j] = fast(s[j]);
        any |= out_of_range(s[j]);
    }
    if any {
        for j in 0..CHUNK {
            if out_of_range(s[j]) {
                d[j] = slow(s[j]);
            }
        }
    }
}

/// `dst[i] = fast(src[i])`, or `slow(src[i])` where `out_of_range(src[i])`; chunked so the
/// range check costs one compare per vector.
#[inline(always)]
fn map_guarded<T: Copy>(
    src: &[T],
    dst: &mut [T],
    fast: impl Fn(T) -> T,
    out_of_range: impl Fn(T) -> bool,
    slow: impl Fn(T) -> T,
) {
    let mut sc = src.chunks_exact(CHUNK);
    let mut dc = dst.chunks_exact_mut(CHUNK);
    for (s, d) in (&mut sc).zip(&mut dc) {
        let s: &[T; CHUNK] = s.try_into().expect("chunk of CHUNK lanes");
        let d: &mut [T; CHUNK] = d.try_into().expect("chunk of CHUNK lanes");
        guarded_chunk(s, d, &fast, &out_of_range, &slow);
    }
    for (d, &s) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
        *d = if out_of_range(s) { slow(s) } else { fast(s) };
    }
}

/// In-place [`map_guarded`].
#[inline(always)]
fn map_guarded_inplace<T: Copy>(
    buf: &mut [T],
    fast: impl Fn(T) -> T,
    out_of_range: impl Fn(T) -> bool,
    slow: impl Fn(T) -> T,
) {
    let mut bc = buf.chunks_exact_mut(CHUNK);
    for d in &mut bc {
        let d: &mut [T; CHUNK] = d.try_into().expect("chunk of CHUNK lanes");
        let s = *d;
        guarded_chunk(&s, d, &fast, &out_of_range, &slow);
    }
    for v in bc.into_remainder() {
        let s = *v;
        *v = if out_of_range(s) { slow(s) } else { fast(s) };
    }
}

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
/// `$guarded!(fast, out_of_range, slow)` for sin/cos.
macro_rules! per_op {
    ($op:expr, $t:ident, $k:ident, $plain:ident, $guarded:ident) => {
        match $op {
            UnaryOp::Neg => $plain!(|x: $t| -x),
            UnaryOp::Exp => $plain!($k::exp),
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
