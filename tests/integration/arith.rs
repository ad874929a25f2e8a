//! `atan2`, `fmod`, `remainder` (`%`), `floor_divide`, bitwise and logical ops: values
//! against JAX 0.10 (`jnp.fmod`, `jnp.remainder`, `jnp.floor_divide`, `jnp.arctan2`,
//! `jnp.bitwise_*`, printed on this machine), gradients against finite differences,
//! operators and eager mode against traced.

use crate::reductions::{bools, c, check_grad, close, f64s, i64s, weigh};
use tenferro_ad::EagerContext;
use tenferro_runtime::TracedTensor;

const X: [f64; 11] = [-7.0, 7.0, -7.0, 7.0, 5.5, -0.0, 0.0, 3.0, -5.0, 5.0, 1.0];
const INF: f64 = f64::INFINITY;
const Y: [f64; 11] = [3.0, -3.0, -3.0, 3.0, 0.0, 3.0, -3.0, 3.0, INF, -INF, 0.0];

/// Equal, NaN matching NaN and zeros matching in sign.
fn same(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let ok =
            (g.is_nan() && w.is_nan()) || (g == w && g.is_sign_negative() == w.is_sign_negative());
        assert!(ok, "{got:?} vs {want:?}");
    }
}

fn ints(v: &[i64]) -> TracedTensor {
    TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec())
}

#[test]
fn float_remainders_and_floor_division_match_jax() {
    let (x, y) = (c(&[11], &X), c(&[11], &Y));
    let nan = f64::NAN;
    same(
        &f64s(&x.fmod(&y)),
        &[-1.0, 1.0, -1.0, 1.0, nan, -0.0, 0.0, 0.0, -5.0, 5.0, nan],
    );
    let rem = [2.0, -2.0, -1.0, 1.0, nan, -0.0, 0.0, 0.0, INF, -INF, nan];
    same(&f64s(&x.remainder(&y)), &rem);
    same(&f64s(&(&x % &y)), &rem);
    same(
        &f64s(&x.floor_divide(&y)),
        &[-3.0, -3.0, 2.0, 2.0, INF, 0.0, -0.0, 1.0, -1.0, -1.0, INF],
    );
    let a = c(&[6], &[0.0, -0.0, 0.0, -0.0, 1.0, -1.0]);
    let b = c(&[6], &[0.0, 0.0, -0.0, -0.0, -1.0, 0.0]);
    let pi = std::f64::consts::PI;
    same(
        &f64s(&a.atan2(&b)),
        &[0.0, -0.0, pi, -pi, 2.356194490192345, -pi / 2.0],
    );
}

#[test]
fn remainder_by_a_rust_float() {
    // Python's and JAX's values; the float is weakly typed (f32 stays f32)
    let x = c(&[3], &[-7.0, 7.0, 5.0]);
    same(&f64s(&(&x % 2.5)), &[0.5, 2.0, 0.0]);
    // (a zero remainder keeps fmod's sign, as JAX: +0.0 where Python gives -0.0)
    same(&f64s(&(&x % -2.5)), &[-2.0, -0.5, 0.0]);
    same(&f64s(&(10.0 % &x)), &[-4.0, 3.0, 0.0]);
    let x32 = TracedTensor::from_vec_col_major(vec![2], vec![-1.0f32, 3.5]);
    let y = &x32 % 2.0;
    assert_eq!(y.dtype().unwrap(), tenferro_runtime::DType::F32);
    // an integer tensor promotes to f64
    let y = &ints(&[-7, 7]) % 2.5;
    same(&f64s(&y), &[0.5, 2.0]);
}

#[test]
fn integer_remainders_and_floor_division() {
    let (x, y) = (
        ints(&[-7, 7, -7, 7, 5, 0, -1]),
        ints(&[3, -3, -3, 3, 0, 3, 2]),
    );
    // JAX's values, except a zero divisor, where tenferro (as NumPy) gives 0.
    assert_eq!(i64s(&x.fmod(&y)), [-1, 1, -1, 1, 0, 0, -1]);
    assert_eq!(i64s(&x.remainder(&y)), [2, -2, -1, 1, 0, 0, 1]);
    assert_eq!(i64s(&(&x % &y)), [2, -2, -1, 1, 0, 0, 1]);
    assert_eq!(i64s(&x.floor_divide(&y)), [-3, -3, 2, 2, 0, 0, -1]);
    let (p, q) = (ints(&[12, -1, 5]), ints(&[10, 7, 3]));
    assert_eq!(i64s(&(&p & &q)), [8, 7, 1]);
    assert_eq!(i64s(&(&p | &q)), [14, -1, 7]);
    assert_eq!(i64s(&(&p ^ &q)), [6, -8, 6]);
    assert_eq!(
        i64s(&ints(&[1, -1, 3]).shift_left(&ints(&[3, 1, 64]))),
        [8, -2, 0]
    );
    assert_eq!(
        i64s(&ints(&[16, -1, 3]).shift_right_logical(&ints(&[2, 60, -1]))),
        [4, 15, 0]
    );
    // atan2 of integers promotes to f64
    close(
        &f64s(&ints(&[1]).atan2(&ints(&[1]))),
        &[std::f64::consts::FRAC_PI_4],
        1e-15,
    );
}

#[test]
fn logical_ops_on_bools_and_truth_values() {
    let t = |v: &[bool]| TracedTensor::from_vec_col_major(vec![v.len()], v.to_vec());
    let (a, b) = (
        t(&[true, true, false, false]),
        t(&[true, false, true, false]),
    );
    assert_eq!(bools(&(&a & &b)), [true, false, false, false]);
    assert_eq!(bools(&(&a | &b)), [true, true, true, false]);
    assert_eq!(bools(&(&a ^ &b)), [false, true, true, false]);
    assert_eq!(bools(&a.logical_not()), [false, false, true, true]);
    // masks from comparisons combine with `&`
    let x = c(&[4], &[-1.0, 0.5, 2.0, f64::NAN]);
    let inside = &x.greater(&c(&[], &[0.0])) & &x.less(&c(&[], &[1.0]));
    assert_eq!(bools(&inside), [false, true, false, false]);
    // truth values of numbers: nonzero (NaN included) is true
    let n = c(&[4], &[0.0, -0.0, f64::NAN, 3.0]);
    assert_eq!(
        bools(&n.logical_and(&c(&[], &[1.0]))),
        [false, false, true, true]
    );
    assert_eq!(
        bools(&n.logical_or(&c(&[], &[0.0]))),
        [false, false, true, true]
    );
    assert_eq!(
        bools(&n.logical_xor(&c(&[], &[1.0]))),
        [true, true, false, false]
    );
    // bitwise ops on floats are errors naming the op
    let e = GraphErr::of(&(&x & &x));
    assert!(e.contains("and") && e.contains("f64"), "{e}");
}

struct GraphErr;
impl GraphErr {
    fn of(t: &TracedTensor) -> String {
        tenferro_runtime::GraphCompiler::new()
            .compile(t)
            .map(|_| String::new())
            .unwrap_or_else(|e| e.to_string())
    }
}

#[test]
fn gradients_match_finite_differences() {
    let y = c(&[3], &[3.0, -2.0, 4.0]);
    let x0 = [-7.5, 7.5, 1.3];
    check_grad(&|x| weigh(&x.remainder(&y)), &[3], &x0);
    check_grad(&|x| weigh(&x.fmod(&y)), &[3], &x0);
    check_grad(&|x| weigh(&x.atan2(&y)), &[3], &x0);
    let x = c(&[3], &x0);
    check_grad(&|y| weigh(&x.remainder(y)), &[3], &[3.0, -2.0, 4.0]);
    check_grad(&|y| weigh(&x.atan2(y)), &[3], &[3.0, -2.0, 4.0]);
    check_grad(&|y| weigh(&(&x % y)), &[3], &[3.0, -2.0, 4.0]);
    // floor division is piecewise constant
    check_grad(&|x| weigh(&x.floor_divide(&y)), &[3], &x0);
}

#[test]
fn eager_matches_traced() {
    let ctx = EagerContext::new(tenferro_cpu::CpuBackend::new());
    let xs = ctx.from_vec_col_major(vec![11], X.to_vec()).unwrap();
    let ys = ctx.from_vec_col_major(vec![11], Y.to_vec()).unwrap();
    let (x, y) = (c(&[11], &X), c(&[11], &Y));
    let host = |t: &tenferro_ad::EagerTensor| t.to_vec::<f64>().unwrap();
    same(&host(&xs.remainder(&ys).unwrap()), &f64s(&x.remainder(&y)));
    same(&host(&(&xs % &ys)), &f64s(&x.remainder(&y)));
    same(&host(&xs.fmod(&ys).unwrap()), &f64s(&x.fmod(&y)));
    same(
        &host(&xs.floor_divide(&ys).unwrap()),
        &f64s(&x.floor_divide(&y)),
    );
    same(&host(&xs.atan2(&ys).unwrap()), &f64s(&x.atan2(&y)));
    same(&host(&(&xs % 2.5)), &f64s(&(&x % 2.5)));
    let m = xs.greater(&ys).unwrap();
    let both = &m & &xs.less(&ys).unwrap();
    assert_eq!(both.to_vec::<bool>().unwrap(), vec![false; 11]);
}
