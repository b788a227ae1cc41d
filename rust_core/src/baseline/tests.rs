use super::*;

#[test]
fn median_and_mad_match_a_sort() {
    let mut w = MedianWindow::new(5);
    for x in [5.0, 1.0, 9.0, 3.0, 7.0, 2.0] {
        w.push(x);
    }
    // window is [1, 9, 3, 7, 2] -> sorted [1, 2, 3, 7, 9]
    assert_eq!(w.median(), 3.0);
    // deviations [2, 1, 0, 4, 6] -> median 2
    assert_eq!(w.mad(), 2.0);
    w.push(4.0); // [9, 3, 7, 2, 4] -> sorted [2,3,4,7,9], median 4, devs [2,1,0,3,5] -> 2
    assert_eq!(w.median(), 4.0);
    assert_eq!(w.mad(), 2.0);
}

#[test]
fn mad_even_window() {
    let mut w = MedianWindow::new(4);
    for x in [1.0, 2.0, 3.0, 10.0] {
        w.push(x);
    }
    assert_eq!(w.median(), 2.5);
    // deviations [1.5, 0.5, 0.5, 7.5] -> sorted [0.5, 0.5, 1.5, 7.5] -> median 1.0
    assert_eq!(w.mad(), 1.0);
}

#[test]
fn flat_series_still_has_a_band() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..100 {
        b.update(i * 60_000, 5.0, &cfg);
    }
    let band = b.band(100 * 60_000, &cfg).unwrap();
    assert_eq!(band.expected, 5.0);
    assert!(band.sigma > 0.0);
    assert!(band.score(10.0) > 0.99);
}

#[test]
fn no_band_before_min_samples() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..(cfg.min_samples as i64 - 1) {
        b.update(i * 60_000, 1.0, &cfg);
    }
    assert!(b.band(0, &cfg).is_none());
}

/// A daily cycle: after a few days the evening peak is expected, not anomalous.
#[test]
fn seasonal_slots_learn_a_daily_peak() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    let step = 5 * 60_000;
    let profile = |ts: i64| {
        let h = (ts.rem_euclid(DAY_MS)) as f64 / HOUR_MS as f64;
        100.0 + 80.0 * (-((h - 19.0) / 2.0).powi(2)).exp()
    };
    let days = 5;
    for i in 0..(days * DAY_MS / step) {
        let ts = i * step;
        b.update(ts, profile(ts), &cfg);
    }
    let peak = days * DAY_MS + 19 * HOUR_MS;
    let band = b.band(peak, &cfg).unwrap();
    assert_eq!(band.model, BandModel::SeasonalSlots);
    assert!((band.expected - profile(peak)).abs() < 10.0, "{band:?}");
    assert!(band.score(profile(peak)) < 0.9);
    // Twice the usual peak is still an anomaly.
    assert!(band.score(2.0 * profile(peak)) > 0.99);
}

#[test]
fn clipping_limits_what_an_incident_teaches() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..200 {
        b.update(i * 60_000, 10.0 + (i % 3) as f64, &cfg);
    }
    for i in 200..210 {
        b.update(i * 60_000, 1000.0, &cfg);
    }
    let band = b.band(210 * 60_000, &cfg).unwrap();
    assert!(band.expected < 20.0, "{band:?}");
}

/// A weekday/weekend profile: after two weeks the weekly band expects the weekend.
#[test]
fn weekly_slots_learn_the_weekend() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    let step = 15 * 60_000;
    // 1970-01-01 is a Thursday: days 2 and 3 of each week (Sat, Sun) are quiet.
    let profile = |ts: i64| {
        if matches!(ts.div_euclid(DAY_MS).rem_euclid(7), 2 | 3) {
            20.0
        } else {
            100.0
        }
    };
    let mut ts = 0;
    while ts < 3 * WEEK_MS {
        b.update(ts, profile(ts), &cfg);
        ts += step;
    }
    let saturday_noon = 3 * WEEK_MS + 2 * DAY_MS + 12 * HOUR_MS;
    let band = b.band(saturday_noon, &cfg).unwrap();
    assert_eq!(band.model, BandModel::WeeklySlots);
    assert!((band.expected - 20.0).abs() < 5.0, "{band:?}");
    // The hour-of-day band alone would expect a weekday level.
    assert!(band.score(100.0) > 0.99);
}

#[test]
fn one_alert_per_episode() {
    let cfg = BaselineConfig {
        episode_points: 10,
        ..Default::default()
    };
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..100 {
        b.update(i * 60_000, 10.0 + (i % 3) as f64, &cfg);
    }
    b.update(100 * 60_000, 100.0, &cfg);
    let first = b.last_score;
    assert!(
        first > 0.5,
        "an outlier scores above the band edge: {first}"
    );
    b.update(101 * 60_000, 90.0, &cfg);
    assert_eq!(
        b.last_score, 0.0,
        "a smaller outlier in the same episode is not re-fired"
    );
    b.update(102 * 60_000, 1000.0, &cfg);
    assert!(b.last_score > first, "a larger one is");
    for i in 103..120 {
        b.update(i * 60_000, 10.0 + (i % 3) as f64, &cfg);
    }
    b.update(120 * 60_000, 100.0, &cfg);
    assert!(
        b.last_score > 0.5,
        "after the episode horizon the next outlier fires again"
    );
}

#[test]
fn long_gaps_are_counted_and_reset_short_memory() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..100 {
        b.update(i * 60_000, 10.0, &cfg);
    }
    let t = 100 * 60_000 + 7 * HOUR_MS;
    b.update(t, 10.0, &cfg);
    assert_eq!((b.gaps, b.resets), (1, 0));
    let t2 = t + 2 * DAY_MS;
    b.update(t2, 50.0, &cfg);
    assert_eq!((b.gaps, b.resets), (2, 1));
    // After the reset the median window holds only the new level.
    assert_eq!(b.band(t2 + 60_000, &cfg).unwrap().expected, 50.0);
}

#[test]
fn quantile_sketch_tracks_the_distribution() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    assert!(b.quantile(0.5).is_none());
    b.enable_sketch(std::iter::empty(), &cfg);
    for i in 0..1000 {
        b.update(i * 60_000, (i % 100) as f64 + 1.0, &cfg);
    }
    let p50 = b.quantile(0.5).unwrap();
    let p99 = b.quantile(0.99).unwrap();
    assert!((p50 - 50.0).abs() < 2.0, "{p50}");
    assert!((p99 - 99.0).abs() < 3.0, "{p99}");
}

#[test]
fn baseline_state_stays_under_a_kibibyte() {
    let cfg = BaselineConfig::default();
    let mut b = StreamingBaseline::new(&cfg);
    for i in 0..(3 * 288) {
        b.update(i * 300_000, (i % 17) as f64, &cfg);
    }
    let heap = b.window.sorted.len() * 4
        + b.window.tags.len()
        + b.week
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<Weekdays>());
    let total = std::mem::size_of::<StreamingBaseline>() + heap;
    assert!(total <= 1024, "{total} bytes");
}

#[test]
fn erf_is_accurate() {
    assert!((erf(1.0) - 0.842_700_79).abs() < 1e-6);
    assert!((erf(-0.5) + 0.520_499_88).abs() < 1e-6);
    assert!(erf(0.0).abs() < 1e-9);
}
