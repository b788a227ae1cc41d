//! Quantiles of sorted values: the one definition every exact quantile in the crate uses.
//!
//! Linear interpolation between the closest ranks (numpy's default, "type 7"): rank
//! `q · (n − 1)`, and between two ranks the weighted mean `lo · (1 − f) + hi · f`, which for
//! the median of an even count is exactly `(lo + hi) / 2`. An exact rank returns its value
//! unchanged. `q` is clamped to [0, 1]; an empty slice gives NaN.
//!
//! Histogram quantiles (from bucket counts, not values) are another computation and live
//! with the histograms (`otlp::histogram`); the streaming sketch answers its own (`baseline`).

/// Quantile `q` of `sorted` (ascending), or NaN when it is empty.
pub fn sorted_quantile<T: Copy + Into<f64>>(sorted: &[T], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let f = rank - lo as f64;
    let low: f64 = sorted[lo].into();
    if f == 0.0 {
        return low;
    }
    let high: f64 = sorted[(lo + 1).min(n - 1)].into();
    low * (1.0 - f) + high * f
}

#[cfg(test)]
mod tests {
    use super::sorted_quantile;

    #[test]
    fn interpolates_like_numpy() {
        let v = [1.0_f64, 2.0, 3.0, 4.0];
        assert_eq!(sorted_quantile(&v, 0.0), 1.0);
        assert_eq!(sorted_quantile(&v, 1.0), 4.0);
        assert_eq!(sorted_quantile(&v, 0.5), 2.5);
        assert!((sorted_quantile(&v, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(sorted_quantile(&v, 2.0), 4.0);
        assert!(sorted_quantile::<f64>(&[], 0.5).is_nan());
        assert_eq!(sorted_quantile(&[7.0_f32], 0.3), 7.0);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let v = [0.1_f32, 0.2, 0.7, 0.9];
        assert_eq!(
            sorted_quantile(&v, 0.5),
            (0.2_f32 as f64 + 0.7_f32 as f64) / 2.0
        );
    }

    #[test]
    fn an_exact_rank_is_returned_unchanged_even_next_to_infinity() {
        assert_eq!(sorted_quantile(&[1.0, f64::INFINITY], 0.0), 1.0);
        assert_eq!(sorted_quantile(&[1.0, 2.0, f64::INFINITY], 0.5), 2.0);
    }
}
