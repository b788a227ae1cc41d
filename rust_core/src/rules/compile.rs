//! Compiling a rule set: every rule's `match`, `when` and `signal.where` checked and compiled
//! (all errors reported, not just the first), plugin functions checked against the built-in
//! names, and the native fast path prepared where a condition is inside its subset.

use std::sync::Arc;

use cel::{Env, Program, Value};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::check::{check_signal, compile_condition, err, FunctionNames};
use crate::error::RuleError;
use crate::evidence::SignalSpec;

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

/// One rule compiled: its programs, and their native forms where they have one.
pub(super) struct CompiledRule {
    pub(super) id: String,
    pub(super) match_prog: Program,
    /// Index of the first rule with the same `match` text: it is evaluated once per
    /// suggestion and shared (packs repeat `suggestion.claim.kind == "..."` often).
    pub(super) match_slot: usize,
    /// The same `match` for the native evaluator, when it is inside its subset.
    pub(super) match_fast: Option<crate::fastpath::Match>,
    pub(super) when_prog: Option<Program>,
    /// The same `when` for the native evaluator, when it is inside its subset.
    pub(super) when_fast: Option<crate::fastpath::Fast>,
    /// `signal.where`: which of the subject's series the rule reads.
    pub(super) where_prog: Option<Program>,
    /// `when` reads `host`: the claimed metric among its subject's (read only then, as it
    /// reads every metric of the subject).
    pub(super) needs_host: bool,
    pub(super) signal: Option<SignalSpec>,
}

/// A function rule conditions may call, registered by a plugin (`referee_register_rule_functions`).
pub type RuleFunction = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Compiled rules, ready to be evaluated (`RuleSet::evaluate`, in `evaluate.rs`).
pub struct RuleSet {
    pub(super) env: Arc<Env>,
    pub(super) rules: Vec<CompiledRule>,
    pub(super) functions: Vec<(String, RuleFunction)>,
    pub revision: String,
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
                &["suggestion", "signal", "baseline", "series", "host"]
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
                        needs_host: when_prog
                            .as_ref()
                            .is_some_and(|p| p.references().has_variable("host")),
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

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
