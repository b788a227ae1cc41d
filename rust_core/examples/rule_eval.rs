//! Cost of compiled-rule evaluation, without Python (`cargo run --release --example rule_eval`;
//! `make bench` runs it and records its JSON line in bench/results.json).
//!
//! One series (600 one-minute points) and N rules that all match the suggestion and read it
//! over a 10-minute window, each with a typical `when`. Three figures, per rule and series:
//! * `evaluate_ns_per_rule`: `RuleSet::evaluate` as the decision path calls it (match, series
//!   lookup, window and baseline read, evidence converted for CEL, when), slope over N;
//! * `signal_read_ns`: the series lookup and window/baseline read alone;
//! * `condition_ns`: one compiled `when` executed against evidence already bound (CEL alone).
use std::hint::black_box;
use std::time::Instant;

use referee_core::evidence::{self, SignalSpec};
use referee_core::rules::{RuleSet, RuleSpec};
use referee_core::store::{SeriesStore, StoreConfig};

const NOW_MS: i64 = 1_700_000_000_000;
const METRIC: &str = "http.server.request.duration";
const MATCH: &str =
    r#"suggestion.claim.kind == "latency_high" && suggestion.subject["service.name"] == "web""#;
/// The same conditions bench/rules_eval.py gives the pure-Python CEL reference.
const WHENS: &[&str] = &[
    "signal.observed > baseline.upper && baseline.score > 0.9",
    "signal.observed < baseline.lower",
    "baseline.z > 3.0 || signal.max > 2.0 * baseline.expected",
    "signal.samples >= 5 && baseline.ready && baseline.ratio > 1.5",
];

fn specs(n: usize) -> Vec<RuleSpec> {
    let rules: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("r{i}"),
                "match": MATCH,
                "when": WHENS[i % WHENS.len()],
                "signal": {"metric": METRIC, "statistic": "p99", "window_s": 600.0,
                           "agg": "mean", "min_history": 30},
            })
        })
        .collect();
    serde_json::from_value(serde_json::Value::Array(rules)).expect("rule specs")
}

/// Seconds per call of `f`, the best of 5 rounds of `reps` calls.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut x: u64 = 1;
    for i in 0..600i64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        let ts = NOW_MS - (600 - i) * 60_000;
        store
            .push(
                METRIC,
                "p99",
                &[("service.name", "web")],
                ts,
                0.3 + 0.04 * noise,
            )
            .expect("point");
    }
    let suggestion = serde_json::json!({
        "id": "bench", "source": "bench", "subject": {"service.name": "web"},
        "claim": {"kind": "latency_high"}, "created_at": "2023-11-14T22:13:20Z",
    });

    // Slope over the number of rules: the per-call part (suggestion conversion, context) cancels.
    let (small, large) = (1usize, 256usize);
    let rs_small = RuleSet::compile(specs(small), "bench").expect("compile");
    let rs_large = RuleSet::compile(specs(large), "bench").expect("compile");
    let outcomes = rs_large.evaluate(&store, &suggestion, NOW_MS);
    assert!(outcomes
        .iter()
        .all(|o| o.matched && o.when.is_some() && o.error.is_none() && o.missing.is_none()));
    let t_small = best(2000, || {
        black_box(rs_small.evaluate(&store, black_box(&suggestion), NOW_MS));
    });
    let t_large = best(20, || {
        black_box(rs_large.evaluate(&store, black_box(&suggestion), NOW_MS));
    });
    let per_rule = (t_large - t_small) / (large - small) as f64;

    let spec: SignalSpec = serde_json::from_value(serde_json::json!(
        {"metric": METRIC, "statistic": "p99", "window_s": 600.0}
    ))
    .expect("signal spec");
    let subject = vec![("service.name".to_string(), "web".to_string())];
    let t_read = best(2000, || {
        black_box(evidence::read(&store, black_box(&spec), &subject, NOW_MS).is_ok());
    });

    // CEL alone: each `when` compiled once, executed against evidence already bound.
    let (sig, base) = evidence::read(&store, &spec, &subject, NOW_MS).expect("evidence");
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("signal", cel::to_value(&sig).expect("signal"));
    ctx.add_variable_from_value("baseline", cel::to_value(&base).expect("baseline"));
    let programs: Vec<cel::Program> = WHENS
        .iter()
        .map(|w| cel::Program::compile(w).expect("when"))
        .collect();
    let t_cond = best(5000, || {
        for p in &programs {
            black_box(p.execute(&ctx).is_ok());
        }
    }) / programs.len() as f64;

    println!(
        "{}",
        serde_json::json!({
            "rules": large,
            "evaluate_ns_per_rule": (per_rule * 1e9).round(),
            "evaluate_per_call_overhead_ns": ((t_small - per_rule) * 1e9).round(),
            "signal_read_ns": (t_read * 1e9).round(),
            "condition_ns": (t_cond * 1e9).round(),
        })
    );
}
