//! Export of a tenferro [`Function`] to a StableHLO module in MLIR text form.
//!
//! Every op is written in MLIR's generic form (`%r = "stablehlo.add"(%a, %b) : (...) -> ...`),
//! one code path for all ops; the module has one public function `@main` with the IR's
//! parameters and outputs.
//!
//! StableHLO tensors are logical (no layout), so shapes are the IR's shapes, axis for axis.
//! Column-major order matters in two places only, both handled here: `reshape` (the IR's
//! reshape is column-major, StableHLO's is row-major, so a reshape is exported as
//! transpose(reverse) → reshape(reversed shape) → transpose(reverse)) and constants (an
//! MLIR dense literal is row-major: the last index runs fastest). Host data moves in and
//! out in column-major order through PJRT byte strides ([`crate::XlaBackend`]).
//!
//! Ops without a StableHLO equivalent are lowered to expressions (`sinh`, `cosh`, real
//! `asin` / `acos` / `atan` / `asinh` / `acosh` / `atanh`, `conj`, integer `div` / `rem` by
//! zero, `argsort` as a stable `sort` with an index operand, `cumsum` & co. as
//! `reduce_window`), written as CHLO ops that XLA decomposes when it compiles the module
//! (`erf`, `erfc`, complex `asin` / `acos` / `atan` / `asinh` / `acosh` / `atanh`), or
//! rejected with an error naming the op (extension ops other than `linalg.cholesky` and
//! `linalg.triangular_solve`).

use crate::sharding::Sharding;
use std::fmt::Write;
use tenferro_ir::{
    BinaryOp, CmpOp, DType, Data, ExtensionOp, Function, Op, ReduceOp, Tensor, TensorType, UnaryOp,
};
use tenferro_linalg::attrs::{Cholesky, TriangularSolve};
use tenferro_linalg::ops::{CHOLESKY, TRIANGULAR_SOLVE};
use tenferro_runtime::{Result, RuntimeError};

/// The StableHLO module of `f`, for one device.
pub fn to_stablehlo(f: &Function) -> Result<String> {
    export(f, None)
}

/// The StableHLO module of a compiled program (its optimized function).
pub fn program_to_stablehlo(p: &tenferro_runtime::Program) -> Result<String> {
    export(p.function(), None)
}

/// The StableHLO module of `f` with Shardy annotations: a mesh, and the sharding of each
/// parameter and output (see [`Sharding`]).
pub fn to_stablehlo_sharded(f: &Function, sharding: &Sharding) -> Result<String> {
    export(f, Some(sharding))
}

fn unsupported(op: &str, why: impl Into<String>) -> RuntimeError {
    RuntimeError::invalid_op(op, format!("cannot export to StableHLO: {}", why.into()))
}

/// The MLIR element type of a dtype.
pub fn elem_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::C32 => "complex<f32>",
        DType::C64 => "complex<f64>",
        DType::I32 => "i32",
        DType::I64 => "i64",
        DType::Bool => "i1",
    }
}

/// The MLIR tensor type of a tensor type (`tensor<2x3xf32>`, `tensor<f64>` for a scalar).
pub fn tensor_type(t: &TensorType) -> String {
    let mut s = String::from("tensor<");
    for d in &t.shape {
        write!(s, "{d}x").unwrap();
    }
    s.push_str(elem_type(t.dtype));
    s.push('>');
    s
}

fn i64_array(xs: &[usize]) -> String {
    if xs.is_empty() {
        "array<i64>".into()
    } else {
        let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
        format!("array<i64: {}>", v.join(", "))
    }
}

fn list(xs: &[usize]) -> String {
    let v: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// A float literal MLIR parses back to the same bits (hex bit pattern for non-finite).
fn f64_lit(x: f64) -> String {
    if !x.is_finite() {
        return format!("0x{:016X}", x.to_bits());
    }
    fix_float(format!("{x:?}"))
}

fn f32_lit(x: f32) -> String {
    if !x.is_finite() {
        return format!("0x{:08X}", x.to_bits());
    }
    fix_float(format!("{x:?}"))
}

/// Rust prints `1e-7`; MLIR wants a `.` in a float literal: `1.0e-7`.
fn fix_float(s: String) -> String {
    if s.contains('.') {
        s
    } else if let Some(i) = s.find('e') {
        format!("{}.0{}", &s[..i], &s[i..])
    } else {
        format!("{s}.0")
    }
}

/// Element `i` (column-major index) of `d` as an MLIR literal.
fn elem_lit(d: &Data, i: usize) -> String {
    match d {
        Data::F32(v) => f32_lit(v[i]),
        Data::F64(v) => f64_lit(v[i]),
        Data::C32(v) => format!("({}, {})", f32_lit(v[i].re), f32_lit(v[i].im)),
        Data::C64(v) => format!("({}, {})", f64_lit(v[i].re), f64_lit(v[i].im)),
        Data::I32(v) => v[i].to_string(),
        Data::I64(v) => v[i].to_string(),
        Data::Bool(v) => (if v[i] { "true" } else { "false" }).into(),
    }
}

/// A scalar literal of `dtype` with value `v` (real part for complex).
fn scalar_lit(dtype: DType, v: f64) -> String {
    match dtype {
        DType::F32 => f32_lit(v as f32),
        DType::F64 => f64_lit(v),
        DType::C32 => format!("({}, 0.0)", f32_lit(v as f32)),
        DType::C64 => format!("({}, 0.0)", f64_lit(v)),
        // ±inf (the identities of max / min) saturate to the integer extremes.
        DType::I32 => (v as i32).to_string(),
        DType::I64 => (v as i64).to_string(),
        DType::Bool => (if v != 0.0 { "true" } else { "false" }).into(),
    }
}

/// The dense literal of a column-major tensor, nested row-major as MLIR wants it (a splat
/// when every element is the same).
pub fn dense_literal(t: &Tensor) -> String {
    let d = t.data();
    let n = t.numel();
    if n > 0 {
        let first = elem_lit(d, 0);
        if (1..n).all(|i| elem_lit(d, i) == first) {
            return first;
        }
    }
    if t.shape().is_empty() {
        return elem_lit(d, 0);
    }
    let strides = tenferro_ir::col_major_strides(t.shape());
    let mut s = String::new();
    nested(d, t.shape(), &strides, 0, 0, &mut s);
    s
}

fn nested(d: &Data, shape: &[usize], strides: &[usize], axis: usize, off: usize, s: &mut String) {
    if axis == shape.len() {
        s.push_str(&elem_lit(d, off));
        return;
    }
    s.push('[');
    for i in 0..shape[axis] {
        if i > 0 {
            s.push_str(", ");
        }
        nested(d, shape, strides, axis + 1, off + i * strides[axis], s);
    }
    s.push(']');
}

/// A value in the emitted text: its SSA name and type.
#[derive(Clone)]
struct V {
    name: String,
    ty: TensorType,
}

struct Emitter {
    out: String,
    tmp: usize,
}

impl Emitter {
    fn fresh(&mut self) -> String {
        self.tmp += 1;
        format!("%t{}", self.tmp)
    }

    /// Emits `%r = "name"(args) {attrs} : (arg types) -> result type` and returns `%r`.
    fn op(&mut self, name: &str, args: &[&V], attrs: &str, ty: &TensorType) -> V {
        self.op_region(name, args, "", attrs, ty)
    }

    fn op_region(
        &mut self,
        name: &str,
        args: &[&V],
        region: &str,
        attrs: &str,
        ty: &TensorType,
    ) -> V {
        let r = self.fresh();
        let names: Vec<&str> = args.iter().map(|a| a.name.as_str()).collect();
        let tys: Vec<String> = args.iter().map(|a| tensor_type(&a.ty)).collect();
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" {{{attrs}}}")
        };
        writeln!(
            self.out,
            "    {r} = \"{name}\"({}){region}{attrs} : ({}) -> {}",
            names.join(", "),
            tys.join(", "),
            tensor_type(ty)
        )
        .unwrap();
        V {
            name: r,
            ty: ty.clone(),
        }
    }

    fn un(&mut self, name: &str, x: &V) -> V {
        let ty = x.ty.clone();
        self.op(name, &[x], "", &ty)
    }

    fn un_to(&mut self, name: &str, x: &V, ty: &TensorType) -> V {
        self.op(name, &[x], "", ty)
    }

    fn bin(&mut self, name: &str, a: &V, b: &V) -> V {
        let ty = a.ty.clone();
        self.op(name, &[a, b], "", &ty)
    }

    /// A constant of type `ty` with every element `v`.
    fn splat(&mut self, ty: &TensorType, v: f64) -> V {
        let attr = format!(
            "value = dense<{}> : {}",
            scalar_lit(ty.dtype, v),
            tensor_type(ty)
        );
        self.op("stablehlo.constant", &[], &attr, ty)
    }

    fn splat_like(&mut self, x: &V, v: f64) -> V {
        let ty = x.ty.clone();
        self.splat(&ty, v)
    }

    fn convert(&mut self, x: &V, to: DType) -> V {
        let ty = x.ty.with_dtype(to);
        self.op("stablehlo.convert", &[x], "", &ty)
    }

    fn compare(&mut self, dir: CmpOp, a: &V, b: &V) -> V {
        let d = match dir {
            CmpOp::Eq => "EQ",
            CmpOp::Ne => "NE",
            CmpOp::Lt => "LT",
            CmpOp::Le => "LE",
            CmpOp::Gt => "GT",
            CmpOp::Ge => "GE",
        };
        let kind = match a.ty.dtype {
            DType::F32 | DType::F64 => ", compare_type = #stablehlo<comparison_type FLOAT>",
            DType::I32 | DType::I64 => ", compare_type = #stablehlo<comparison_type SIGNED>",
            DType::Bool => ", compare_type = #stablehlo<comparison_type UNSIGNED>",
            DType::C32 | DType::C64 => "",
        };
        let attr = format!("comparison_direction = #stablehlo<comparison_direction {d}>{kind}");
        let ty = a.ty.with_dtype(DType::Bool);
        self.op("stablehlo.compare", &[a, b], &attr, &ty)
    }

    fn select(&mut self, p: &V, a: &V, b: &V) -> V {
        let ty = a.ty.clone();
        self.op("stablehlo.select", &[p, a, b], "", &ty)
    }

    fn transpose(&mut self, x: &V, perm: &[usize]) -> V {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return x.clone();
        }
        let shape: Vec<usize> = perm.iter().map(|&p| x.ty.shape[p]).collect();
        let ty = TensorType::new(x.ty.dtype, shape);
        self.op(
            "stablehlo.transpose",
            &[x],
            &format!("permutation = {}", i64_array(perm)),
            &ty,
        )
    }

    /// Column-major reshape: transpose(reverse) → row-major reshape → transpose(reverse).
    fn reshape(&mut self, x: &V, shape: &[usize]) -> V {
        if x.ty.shape == shape {
            return x.clone();
        }
        let rev = |r: usize| -> Vec<usize> { (0..r).rev().collect() };
        let a = self.transpose(x, &rev(x.ty.rank()));
        let rshape: Vec<usize> = shape.iter().rev().copied().collect();
        let b = self.op(
            "stablehlo.reshape",
            &[&a],
            "",
            &TensorType::new(x.ty.dtype, rshape),
        );
        self.transpose(&b, &rev(shape.len()))
    }

    /// A region `({ ^bb0(scalar args): body; return })` whose body is built by `body`,
    /// which gets the block arguments and returns the values to return.
    fn region(
        &mut self,
        arg_tys: &[TensorType],
        body: impl FnOnce(&mut Emitter, &[V]) -> Vec<V>,
    ) -> String {
        let saved = std::mem::take(&mut self.out);
        let args: Vec<V> = arg_tys
            .iter()
            .map(|t| {
                self.tmp += 1;
                V {
                    name: format!("%a{}", self.tmp),
                    ty: t.clone(),
                }
            })
            .collect();
        let rets = body(self, &args);
        let inner = std::mem::replace(&mut self.out, saved);
        let head: Vec<String> = args
            .iter()
            .map(|a| format!("{}: {}", a.name, tensor_type(&a.ty)))
            .collect();
        let rn: Vec<&str> = rets.iter().map(|r| r.name.as_str()).collect();
        let rt: Vec<String> = rets.iter().map(|r| tensor_type(&r.ty)).collect();
        let mut s = format!(" ({{\n    ^bb0({}):\n", head.join(", "));
        for line in inner.lines() {
            writeln!(s, "  {line}").unwrap();
        }
        write!(
            s,
            "      \"stablehlo.return\"({}) : ({}) -> ()\n    }})",
            rn.join(", "),
            rt.join(", ")
        )
        .unwrap();
        s
    }

    /// The scalar combiner of a reduction.
    fn combiner(&mut self, kind: ReduceOp, a: &V, b: &V) -> V {
        let name = match (kind, a.ty.dtype) {
            (ReduceOp::Sum, DType::Bool) => "stablehlo.or",
            (ReduceOp::Sum, _) => "stablehlo.add",
            (ReduceOp::Prod, DType::Bool) => "stablehlo.and",
            (ReduceOp::Prod, _) => "stablehlo.multiply",
            (ReduceOp::Max, _) => return self.nan_max_min("stablehlo.maximum", a, b),
            (ReduceOp::Min, _) => return self.nan_max_min("stablehlo.minimum", a, b),
        };
        self.bin(name, a, b)
    }

    /// `maximum` / `minimum` propagating NaN explicitly (XLA CPU's may return the other
    /// operand): `a` if `a` is NaN, else `b` if `b` is NaN, else the op.
    fn nan_max_min(&mut self, name: &str, a: &V, b: &V) -> V {
        let m = self.bin(name, a, b);
        if !a.ty.dtype.is_real_float() {
            return m;
        }
        let an = self.compare(CmpOp::Ne, a, a);
        let bn = self.compare(CmpOp::Ne, b, b);
        let t = self.select(&bn, b, &m);
        self.select(&an, a, &t)
    }

    fn init_value(kind: ReduceOp) -> f64 {
        match kind {
            ReduceOp::Sum => 0.0,
            ReduceOp::Prod => 1.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
        }
    }

    /// Indices clamped into `[0, n - 1]`.
    fn clamp_indices(&mut self, idx: &V, n: usize) -> V {
        let lo = self.splat(&TensorType::scalar(DType::I64), 0.0);
        let hi = self.splat(&TensorType::scalar(DType::I64), (n - 1) as f64);
        let ty = idx.ty.clone();
        self.op("stablehlo.clamp", &[&lo, idx, &hi], "", &ty)
    }

    /// The complex CHLO op `name` (an inverse trigonometric or hyperbolic function),
    /// evaluated on the side of its branch cuts that C99 picks by the sign of a zero part.
    /// The cuts of asin, acos, acosh and atanh lie on the real axis and
    /// `f(conj z) = conj f(z)`: the op runs on `re z + i|im z|` and the result is
    /// conjugated where `im z` has its sign bit set. Those of asinh and atan lie on the
    /// imaginary axis and `f(-conj z) = -conj f(z)`: the op runs on `|re z| + i·im z` and
    /// the result's real part is negated where `re z` has its sign bit set. (XLA's
    /// decompositions lose the sign of a zero part in places: asin(2 - 0i) came out as
    /// asin(2 + 0i).)
    fn with_c99_cut_side(&mut self, name: &str, x: &V, cut_on_imag_axis: bool) -> V {
        let rd = x.ty.dtype.real();
        let rt = x.ty.with_dtype(rd);
        let re = self.un_to("stablehlo.real", x, &rt);
        let im = self.un_to("stablehlo.imag", x, &rt);
        let folded_part = if cut_on_imag_axis { &re } else { &im };
        let abs = self.un("stablehlo.abs", folded_part);
        let folded = if cut_on_imag_axis {
            self.op("stablehlo.complex", &[&abs, &im], "", &x.ty)
        } else {
            self.op("stablehlo.complex", &[&re, &abs], "", &x.ty)
        };
        let w = self.un(name, &folded);
        let w_re = self.un_to("stablehlo.real", &w, &rt);
        let w_im = self.un_to("stablehlo.imag", &w, &rt);
        let mirrored = if cut_on_imag_axis {
            let neg_re = self.un("stablehlo.negate", &w_re);
            self.op("stablehlo.complex", &[&neg_re, &w_im], "", &x.ty)
        } else {
            let neg_im = self.un("stablehlo.negate", &w_im);
            self.op("stablehlo.complex", &[&w_re, &neg_im], "", &x.ty)
        };
        // The sign bit of the folded part: its bits as a signed integer are negative.
        let int = x.ty.with_dtype(if rd == DType::F32 {
            DType::I32
        } else {
            DType::I64
        });
        let bits = self.op("stablehlo.bitcast_convert", &[folded_part], "", &int);
        let zero = self.splat(&int, 0.0);
        let negative = self.compare(CmpOp::Lt, &bits, &zero);
        self.select(&negative, &mirrored, &w)
    }

    fn unary(&mut self, u: UnaryOp, x: &V, rty: &TensorType) -> Result<V> {
        let d = x.ty.dtype;
        let complex = d.is_complex();
        let name: Option<&str> = match u.name() {
            "neg" => Some("stablehlo.negate"),
            "exp" => Some("stablehlo.exponential"),
            "log" => Some("stablehlo.log"),
            "sin" => Some("stablehlo.sine"),
            "cos" => Some("stablehlo.cosine"),
            "tan" => Some("stablehlo.tan"),
            "tanh" => Some("stablehlo.tanh"),
            "sqrt" => Some("stablehlo.sqrt"),
            "rsqrt" => Some("stablehlo.rsqrt"),
            "abs" => Some("stablehlo.abs"),
            "sign" => Some("stablehlo.sign"),
            "expm1" => Some("stablehlo.exponential_minus_one"),
            "log1p" => Some("stablehlo.log_plus_one"),
            "logistic" => Some("stablehlo.logistic"),
            "cbrt" => Some("stablehlo.cbrt"),
            "floor" => Some("stablehlo.floor"),
            "ceil" => Some("stablehlo.ceil"),
            "round" => Some("stablehlo.round_nearest_even"),
            "not" => Some("stablehlo.not"),
            "popcnt" | "population_count" => Some("stablehlo.popcnt"),
            "clz" | "count_leading_zeros" => Some("stablehlo.count_leading_zeros"),
            _ => None,
        };
        if let Some(n) = name {
            return Ok(self.un_to(n, x, rty));
        }
        Ok(match u {
            UnaryOp::StopGradient => x.clone(),
            UnaryOp::Conj => {
                if complex {
                    let rt = x.ty.with_dtype(d.real());
                    let re = self.un_to("stablehlo.real", x, &rt);
                    let im = self.un_to("stablehlo.imag", x, &rt);
                    let nim = self.un("stablehlo.negate", &im);
                    self.op("stablehlo.complex", &[&re, &nim], "", &x.ty)
                } else {
                    x.clone()
                }
            }
            UnaryOp::Real => {
                if complex {
                    self.un_to("stablehlo.real", x, rty)
                } else {
                    x.clone()
                }
            }
            UnaryOp::Imag => {
                if complex {
                    self.un_to("stablehlo.imag", x, rty)
                } else {
                    self.splat(rty, 0.0)
                }
            }
            // CHLO ops, which XLA decomposes into StableHLO when it compiles the module.
            // erf and erfc are real only, as in the op table.
            UnaryOp::Erf => self.un_to("chlo.erf", x, rty),
            UnaryOp::Erfc => self.un_to("chlo.erfc", x, rty),
            UnaryOp::Sinh | UnaryOp::Cosh => {
                // (e^x ∓ e^-x) / 2
                let e = self.un("stablehlo.exponential", x);
                let nx = self.un("stablehlo.negate", x);
                let en = self.un("stablehlo.exponential", &nx);
                let s = if u == UnaryOp::Sinh {
                    self.bin("stablehlo.subtract", &e, &en)
                } else {
                    self.bin("stablehlo.add", &e, &en)
                };
                let half = self.splat_like(x, 0.5);
                self.bin("stablehlo.multiply", &s, &half)
            }
            UnaryOp::Atan
            | UnaryOp::Asin
            | UnaryOp::Acos
            | UnaryOp::Asinh
            | UnaryOp::Acosh
            | UnaryOp::Atanh
                if complex =>
            {
                let on_imag_axis = matches!(u, UnaryOp::Asinh | UnaryOp::Atan);
                self.with_c99_cut_side(&format!("chlo.{}", u.name()), x, on_imag_axis)
            }
            UnaryOp::Atan => {
                let one = self.splat_like(x, 1.0);
                self.bin("stablehlo.atan2", x, &one)
            }
            UnaryOp::Asin | UnaryOp::Acos => {
                // sqrt((1 - x)(1 + x)), then atan2.
                let one = self.splat_like(x, 1.0);
                let a = self.bin("stablehlo.subtract", &one, x);
                let b = self.bin("stablehlo.add", &one, x);
                let p = self.bin("stablehlo.multiply", &a, &b);
                let s = self.un("stablehlo.sqrt", &p);
                if u == UnaryOp::Asin {
                    self.bin("stablehlo.atan2", x, &s)
                } else {
                    self.bin("stablehlo.atan2", &s, x)
                }
            }
            UnaryOp::Asinh => {
                // sign(x) log(|x| + sqrt(x² + 1))
                let ax = self.un("stablehlo.abs", x);
                let one = self.splat_like(x, 1.0);
                let sq = self.bin("stablehlo.multiply", x, x);
                let p = self.bin("stablehlo.add", &sq, &one);
                let r = self.un("stablehlo.sqrt", &p);
                let s = self.bin("stablehlo.add", &ax, &r);
                let l = self.un("stablehlo.log", &s);
                let sg = self.un("stablehlo.sign", x);
                self.bin("stablehlo.multiply", &sg, &l)
            }
            UnaryOp::Acosh => {
                // log(x + sqrt((x - 1)(x + 1)))
                let one = self.splat_like(x, 1.0);
                let a = self.bin("stablehlo.subtract", x, &one);
                let b = self.bin("stablehlo.add", x, &one);
                let p = self.bin("stablehlo.multiply", &a, &b);
                let r = self.un("stablehlo.sqrt", &p);
                let s = self.bin("stablehlo.add", x, &r);
                self.un("stablehlo.log", &s)
            }
            UnaryOp::Atanh => {
                // (log1p(x) - log1p(-x)) / 2
                let a = self.un("stablehlo.log_plus_one", x);
                let nx = self.un("stablehlo.negate", x);
                let b = self.un("stablehlo.log_plus_one", &nx);
                let s = self.bin("stablehlo.subtract", &a, &b);
                let half = self.splat_like(x, 0.5);
                self.bin("stablehlo.multiply", &s, &half)
            }
            _ => {
                return Err(unsupported(
                    u.name(),
                    "no StableHLO lowering for this unary op",
                ))
            }
        })
    }

    fn binary(&mut self, b: BinaryOp, x: &V, y: &V) -> Result<V> {
        let name = match b.name() {
            "add" => "stablehlo.add",
            "sub" => "stablehlo.subtract",
            "mul" => "stablehlo.multiply",
            "div" => "stablehlo.divide",
            "pow" => "stablehlo.power",
            "maximum" => "stablehlo.maximum",
            "minimum" => "stablehlo.minimum",
            "atan2" => "stablehlo.atan2",
            "rem" => "stablehlo.remainder",
            "and" => "stablehlo.and",
            "or" => "stablehlo.or",
            "xor" => "stablehlo.xor",
            // StableHLO gives 0 for shift amounts outside 0..width, as the IR does.
            "shift_left" => "stablehlo.shift_left",
            "shift_right_logical" => "stablehlo.shift_right_logical",
            "shift_right_arithmetic" => "stablehlo.shift_right_arithmetic",
            other => {
                return Err(unsupported(
                    other,
                    "no StableHLO lowering for this binary op",
                ))
            }
        };
        if x.ty.dtype.is_int() && matches!(b.name(), "div" | "rem") {
            // The IR defines integer division and remainder by zero as 0.
            let zero = self.splat_like(y, 0.0);
            let one = self.splat_like(y, 1.0);
            let is0 = self.compare(CmpOp::Eq, y, &zero);
            let safe = self.select(&is0, &one, y);
            let q = self.bin(name, x, &safe);
            return Ok(self.select(&is0, &zero, &q));
        }
        if matches!(b.name(), "maximum" | "minimum") {
            return Ok(self.nan_max_min(name, x, y));
        }
        Ok(self.bin(name, x, y))
    }

    fn convert_to(&mut self, x: &V, to: DType) -> V {
        let from = x.ty.dtype;
        if from == to {
            return x.clone();
        }
        if to == DType::Bool {
            let z = self.splat_like(x, 0.0);
            return self.compare(CmpOp::Ne, x, &z);
        }
        if from.is_complex() && !to.is_complex() {
            let re = self.un_to("stablehlo.real", x, &x.ty.with_dtype(from.real()));
            return self.convert_to(&re, to);
        }
        self.convert(x, to)
    }
}

fn export(f: &Function, sharding: Option<&Sharding>) -> Result<String> {
    if let Some(s) = sharding {
        s.check(f)?;
    }
    let mut e = Emitter {
        out: String::new(),
        tmp: 0,
    };
    let mut vals: Vec<Option<V>> = vec![None; f.num_values()];
    let mut head = Vec::new();
    for (i, &p) in f.params().iter().enumerate() {
        let ty = f.ty(p).clone();
        let name = format!("%arg{i}");
        let attr = sharding
            .map(|s| format!(" {{sdy.sharding = {}}}", s.attr(&s.inputs[i], &ty)))
            .unwrap_or_default();
        head.push(format!("{name}: {}{attr}", tensor_type(&ty)));
        vals[p.index()] = Some(V { name, ty });
    }
    let get = |vals: &Vec<Option<V>>, v: tenferro_ir::Value| -> V {
        vals[v.index()]
            .clone()
            .expect("operands are defined before use")
    };
    for inst in f.insts() {
        let args: Vec<V> = inst.args.iter().map(|&a| get(&vals, a)).collect();
        let rty = f.ty(inst.results[0]).clone();
        let r: Vec<V> = match &inst.op {
            Op::Unary(u) => vec![e.unary(*u, &args[0], &rty)?],
            Op::Binary(b) => vec![e.binary(*b, &args[0], &args[1])?],
            Op::Compare(c) => vec![e.compare(*c, &args[0], &args[1])],
            Op::Select => vec![e.select(&args[0], &args[1], &args[2])],
            Op::Convert { to } => vec![e.convert_to(&args[0], *to)],
            Op::Reduce { kind, axes } => {
                let x = &args[0];
                let st = TensorType::scalar(x.ty.dtype);
                let init = e.splat(&st, Emitter::init_value(*kind));
                let k = *kind;
                let region = e.region(&[st.clone(), st], |e, a| vec![e.combiner(k, &a[0], &a[1])]);
                vec![e.op_region(
                    "stablehlo.reduce",
                    &[x, &init],
                    &region,
                    &format!("dimensions = {}", i64_array(axes)),
                    &rty,
                )]
            }
            Op::DotGeneral(d) => {
                let mut parts = Vec::new();
                for (k, v) in [
                    ("lhs_batching_dimensions", &d.lhs_batch),
                    ("rhs_batching_dimensions", &d.rhs_batch),
                    ("lhs_contracting_dimensions", &d.lhs_contract),
                    ("rhs_contracting_dimensions", &d.rhs_contract),
                ] {
                    if !v.is_empty() {
                        parts.push(format!("{k} = {}", list(v)));
                    }
                }
                let attr = format!(
                    "dot_dimension_numbers = #stablehlo.dot<{}>",
                    parts.join(", ")
                );
                vec![e.op("stablehlo.dot_general", &[&args[0], &args[1]], &attr, &rty)]
            }
            Op::Transpose { perm } => vec![e.transpose(&args[0], perm)],
            Op::Reshape { shape } => vec![e.reshape(&args[0], shape)],
            Op::BroadcastInDim { dims, .. } => vec![e.op(
                "stablehlo.broadcast_in_dim",
                &[&args[0]],
                &format!("broadcast_dimensions = {}", i64_array(dims)),
                &rty,
            )],
            Op::Slice { starts, limits } => vec![e.op(
                "stablehlo.slice",
                &[&args[0]],
                &format!(
                    "start_indices = {}, limit_indices = {}, strides = {}",
                    i64_array(starts),
                    i64_array(limits),
                    i64_array(&vec![1; starts.len()])
                ),
                &rty,
            )],
            Op::Pad { low, high } => vec![e.op(
                "stablehlo.pad",
                &[&args[0], &args[1]],
                &format!(
                    "edge_padding_low = {}, edge_padding_high = {}, interior_padding = {}",
                    i64_array(low),
                    i64_array(high),
                    i64_array(&vec![0; low.len()])
                ),
                &rty,
            )],
            Op::Concatenate { axis } => {
                let refs: Vec<&V> = args.iter().collect();
                vec![e.op(
                    "stablehlo.concatenate",
                    &refs,
                    &format!("dimension = {axis} : i64"),
                    &rty,
                )]
            }
            Op::Gather { axis } => {
                let (x, idx) = (&args[0], &args[1]);
                let idx = e.clamp_indices(idx, x.ty.shape[*axis]);
                let (xr, ir) = (x.ty.rank(), idx.ty.rank());
                let offset: Vec<usize> = (0..*axis).chain(axis + ir..xr - 1 + ir).collect();
                let mut sizes = x.ty.shape.clone();
                sizes[*axis] = 1;
                let mut dn = Vec::new();
                if !offset.is_empty() {
                    dn.push(format!("offset_dims = {}", list(&offset)));
                }
                dn.push(format!("collapsed_slice_dims = [{axis}]"));
                dn.push(format!("start_index_map = [{axis}]"));
                dn.push(format!("index_vector_dim = {ir}"));
                let attr = format!(
                    "dimension_numbers = #stablehlo.gather<{}>, indices_are_sorted = false, slice_sizes = {}",
                    dn.join(", "),
                    i64_array(&sizes)
                );
                vec![e.op("stablehlo.gather", &[x, &idx], &attr, &rty)]
            }
            Op::ScatterAdd { axis } => {
                let (base, idx, upd) = (&args[0], &args[1], &args[2]);
                let idx = e.clamp_indices(idx, base.ty.shape[*axis]);
                let (xr, ir) = (base.ty.rank(), idx.ty.rank());
                let window: Vec<usize> = (0..*axis).chain(axis + ir..xr - 1 + ir).collect();
                let mut dn = Vec::new();
                if !window.is_empty() {
                    dn.push(format!("update_window_dims = {}", list(&window)));
                }
                dn.push(format!("inserted_window_dims = [{axis}]"));
                dn.push(format!("scatter_dims_to_operand_dims = [{axis}]"));
                dn.push(format!("index_vector_dim = {ir}"));
                let attr = format!(
                    "indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<{}>, unique_indices = false",
                    dn.join(", ")
                );
                let st = TensorType::scalar(base.ty.dtype);
                let region = e.region(&[st.clone(), st], |e, a| {
                    vec![e.combiner(ReduceOp::Sum, &a[0], &a[1])]
                });
                vec![e.op_region(
                    "stablehlo.scatter",
                    &[base, &idx, upd],
                    &region,
                    &attr,
                    &rty,
                )]
            }
            Op::Iota { ty, dim } => {
                let attr = format!("iota_dimension = {dim} : i64");
                vec![match ty.dtype {
                    DType::Bool => {
                        let i = e.op("stablehlo.iota", &[], &attr, &ty.with_dtype(DType::I64));
                        e.convert_to(&i, DType::Bool)
                    }
                    d @ (DType::C32 | DType::C64) => {
                        let i = e.op("stablehlo.iota", &[], &attr, &ty.with_dtype(d.real()));
                        e.convert(&i, d)
                    }
                    DType::F32 | DType::F64 | DType::I32 | DType::I64 => {
                        e.op("stablehlo.iota", &[], &attr, ty)
                    }
                }]
            }
            Op::Constant(t) => {
                let attr = format!(
                    "value = dense<{}> : {}",
                    dense_literal(t),
                    tensor_type(&rty)
                );
                vec![e.op("stablehlo.constant", &[], &attr, &rty)]
            }
            Op::Argsort { axis, descending } => vec![e.argsort(&args[0], *axis, *descending)],
            Op::Cumulative {
                kind,
                axis,
                reverse,
            } => vec![e.cumulative(&args[0], *kind, *axis, *reverse)],
            Op::Extension(x) => e.extension(x, &args)?,
            #[allow(unreachable_patterns)]
            other => {
                // An optimisation barrier is the value of its first operand.
                if other.name().contains("barrier")
                    && !args.is_empty()
                    && args[0].ty == rty
                    && inst.results.len() == 1
                {
                    vec![args[0].clone()]
                } else {
                    return Err(unsupported(
                        other.name(),
                        "no StableHLO lowering for this op",
                    ));
                }
            }
        };
        for (res, v) in inst.results.iter().zip(r) {
            vals[res.index()] = Some(V {
                name: v.name,
                ty: f.ty(*res).clone(),
            });
        }
    }
    let outs: Vec<V> = f.outputs().iter().map(|&o| get(&vals, o)).collect();
    let mut s = String::new();
    let (parts, mesh) = match sharding {
        Some(sh) => (sh.mesh.size(), Some(sh.mesh.decl())),
        None => (1, None),
    };
    writeln!(
        s,
        "module @tenferro attributes {{mhlo.num_partitions = {parts} : i32, mhlo.num_replicas = 1 : i32}} {{"
    )
    .unwrap();
    if let Some(m) = mesh {
        writeln!(s, "  {m}").unwrap();
    }
    let rtys: Vec<String> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let attr = sharding
                .map(|sh| format!(" {{sdy.sharding = {}}}", sh.attr(&sh.outputs[i], &o.ty)))
                .unwrap_or_default();
            format!("{}{attr}", tensor_type(&o.ty))
        })
        .collect();
    writeln!(
        s,
        "  func.func public @main({}) -> ({}) {{",
        head.join(", "),
        rtys.join(", ")
    )
    .unwrap();
    s.push_str(&e.out);
    let on: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
    let ot: Vec<String> = outs.iter().map(|o| tensor_type(&o.ty)).collect();
    writeln!(
        s,
        "    \"func.return\"({}) : ({}) -> ()\n  }}\n}}",
        on.join(", "),
        ot.join(", ")
    )
    .unwrap();
    Ok(s)
}

impl Emitter {
    /// A stable sort of `(x, iota)` along `axis` with the IR's total order (NaN last, or
    /// first when descending; `-0 == 0`); the permutation is the sorted iota.
    fn argsort(&mut self, x: &V, axis: usize, descending: bool) -> V {
        let ity = x.ty.with_dtype(DType::I64);
        let io = self.op(
            "stablehlo.iota",
            &[],
            &format!("iota_dimension = {axis} : i64"),
            &ity,
        );
        let st = TensorType::scalar(x.ty.dtype);
        let it = TensorType::scalar(DType::I64);
        let float = x.ty.dtype.is_float();
        let region = self.region(&[st.clone(), st, it.clone(), it], |e, a| {
            let (p, q) = (&a[0], &a[1]);
            if !float {
                let dir = if descending { CmpOp::Gt } else { CmpOp::Lt };
                return vec![e.compare(dir, p, q)];
            }
            let pn = e.compare(CmpOp::Ne, p, p);
            let qn = e.compare(CmpOp::Ne, q, q);
            if descending {
                // p > q, or p is NaN and q is not.
                let gt = e.compare(CmpOp::Gt, p, q);
                let nq = e.un("stablehlo.not", &qn);
                let a1 = e.bin("stablehlo.and", &pn, &nq);
                vec![e.bin("stablehlo.or", &gt, &a1)]
            } else {
                // p < q, or q is NaN and p is not.
                let lt = e.compare(CmpOp::Lt, p, q);
                let np = e.un("stablehlo.not", &pn);
                let a1 = e.bin("stablehlo.and", &np, &qn);
                vec![e.bin("stablehlo.or", &lt, &a1)]
            }
        });
        let r = self.fresh();
        writeln!(
            self.out,
            "    {r}:2 = \"stablehlo.sort\"({}, {}){region} {{dimension = {axis} : i64, is_stable = true}} : ({}, {}) -> ({}, {})",
            x.name,
            io.name,
            tensor_type(&x.ty),
            tensor_type(&ity),
            tensor_type(&x.ty),
            tensor_type(&ity)
        )
        .unwrap();
        V {
            name: format!("{r}#1"),
            ty: ity,
        }
    }

    /// An inclusive scan as a `reduce_window` whose window covers the whole axis, padded
    /// with the reduction's identity before (or, reversed, after) the data.
    fn cumulative(&mut self, x: &V, kind: ReduceOp, axis: usize, reverse: bool) -> V {
        let n = x.ty.shape[axis];
        if n <= 1 || x.ty.numel() == 0 {
            return x.clone();
        }
        let r = x.ty.rank();
        let st = TensorType::scalar(x.ty.dtype);
        let init = self.splat(&st, Emitter::init_value(kind));
        let region = self.region(&[st.clone(), st], |e, a| {
            vec![e.combiner(kind, &a[0], &a[1])]
        });
        let mut win = vec![1; r];
        win[axis] = n;
        let pads: Vec<String> = (0..r)
            .map(|k| {
                if k != axis {
                    "[0, 0]".to_string()
                } else if reverse {
                    format!("[0, {}]", n - 1)
                } else {
                    format!("[{}, 0]", n - 1)
                }
            })
            .collect();
        let attr = format!(
            "padding = dense<[{}]> : tensor<{r}x2xi64>, window_dimensions = {}",
            pads.join(", "),
            i64_array(&win)
        );
        let ty = x.ty.clone();
        self.op_region("stablehlo.reduce_window", &[x, &init], &region, &attr, &ty)
    }

    /// `linalg.cholesky` and `linalg.triangular_solve` (matrix axes first in the IR, last
    /// in StableHLO: transposed around the op). Other extension ops are rejected.
    fn extension(&mut self, x: &ExtensionOp, args: &[V]) -> Result<Vec<V>> {
        let to_hlo = |r: usize| -> Vec<usize> { (2..r).chain([0, 1]).collect() };
        let from_hlo = |r: usize| -> Vec<usize> {
            let mut p = vec![r - 2, r - 1];
            p.extend(0..r - 2);
            p
        };
        match x.name.as_str() {
            CHOLESKY => {
                Cholesky::decode(x)?;
                let a = &args[0];
                let r = a.ty.rank();
                let at = self.transpose(a, &to_hlo(r));
                let l = self.op("stablehlo.cholesky", &[&at], "lower = true", &at.ty.clone());
                // XLA leaves the upper triangle unspecified: zero it.
                let l = self.tril(&l);
                Ok(vec![self.transpose(&l, &from_hlo(r))])
            }
            TRIANGULAR_SOLVE => {
                let how = TriangularSolve::decode(x)?;
                let (a, b) = (&args[0], &args[1]);
                let r = a.ty.rank();
                if b.ty.rank() != r {
                    return Err(unsupported(&x.name, "operands of different ranks"));
                }
                let at = self.transpose(a, &to_hlo(r));
                let bt = self.transpose(b, &to_hlo(r));
                let transpose_a = if how.adjoint {
                    if a.ty.dtype.is_complex() {
                        "ADJOINT"
                    } else {
                        "TRANSPOSE"
                    }
                } else {
                    "NO_TRANSPOSE"
                };
                let attr = format!(
                    "left_side = {}, lower = {}, transpose_a = #stablehlo<transpose {transpose_a}>, unit_diagonal = {}",
                    how.left, how.lower, how.unit_diagonal
                );
                let bty = bt.ty.clone();
                let xs = self.op("stablehlo.triangular_solve", &[&at, &bt], &attr, &bty);
                Ok(vec![self.transpose(&xs, &from_hlo(r))])
            }
            other => Err(unsupported(
                other,
                "extension op without a StableHLO lowering (only linalg.cholesky and \
                 linalg.triangular_solve are lowered)",
            )),
        }
    }

    /// Zeros above the diagonal of the last two axes.
    fn tril(&mut self, l: &V) -> V {
        let r = l.ty.rank();
        let ity = l.ty.with_dtype(DType::I64);
        let row = self.op(
            "stablehlo.iota",
            &[],
            &format!("iota_dimension = {} : i64", r - 2),
            &ity,
        );
        let col = self.op(
            "stablehlo.iota",
            &[],
            &format!("iota_dimension = {} : i64", r - 1),
            &ity,
        );
        let keep = self.compare(CmpOp::Ge, &row, &col);
        let z = self.splat_like(l, 0.0);
        self.select(&keep, l, &z)
    }
}
