//! Kernels. Whole-buffer kernels of single steps match on dtype and op once, then run a
//! tight loop; fused kernels (`fused`, `tile`) do so once per op per tile.

pub(crate) mod dot;
pub(crate) mod elementwise;
pub(crate) mod fused;
pub(crate) mod index;
pub(crate) mod reduce;
pub(crate) mod scan;
pub(crate) mod tile;

/// Runs `$body` with `$v` bound to the slice inside `$data` and `$T` to its element type.
macro_rules! with_slice {
    ($data:expr, $v:ident: $T:ident => $body:expr) => {
        match $data {
            tenferro_ir::Data::F32($v) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            tenferro_ir::Data::F64($v) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            tenferro_ir::Data::C32($v) => {
                #[allow(dead_code)]
                type $T = num_complex::Complex32;
                $body
            }
            tenferro_ir::Data::C64($v) => {
                #[allow(dead_code)]
                type $T = num_complex::Complex64;
                $body
            }
            tenferro_ir::Data::I32($v) => {
                #[allow(dead_code)]
                type $T = i32;
                $body
            }
            tenferro_ir::Data::I64($v) => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
            tenferro_ir::Data::Bool($v) => {
                #[allow(dead_code)]
                type $T = bool;
                $body
            }
        }
    };
}
pub(crate) use with_slice;
