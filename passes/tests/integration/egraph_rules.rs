//! One-line tests of the e-graph rules: parameters, input expression => expected output,
//! after the full e-graph pass (saturation, extraction, write-back). Each test also checks
//! the rewritten function with the reference evaluator on inputs holding -0, inf and NaN:
//! bit-identical for the default rules, within a tolerance for `fast_math`.

use std::time::Duration;
use tenferro_ir::eval::eval;
use tenferro_ir::{Data, Tensor, TensorType};
use tenferro_passes::egraph::sexpr::{parse_function, to_sexprs};
use tenferro_passes::egraph::{simplify, EGraphOptions};

const SPECIALS: [f64; 8] = [1.5, -0.0, 0.0, -2.25, f64::INFINITY, f64::NAN, 3.0, -1.0e-3];

fn input(ty: &TensorType, salt: usize) -> Tensor {
    let n = ty.numel();
    let v = |i: usize| SPECIALS[(i * 3 + salt) % SPECIALS.len()];
    let data = match ty.dtype {
        tenferro_ir::DType::F32 => Data::F32((0..n).map(|i| v(i) as f32).collect()),
        tenferro_ir::DType::F64 => Data::F64((0..n).map(v).collect()),
        tenferro_ir::DType::C32 => Data::C32(
            (0..n)
                .map(|i| num_complex::Complex32::new(v(i) as f32, v(i + 1) as f32))
                .collect(),
        ),
        tenferro_ir::DType::C64 => Data::C64(
            (0..n)
                .map(|i| num_complex::Complex64::new(v(i), v(i + 1)))
                .collect(),
        ),
        tenferro_ir::DType::I32 => Data::I32(
            (0..n)
                .map(|i| (i as i32 * 7 + salt as i32) % 11 - 5)
                .collect(),
        ),
        tenferro_ir::DType::I64 => Data::I64(
            (0..n)
                .map(|i| (i as i64 * 7 + salt as i64) % 11 - 5)
                .collect(),
        ),
        tenferro_ir::DType::Bool => {
            Data::Bool((0..n).map(|i| (i + salt).is_multiple_of(3)).collect())
        }
    };
    Tensor::new(ty.shape.clone(), data).unwrap()
}

fn close(a: &Tensor, b: &Tensor) -> bool {
    let n = a.numel();
    (0..n).all(|i| {
        let (x, y) = (a.data().get_c64(i), b.data().get_c64(i));
        let finite = x.re.is_finite() && x.im.is_finite();
        !finite || (x - y).norm() <= 1e-5 * (1.0 + x.norm())
    })
}

fn check(params: &str, input_expr: &str, expected: &str, fast_math: bool) {
    let mut f = parse_function(params, &[input_expr]).unwrap();
    let before = f.clone();
    let opts = EGraphOptions {
        // Deterministic: the node and iteration budgets stop saturation, not the clock.
        time_limit: Duration::from_secs(10),
        node_limit: 4_000,
        fast_math,
        ..EGraphOptions::default()
    };
    let report = simplify(&mut f, &opts);
    assert_eq!(
        report.saturation.ill_typed, 0,
        "a rule proposed an ill-typed rewrite"
    );
    tenferro_ir::verify::verify(&f).unwrap();
    let want = parse_function(params, &[expected]).unwrap();
    assert!(
        f == want,
        "\n input: {input_expr}\n   got: {:?}\n  want: {:?}\n{report:?}",
        to_sexprs(&f),
        to_sexprs(&want)
    );
    if before
        .insts()
        .iter()
        .any(|i| matches!(i.op, tenferro_ir::Op::Extension(_)))
    {
        return; // the reference evaluator has no kernels for extension ops
    }
    let inputs: Vec<Tensor> = before
        .param_types()
        .iter()
        .enumerate()
        .map(|(i, t)| input(t, i))
        .collect();
    let (x, y) = (eval(&before, &inputs).unwrap(), eval(&f, &inputs).unwrap());
    for (a, b) in x.iter().zip(&y) {
        if fast_math {
            assert!(
                close(a, b),
                "fast-math result out of tolerance: {a:?} vs {b:?}"
            );
        } else {
            assert!(a.bits_eq(b), "default rules changed bits: {a:?} vs {b:?}");
        }
    }
}

/// `rewrites!(name, "params", "input" => "expected")`; `fast` before the name turns on
/// the fast-math rules.
macro_rules! rewrites {
    ($name:ident, $params:literal, $input:literal => $expected:literal) => {
        #[test]
        fn $name() {
            check($params, $input, $expected, false);
        }
    };
    (fast $name:ident, $params:literal, $input:literal => $expected:literal) => {
        #[test]
        fn $name() {
            check($params, $input, $expected, true);
        }
    };
}

// Default (bit-exact) rules.
rewrites!(neg_neg, "x:f64[3]", "(neg (neg x))" => "x");
rewrites!(conj_conj, "z:c64[3]", "(conj (conj z))" => "z");
rewrites!(conj_real, "x:f64[3]", "(conj x)" => "x");
rewrites!(real_real, "x:f32[3]", "(real x)" => "x");
rewrites!(imag_real, "x:f64[4,8]", "(imag x)" => "(broadcast:4,8: 0.0:f64)");
rewrites!(imag_complex_kept, "z:c64[3]", "(imag z)" => "(imag z)");
rewrites!(transpose_id, "x:f64[2,3]", "(transpose:0,1 x)" => "x");
rewrites!(transpose_transpose_cancel, "x:f64[2,3,4]", "(transpose:1,2,0 (transpose:2,0,1 x))" => "x");
rewrites!(transpose_transpose_compose, "x:f64[2,3,4]", "(transpose:1,0,2 (transpose:2,0,1 x))" => "(transpose:0,2,1 x)");
rewrites!(reshape_id, "x:f64[2,3]", "(reshape:2,3 x)" => "x");
rewrites!(reshape_reshape, "x:f64[2,3]", "(reshape:3,2 (reshape:6 x))" => "(reshape:3,2 x)");
rewrites!(reshape_reshape_back, "x:f64[2,3]", "(reshape:2,3 (reshape:6 x))" => "x");
rewrites!(convert_id, "x:f32[3]", "(convert:f32 x)" => "x");
rewrites!(convert_kept, "x:f32[3]", "(convert:f64 x)" => "(convert:f64 x)");
rewrites!(broadcast_id, "x:f64[2,3]", "(broadcast:2,3:0,1 x)" => "x");
rewrites!(broadcast_broadcast, "x:f64[3]", "(broadcast:2,3,4:1,2 (broadcast:3,4:0 x))" => "(broadcast:2,3,4:1 x)");
rewrites!(add_neg_zero_right, "x:f64[2,3]", "(add x (broadcast:2,3: -0.0:f64))" => "x");
rewrites!(add_neg_zero_left, "x:f32[2,3]", "(add (broadcast:2,3: -0.0:f32) x)" => "x");
rewrites!(add_pos_zero_kept, "x:f64[2,3]", "(add x (broadcast:2,3: 0.0:f64))" => "(add x (broadcast:2,3: 0.0:f64))");
rewrites!(add_neg_zero_complex, "z:c64[3]", "(add z (broadcast:3: -0.0|-0.0:c64))" => "z");
rewrites!(add_zero_int, "n:i64[3]", "(add n (broadcast:3: 0:i64))" => "n");
rewrites!(sub_pos_zero, "x:f64[2,3]", "(sub x (broadcast:2,3: 0.0:f64))" => "x");
rewrites!(sub_neg_zero_kept, "x:f64[2,3]", "(sub x (broadcast:2,3: -0.0:f64))" => "(sub x (broadcast:2,3: -0.0:f64))");
rewrites!(mul_one_right, "x:f64[2,3]", "(mul x (broadcast:2,3: 1.0:f64))" => "x");
rewrites!(mul_one_left, "x:f64[2,3]", "(mul (broadcast:2,3: 1.0:f64) x)" => "x");
rewrites!(mul_one_complex_kept, "z:c64[3]", "(mul z (broadcast:3: 1.0:c64))" => "(mul z (broadcast:3: 1.0:c64))");
rewrites!(div_one, "x:f64[2,3]", "(div x (broadcast:2,3: 1.0:f64))" => "x");
rewrites!(mul_minus_one, "x:f64[2,3]", "(mul x (broadcast:2,3: -1.0:f64))" => "(neg x)");
rewrites!(sub_neg, "x:f64[3] y:f64[3]", "(sub x (neg y))" => "(add x y)");
rewrites!(add_neg_right, "x:f64[3] y:f64[3]", "(add x (neg y))" => "(sub x y)");
rewrites!(add_neg_left, "x:f64[3] y:f64[3]", "(add (neg y) x)" => "(sub x y)");
rewrites!(mul_neg_neg, "x:f64[3] y:f64[3]", "(mul (neg x) (neg y))" => "(mul x y)");
rewrites!(select_same, "c:bool[3] x:f64[3]", "(select c x x)" => "x");
rewrites!(reduce_sum_broadcast_one, "x:f64[3]", "(reduce_sum:1 (broadcast:3,1:0 x))" => "(add x (broadcast:3: 0.0:f64))");
rewrites!(reduce_sum_broadcast_two, "x:f64[3]", "(reduce_sum:1 (broadcast:3,2:0 x))" => "(add (add x x) (broadcast:3: 0.0:f64))");
rewrites!(reduce_sum_broadcast_five_kept, "x:f64[3]", "(reduce_sum:1 (broadcast:3,5:0 x))" => "(reduce_sum:1 (broadcast:3,5:0 x))");
rewrites!(reduce_sum_broadcast_int, "n:i64[3]", "(reduce_sum:1 (broadcast:3,5:0 n))" => "(mul n (broadcast:3: 5:i64))");
rewrites!(transpose_unary, "x:f64[2,3]", "(transpose:1,0 (exp (transpose:1,0 x)))" => "(exp x)");
rewrites!(transpose_binary, "x:f64[2,3] y:f64[2,3]", "(transpose:1,0 (add (transpose:1,0 x) (transpose:1,0 y)))" => "(add x y)");
rewrites!(transpose_binary_splat, "x:f64[2,3]", "(transpose:1,0 (mul (transpose:1,0 x) (broadcast:3,2: 2.0:f64)))" => "(mul x (broadcast:2,3: 2.0:f64))");
rewrites!(dot_transpose_lhs, "a:f64[4,3] b:f64[4,5]", "(dot:1:0:: (transpose:1,0 a) b)" => "(dot:0:0:: a b)");
rewrites!(dot_transpose_rhs, "a:f64[3,4] b:f64[5,4]", "(dot:1:0:: a (transpose:1,0 b))" => "(dot:1:1:: a b)");
rewrites!(transpose_dot, "a:f64[2,3] b:f64[3,4]", "(transpose:1,0 (dot:1:0:: a b))" => "(dot:0:1:: b a)");
rewrites!(opaque_is_a_barrier, "x:f64[3]", "(neg (neg (opaque:f64[3] (neg (neg x)))))" => "(opaque:f64[3] x)");

// Fast-math rules.
rewrites!(fast mul_zero, "x:f64[2,3]", "(mul x (broadcast:2,3: 0.0:f64))" => "(broadcast:2,3: 0.0:f64)");
rewrites!(fast sub_self, "x:f64[2,3]", "(sub x x)" => "(broadcast:2,3: 0.0:f64)");
rewrites!(fast add_zero, "x:f64[2,3]", "(add x (broadcast:2,3: 0.0:f64))" => "x");
rewrites!(fast mul_one_complex, "z:c64[3]", "(mul z (broadcast:3: 1.0:c64))" => "z");
rewrites!(fast add_assoc, "x:f64[3] y:f64[3]", "(add (add x y) (neg y))" => "x");
rewrites!(fast factor_mul, "x:f64[3] y:f64[3] z:f64[3]", "(add (mul x y) (mul x z))" => "(mul x (add y z))");
rewrites!(fast factor_dot, "a:f64[8,8] b:f64[8,8] c:f64[8,8]", "(add (dot:1:0:: a b) (dot:1:0:: a c))" => "(dot:1:0:: a (add b c))");
rewrites!(fast reduce_sum_broadcast_any, "x:f64[3]", "(reduce_sum:1 (broadcast:3,5:0 x))" => "(mul x (broadcast:3: 5.0:f64))");
// A transpose that lets the GEMM read a batched operand in place is not absorbed (the
// untransposed operand would be packed); one whose absorption keeps it in place is.
rewrites!(dot_transpose_kept_for_gemm, "a:f64[2,3,4] b:f64[2,4,5]", "(dot:2:0:1:1 (transpose:1,0,2 a) (transpose:1,0,2 b))" => "(dot:2:0:1:1 (transpose:1,0,2 a) (transpose:1,0,2 b))");
rewrites!(dot_transpose_batched_absorbed, "a:f64[3,4,2] b:f64[4,5,2]", "(dot:2:0:1:2 (transpose:0,2,1 a) b)" => "(dot:1:0:2:2 a b)");
