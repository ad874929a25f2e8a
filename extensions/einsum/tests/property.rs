//! Property: einsum equals a naive nested-loop contraction on random subscripts and
//! shapes (1-6 operands, mostly 3-6; `...` with broadcasting, repeated indices inside an
//! operand, indices in one operand only, implicit and explicit outputs, a repeated output
//! index), for every planner.

mod common;
use common::*;
use proptest::prelude::*;
use tenferro_einsum::{einsum_with, EinsumOptions, Optimize};
use tenferro_runtime::TracedTensor;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Case {
    subscripts: String,
    shapes: Vec<Vec<usize>>,
    sizes: Vec<usize>,
    axes: Vec<Vec<Ax>>,
    output: Vec<usize>,
}

const LETTERS: [char; 6] = ['a', 'b', 'c', 'd', 'e', 'f'];

fn gen(seed: u64) -> Case {
    let mut r = Rng(seed);
    let nl = LETTERS.len();
    let ne = r.below(3); // ellipsis rank 0..2
    let mut sizes: Vec<usize> = (0..nl).map(|_| 1 + r.below(3)).collect();
    sizes.extend((0..ne).map(|_| 2 + r.below(2)));
    let n = if r.below(5) == 0 {
        1 + r.below(2)
    } else {
        3 + r.below(4)
    };
    let mut terms = Vec::new();
    let mut shapes = Vec::new();
    let mut axes = Vec::new();
    let mut ell_used = vec![false; ne]; // some operand reads it unbroadcast
    for _ in 0..n {
        let rank = r.below(4);
        let letters: Vec<usize> = (0..rank).map(|_| r.below(nl)).collect();
        let with_ell = ne > 0 && r.below(2) == 0;
        let mut term = String::new();
        let mut shape = Vec::new();
        let mut ax = Vec::new();
        let pos = if with_ell {
            r.below(rank + 1)
        } else {
            usize::MAX
        };
        for (k, &l) in letters.iter().enumerate() {
            if k == pos {
                push_ell(
                    &mut r,
                    ne,
                    &sizes,
                    &mut term,
                    &mut shape,
                    &mut ax,
                    &mut ell_used,
                );
            }
            term.push(LETTERS[l]);
            shape.push(sizes[l]);
            ax.push(Ax {
                id: l,
                bcast: false,
            });
        }
        if pos == rank {
            push_ell(
                &mut r,
                ne,
                &sizes,
                &mut term,
                &mut shape,
                &mut ax,
                &mut ell_used,
            );
        }
        terms.push(term);
        shapes.push(shape);
        axes.push(ax);
    }
    // An ellipsis axis no operand reads unbroadcast has extent 1.
    for e in 0..ne {
        if !ell_used[e] {
            sizes[nl + e] = 1;
        }
    }
    let any_ell = terms.iter().any(|t| t.contains("..."));
    let ell_out: Vec<usize> = if any_ell {
        // broadcast rank = the largest ellipsis rank used
        let used = axes
            .iter()
            .map(|a| a.iter().filter(|x| x.id >= nl).count())
            .max()
            .unwrap_or(0);
        (nl + ne - used..nl + ne).collect()
    } else {
        vec![]
    };
    let mut count = vec![0usize; nl];
    for t in &terms {
        for c in t.chars().filter(|c| c.is_alphabetic()) {
            count[LETTERS.iter().position(|&x| x == c).unwrap()] += 1;
        }
    }
    let used: Vec<usize> = (0..nl).filter(|&l| count[l] > 0).collect();
    let (subscripts, output) = if r.below(3) == 0 {
        let mut out = ell_out.clone();
        out.extend((0..nl).filter(|&l| count[l] == 1));
        (terms.join(","), out)
    } else {
        let mut pick: Vec<usize> = used.iter().copied().filter(|_| r.below(2) == 0).collect();
        // shuffle
        for i in (1..pick.len()).rev() {
            let j = r.below(i + 1);
            pick.swap(i, j);
        }
        if !pick.is_empty() && r.below(4) == 0 {
            let l = pick[r.below(pick.len())];
            let at = r.below(pick.len() + 1);
            pick.insert(at, l); // a repeated output index
        }
        let at = r.below(pick.len() + 1);
        let mut s = String::new();
        let mut out = Vec::new();
        for (k, &l) in pick.iter().enumerate() {
            if k == at && any_ell {
                s.push_str("...");
                out.extend(ell_out.iter().copied());
            }
            s.push(LETTERS[l]);
            out.push(l);
        }
        if at == pick.len() && any_ell {
            s.push_str("...");
            out.extend(ell_out.iter().copied());
        }
        (format!("{}->{}", terms.join(","), s), out)
    };
    Case {
        subscripts,
        shapes,
        sizes,
        axes,
        output,
    }
}

fn push_ell(
    r: &mut Rng,
    ne: usize,
    sizes: &[usize],
    term: &mut String,
    shape: &mut Vec<usize>,
    ax: &mut Vec<Ax>,
    used: &mut [bool],
) {
    let nl = LETTERS.len();
    let e = r.below(ne + 1);
    term.push_str("...");
    for id in nl + ne - e..nl + ne {
        let bcast = r.below(4) == 0;
        if !bcast {
            used[id - nl] = true;
        }
        shape.push(if bcast { 1 } else { sizes[id] });
        ax.push(Ax { id, bcast });
    }
}

fn check(seed: u64) {
    let c = gen(seed);
    let data: Vec<Vec<f64>> = c
        .shapes
        .iter()
        .enumerate()
        .map(|(k, s)| noise(s.iter().product(), seed ^ k as u64))
        .collect();
    // Axes of extent 1 marked broadcast but of a size-1 index: read at 0 either way.
    let want = naive(&c.sizes, &c.axes, &data, &c.output);
    let ops = operands(&c.shapes, &data);
    let refs: Vec<&TracedTensor> = ops.iter().collect();
    let out_shape: Vec<usize> = c.output.iter().map(|&l| c.sizes[l]).collect();
    for optimize in [Optimize::Auto, Optimize::Greedy, Optimize::tree_sa_fast()] {
        let y = einsum_with(
            &c.subscripts,
            &refs,
            &EinsumOptions {
                optimize: optimize.clone(),
                memory_limit: None,
            },
        )
        .unwrap_or_else(|e| panic!("{} on {:?}: {e}", c.subscripts, c.shapes));
        assert_eq!(
            y.shape().unwrap(),
            out_shape,
            "{} on {:?}",
            c.subscripts,
            c.shapes
        );
        assert_close(
            &vals(&y),
            &want,
            1e-12,
            &format!("{} on {:?} ({optimize:?})", c.subscripts, c.shapes),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn einsum_equals_naive(seed in any::<u64>()) {
        check(seed);
    }
}

#[test]
fn fixed_seeds() {
    for s in 0..24 {
        check(s);
    }
}
