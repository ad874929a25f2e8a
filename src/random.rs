//! Random numbers, JAX style: explicit keys and a counter-based generator.
//!
//! A key is two 32-bit words; as a tensor it is an `i64[2]` whose elements lie in
//! `0..2^32` (there is no 32-bit integer dtype). [`Key`] is the host form:
//! [`Key::new`] (as `jax.random.PRNGKey(seed)`), [`Key::split`] and [`Key::fold_in`]
//! derive new keys, and [`Key::tensor`] / [`Key::from_tensor`] convert.
//!
//! The generator is threefry-2x32 with 20 rounds (Random123's `threefry2x32_20`, JAX's
//! default), evaluated on counters `0, 1, 2, ...` laid out as JAX does, so [`Key::split`],
//! [`Key::fold_in`] and [`random_bits`] give JAX's numbers, and [`uniform`] gives JAX's
//! numbers for f32 and f64 (elements in row-major order, as JAX).
//!
//! Samplers are functions of a traced key ([`uniform`], [`normal`], [`truncated_normal`],
//! [`bernoulli`], [`categorical`], [`permutation`], [`random_bits`]), so a compiled step
//! takes the key as an input and draws fresh numbers every call; the threefry rounds are
//! ordinary integer ops (add, and, or, xor, shifts on i64 holding 32-bit values). The
//! host samplers on [`Key`] run the very same traced function, compiled with the key as
//! a placeholder, on the CPU backend, so host and in-graph draws agree bit for bit, and,
//! since every element is computed independently, so do runs on any number of threads.
//!
//! `normal` uses Box–Muller and `truncated_normal` the inverse CDF (erf and an erfinv by
//! Newton steps), so those two are not JAX's bits (JAX uses XLA's erfinv polynomial).

use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::BinaryOp;
use tenferro_runtime::{
    DType, GraphCompiler, GraphExecutor, Result, RuntimeError, Tensor, TensorType, TracedTensor,
};

const MASK: i64 = 0xFFFF_FFFF;
const ROTATIONS: [[u32; 4]; 2] = [[13, 15, 26, 6], [17, 29, 16, 24]];
const PARITY: u32 = 0x1BD1_1BDA;

/// One block of threefry-2x32 (20 rounds) on the host: `key` and counter `x` to two
/// words.
pub fn threefry2x32(key: [u32; 2], x: [u32; 2]) -> [u32; 2] {
    let ks = [key[0], key[1], key[0] ^ key[1] ^ PARITY];
    let mut x = [x[0].wrapping_add(ks[0]), x[1].wrapping_add(ks[1])];
    for i in 0..5usize {
        for &r in &ROTATIONS[i % 2] {
            x[0] = x[0].wrapping_add(x[1]);
            x[1] = x[1].rotate_left(r);
            x[1] ^= x[0];
        }
        x[0] = x[0].wrapping_add(ks[(i + 1) % 3]);
        x[1] = x[1]
            .wrapping_add(ks[(i + 2) % 3])
            .wrapping_add(i as u32 + 1);
    }
    x
}

/// JAX's `threefry_2x32` on a flat counter array: the counters are split into halves
/// (padded with a zero when odd), each pair `(first[i], second[i])` is one block, and
/// the outputs are concatenated back.
fn threefry_flat(key: [u32; 2], counts: &[u32]) -> Vec<u32> {
    let n = counts.len();
    let half = n.div_ceil(2);
    let mut out = vec![0u32; 2 * half];
    for i in 0..half {
        let b = counts.get(half + i).copied().unwrap_or(0);
        let y = threefry2x32(key, [counts[i], b]);
        out[i] = y[0];
        out[half + i] = y[1];
    }
    out.truncate(n);
    out
}

/// `n` random 32-bit words from `key` on the host (`jax.random.bits(key, (n,), uint32)`).
pub fn random_bits_host(key: Key, n: usize) -> Vec<u32> {
    let counts: Vec<u32> = (0..n as u32).collect();
    threefry_flat(key.0, &counts)
}

/// A PRNG key on the host: two 32-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(pub [u32; 2]);

impl Key {
    /// The key of a seed, as `jax.random.PRNGKey(seed)`: `(seed >> 32, seed & 0xFFFFFFFF)`.
    pub fn new(seed: u64) -> Key {
        Key([(seed >> 32) as u32, seed as u32])
    }

    /// `n` new keys, as `jax.random.split(key, n)`.
    pub fn split(&self, n: usize) -> Vec<Key> {
        let counts: Vec<u32> = (0..2 * n as u32).collect();
        let w = threefry_flat(self.0, &counts);
        (0..n).map(|i| Key([w[2 * i], w[2 * i + 1]])).collect()
    }

    /// A key for `data` (a step counter, a layer index), as `jax.random.fold_in`.
    pub fn fold_in(&self, data: u32) -> Key {
        Key(threefry_flat(self.0, &[0, data])
            .try_into()
            .expect("two words"))
    }

    /// The key as an `i64[2]` tensor.
    pub fn tensor(&self) -> Tensor {
        Tensor::from_vec_col_major(vec![2], vec![self.0[0] as i64, self.0[1] as i64])
            .expect("two elements")
    }

    /// The key as a traced constant.
    pub fn traced(&self) -> TracedTensor {
        TracedTensor::from_tensor(self.tensor())
    }

    /// A key from an `i64[2]` tensor with elements in `0..2^32`.
    pub fn from_tensor(t: &Tensor) -> Result<Key> {
        let v = t.as_slice::<i64>().map_err(RuntimeError::Ir)?;
        if t.shape() != [2] || v.iter().any(|&w| !(0..=MASK).contains(&w)) {
            return Err(RuntimeError::Invalid(format!(
                "Key::from_tensor: a key is an i64[2] with elements in 0..2^32, got {}",
                t.ty()
            )));
        }
        Ok(Key([v[0] as u32, v[1] as u32]))
    }

    /// Runs `f` (a sampler of a traced key) on this key: compiled with the key as a
    /// placeholder and run on the CPU backend, so the bits are those the same sampler
    /// gives inside any compiled program.
    pub fn sample(&self, f: impl FnOnce(&TracedTensor) -> Result<TracedTensor>) -> Result<Tensor> {
        let k = TracedTensor::input(DType::I64, &[2]);
        let out = f(&k)?;
        let program = GraphCompiler::new().compile(&out)?;
        GraphExecutor::new(CpuBackend::new()).run_with_inputs(&program, &[(&k, self.tensor())])
    }

    /// [`uniform`] on the host.
    pub fn uniform(&self, dtype: DType, shape: &[usize], lo: f64, hi: f64) -> Result<Tensor> {
        self.sample(|k| uniform(k, dtype, shape, lo, hi))
    }

    /// [`normal`] on the host.
    pub fn normal(&self, dtype: DType, shape: &[usize]) -> Result<Tensor> {
        self.sample(|k| normal(k, dtype, shape))
    }

    /// [`truncated_normal`] on the host.
    pub fn truncated_normal(
        &self,
        dtype: DType,
        shape: &[usize],
        lo: f64,
        hi: f64,
    ) -> Result<Tensor> {
        self.sample(|k| truncated_normal(k, dtype, shape, lo, hi))
    }

    /// [`bernoulli`] on the host.
    pub fn bernoulli(&self, p: f64, shape: &[usize]) -> Result<Tensor> {
        self.sample(|k| bernoulli(k, p, shape))
    }

    /// [`permutation`] on the host.
    pub fn permutation(&self, n: usize) -> Result<Tensor> {
        self.sample(|k| permutation(k, n))
    }
}

fn and(x: &TracedTensor, m: i64) -> TracedTensor {
    x.binary_int_scalar(BinaryOp::And, m, false)
}

fn add32(x: &TracedTensor, y: &TracedTensor) -> TracedTensor {
    and(&(x + y), MASK)
}

fn rotl32(x: &TracedTensor, r: u32) -> TracedTensor {
    let hi = and(
        &x.binary_int_scalar(BinaryOp::ShiftLeft, r as i64, false),
        MASK,
    );
    let lo = x.binary_int_scalar(BinaryOp::ShiftRightLogical, 32 - r as i64, false);
    hi.binary(BinaryOp::Or, &lo)
}

fn check_key(key: &TracedTensor) -> Result<()> {
    let ty = key.ty()?;
    if ty != TensorType::new(DType::I64, vec![2]) {
        return Err(RuntimeError::Invalid(format!(
            "random: a key is an i64[2] (Key::tensor / Key::traced), got {ty}"
        )));
    }
    Ok(())
}

fn key_words(key: &TracedTensor) -> Result<(TracedTensor, TracedTensor)> {
    check_key(key)?;
    Ok((
        key.slice(&[0], &[1])?.reshape(&[])?,
        key.slice(&[1], &[2])?.reshape(&[])?,
    ))
}

/// Threefry-2x32 on traced values: `k0`, `k1` rank-0 words and counter words `x0`, `x1`
/// (i64 of one shape, elements in `0..2^32`); returns the two output words.
pub fn threefry2x32_traced(
    k0: &TracedTensor,
    k1: &TracedTensor,
    x0: &TracedTensor,
    x1: &TracedTensor,
) -> (TracedTensor, TracedTensor) {
    let k2 = k0
        .binary(BinaryOp::Xor, k1)
        .binary_int_scalar(BinaryOp::Xor, PARITY as i64, false);
    let ks = [k0.clone(), k1.clone(), k2];
    let mut a = add32(x0, &ks[0]);
    let mut b = add32(x1, &ks[1]);
    for i in 0..5usize {
        for &r in &ROTATIONS[i % 2] {
            a = add32(&a, &b);
            b = rotl32(&b, r).binary(BinaryOp::Xor, &a);
        }
        a = add32(&a, &ks[(i + 1) % 3]);
        b = add32(&b, &(&ks[(i + 2) % 3] + (i as i64 + 1)));
    }
    (a, b)
}

/// JAX's flat threefry over counters `0..n` (see [`threefry_flat`]), as i64[n].
fn bits_flat(key: &TracedTensor, n: usize) -> Result<TracedTensor> {
    if n as u64 >= 1 << 32 {
        return Err(RuntimeError::Invalid(format!(
            "random: {n} words from one key (at most 2^32 - 1; split the key)"
        )));
    }
    let (k0, k1) = key_words(key)?;
    if n == 0 {
        return Ok(TracedTensor::zeros(&TensorType::new(DType::I64, vec![0])));
    }
    let half = n.div_ceil(2);
    let x0 = TracedTensor::iota(DType::I64, &[half], 0)?;
    // JAX pads an odd count with one zero counter.
    let x1 = if n % 2 == 0 {
        &x0 + half as i64
    } else {
        let head = TracedTensor::iota(DType::I64, &[half - 1], 0)? + half as i64;
        TracedTensor::concatenate(
            &[
                &head,
                &TracedTensor::zeros(&TensorType::new(DType::I64, vec![1])),
            ],
            0,
        )?
    };
    let (y0, y1) = threefry2x32_traced(&k0, &k1, &x0, &x1);
    TracedTensor::concatenate(&[&y0, &y1], 0)?.slice(&[0], &[n])
}

/// A flat vector in row-major order laid out as `shape` (as JAX's reshape).
fn row_major(flat: &TracedTensor, shape: &[usize]) -> Result<TracedTensor> {
    if shape.len() <= 1 {
        return flat.reshape(shape);
    }
    let rev: Vec<usize> = shape.iter().rev().copied().collect();
    let perm: Vec<usize> = (0..shape.len()).rev().collect();
    flat.reshape(&rev)?.transpose(&perm)
}

/// Random 32-bit words (i64 in `0..2^32`) of `shape`, as
/// `jax.random.bits(key, shape, uint32)`.
pub fn random_bits(key: &TracedTensor, shape: &[usize]) -> Result<TracedTensor> {
    let n: usize = shape.iter().product();
    row_major(&bits_flat(key, n)?, shape)
}

/// Random 64-bit words (the full i64 range) of `shape`, as `jax.random.bits(key, shape,
/// uint64)` read as signed.
pub fn random_bits64(key: &TracedTensor, shape: &[usize]) -> Result<TracedTensor> {
    let n: usize = shape.iter().product();
    let w = bits_flat(key, 2 * n)?;
    let hi = w.slice(&[0], &[n])?;
    let lo = w.slice(&[n], &[2 * n])?;
    let v = hi
        .binary_int_scalar(BinaryOp::ShiftLeft, 32, false)
        .binary(BinaryOp::Or, &lo);
    row_major(&v, shape)
}

/// `n` keys (an `i64[n, 2]`, one key per row) from a traced key, as `jax.random.split`.
/// Row `i` is `keys.slice(&[i, 0], &[i + 1, 2])?.reshape(&[2])`, or use [`split_key`].
pub fn split(key: &TracedTensor, n: usize) -> Result<TracedTensor> {
    row_major(&bits_flat(key, 2 * n)?, &[n, 2])
}

/// The `n` keys of [`split`] as separate `i64[2]` values.
pub fn split_keys(key: &TracedTensor, n: usize) -> Result<Vec<TracedTensor>> {
    let flat = bits_flat(key, 2 * n)?;
    (0..n).map(|i| flat.slice(&[2 * i], &[2 * i + 2])).collect()
}

/// The key for `data` (an i64 scalar, traced, in `0..2^32`), as `jax.random.fold_in`;
/// with a step counter as a program input, a compiled step derives a fresh key per step.
pub fn fold_in(key: &TracedTensor, data: &TracedTensor) -> Result<TracedTensor> {
    let (k0, k1) = key_words(key)?;
    let d = and(&data.reshape(&[])?, MASK);
    let zero = TracedTensor::scalar(0_i64);
    let (a, b) = threefry2x32_traced(&k0, &k1, &zero, &d);
    TracedTensor::concatenate(&[&a.reshape(&[1])?, &b.reshape(&[1])?], 0)
}

fn check_float(what: &str, dtype: DType) -> Result<()> {
    if !dtype.is_real_float() {
        return Err(RuntimeError::Invalid(format!(
            "random::{what}: dtype {dtype} (f32 or f64 only)"
        )));
    }
    Ok(())
}

/// Uniform floats in `[0, 1)` with JAX's construction: the top 23 (f32) or 52 (f64)
/// random bits as the mantissa.
fn unit_uniform(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    check_float("uniform", dtype)?;
    Ok(if dtype == DType::F32 {
        random_bits(key, shape)?
            .binary_int_scalar(BinaryOp::ShiftRightLogical, 9, false)
            .convert(DType::F32)?
            * (2f64).powi(-23)
    } else {
        random_bits64(key, shape)?
            .binary_int_scalar(BinaryOp::ShiftRightLogical, 12, false)
            .convert(DType::F64)?
            * (2f64).powi(-52)
    })
}

fn scalar_of(dtype: DType, v: f64) -> TracedTensor {
    TracedTensor::full(&TensorType::scalar(dtype), v)
}

/// Uniform floats in `[lo, hi)` of `shape`, as `jax.random.uniform` (same bits for f32
/// and f64).
pub fn uniform(
    key: &TracedTensor,
    dtype: DType,
    shape: &[usize],
    lo: f64,
    hi: f64,
) -> Result<TracedTensor> {
    let u = unit_uniform(key, dtype, shape)?;
    Ok((u * (hi - lo) + lo).maximum(&scalar_of(dtype, lo)))
}

/// Standard normal floats of `shape` (Box–Muller on `2·numel` uniforms).
pub fn normal(key: &TracedTensor, dtype: DType, shape: &[usize]) -> Result<TracedTensor> {
    check_float("normal", dtype)?;
    let n: usize = shape.iter().product();
    let u = unit_uniform(key, dtype, &[2 * n])?;
    // u1 in (0, 1], so the log is finite.
    let u1 = 1.0 - u.slice(&[0], &[n])?;
    let u2 = u.slice(&[n], &[2 * n])?;
    let r = (u1.log() * -2.0).sqrt();
    let z = r * (u2 * (2.0 * std::f64::consts::PI)).cos();
    row_major(&z, shape)
}

/// The inverse error function on `(-1, 1)`: Winitzki's approximation refined by three
/// Newton steps on `erf`.
pub fn erfinv(y: &TracedTensor) -> TracedTensor {
    let a = 0.147;
    let w = (1.0 - y * y).log();
    let t = 2.0 / (std::f64::consts::PI * a) + &w * 0.5;
    let mut x = y.sign() * ((&t * &t - &w * (1.0 / a)).sqrt() - &t).sqrt();
    for _ in 0..3 {
        let slope = (-(&x * &x)).exp() * std::f64::consts::FRAC_2_SQRT_PI;
        x = &x - (x.erf() - y) / slope;
    }
    x
}

/// Standard normal floats conditioned on `[lo, hi]` (inverse CDF: uniform between
/// `erf(lo/√2)` and `erf(hi/√2)`, then `√2·erfinv`, clamped to the bounds).
pub fn truncated_normal(
    key: &TracedTensor,
    dtype: DType,
    shape: &[usize],
    lo: f64,
    hi: f64,
) -> Result<TracedTensor> {
    if !(lo < hi) {
        return Err(RuntimeError::Invalid(format!(
            "random::truncated_normal: need lo < hi, got [{lo}, {hi}]"
        )));
    }
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let a = scalar_of(dtype, lo * s).erf();
    let b = scalar_of(dtype, hi * s).erf();
    let u = unit_uniform(key, dtype, shape)? * (&b - &a) + &a;
    let x = erfinv(&u) * std::f64::consts::SQRT_2;
    Ok(x.maximum(&scalar_of(dtype, lo))
        .minimum(&scalar_of(dtype, hi)))
}

/// Booleans of `shape` that are true with probability `p` (`uniform < p` in f64).
pub fn bernoulli(key: &TracedTensor, p: f64, shape: &[usize]) -> Result<TracedTensor> {
    let u = unit_uniform(key, DType::F64, shape)?;
    Ok(u.less(&scalar_of(DType::F64, p)))
}

/// Samples indices (i64) along `axis` of `logits` (unnormalised log-probabilities) by
/// the Gumbel-max trick, as `jax.random.categorical`; the result drops `axis`.
pub fn categorical(key: &TracedTensor, logits: &TracedTensor, axis: isize) -> Result<TracedTensor> {
    let ty = logits.ty()?;
    check_float("categorical", ty.dtype)?;
    let tiny = if ty.dtype == DType::F32 {
        f32::MIN_POSITIVE as f64
    } else {
        f64::MIN_POSITIVE
    };
    let u = uniform(key, ty.dtype, &ty.shape, tiny, 1.0)?;
    let gumbel = -(-u.log()).log();
    Ok((logits + gumbel).argmax(axis, false))
}

/// A random permutation of `0..n` (i64), by sorting 64-bit random keys.
pub fn permutation(key: &TracedTensor, n: usize) -> Result<TracedTensor> {
    Ok(random_bits64(key, &[n])?.argsort(0, false))
}

/// `x` shuffled along `axis` by [`permutation`].
pub fn shuffle(key: &TracedTensor, x: &TracedTensor, axis: isize) -> Result<TracedTensor> {
    let shape = x.shape()?;
    let a = if axis < 0 {
        axis + shape.len() as isize
    } else {
        axis
    };
    let n = *shape.get(a as usize).ok_or_else(|| {
        RuntimeError::Invalid(format!(
            "random::shuffle: axis {axis} of a rank-{} tensor",
            shape.len()
        ))
    })?;
    x.take(&permutation(key, n)?, axis)
}
