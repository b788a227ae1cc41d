//! Load-time checks of one condition: compiled with the `cel` crate, then refused when it
//! cannot safely run (unknown variables, fields or functions, a bad literal pattern,
//! oversized or too deeply nested expressions), with the position of every error.

use std::collections::HashSet;
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::extractors::Arguments;
use cel::{Context, Env, ExecutionError, Program, Value};

use crate::error::RuleError;
use crate::evidence::SignalSpec;
use crate::functions::{self, BUILTIN_FUNCTIONS};

/// Longest condition accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest expression tree accepted.
pub const MAX_DEPTH: usize = 48;
/// Most nested comprehensions (`all`, `exists`, `map`, `filter`) accepted.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;

/// Signal fields that take their value from the suggestion instead of the rule.
/// `signal.metric: $claim.metric`: the metric the suggestion's claim names.
pub const FROM_CLAIM_METRIC: &str = "$claim.metric";
/// The deprecated spelling of `FROM_CLAIM_METRIC` (the claim field's first name).
pub const FROM_CLAIM_SIGNAL: &str = "$claim.signal";
pub const FROM_CLAIM_STATISTIC: &str = "$claim.statistic";

/// Fields rules may read; anything else is a load error.
const SIGNAL_FIELDS: &[&str] = &[
    "metric",
    "statistic",
    "series",
    "window_s",
    "samples",
    "observed",
    "mean",
    "max",
    "min",
    "last",
    "start_ms",
    "end_ms",
];
const BASELINE_FIELDS: &[&str] = &[
    "model",
    "freshness_s",
    "history",
    "ready",
    "expected",
    "sigma",
    "lower",
    "upper",
    "z",
    "score",
    "raw_score",
    "max_point_score",
    "max_raw_score",
    "max_z",
    "min_z",
    "mean_abs_z",
    "mean_z",
    "median_z",
    "prior_points",
    "prior_abs_z_p50",
    "prior_abs_z_p90",
    "prior_abs_z_p99",
    "prior_abs_z_p995",
    "prior_windows",
    "p_up",
    "p_down",
    "p_value",
    "level_p_up",
    "level_p_down",
    "ratio",
    "p50",
    "p90",
    "p99",
];
const HOST_FIELDS: &[&str] = &[
    "metrics",
    "anomalous",
    "alpha",
    "rank",
    "p",
    "q",
    "min_q",
    "anomalous_metrics",
];
const SUGGESTION_FIELDS: &[&str] = &[
    "id",
    "source",
    "created_at",
    "subject",
    "claim",
    "action",
    "confidence",
    "summary",
    "evidence",
    "links",
];
const CLAIM_FIELDS: &[&str] = &[
    "kind",
    "metric",
    "signal",
    "statistic",
    "direction",
    "observed",
    "unit",
    "window",
];

pub(super) fn err(
    rule: &str,
    field: &str,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> RuleError {
    RuleError {
        rule: rule.to_string(),
        field: field.to_string(),
        line,
        column,
        message: message.into(),
    }
}

/// 1-based line and column of byte `offset` in `src`.
fn position(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Checker<'a> {
    rule: &'a str,
    field: &'a str,
    src: &'a str,
    program: &'a Program,
    allowed: &'a [&'a str],
    functions: &'a FunctionNames,
    errors: Vec<RuleError>,
}

/// The functions a condition may call: CEL's standard library (asked of the environment),
/// Referee's built-ins and the plugins' functions.
pub struct FunctionNames {
    env: Arc<Env>,
    extra: HashSet<String>,
}

impl FunctionNames {
    pub(super) fn new(env: Arc<Env>, plugin: &[String]) -> Self {
        let mut extra: HashSet<String> = BUILTIN_FUNCTIONS.iter().map(|s| s.to_string()).collect();
        extra.extend(plugin.iter().cloned());
        FunctionNames { env, extra }
    }

    fn is_standard(&self, name: &str) -> bool {
        // `add_function` refuses exactly the names the environment declares.
        Context::with_env(self.env.clone())
            .add_function(
                name,
                |Arguments(_): Arguments| -> Result<Value, ExecutionError> { Ok(Value::Null) },
            )
            .is_err()
    }

    pub(super) fn knows(&self, name: &str) -> bool {
        self.extra.contains(name) || self.is_standard(name)
    }

    fn listed(&self) -> String {
        let mut v: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        v.sort_unstable();
        v.join(", ")
    }
}

/// Operators are calls too (`_+_`, `!_`, `@in`, ...); their names cannot be written in a rule.
fn is_operator(name: &str) -> bool {
    name.starts_with(['_', '@', '!', '-'])
}

impl Checker<'_> {
    fn at(&self, e: &IdedExpr) -> (usize, usize) {
        match self.program.source_info().offset_for(e.id) {
            Some((start, _)) => position(self.src, start as usize),
            None => (1, 1),
        }
    }

    fn fail(&mut self, e: &IdedExpr, message: String) {
        let (l, c) = self.at(e);
        self.errors.push(err(self.rule, self.field, l, c, message));
    }

    fn walk(&mut self, e: &IdedExpr, depth: usize, comprehensions: usize, bound: &[String]) {
        if depth > MAX_DEPTH {
            self.fail(
                e,
                format!("expression nests deeper than {MAX_DEPTH} levels"),
            );
            return;
        }
        match &e.expr {
            Expr::Ident(name) => {
                if !bound.iter().any(|b| b == name) && !self.allowed.contains(&name.as_str()) {
                    self.fail(
                        e,
                        format!(
                            "unknown variable `{name}` (available here: {})",
                            self.allowed.join(", ")
                        ),
                    );
                }
            }
            Expr::Select(sel) => {
                if let Expr::Ident(root) = &sel.operand.expr {
                    let known: Option<&[&str]> = match root.as_str() {
                        "signal" => Some(SIGNAL_FIELDS),
                        "baseline" => Some(BASELINE_FIELDS),
                        "host" => Some(HOST_FIELDS),
                        "suggestion" => Some(SUGGESTION_FIELDS),
                        _ => None,
                    };
                    if let Some(known) = known {
                        if !bound.iter().any(|b| b == root) && !known.contains(&sel.field.as_str())
                        {
                            self.fail(
                                e,
                                format!(
                                    "`{root}` has no field `{}` (fields: {})",
                                    sel.field,
                                    known.join(", ")
                                ),
                            );
                        }
                    }
                }
                if let Expr::Select(inner) = &sel.operand.expr {
                    if matches!(&inner.operand.expr, Expr::Ident(r) if r == "suggestion")
                        && inner.field == "claim"
                        && !CLAIM_FIELDS.contains(&sel.field.as_str())
                    {
                        self.fail(
                            e,
                            format!(
                                "`suggestion.claim` has no field `{}` (fields: {})",
                                sel.field,
                                CLAIM_FIELDS.join(", ")
                            ),
                        );
                    }
                }
                self.walk(&sel.operand, depth + 1, comprehensions, bound);
            }
            Expr::Call(call) => {
                if !is_operator(&call.func_name) && !self.functions.knows(&call.func_name) {
                    self.fail(
                        e,
                        format!(
                            "unknown function `{}` (CEL's standard functions and: {})",
                            call.func_name,
                            self.functions.listed()
                        ),
                    );
                }
                if call.func_name == "matches" {
                    // A literal pattern is compiled now, so a bad one is a load error.
                    if let Some(Expr::Literal(cel::common::ast::LiteralValue::String(p))) =
                        call.args.last().map(|a| &a.expr)
                    {
                        if let Err(msg) = functions::regex(p.inner()) {
                            self.fail(e, msg);
                        }
                    }
                }
                if let Some(t) = &call.target {
                    self.walk(t, depth + 1, comprehensions, bound);
                }
                for a in &call.args {
                    self.walk(a, depth + 1, comprehensions, bound);
                }
            }
            Expr::Comprehension(c) => {
                if comprehensions + 1 > MAX_COMPREHENSION_DEPTH {
                    self.fail(
                        e,
                        format!("comprehensions nest deeper than {MAX_COMPREHENSION_DEPTH} levels"),
                    );
                    return;
                }
                self.walk(&c.iter_range, depth + 1, comprehensions, bound);
                let mut inner: Vec<String> = bound.to_vec();
                inner.push(c.iter_var.clone());
                if let Some(v2) = &c.iter_var2 {
                    inner.push(v2.clone());
                }
                inner.push(c.accu_var.clone());
                for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    self.walk(part, depth + 1, comprehensions + 1, &inner);
                }
            }
            Expr::List(l) => {
                for x in &l.elements {
                    self.walk(x, depth + 1, comprehensions, bound);
                }
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.walk(&me.key, depth + 1, comprehensions, bound);
                        self.walk(&me.value, depth + 1, comprehensions, bound);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value, depth + 1, comprehensions, bound);
                    }
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

/// Compiles and checks one condition.
pub fn compile_condition(
    env: &Env,
    rule: &str,
    field: &str,
    src: &str,
    allowed: &[&str],
    functions: &FunctionNames,
) -> Result<Program, Vec<RuleError>> {
    if src.len() > MAX_EXPRESSION_LEN {
        return Err(vec![err(
            rule,
            field,
            1,
            1,
            format!(
                "expression is {} bytes, more than the limit of {MAX_EXPRESSION_LEN}",
                src.len()
            ),
        )]);
    }
    if src.trim().is_empty() {
        return Err(vec![err(rule, field, 1, 1, "expression is empty")]);
    }
    let program = env.compile(src).map_err(|errs| {
        errs.errors
            .iter()
            .map(|e| {
                err(
                    rule,
                    field,
                    e.pos.0.max(1) as usize,
                    (e.pos.1 + 1).max(1) as usize,
                    e.msg.clone(),
                )
            })
            .collect::<Vec<_>>()
    })?;
    let mut checker = Checker {
        rule,
        field,
        src,
        program: &program,
        allowed,
        functions,
        errors: Vec::new(),
    };
    checker.walk(program.expression(), 0, 0, &[]);
    if checker.errors.is_empty() {
        Ok(program)
    } else {
        Err(checker.errors)
    }
}

pub(super) fn check_signal(spec: &SignalSpec, rule: &str) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if spec.metric.starts_with('$')
        && spec.metric != FROM_CLAIM_METRIC
        && spec.metric != FROM_CLAIM_SIGNAL
    {
        errors.push(err(
            rule,
            "signal",
            1,
            1,
            format!(
                "signal.metric `{}`: the only reference allowed is `{FROM_CLAIM_METRIC}`",
                spec.metric
            ),
        ));
    }
    if spec.statistic.starts_with('$') && spec.statistic != FROM_CLAIM_STATISTIC {
        errors.push(err(
            rule,
            "signal",
            1,
            1,
            format!(
                "signal.statistic `{}`: the only reference allowed is `{FROM_CLAIM_STATISTIC}`",
                spec.statistic
            ),
        ));
    }
    errors
}
