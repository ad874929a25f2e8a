//! Conversions between [`Tensor`] and other libraries' matrices.
//!
//! tenferro's tensors are column-major, as faer's matrices, so a rank-2 tensor is viewed
//! as a faer [`MatRef`] without a copy ([`as_faer`]); a faer matrix (any strides) is
//! copied into a new tensor ([`from_faer`]). For row-major data (NumPy, `Vec<Vec<_>>`
//! flattened by rows) use [`Tensor::from_vec_row_major`] and
//! [`Tensor::to_vec_row_major`], which reorder, rather than the column-major
//! constructor, which would read the data transposed.
//!
//! An `ndarray` conversion is not provided yet (the crate is not available to this
//! build); go through `from_vec_row_major` / `to_vec_row_major` with
//! `ArrayD::as_slice` / `Array::from_shape_vec` meanwhile.

use faer::MatRef;
use tenferro_runtime::{Element, Result, RuntimeError, Tensor};

/// A faer view of a rank-2 tensor (rank 1 is a column, rank 0 a 1×1 matrix), without a
/// copy; an error for higher ranks or when `T` is not the tensor's dtype.
pub fn as_faer<T: Element>(t: &Tensor) -> Result<MatRef<'_, T>> {
    let s = t.as_slice::<T>().map_err(RuntimeError::Ir)?;
    let (r, c) = match *t.shape() {
        [] => (1, 1),
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => {
            return Err(RuntimeError::Invalid(format!(
                "as_faer: a faer matrix has rank 2, the tensor is {}",
                t.ty()
            )))
        }
    };
    Ok(MatRef::from_column_major_slice(s, r, c))
}

/// A rank-2 tensor with the elements of `m` (copied; any strides).
pub fn from_faer<T: Element>(m: MatRef<'_, T>) -> Tensor {
    let (r, c) = (m.nrows(), m.ncols());
    let mut v = Vec::with_capacity(r * c);
    for j in 0..c {
        for i in 0..r {
            v.push(m[(i, j)]);
        }
    }
    Tensor::from_vec_col_major(vec![r, c], v).expect("r·c elements")
}
