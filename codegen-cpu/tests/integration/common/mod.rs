//! Shared helpers of the backend tests: deterministic random tensors, running one op or
//! function on the CPU backend, and comparison against the reference evaluator.
#![allow(dead_code)]

use num_complex::{Complex32, Complex64};
use tenferro_cpu::CpuBackend;
use tenferro_ir::{eval, infer_types, DType, Data, Function, Op, Tensor, TensorType};
use tenferro_runtime::{Backend, ExtensionRegistry};

/// Dtypes every numeric op is tried on: all but bool.
pub fn numeric() -> Vec<DType> {
    DType::ALL
        .into_iter()
        .filter(|&d| d != DType::Bool)
        .collect()
}

/// A small deterministic generator (splitmix64).
pub struct SeedRng(u64);

impl SeedRng {
    pub fn new(seed: u64) -> SeedRng {
        SeedRng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A float: mostly in [-3, 3], sometimes a small integer (so comparisons tie), and
    /// with `special` a special value (±0, ±inf, NaN) now and then.
    pub fn float(&mut self, special: bool) -> f64 {
        match self.below(10) {
            0 if special => [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][self.below(5)],
            1 | 2 => self.below(5) as f64 - 2.0,
            _ => (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0,
        }
    }
    pub fn int(&mut self) -> i64 {
        match self.below(12) {
            0 => [i64::MIN, i64::MAX, 0][self.below(3)],
            _ => self.below(9) as i64 - 4,
        }
    }
    /// An i32: as [`SeedRng::int`] with the extremes of i32.
    pub fn int32(&mut self) -> i32 {
        match self.below(12) {
            0 => [i32::MIN, i32::MAX, 0][self.below(3)],
            _ => self.below(9) as i32 - 4,
        }
    }
    /// A random tensor of `ty`.
    pub fn tensor(&mut self, ty: &TensorType, special: bool) -> Tensor {
        let n = ty.numel();
        let data = match ty.dtype {
            DType::F32 => Data::F32((0..n).map(|_| self.float(special) as f32).collect()),
            DType::F64 => Data::F64((0..n).map(|_| self.float(special)).collect()),
            DType::C32 => Data::C32(
                (0..n)
                    .map(|_| Complex32::new(self.float(special) as f32, self.float(special) as f32))
                    .collect(),
            ),
            DType::C64 => Data::C64(
                (0..n)
                    .map(|_| Complex64::new(self.float(special), self.float(special)))
                    .collect(),
            ),
            DType::I32 => Data::I32((0..n).map(|_| self.int32()).collect()),
            DType::I64 => Data::I64((0..n).map(|_| self.int()).collect()),
            DType::Bool => Data::Bool((0..n).map(|_| self.below(2) == 1).collect()),
        };
        Tensor::new(ty.shape.clone(), data).unwrap()
    }
    /// A random shape of rank `rank` with extents in `[lo, hi]`.
    pub fn shape(&mut self, rank: usize, lo: usize, hi: usize) -> Vec<usize> {
        (0..rank).map(|_| lo + self.below(hi - lo + 1)).collect()
    }
    /// A random permutation of `0..n`.
    pub fn perm(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }
}

/// A function applying `op` to parameters of the types of `args`.
pub fn single_op_function(op: &Op, args: &[&Tensor]) -> Function {
    let mut f = Function::new("single_op");
    let params: Vec<_> = args.iter().map(|a| f.add_param(a.ty())).collect();
    let r = f.push(op.clone(), &params).unwrap();
    f.set_outputs(r);
    f
}

/// Runs `f` on the CPU backend with `threads` threads and no extensions.
pub fn run_cpu(f: &Function, inputs: &[Tensor], threads: usize) -> Vec<Tensor> {
    run_cpu_with(f, inputs, threads, true)
}

/// Runs `f` with fusion on or off.
pub fn run_cpu_with(f: &Function, inputs: &[Tensor], threads: usize, fusion: bool) -> Vec<Tensor> {
    let b = CpuBackend::with_threads(threads).with_fusion(fusion);
    let p = b.prepare(f).unwrap();
    b.execute(&p, inputs, &ExtensionRegistry::new()).unwrap()
}

/// Like [`assert_close`], but NaN equals NaN and equal values (infinities) are close.
pub fn assert_close_nan(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.ty(), want.ty(), "{what}");
    if got.dtype() == DType::I64 || got.dtype() == DType::Bool {
        assert!(got.bits_eq(want), "{what}\n cpu: {got:?}\n ref: {want:?}");
        return;
    }
    let tol = match got.dtype() {
        DType::F32 | DType::C32 => 1e-4,
        _ => 1e-11,
    };
    let close = |g: f64, w: f64| {
        (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * (1.0 + w.abs())
    };
    for i in 0..got.numel() {
        let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
        // Complex arithmetic on infinities depends on the order of operations: any
        // non-finite result matches any other.
        let complex_special = got.dtype().is_complex()
            && !(g.re.is_finite() && g.im.is_finite())
            && !(w.re.is_finite() && w.im.is_finite());
        assert!(
            complex_special || (close(g.re, w.re) && close(g.im, w.im)),
            "{what}: element {i}: cpu {g} vs ref {w}"
        );
    }
}

/// Whether `op` accepts operands of these types.
pub fn accepts(op: &Op, args: &[&Tensor]) -> bool {
    let tys: Vec<TensorType> = args.iter().map(|a| a.ty()).collect();
    let refs: Vec<&TensorType> = tys.iter().collect();
    infer_types(op, &refs).is_ok()
}

/// Runs `op` on the CPU backend and the reference evaluator: bit equality without fusion,
/// closeness (NaN-aware) with fusion.
/// Ops that reject the operand types must be rejected by `prepare` too. Returns whether
/// the op ran.
pub fn check_bits(op: &Op, args: &[&Tensor]) -> bool {
    let f = single_op_function_checked(op, args);
    let Some(f) = f else {
        return false;
    };
    let inputs: Vec<Tensor> = args.iter().map(|&t| t.clone()).collect();
    let want = eval::eval(&f, &inputs).unwrap();
    // Fused: equal up to reduction order and vectorised math.
    let fused = run_cpu(&f, &inputs, 1);
    for (g, w) in fused.iter().zip(&want) {
        assert_close_nan(g, w, &format!("fused {op:?}"));
    }
    // Unfused: bit-identical (NaNs of any payload equal).
    let got = run_cpu_with(&f, &inputs, 1, false);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(
            bits_eq_any_nan(g, w),
            "{op:?} on {:?}\n cpu: {g:?}\n ref: {w:?}",
            args.iter().map(|a| a.ty().to_string()).collect::<Vec<_>>()
        );
    }
    true
}

/// Bitwise equality where any NaN equals any NaN: IEEE leaves the payload and sign of a
/// NaN produced by arithmetic open, and the compiler may swap the operands of a
/// commutative op (so which input NaN propagates differs between builds of one formula).
pub fn bits_eq_any_nan(a: &Tensor, b: &Tensor) -> bool {
    fn same<T: Copy + PartialEq>(
        x: &[T],
        y: &[T],
        nan: impl Fn(T) -> bool,
        eq: impl Fn(T, T) -> bool,
    ) -> bool {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(&p, &q)| eq(p, q) || (nan(p) && nan(q)))
    }
    if a.shape() != b.shape() {
        return false;
    }
    match (a.data(), b.data()) {
        (Data::F32(x), Data::F32(y)) => same(x, y, f32::is_nan, |p, q| p.to_bits() == q.to_bits()),
        (Data::F64(x), Data::F64(y)) => same(x, y, f64::is_nan, |p, q| p.to_bits() == q.to_bits()),
        (Data::C32(x), Data::C32(y)) => {
            let parts = |v: &[Complex32]| v.iter().flat_map(|z| [z.re, z.im]).collect::<Vec<f32>>();
            same(&parts(x), &parts(y), f32::is_nan, |p, q| {
                p.to_bits() == q.to_bits()
            })
        }
        (Data::C64(x), Data::C64(y)) => {
            let parts = |v: &[Complex64]| v.iter().flat_map(|z| [z.re, z.im]).collect::<Vec<f64>>();
            same(&parts(x), &parts(y), f64::is_nan, |p, q| {
                p.to_bits() == q.to_bits()
            })
        }
        _ => a.bits_eq(b),
    }
}

/// The single-op function, or None (after checking `prepare` rejects it too) when the op
/// does not accept the operand types.
fn single_op_function_checked(op: &Op, args: &[&Tensor]) -> Option<Function> {
    if accepts(op, args) {
        return Some(single_op_function(op, args));
    }
    let mut f = Function::new("ill_typed");
    let params: Vec<_> = args.iter().map(|a| f.add_param(a.ty())).collect();
    let r = f.push_unchecked(op.clone(), params, vec![TensorType::scalar(DType::F64)]);
    f.set_outputs(r);
    let e = CpuBackend::with_threads(1)
        .prepare(&f)
        .unwrap_err()
        .to_string();
    assert!(e.contains(op.name()), "{e}");
    None
}

/// Asserts `got` is within a relative tolerance of `want` (same type), element by element.
pub fn assert_close(got: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(got.ty(), want.ty(), "{what}");
    let tol = match got.dtype() {
        DType::F32 | DType::C32 => 1e-4,
        _ => 1e-11,
    };
    if got.dtype() == DType::I64 || got.dtype() == DType::Bool {
        assert!(got.bits_eq(want), "{what}\n cpu: {got:?}\n ref: {want:?}");
        return;
    }
    for i in 0..got.numel() {
        let (g, w) = (got.data().get_c64(i), want.data().get_c64(i));
        assert!(
            (g - w).norm() <= tol * (1.0 + w.norm()),
            "{what}: element {i}: cpu {g} vs ref {w}"
        );
    }
}
