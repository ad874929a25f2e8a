//! A small s-expression form of functions, so rule tests read in one line:
//! `parse_function("x:f64[2,3]", &["(neg (neg x))"])`.
//!
//! - Parameters: `name:dtype[d0,d1,..]`, separated by spaces.
//! - Scalar constants: `1.5:f64`, `-0.0:f32`, `3:i64`, `3:i32`, `true:bool`, complex `re|im:c64`.
//! - Ops: `(head arg..)` where head is the op name followed by `:`-separated attributes,
//!   each a comma-separated list: `transpose:1,0`, `reshape:6`, `broadcast:2,3:1`
//!   (shape, dims), `reduce_sum:0`, `convert:f32`, `dot:1:0::` (lhs/rhs contract,
//!   lhs/rhs batch), `slice:starts:limits`, `pad:low:high`, `concatenate:axis`,
//!   `gather:axis`, `scatter_add:axis`, `iota:dtype:shape:dim`, comparisons by direction
//!   (`lt`), and `opaque:dtype[shape]`, an extension op `test.opaque` the e-graph cannot see.
//!
//! Equal subexpressions are built once, so the parsed function is already shared.

use std::collections::HashMap;
use tenferro_ir::{
    BinaryOp, CmpOp, DType, DotDims, ExtensionOp, Function, IrError, Op, ReduceOp, Tensor,
    TensorType, UnaryOp, Value,
};

fn perr(message: impl Into<String>) -> IrError {
    IrError::Parse {
        line: 1,
        message: message.into(),
    }
}

/// Parses `dtype[d0,d1,..]`.
pub fn parse_type(s: &str) -> Result<TensorType, IrError> {
    let (d, rest) = s
        .split_once('[')
        .ok_or_else(|| perr(format!("type `{s}`: expected dtype[dims]")))?;
    let dtype = DType::from_name(d).ok_or_else(|| perr(format!("unknown dtype `{d}`")))?;
    let dims = rest
        .strip_suffix(']')
        .ok_or_else(|| perr(format!("type `{s}`: missing `]`")))?;
    Ok(TensorType::new(dtype, list(dims)?))
}

fn list(s: &str) -> Result<Vec<usize>, IrError> {
    s.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.trim()
                .parse()
                .map_err(|_| perr(format!("`{t}` is not an axis or size")))
        })
        .collect()
}

fn scalar(s: &str) -> Result<Option<Tensor>, IrError> {
    let Some((v, d)) = s.rsplit_once(':') else {
        return Ok(None);
    };
    let Some(dtype) = DType::from_name(d) else {
        return Ok(None);
    };
    let num = |t: &str| {
        t.parse::<f64>()
            .map_err(|_| perr(format!("bad number `{t}`")))
    };
    Ok(Some(match dtype {
        DType::F32 => Tensor::scalar(num(v)? as f32),
        DType::F64 => Tensor::scalar(num(v)?),
        DType::C32 | DType::C64 => {
            let (re, im) = v.split_once('|').unwrap_or((v, "0"));
            let (re, im) = (num(re)?, num(im)?);
            if dtype == DType::C32 {
                Tensor::scalar(num_complex::Complex32::new(re as f32, im as f32))
            } else {
                Tensor::scalar(num_complex::Complex64::new(re, im))
            }
        }
        DType::I32 => Tensor::scalar(
            v.parse::<i32>()
                .map_err(|_| perr(format!("bad i32 integer `{v}`")))?,
        ),
        DType::I64 => Tensor::scalar(
            v.parse::<i64>()
                .map_err(|_| perr(format!("bad integer `{v}`")))?,
        ),
        DType::Bool => Tensor::scalar(v == "true"),
    }))
}

fn head_op(head: &str) -> Result<Op, IrError> {
    let mut parts = head.split(':');
    let name = parts.next().unwrap_or_default();
    let attrs: Vec<&str> = parts.collect();
    let a = |i: usize| {
        attrs
            .get(i)
            .copied()
            .ok_or_else(|| perr(format!("`{head}`: missing attribute {i}")))
    };
    if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == name) {
        return Ok(Op::Unary(u));
    }
    if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == name) {
        return Ok(Op::Binary(b));
    }
    if let Some(c) = CmpOp::ALL.into_iter().find(|c| c.name() == name) {
        return Ok(Op::Compare(c));
    }
    if let Some(kind) = ReduceOp::ALL.into_iter().find(|r| r.name() == name) {
        return Ok(Op::Reduce {
            kind,
            axes: list(a(0)?)?,
        });
    }
    let one = |s: &str| -> Result<usize, IrError> {
        s.parse()
            .map_err(|_| perr(format!("`{head}`: `{s}` is not an axis")))
    };
    let flag = |s: &str| -> Result<bool, IrError> {
        s.parse()
            .map_err(|_| perr(format!("`{head}`: `{s}` is not true or false")))
    };
    if let Some(kind) = ReduceOp::ALL
        .into_iter()
        .find(|r| r.cumulative_name() == name)
    {
        return Ok(Op::Cumulative {
            kind,
            axis: one(a(0)?)?,
            reverse: flag(a(1)?)?,
        });
    }
    Ok(match name {
        "select" => Op::Select,
        "transpose" => Op::Transpose { perm: list(a(0)?)? },
        "reshape" => Op::Reshape {
            shape: list(a(0)?)?,
        },
        "broadcast" => Op::BroadcastInDim {
            shape: list(a(0)?)?,
            dims: list(a(1)?)?,
        },
        "slice" => Op::Slice {
            starts: list(a(0)?)?,
            limits: list(a(1)?)?,
        },
        "pad" => Op::Pad {
            low: list(a(0)?)?,
            high: list(a(1)?)?,
        },
        "concatenate" => Op::Concatenate { axis: one(a(0)?)? },
        "gather" => Op::Gather { axis: one(a(0)?)? },
        "argsort" => Op::Argsort {
            axis: one(a(0)?)?,
            descending: flag(a(1)?)?,
        },
        "scatter_add" => Op::ScatterAdd { axis: one(a(0)?)? },
        "convert" => Op::Convert {
            to: DType::from_name(a(0)?).ok_or_else(|| perr(format!("`{head}`: unknown dtype")))?,
        },
        "dot" => Op::DotGeneral(DotDims {
            lhs_contract: list(a(0)?)?,
            rhs_contract: list(a(1)?)?,
            lhs_batch: list(a(2)?)?,
            rhs_batch: list(a(3)?)?,
        }),
        "iota" => {
            let dtype =
                DType::from_name(a(0)?).ok_or_else(|| perr(format!("`{head}`: unknown dtype")))?;
            Op::Iota {
                ty: TensorType::new(dtype, list(a(1)?)?),
                dim: one(a(2)?)?,
            }
        }
        "opaque" => Op::Extension(ExtensionOp::new("test.opaque", vec![parse_type(a(0)?)?])),
        other => return Err(perr(format!("unknown op `{other}`"))),
    })
}

enum Tok {
    Open,
    Close,
    Atom(String),
}

fn tokens(s: &str) -> Vec<Tok> {
    let spaced = s.replace('(', " ( ").replace(')', " ) ");
    spaced
        .split_whitespace()
        .map(|t| match t {
            "(" => Tok::Open,
            ")" => Tok::Close,
            a => Tok::Atom(a.to_string()),
        })
        .collect()
}

struct Builder<'a> {
    f: &'a mut Function,
    names: HashMap<String, Value>,
    memo: HashMap<(Op, Vec<Value>), Value>,
}

impl Builder<'_> {
    fn push(&mut self, op: Op, args: Vec<Value>) -> Result<Value, IrError> {
        let extension = matches!(op, Op::Extension(_));
        if !extension {
            if let Some(&v) = self.memo.get(&(op.clone(), args.clone())) {
                return Ok(v);
            }
        }
        let v = self.f.push1(op.clone(), &args)?;
        if !extension {
            self.memo.insert((op, args), v);
        }
        Ok(v)
    }

    fn expr(&mut self, toks: &[Tok], i: &mut usize) -> Result<Value, IrError> {
        match toks.get(*i) {
            Some(Tok::Atom(a)) => {
                *i += 1;
                if let Some(&v) = self.names.get(a) {
                    return Ok(v);
                }
                match scalar(a)? {
                    Some(t) => self.push(Op::Constant(t), vec![]),
                    None => Err(perr(format!("unknown name `{a}`"))),
                }
            }
            Some(Tok::Open) => {
                *i += 1;
                let Some(Tok::Atom(head)) = toks.get(*i) else {
                    return Err(perr("expected an op name after `(`"));
                };
                let op = head_op(head)?;
                *i += 1;
                let mut args = vec![];
                loop {
                    match toks.get(*i) {
                        Some(Tok::Close) => {
                            *i += 1;
                            break;
                        }
                        None => return Err(perr("missing `)`")),
                        _ => args.push(self.expr(toks, i)?),
                    }
                }
                self.push(op, args)
            }
            Some(Tok::Close) => Err(perr("unexpected `)`")),
            None => Err(perr("unexpected end of expression")),
        }
    }
}

/// Builds a function named `f` with the declared parameters whose outputs are `exprs`.
pub fn parse_function(params: &str, exprs: &[&str]) -> Result<Function, IrError> {
    let mut f = Function::new("f");
    let mut names = HashMap::new();
    for decl in params.split_whitespace() {
        let (name, ty) = decl
            .split_once(':')
            .ok_or_else(|| perr(format!("parameter `{decl}`: expected name:dtype[dims]")))?;
        names.insert(name.to_string(), f.add_param(parse_type(ty)?));
    }
    let mut b = Builder {
        f: &mut f,
        names,
        memo: HashMap::new(),
    };
    let mut outputs = vec![];
    for e in exprs {
        let toks = tokens(e);
        let mut i = 0;
        outputs.push(b.expr(&toks, &mut i)?);
        if i != toks.len() {
            return Err(perr(format!(
                "trailing input after the expression in `{e}`"
            )));
        }
    }
    f.set_outputs(outputs);
    Ok(f)
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn head(op: &Op) -> String {
    match op {
        Op::Compare(c) => c.name().to_string(),
        Op::Reduce { kind, axes } => format!("{}:{}", kind.name(), join(axes)),
        Op::Transpose { perm } => format!("transpose:{}", join(perm)),
        Op::Reshape { shape } => format!("reshape:{}", join(shape)),
        Op::BroadcastInDim { shape, dims } => format!("broadcast:{}:{}", join(shape), join(dims)),
        Op::Slice { starts, limits } => format!("slice:{}:{}", join(starts), join(limits)),
        Op::Pad { low, high } => format!("pad:{}:{}", join(low), join(high)),
        Op::Concatenate { axis } => format!("concatenate:{axis}"),
        Op::Gather { axis } => format!("gather:{axis}"),
        Op::Argsort { axis, descending } => format!("argsort:{axis}:{descending}"),
        Op::Cumulative {
            kind,
            axis,
            reverse,
        } => format!("{}:{axis}:{reverse}", kind.cumulative_name()),
        Op::ScatterAdd { axis } => format!("scatter_add:{axis}"),
        Op::Convert { to } => format!("convert:{to}"),
        Op::DotGeneral(d) => format!(
            "dot:{}:{}:{}:{}",
            join(&d.lhs_contract),
            join(&d.rhs_contract),
            join(&d.lhs_batch),
            join(&d.rhs_batch)
        ),
        Op::Iota { ty, dim } => format!("iota:{}:{}:{dim}", ty.dtype, join(&ty.shape)),
        other => other.name().to_string(),
    }
}

/// Prints each output of `f` as an s-expression (parameters as `p0, p1, ..`, results of
/// extension ops as `%n`, constants as `const:type`). Shared subterms are printed at each use.
pub fn to_sexprs(f: &Function) -> Vec<String> {
    fn go(f: &Function, v: Value, s: &mut String) {
        match f.def(v) {
            tenferro_ir::ValueDef::Param(i) => s.push_str(&format!("p{i}")),
            tenferro_ir::ValueDef::Inst { inst, .. } => {
                let inst = &f.insts()[inst];
                match &inst.op {
                    Op::Extension(_) | Op::Barrier { .. } => s.push_str(&v.to_string()),
                    Op::Constant(t) if t.numel() == 1 => {
                        let c = t.data().get_c64(0);
                        if t.dtype().is_complex() {
                            s.push_str(&format!("{}|{}:{}", c.re, c.im, t.dtype()));
                        } else {
                            s.push_str(&format!("{:?}:{}", c.re, t.dtype()));
                        }
                    }
                    Op::Constant(t) => s.push_str(&format!("const:{}", t.ty())),
                    op => {
                        s.push('(');
                        s.push_str(&head(op));
                        for &a in &inst.args {
                            s.push(' ');
                            go(f, a, s);
                        }
                        s.push(')');
                    }
                }
            }
        }
    }
    f.outputs()
        .iter()
        .map(|&o| {
            let mut s = String::new();
            go(f, o, &mut s);
            s
        })
        .collect()
}
