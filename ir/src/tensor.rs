//! Host tensor values: dense column-major buffers of one dtype. Used for IR constants and
//! for the values programs consume and produce at run time.

use crate::dtype::{DType, TensorType};
use crate::error::IrError;
use num_complex::{Complex32, Complex64};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An empty vector with room for `n` elements of `T`, or [`IrError::AllocationFailed`]
/// naming `op` and the bytes (saturated at `usize::MAX`) when the allocation fails.
pub fn try_vec_with_capacity<T>(op: &str, n: usize) -> Result<Vec<T>, IrError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| IrError::allocation_failed(op, n.saturating_mul(std::mem::size_of::<T>())))?;
    Ok(v)
}

/// `n` copies of `x`, or [`IrError::AllocationFailed`] naming `op` and the bytes.
fn try_filled<T: Clone>(op: &str, x: T, n: usize) -> Result<Vec<T>, IrError> {
    let mut v = try_vec_with_capacity(op, n)?;
    v.resize(n, x);
    Ok(v)
}

/// A dense buffer of one dtype.
#[derive(Clone, Debug)]
pub enum Data {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// c32 elements.
    C32(Vec<Complex32>),
    /// c64 elements.
    C64(Vec<Complex64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// i64 elements.
    I64(Vec<i64>),
    /// bool elements.
    Bool(Vec<bool>),
}

impl Data {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::C32(_) => DType::C32,
            Data::C64(_) => DType::C64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::C32(v) => v.len(),
            Data::C64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// `true` when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zeros (false for bool) of `dtype`. Aborts the process, like `vec!`, when the
    /// allocation fails: only for sizes known to be small; [`Data::try_zeros`] reports
    /// the failure instead.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        Data::splat(dtype, 0.0, n)
    }

    /// `n` copies of the real number `v` converted to `dtype` (bool: `v != 0`). Aborts
    /// the process, like `vec!`, when the allocation fails: only for sizes known to be
    /// small; [`Data::try_splat`] reports the failure instead.
    pub fn splat(dtype: DType, v: f64, n: usize) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![v as f32; n]),
            DType::F64 => Data::F64(vec![v; n]),
            DType::C32 => Data::C32(vec![Complex32::new(v as f32, 0.0); n]),
            DType::C64 => Data::C64(vec![Complex64::new(v, 0.0); n]),
            DType::I32 => Data::I32(vec![v as i32; n]),
            DType::I64 => Data::I64(vec![v as i64; n]),
            DType::Bool => Data::Bool(vec![v != 0.0; n]),
        }
    }

    /// `n` zeros (false for bool) of `dtype`, or [`IrError::AllocationFailed`] naming
    /// `op` and the bytes when the machine cannot provide them.
    pub fn try_zeros(op: &str, dtype: DType, n: usize) -> Result<Data, IrError> {
        Data::try_splat(op, dtype, 0.0, n)
    }

    /// `n` copies of the real number `v` converted to `dtype` (bool: `v != 0`), or
    /// [`IrError::AllocationFailed`] naming `op` and the bytes when the machine cannot
    /// provide them.
    pub fn try_splat(op: &str, dtype: DType, v: f64, n: usize) -> Result<Data, IrError> {
        Ok(match dtype {
            DType::F32 => Data::F32(try_filled(op, v as f32, n)?),
            DType::F64 => Data::F64(try_filled(op, v, n)?),
            DType::C32 => Data::C32(try_filled(op, Complex32::new(v as f32, 0.0), n)?),
            DType::C64 => Data::C64(try_filled(op, Complex64::new(v, 0.0), n)?),
            DType::I32 => Data::I32(try_filled(op, v as i32, n)?),
            DType::I64 => Data::I64(try_filled(op, v as i64, n)?),
            DType::Bool => Data::Bool(try_filled(op, v != 0.0, n)?),
        })
    }

    /// Element `i` as a complex number (bool → 0/1, integers → float).
    pub fn get_c64(&self, i: usize) -> Complex64 {
        match self {
            Data::F32(v) => Complex64::new(v[i] as f64, 0.0),
            Data::F64(v) => Complex64::new(v[i], 0.0),
            Data::C32(v) => Complex64::new(v[i].re as f64, v[i].im as f64),
            Data::C64(v) => v[i],
            Data::I32(v) => Complex64::new(v[i] as f64, 0.0),
            Data::I64(v) => Complex64::new(v[i] as f64, 0.0),
            Data::Bool(v) => Complex64::new(if v[i] { 1.0 } else { 0.0 }, 0.0),
        }
    }

    /// Bit-level equality (NaNs with equal payloads are equal, -0.0 != 0.0).
    pub fn bits_eq(&self, other: &Data) -> bool {
        match (self, other) {
            (Data::F32(a), Data::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Data::F64(a), Data::F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Data::C32(a), Data::C32(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.re.to_bits() == y.re.to_bits() && x.im.to_bits() == y.im.to_bits()
                    })
            }
            (Data::C64(a), Data::C64(b)) => {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.re.to_bits() == y.re.to_bits() && x.im.to_bits() == y.im.to_bits()
                    })
            }
            (Data::I32(a), Data::I32(b)) => a == b,
            (Data::I64(a), Data::I64(b)) => a == b,
            (Data::Bool(a), Data::Bool(b)) => a == b,
            _ => false,
        }
    }

    /// Hashes the dtype, the length and at most 64 evenly spaced elements by their bits:
    /// consistent with [`Data::bits_eq`] (equal buffers hash equally) while hashing a large
    /// constant costs O(1), so CSE and e-graphs over big constants stay cheap.
    fn hash_bits<H: Hasher>(&self, state: &mut H) {
        const SAMPLES: usize = 64;
        self.dtype().hash(state);
        let n = self.len();
        n.hash(state);
        let step = n.div_ceil(SAMPLES).max(1);
        for i in (0..n).step_by(step) {
            match self {
                Data::F32(v) => v[i].to_bits().hash(state),
                Data::F64(v) => v[i].to_bits().hash(state),
                Data::C32(v) => (v[i].re.to_bits(), v[i].im.to_bits()).hash(state),
                Data::C64(v) => (v[i].re.to_bits(), v[i].im.to_bits()).hash(state),
                Data::I32(v) => v[i].hash(state),
                Data::I64(v) => v[i].hash(state),
                Data::Bool(v) => v[i].hash(state),
            }
        }
    }
}

/// Element types a [`Tensor`] can hold: f32, f64, Complex32, Complex64, i32, i64, bool.
pub trait Element: Copy + Send + Sync + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// Borrow the buffer if it holds this element type.
    fn slice(data: &Data) -> Option<&[Self]>;
    /// Mutably borrow the buffer if it holds this element type.
    fn slice_mut(data: &mut Data) -> Option<&mut [Self]>;
    /// Wrap a vector as a buffer.
    fn into_data(v: Vec<Self>) -> Data;
}

macro_rules! impl_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn slice(data: &Data) -> Option<&[Self]> {
                match data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(data: &mut Data) -> Option<&mut [Self]> {
                match data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_data(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
        }
    };
}
impl_element!(f32, F32);
impl_element!(f64, F64);
impl_element!(Complex32, C32);
impl_element!(Complex64, C64);
impl_element!(i32, I32);
impl_element!(i64, I64);
impl_element!(bool, Bool);

/// Reorders a buffer between row-major and column-major layouts of `shape`: with
/// `from_row_major`, `src` is row-major and the result column-major; otherwise the
/// reverse. Walks the column-major order with an odometer, tracking the row-major offset.
fn reorder<T: Copy>(shape: &[usize], src: &[T], from_row_major: bool) -> Vec<T> {
    let r = shape.len();
    let n = src.len();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    // row-major strides
    let mut rstride = vec![1usize; r];
    for d in (0..r.saturating_sub(1)).rev() {
        rstride[d] = rstride[d + 1] * shape[d + 1];
    }
    let mut idx = vec![0usize; r];
    let mut roff = 0usize;
    // The next column-major multi-index and its row-major offset.
    let advance = |idx: &mut [usize], roff: &mut usize| {
        for d in 0..r {
            idx[d] += 1;
            *roff += rstride[d];
            if idx[d] < shape[d] {
                break;
            }
            *roff -= rstride[d] * shape[d];
            idx[d] = 0;
        }
    };
    if from_row_major {
        for _ in 0..n {
            out.push(src[roff]);
            advance(&mut idx, &mut roff);
        }
    } else {
        // scatter: column-major position k goes to row-major offset roff
        out.resize(n, src[0]);
        for &v in src {
            out[roff] = v;
            advance(&mut idx, &mut roff);
        }
    }
    out
}

/// A dense host tensor: shape plus a shared column-major buffer. Cloning is cheap
/// (the buffer is reference counted); mutation copies on write.
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Data>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` holds `shape.iter().product()` elements.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, IrError> {
        let n = crate::infer::checked_numel(&shape).unwrap_or(usize::MAX);
        if data.len() != n {
            return Err(IrError::DataLength {
                shape,
                expected: n,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape,
            data: Arc::new(data),
        })
    }

    /// Builds a tensor from column-major data of element type `T`.
    pub fn from_vec_col_major<T: Element>(
        shape: Vec<usize>,
        data: Vec<T>,
    ) -> Result<Tensor, IrError> {
        Tensor::new(shape, T::into_data(data))
    }

    /// Builds a tensor from row-major (C order, NumPy's default) data of element type `T`:
    /// `data[i0·(s1·s2…) + i1·(s2…) + …]` becomes element `(i0, i1, …)`. The buffer is
    /// reordered into tenferro's column-major layout, so row-major data is never read as
    /// if it were column-major (which would silently transpose it).
    pub fn from_vec_row_major<T: Element>(
        shape: Vec<usize>,
        data: Vec<T>,
    ) -> Result<Tensor, IrError> {
        let n = crate::infer::checked_numel(&shape).unwrap_or(usize::MAX);
        if data.len() != n {
            return Err(IrError::DataLength {
                shape,
                expected: n,
                got: data.len(),
            });
        }
        let data = if shape.iter().filter(|&&d| d > 1).count() <= 1 {
            data
        } else {
            reorder(&shape, &data, true)
        };
        Tensor::new(shape, T::into_data(data))
    }

    /// The elements in row-major (C) order: the inverse of
    /// [`Tensor::from_vec_row_major`]; an error when `T` is not the tensor's dtype.
    pub fn to_vec_row_major<T: Element>(&self) -> Result<Vec<T>, IrError> {
        let s = self.as_slice::<T>()?;
        if self.shape.iter().filter(|&&d| d > 1).count() <= 1 {
            return Ok(s.to_vec());
        }
        Ok(reorder(&self.shape, s, false))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor {
            shape: Vec::new(),
            data: Arc::new(T::into_data(vec![v])),
        }
    }

    /// A tensor of `shape` whose element at multi-index `[i, j, ..]` is `f([i, j, ..])`
    /// (NumPy's `np.fromfunction`); the index order does not depend on the memory
    /// layout. [`IrError::ShapeOverflow`] or [`IrError::AllocationFailed`] (op
    /// `Tensor::from_fn`) when the shape is too large.
    ///
    /// ```
    /// # use tenferro_ir::Tensor;
    /// let a = Tensor::from_fn([2, 3], |[i, j]| (10 * i + j) as f64)?;
    /// assert_eq!(a.to_vec_row_major::<f64>()?, [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]);
    /// # Ok::<(), tenferro_ir::IrError>(())
    /// ```
    pub fn from_fn<T: Element, const N: usize>(
        shape: [usize; N],
        mut f: impl FnMut([usize; N]) -> T,
    ) -> Result<Tensor, IrError> {
        let op = "Tensor::from_fn";
        let n = TensorType::new(T::DTYPE, shape.to_vec()).try_numel(op)?;
        let mut data = try_vec_with_capacity(op, n)?;
        let mut ix = [0usize; N];
        for _ in 0..n {
            data.push(f(ix));
            // column-major: axis 0 runs fastest
            for (i, d) in ix.iter_mut().zip(shape) {
                *i += 1;
                if *i < d {
                    break;
                }
                *i = 0;
            }
        }
        Tensor::new(shape.to_vec(), T::into_data(data))
    }

    /// A tensor from a slice in row-major (C, NumPy) order, like
    /// `jnp.array(data).reshape(shape)`; [`IrError::DataLength`] when `data` does not hold
    /// exactly the shape's element count.
    ///
    /// ```
    /// # use tenferro_ir::Tensor;
    /// let a = Tensor::from_slice(&[1.0_f64, 2.0, 3.0, 4.0], &[2, 2])?; // [[1, 2], [3, 4]]
    /// assert_eq!(a.as_slice::<f64>()?, [1.0, 3.0, 2.0, 4.0]); // stored column-major
    /// # Ok::<(), tenferro_ir::IrError>(())
    /// ```
    pub fn from_slice<T: Element>(data: &[T], shape: &[usize]) -> Result<Tensor, IrError> {
        Tensor::from_vec_row_major(shape.to_vec(), data.to_vec())
    }

    /// The single element of a one-element tensor (any shape), like PyTorch's `.item()`
    /// or `float(x)` in JAX; [`IrError::InvalidOp`] (op `Tensor::item`) naming the shape
    /// when the tensor has another element count, [`IrError::DTypeMismatch`] when `T` is
    /// not its dtype.
    ///
    /// ```
    /// # use tenferro_ir::Tensor;
    /// assert_eq!(Tensor::scalar(2.5_f64).item::<f64>()?, 2.5);
    /// assert!(Tensor::from_slice(&[1.0_f64, 2.0], &[2])?.item::<f64>().is_err());
    /// # Ok::<(), tenferro_ir::IrError>(())
    /// ```
    pub fn item<T: Element>(&self) -> Result<T, IrError> {
        match self.as_slice::<T>()? {
            [x] => Ok(*x),
            _ => Err(IrError::InvalidOp {
                op: "Tensor::item".into(),
                message: format!(
                    "expected a tensor with one element, got shape {:?} ({} elements)",
                    self.shape,
                    self.numel()
                ),
            }),
        }
    }

    /// Zeros of a type. Panics when the type's element count overflows and aborts the
    /// process, like `vec!`, when the allocation fails: only for types known to be small
    /// (scalars, verified shapes of existing data); [`Tensor::try_zeros`] reports both.
    pub fn zeros(ty: &TensorType) -> Tensor {
        Tensor::full(ty, 0.0)
    }

    /// Every element equal to the real number `v` (converted to the dtype). Panics when
    /// the type's element count overflows and aborts the process, like `vec!`, when the
    /// allocation fails: only for types known to be small; [`Tensor::try_full`] reports
    /// both.
    pub fn full(ty: &TensorType, v: f64) -> Tensor {
        let n = ty
            .checked_numel()
            .unwrap_or_else(|| panic!("Tensor::full: the element count of {ty} overflows"));
        Tensor {
            shape: ty.shape.clone(),
            data: Arc::new(Data::splat(ty.dtype, v, n)),
        }
    }

    /// Zeros of a type; [`IrError::ShapeOverflow`] when its element count or byte size
    /// overflows, [`IrError::AllocationFailed`] (naming the bytes) when the machine
    /// cannot provide the buffer.
    pub fn try_zeros(ty: &TensorType) -> Result<Tensor, IrError> {
        Tensor::try_full_for("zeros", ty, 0.0)
    }

    /// Every element equal to the real number `v` (converted to the dtype); the errors
    /// of [`Tensor::try_zeros`].
    pub fn try_full(ty: &TensorType, v: f64) -> Result<Tensor, IrError> {
        Tensor::try_full_for("full", ty, v)
    }

    /// [`Tensor::try_full`] with errors naming `op` (the op that needs the tensor).
    pub fn try_full_for(op: &str, ty: &TensorType, v: f64) -> Result<Tensor, IrError> {
        let n = ty.try_numel(op)?;
        Ok(Tensor {
            shape: ty.shape.clone(),
            data: Arc::new(Data::try_splat(op, ty.dtype, v, n)?),
        })
    }

    /// Extent of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Static type (dtype + shape).
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.dtype(), self.shape.clone())
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The buffer, if this is its only handle (no clone of this tensor is alive);
    /// otherwise the tensor back. Lets a runtime reuse a result buffer its caller dropped.
    pub fn try_into_data(self) -> Result<Data, Tensor> {
        Arc::try_unwrap(self.data).map_err(|data| Tensor {
            shape: self.shape,
            data,
        })
    }

    /// The buffer.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Mutable access to the buffer (copies it first if it is shared).
    pub fn data_mut(&mut self) -> &mut Data {
        Arc::make_mut(&mut self.data)
    }

    /// Takes the buffer out (without copying when this tensor is its only owner).
    pub fn into_data(self) -> Data {
        Arc::try_unwrap(self.data).unwrap_or_else(|a| (*a).clone())
    }

    /// The elements in column-major order; an error when `T` is not the tensor's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T], IrError> {
        T::slice(&self.data).ok_or(IrError::DTypeMismatch {
            what: "Tensor::as_slice".into(),
            expected: T::DTYPE,
            got: self.dtype(),
        })
    }

    /// A copy of the elements in column-major order.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, IrError> {
        self.as_slice::<T>().map(|s| s.to_vec())
    }

    /// Same buffer, new shape with the same element count (column-major reshape).
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Tensor, IrError> {
        let n = crate::infer::checked_numel(&shape).unwrap_or(usize::MAX);
        if n != self.numel() {
            return Err(IrError::DataLength {
                shape,
                expected: n,
                got: self.numel(),
            });
        }
        Ok(Tensor {
            shape,
            data: self.data.clone(),
        })
    }

    /// Bitwise equality of shape, dtype and every element.
    pub fn bits_eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.data.bits_eq(&other.data)
    }
}

impl PartialEq for Tensor {
    /// Bitwise equality, so a function holding NaN constants equals its reparsed copy.
    fn eq(&self, other: &Self) -> bool {
        self.bits_eq(other)
    }
}

impl Eq for Tensor {}

impl Hash for Tensor {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shape.hash(state);
        self.data.hash_bits(state);
    }
}
