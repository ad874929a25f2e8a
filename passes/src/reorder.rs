//! Memory-aware instruction order: a list scheduler that runs, among the instructions whose
//! operands are ready, the one that frees the most bytes net of what it allocates, and keeps
//! the new order only when it lowers the peak of live bytes.
//!
//! Values never change, only the order in which they are computed, so results are bit for
//! bit those of the input function. The liveness model is the IR's: a parameter is live
//! from the start, an instruction's results from the instruction on, and a value dies after
//! its last use unless it is an output. Backends that plan memory per program (the CPU
//! memory plan) follow program order, so a lower IR peak is a lower planned peak in the
//! cases that matter: reverse-mode programs whose depth-first order computes every
//! weight gradient at the end, keeping all activations alive.

use crate::pipeline::{PassError, PassStats};
use crate::rebuild::Rebuild;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tenferro_ir::{Function, Value};

/// Per-value facts the scheduler needs.
struct Graph {
    /// Bytes of each value.
    size: Vec<usize>,
    /// The instruction defining each value (`None` for parameters).
    producer: Vec<Option<usize>>,
    /// Distinct consuming instructions of each value.
    consumers: Vec<Vec<usize>>,
    /// Whether each value is a program output (never freed).
    output: Vec<bool>,
    /// Distinct operands of each instruction.
    operands: Vec<Vec<Value>>,
}

impl Graph {
    fn new(f: &Function) -> Result<Graph, PassError> {
        let n = f.num_values();
        let bad = |v: Value| PassError::Failed {
            pass: "reorder".to_string(),
            message: format!("value {v} is not in function `{}`", f.name),
        };
        let mut size = vec![0usize; n];
        for (i, s) in size.iter_mut().enumerate() {
            *s = f
                .try_ty(Value::from_index(i))
                .map(|t| t.size_bytes())
                .unwrap_or(0);
        }
        let mut producer = vec![None; n];
        let mut consumers = vec![Vec::new(); n];
        let mut operands = Vec::with_capacity(f.insts().len());
        for (i, inst) in f.insts().iter().enumerate() {
            for &r in &inst.results {
                *producer.get_mut(r.index()).ok_or_else(|| bad(r))? = Some(i);
            }
            let mut ops: Vec<Value> = Vec::with_capacity(inst.args.len());
            for &a in &inst.args {
                if a.index() >= n {
                    return Err(bad(a));
                }
                if !ops.contains(&a) {
                    ops.push(a);
                    consumers[a.index()].push(i);
                }
            }
            operands.push(ops);
        }
        let mut output = vec![false; n];
        for &o in f.outputs() {
            *output.get_mut(o.index()).ok_or_else(|| bad(o))? = true;
        }
        Ok(Graph {
            size,
            producer,
            consumers,
            output,
            operands,
        })
    }

    /// Peak live bytes when the instructions run in `order`.
    fn peak(&self, f: &Function, order: &[usize]) -> usize {
        let mut remaining: Vec<usize> = self.consumers.iter().map(Vec::len).collect();
        let mut live: usize = f.params().iter().map(|p| self.size[p.index()]).sum();
        let mut peak = live;
        for &i in order {
            let inst = &f.insts()[i];
            for &r in &inst.results {
                live = live.saturating_add(self.size[r.index()]);
            }
            peak = peak.max(live);
            for &a in &self.operands[i] {
                remaining[a.index()] -= 1;
                if remaining[a.index()] == 0 && !self.output[a.index()] {
                    live = live.saturating_sub(self.size[a.index()]);
                }
            }
            for &r in &inst.results {
                if remaining[r.index()] == 0 && !self.output[r.index()] {
                    live = live.saturating_sub(self.size[r.index()]);
                }
            }
        }
        peak
    }
}

/// The greedy order: at every step the ready instruction with the largest
/// `freed - allocated`, ties to the earliest in the input order.
fn greedy_order(f: &Function, g: &Graph) -> Vec<usize> {
    let insts = f.insts();
    let n = insts.len();
    let mut remaining: Vec<usize> = g.consumers.iter().map(Vec::len).collect();
    let mut pending: Vec<usize> = (0..n)
        .map(|i| {
            g.operands[i]
                .iter()
                .filter(|a| g.producer[a.index()].is_some())
                .count()
        })
        .collect();
    let mut done = vec![false; n];
    let mut version = vec![0u32; n];
    let score = |i: usize, remaining: &[usize]| -> i64 {
        let freed: usize = g.operands[i]
            .iter()
            .filter(|a| remaining[a.index()] == 1 && !g.output[a.index()])
            .map(|a| g.size[a.index()])
            .sum();
        let alloc: usize = insts[i].results.iter().map(|r| g.size[r.index()]).sum();
        freed as i64 - alloc as i64
    };
    let mut heap: BinaryHeap<(i64, Reverse<usize>, u32)> = BinaryHeap::new();
    for (i, _) in pending.iter().enumerate().filter(|(_, &p)| p == 0) {
        heap.push((score(i, &remaining), Reverse(i), 0));
    }
    let mut order = Vec::with_capacity(n);
    while let Some((_, Reverse(i), ver)) = heap.pop() {
        if done[i] || ver != version[i] {
            continue;
        }
        done[i] = true;
        order.push(i);
        for &a in &g.operands[i] {
            remaining[a.index()] -= 1;
            if remaining[a.index()] == 1 && !g.output[a.index()] {
                // The last consumer left now frees `a`: its score rises.
                if let Some(&j) = g.consumers[a.index()].iter().find(|&&j| !done[j]) {
                    if pending[j] == 0 {
                        version[j] += 1;
                        heap.push((score(j, &remaining), Reverse(j), version[j]));
                    }
                }
            }
        }
        for &r in &insts[i].results {
            for &j in &g.consumers[r.index()] {
                pending[j] -= 1;
                if pending[j] == 0 {
                    version[j] += 1;
                    heap.push((score(j, &remaining), Reverse(j), version[j]));
                }
            }
        }
    }
    order
}

/// Reorders `f`'s instructions when that lowers its peak of live bytes. Counters:
/// `peak_before`, `peak_after` (bytes; equal when the order is kept).
pub fn run(f: &mut Function) -> Result<PassStats, PassError> {
    let g = Graph::new(f)?;
    let input: Vec<usize> = (0..f.insts().len()).collect();
    let before = g.peak(f, &input);
    let order = greedy_order(f, &g);
    if order.len() != input.len() {
        return Err(PassError::Failed {
            pass: "reorder".to_string(),
            message: format!(
                "function `{}` has a use before its definition or a cycle",
                f.name
            ),
        });
    }
    let after = g.peak(f, &order);
    if after >= before {
        return Ok(PassStats {
            changed: false,
            counters: vec![
                ("peak_before", before as u64),
                ("peak_after", before as u64),
            ],
        });
    }
    let mut r = Rebuild::new(f, "reorder");
    for &i in &order {
        let inst = &f.insts()[i];
        let args = r.args(inst)?;
        r.emit(inst, inst.op.clone(), args);
    }
    *f = r.finish()?;
    Ok(PassStats {
        changed: true,
        counters: vec![("peak_before", before as u64), ("peak_after", after as u64)],
    })
}
