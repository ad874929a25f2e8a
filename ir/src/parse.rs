//! Text form parser: reads what [`crate::print()`] writes back into a [`Function`].
//!
//! [`parse()`] checks syntax, names (every `%name` is defined once, before its uses) and
//! attributes (each core op gets exactly the attributes it takes, of the right kind), but
//! not types: broken IR can be written as text and handed to [`crate::verify()`].
//! [`parse_and_verify`] does both. Value names may be any `%name` (letters, digits, `_`,
//! `.`); values are renumbered in definition order. `//` starts a comment. An
//! instruction's operands begin on the line of its op name.
//!
//! The result types after `:` may be omitted for core ops: they are then inferred, and an
//! op that does not type-check is an error. A constant's result type defaults to its own
//! type, an iota's `type` attribute to its result type, and an extension op's declared
//! result types (`<...>`) to its recorded ones.

use crate::dtype::{DType, TensorType};
use crate::error::IrError;
use crate::function::{Function, Value};
use crate::infer::infer_types;
use crate::op::{Attr, BinaryOp, CmpOp, DotDims, ExtensionOp, Op, ReduceOp, UnaryOp};
use crate::tensor::{Data, Tensor};
use num_complex::{Complex32, Complex64};
use std::collections::{BTreeMap, HashMap};

/// Parses the text form of a function (see [`crate::print()`]); errors are
/// [`IrError::Parse`] with the line they were found on.
pub fn parse(text: &str) -> Result<Function, IrError> {
    let toks = lex(text)?;
    let last_line = toks.last().map_or(1, |t| t.line);
    Parser {
        toks,
        pos: 0,
        last_line,
        names: HashMap::new(),
    }
    .function()
}

/// [`parse()`], then [`crate::verify::verify`] the result.
pub fn parse_and_verify(text: &str) -> Result<Function, IrError> {
    let f = parse(text)?;
    crate::verify::verify(&f)?;
    Ok(f)
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// Identifiers, keywords, numbers, dtypes (`func`, `add`, `-1.5e-3`, `f64`).
    Word(String),
    /// `%name`.
    Val(String),
    /// `@name` or `@"name"`.
    At(String),
    /// `"..."` with escapes resolved.
    Str(String),
    Punct(char),
    Arrow,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Val(v) => format!("`%{v}`"),
            Tok::At(a) => format!("`@{a}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Arrow => "`->`".into(),
        }
    }
}

struct Token {
    tok: Tok,
    line: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.')
}

fn lex_error<T>(line: usize, message: impl Into<String>) -> Result<T, IrError> {
    Err(IrError::Parse {
        line,
        message: message.into(),
    })
}

fn lex(text: &str) -> Result<Vec<Token>, IrError> {
    let cs: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        let next = cs.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < cs.len() && cs[i] != '\n' {
                i += 1;
            }
        } else if c == '-' && next == Some('>') {
            toks.push(Token {
                tok: Tok::Arrow,
                line,
            });
            i += 2;
        } else if c == '"' {
            let (s, end) = lex_string(&cs, i, line)?;
            toks.push(Token {
                tok: Tok::Str(s),
                line,
            });
            i = end;
        } else if c == '%' || c == '@' {
            let start = i + 1;
            if c == '@' && next == Some('"') {
                let (s, end) = lex_string(&cs, start, line)?;
                toks.push(Token {
                    tok: Tok::At(s),
                    line,
                });
                i = end;
                continue;
            }
            let mut j = start;
            while j < cs.len() && is_name_char(cs[j]) {
                j += 1;
            }
            if j == start {
                return lex_error(line, format!("expected a name after `{c}`"));
            }
            let name: String = cs[start..j].iter().collect();
            toks.push(Token {
                tok: if c == '%' {
                    Tok::Val(name)
                } else {
                    Tok::At(name)
                },
                line,
            });
            i = j;
        } else if is_word_char(c) {
            let mut j = i;
            while j < cs.len()
                && is_word_char(cs[j])
                && !(cs[j] == '-' && cs.get(j + 1) == Some(&'>'))
            {
                j += 1;
            }
            toks.push(Token {
                tok: Tok::Word(cs[i..j].iter().collect()),
                line,
            });
            i = j;
        } else if "()[]{},:=<>".contains(c) {
            toks.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        } else {
            return lex_error(line, format!("unexpected character {c:?}"));
        }
    }
    Ok(toks)
}

/// Reads the string literal whose opening quote is at `cs[start]`; returns its value and
/// the index after the closing quote. Escapes: `\\ \" \' \n \r \t \0 \u{hex}`.
fn lex_string(cs: &[char], start: usize, line: usize) -> Result<(String, usize), IrError> {
    let mut s = String::new();
    let mut i = start + 1;
    loop {
        match cs.get(i) {
            None | Some('\n') => return lex_error(line, "unterminated string literal"),
            Some('"') => return Ok((s, i + 1)),
            Some('\\') => {
                let esc = cs.get(i + 1).copied();
                i += 2;
                match esc {
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('\'') => s.push('\''),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('0') => s.push('\0'),
                    Some('u') => {
                        if cs.get(i) != Some(&'{') {
                            return lex_error(line, "expected `{` after `\\u` in a string");
                        }
                        let close = (i..cs.len()).find(|&k| cs[k] == '}' || cs[k] == '\n');
                        let Some(close) = close.filter(|&k| cs[k] == '}') else {
                            return lex_error(line, "unterminated `\\u{...}` escape");
                        };
                        let hex: String = cs[i + 1..close].iter().collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) => s.push(ch),
                            None => {
                                return lex_error(
                                    line,
                                    format!("bad unicode escape `\\u{{{hex}}}`"),
                                )
                            }
                        }
                        i = close + 1;
                    }
                    Some(e) => {
                        return lex_error(line, format!("unknown escape `\\{e}` in a string"))
                    }
                    None => return lex_error(line, "unterminated string literal"),
                }
            }
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

/// An attribute value as written, before the op says what kind it needs.
#[derive(Clone, Debug)]
enum AttrVal {
    Int(i64),
    Ints(Vec<i64>),
    Float(f64),
    Str(String),
    Bool(bool),
    Ident(String),
    Type(TensorType),
}

impl AttrVal {
    fn kind(&self) -> &'static str {
        match self {
            AttrVal::Int(_) => "an integer",
            AttrVal::Ints(_) => "an integer list",
            AttrVal::Float(_) => "a float",
            AttrVal::Str(_) => "a string",
            AttrVal::Bool(_) => "a bool",
            AttrVal::Ident(_) => "a name",
            AttrVal::Type(_) => "a type",
        }
    }
}

/// The attributes of one instruction, consumed by name as the op is built.
struct Attrs {
    op: String,
    line: usize,
    items: BTreeMap<String, AttrVal>,
}

impl Attrs {
    fn err<T>(&self, message: String) -> Result<T, IrError> {
        lex_error(self.line, format!("{}: {message}", self.op))
    }

    fn take(&mut self, key: &str) -> Result<AttrVal, IrError> {
        match self.items.remove(key) {
            Some(v) => Ok(v),
            None => self.err(format!("missing attribute `{key}`")),
        }
    }

    fn usize_of(&self, key: &str, x: i64) -> Result<usize, IrError> {
        usize::try_from(x).or_else(|_| {
            self.err(format!(
                "attribute `{key}`: expected a non-negative integer, got {x}"
            ))
        })
    }

    fn usize(&mut self, key: &str) -> Result<usize, IrError> {
        match self.take(key)? {
            AttrVal::Int(x) => self.usize_of(key, x),
            v => self.err(format!(
                "attribute `{key}`: expected an integer, got {}",
                v.kind()
            )),
        }
    }

    fn usizes(&mut self, key: &str) -> Result<Vec<usize>, IrError> {
        match self.take(key)? {
            AttrVal::Ints(xs) => xs.into_iter().map(|x| self.usize_of(key, x)).collect(),
            v => self.err(format!(
                "attribute `{key}`: expected an integer list like [0, 1], got {}",
                v.kind()
            )),
        }
    }

    fn usizes_or_empty(&mut self, key: &str) -> Result<Vec<usize>, IrError> {
        if self.items.contains_key(key) {
            self.usizes(key)
        } else {
            Ok(Vec::new())
        }
    }

    /// A bool attribute, `false` when absent.
    fn bool_or_false(&mut self, key: &str) -> Result<bool, IrError> {
        match self.items.remove(key) {
            None => Ok(false),
            Some(AttrVal::Bool(b)) => Ok(b),
            Some(v) => self.err(format!(
                "attribute `{key}`: expected true or false, got {}",
                v.kind()
            )),
        }
    }

    fn ident(&mut self, key: &str) -> Result<String, IrError> {
        match self.take(key)? {
            AttrVal::Ident(s) => Ok(s),
            v => self.err(format!(
                "attribute `{key}`: expected a name, got {}",
                v.kind()
            )),
        }
    }

    fn string(&mut self, key: &str) -> Result<String, IrError> {
        match self.take(key)? {
            AttrVal::Str(s) => Ok(s),
            v => self.err(format!(
                "attribute `{key}`: expected a string like \"text\", got {}",
                v.kind()
            )),
        }
    }

    fn ty(&mut self, key: &str) -> Result<TensorType, IrError> {
        match self.take(key)? {
            AttrVal::Type(t) => Ok(t),
            v => self.err(format!(
                "attribute `{key}`: expected a type like f64[2,3], got {}",
                v.kind()
            )),
        }
    }

    /// An error for any attribute the op did not take.
    fn finish(self) -> Result<(), IrError> {
        match self.items.keys().next() {
            Some(k) => self.err(format!("unknown attribute `{k}`")),
            None => Ok(()),
        }
    }
}

/// How an instruction's op is named: a core op or an extension.
enum OpName {
    Core(CoreKind),
    Extension(String),
}

/// A core op's identity before its attributes are read.
#[derive(Clone, Copy, Debug)]
enum CoreKind {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Reduce(ReduceOp),
    Cumulative(ReduceOp),
    Argsort,
    Barrier,
    Compare,
    Select,
    DotGeneral,
    Transpose,
    Reshape,
    BroadcastInDim,
    Slice,
    Pad,
    Concatenate,
    Gather,
    ScatterAdd,
    Convert,
    Iota,
    Constant,
}

fn core_kind(name: &str) -> Option<CoreKind> {
    if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == name) {
        return Some(CoreKind::Unary(u));
    }
    if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == name) {
        return Some(CoreKind::Binary(b));
    }
    if let Some(r) = ReduceOp::ALL.into_iter().find(|r| r.name() == name) {
        return Some(CoreKind::Reduce(r));
    }
    if let Some(r) = ReduceOp::ALL
        .into_iter()
        .find(|r| r.cumulative_name() == name)
    {
        return Some(CoreKind::Cumulative(r));
    }
    Some(match name {
        "compare" => CoreKind::Compare,
        "select" => CoreKind::Select,
        "dot_general" => CoreKind::DotGeneral,
        "transpose" => CoreKind::Transpose,
        "reshape" => CoreKind::Reshape,
        "broadcast_in_dim" => CoreKind::BroadcastInDim,
        "slice" => CoreKind::Slice,
        "pad" => CoreKind::Pad,
        "concatenate" => CoreKind::Concatenate,
        "gather" => CoreKind::Gather,
        "scatter_add" => CoreKind::ScatterAdd,
        "convert" => CoreKind::Convert,
        "iota" => CoreKind::Iota,
        "constant" => CoreKind::Constant,
        "argsort" => CoreKind::Argsort,
        "barrier" => CoreKind::Barrier,
        _ => return None,
    })
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    last_line: usize,
    names: HashMap<String, Value>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.pos + k).map(|t| &t.tok)
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).map_or(self.last_line, |t| t.line)
    }

    /// The line of the last token read.
    fn prev_line(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|p| self.toks.get(p))
            .map_or(1, |t| t.line)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, IrError> {
        lex_error(self.line(), message)
    }

    fn found(&self) -> String {
        self.peek()
            .map_or_else(|| "end of input".to_string(), Tok::describe)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.is_punct(c);
        if yes {
            self.pos += 1;
        }
        yes
    }

    fn expect_punct(&mut self, c: char, context: &str) -> Result<(), IrError> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.err(format!("expected `{c}` {context}, found {}", self.found()))
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn word(&mut self, what: &str) -> Result<String, IrError> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.err(format!("expected {what}, found {}", self.found())),
        }
    }

    fn function(mut self) -> Result<Function, IrError> {
        if !self.is_word("func") {
            return self.err(format!("expected `func`, found {}", self.found()));
        }
        self.pos += 1;
        let name = match self.peek() {
            Some(Tok::At(n)) => {
                let n = n.clone();
                self.pos += 1;
                n
            }
            _ => {
                return self.err(format!(
                    "expected the function name `@name`, found {}",
                    self.found()
                ));
            }
        };
        let mut f = Function::new(name);
        self.expect_punct('(', "before the parameters")?;
        if !self.eat_punct(')') {
            loop {
                let pname = self.value_name("a parameter name")?;
                self.expect_punct(':', "after a parameter name")?;
                let ty = self.ty()?;
                let name = match self.eat_punct('{') {
                    true => Some(self.param_name()?),
                    false => None,
                };
                let v = f.add_named_param(ty, name);
                self.define(pname, v)?;
                if self.eat_punct(')') {
                    break;
                }
                self.expect_punct(',', "between parameters")?;
            }
        }
        if self.peek() != Some(&Tok::Arrow) {
            return self.err(format!(
                "expected `->` and the output types, found {}",
                self.found()
            ));
        }
        self.pos += 1;
        self.expect_punct('(', "before the output types")?;
        let sig_line = self.line();
        let mut out_types = Vec::new();
        if !self.eat_punct(')') {
            loop {
                out_types.push(self.ty()?);
                if self.eat_punct(')') {
                    break;
                }
                self.expect_punct(',', "between output types")?;
            }
        }
        self.expect_punct('{', "before the function body")?;
        loop {
            match self.peek() {
                Some(Tok::Word(w)) if w == "return" => break,
                Some(Tok::Val(_)) | Some(Tok::Word(_)) => self.instruction(&mut f)?,
                _ => {
                    return self.err(format!(
                        "expected an instruction or `return`, found {}",
                        self.found()
                    ))
                }
            }
        }
        let ret_line = self.line();
        self.pos += 1;
        let mut outs = Vec::new();
        if matches!(self.peek(), Some(Tok::Val(_))) {
            loop {
                outs.push(self.operand()?);
                if !self.eat_punct(',') {
                    break;
                }
            }
        }
        self.expect_punct('}', "after `return`")?;
        if self.peek().is_some() {
            return self.err(format!("unexpected {} after the function", self.found()));
        }
        if outs.len() != out_types.len() {
            return lex_error(
                ret_line,
                format!(
                    "`return` has {} value(s) but the signature (line {sig_line}) declares {} output type(s)",
                    outs.len(),
                    out_types.len()
                ),
            );
        }
        for (k, (&o, t)) in outs.iter().zip(&out_types).enumerate() {
            if f.ty(o) != t {
                return lex_error(
                    ret_line,
                    format!(
                        "output {k} has type {} but the signature declares {t}",
                        f.ty(o)
                    ),
                );
            }
        }
        f.set_outputs(outs);
        Ok(f)
    }

    /// The rest of a parameter's `{name = "..."}` after the `{`.
    fn param_name(&mut self) -> Result<String, IrError> {
        if !self.is_word("name") {
            return self.err(format!(
                "expected `name = \"...\"` in a parameter's braces, found {}",
                self.found()
            ));
        }
        self.pos += 1;
        self.expect_punct('=', "after `name`")?;
        let name = match self.peek() {
            Some(Tok::Str(s)) => s.clone(),
            _ => {
                return self.err(format!(
                    "expected a string after `name =`, found {}",
                    self.found()
                ))
            }
        };
        self.pos += 1;
        self.expect_punct('}', "after a parameter's name")?;
        Ok(name)
    }

    fn value_name(&mut self, what: &str) -> Result<String, IrError> {
        match self.peek() {
            Some(Tok::Val(n)) => {
                let n = n.clone();
                self.pos += 1;
                Ok(n)
            }
            _ => self.err(format!("expected {what} `%name`, found {}", self.found())),
        }
    }

    fn define(&mut self, name: String, v: Value) -> Result<(), IrError> {
        if self.names.contains_key(&name) {
            return self.err(format!("%{name} is defined twice"));
        }
        self.names.insert(name, v);
        Ok(())
    }

    fn operand(&mut self) -> Result<Value, IrError> {
        let line = self.line();
        let name = self.value_name("a value")?;
        match self.names.get(&name) {
            Some(&v) => Ok(v),
            None => lex_error(
                line,
                format!("use of undefined value %{name} (values must be defined before their use)"),
            ),
        }
    }

    fn ty(&mut self) -> Result<TensorType, IrError> {
        let w = self.word("a type like f64[2,3]")?;
        let Some(dtype) = DType::from_name(&w) else {
            self.pos -= 1;
            return self.err(format!(
                "unknown dtype `{w}` (expected one of f32, f64, c32, c64, i32, i64, bool)"
            ));
        };
        self.expect_punct(
            '[',
            &format!("after dtype `{w}` (a type is written f64[2,3])"),
        )?;
        let mut shape = Vec::new();
        if !self.eat_punct(']') {
            loop {
                let d = self.word("a dimension size")?;
                match d.parse::<usize>() {
                    Ok(n) => shape.push(n),
                    Err(_) => {
                        self.pos -= 1;
                        return self.err(format!("bad dimension size `{d}` in a type"));
                    }
                }
                if self.eat_punct(']') {
                    break;
                }
                self.expect_punct(',', "between dimension sizes")?;
            }
        }
        let ty = TensorType::new(dtype, shape);
        if crate::infer::checked_numel(&ty.shape).is_none() {
            self.pos -= 1;
            return self.err(format!("type {ty} has more elements than fit in memory"));
        }
        Ok(ty)
    }

    fn type_list(&mut self, close: Option<char>) -> Result<Vec<TensorType>, IrError> {
        let mut tys = Vec::new();
        if let Some(c) = close {
            if self.eat_punct(c) {
                return Ok(tys);
            }
        }
        loop {
            tys.push(self.ty()?);
            if !self.eat_punct(',') {
                break;
            }
        }
        if let Some(c) = close {
            self.expect_punct(c, "after the types")?;
        }
        Ok(tys)
    }

    fn instruction(&mut self, f: &mut Function) -> Result<(), IrError> {
        let line = self.line();
        let mut result_names = Vec::new();
        if matches!(self.peek(), Some(Tok::Val(_))) {
            loop {
                result_names.push(self.value_name("a result name")?);
                if !self.eat_punct(',') {
                    break;
                }
            }
            self.expect_punct('=', "after the result names")?;
        }
        // The op name.
        let op_name = if self.is_word("ext") && matches!(self.peek_at(1), Some(Tok::Str(_))) {
            self.pos += 1;
            match self.bump() {
                Some(Tok::Str(s)) => OpName::Extension(s),
                _ => return self.err("expected the extension op name"),
            }
        } else {
            let w = self.word("an op name")?;
            match core_kind(&w) {
                Some(k) => OpName::Core(k),
                None if w.contains('.') => OpName::Extension(w),
                None => {
                    self.pos -= 1;
                    return self.err(format!(
                        "unknown op `{w}` (extension ops are named `family.op`)"
                    ));
                }
            }
        };
        let display_name = match &op_name {
            OpName::Core(_) => match self.toks.get(self.pos - 1).map(|t| &t.tok) {
                Some(Tok::Word(w)) => w.clone(),
                _ => String::new(),
            },
            OpName::Extension(n) => n.clone(),
        };
        // Declared result types of an extension op.
        let mut declared = None;
        if self.is_punct('<') {
            if !matches!(op_name, OpName::Extension(_)) {
                return self.err(format!(
                    "{display_name}: only extension ops declare result types in `<...>`"
                ));
            }
            self.pos += 1;
            declared = Some(self.type_list(Some('>'))?);
        }
        let mut attrs = Attrs {
            op: display_name.clone(),
            line: self.line(),
            items: BTreeMap::new(),
        };
        if self.eat_punct('{') {
            self.attributes(&mut attrs)?;
        }
        let constant = if matches!(op_name, OpName::Core(CoreKind::Constant)) {
            Some(self.constant_value()?)
        } else {
            None
        };
        // Operands start on the line of the op (a `%name` on a later line begins the
        // next instruction); after a `,` they may continue on the next line.
        let mut args = Vec::new();
        if matches!(self.peek(), Some(Tok::Val(_))) && self.line() == self.prev_line() {
            loop {
                args.push(self.operand()?);
                if !self.eat_punct(',') {
                    break;
                }
            }
        }
        let written_types = if self.eat_punct(':') {
            Some(self.type_list(None)?)
        } else {
            None
        };
        if let Some(tys) = &written_types {
            if tys.len() != result_names.len() {
                return lex_error(
                    line,
                    format!(
                        "{display_name}: {} result name(s) but {} result type(s)",
                        result_names.len(),
                        tys.len()
                    ),
                );
            }
        }
        let op = match op_name {
            OpName::Extension(name) => {
                let results = match (declared, &written_types) {
                    (Some(d), _) => d,
                    (None, Some(w)) => w.clone(),
                    (None, None) if result_names.is_empty() => Vec::new(),
                    (None, None) => {
                        return lex_error(
                            line,
                            format!("{name}: an extension op needs its result types after `:`"),
                        )
                    }
                };
                let mut e = ExtensionOp::new(name, results);
                for (k, v) in std::mem::take(&mut attrs.items) {
                    let a = match v {
                        AttrVal::Bool(b) => Attr::Bool(b),
                        AttrVal::Int(i) => Attr::Int(i),
                        AttrVal::Ints(xs) => Attr::Ints(xs),
                        AttrVal::Float(x) => Attr::FloatBits(x.to_bits()),
                        AttrVal::Str(s) => Attr::Str(s),
                        v => {
                            return attrs.err(format!(
                                "attribute `{k}`: extension attributes are bools, integers, integer lists, floats or strings, not {}",
                                v.kind()
                            ))
                        }
                    };
                    e.attrs.insert(k, a);
                }
                Op::Extension(e)
            }
            OpName::Core(kind) => {
                let op = core_op(kind, &mut attrs, constant, written_types.as_deref())?;
                attrs.finish()?;
                op
            }
        };
        let results = match written_types {
            Some(t) => t,
            None => {
                let tys: Vec<&TensorType> = args.iter().map(|&a| f.ty(a)).collect();
                let inferred = infer_types(&op, &tys).or_else(|e| {
                    lex_error(
                        line,
                        format!("cannot infer the result types (write them after `:`): {e}"),
                    )
                })?;
                if inferred.len() != result_names.len() {
                    return lex_error(
                        line,
                        format!(
                            "{display_name}: {} result name(s) but the op produces {} result(s)",
                            result_names.len(),
                            inferred.len()
                        ),
                    );
                }
                inferred
            }
        };
        let vals = f.push_unchecked(op, args, results);
        for (name, v) in result_names.into_iter().zip(vals) {
            if self.names.contains_key(&name) {
                return lex_error(line, format!("%{name} is defined twice"));
            }
            self.names.insert(name, v);
        }
        Ok(())
    }

    /// `key = value, ...}` (the `{` is already read).
    fn attributes(&mut self, attrs: &mut Attrs) -> Result<(), IrError> {
        if self.eat_punct('}') {
            return Ok(());
        }
        loop {
            let key = match self.peek() {
                Some(Tok::Word(w)) | Some(Tok::Str(w)) => {
                    let w = w.clone();
                    self.pos += 1;
                    w
                }
                _ => {
                    return self.err(format!(
                        "expected an attribute name, found {}",
                        self.found()
                    ));
                }
            };
            self.expect_punct('=', &format!("after attribute name `{key}`"))?;
            let v = self.attr_value()?;
            if attrs.items.insert(key.clone(), v).is_some() {
                return self.err(format!("attribute `{key}` is given twice"));
            }
            if self.eat_punct('}') {
                return Ok(());
            }
            self.expect_punct(',', "between attributes")?;
        }
    }

    fn attr_value(&mut self) -> Result<AttrVal, IrError> {
        match self.peek().cloned() {
            Some(Tok::Punct('[')) => {
                self.pos += 1;
                let mut xs = Vec::new();
                if !self.eat_punct(']') {
                    loop {
                        let w = self.word("an integer")?;
                        match w.parse::<i64>() {
                            Ok(x) => xs.push(x),
                            Err(_) => {
                                self.pos -= 1;
                                return self.err(format!("expected an integer, found `{w}`"));
                            }
                        }
                        if self.eat_punct(']') {
                            break;
                        }
                        self.expect_punct(',', "between list elements")?;
                    }
                }
                Ok(AttrVal::Ints(xs))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(AttrVal::Str(s))
            }
            Some(Tok::Word(w)) => {
                if DType::from_name(&w).is_some() && self.peek_at(1) == Some(&Tok::Punct('[')) {
                    return Ok(AttrVal::Type(self.ty()?));
                }
                if w == "nan" && self.peek_at(1) == Some(&Tok::Punct('(')) {
                    return Ok(AttrVal::Float(self.f64_literal()?));
                }
                self.pos += 1;
                Ok(match w.as_str() {
                    "true" => AttrVal::Bool(true),
                    "false" => AttrVal::Bool(false),
                    _ => {
                        if let Ok(i) = w.parse::<i64>() {
                            AttrVal::Int(i)
                        } else if let Ok(x) = w.parse::<f64>() {
                            AttrVal::Float(x)
                        } else {
                            AttrVal::Ident(w)
                        }
                    }
                })
            }
            _ => self.err(format!(
                "expected an attribute value, found {}",
                self.found()
            )),
        }
    }

    /// `nan(0x...)` for an exact NaN; otherwise a decimal float word.
    fn nan_bits(&mut self, width: usize) -> Result<Option<u64>, IrError> {
        if !(self.is_word("nan") && self.peek_at(1) == Some(&Tok::Punct('('))) {
            return Ok(None);
        }
        self.pos += 2;
        let w = self.word("NaN bits like 0x7ff8000000000000")?;
        let bits = w
            .strip_prefix("0x")
            .filter(|h| h.len() <= width / 4)
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        let Some(bits) = bits else {
            self.pos -= 1;
            return self.err(format!(
                "bad NaN bits `{w}` (expected {}-bit hex like 0x...)",
                width
            ));
        };
        self.expect_punct(')', "after NaN bits")?;
        Ok(Some(bits))
    }

    fn f64_literal(&mut self) -> Result<f64, IrError> {
        if let Some(bits) = self.nan_bits(64)? {
            let x = f64::from_bits(bits);
            if !x.is_nan() {
                return self.err(format!("nan(0x{bits:016x}) is not a NaN bit pattern"));
            }
            return Ok(x);
        }
        let w = self.word("an f64 number")?;
        w.parse::<f64>().or_else(|_| {
            self.pos -= 1;
            self.err(format!("bad f64 literal `{w}`"))
        })
    }

    fn f32_literal(&mut self) -> Result<f32, IrError> {
        if let Some(bits) = self.nan_bits(32)? {
            let x = f32::from_bits(bits as u32);
            if !x.is_nan() {
                return self.err(format!("nan(0x{bits:08x}) is not an f32 NaN bit pattern"));
            }
            return Ok(x);
        }
        let w = self.word("an f32 number")?;
        w.parse::<f32>().or_else(|_| {
            self.pos -= 1;
            self.err(format!("bad f32 literal `{w}`"))
        })
    }

    /// An integer element of dtype `name` (`i32` or `i64`); out-of-range values are an
    /// error naming the literal.
    fn int_literal<T: std::str::FromStr>(&mut self, name: &str) -> Result<T, IrError> {
        let w = self.word(&format!("an {name} number"))?;
        w.parse::<T>().or_else(|_| {
            self.pos -= 1;
            self.err(format!("bad {name} literal `{w}`"))
        })
    }

    fn complex_parts<T>(
        &mut self,
        mut part: impl FnMut(&mut Self) -> Result<T, IrError>,
    ) -> Result<(T, T), IrError> {
        self.expect_punct('(', "before a complex element `(re, im)`")?;
        let re = part(self)?;
        self.expect_punct(',', "between the parts of a complex element")?;
        let im = part(self)?;
        self.expect_punct(')', "after a complex element")?;
        Ok((re, im))
    }

    /// `TYPE [e0, e1, ...]` of a constant, elements in column-major order.
    fn constant_value(&mut self) -> Result<Tensor, IrError> {
        let line = self.line();
        let ty = self.ty()?;
        self.expect_punct('[', "before the constant's elements")?;
        let Some(n) = ty.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
            return lex_error(line, format!("constant type {ty} has too many elements"));
        };
        let mut data = Data::zeros(ty.dtype, 0);
        let mut count = 0;
        if !self.eat_punct(']') {
            loop {
                match &mut data {
                    Data::F32(v) => v.push(self.f32_literal()?),
                    Data::F64(v) => v.push(self.f64_literal()?),
                    Data::C32(v) => {
                        let (re, im) = self.complex_parts(Self::f32_literal)?;
                        v.push(Complex32::new(re, im))
                    }
                    Data::C64(v) => {
                        let (re, im) = self.complex_parts(Self::f64_literal)?;
                        v.push(Complex64::new(re, im))
                    }
                    Data::I32(v) => v.push(self.int_literal::<i32>("i32")?),
                    Data::I64(v) => v.push(self.int_literal::<i64>("i64")?),
                    Data::Bool(v) => {
                        let w = self.word("true or false")?;
                        match w.as_str() {
                            "true" => v.push(true),
                            "false" => v.push(false),
                            _ => {
                                self.pos -= 1;
                                return self.err(format!("bad bool literal `{w}`"));
                            }
                        }
                    }
                }
                count += 1;
                if self.eat_punct(']') {
                    break;
                }
                self.expect_punct(',', "between constant elements")?;
            }
        }
        if count != n {
            return lex_error(
                line,
                format!("constant of type {ty} needs {n} element(s), got {count}"),
            );
        }
        Tensor::new(ty.shape, data).or_else(|e| lex_error(line, e.to_string()))
    }
}

/// Builds a core op from its attributes (consuming them from `attrs`).
fn core_op(
    kind: CoreKind,
    attrs: &mut Attrs,
    constant: Option<Tensor>,
    written_types: Option<&[TensorType]>,
) -> Result<Op, IrError> {
    Ok(match kind {
        CoreKind::Unary(u) => Op::Unary(u),
        CoreKind::Binary(b) => Op::Binary(b),
        CoreKind::Select => Op::Select,
        CoreKind::Compare => {
            let d = attrs.ident("dir")?;
            match CmpOp::ALL.into_iter().find(|c| c.name() == d) {
                Some(c) => Op::Compare(c),
                None => {
                    return attrs.err(format!(
                        "unknown comparison direction `{d}` (expected eq, ne, lt, le, gt or ge)"
                    ))
                }
            }
        }
        CoreKind::Reduce(r) => Op::Reduce {
            kind: r,
            axes: attrs.usizes("axes")?,
        },
        CoreKind::Cumulative(r) => Op::Cumulative {
            kind: r,
            axis: attrs.usize("axis")?,
            reverse: attrs.bool_or_false("reverse")?,
        },
        CoreKind::Barrier => Op::Barrier {
            label: attrs.string("label")?,
        },
        CoreKind::Argsort => Op::Argsort {
            axis: attrs.usize("axis")?,
            descending: attrs.bool_or_false("descending")?,
        },
        CoreKind::DotGeneral => Op::DotGeneral(DotDims {
            lhs_contract: attrs.usizes("lhs_contract")?,
            rhs_contract: attrs.usizes("rhs_contract")?,
            lhs_batch: attrs.usizes_or_empty("lhs_batch")?,
            rhs_batch: attrs.usizes_or_empty("rhs_batch")?,
        }),
        CoreKind::Transpose => Op::Transpose {
            perm: attrs.usizes("perm")?,
        },
        CoreKind::Reshape => Op::Reshape {
            shape: attrs.usizes("shape")?,
        },
        CoreKind::BroadcastInDim => Op::BroadcastInDim {
            shape: attrs.usizes("shape")?,
            dims: attrs.usizes("dims")?,
        },
        CoreKind::Slice => Op::Slice {
            starts: attrs.usizes("starts")?,
            limits: attrs.usizes("limits")?,
        },
        CoreKind::Pad => Op::Pad {
            low: attrs.usizes("low")?,
            high: attrs.usizes("high")?,
        },
        CoreKind::Concatenate => Op::Concatenate {
            axis: attrs.usize("axis")?,
        },
        CoreKind::Gather => Op::Gather {
            axis: attrs.usize("axis")?,
        },
        CoreKind::ScatterAdd => Op::ScatterAdd {
            axis: attrs.usize("axis")?,
        },
        CoreKind::Convert => {
            let to = attrs.ident("to")?;
            match DType::from_name(&to) {
                Some(d) => Op::Convert { to: d },
                None => {
                    return attrs.err(format!(
                        "unknown dtype `{to}` (expected one of f32, f64, c32, c64, i32, i64, bool)"
                    ))
                }
            }
        }
        CoreKind::Iota => {
            let dim = attrs.usize("dim")?;
            let ty = if attrs.items.contains_key("type") {
                attrs.ty("type")?
            } else {
                match written_types {
                    Some([t]) => t.clone(),
                    _ => {
                        return attrs.err(
                            "needs its type: write it after `:` or as attribute `type`".into(),
                        )
                    }
                }
            };
            Op::Iota { ty, dim }
        }
        CoreKind::Constant => match constant {
            Some(t) => Op::Constant(t),
            None => return attrs.err("missing the constant's value".into()),
        },
    })
}
