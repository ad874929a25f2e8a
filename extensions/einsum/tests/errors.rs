//! Errors name the operand and the index.

mod common;
use common::*;
use tenferro_einsum::*;
use tenferro_runtime::{DType, TracedTensor};

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

/// A deterministic generator of numbers below its argument.
fn below(seed: u64) -> impl FnMut(usize) -> usize {
    let mut s = seed;
    move |n| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % n
    }
}

/// Random subscript strings (letters, separators, arrows, dots, parentheses, spaces,
/// non-ASCII) on random operands: `einsum`, `plan_einsum` and `Optimize::nested` return
/// `Ok` or `Err`, never panic.
#[test]
fn random_subscripts_never_panic() {
    let alphabet: Vec<char> = "abcab,,..->->()( )é1Z".chars().collect();
    let mut next = below(12345);
    let mut panics = 0;
    let mut oks = 0;
    for _ in 0..5000 {
        let len = next(14);
        let sub: String = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
        let nops = next(4);
        let ops: Vec<TracedTensor> = (0..nops)
            .map(|_| {
                let rank = next(4);
                let shape: Vec<usize> = (0..rank)
                    .map(|_| next(3) + if next(5) == 0 { 0 } else { 1 })
                    .collect();
                TracedTensor::input(DType::F64, &shape)
            })
            .collect();
        let refs: Vec<&TracedTensor> = ops.iter().collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let a = einsum(&sub, &refs).map(|y| y.shape());
            let b = plan_einsum(
                &sub,
                &ops.iter().map(|t| t.shape().unwrap()).collect::<Vec<_>>(),
                &EinsumOptions::default(),
            )
            .map(|_| ());
            let c = Optimize::nested(&sub).map(|_| ());
            (a.is_ok(), b.is_ok(), c.is_ok())
        }));
        match r {
            Err(_) => {
                panics += 1;
                println!(
                    "PANIC on {sub:?} with shapes {:?}",
                    ops.iter().map(|t| t.shape().unwrap()).collect::<Vec<_>>()
                );
            }
            Ok((a, _, _)) => oks += a as usize,
        }
    }
    assert!(oks > 20, "only {oks} valid cases");
    assert_eq!(panics, 0);
}

/// Random integer labels (repeated, huge, wrong counts) never make `einsum_labels` panic.
#[test]
fn random_labels_never_panic() {
    let mut next = below(999);
    let mut panics = 0;
    let mut oks = 0;
    for _ in 0..5000 {
        let nops = next(4);
        let labs: Vec<Vec<usize>> = (0..nops)
            .map(|_| {
                (0..next(4))
                    .map(|_| [0, 1, 2, usize::MAX, 7][next(5)])
                    .collect()
            })
            .collect();
        let out: Vec<usize> = (0..next(4))
            .map(|_| [0, 1, 2, usize::MAX, 9][next(5)])
            .collect();
        let ops: Vec<TracedTensor> = labs
            .iter()
            .map(|l| {
                let rank = if next(6) == 0 { l.len() + 1 } else { l.len() };
                let shape: Vec<usize> = (0..rank).map(|_| next(3) + 1).collect();
                TracedTensor::input(DType::F64, &shape)
            })
            .collect();
        let refs: Vec<&TracedTensor> = ops.iter().collect();
        let inputs: Vec<&[usize]> = labs.iter().map(|v| v.as_slice()).collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            einsum_labels(&inputs, &out, &refs).is_ok()
        }));
        match r {
            Err(_) => {
                panics += 1;
                println!("PANIC on {labs:?} -> {out:?}");
            }
            Ok(a) => oks += a as usize,
        }
    }
    assert!(oks > 200, "only {oks} valid cases");
    assert_eq!(panics, 0);
}
