use super::*;

#[test]
fn caps_series_and_counts_rejections() {
    let mut store = SeriesStore::new(StoreConfig {
        max_series: 2,
        ..Default::default()
    });
    assert!(store.push("m", "value", &[("a", "1")], 1, 1.0).is_ok());
    assert!(store.push("m", "value", &[("a", "2")], 1, 1.0).is_ok());
    assert_eq!(
        store.push("m", "value", &[("a", "3")], 1, 1.0),
        Err(Rejection::SeriesLimit)
    );
    // An existing series still takes points at the cap.
    assert!(store.push("m", "value", &[("a", "1")], 2, 1.0).is_ok());
    assert_eq!(store.stats.series_rejected, 1);
    assert_eq!(store.stats.points_accepted, 3);
}

#[test]
fn packed_attributes_round_trip_and_compare() {
    let long = "v".repeat(300);
    let attrs = [("", "x"), ("a", long.as_str()), ("é", "")];
    let p = PackedAttrs::new(&attrs);
    assert_eq!(p.iter().collect::<Vec<_>>(), attrs.to_vec());
    assert_eq!(p.len(), 3);
    assert!(p.equals(&attrs));
    assert!(!p.equals(&attrs[..2]));
    assert!(!p.equals(&[("", "x"), ("a", "v"), ("é", "")]));
    // A value cannot pass for a key: lengths delimit every string.
    assert!(!PackedAttrs::new(&[("ab", "")]).equals(&[("a", "b")]));
    assert!(PackedAttrs::new(&[]).is_empty());
    // Ordered as the (key, value) pairs are.
    assert!(PackedAttrs::new(&[("a", "1")]) < PackedAttrs::new(&[("a", "1"), ("b", "")]));
    assert!(PackedAttrs::new(&[("a", "2")]) > PackedAttrs::new(&[("a", "1"), ("b", "")]));
}

#[test]
fn out_of_order_and_duplicates_are_counted() {
    let mut store = SeriesStore::new(StoreConfig::default());
    store.push("m", "value", &[], 10, 1.0).unwrap();
    assert!(store.push("m", "value", &[], 10, 2.0).is_err());
    assert!(store.push("m", "value", &[], 5, 2.0).is_err());
    assert!(store.push("m", "value", &[], 11, f64::NAN).is_err());
    assert_eq!(store.stats.duplicates, 1);
    assert_eq!(store.stats.out_of_order, 1);
    assert_eq!(store.stats.points_rejected, 3);
}

#[test]
fn find_prefers_the_rollup() {
    let mut store = SeriesStore::new(StoreConfig::default());
    store
        .push(
            "m",
            "p99",
            &[("http.route", "/a"), ("service.name", "web")],
            1,
            1.0,
        )
        .unwrap();
    store
        .push("m", "p99", &[("service.name", "web")], 1, 1.0)
        .unwrap();
    store
        .push("m", "p99", &[("service.name", "db")], 1, 1.0)
        .unwrap();
    let subject = vec![("service.name".to_string(), "web".to_string())];
    let found = store.find("m", "p99", &subject);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].attributes.len(), 1);
}

#[test]
fn fitted_band_judges_points_it_covers() {
    use crate::band::{ArtifactSpec, BandArtifact};
    let mut store = SeriesStore::new(StoreConfig::default());
    for i in 0..50 {
        store.push("m", "value", &[], i * 1000, 10.0).unwrap();
    }
    let spec = |version| ArtifactSpec {
        version,
        model: "statsmodels.stl".into(),
        anchor_ms: 50_000,
        step_ms: 1000,
        expected: vec![100.0; 10],
        sigma: vec![5.0; 10],
        valid_until_ms: 55_000,
        fitted_at_ms: 49_000,
        backtest_mae: 1.0,
        streaming_mae: 2.0,
    };
    let art = BandArtifact::from_spec(spec(1)).unwrap();
    assert!(store.set_band("nope", "value", &[], art.clone()).is_err());
    store.set_band("m", "value", &[], art).unwrap();
    let stale = BandArtifact::from_spec(spec(1)).unwrap();
    assert!(store
        .set_band("m", "value", &[], stale)
        .unwrap_err()
        .starts_with("version:"));
    store.push("m", "value", &[], 50_000, 100.0).unwrap();
    store.push("m", "value", &[], 56_000, 100.0).unwrap(); // past valid_until
    let s = store.get("m", "value", &[]).unwrap();
    let fitted = s.ring[s.ring.len() - 2];
    assert_eq!(fitted.model.unwrap().name(), "statsmodels.stl");
    assert_eq!(fitted.expected, 100.0);
    assert_eq!(fitted.score, 0.0);
    let fallback = s.ring[s.ring.len() - 1];
    assert_eq!(fallback.model.unwrap().name(), "streaming.median_mad");
}

#[test]
fn reads_are_recorded_as_touches() {
    let mut store = SeriesStore::new(StoreConfig::default());
    store.push("m", "value", &[("a", "1")], 1, 1.0).unwrap();
    store.push("m", "value", &[("a", "2")], 1, 1.0).unwrap();
    let s = store.get("m", "value", &[("a", "2")]).unwrap();
    store.touch(s);
    let touched = store.take_touched();
    assert_eq!(touched.len(), 1);
    assert_eq!(touched[0].2, vec![("a".to_string(), "2".to_string())]);
    assert!(store.take_touched().is_empty());
}

#[test]
fn ring_is_bounded() {
    let mut store = SeriesStore::new(StoreConfig {
        ring_capacity: 4,
        ..Default::default()
    });
    for i in 0..10 {
        store.push("m", "value", &[], i, i as f64).unwrap();
    }
    let s = store.get("m", "value", &[]).unwrap();
    assert_eq!(s.ring.len(), 4);
    assert_eq!(s.ring.front().unwrap().ts_ms, 6);
}

#[test]
fn one_alert_per_episode_over_the_ring_and_not_across_a_reset() {
    let mut store = SeriesStore::new(StoreConfig::default());
    let attrs = [("service.name", "web")];
    let t = std::cell::Cell::new(0i64);
    let push = |store: &mut SeriesStore, v: f64| {
        t.set(t.get() + 60_000);
        store.push("m", "value", &attrs, t.get(), v).unwrap();
        store
            .get("m", "value", &attrs)
            .unwrap()
            .ring
            .back()
            .unwrap()
            .score
    };
    for i in 0..100 {
        push(&mut store, 10.0 + (i % 3) as f64);
    }
    let first = push(&mut store, 100.0);
    assert!(first > 0.5, "{first}");
    assert_eq!(
        push(&mut store, 90.0),
        0.0,
        "a smaller outlier in the episode"
    );
    // 288 points later the first outlier has left the horizon: the ring is rescanned and
    // the second one (still inside) keeps a similar outlier quiet...
    for i in 0..287 {
        push(&mut store, 10.0 + (i % 3) as f64);
    }
    assert_eq!(push(&mut store, 80.0), 0.0);
    // ...until it has left too.
    for i in 0..289 {
        push(&mut store, 10.0 + (i % 3) as f64);
    }
    assert!(push(&mut store, 80.0) > 0.5);
    // After a gap long enough to reset, earlier maxima no longer count.
    t.set(t.get() + 2 * 86_400_000);
    for i in 0..40 {
        push(&mut store, 10.0 + (i % 3) as f64);
    }
    assert!(push(&mut store, 60.0) > 0.5);
}
