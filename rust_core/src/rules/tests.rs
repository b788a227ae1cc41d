use std::sync::Arc;

use cel::{Context, Env, Value};
use serde_json::json;

use super::*;
use crate::evidence::SignalSpec;
use crate::store::{SeriesStore, StoreConfig};

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
    let s =
        json!({"id": "1", "subject": {"service.name": "web"}, "claim": {"kind": "latency_high"}});
    let out = rules.evaluate(&store, &s, 64 * 60_000);
    assert!(out[0].matched);
    assert_eq!(out[0].when, Some(true), "{:?}", out[0]);
    assert!(!out[1].matched);
    // Another service: no series, so the rule reports missing evidence.
    let s =
        json!({"id": "2", "subject": {"service.name": "db"}, "claim": {"kind": "latency_high"}});
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
    let p = compile_condition(&env, "r", "when", "2.0 * 1.5 > 2 && 3 < 3.5", &[], &names).unwrap();
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
        "baseline.p_up <= 0.01 || baseline.level_p_down < 0.05",
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
                prior_windows: 0,
                p_up: 0.0,
                p_down: 0.0,
                p_value: 0.0,
                level_p_up: 0.0,
                level_p_down: 0.0,
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
                &mut base.p_up,
                &mut base.level_p_down,
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
    let out = RuleSet::compile(vec![s.clone()], "")
        .unwrap()
        .evaluate(&store, &sugg, 39 * 60_000);
    assert_eq!(out[0].when, Some(false));
    // A `where` nothing satisfies: no series, so missing evidence.
    s.signal.as_mut().unwrap().where_expr = Some("series['cpu'] == 'cpu9'".into());
    let out = RuleSet::compile(vec![s.clone()], "")
        .unwrap()
        .evaluate(&store, &sugg, 39 * 60_000);
    assert!(out[0].missing.is_some());
    // Checked at load like any condition.
    s.signal.as_mut().unwrap().where_expr = Some("seriess['cpu'] == 'x'".into());
    let errs = RuleSet::compile(vec![s], "").err().unwrap();
    assert_eq!(errs[0].field, "where");
}
