//! Evaluating a rule set against one suggestion: each distinct `match` once, each rule's
//! signal resolved and its evidence read (once per distinct signal), then `when`, natively
//! when the fast path covers it and with CEL otherwise. The outcome of every rule is returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::extractors::Arguments;
use cel::{Context, ExecutionError, Value};
use serde::Serialize;

use super::check::{FROM_CLAIM_METRIC, FROM_CLAIM_SIGNAL, FROM_CLAIM_STATISTIC};
use super::compile::RuleSet;
use crate::evidence::{self, BaselineView, SignalSpec, SignalView};
use crate::functions;
use crate::host::{self, HostView};
use crate::store::{Series, SeriesStore};

/// Most items in any list or map a suggestion carries into an evaluation. With comprehensions
/// nested at most twice, this bounds every evaluation to MAX_INPUT_ITEMS² iterations per
/// comprehension: the per-evaluation budget (the `cel` crate has no cost tracking of its own).
pub const MAX_INPUT_ITEMS: usize = 256;

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
    /// The claimed metric among its subject's (`host`), when the rule's `when` reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Arc<HostView>>,
}

/// The signal a rule reads for this suggestion: `$claim.metric` (or its old spelling
/// `$claim.signal`) and `$claim.statistic` are taken from the suggestion's claim (the
/// statistic defaults to `value`).
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
    if spec.metric == FROM_CLAIM_METRIC || spec.metric == FROM_CLAIM_SIGNAL {
        resolved.metric = field("metric").or_else(|| field("signal")).ok_or_else(|| {
            "the suggestion names no metric (claim.metric, formerly claim.signal)".to_string()
        })?;
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
        let mut cache: Vec<(EvidenceKey, Result<Evidence<'_, '_, '_>, String>)> = Vec::new();
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
                        let band_k = spec.band_k.unwrap_or(store.config.baseline.band_k);
                        let read = evidence::resolve(store, &spec, &subject, &accept)
                            .and_then(|series| {
                                evidence::window(series, &spec, at_ms, band_k)
                                    .map(|ev| (series, ev))
                            })
                            .map_err(|m| m.to_string());
                        let bound = read.and_then(|(series, (sig, base))| {
                            match (cel::to_value(&sig), cel::to_value(&base)) {
                                (Ok(s), Ok(b)) => {
                                    let mut scope = root.new_inner_scope();
                                    scope.add_variable_from_value("series", map_value(&sig.series));
                                    scope.add_variable_from_value("signal", s);
                                    scope.add_variable_from_value("baseline", b);
                                    Ok(Evidence {
                                        signal: Arc::new(sig),
                                        baseline: Arc::new(base),
                                        series,
                                        host: None,
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
                if rule.needs_host {
                    if let Ok(ev) = &mut cache[i].1 {
                        if ev.host.is_none() {
                            let view = host::context(store, &spec, &subject, at_ms, ev.series);
                            match cel::to_value(&view) {
                                Ok(v) => ev.scope.add_variable_from_value("host", v),
                                Err(_) => {
                                    out.push(result.with_error(CONVERSION_FAILED.to_string()));
                                    continue;
                                }
                            }
                            ev.host = Some(Arc::new(view));
                        }
                    }
                }
                match &cache[i].1 {
                    Ok(ev) => {
                        result.signal = Some(ev.signal.clone());
                        result.baseline = Some(ev.baseline.clone());
                        if rule.needs_host {
                            result.host = ev.host.clone();
                        }
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
struct Evidence<'s, 'p, 'v> {
    signal: Arc<SignalView>,
    baseline: Arc<BaselineView>,
    /// The series read, for the host context (computed when a rule first needs it).
    series: &'s Series,
    host: Option<Arc<HostView>>,
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
        host: None,
    }
}

impl RuleOutcome {
    fn with_error(mut self, e: String) -> Self {
        self.error = Some(e);
        self
    }
}
