//! A native evaluator for the conditions most rules are made of: comparisons, `&&`, `||`, `!`
//! and double arithmetic over `signal.*` / `baseline.*` numbers and literals, for example
//! `signal.observed > baseline.upper && baseline.score > 0.9`.
//!
//! Such a condition is compiled a second time into a small tree that reads the evidence
//! structs directly, with no CEL values built and no interpreter dispatch. Anything outside
//! the subset keeps only its CEL program. The subset is chosen so both give the same answer:
//! * numbers compare across int, uint and double, as CEL does;
//! * arithmetic is accepted only between doubles (CEL refuses `2 * 1.5`, so that condition
//!   is left to CEL, which reports the error);
//! * no division (CEL errors on integer division by zero);
//! * if any number read is NaN, the fast result is not used and CEL decides (NaN
//!   comparisons are CEL's to define).
//!
//! `rules/tests.rs` tests both evaluators against each other on the default packs' conditions.
//!
//! `Match` below does the same for `match` conditions over the suggestion.

use cel::common::ast::{operators, Expr, IdedExpr, LiteralValue};

use crate::evidence::{BaselineView, SignalView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Num {
    Double,
    Integer,
}

#[derive(Debug, Clone, Copy)]
pub enum Field {
    Signal(fn(&SignalView) -> f64, Num),
    Baseline(fn(&BaselineView) -> f64, Num),
    Ready,
}

#[derive(Debug, Clone)]
pub enum Fast {
    Bool(bool),
    Num(f64, Num),
    Field(Field),
    Not(Box<Fast>),
    Neg(Box<Fast>),
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Cmp(Cmp, Box<Fast>, Box<Fast>),
    Arith(Arith, Box<Fast>, Box<Fast>),
}

#[derive(Debug, Clone, Copy)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy)]
pub enum Arith {
    Add,
    Sub,
    Mul,
}

fn signal_field(name: &str) -> Option<Field> {
    use Num::*;
    let f: (fn(&SignalView) -> f64, Num) = match name {
        "observed" => (|s| s.observed, Double),
        "mean" => (|s| s.mean, Double),
        "max" => (|s| s.max, Double),
        "min" => (|s| s.min, Double),
        "last" => (|s| s.last, Double),
        "window_s" => (|s| s.window_s, Double),
        "samples" => (|s| s.samples as f64, Integer),
        _ => return None,
    };
    Some(Field::Signal(f.0, f.1))
}

fn baseline_field(name: &str) -> Option<Field> {
    use Num::*;
    let f: (fn(&BaselineView) -> f64, Num) = match name {
        "ready" => return Some(Field::Ready),
        "freshness_s" => (|b| b.freshness_s, Double),
        "history" => (|b| b.history as f64, Integer),
        "expected" => (|b| b.expected, Double),
        "sigma" => (|b| b.sigma, Double),
        "lower" => (|b| b.lower, Double),
        "upper" => (|b| b.upper, Double),
        "z" => (|b| b.z, Double),
        "score" => (|b| b.score, Double),
        "raw_score" => (|b| b.raw_score, Double),
        "max_point_score" => (|b| b.max_point_score, Double),
        "max_raw_score" => (|b| b.max_raw_score, Double),
        "max_z" => (|b| b.max_z, Double),
        "min_z" => (|b| b.min_z, Double),
        "mean_abs_z" => (|b| b.mean_abs_z, Double),
        "mean_z" => (|b| b.mean_z, Double),
        "median_z" => (|b| b.median_z, Double),
        "prior_points" => (|b| b.prior_points as f64, Integer),
        "prior_abs_z_p50" => (|b| b.prior_abs_z_p50, Double),
        "prior_abs_z_p90" => (|b| b.prior_abs_z_p90, Double),
        "prior_abs_z_p99" => (|b| b.prior_abs_z_p99, Double),
        "prior_abs_z_p995" => (|b| b.prior_abs_z_p995, Double),
        "prior_windows" => (|b| b.prior_windows as f64, Integer),
        "p_up" => (|b| b.p_up, Double),
        "p_down" => (|b| b.p_down, Double),
        "p_value" => (|b| b.p_value, Double),
        "level_p_up" => (|b| b.level_p_up, Double),
        "level_p_down" => (|b| b.level_p_down, Double),
        "ratio" => (|b| b.ratio, Double),
        "p50" => (|b| b.p50, Double),
        "p90" => (|b| b.p90, Double),
        "p99" => (|b| b.p99, Double),
        _ => return None,
    };
    Some(Field::Baseline(f.0, f.1))
}

/// What an expression yields, for type checks of the subset.
#[derive(PartialEq)]
enum Ty {
    Bool,
    Num(Num),
}

impl Fast {
    fn ty(&self) -> Ty {
        match self {
            Fast::Bool(_)
            | Fast::Not(_)
            | Fast::And(..)
            | Fast::Or(..)
            | Fast::Cmp(..)
            | Fast::Field(Field::Ready) => Ty::Bool,
            Fast::Num(_, n) => Ty::Num(*n),
            Fast::Field(Field::Signal(_, n) | Field::Baseline(_, n)) => Ty::Num(*n),
            Fast::Neg(x) => x.ty(),
            Fast::Arith(..) => Ty::Num(Num::Double),
        }
    }
}

/// Compiles `e` into the fast subset, or `None` when any part is outside it.
pub fn compile(e: &IdedExpr) -> Option<Fast> {
    let fast = build(e)?;
    (fast.ty() == Ty::Bool).then_some(fast)
}

fn build(e: &IdedExpr) -> Option<Fast> {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(b)) => Some(Fast::Bool((*b).into())),
        Expr::Literal(LiteralValue::Double(d)) => Some(Fast::Num((*d).into(), Num::Double)),
        Expr::Literal(LiteralValue::Int(i)) => {
            let i: i64 = (*i).into();
            Some(Fast::Num(i as f64, Num::Integer)).filter(|_| i.unsigned_abs() < (1 << 53))
        }
        Expr::Select(sel) if !sel.test => match &sel.operand.expr {
            Expr::Ident(root) if root == "signal" => signal_field(&sel.field).map(Fast::Field),
            Expr::Ident(root) if root == "baseline" => baseline_field(&sel.field).map(Fast::Field),
            _ => None,
        },
        Expr::Call(call) if call.target.is_none() => {
            let arg = |i: usize| call.args.get(i).and_then(build).map(Box::new);
            let name = call.func_name.as_str();
            match (name, call.args.len()) {
                (operators::LOGICAL_NOT, 1) => {
                    let a = arg(0)?;
                    (a.ty() == Ty::Bool).then_some(Fast::Not(a))
                }
                (operators::NEGATE, 1) => {
                    let a = arg(0)?;
                    (a.ty() == Ty::Num(Num::Double)).then_some(Fast::Neg(a))
                }
                (operators::LOGICAL_AND | operators::LOGICAL_OR, 2) => {
                    let (a, b) = (arg(0)?, arg(1)?);
                    if a.ty() != Ty::Bool || b.ty() != Ty::Bool {
                        return None;
                    }
                    Some(if name == operators::LOGICAL_AND {
                        Fast::And(a, b)
                    } else {
                        Fast::Or(a, b)
                    })
                }
                (
                    operators::LESS
                    | operators::LESS_EQUALS
                    | operators::GREATER
                    | operators::GREATER_EQUALS
                    | operators::EQUALS
                    | operators::NOT_EQUALS,
                    2,
                ) => {
                    let (a, b) = (arg(0)?, arg(1)?);
                    // Numbers with numbers only (booleans compare with ==/!= in CEL too, but
                    // rules rarely need it: leave them to CEL).
                    if !matches!(a.ty(), Ty::Num(_)) || !matches!(b.ty(), Ty::Num(_)) {
                        return None;
                    }
                    let op = match name {
                        operators::LESS => Cmp::Lt,
                        operators::LESS_EQUALS => Cmp::Le,
                        operators::GREATER => Cmp::Gt,
                        operators::GREATER_EQUALS => Cmp::Ge,
                        operators::EQUALS => Cmp::Eq,
                        _ => Cmp::Ne,
                    };
                    Some(Fast::Cmp(op, a, b))
                }
                (operators::ADD | operators::SUBSTRACT | operators::MULTIPLY, 2) => {
                    let (a, b) = (arg(0)?, arg(1)?);
                    // CEL has no mixed-type arithmetic: only double with double here.
                    if a.ty() != Ty::Num(Num::Double) || b.ty() != Ty::Num(Num::Double) {
                        return None;
                    }
                    let op = match name {
                        operators::ADD => Arith::Add,
                        operators::SUBSTRACT => Arith::Sub,
                        _ => Arith::Mul,
                    };
                    Some(Fast::Arith(op, a, b))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A value while evaluating; `None` from `eval` means "let CEL decide" (a NaN was read).
enum V {
    B(bool),
    N(f64),
}

impl Fast {
    /// Evaluates against the evidence; `None` when a NaN was read (CEL then decides).
    pub fn eval(&self, s: &SignalView, b: &BaselineView) -> Option<bool> {
        match self.value(s, b)? {
            V::B(x) => Some(x),
            V::N(_) => None,
        }
    }

    fn num(&self, s: &SignalView, b: &BaselineView) -> Option<f64> {
        match self.value(s, b)? {
            V::N(x) if !x.is_nan() => Some(x),
            _ => None,
        }
    }

    fn boolean(&self, s: &SignalView, b: &BaselineView) -> Option<bool> {
        match self.value(s, b)? {
            V::B(x) => Some(x),
            V::N(_) => None,
        }
    }

    fn value(&self, s: &SignalView, b: &BaselineView) -> Option<V> {
        Some(match self {
            Fast::Bool(x) => V::B(*x),
            Fast::Num(x, _) => V::N(*x),
            Fast::Field(Field::Signal(f, _)) => V::N(f(s)),
            Fast::Field(Field::Baseline(f, _)) => V::N(f(b)),
            Fast::Field(Field::Ready) => V::B(b.ready),
            Fast::Not(a) => V::B(!a.boolean(s, b)?),
            Fast::Neg(a) => V::N(-a.num(s, b)?),
            // Both sides are error-free here, so CEL's commutative && and || reduce to these.
            Fast::And(x, y) => V::B(x.boolean(s, b)? && y.boolean(s, b)?),
            Fast::Or(x, y) => V::B(x.boolean(s, b)? || y.boolean(s, b)?),
            Fast::Cmp(op, x, y) => {
                let (l, r) = (x.num(s, b)?, y.num(s, b)?);
                V::B(match op {
                    Cmp::Lt => l < r,
                    Cmp::Le => l <= r,
                    Cmp::Gt => l > r,
                    Cmp::Ge => l >= r,
                    Cmp::Eq => l == r,
                    Cmp::Ne => l != r,
                })
            }
            Fast::Arith(op, x, y) => {
                let (l, r) = (x.num(s, b)?, y.num(s, b)?);
                V::N(match op {
                    Arith::Add => l + r,
                    Arith::Sub => l - r,
                    Arith::Mul => l * r,
                })
            }
        })
    }
}

/// A native evaluator for `match` conditions: a suggestion field compared with a string, or
/// looked up in a list of strings, joined by `&&`, `||` and `!`, for example
/// `suggestion.claim.kind == "latency_high" && suggestion.subject["service.name"] in ["a", "b"]`
/// (packs' lists and macros are expanded into such literals before compiling).
///
/// Every rule's `match` is evaluated for every suggestion, so this is most of a decision's
/// work on conditions: here it reads the suggestion's JSON directly. Same rule as above: a
/// field that is absent, or not a string, gives `None` and CEL decides (and reports its error
/// when it has one), so both always agree.
#[derive(Debug, Clone)]
pub enum Match {
    Bool(bool),
    /// A field (its path below `suggestion`) equals, or does not equal, a string.
    Eq(Vec<String>, String),
    Ne(Vec<String>, String),
    /// A field is one of these strings.
    In(Vec<String>, Vec<String>),
    /// `has(suggestion.a.b)`: the field is present.
    Has(Vec<String>),
    Not(Box<Match>),
    And(Box<Match>, Box<Match>),
    Or(Box<Match>, Box<Match>),
}

/// Compiles a `match` condition into the subset, or `None` when any part is outside it.
pub fn compile_match(e: &IdedExpr) -> Option<Match> {
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(b)) => Some(Match::Bool((*b).into())),
        Expr::Select(sel) if sel.test => {
            let mut path = match &sel.operand.expr {
                Expr::Ident(root) if root == "suggestion" => Vec::new(),
                _ => field_path(&sel.operand)?,
            };
            path.push(sel.field.clone());
            Some(Match::Has(path))
        }
        Expr::Call(call) if call.target.is_none() => {
            let name = call.func_name.as_str();
            match (name, &call.args[..]) {
                (operators::LOGICAL_NOT, [a]) => Some(Match::Not(Box::new(compile_match(a)?))),
                (operators::LOGICAL_AND, [a, b]) => Some(Match::And(
                    Box::new(compile_match(a)?),
                    Box::new(compile_match(b)?),
                )),
                (operators::LOGICAL_OR, [a, b]) => Some(Match::Or(
                    Box::new(compile_match(a)?),
                    Box::new(compile_match(b)?),
                )),
                (operators::EQUALS | operators::NOT_EQUALS, [a, b]) => {
                    let (field, text) = match (field_path(a), string_literal(b)) {
                        (Some(f), Some(s)) => (f, s),
                        _ => (field_path(b)?, string_literal(a)?),
                    };
                    Some(if name == operators::EQUALS {
                        Match::Eq(field, text)
                    } else {
                        Match::Ne(field, text)
                    })
                }
                (operators::IN, [a, b]) => {
                    let Expr::List(list) = &b.expr else {
                        return None;
                    };
                    let items = list
                        .elements
                        .iter()
                        .map(string_literal)
                        .collect::<Option<Vec<_>>>()?;
                    Some(Match::In(field_path(a)?, items))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `suggestion.a.b` or `suggestion.a["b"]` as `["a", "b"]`.
fn field_path(e: &IdedExpr) -> Option<Vec<String>> {
    match &e.expr {
        Expr::Select(sel) if !sel.test => {
            let mut path = match &sel.operand.expr {
                Expr::Ident(root) if root == "suggestion" => Vec::new(),
                _ => field_path(&sel.operand)?,
            };
            path.push(sel.field.clone());
            Some(path)
        }
        Expr::Call(call)
            if call.target.is_none()
                && call.func_name == operators::INDEX
                && call.args.len() == 2 =>
        {
            let mut path = field_path(&call.args[0])?;
            path.push(string_literal(&call.args[1])?);
            Some(path)
        }
        _ => None,
    }
}

fn string_literal(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_string()),
        _ => None,
    }
}

impl Match {
    /// The condition on the suggestion's JSON; `None` when CEL must decide.
    pub fn eval(&self, suggestion: &serde_json::Value) -> Option<bool> {
        Some(match self {
            Match::Bool(b) => *b,
            Match::Eq(path, text) => field(suggestion, path)? == text,
            Match::Ne(path, text) => field(suggestion, path)? != text,
            Match::In(path, items) => {
                let value = field(suggestion, path)?;
                items.iter().any(|i| i == value)
            }
            Match::Has(path) => {
                let (last, parent) = path.split_last()?;
                value(suggestion, parent)?.as_object()?.contains_key(last)
            }
            Match::Not(a) => !a.eval(suggestion)?,
            // Short-circuit as CEL does: its `false && error` is false, `true || error` true;
            // an error on the left comes back as None and CEL decides.
            Match::And(a, b) => a.eval(suggestion)? && b.eval(suggestion)?,
            Match::Or(a, b) => a.eval(suggestion)? || b.eval(suggestion)?,
        })
    }
}

fn value<'v>(suggestion: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    path.iter()
        .try_fold(suggestion, |v, key| v.as_object()?.get(key))
}

fn field<'v>(suggestion: &'v serde_json::Value, path: &[String]) -> Option<&'v str> {
    value(suggestion, path)?.as_str()
}
