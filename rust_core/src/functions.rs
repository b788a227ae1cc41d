//! Functions rule conditions may call besides CEL's standard library.
//!
//! * `matches` (also `x.matches(re)`) runs on Rust's linear-time `regex` with a size limit, and
//!   compiled patterns are cached: the `cel` crate's own `matches` recompiles on every call, so
//!   Referee builds `cel` without it and provides this one.
//! * Baseline maths: `abs`, `max`, `min`, `ratio`, `pct_change`, `within`. They take ints or
//!   doubles (mixed freely, unlike CEL's arithmetic operators) and return doubles or bools.
//!
//! Plugins add more through `referee_register_rule_functions`; their names may not shadow these.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::extractors::{Arguments, This};
use cel::{Context, ExecutionError, Value};
use regex::{Regex, RegexBuilder};

/// Names of the functions this module registers.
pub const BUILTIN_FUNCTIONS: &[&str] = &[
    "matches",
    "abs",
    "max",
    "min",
    "ratio",
    "pct_change",
    "within",
];

/// Largest compiled program a pattern may produce (bytes), and the same for the lazy DFA.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Patterns kept compiled; the cache is cleared when full (patterns come from rule files, so
/// in practice the set is small and fixed).
pub const REGEX_CACHE_CAPACITY: usize = 512;

type Cache = Mutex<HashMap<String, Result<Arc<Regex>, String>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compiles `pattern` with the size limits, or returns the cached result.
pub fn regex(pattern: &str) -> Result<Arc<Regex>, String> {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(hit) = cache.get(pattern) {
        return hit.clone();
    }
    let compiled = RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"));
    if cache.len() >= REGEX_CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(pattern.to_string(), compiled.clone());
    compiled
}

/// Patterns currently compiled (for tests and statistics).
pub fn regex_cache_len() -> usize {
    cache().lock().map(|c| c.len()).unwrap_or(0)
}

fn number(f: &str, v: &Value) -> Result<f64, ExecutionError> {
    match v {
        Value::Float(x) => Ok(*x),
        Value::Int(i) => Ok(*i as f64),
        Value::UInt(u) => Ok(*u as f64),
        other => Err(ExecutionError::function_error(
            f,
            format!("expects numbers, got {:?}", other.type_of()),
        )),
    }
}

fn numbers<const N: usize>(f: &str, args: &[Value]) -> Result<[f64; N], ExecutionError> {
    if args.len() != N {
        return Err(ExecutionError::function_error(
            f,
            format!("takes {N} arguments, got {}", args.len()),
        ));
    }
    let mut out = [0.0; N];
    for (o, a) in out.iter_mut().zip(args) {
        *o = number(f, a)?;
    }
    Ok(out)
}

/// Registers the built-ins on a root context.
pub fn register(ctx: &mut Context<'_, '_>) {
    // The names are not CEL built-ins (cel is built without its `regex` feature), so these
    // registrations cannot clash.
    let _ = ctx.add_function(
        "matches",
        |This(this): This<Value>, pattern: Value| -> Result<bool, ExecutionError> {
            match (&this, &pattern) {
                (Value::String(s), Value::String(p)) => regex(p)
                    .map(|re| re.is_match(s))
                    .map_err(|e| ExecutionError::function_error("matches", e)),
                _ => Err(ExecutionError::function_error(
                    "matches",
                    "expects a string and a pattern string",
                )),
            }
        },
    );
    let _ = ctx.add_function("abs", |Arguments(a): Arguments| {
        numbers::<1>("abs", &a).map(|[x]| Value::Float(x.abs()))
    });
    let _ = ctx.add_function("max", |Arguments(a): Arguments| {
        numbers::<2>("max", &a).map(|[x, y]| Value::Float(x.max(y)))
    });
    let _ = ctx.add_function("min", |Arguments(a): Arguments| {
        numbers::<2>("min", &a).map(|[x, y]| Value::Float(x.min(y)))
    });
    // ratio(a, b): a / b, and 0 when b is 0 (a rule should not fail because a baseline is 0).
    let _ = ctx.add_function("ratio", |Arguments(a): Arguments| {
        numbers::<2>("ratio", &a).map(|[x, y]| Value::Float(if y == 0.0 { 0.0 } else { x / y }))
    });
    // pct_change(observed, expected): relative change in percent; 0 when expected is 0.
    let _ = ctx.add_function("pct_change", |Arguments(a): Arguments| {
        numbers::<2>("pct_change", &a).map(|[x, e]| {
            Value::Float(if e == 0.0 {
                0.0
            } else {
                100.0 * (x - e) / e.abs()
            })
        })
    });
    // within(x, lower, upper): lower <= x <= upper.
    let _ = ctx.add_function("within", |Arguments(a): Arguments| {
        numbers::<3>("within", &a).map(|[x, lo, hi]| Value::Bool(lo <= x && x <= hi))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::Env;

    fn eval(src: &str) -> Result<Value, ExecutionError> {
        let env = Arc::new(Env::stdlib());
        let mut ctx = Context::with_env(env.clone());
        register(&mut ctx);
        env.compile(src).unwrap().execute(&ctx)
    }

    #[test]
    fn matches_uses_the_cache_in_both_call_forms() {
        assert_eq!(
            eval("'checkout-api'.matches('^check')"),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval("matches('search', '^check')"), Ok(Value::Bool(false)));
        // The same pattern comes back from the cache, not compiled again.
        assert!(Arc::ptr_eq(
            &regex("^check").unwrap(),
            &regex("^check").unwrap()
        ));
        assert!(regex_cache_len() >= 1);
        assert!(eval("'x'.matches('(')").is_err());
    }

    #[test]
    fn oversized_patterns_are_refused() {
        // A counted repetition that would compile to far more than the size limit.
        let err = regex(r"(\w{200}){200}").unwrap_err();
        assert!(err.contains("size limit"), "{err}");
    }

    #[test]
    fn baseline_maths_mixes_ints_and_doubles() {
        assert_eq!(eval("abs(-2)"), Ok(Value::Float(2.0)));
        assert_eq!(eval("max(1, 2.5)"), Ok(Value::Float(2.5)));
        assert_eq!(eval("ratio(3, 0)"), Ok(Value::Float(0.0)));
        assert_eq!(eval("pct_change(1.5, 1)"), Ok(Value::Float(50.0)));
        assert_eq!(eval("within(2, 1, 3.0)"), Ok(Value::Bool(true)));
        assert!(eval("abs('x')").is_err());
        assert!(eval("max(1)").is_err());
    }
}
