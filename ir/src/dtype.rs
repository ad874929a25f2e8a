//! Element types and static tensor types (dtype + concrete column-major shape).

use crate::error::IrError;
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// Complex of two f32.
    C32,
    /// Complex of two f64.
    C64,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// Boolean (masks, comparison results).
    Bool,
}

impl DType {
    /// All dtypes, in a fixed order.
    pub const ALL: [DType; 7] = [
        DType::F32,
        DType::F64,
        DType::C32,
        DType::C64,
        DType::I32,
        DType::I64,
        DType::Bool,
    ];

    /// Text name used by the printer and parser (`f32`, `c64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::C32 => "c32",
            DType::C64 => "c64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Inverse of [`DType::name`].
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// `true` for f32, f64, c32, c64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::C32 | DType::C64)
    }

    /// `true` for f32 and f64.
    pub fn is_real_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// `true` for the integer dtypes i32 and i64.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// `true` for c32 and c64.
    pub fn is_complex(self) -> bool {
        matches!(self, DType::C32 | DType::C64)
    }

    /// The real dtype of the same precision (c64 → f64); real dtypes map to themselves.
    pub fn real(self) -> DType {
        match self {
            DType::C32 => DType::F32,
            DType::C64 => DType::F64,
            d => d,
        }
    }

    /// The complex dtype of the same precision (f64 → c64); None for integers and bool.
    pub fn complex(self) -> Option<DType> {
        match self {
            DType::F32 | DType::C32 => Some(DType::C32),
            DType::F64 | DType::C64 => Some(DType::C64),
            DType::I32 | DType::I64 | DType::Bool => None,
        }
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::C32 | DType::I64 => 8,
            DType::C64 => 16,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Static type of an IR value: dtype and concrete shape (column-major: axis 0 is contiguous).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Extent of each axis; axis 0 is contiguous (column-major).
    pub shape: Vec<usize>,
}

impl TensorType {
    /// A type from a dtype and a shape.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// A rank-0 tensor type.
    pub fn scalar(dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: Vec::new(),
        }
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (1 for a scalar). A count that overflows `usize` saturates at
    /// `usize::MAX` (no buffer of that size can be allocated); [`TensorType::checked_numel`]
    /// reports it instead. Types that passed the verifier never saturate.
    pub fn numel(&self) -> usize {
        self.checked_numel().unwrap_or(usize::MAX)
    }

    /// Number of elements, or `None` when the product of the axes overflows `usize`.
    pub fn checked_numel(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    /// Number of elements, or [`IrError::ShapeOverflow`] naming `op` when a dense buffer
    /// of this type would not fit in the address space (see [`crate::checked_numel`]).
    pub fn try_numel(&self, op: &str) -> Result<usize, IrError> {
        crate::infer::checked_numel(&self.shape)
            .filter(|&n| {
                n.checked_mul(self.dtype.size_bytes())
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or_else(|| IrError::shape_overflow(op, self))
    }

    /// Size in bytes of a dense buffer of this type, or [`IrError::ShapeOverflow`] naming
    /// `op` when it does not fit in the address space.
    pub fn try_size_bytes(&self, op: &str) -> Result<usize, IrError> {
        Ok(self.try_numel(op)? * self.dtype.size_bytes())
    }

    /// Same shape, another dtype.
    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorType {
            dtype,
            shape: self.shape.clone(),
        }
    }

    /// Size in bytes of a dense buffer of this type; saturates at `usize::MAX` like
    /// [`TensorType::numel`] ([`TensorType::try_size_bytes`] reports the overflow).
    pub fn size_bytes(&self) -> usize {
        self.numel().saturating_mul(self.dtype.size_bytes())
    }
}

impl fmt::Display for TensorType {
    /// Prints as `f64[2,3]` (`f64[]` for a scalar).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Column-major strides (in elements) of a shape. A stride that overflows `usize`
/// saturates; that happens only for an empty shape (in a non-empty one every stride is at
/// most the element count), where no stride addresses an element.
pub fn col_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = Vec::with_capacity(shape.len());
    let mut s: usize = 1;
    for &d in shape {
        strides.push(s);
        s = s.saturating_mul(d);
    }
    strides
}
