//! Optimizers against hand-computed updates, traced (in a compiled step with the learning
//! rate and step count as inputs) and eager.

use tenferro::cpu::CpuBackend;
use tenferro::optim::{self, eager, Adam, AdamState, Sgd};
use tenferro::runtime::{Jit, Params, RuntimeError};
use tenferro::{Tensor, TracedTensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_vec_col_major(vec![v.len()], v.to_vec()).unwrap()
}

fn vals(p: &Params<Tensor>, n: &str) -> Vec<f64> {
    p.require(n).unwrap().to_vec::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-14 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

fn params() -> Params<Tensor> {
    Params::new()
        .with("w", t(&[1.0, 2.0]))
        .with("b", t(&[-0.5]))
}

fn grads(k: usize) -> Params<Tensor> {
    let s = k as f64 + 1.0;
    Params::new()
        .with("w", t(&[0.5 * s, -1.0]))
        .with("b", t(&[0.25 / s]))
}

#[test]
fn sgd_plain_momentum_nesterov_eager() {
    for (mu, nesterov) in [(0.0, false), (0.9, false), (0.9, true)] {
        let opt = Sgd {
            momentum: mu,
            nesterov,
            weight_decay: 0.01,
        };
        let mut p = params();
        let mut v = p.map(|_, x| Tensor::zeros(&x.ty()));
        // hand-computed reference
        let mut hp: Vec<Vec<f64>> = vec![vals(&p, "b"), vals(&p, "w")];
        let mut hv = vec![vec![0.0], vec![0.0, 0.0]];
        for k in 0..3 {
            let lr = 0.1 / (k as f64 + 1.0);
            let g = grads(k);
            for (i, n) in ["b", "w"].iter().enumerate() {
                for j in 0..hp[i].len() {
                    let gj = vals(&g, n)[j] + 0.01 * hp[i][j];
                    let step = if mu != 0.0 {
                        hv[i][j] = mu * hv[i][j] + gj;
                        if nesterov {
                            gj + mu * hv[i][j]
                        } else {
                            hv[i][j]
                        }
                    } else {
                        gj
                    };
                    hp[i][j] -= lr * step;
                }
            }
            (p, v) = eager::sgd(&opt, &p, &g, &v, lr).unwrap();
            close(&vals(&p, "b"), &hp[0]);
            close(&vals(&p, "w"), &hp[1]);
        }
    }
}

fn adam_reference(opt: &Adam, steps: usize, lrs: &[f64]) -> Vec<Vec<f64>> {
    let mut hp: Vec<Vec<f64>> = vec![vec![-0.5], vec![1.0, 2.0]];
    let mut m = vec![vec![0.0], vec![0.0, 0.0]];
    let mut v = m.clone();
    for k in 0..steps {
        let g = grads(k);
        let t = (k + 1) as i32;
        for (i, n) in ["b", "w"].iter().enumerate() {
            for j in 0..hp[i].len() {
                let mut gj = vals(&g, n)[j];
                if !opt.decoupled {
                    gj += opt.weight_decay * hp[i][j];
                }
                m[i][j] = opt.beta1 * m[i][j] + (1.0 - opt.beta1) * gj;
                v[i][j] = opt.beta2 * v[i][j] + (1.0 - opt.beta2) * gj * gj;
                let mh = m[i][j] / (1.0 - opt.beta1.powi(t));
                let vh = v[i][j] / (1.0 - opt.beta2.powi(t));
                let mut step = mh / (vh.sqrt() + opt.eps);
                if opt.decoupled {
                    step += opt.weight_decay * hp[i][j];
                }
                hp[i][j] -= lrs[k] * step;
            }
        }
    }
    hp
}

#[test]
fn adam_and_adamw_eager() {
    let lrs = [0.1, 0.05, 0.02, 0.01];
    for opt in [
        Adam::default(),
        Adam::adamw(0.1),
        Adam {
            weight_decay: 0.1,
            ..Adam::default()
        },
    ] {
        let mut p = params();
        let mut s = AdamState::init_host(&p);
        for (k, &lr) in lrs.iter().enumerate() {
            (p, s) = eager::adam(&opt, &p, &grads(k), &s, lr).unwrap();
        }
        assert_eq!(s.step.to_vec::<f64>().unwrap(), vec![4.0]);
        let want = adam_reference(&opt, 4, &lrs);
        close(&vals(&p, "b"), &want[0]);
        close(&vals(&p, "w"), &want[1]);
    }
}

#[test]
fn adam_in_a_compiled_step_with_runtime_lr_and_step() {
    let opt = Adam::adamw(0.05);
    // the whole state is one Params argument; lr is a further input
    let mut step = Jit::new(
        CpuBackend::new(),
        |all: &Params<TracedTensor>, xs: &[TracedTensor]| {
            let p = optim::unpack(all, "p");
            let g = optim::unpack(all, "g");
            let st = AdamState {
                step: all["step"].clone(),
                m: optim::unpack(all, "m"),
                v: optim::unpack(all, "v"),
            };
            let (p, s) = opt.update(&p, &g, &st, &xs[0])?;
            let mut out = optim::pack(&[("p", &p), ("m", &s.m), ("v", &s.v)]);
            out.insert("step", s.step);
            Ok::<_, RuntimeError>((out, vec![]))
        },
    );
    let lrs = [0.0123, 0.0456, 0.0789];
    let mut p = params();
    let mut s = AdamState::init_host(&p);
    for (k, &lr) in lrs.iter().enumerate() {
        let mut all = optim::pack(&[("p", &p), ("g", &grads(k)), ("m", &s.m), ("v", &s.v)]);
        all.insert("step", s.step.clone());
        let (out, _) = step.call_params(&all, &[Tensor::scalar(lr)]).unwrap();
        p = optim::unpack(&out, "p");
        s = AdamState {
            step: out.require("step").unwrap().clone(),
            m: optim::unpack(&out, "m"),
            v: optim::unpack(&out, "v"),
        };
    }
    // the learning rate and the step count are inputs: one trace for all steps
    assert_eq!(step.stats().traces, 1);
    let want = adam_reference(&opt, 3, &lrs);
    close(&vals(&p, "b"), &want[0]);
    close(&vals(&p, "w"), &want[1]);
    // and the lowered program has no constant holding a learning rate
    let text = step.last_program().unwrap().to_string();
    assert!(
        !text.contains("0.0123") && !text.contains("0.0456"),
        "{text}"
    );
}

#[test]
fn f32_parameters_stay_f32() {
    let p = Params::new().with(
        "w",
        Tensor::from_vec_col_major(vec![2], vec![1.0_f32, 2.0]).unwrap(),
    );
    let g = Params::new().with(
        "w",
        Tensor::from_vec_col_major(vec![2], vec![1.0_f32, -1.0]).unwrap(),
    );
    let (np, s) = eager::adam(&Adam::default(), &p, &g, &AdamState::init_host(&p), 0.1).unwrap();
    assert_eq!(np.require("w").unwrap().dtype(), tenferro::DType::F32);
    assert_eq!(s.m.require("w").unwrap().dtype(), tenferro::DType::F32);
    let w = np.require("w").unwrap().as_slice::<f32>().unwrap();
    // the first Adam step moves each weight by lr·sign(g) (up to ε)
    assert!(
        (w[0] - 0.9).abs() < 1e-6 && (w[1] - 2.1).abs() < 1e-6,
        "{w:?}"
    );
}

#[test]
fn clipping() {
    let mut clip = Jit::new(
        CpuBackend::new(),
        |g: &Params<TracedTensor>, xs: &[TracedTensor]| {
            let by_norm = optim::clip_by_global_norm(g, &xs[0])?;
            let by_value = optim::clip_by_value(g, -3.5, 1.0)?;
            Ok::<_, RuntimeError>((
                optim::pack(&[("n", &by_norm), ("v", &by_value)]),
                vec![optim::global_norm(g)?],
            ))
        },
    );
    let g = Params::new()
        .with("a", t(&[3.0]))
        .with("b", t(&[0.0, -4.0]));
    let (out, norm) = clip.call_params(&g, &[Tensor::scalar(1.0)]).unwrap();
    assert_eq!(norm[0].to_vec::<f64>().unwrap(), vec![5.0]);
    close(&vals(&out, "n/a"), &[0.6]);
    close(&vals(&out, "n/b"), &[0.0, -0.8]);
    close(&vals(&out, "v/a"), &[1.0]);
    close(&vals(&out, "v/b"), &[0.0, -3.5]);
    // below the threshold: unchanged
    let (out, _) = clip.call_params(&g, &[Tensor::scalar(10.0)]).unwrap();
    close(&vals(&out, "n/b"), &[0.0, -4.0]);
    assert_eq!(clip.stats().traces, 1);
}
