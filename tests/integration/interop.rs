//! Row-major constructors and faer views.

use num_complex::Complex64;
use tenferro::interop::{as_faer, from_faer};
use tenferro::Tensor;

#[test]
fn row_major_round_trip_and_layout() {
    // [[1, 2, 3], [4, 5, 6]] given by rows
    let t = Tensor::from_vec_row_major(vec![2, 3], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert_eq!(
        t.as_slice::<f64>().unwrap(),
        &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    assert_eq!(
        t.to_vec_row_major::<f64>().unwrap(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    // rank 3, element (i, j, k) = 100 i + 10 j + k
    let shape = [2usize, 3, 4];
    let rm: Vec<i64> = (0..2)
        .flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| 100 * i + 10 * j + k)))
        .collect();
    let t = Tensor::from_vec_row_major(shape.to_vec(), rm.clone()).unwrap();
    let cm = t.as_slice::<i64>().unwrap();
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                assert_eq!(cm[i + 2 * j + 6 * k], (100 * i + 10 * j + k) as i64);
            }
        }
    }
    assert_eq!(t.to_vec_row_major::<i64>().unwrap(), rm);
    // vectors, scalars, unit axes and empty tensors need no reordering
    let v = Tensor::from_vec_row_major(vec![1, 3, 1], vec![1.0_f32, 2.0, 3.0]).unwrap();
    assert_eq!(v.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0]);
    let e = Tensor::from_vec_row_major(vec![0, 3], Vec::<f64>::new()).unwrap();
    assert!(e.to_vec_row_major::<f64>().unwrap().is_empty());
    assert!(Tensor::from_vec_row_major(vec![2, 2], vec![1.0_f64]).is_err());
    assert!(t.to_vec_row_major::<f64>().is_err());
}

#[test]
fn faer_views_and_copies() {
    let t = Tensor::from_vec_row_major(vec![2, 3], vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let m = as_faer::<f64>(&t).unwrap();
    assert_eq!((m.nrows(), m.ncols()), (2, 3));
    assert_eq!(m[(0, 2)], 3.0);
    assert_eq!(m[(1, 0)], 4.0);
    // no copy: the view reads the tensor's buffer
    assert!(std::ptr::eq(&m[(0, 0)], &t.as_slice::<f64>().unwrap()[0]));
    // a transposed (strided) view copies back correctly
    let back = from_faer(m.transpose());
    assert_eq!(back.shape(), &[3, 2]);
    assert_eq!(
        back.to_vec_row_major::<f64>().unwrap(),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    let z = Tensor::from_vec_col_major(
        vec![2],
        vec![Complex64::new(1.0, 2.0), Complex64::new(0.0, -1.0)],
    )
    .unwrap();
    let zm = as_faer::<Complex64>(&z).unwrap();
    assert_eq!(zm[(1, 0)], Complex64::new(0.0, -1.0));
    assert!(from_faer(zm).bits_eq(&z.reshaped(vec![2, 1]).unwrap()));
    assert!(as_faer::<f32>(&t).is_err());
    assert!(
        as_faer::<f64>(&Tensor::zeros(&tenferro::ir::TensorType::new(
            tenferro::DType::F64,
            vec![2, 2, 2]
        )))
        .is_err()
    );
}
