//! Elementwise kernels: unary, binary, compare, select and convert over whole buffers.
//! The scalar functions are the ones the reference evaluator uses (std / num-complex), so
//! results are bit-identical to it.

use crate::plan::internal;
use num_complex::{Complex, Complex32, Complex64};
use tenferro_ir::{BinaryOp, CmpOp, DType, Data, UnaryOp};
use tenferro_runtime::Result;

fn map1<T: Copy, R>(x: &[T], f: impl Fn(T) -> R) -> Vec<R> {
    x.iter().map(|&a| f(a)).collect()
}

fn map2<T: Copy, R>(x: &[T], y: &[T], f: impl Fn(T, T) -> R) -> Vec<R> {
    x.iter().zip(y).map(|(&a, &b)| f(a, b)).collect()
}

macro_rules! real_unary {
    ($name:ident, $t:ty) => {
        fn $name(u: UnaryOp, v: &[$t]) -> Vec<$t> {
            match u {
                UnaryOp::Neg => map1(v, |x: $t| -x),
                UnaryOp::Exp => map1(v, <$t>::exp),
                UnaryOp::Log => map1(v, <$t>::ln),
                UnaryOp::Sin => map1(v, <$t>::sin),
                UnaryOp::Cos => map1(v, <$t>::cos),
                UnaryOp::Tanh => map1(v, <$t>::tanh),
                UnaryOp::Sqrt => map1(v, <$t>::sqrt),
                UnaryOp::Rsqrt => map1(v, |x: $t| 1.0 / x.sqrt()),
                UnaryOp::Abs => map1(v, <$t>::abs),
                UnaryOp::Sign => map1(v, |x: $t| {
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        x
                    }
                }),
                UnaryOp::Expm1 => map1(v, <$t>::exp_m1),
                UnaryOp::Log1p => map1(v, <$t>::ln_1p),
                UnaryOp::Conj | UnaryOp::Real => v.to_vec(),
                UnaryOp::Imag => vec![0.0; v.len()],
            }
        }
    };
}
real_unary!(unary_f32, f32);
real_unary!(unary_f64, f64);

/// Complex unary ops whose result is complex.
macro_rules! complex_unary {
    ($name:ident, $real:ident, $t:ty) => {
        fn $name(u: UnaryOp, v: &[Complex<$t>]) -> Vec<Complex<$t>> {
            let one = Complex::<$t>::new(1.0, 0.0);
            match u {
                UnaryOp::Neg => map1(v, |z: Complex<$t>| -z),
                UnaryOp::Exp => map1(v, |z: Complex<$t>| z.exp()),
                UnaryOp::Log => map1(v, |z: Complex<$t>| z.ln()),
                UnaryOp::Sin => map1(v, |z: Complex<$t>| z.sin()),
                UnaryOp::Cos => map1(v, |z: Complex<$t>| z.cos()),
                UnaryOp::Tanh => map1(v, |z: Complex<$t>| z.tanh()),
                UnaryOp::Sqrt => map1(v, |z: Complex<$t>| z.sqrt()),
                UnaryOp::Rsqrt => map1(v, |z: Complex<$t>| one / z.sqrt()),
                UnaryOp::Sign => map1(v, |z: Complex<$t>| {
                    let n = z.norm();
                    if n == 0.0 {
                        Complex::new(0.0, 0.0)
                    } else {
                        Complex::new(z.re / n, z.im / n)
                    }
                }),
                UnaryOp::Expm1 => map1(v, |z: Complex<$t>| z.exp() - one),
                UnaryOp::Log1p => map1(v, |z: Complex<$t>| (one + z).ln()),
                UnaryOp::Conj => map1(v, |z: Complex<$t>| z.conj()),
                // Real-valued results are produced by `$real`.
                UnaryOp::Abs | UnaryOp::Real | UnaryOp::Imag => {
                    map1(&$real(u, v), |r: $t| Complex::new(r, 0.0))
                }
            }
        }

        /// abs / real / imag of complex numbers (real results).
        fn $real(u: UnaryOp, v: &[Complex<$t>]) -> Vec<$t> {
            match u {
                UnaryOp::Abs => map1(v, |z: Complex<$t>| z.norm()),
                UnaryOp::Imag => map1(v, |z: Complex<$t>| z.im),
                _ => map1(v, |z: Complex<$t>| z.re),
            }
        }
    };
}
complex_unary!(unary_c32, real_c32, f32);
complex_unary!(unary_c64, real_c64, f64);

/// `u` applied to every element of `x`.
pub(crate) fn unary(name: &str, u: UnaryOp, x: &Data) -> Result<Data> {
    let real_result = matches!(u, UnaryOp::Abs | UnaryOp::Real | UnaryOp::Imag);
    Ok(match x {
        Data::F32(v) => Data::F32(unary_f32(u, v)),
        Data::F64(v) => Data::F64(unary_f64(u, v)),
        Data::C32(v) if real_result => Data::F32(real_c32(u, v)),
        Data::C64(v) if real_result => Data::F64(real_c64(u, v)),
        Data::C32(v) => Data::C32(unary_c32(u, v)),
        Data::C64(v) => Data::C64(unary_c64(u, v)),
        Data::I64(v) => Data::I64(match u {
            UnaryOp::Neg => map1(v, i64::wrapping_neg),
            UnaryOp::Abs => map1(v, i64::wrapping_abs),
            UnaryOp::Sign => map1(v, i64::signum),
            UnaryOp::Conj | UnaryOp::Real => v.clone(),
            UnaryOp::Imag => vec![0; v.len()],
            _ => return Err(internal(name, "i64 operand of a float-only op")),
        }),
        Data::Bool(_) => return Err(internal(name, "bool operand")),
    })
}

macro_rules! real_minmax {
    ($max:ident, $min:ident, $t:ty) => {
        /// IEEE 754-2019 maximum: NaN-propagating (first NaN wins), `-0 < +0`.
        #[inline]
        pub(crate) fn $max(x: $t, y: $t) -> $t {
            if x.is_nan() {
                x
            } else if y.is_nan() {
                y
            } else if x > y {
                x
            } else if y > x {
                y
            } else if x.is_sign_negative() {
                y
            } else {
                x
            }
        }
        /// IEEE 754-2019 minimum: NaN-propagating (first NaN wins), `-0 < +0`.
        #[inline]
        pub(crate) fn $min(x: $t, y: $t) -> $t {
            if x.is_nan() {
                x
            } else if y.is_nan() {
                y
            } else if x < y {
                x
            } else if y < x {
                y
            } else if x.is_sign_negative() {
                x
            } else {
                y
            }
        }
    };
}
real_minmax!(max_f32, min_f32, f32);
real_minmax!(max_f64, min_f64, f64);

macro_rules! real_binary {
    ($name:ident, $t:ty, $max:ident, $min:ident) => {
        fn $name(b: BinaryOp, x: &[$t], y: &[$t]) -> Vec<$t> {
            match b {
                BinaryOp::Add => map2(x, y, |p: $t, q: $t| p + q),
                BinaryOp::Sub => map2(x, y, |p: $t, q: $t| p - q),
                BinaryOp::Mul => map2(x, y, |p: $t, q: $t| p * q),
                BinaryOp::Div => map2(x, y, |p: $t, q: $t| p / q),
                BinaryOp::Pow => map2(x, y, <$t>::powf),
                BinaryOp::Max => map2(x, y, $max),
                BinaryOp::Min => map2(x, y, $min),
            }
        }
    };
}
real_binary!(binary_f32, f32, max_f32, min_f32);
real_binary!(binary_f64, f64, max_f64, min_f64);

macro_rules! complex_binary {
    ($name:ident, $c:ty) => {
        fn $name(name: &str, b: BinaryOp, x: &[$c], y: &[$c]) -> Result<Vec<$c>> {
            Ok(match b {
                BinaryOp::Add => map2(x, y, |p: $c, q: $c| p + q),
                BinaryOp::Sub => map2(x, y, |p: $c, q: $c| p - q),
                BinaryOp::Mul => map2(x, y, |p: $c, q: $c| p * q),
                BinaryOp::Div => map2(x, y, |p: $c, q: $c| p / q),
                BinaryOp::Pow => map2(x, y, |p: $c, q: $c| p.powc(q)),
                BinaryOp::Max | BinaryOp::Min => {
                    return Err(internal(name, "complex operands of an ordered op"))
                }
            })
        }
    };
}
complex_binary!(binary_c32, Complex32);
complex_binary!(binary_c64, Complex64);

/// `b` applied to the elements of `x` and `y` pairwise (same dtype and length).
pub(crate) fn binary(name: &str, b: BinaryOp, x: &Data, y: &Data) -> Result<Data> {
    Ok(match (x, y) {
        (Data::F32(u), Data::F32(v)) => Data::F32(binary_f32(b, u, v)),
        (Data::F64(u), Data::F64(v)) => Data::F64(binary_f64(b, u, v)),
        (Data::C32(u), Data::C32(v)) => Data::C32(binary_c32(name, b, u, v)?),
        (Data::C64(u), Data::C64(v)) => Data::C64(binary_c64(name, b, u, v)?),
        (Data::I64(u), Data::I64(v)) => Data::I64(match b {
            BinaryOp::Add => map2(u, v, i64::wrapping_add),
            BinaryOp::Sub => map2(u, v, i64::wrapping_sub),
            BinaryOp::Mul => map2(u, v, i64::wrapping_mul),
            BinaryOp::Div => map2(u, v, |p, q| if q == 0 { 0 } else { p.wrapping_div(q) }),
            BinaryOp::Max => map2(u, v, i64::max),
            BinaryOp::Min => map2(u, v, i64::min),
            BinaryOp::Pow => return Err(internal(name, "i64 operands of pow")),
        }),
        _ => {
            return Err(internal(
                name,
                "operands of unsupported or different dtypes",
            ))
        }
    })
}

fn ordered<T: PartialOrd + Copy>(c: CmpOp, x: &[T], y: &[T]) -> Vec<bool> {
    match c {
        CmpOp::Eq => map2(x, y, |p, q| p == q),
        CmpOp::Ne => map2(x, y, |p, q| p != q),
        CmpOp::Lt => map2(x, y, |p, q| p < q),
        CmpOp::Le => map2(x, y, |p, q| p <= q),
        CmpOp::Gt => map2(x, y, |p, q| p > q),
        CmpOp::Ge => map2(x, y, |p, q| p >= q),
    }
}

fn equality<T: PartialEq + Copy>(name: &str, c: CmpOp, x: &[T], y: &[T]) -> Result<Vec<bool>> {
    match c {
        CmpOp::Eq => Ok(map2(x, y, |p, q| p == q)),
        CmpOp::Ne => Ok(map2(x, y, |p, q| p != q)),
        _ => Err(internal(name, "ordered comparison of complex operands")),
    }
}

/// Comparison `c` of `x` and `y` elementwise; a bool buffer.
pub(crate) fn compare(name: &str, c: CmpOp, x: &Data, y: &Data) -> Result<Data> {
    Ok(Data::Bool(match (x, y) {
        (Data::F32(u), Data::F32(v)) => ordered(c, u, v),
        (Data::F64(u), Data::F64(v)) => ordered(c, u, v),
        (Data::I64(u), Data::I64(v)) => ordered(c, u, v),
        (Data::Bool(u), Data::Bool(v)) => ordered(c, u, v),
        (Data::C32(u), Data::C32(v)) => equality(name, c, u, v)?,
        (Data::C64(u), Data::C64(v)) => equality(name, c, u, v)?,
        _ => return Err(internal(name, "operands of different dtypes")),
    }))
}

fn pick<T: Copy>(p: &[bool], t: &[T], f: &[T]) -> Vec<T> {
    p.iter()
        .zip(t.iter().zip(f))
        .map(|(&c, (&a, &b))| if c { a } else { b })
        .collect()
}

/// `p ? t : f` elementwise.
pub(crate) fn select(name: &str, p: &Data, t: &Data, f: &Data) -> Result<Data> {
    let Data::Bool(p) = p else {
        return Err(internal(name, "non-bool predicate"));
    };
    Ok(match (t, f) {
        (Data::F32(a), Data::F32(b)) => Data::F32(pick(p, a, b)),
        (Data::F64(a), Data::F64(b)) => Data::F64(pick(p, a, b)),
        (Data::C32(a), Data::C32(b)) => Data::C32(pick(p, a, b)),
        (Data::C64(a), Data::C64(b)) => Data::C64(pick(p, a, b)),
        (Data::I64(a), Data::I64(b)) => Data::I64(pick(p, a, b)),
        (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(p, a, b)),
        _ => return Err(internal(name, "branches of different dtypes")),
    })
}

fn b2f(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Converts a buffer to `to`: float → i64 with Rust `as` (saturating, NaN → 0); → bool is
/// `x != 0`; complex → real keeps the real part; bool → number is 0 / 1; real → complex
/// rounds to the target precision first.
pub(crate) fn convert(x: &Data, to: DType) -> Data {
    match to {
        DType::Bool => Data::Bool(match x {
            Data::F32(v) => map1(v, |a| a != 0.0),
            Data::F64(v) => map1(v, |a| a != 0.0),
            Data::C32(v) => map1(v, |a| a.re != 0.0 || a.im != 0.0),
            Data::C64(v) => map1(v, |a| a.re != 0.0 || a.im != 0.0),
            Data::I64(v) => map1(v, |a| a != 0),
            Data::Bool(v) => v.clone(),
        }),
        DType::I64 => Data::I64(match x {
            Data::F32(v) => map1(v, |a| a as i64),
            Data::F64(v) => map1(v, |a| a as i64),
            Data::C32(v) => map1(v, |a| a.re as i64),
            Data::C64(v) => map1(v, |a| a.re as i64),
            Data::I64(v) => v.clone(),
            Data::Bool(v) => map1(v, |a| a as i64),
        }),
        DType::F32 => Data::F32(to_f32(x)),
        DType::F64 => Data::F64(to_f64(x)),
        DType::C32 => Data::C32(match x {
            Data::C32(v) => v.clone(),
            Data::C64(v) => map1(v, |a| Complex32::new(a.re as f32, a.im as f32)),
            real => map1(&to_f32(real), |a| Complex32::new(a, 0.0)),
        }),
        DType::C64 => Data::C64(match x {
            Data::C32(v) => map1(v, |a| Complex64::new(a.re as f64, a.im as f64)),
            Data::C64(v) => v.clone(),
            real => map1(&to_f64(real), |a| Complex64::new(a, 0.0)),
        }),
    }
}

fn to_f32(x: &Data) -> Vec<f32> {
    match x {
        Data::F32(v) => v.clone(),
        Data::F64(v) => map1(v, |a| a as f32),
        Data::C32(v) => map1(v, |a| a.re),
        Data::C64(v) => map1(v, |a| a.re as f32),
        Data::I64(v) => map1(v, |a| a as f32),
        Data::Bool(v) => map1(v, |a| b2f(a) as f32),
    }
}

fn to_f64(x: &Data) -> Vec<f64> {
    match x {
        Data::F32(v) => map1(v, |a| a as f64),
        Data::F64(v) => v.clone(),
        Data::C32(v) => map1(v, |a| a.re as f64),
        Data::C64(v) => map1(v, |a| a.re),
        Data::I64(v) => map1(v, |a| a as f64),
        Data::Bool(v) => map1(v, b2f),
    }
}
