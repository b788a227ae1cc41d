//! Compiled rules: CEL conditions checked at load and evaluated against a suggestion and the
//! evidence its signal resolves to.
//!
//! Python loads and validates the YAML (positions, lists, macros, effects); this module
//! compiles each condition with the `cel` crate, refuses what it cannot safely run (unknown
//! variables or fields, oversized or too deeply nested expressions), and evaluates.
//! The outcome of every rule is returned; combining effects into a verdict is the caller's.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::extractors::Arguments;
use cel::{Context, Env, ExecutionError, Program, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RuleError;
use crate::evidence::{self, BaselineView, SignalSpec, SignalView};
use crate::functions::{self, BUILTIN_FUNCTIONS};
use crate::store::SeriesStore;

/// Longest condition accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest expression tree accepted.
pub const MAX_DEPTH: usize = 48;
/// Most nested comprehensions (`all`, `exists`, `map`, `filter`) accepted.
pub const MAX_COMPREHENSION_DEPTH: usize = 2;
/// Most items in any list or map a suggestion carries into an evaluation. With comprehensions
/// nested at most twice, this bounds every evaluation to MAX_INPUT_ITEMS² iterations per
/// comprehension: the per-evaluation budget (the `cel` crate has no cost tracking of its own).
pub const MAX_INPUT_ITEMS: usize = 256;

/// Signal fields that take their value from the suggestion instead of the rule.
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
    "ratio",
    "p50",
    "p90",
    "p99",
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
    "signal",
    "statistic",
    "direction",
    "observed",
    "unit",
    "window",
];

/// A rule as handed over by the Python loader (lists and macros already expanded).
#[derive(Debug, Clone, Deserialize)]
pub struct RuleSpec {
    pub id: String,
    #[serde(rename = "match")]
    pub match_expr: String,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub signal: Option<SignalSpec>,
}

struct CompiledRule {
    id: String,
    match_prog: Program,
    /// Index of the first rule with the same `match` text: it is evaluated once per
    /// suggestion and shared (packs repeat `suggestion.claim.kind == "..."` often).
    match_slot: usize,
    /// The same `match` for the native evaluator, when it is inside its subset.
    match_fast: Option<crate::fastpath::Match>,
    when_prog: Option<Program>,
    /// The same `when` for the native evaluator, when it is inside its subset.
    when_fast: Option<crate::fastpath::Fast>,
    /// `signal.where`: which of the subject's series the rule reads.
    where_prog: Option<Program>,
    signal: Option<SignalSpec>,
}

/// What one rule made of one suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    pub id: String,
    pub matched: bool,
    /// The `when` condition's value, when it was evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<bool>,
    /// Why the evidence was missing (the rule can then only be inconclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// An evaluation error (treated like missing evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Arc<SignalView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Arc<BaselineView>>,
}

/// A function rule conditions may call, registered by a plugin (`referee_register_rule_functions`).
pub type RuleFunction = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

pub struct RuleSet {
    env: Arc<Env>,
    rules: Vec<CompiledRule>,
    functions: Vec<(String, RuleFunction)>,
    pub revision: String,
}

fn err(
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
    fn new(env: Arc<Env>, plugin: &[String]) -> Self {
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

    fn knows(&self, name: &str) -> bool {
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

fn check_signal(spec: &SignalSpec, rule: &str) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if spec.metric.starts_with('$') && spec.metric != FROM_CLAIM_SIGNAL {
        errors.push(err(
            rule,
            "signal",
            1,
            1,
            format!(
                "signal.metric `{}`: the only reference allowed is `{FROM_CLAIM_SIGNAL}`",
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

/// The signal a rule reads for this suggestion: `$claim.signal` and `$claim.statistic` are
/// taken from the suggestion's claim (the statistic defaults to `value`).
fn resolve_signal<'s>(
    spec: &'s SignalSpec,
    suggestion: &serde_json::Value,
) -> Result<std::borrow::Cow<'s, SignalSpec>, String> {
    if !spec.metric.starts_with('$') && !spec.statistic.starts_with('$') {
        return Ok(std::borrow::Cow::Borrowed(spec));
    }
    let claim = suggestion.get("claim");
    let field = |name: &str| {
        claim
            .and_then(|c| c.get(name))
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut resolved = spec.clone();
    if spec.metric == FROM_CLAIM_SIGNAL {
        resolved.metric = field("signal")
            .ok_or_else(|| "the suggestion names no metric (claim.signal)".to_string())?;
    }
    if spec.statistic == FROM_CLAIM_STATISTIC {
        resolved.statistic = field("statistic").unwrap_or_else(|| "value".to_string());
    }
    Ok(std::borrow::Cow::Owned(resolved))
}

/// The per-evaluation budget on inputs: no list or map with more than MAX_INPUT_ITEMS items.
fn check_input_size(v: &serde_json::Value, path: &str) -> Result<(), String> {
    match v {
        serde_json::Value::Array(a) => {
            if a.len() > MAX_INPUT_ITEMS {
                return Err(format!(
                    "{path} has {} items, more than the evaluation budget allows ({MAX_INPUT_ITEMS})",
                    a.len()
                ));
            }
            a.iter().try_for_each(|x| check_input_size(x, path))
        }
        serde_json::Value::Object(o) => {
            if o.len() > MAX_INPUT_ITEMS {
                return Err(format!(
                    "{path} has {} keys, more than the evaluation budget allows ({MAX_INPUT_ITEMS})",
                    o.len()
                ));
            }
            o.iter()
                .try_for_each(|(k, x)| check_input_size(x, &format!("{path}.{k}")))
        }
        _ => Ok(()),
    }
}

impl RuleSet {
    /// Compiles every rule with no plugin functions; returns every error found.
    pub fn compile(specs: Vec<RuleSpec>, source_digest: &str) -> Result<RuleSet, Vec<RuleError>> {
        Self::compile_with(specs, source_digest, Vec::new())
    }

    /// Compiles every rule; conditions may call `functions` (from plugins) besides the
    /// standard and built-in ones. Returns every error found, not just the first; a plugin
    /// function whose name is taken by a standard or built-in function is an error too.
    pub fn compile_with(
        specs: Vec<RuleSpec>,
        source_digest: &str,
        functions: Vec<(String, RuleFunction)>,
    ) -> Result<RuleSet, Vec<RuleError>> {
        let env = Arc::new(Env::stdlib());
        let mut errors = Vec::new();
        let names: Vec<String> = functions.iter().map(|(n, _)| n.clone()).collect();
        let probe = FunctionNames::new(env.clone(), &[]);
        for name in &names {
            if probe.knows(name) {
                errors.push(err(
                    name,
                    "function",
                    1,
                    1,
                    format!("rule function `{name}` clashes with a built-in function"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let known = FunctionNames::new(env.clone(), &names);
        let mut rules: Vec<CompiledRule> = Vec::with_capacity(specs.len());
        let mut match_slots: std::collections::HashMap<String, usize> = Default::default();
        for spec in specs {
            let m = compile_condition(
                &env,
                &spec.id,
                "match",
                &spec.match_expr,
                &["suggestion"],
                &known,
            );
            let allowed: &[&str] = if spec.signal.is_some() {
                &["suggestion", "signal", "baseline", "series"]
            } else {
                &["suggestion"]
            };
            let w = spec
                .when
                .as_deref()
                .map(|src| compile_condition(&env, &spec.id, "when", src, allowed, &known))
                .transpose();
            let mut signal_errors = spec
                .signal
                .as_ref()
                .map(|s| check_signal(s, &spec.id))
                .unwrap_or_default();
            let where_prog = match spec.signal.as_ref().and_then(|s| s.where_expr.as_deref()) {
                Some(src) => {
                    match compile_condition(
                        &env,
                        &spec.id,
                        "where",
                        src,
                        &["series", "suggestion"],
                        &known,
                    ) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            signal_errors.extend(e);
                            None
                        }
                    }
                }
                None => None,
            };
            match (m, w) {
                (Ok(match_prog), Ok(when_prog)) if signal_errors.is_empty() => {
                    let match_slot = *match_slots
                        .entry(spec.match_expr.clone())
                        .or_insert(rules.len());
                    rules.push(CompiledRule {
                        id: spec.id,
                        match_fast: crate::fastpath::compile_match(match_prog.expression()),
                        match_prog,
                        match_slot,
                        when_fast: when_prog
                            .as_ref()
                            .filter(|_| spec.signal.is_some())
                            .and_then(|p| crate::fastpath::compile(p.expression())),
                        when_prog,
                        where_prog,
                        signal: spec.signal,
                    })
                }
                (m, w) => {
                    errors.extend(m.err().unwrap_or_default());
                    errors.extend(w.err().unwrap_or_default());
                    errors.extend(signal_errors);
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let revision = format!("{:x}", Sha256::digest(source_digest.as_bytes()));
        Ok(RuleSet {
            env,
            rules,
            functions,
            revision: revision[..12].to_string(),
        })
    }

    /// One root context per evaluation: the built-ins and plugin functions are registered
    /// once, and each rule gets an inner scope for its own evidence.
    fn context(&self) -> Context<'_, '_> {
        let mut ctx = Context::with_env(self.env.clone());
        functions::register(&mut ctx);
        for (name, f) in &self.functions {
            let f = f.clone();
            let fname = name.clone();
            // Names were checked against the standard and built-in functions at compile time.
            let _ = ctx.add_function(
                name,
                move |Arguments(args): Arguments| -> Result<Value, ExecutionError> {
                    f(&args).map_err(|e| ExecutionError::function_error(&fname, e))
                },
            );
        }
        ctx
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates every rule against `suggestion` with the data up to `at_ms`.
    pub fn evaluate(
        &self,
        store: &SeriesStore,
        suggestion: &serde_json::Value,
        at_ms: i64,
    ) -> Vec<RuleOutcome> {
        let subject: Vec<(String, String)> = suggestion
            .get("subject")
            .and_then(|s| s.as_object())
            .map(|o| {
                let mut v: Vec<(String, String)> = o
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        let suggestion_value = check_input_size(suggestion, "suggestion")
            .and_then(|_| cel::to_value(suggestion).map_err(|e| format!("suggestion: {e}")));
        let suggestion_value = match suggestion_value {
            Ok(v) => v,
            Err(e) => {
                return self
                    .rules
                    .iter()
                    .map(|r| outcome(&r.id, false).with_error(e.clone()))
                    .collect()
            }
        };
        let mut root = self.context();
        root.add_variable_from_value("suggestion", suggestion_value);
        let mut out = Vec::with_capacity(self.rules.len());
        let mut cache: Vec<(EvidenceKey, Result<Evidence<'_, '_>, String>)> = Vec::new();
        // The value of each distinct `match` condition, by the first rule that has it.
        let mut matches: Vec<Option<Result<Value, ExecutionError>>> = vec![None; self.rules.len()];
        for rule in &self.rules {
            let shared = matches[rule.match_slot]
                .get_or_insert_with(|| {
                    match rule.match_fast.as_ref().and_then(|m| m.eval(suggestion)) {
                        Some(b) => Ok(Value::Bool(b)),
                        None => rule.match_prog.execute(&root),
                    }
                })
                .clone();
            let matched = match shared {
                Ok(Value::Bool(b)) => b,
                Ok(other) => {
                    out.push(
                        outcome(&rule.id, false)
                            .with_error(format!("`match` gave {other:?}, not a bool")),
                    );
                    continue;
                }
                Err(e) => {
                    out.push(outcome(&rule.id, false).with_error(format!("`match`: {e}")));
                    continue;
                }
            };
            if !matched {
                out.push(outcome(&rule.id, false));
                continue;
            }
            let mut result = outcome(&rule.id, true);
            let mut ctx: &Context<'_, '_> = &root;
            if let Some(spec) = &rule.signal {
                let spec = match resolve_signal(spec, suggestion) {
                    Ok(s) => s,
                    Err(missing) => {
                        result.missing = Some(missing);
                        out.push(result);
                        continue;
                    }
                };
                // Rules often read the same signal: read it, convert it for CEL and bind it in
                // a scope once per evaluation, and share that scope.
                let key = EvidenceKey::of(&spec);
                let i = match cache.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        let accept = |series: &crate::store::Series| match &rule.where_prog {
                            None => true,
                            Some(w) => {
                                let mut scope = root.new_inner_scope();
                                let attrs: BTreeMap<String, String> = series
                                    .attrs()
                                    .map(|(k, v)| (k.to_string(), v.to_string()))
                                    .collect();
                                scope.add_variable_from_value("series", map_value(&attrs));
                                // Only a true result selects the series; a `where` that fails
                                // to evaluate selects none (the rule is then inconclusive).
                                matches!(w.execute(&scope), Ok(Value::Bool(true)))
                            }
                        };
                        let read = evidence::read_where(store, &spec, &subject, at_ms, &accept)
                            .map_err(|m| m.to_string());
                        let bound = read.and_then(|(sig, base)| {
                            match (cel::to_value(&sig), cel::to_value(&base)) {
                                (Ok(s), Ok(b)) => {
                                    let mut scope = root.new_inner_scope();
                                    scope.add_variable_from_value("series", map_value(&sig.series));
                                    scope.add_variable_from_value("signal", s);
                                    scope.add_variable_from_value("baseline", b);
                                    Ok(Evidence {
                                        signal: Arc::new(sig),
                                        baseline: Arc::new(base),
                                        scope,
                                    })
                                }
                                _ => Err(CONVERSION_FAILED.to_string()),
                            }
                        });
                        cache.push((key, bound));
                        cache.len() - 1
                    }
                };
                match &cache[i].1 {
                    Ok(ev) => {
                        result.signal = Some(ev.signal.clone());
                        result.baseline = Some(ev.baseline.clone());
                        ctx = &ev.scope;
                    }
                    Err(e) if e == CONVERSION_FAILED => {
                        out.push(result.with_error(e.clone()));
                        continue;
                    }
                    Err(missing) => {
                        result.missing = Some(missing.clone());
                        out.push(result);
                        continue;
                    }
                }
            }
            let fast = match (&rule.when_fast, &result.signal, &result.baseline) {
                (Some(f), Some(sig), Some(base)) => f.eval(sig, base),
                _ => None,
            };
            if let Some(b) = fast {
                result.when = Some(b);
            } else if let Some(when) = &rule.when_prog {
                match when.execute(ctx) {
                    Ok(Value::Bool(b)) => result.when = Some(b),
                    Ok(other) => result.error = Some(format!("`when` gave {other:?}, not a bool")),
                    Err(e) => result.error = Some(format!("`when`: {e}")),
                }
            } else {
                result.when = Some(true);
            }
            out.push(result);
        }
        out
    }
}

const CONVERSION_FAILED: &str = "could not convert evidence";

/// What makes two signal reads the same within one evaluation.
#[derive(PartialEq)]
struct EvidenceKey {
    metric: String,
    statistic: String,
    window_bits: u64,
    agg: evidence::Aggregation,
    min_history: u64,
    points: Option<u64>,
    where_expr: Option<String>,
    model: evidence::ModelFilter,
    band_k_bits: Option<u64>,
}

impl EvidenceKey {
    fn of(spec: &SignalSpec) -> Self {
        EvidenceKey {
            metric: spec.metric.clone(),
            statistic: spec.statistic.clone(),
            window_bits: spec.window_s.to_bits(),
            agg: spec.agg,
            min_history: spec.min_history,
            points: spec.points,
            where_expr: spec.where_expr.clone(),
            model: spec.model.clone(),
            band_k_bits: spec.band_k.map(f64::to_bits),
        }
    }
}

/// A signal read, and the scope binding it for CEL, shared by the rules that read it.
struct Evidence<'p, 'v> {
    signal: Arc<SignalView>,
    baseline: Arc<BaselineView>,
    scope: Context<'p, 'v>,
}

fn map_value(m: &BTreeMap<String, String>) -> Value {
    cel::to_value(m).unwrap_or(Value::Null)
}

fn outcome(id: &str, matched: bool) -> RuleOutcome {
    RuleOutcome {
        id: id.to_string(),
        matched,
        when: None,
        missing: None,
        error: None,
        signal: None,
        baseline: None,
    }
}

impl RuleOutcome {
    fn with_error(mut self, e: String) -> Self {
        self.error = Some(e);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreConfig;
    use serde_json::json;

    fn spec(id: &str, m: &str, when: Option<&str>, signal: bool) -> RuleSpec {
        RuleSpec {
            id: id.into(),
            match_expr: m.into(),
            when: when.map(Into::into),
            signal: signal.then(|| SignalSpec {
                metric: "lat".into(),
                statistic: "p99".into(),
                window_s: 300.0,
                agg: crate::evidence::Aggregation::Mean,
                min_history: 30,
                points: None,
                where_expr: None,
                model: Default::default(),
                band_k: None,
            }),
        }
    }

    #[test]
    fn unknown_variables_and_fields_are_load_errors() {
        let errs = RuleSet::compile(
            vec![
                spec(
                    "a",
                    "suggestion.claim.kind == 'latency_high'",
                    Some("baseline.scor > 0.5"),
                    true,
                ),
                spec("b", "sugestion.claim.kind == 'x'", None, false),
                spec("c", "suggestion.claim.knd == 'x'", None, false),
                spec("d", "true", Some("signal.observed > 1.0"), false),
            ],
            "",
        )
        .err()
        .unwrap();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 4, "{text:?}");
        assert!(
            text[0].contains("`baseline` has no field `scor`"),
            "{text:?}"
        );
        assert_eq!((errs[0].line, errs[0].column), (1, 9));
        assert!(text[1].contains("unknown variable `sugestion`"));
        assert!(text[2].contains("`suggestion.claim` has no field `knd`"));
        assert!(text[3].contains("unknown variable `signal`"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let errs = RuleSet::compile(vec![spec("a", "suggestion.id ==", None, false)], "")
            .err()
            .unwrap();
        assert_eq!(errs[0].field, "match");
        assert!(errs[0].column > 1);
    }

    #[test]
    fn runaway_comprehensions_are_refused() {
        let src = "[1,2].all(x, [1,2].all(y, [1,2].all(z, x + y + z > 0)))";
        let errs = RuleSet::compile(vec![spec("a", src, None, false)], "")
            .err()
            .unwrap();
        assert!(errs[0].message.contains("comprehensions nest deeper"));
        // Two levels are fine, and the bound variables are known.
        assert!(RuleSet::compile(
            vec![spec(
                "a",
                "[1,2].all(x, [1].exists(y, x >= y))",
                None,
                false
            )],
            ""
        )
        .is_ok());
    }

    #[test]
    fn evaluates_against_evidence() {
        let mut store = SeriesStore::new(StoreConfig::default());
        for i in 0..60 {
            store
                .push("lat", "p99", &[("service.name", "web")], i * 60_000, 0.2)
                .unwrap();
        }
        for i in 60..65 {
            store
                .push("lat", "p99", &[("service.name", "web")], i * 60_000, 1.0)
                .unwrap();
        }
        let rules = RuleSet::compile(
            vec![
                spec(
                    "lat",
                    "suggestion.claim.kind == 'latency_high'",
                    Some("baseline.max_point_score > 0.99 && signal.observed > baseline.upper"),
                    true,
                ),
                spec(
                    "other",
                    "suggestion.claim.kind == 'traffic_drop'",
                    None,
                    false,
                ),
            ],
            "rev",
        )
        .unwrap();
        let s = json!({"id": "1", "subject": {"service.name": "web"}, "claim": {"kind": "latency_high"}});
        let out = rules.evaluate(&store, &s, 64 * 60_000);
        assert!(out[0].matched);
        assert_eq!(out[0].when, Some(true), "{:?}", out[0]);
        assert!(!out[1].matched);
        // Another service: no series, so the rule reports missing evidence.
        let s = json!({"id": "2", "subject": {"service.name": "db"}, "claim": {"kind": "latency_high"}});
        let out = rules.evaluate(&store, &s, 64 * 60_000);
        assert_eq!(
            out[0].missing.as_deref(),
            Some("no series matches the signal and subject")
        );
    }

    #[test]
    fn registered_functions_are_callable() {
        let double: RuleFunction = Arc::new(|args: &[Value]| match args {
            [Value::Float(x)] => Ok(Value::Float(2.0 * x)),
            _ => Err("double() takes one double".into()),
        });
        let rules = RuleSet::compile_with(
            vec![spec("f", "twice(1.5) == 3.0", None, false)],
            "",
            vec![("twice".into(), double.clone())],
        )
        .unwrap();
        let store = SeriesStore::new(StoreConfig::default());
        let out = rules.evaluate(&store, &serde_json::json!({"id": "1"}), 0);
        assert!(out[0].matched, "{:?}", out[0]);
        // Neither a standard nor a built-in function's name can be taken over.
        for name in ["double", "ratio"] {
            let clash = RuleSet::compile_with(vec![], "", vec![(name.into(), double.clone())]);
            assert!(clash.err().unwrap()[0].message.contains(name));
        }
    }

    #[test]
    fn unknown_functions_and_bad_patterns_are_load_errors() {
        let errs = RuleSet::compile(
            vec![
                spec("a", "sizee(suggestion.id) > 0", None, false),
                spec("b", "suggestion.id.matches('(')", None, false),
                spec(
                    "c",
                    "suggestion.id.startsWith('x') && ratio(1, 2) < 1.0",
                    None,
                    false,
                ),
            ],
            "",
        )
        .err()
        .unwrap();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].message.contains("unknown function `sizee`"));
        assert_eq!((errs[0].line, errs[0].column), (1, 6));
        assert!(errs[1].message.contains("invalid regular expression"));
    }

    #[test]
    fn signal_can_come_from_the_claim() {
        let mut store = SeriesStore::new(StoreConfig::default());
        for i in 0..40 {
            store
                .push(
                    "queue.depth",
                    "value",
                    &[("service.name", "web")],
                    i * 60_000,
                    5.0,
                )
                .unwrap();
        }
        let mut s = spec("any", "true", Some("signal.observed > 1.0"), true);
        s.signal.as_mut().unwrap().metric = FROM_CLAIM_SIGNAL.into();
        s.signal.as_mut().unwrap().statistic = FROM_CLAIM_STATISTIC.into();
        let rules = RuleSet::compile(vec![s.clone()], "").unwrap();
        let named = json!({"subject": {"service.name": "web"}, "claim": {"kind": "anomaly", "signal": "queue.depth"}});
        let out = rules.evaluate(&store, &named, 39 * 60_000);
        assert_eq!(out[0].when, Some(true), "{:?}", out[0]);
        let unnamed = json!({"subject": {"service.name": "web"}, "claim": {"kind": "anomaly"}});
        let out = rules.evaluate(&store, &unnamed, 39 * 60_000);
        assert!(out[0].missing.as_deref().unwrap().contains("claim.signal"));
        s.signal.as_mut().unwrap().metric = "$claim.other".into();
        assert!(RuleSet::compile(vec![s], "").is_err());
    }

    #[test]
    fn oversized_inputs_exceed_the_budget() {
        let rules = RuleSet::compile(
            vec![spec(
                "a",
                "suggestion.links.all(x, suggestion.links.exists(y, x == y))",
                None,
                false,
            )],
            "",
        )
        .unwrap();
        let store = SeriesStore::new(StoreConfig::default());
        let links: Vec<String> = (0..MAX_INPUT_ITEMS + 1).map(|i| i.to_string()).collect();
        let out = rules.evaluate(&store, &json!({"links": links}), 0);
        assert!(out[0].error.as_deref().unwrap().contains("budget"));
        let out = rules.evaluate(&store, &json!({"links": ["a", "b"]}), 0);
        assert!(out[0].matched);
    }

    #[test]
    fn numeric_comparisons_mix_but_arithmetic_does_not() {
        // As in the CEL spec: comparisons work across int and double, arithmetic needs one type.
        let env = Arc::new(Env::stdlib());
        let names = FunctionNames::new(env.clone(), &[]);
        let ctx = Context::default();
        let p =
            compile_condition(&env, "r", "when", "2.0 * 1.5 > 2 && 3 < 3.5", &[], &names).unwrap();
        assert_eq!(p.execute(&ctx), Ok(Value::Bool(true)));
        let p = compile_condition(&env, "r", "when", "2 * 1.5 > 2", &[], &names).unwrap();
        assert!(p.execute(&ctx).is_err());
    }

    /// The native `match` evaluator and CEL agree on every condition of its subset, over
    /// suggestions with the fields present, absent, null and of other types.
    #[test]
    fn match_fast_path_agrees_with_cel() {
        let conditions = [
            r#"suggestion.claim.kind == "anomaly" && has(suggestion.claim.direction) && suggestion.claim.direction == "up""#,
            r#"suggestion.claim.kind == "anomaly" && !has(suggestion.claim.direction)"#,
            r#"suggestion.claim.kind == "latency_high""#,
            r#""latency_high" == suggestion.claim.kind"#,
            r#"suggestion.subject["service.name"] in ["api", "web"]"#,
            r#"suggestion.claim.kind != "traffic_drop" || suggestion.source == "grafana""#,
            r#"suggestion.subject["service.name"] == "web" && suggestion.claim.kind == "error_rate_high""#,
            r#"has(suggestion.action) && suggestion.action.kind == "scale_out""#,
            r#"has(suggestion.subject.team) || false"#,
            r#"!(suggestion.claim.kind in ["anomaly", "latency_high"])"#,
            "true",
        ];
        let suggestions = [
            json!({"source": "copilot", "subject": {"service.name": "web"}, "claim": {"kind": "latency_high"}}),
            json!({"source": "grafana", "subject": {"service.name": "api", "team": "x"}, "claim": {"kind": "anomaly", "direction": "up"}}),
            json!({"source": "copilot", "subject": {"service.name": "db"}, "claim": {"kind": "anomaly", "direction": "down"}}),
            json!({"source": "copilot", "subject": {}, "claim": {"kind": "anomaly", "direction": null}}),
            json!({"source": "copilot", "subject": {"service.name": 7}, "claim": {"kind": "traffic_drop", "direction": 1}}),
            json!({"source": "copilot", "subject": {"service.name": "web"}, "claim": "latency_high"}),
            json!({"source": 3, "claim": {"kind": "error_rate_high"}, "action": {"kind": "scale_out"}}),
            json!({"subject": {"service.name": "web"}, "claim": {"kind": "error_rate_high"}, "action": null}),
            json!({"subject": ["web"], "claim": {}, "action": {"kind": 2}}),
            json!({}),
        ];
        let env = Arc::new(Env::stdlib());
        let names = FunctionNames::new(env.clone(), &[]);
        let (mut fast_answers, mut cel_decides) = (0, 0);
        for src in conditions {
            let prog = compile_condition(&env, "r", "match", src, &["suggestion"], &names).unwrap();
            let fast = crate::fastpath::compile_match(prog.expression())
                .unwrap_or_else(|| panic!("{src} should be in the match subset"));
            for s in &suggestions {
                let mut ctx = Context::default();
                ctx.add_variable_from_value("suggestion", cel::to_value(s).unwrap());
                match fast.eval(s) {
                    Some(b) => {
                        fast_answers += 1;
                        assert_eq!(prog.execute(&ctx), Ok(Value::Bool(b)), "{src} on {s}");
                    }
                    None => cel_decides += 1,
                }
            }
        }
        assert!(
            fast_answers > 60 && cel_decides > 5,
            "{fast_answers} {cel_decides}"
        );
        for src in [
            "suggestion.claim.observed > 1.0",
            "size(suggestion.links) > 0",
            r#"suggestion.claim.kind.startsWith("lat")"#,
            r#"suggestion.claim.kind == suggestion.source"#,
        ] {
            let prog = compile_condition(&env, "r", "match", src, &["suggestion"], &names).unwrap();
            assert!(
                crate::fastpath::compile_match(prog.expression()).is_none(),
                "{src}"
            );
        }
    }

    /// The native evaluator and CEL agree on every condition of its subset, over evidence
    /// with ordinary, extreme, zero, infinite and NaN numbers.
    #[test]
    fn fast_path_agrees_with_cel() {
        use crate::evidence::{BaselineView, SignalView};
        let conditions = [
            "signal.observed > baseline.upper && baseline.score > 0.9",
            "signal.observed < baseline.lower",
            "baseline.z > 3.0 || signal.max > 2.0 * baseline.expected",
            "signal.samples >= 5 && baseline.ready && baseline.ratio > 1.5",
            "!(signal.mean <= baseline.expected) || baseline.history > 100",
            "signal.max - baseline.expected > 3.0 * baseline.sigma && baseline.z != 0",
            "baseline.max_z > 3 && baseline.max_z > baseline.prior_abs_z_p995",
            "-baseline.z >= 2.5 || baseline.mean_abs_z < 0.25 * baseline.prior_abs_z_p50",
            "signal.observed == baseline.expected",
            "signal.samples > 2 && baseline.prior_points >= 10",
        ];
        let env = Arc::new(Env::stdlib());
        let names = FunctionNames::new(env.clone(), &[]);
        let allowed = ["signal", "baseline", "suggestion", "series"];
        let pool = [
            0.0,
            1.0,
            -2.5,
            3.0,
            0.7,
            1e9,
            -1e-9,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let mut x: u64 = 7;
        let mut pick = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pool[(x % pool.len() as u64) as usize]
        };
        let mut compared = 0;
        for src in conditions {
            let prog = compile_condition(&env, "r", "when", src, &allowed, &names).unwrap();
            let fast = crate::fastpath::compile(prog.expression())
                .unwrap_or_else(|| panic!("{src} should be in the fast subset"));
            for _ in 0..400 {
                let sig = SignalView {
                    metric: "m".into(),
                    statistic: "value".into(),
                    series: Default::default(),
                    window_s: 600.0,
                    samples: (pick().abs().min(1e6) as u64) % 20,
                    observed: pick(),
                    mean: pick(),
                    max: pick(),
                    min: pick(),
                    last: pick(),
                    start_ms: 0,
                    end_ms: 1,
                };
                let mut base = BaselineView {
                    model: "m".into(),
                    freshness_s: 0.0,
                    history: 0,
                    ready: false,
                    expected: 0.0,
                    sigma: 0.0,
                    lower: 0.0,
                    upper: 0.0,
                    z: 0.0,
                    score: 0.0,
                    raw_score: 0.0,
                    max_point_score: 0.0,
                    max_raw_score: 0.0,
                    max_z: 0.0,
                    min_z: 0.0,
                    mean_abs_z: 0.0,
                    mean_z: 0.0,
                    median_z: 0.0,
                    prior_points: 0,
                    prior_abs_z_p50: 0.0,
                    prior_abs_z_p90: 0.0,
                    prior_abs_z_p99: 0.0,
                    prior_abs_z_p995: 0.0,
                    ratio: 0.0,
                    p50: 0.0,
                    p90: 0.0,
                    p99: 0.0,
                };
                base.ready = pick() > 0.0;
                base.history = (pick().abs().min(1e6) as u64) % 300;
                base.prior_points = (pick().abs().min(1e6) as u64) % 30;
                for f in [
                    &mut base.expected,
                    &mut base.sigma,
                    &mut base.lower,
                    &mut base.upper,
                    &mut base.z,
                    &mut base.score,
                    &mut base.ratio,
                    &mut base.max_z,
                    &mut base.mean_abs_z,
                    &mut base.prior_abs_z_p50,
                    &mut base.prior_abs_z_p995,
                ] {
                    *f = pick();
                }
                let Some(got) = fast.eval(&sig, &base) else {
                    continue; // a NaN was read: CEL decides
                };
                let mut ctx = Context::with_env(env.clone());
                ctx.add_variable_from_value("signal", cel::to_value(&sig).unwrap());
                ctx.add_variable_from_value("baseline", cel::to_value(&base).unwrap());
                let want = prog.execute(&ctx);
                assert_eq!(want, Ok(Value::Bool(got)), "{src} on {sig:?} {base:?}");
                compared += 1;
            }
        }
        assert!(compared > 1000, "{compared}");
        // Outside the subset: mixed-type arithmetic (a CEL error), functions, the suggestion.
        for src in [
            "2 * signal.max > 1.0",
            "abs(baseline.z) > 3.0",
            "suggestion.id == 'x'",
        ] {
            let prog = compile_condition(&env, "r", "when", src, &allowed, &names).unwrap();
            assert!(
                crate::fastpath::compile(prog.expression()).is_none(),
                "{src}"
            );
        }
    }

    #[test]
    fn signal_where_picks_among_the_subject_series() {
        let mut store = SeriesStore::new(StoreConfig::default());
        for (cpu, v) in [("cpu0", 0.2), ("cpu1", 0.9)] {
            for i in 0..40 {
                store
                    .push(
                        "system.cpu.utilization",
                        "value",
                        &[("cpu", cpu), ("host.name", "h1")],
                        i * 60_000,
                        v,
                    )
                    .unwrap();
            }
        }
        let mut s = spec("busy", "true", Some("signal.observed > 0.5"), true);
        let sig = s.signal.as_mut().unwrap();
        sig.metric = "system.cpu.utilization".into();
        sig.statistic = "value".into();
        sig.where_expr = Some("series['cpu'] == 'cpu1'".into());
        let rules = RuleSet::compile(vec![s.clone()], "").unwrap();
        let sugg = json!({"subject": {"host.name": "h1"}, "claim": {"kind": "saturation_high"}});
        let out = rules.evaluate(&store, &sugg, 39 * 60_000);
        assert_eq!(out[0].when, Some(true), "{:?}", out[0]);
        assert_eq!(out[0].signal.as_ref().unwrap().series["cpu"], "cpu1");
        // Without `where` the first series (sorted by attributes) is read.
        s.signal.as_mut().unwrap().where_expr = None;
        let out =
            RuleSet::compile(vec![s.clone()], "")
                .unwrap()
                .evaluate(&store, &sugg, 39 * 60_000);
        assert_eq!(out[0].when, Some(false));
        // A `where` nothing satisfies: no series, so missing evidence.
        s.signal.as_mut().unwrap().where_expr = Some("series['cpu'] == 'cpu9'".into());
        let out =
            RuleSet::compile(vec![s.clone()], "")
                .unwrap()
                .evaluate(&store, &sugg, 39 * 60_000);
        assert!(out[0].missing.is_some());
        // Checked at load like any condition.
        s.signal.as_mut().unwrap().where_expr = Some("seriess['cpu'] == 'x'".into());
        let errs = RuleSet::compile(vec![s], "").err().unwrap();
        assert_eq!(errs[0].field, "where");
    }
}
