//! Errors name the operand and the index.

mod common;
use common::*;
use tenferro_einsum::*;
use tenferro_runtime::TracedTensor;

fn e(s: &str, ops: &[&TracedTensor]) -> String {
    einsum(s, ops).unwrap_err().to_string()
}

#[test]
fn errors_name_operand_and_index() {
    let a = col(&[2, 3], vec![0.0; 6]);
    let b = col(&[4, 5], vec![0.0; 20]);
    let v = col(&[3], vec![0.0; 3]);
    let m = e("ijk,jk->i", &[&a, &b]);
    assert!(m.contains("operand 0") && m.contains("rank 2"), "{m}");
    let m = e("ij,jk->ik", &[&a, &b]);
    assert!(
        m.contains("index `j`") && m.contains("operand 0") && m.contains("operand 1"),
        "{m}"
    );
    assert!(m.contains("extent 3") && m.contains('4'), "{m}");
    let m = e("ij,j->iz", &[&a, &v]);
    assert!(
        m.contains("output index `z`") && m.contains("does not appear"),
        "{m}"
    );
    let m = e("ij->", &[&a, &v]);
    assert!(
        m.contains("1 input terms") && m.contains("2 operands"),
        "{m}"
    );
    let m = e("i!->i", &[&v]);
    assert!(m.contains("`!`") && m.contains("operand 0"), "{m}");
    let m = e("i.j->i", &[&a]);
    assert!(m.contains("..."), "{m}");
    let m = e("...ijk->i", &[&a]);
    assert!(m.contains("operand 0") && m.contains("rank 2"), "{m}");
    // every message is an einsum error
    assert!(m.contains("einsum"), "{m}");
    // integer labels
    let m = einsum_labels(&[&[0, 1], &[1]], &[7], &[&a, &v])
        .unwrap_err()
        .to_string();
    assert!(m.contains("output index label 7"), "{m}");
    let m = einsum_labels(&[&[0, 1], &[0]], &[0], &[&a, &v])
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("index label 0") && m.contains("operand 1"),
        "{m}"
    );
    let m = einsum_labels(&[&[0], &[0]], &[], &[&a, &v])
        .unwrap_err()
        .to_string();
    assert!(m.contains("operand 0") && m.contains("rank 2"), "{m}");
    // a bad explicit path
    let m = einsum_with(
        "ij,j->i",
        &[&a, &v],
        &EinsumOptions {
            optimize: Optimize::Path(vec![(0, 5)]),
            memory_limit: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(m.contains("path step 0"), "{m}");
    // no operands
    assert!(einsum("->", &[]).is_err());
}

/// Errors point at the caller's line, not at a line of the einsum crate: a bad request,
/// an op einsum traces that fails (a sum over more elements than fit in memory), and the
/// helpers. An error carried in from an operand keeps its own location.
#[test]
fn errors_name_the_callers_line() {
    let here = |line: u32| format!("(at {}:{line}:", file!());
    let a = col(&[2, 3], vec![0.0; 6]);
    let b = col(&[4, 5], vec![0.0; 20]);
    let (m, line) = (einsum("ij,jk->ik", &[&a, &b]).unwrap_err(), line!());
    assert!(m.to_string().contains(&here(line)), "{m}");
    let huge = TracedTensor::input(tenferro_ir::DType::F64, &[usize::MAX / 2]);
    let (m, line) = (einsum("a->", &[&huge]).unwrap_err(), line!());
    assert!(m.to_string().contains(&here(line)), "{m}");
    let (m, line) = (tensordot(&a, &b, &[0], &[7]).unwrap_err(), line!());
    assert!(m.to_string().contains(&here(line)), "{m}");
    let (m, line) = (einsum_labels(&[&[0, 1]], &[2], &[&a]).unwrap_err(), line!());
    assert!(m.to_string().contains(&here(line)), "{m}");
    // An operand whose error was recorded where it was written keeps that line.
    let (bad, line) = (&a + &b, line!());
    let m = einsum("ij->", &[&bad]).unwrap_err();
    assert!(m.to_string().contains(&here(line)), "{m}");
}
