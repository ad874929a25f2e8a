//! Typed linalg attributes: every primitive's attributes survive encode → decode, and a
//! missing, misspelt, mistyped or out-of-range attribute is an error naming the op and the
//! key, from `decode`, from the kernel, and from the batching rule.

use tenferro_ir::{Attr, AttrError, DType, ExtensionOp, IrError, Tensor, TensorType};
use tenferro_linalg::attrs::{
    Cholesky, EigDistinct, Eigen, FullPivPerm, LinalgOp, Lu, Qr, Solve, Svd, TriangularSolve,
};
use tenferro_linalg::{ops, register_runtime};
use tenferro_runtime::{ExtensionRegistry, RuntimeError};

fn ty() -> Vec<TensorType> {
    vec![TensorType::new(DType::F64, [2, 2])]
}

/// One value of every primitive, with attributes away from their defaults where they have
/// any.
fn every_primitive() -> Vec<LinalgOp> {
    vec![
        LinalgOp::Cholesky(Cholesky),
        LinalgOp::TriangularSolve(TriangularSolve {
            lower: false,
            left: false,
            adjoint: true,
            unit_diagonal: true,
        }),
        LinalgOp::Solve(Solve { adjoint: true }),
        LinalgOp::Lu(Lu),
        LinalgOp::Qr(Qr { complete: true }),
        LinalgOp::Svd(Svd {
            compute_uv: true,
            keep: Some(3),
            full_matrices: false,
            safe_gaps: true,
            derivative_eps: 1e-12,
        }),
        LinalgOp::Svd(Svd {
            compute_uv: false,
            keep: None,
            full_matrices: true,
            safe_gaps: false,
            derivative_eps: 0.0,
        }),
        LinalgOp::Eigh(Eigen {
            eigenvectors: true,
            derivative_eps: 0.5,
        }),
        LinalgOp::Eig(Eigen {
            eigenvectors: false,
            derivative_eps: 0.0,
        }),
        LinalgOp::EigDistinct(EigDistinct),
        LinalgOp::FullPivPerm(FullPivPerm),
    ]
}

#[test]
fn round_trip_of_every_primitive() {
    let all = every_primitive();
    let mut names: Vec<String> = Vec::new();
    for p in &all {
        let op = p.encode(ty());
        assert_eq!(LinalgOp::decode(&op), Ok(*p), "{op:?}");
        assert_eq!(op.results, ty());
        names.push(op.name.clone());
    }
    for name in ops::PRIMITIVES {
        assert!(names.iter().any(|n| n == name), "{name} not covered");
    }
}

#[test]
fn each_struct_decodes_what_it_encodes() {
    let how = TriangularSolve {
        lower: false,
        ..TriangularSolve::default()
    };
    assert_eq!(TriangularSolve::decode(&how.encode(ty())), Ok(how));
    let qr = Qr { complete: true };
    assert_eq!(Qr::decode(&qr.encode(ty())), Ok(qr));
    let e = Eigen {
        eigenvectors: true,
        derivative_eps: 2.0,
    };
    assert_eq!(Eigen::decode_eigh(&e.encode_eigh(ty())), Ok(e));
    assert_eq!(Eigen::decode_eig(&e.encode_eig(ty())), Ok(e));
}

/// `op` with `key` renamed to `to`.
fn renamed(mut op: ExtensionOp, key: &str, to: &str) -> ExtensionOp {
    let v = op.attrs.remove(key).expect("key present");
    op.attrs.insert(to.to_string(), v);
    op
}

#[test]
fn a_misspelt_key_is_missing_and_names_op_and_key() {
    let op = renamed(Solve { adjoint: true }.encode(ty()), "adjoint", "adjiont");
    let e = Solve::decode(&op).unwrap_err();
    assert_eq!(
        e,
        AttrError::Missing {
            op: "linalg.solve".into(),
            key: "adjoint".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "linalg.solve: attribute `adjoint` is missing"
    );
}

#[test]
fn an_extra_key_is_unknown() {
    let op = TriangularSolve::default()
        .encode(ty())
        .with_attr("upper", Attr::Bool(true));
    let e = TriangularSolve::decode(&op).unwrap_err();
    let AttrError::Unknown { op, key, expected } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (op.as_str(), key.as_str()),
        ("linalg.triangular_solve", "upper")
    );
    assert_eq!(expected, "lower, left, adjoint, unit_diagonal");
    let op = Cholesky.encode(ty()).with_attr("lower", Attr::Bool(true));
    let e = Cholesky::decode(&op).unwrap_err();
    assert!(
        e.to_string()
            .contains("linalg.cholesky: unknown attribute `lower`"),
        "{e}"
    );
    assert!(e.to_string().contains("takes none"), "{e}");
}

#[test]
fn a_value_of_another_kind_is_an_error() {
    let op = Qr { complete: false }
        .encode(ty())
        .with_attr("complete", Attr::Int(1));
    assert_eq!(
        Qr::decode(&op),
        Err(AttrError::WrongType {
            op: "linalg.qr".into(),
            key: "complete".into(),
            expected: "a bool",
            found: Attr::Int(1),
        })
    );
}

#[test]
fn out_of_range_values_are_errors() {
    let op = Svd::default().encode(ty()).with_attr("keep", Attr::Int(-2));
    let e = Svd::decode(&op).unwrap_err();
    assert!(
        matches!(&e, AttrError::BadValue { op, key, .. } if op == "linalg.svd" && key == "keep"),
        "{e:?}"
    );
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let op = Eigen::default()
            .encode_eigh(ty())
            .with_attr("derivative_eps", Attr::FloatBits(f64::to_bits(bad)));
        let e = Eigen::decode_eigh(&op).unwrap_err();
        assert!(
            matches!(&e, AttrError::BadValue { op, key, .. } if op == "linalg.eigh" && key == "derivative_eps"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn another_op_is_not_decoded() {
    let op = Qr::default().encode(ty());
    assert_eq!(
        Svd::decode(&op),
        Err(AttrError::WrongOp {
            op: "linalg.qr".into(),
            expected: "linalg.svd".into()
        })
    );
    let other = ExtensionOp::new("mine.op", ty());
    assert!(matches!(
        LinalgOp::decode(&other),
        Err(AttrError::WrongOp { .. })
    ));
}

#[test]
fn the_kernel_reports_a_missing_attribute() {
    let mut reg = ExtensionRegistry::new();
    register_runtime(&mut reg).unwrap();
    let a = Tensor::from_vec_col_major(vec![2, 2], vec![2.0_f64, 0.0, 0.0, 2.0]).unwrap();
    let b = Tensor::from_vec_col_major(vec![2, 1], vec![1.0_f64, 1.0]).unwrap();
    let res = vec![TensorType::new(DType::F64, [2, 1])];
    let good = Solve { adjoint: false }.encode(res.clone());
    assert!(reg.run(&good, &[&a, &b]).is_ok());
    let bad = renamed(good, "adjoint", "adjiont");
    let e = reg.run(&bad, &[&a, &b]).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::Ir(IrError::Attr(AttrError::Missing { op, key })) if op == "linalg.solve" && key == "adjoint"),
        "{e:?}"
    );
}
