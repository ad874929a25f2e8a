//! checkpoint (rematerialisation): the gradient of a deep tanh MLP with a checkpoint every
//! √L layers equals the plain gradient bit for bit at default options, and its memory plan
//! peaks far lower, because only segment inputs are kept for the backward pass.

use tenferro_ad::AdContext;
use tenferro_cpu::CpuBackend;
use tenferro_runtime::ir::{parse, print};
use tenferro_runtime::{GraphCompiler, GraphExecutor, Tensor, TracedTensor};

const LAYERS: usize = 64;
const SEGMENT: usize = 8; // √64
const WIDTH: usize = 32;
const BATCH: usize = 512;

fn det(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

struct Mlp {
    x: TracedTensor,
    ws: Vec<TracedTensor>,
}

fn mlp() -> Mlp {
    let x = TracedTensor::from_vec_col_major(vec![WIDTH, BATCH], det(1, WIDTH * BATCH, 1.0));
    let ws = (0..LAYERS)
        .map(|l| {
            let scale = 1.5 / (WIDTH as f64).sqrt();
            TracedTensor::from_vec_col_major(
                vec![WIDTH, WIDTH],
                det(10 + l as u64, WIDTH * WIDTH, scale),
            )
        })
        .collect();
    Mlp { x, ws }
}

fn layer(w: &TracedTensor, h: &TracedTensor) -> TracedTensor {
    w.matmul(h).unwrap().tanh()
}

/// `Σ h_L²` of the plain network, or with each segment of `SEGMENT` layers checkpointed.
fn loss(ad: &AdContext, m: &Mlp, checkpointed: bool) -> TracedTensor {
    let mut h = m.x.clone();
    if checkpointed {
        let seg = ad.checkpoint("mlp_segment", |a: &[TracedTensor]| {
            let mut h = a[0].clone();
            for w in &a[1..] {
                h = layer(w, &h);
            }
            Ok(vec![h])
        });
        for s in 0..LAYERS / SEGMENT {
            let mut args: Vec<&TracedTensor> = vec![&h];
            args.extend(m.ws[s * SEGMENT..(s + 1) * SEGMENT].iter());
            h = seg.call1(&args).unwrap();
        }
    } else {
        for w in &m.ws {
            h = layer(w, &h);
        }
    }
    (&h * &h).sum()
}

fn grads(ad: &AdContext, m: &Mlp, checkpointed: bool) -> Vec<TracedTensor> {
    let l = loss(ad, m, checkpointed);
    let mut xs: Vec<&TracedTensor> = vec![&m.x];
    xs.extend(m.ws.iter());
    let g = ad.grad_many(&l, &xs).unwrap();
    // Outputs in the user's order (dx, dW_1, ..., dW_64). The depth-first order of the
    // traced program would compute every weight gradient at the end and keep each layer's
    // activation alive until then; the `reorder` pass (O1 and O2) schedules each weight
    // gradient as soon as its operands exist.
    let mut out = vec![l];
    out.extend(g);
    out
}

#[test]
fn checkpointed_mlp_gradient_is_bit_identical_and_peaks_lower() {
    let ad = AdContext::new();
    let m = mlp();
    let mut peaks = Vec::new();
    let mut results: Vec<Vec<Tensor>> = Vec::new();
    for checkpointed in [false, true] {
        let g = grads(&ad, &m, checkpointed);
        let refs: Vec<&TracedTensor> = g.iter().collect();
        let program = GraphCompiler::new().compile_many(&refs).unwrap();
        let text = print(program.function());
        let remat = text.matches("label = \"ad.remat\"").count();
        if checkpointed {
            // one barrier per segment input (h and its 8 weights), tying it to the cotangent
            assert_eq!(
                remat,
                (LAYERS / SEGMENT) * (SEGMENT + 1),
                "{remat} ad.remat barriers"
            );
            let again = print(&parse(&text).unwrap());
            assert_eq!(again, text, "barrier text round trip");
        } else {
            assert_eq!(remat, 0);
        }
        let mut ex = GraphExecutor::new(CpuBackend::new());
        peaks.push(ex.prepare(&program).unwrap().peak_bytes());
        results.push(ex.run_many(&program).unwrap());
    }
    eprintln!(
        "peak bytes of loss + gradient, {LAYERS}-layer tanh MLP, width {WIDTH}, batch {BATCH}: \
         plain {} B, checkpoint every {SEGMENT} layers {} B ({:.2}x less)",
        peaks[0],
        peaks[1],
        peaks[0] as f64 / peaks[1] as f64
    );
    assert!(
        peaks[1] * 3 < peaks[0],
        "checkpointing every {SEGMENT} layers should cut the peak of the full gradient at \
         least threefold: {} vs {}",
        peaks[1],
        peaks[0]
    );
    for (k, (a, b)) in results[0].iter().zip(&results[1]).enumerate() {
        assert!(
            a.bits_eq(b),
            "output #{k} differs between plain and checkpointed"
        );
    }
    // Gradient with respect to the input only: the clean demonstration of remat.
    let mut px = Vec::new();
    for checkpointed in [false, true] {
        let l = loss(&ad, &m, checkpointed);
        let g = ad.grad(&l, &m.x).unwrap();
        let program = GraphCompiler::new().compile(&g).unwrap();
        let mut ex = GraphExecutor::new(CpuBackend::new());
        px.push(ex.prepare(&program).unwrap().peak_bytes());
    }
    eprintln!(
        "peak bytes of the gradient with respect to x only: plain {} B, checkpointed {} B ({:.2}x less)",
        px[0],
        px[1],
        px[0] as f64 / px[1] as f64
    );
    let act = WIDTH * BATCH * 8;
    assert!(
        px[0] > LAYERS * act / 2,
        "plain peak {} too low to be meaningful",
        px[0]
    );
    assert!(
        px[1] * 3 < px[0],
        "checkpointing should cut the peak at least threefold: {} vs {}",
        px[1],
        px[0]
    );
}

#[test]
fn checkpoint_forward_mode_and_second_order_match_the_plain_function() {
    let ad = AdContext::new();
    let f = ad.checkpoint("sin_exp", |a: &[TracedTensor]| {
        Ok(vec![&a[0].sin() * &a[1].exp()])
    });
    let x = TracedTensor::from_vec_col_major(vec![3], vec![0.5_f64, -1.0, 2.0]);
    let y = TracedTensor::from_vec_col_major(vec![3], vec![0.1_f64, 0.2, -0.3]);
    let c = f.call1(&[&x, &y]).unwrap().sum();
    let p = (&x.sin() * &y.exp()).sum();
    let ones = TracedTensor::full(&x.ty().unwrap(), 1.0);
    let mut outs = Vec::new();
    for l in [&c, &p] {
        let g = ad.grad_many(l, &[&x, &y]).unwrap();
        let hvp = ad.jvp(&g[0], &x, &ones).unwrap();
        let gg = ad.grad(&g[1].sum(), &x).unwrap();
        let fwd = ad.jvp(l, &y, &ones).unwrap();
        let h = ad.hessian(l, &x).unwrap();
        let refs = [&g[0], &g[1], &hvp, &gg, &fwd, &h];
        let program = GraphCompiler::new().compile_many(&refs).unwrap();
        outs.push(
            GraphExecutor::new(CpuBackend::new())
                .run_many(&program)
                .unwrap(),
        );
    }
    for (k, (a, b)) in outs[0].iter().zip(&outs[1]).enumerate() {
        let (a, b) = (a.as_slice::<f64>().unwrap(), b.as_slice::<f64>().unwrap());
        for (u, v) in a.iter().zip(b) {
            assert!(
                (u - v).abs() <= 1e-15 * (1.0 + v.abs()),
                "output {k}: {a:?} vs {b:?}"
            );
        }
    }
}

#[test]
fn checkpoint_differentiates_captured_values() {
    let ad = AdContext::new();
    let w = TracedTensor::from_vec_col_major(vec![2], vec![3.0_f64, -2.0]);
    let wc = w.clone();
    let f = ad.checkpoint("scale", move |a: &[TracedTensor]| {
        Ok(vec![(&a[0] * &wc).sin()])
    });
    let x = TracedTensor::from_vec_col_major(vec![2], vec![0.25_f64, 0.5]);
    let l = f.call1(&[&x]).unwrap().sum();
    let g = ad.grad(&l, &w).unwrap();
    let program = GraphCompiler::new().compile(&g).unwrap();
    let got = GraphExecutor::new(CpuBackend::new()).run(&program).unwrap();
    let got = got.as_slice::<f64>().unwrap();
    // d/dw sin(x w) = x cos(x w)
    let want = [0.25 * (0.75_f64).cos(), 0.5 * (-1.0_f64).cos()];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-15, "{got:?} vs {want:?}");
    }
}
