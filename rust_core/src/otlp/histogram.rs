//! Explicit-bucket histogram arithmetic: exponential histograms as explicit buckets, quantiles
//! estimated from bucket counts, and roll-ups that merge histograms with different bounds.

use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point, ExponentialHistogramDataPoint, HistogramDataPoint,
};

/// Roll-up of one histogram metric over a service's points (all instances, routes and
/// statuses) at one timestamp, or, once merged in `EventAggregator`, over one minute.
#[derive(Default, Debug, Clone)]
pub struct Rollup {
    pub dt_s: f64,
    pub count: u64,
    pub sum: f64,
    pub has_sum: bool,
    pub errors: u64,
    pub bounds: Vec<f64>,
    pub buckets: Vec<f64>,
    pub min: f64,
    pub max: f64,
    /// Earliest start and latest end (ms) of the intervals merged: the time the counts cover.
    pub first_ms: i64,
    pub last_ms: i64,
}

/// The range of bucket `k` of an explicit histogram with `bounds`.
fn bucket_range(bounds: &[f64], k: usize) -> (f64, f64) {
    let lo = if k == 0 {
        f64::NEG_INFINITY
    } else {
        bounds[k - 1]
    };
    let hi = if k == bounds.len() {
        f64::INFINITY
    } else {
        bounds[k]
    };
    (lo, hi)
}

impl Rollup {
    /// Adds a histogram's buckets. Histograms with other bounds (several SDKs, or exponential
    /// histograms at other scales) are merged onto the union of both bound sets, each count
    /// spread over the union buckets its own bucket overlaps, in proportion to the overlap.
    pub(super) fn add_buckets(&mut self, bounds: &[f64], buckets: &[u64]) {
        if self.bounds == bounds && self.buckets.len() == buckets.len() {
            for (a, b) in self.buckets.iter_mut().zip(buckets) {
                *a += *b as f64;
            }
            return;
        }
        let counts: Vec<f64> = buckets.iter().map(|c| *c as f64).collect();
        self.add_buckets_f(bounds, &counts);
    }

    /// Merges another roll-up (same metric and service) into this one.
    pub fn merge(&mut self, other: &Rollup) {
        self.dt_s = self.dt_s.max(other.dt_s);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.count += other.count;
        self.sum += other.sum;
        self.has_sum |= other.has_sum;
        self.errors += other.errors;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if self.buckets.is_empty() {
            self.bounds.clone_from(&other.bounds);
            self.buckets.clone_from(&other.buckets);
        } else {
            self.add_buckets_f(&other.bounds, &other.buckets);
        }
    }

    /// Requests per second over the time the merged intervals cover (several exports of one
    /// instance in a minute, or one export covering five minutes, both come out right).
    pub fn rate(&self) -> Option<f64> {
        let span_s = (self.last_ms - self.first_ms) as f64 / 1000.0;
        (span_s > 0.0).then(|| self.count as f64 / span_s)
    }

    /// Quantile `q` of the merged buckets, bounded by the recorded min/max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        bucket_quantile_f(&self.bounds, &self.buckets, q, self.min, self.max)
    }

    fn add_buckets_f(&mut self, bounds: &[f64], buckets: &[f64]) {
        if buckets.len() != bounds.len() + 1 {
            return;
        }
        if self.bounds == bounds && self.buckets.len() == buckets.len() {
            for (a, b) in self.buckets.iter_mut().zip(buckets) {
                *a += *b;
            }
            return;
        }
        let mut union: Vec<f64> = self.bounds.iter().chain(bounds).copied().collect();
        union.sort_unstable_by(|a, b| a.total_cmp(b));
        union.dedup();
        let mut merged = vec![0.0; union.len() + 1];
        let old_bounds = std::mem::take(&mut self.bounds);
        let old: Vec<f64> = std::mem::take(&mut self.buckets);
        let sources = [(old_bounds.as_slice(), old), (bounds, buckets.to_vec())];
        for (b, counts) in &sources {
            if counts.len() != b.len() + 1 {
                continue;
            }
            for (k, c) in counts.iter().enumerate() {
                if *c == 0.0 {
                    continue;
                }
                let (lo, hi) = bucket_range(b, k);
                if !lo.is_finite() || !hi.is_finite() {
                    // An open-ended bucket goes whole to the union bucket at its finite edge.
                    let j = if lo.is_finite() {
                        union.partition_point(|u| *u <= lo)
                    } else {
                        union.partition_point(|u| *u < hi)
                    };
                    merged[j] += c;
                    continue;
                }
                for (j, m) in merged.iter_mut().enumerate() {
                    let (ulo, uhi) = bucket_range(&union, j);
                    let overlap = hi.min(uhi) - lo.max(ulo);
                    if overlap > 0.0 {
                        *m += c * overlap / (hi - lo);
                    }
                }
            }
        }
        self.bounds = union;
        self.buckets = merged;
    }
}

/// Estimates quantile `q` from explicit-bucket counts by linear interpolation in the bucket.
pub fn bucket_quantile(bounds: &[f64], buckets: &[u64], q: f64, min: f64, max: f64) -> Option<f64> {
    let counts: Vec<f64> = buckets.iter().map(|c| *c as f64).collect();
    bucket_quantile_f(bounds, &counts, q, min, max)
}

/// `bucket_quantile` over fractional counts (merged roll-ups).
pub fn bucket_quantile_f(
    bounds: &[f64],
    buckets: &[f64],
    q: f64,
    min: f64,
    max: f64,
) -> Option<f64> {
    let total: f64 = buckets.iter().sum();
    if total <= 0.0 || buckets.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total;
    let mut seen = 0.0;
    for (i, c) in buckets.iter().enumerate() {
        let c = *c;
        if c > 0.0 && seen + c >= rank {
            let lower = if i == 0 {
                min.min(bounds.first().copied().unwrap_or(0.0))
            } else {
                bounds[i - 1]
            };
            let upper = if i == bounds.len() {
                max.max(lower)
            } else {
                bounds[i]
            };
            let lower = if lower.is_finite() {
                lower
            } else {
                upper.min(0.0)
            };
            let upper = if upper.is_finite() { upper } else { lower };
            let frac = ((rank - seen) / c).clamp(0.0, 1.0);
            let estimate = lower + (upper - lower) * frac;
            // Coarse buckets (the SDK's default bounds are milliseconds-sized even for seconds)
            // put estimates far from every value: the recorded min/max bound them.
            return Some(
                estimate
                    .min(max.max(estimate.min(lower)))
                    .max(min.min(estimate)),
            );
        }
        seen += c;
    }
    None
}

/// An exponential histogram's buckets as explicit ones, appended to `bounds` and `counts`:
/// negative buckets (most negative first), the zero bucket, then positive buckets; bucket `i`
/// at scale `s` covers `(base^i, base^(i+1)]` with `base = 2^(2^-s)`. `negative` and
/// `positive` are (offset, counts).
pub fn exponential_buckets(
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    negative: (i32, &[u64]),
    positive: (i32, &[u64]),
    bounds: &mut Vec<f64>,
    counts: &mut Vec<u64>,
) {
    let (b0, c0) = (bounds.len(), counts.len());
    let base = 2f64.powf(2f64.powi(-scale));
    let (offset, neg) = negative;
    for (k, c) in neg.iter().enumerate().rev() {
        let i = offset as f64 + k as f64;
        bounds.push(-base.powf(i));
        counts.push(*c);
    }
    let has_negative = counts.len() > c0;
    if zero_count > 0 || has_negative {
        bounds.push(zero_threshold.max(0.0));
        counts.push(zero_count);
    }
    let (offset, pos) = positive;
    for (k, c) in pos.iter().enumerate() {
        let i = offset as f64 + k as f64;
        bounds.push(base.powf(i + 1.0));
        counts.push(*c);
    }
    // Explicit histograms have one more bucket than bounds: the last upper edge is implied
    // (the recorded max bounds it when quantiles are estimated).
    if bounds.len() > b0 {
        bounds.pop();
    }
    if counts.len() == c0 {
        counts.push(0);
    }
}

/// An exponential histogram point as an explicit-bucket one (see `exponential_buckets`).
pub fn exponential_to_explicit(p: &ExponentialHistogramDataPoint) -> HistogramDataPoint {
    let side = |b: &Option<exponential_histogram_data_point::Buckets>| {
        b.as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone()))
            .unwrap_or_default()
    };
    let (neg, pos) = (side(&p.negative), side(&p.positive));
    let (mut bounds, mut counts) = (Vec::new(), Vec::new());
    exponential_buckets(
        p.scale,
        p.zero_count,
        p.zero_threshold,
        (neg.0, &neg.1),
        (pos.0, &pos.1),
        &mut bounds,
        &mut counts,
    );
    HistogramDataPoint {
        attributes: p.attributes.clone(),
        start_time_unix_nano: p.start_time_unix_nano,
        time_unix_nano: p.time_unix_nano,
        count: p.count,
        sum: p.sum,
        bucket_counts: counts,
        explicit_bounds: bounds,
        exemplars: Vec::new(),
        flags: p.flags,
        min: p.min,
        max: p.max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let q = bucket_quantile(
            &[1.0, 2.0],
            &[0, 10, 0],
            0.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
        )
        .unwrap();
        assert!((q - 1.5).abs() < 1e-9);
    }
}
