//! Deterministic greedy contraction orders: opt_einsum's "greedy" rule (contract the
//! pair that removes the most memory) and its seeded thermal variant (opt_einsum's
//! `random-greedy`). A plan depends only on the network, never on hash order or the
//! process.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pairwise steps in SSA form: operands are `0..n`, step `k` creates operand `n + k`.
pub(crate) type Ssa = Vec<(usize, usize)>;

/// A small seeded generator (SplitMix64): enough for choosing among a few candidates.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A candidate pair: its cost (memory removed, negated: lower is better), then the two
/// operand ids, so equal costs are ordered by id.
#[derive(Clone, Copy)]
struct Cand(f64, usize, usize);

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}

impl Eq for Cand {}

impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Cand {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&o.0)
            .then(self.1.cmp(&o.1))
            .then(self.2.cmp(&o.2))
    }
}

/// The network being contracted: each live operand's labels and each label's holders.
struct Net<'a> {
    sizes: &'a [usize],
    out: Vec<bool>,
    labels: Vec<Option<Vec<usize>>>,
    /// Live operands holding each label (dead ones are dropped lazily).
    holders: Vec<Vec<usize>>,
    /// Live operands holding each label, counted exactly.
    count: Vec<usize>,
}

impl<'a> Net<'a> {
    /// The network of operands `ixs` (labels per operand, unique within each) contracted
    /// into `out`.
    fn new(ixs: &[Vec<usize>], out: &[usize], sizes: &'a [usize]) -> Net<'a> {
        let nl = sizes.len();
        let mut net = Net {
            sizes,
            out: (0..nl).map(|l| out.contains(&l)).collect(),
            labels: ixs.iter().cloned().map(Some).collect(),
            holders: vec![Vec::new(); nl],
            count: vec![0; nl],
        };
        for (i, ls) in ixs.iter().enumerate() {
            for &l in ls {
                net.holders[l].push(i);
                net.count[l] += 1;
            }
        }
        net
    }

    fn size(&self, ls: &[usize]) -> f64 {
        ls.iter().map(|&l| self.sizes[l] as f64).product()
    }

    /// Labels of the product of `a` and `b`: those of `a`, then those only `b` has.
    fn union(&self, a: usize, b: usize) -> impl Iterator<Item = usize> + '_ {
        let la = self.labels[a].as_deref().unwrap_or(&[]);
        let lb = self.labels[b].as_deref().unwrap_or(&[]);
        la.iter()
            .chain(lb.iter().filter(move |l| !la.contains(l)))
            .copied()
    }

    /// The labels of [`Net::union`] still held elsewhere or in the output.
    fn kept(&self, a: usize, b: usize) -> impl Iterator<Item = usize> + '_ {
        let la = self.labels[a].as_deref().unwrap_or(&[]);
        let lb = self.labels[b].as_deref().unwrap_or(&[]);
        self.union(a, b).filter(move |&l| {
            let here = la.contains(&l) as usize + lb.contains(&l) as usize;
            self.out[l] || self.count[l] > here
        })
    }

    fn cost(&self, a: usize, b: usize) -> f64 {
        let (la, lb) = (self.labels[a].as_deref(), self.labels[b].as_deref());
        let kept: f64 = self.kept(a, b).map(|l| self.sizes[l] as f64).product();
        kept - self.size(la.unwrap_or(&[])) - self.size(lb.unwrap_or(&[]))
    }

    /// Candidates of operand `a` with every live operand sharing a label (`seen` is
    /// scratch: `seen[b] == a + 1` once `b` was paired with `a`).
    fn push_neighbours(
        &self,
        a: usize,
        heap: &mut BinaryHeap<Reverse<Cand>>,
        seen: &mut Vec<usize>,
    ) {
        seen.resize(self.labels.len(), 0);
        for &l in self.labels[a].as_deref().unwrap_or(&[]) {
            for &b in &self.holders[l] {
                if b != a && self.labels[b].is_some() && seen[b] != a + 1 {
                    seen[b] = a + 1;
                    heap.push(Reverse(Cand(self.cost(a, b), a.min(b), a.max(b))));
                }
            }
        }
    }

    fn contract(&mut self, a: usize, b: usize) -> usize {
        let kept: Vec<usize> = self.kept(a, b).collect();
        for x in [a, b] {
            for &l in self.labels[x].as_deref().unwrap_or(&[]) {
                self.count[l] -= 1;
            }
            self.labels[x] = None;
        }
        let id = self.labels.len();
        for &l in &kept {
            self.count[l] += 1;
            self.holders[l].retain(|&h| h != a && h != b);
            self.holders[l].push(id);
        }
        self.labels.push(Some(kept));
        id
    }
}

/// A greedy order of `ixs` (labels per operand, unique within each) into `out`.
///
/// Each step contracts the pair sharing a label whose product removes the most memory
/// (`size(product) - size(a) - size(b)` smallest; ties by operand id). With `seed`, each
/// step instead draws among the 8 best candidates with Boltzmann weights at a
/// temperature drawn per run, as opt_einsum's `random-greedy` does. Operands left without
/// shared labels are multiplied smallest first.
pub(crate) fn greedy(ixs: &[Vec<usize>], out: &[usize], sizes: &[usize], seed: Option<u64>) -> Ssa {
    let n = ixs.len();
    let mut net = Net::new(ixs, out, sizes);
    let mut rng = seed.map(SplitMix);
    // Temperature of this run, relative to the best candidate's cost (log-uniform in
    // [0.01, 1]).
    let temperature = rng.as_mut().map(|r| 10f64.powf(-2.0 + 2.0 * r.next_f64()));
    let mut heap = BinaryHeap::new();
    let mut seen = Vec::new();
    for a in 0..n {
        net.push_neighbours(a, &mut heap, &mut seen);
    }
    let mut ssa = Ssa::new();
    let live = |net: &Net, c: &Cand| net.labels[c.1].is_some() && net.labels[c.2].is_some();
    loop {
        let pick = match (rng.as_mut(), temperature) {
            (Some(r), Some(t)) => {
                let mut best: Vec<Cand> = Vec::new();
                while best.len() < 8 {
                    match heap.pop() {
                        Some(Reverse(c)) if live(&net, &c) => best.push(c),
                        Some(_) => {}
                        None => break,
                    }
                }
                if best.is_empty() {
                    None
                } else {
                    let c0 = best[0].0;
                    let scale = t * c0.abs().max(1.0);
                    let w: Vec<f64> = best.iter().map(|c| (-(c.0 - c0) / scale).exp()).collect();
                    let mut u = r.next_f64() * w.iter().sum::<f64>();
                    let mut k = 0;
                    while k + 1 < w.len() && u >= w[k] {
                        u -= w[k];
                        k += 1;
                    }
                    for (j, c) in best.iter().enumerate() {
                        if j != k {
                            heap.push(Reverse(*c));
                        }
                    }
                    Some(best[k])
                }
            }
            _ => loop {
                match heap.pop() {
                    Some(Reverse(c)) if live(&net, &c) => break Some(c),
                    Some(_) => {}
                    None => break None,
                }
            },
        };
        let Some(Cand(_, a, b)) = pick else {
            break;
        };
        ssa.push((a, b));
        let id = net.contract(a, b);
        net.push_neighbours(id, &mut heap, &mut seen);
    }
    // Disconnected parts: outer products, the two smallest operands first.
    loop {
        let mut rest: Vec<(f64, usize)> = (0..net.labels.len())
            .filter_map(|i| net.labels[i].as_deref().map(|ls| (net.size(ls), i)))
            .collect();
        if rest.len() < 2 {
            break;
        }
        rest.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let (a, b) = (rest[0].1.min(rest[1].1), rest[0].1.max(rest[1].1));
        ssa.push((a, b));
        net.contract(a, b);
    }
    ssa
}

/// The multiply-adds of the steps of `ssa` (each the product of the extents of its two
/// operands' labels) and the size of the largest intermediate.
pub(crate) fn path_costs(
    ixs: &[Vec<usize>],
    out: &[usize],
    sizes: &[usize],
    ssa: &Ssa,
) -> (f64, f64) {
    let mut net = Net::new(ixs, out, sizes);
    let (mut flops, mut big) = (0.0, 0.0f64);
    for &(a, b) in ssa {
        flops += net.union(a, b).map(|l| sizes[l] as f64).product::<f64>();
        let id = net.contract(a, b);
        big = big.max(net.size(net.labels[id].as_deref().unwrap_or(&[])));
    }
    (flops, big)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_complete(n: usize, ssa: &Ssa) {
        assert_eq!(ssa.len(), n - 1);
        let mut used = vec![false; n + ssa.len()];
        for (k, &(a, b)) in ssa.iter().enumerate() {
            assert!(a < n + k && b < n + k && a != b);
            assert!(!used[a] && !used[b]);
            used[a] = true;
            used[b] = true;
        }
    }

    #[test]
    fn the_pair_removing_most_memory_goes_first() {
        // A(10×10) B(10×1000) C(1000×10) -> 10×10: B·C removes 1000·10·2 - 100 elements,
        // A·B only 100; then A meets the product.
        let ixs = vec![vec![0, 1], vec![1, 2], vec![2, 3]];
        let sizes = [10, 10, 1000, 10];
        let ssa = greedy(&ixs, &[0, 3], &sizes, None);
        check_complete(3, &ssa);
        assert_eq!(ssa, vec![(1, 2), (0, 3)]);
        // Equal costs go by operand id: A(2×100) B(100×100) C(100×2) ties A·B with B·C.
        let ssa = greedy(&ixs, &[0, 3], &[2, 100, 100, 2], None);
        assert_eq!(ssa, vec![(0, 1), (2, 3)]);
    }

    #[test]
    fn same_network_same_plan_and_seeds_are_reproducible() {
        // A ring of 12 tensors with mixed bond sizes.
        let n = 12;
        let ixs: Vec<Vec<usize>> = (0..n).map(|i| vec![i, (i + 1) % n]).collect();
        let sizes: Vec<usize> = (0..n).map(|i| 2 + (i * 7) % 5).collect();
        let a = greedy(&ixs, &[], &sizes, None);
        check_complete(n, &a);
        assert_eq!(a, greedy(&ixs, &[], &sizes, None));
        for seed in 0..4 {
            let s = greedy(&ixs, &[], &sizes, Some(seed));
            check_complete(n, &s);
            assert_eq!(s, greedy(&ixs, &[], &sizes, Some(seed)));
        }
    }

    #[test]
    fn disconnected_operands_are_multiplied_smallest_first() {
        let ixs = vec![vec![0], vec![1], vec![2]];
        let sizes = [50, 3, 4];
        let ssa = greedy(&ixs, &[0, 1, 2], &sizes, None);
        assert_eq!(ssa, vec![(1, 2), (0, 3)]);
    }
}
