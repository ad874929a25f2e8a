//! Cache-line-aligned scratch for the packed operands of the register-tiled products
//! (`lane_dot` and `gemm512`, on f32 and f64), kept per thread between products.

/// 64 bytes on a 64-byte boundary: the packs are made of these, so that no load of a
/// micro-kernel straddles two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

/// An element type the packs hold: f32 or f64 (every bit pattern valid, size dividing
/// 64).
pub(crate) trait PackElem: Copy + Default + Send + Sync + 'static {}
impl PackElem for f32 {}
impl PackElem for f64 {}

/// The first `len` elements of `lines`, grown (zero-filled) as needed, as `T`s.
pub(crate) fn elems_of<T: PackElem>(lines: &mut Vec<Line>, len: usize) -> &mut [T] {
    let size = std::mem::size_of::<T>();
    let need = (len * size).div_ceil(64);
    if lines.len() < need {
        lines.resize(need, Line([0; 64]));
    }
    // SAFETY: `T` is f32 or f64 (every bit pattern valid, alignment at most 64, size
    // dividing 64) and `need` lines hold at least `len` of them.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr().cast(), len) }
}
