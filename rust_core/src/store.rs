//! The series store: every live series, its recent points and its streaming baseline.
//!
//! A series is (metric, statistic, attributes), where the attributes are the resource's
//! attributes merged with the point's. Each series keeps a bounded ring of recent samples;
//! every sample records the band it was judged against when it arrived, so window queries
//! and replays read causal expectations without recomputing anything.
//!
//! The number of series is capped: points for a new series beyond the cap are rejected and
//! counted, never silently dropped.

use std::collections::VecDeque;

// Series keys come from our own canonical encoding, hashed on every point: FxHash is several
// times faster than SipHash, and flooding is bounded by the series cap anyway.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet, FxHasher};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::band::BandArtifact;
use crate::baseline::{BandModel, BaselineConfig, StreamingBaseline};

/// Attributes of a series, sorted by key.
pub type Attributes = Vec<(String, String)>;

/// One stored point with the band it was judged against on arrival.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ts_ms: i64,
    pub value: f64,
    /// Expected value, sigma, and model, or NaN / `None` while the history was too short.
    pub expected: f64,
    pub sigma: f64,
    /// Anomaly score (0 unless the point opened or topped an episode), and the raw anomaly
    /// it came from (kept so the episode maximum can be found again from the ring).
    pub score: f32,
    pub raw: f32,
    pub model: Option<BandModel>,
}

/// The metric and statistic names of a signal, shared by all its series.
#[derive(Debug)]
pub struct SignalNames {
    pub metric: Arc<str>,
    pub statistic: Arc<str>,
}

/// A series' attributes, sorted by key, in one allocation: each key and value is its length
/// (LEB128) followed by its UTF-8 bytes. Against a box of (shared key, boxed value) pairs this
/// saves about 50 bytes per series of two attributes, and the identity check on every point
/// reads one block instead of one per value.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedAttrs(Box<[u8]>);

/// Appends the packed form of `attrs` (see `PackedAttrs`) to `out`.
fn pack_into(attrs: &[(&str, &str)], out: &mut Vec<u8>) {
    for s in attrs.iter().flat_map(|(k, v)| [k, v]) {
        let mut n = s.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(s.as_bytes());
    }
}

/// A point's attributes prepared once for every series the point updates: packed as series
/// keep them (so telling a series apart is one byte comparison) and hashed.
#[derive(Debug, Default, Clone)]
pub struct AttrKey {
    packed: Vec<u8>,
    hash: u64,
}

impl AttrKey {
    pub fn new(attrs: &[(&str, &str)]) -> Self {
        let mut key = AttrKey::default();
        key.set(attrs);
        key
    }

    /// The packed attributes: every string with its length, so no value can forge another
    /// set's bytes.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// Re-targets the key at `attrs` (sorted by key, no duplicate keys), reusing its buffer.
    pub fn set(&mut self, attrs: &[(&str, &str)]) {
        self.packed.clear();
        pack_into(attrs, &mut self.packed);
        // Lengths delimit every string, so no attribute value can forge another identity's
        // bytes, and one pass over the bytes hashes them all.
        let mut h = FxHasher::default();
        h.write(&self.packed);
        self.hash = h.finish();
    }
}

impl PackedAttrs {
    #[cfg(test)]
    fn new(attrs: &[(&str, &str)]) -> Self {
        let mut out = Vec::with_capacity(attrs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
        pack_into(attrs, &mut out);
        PackedAttrs(out.into_boxed_slice())
    }

    /// The strings in order: key, value, key, value...
    fn strings(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (mut n, mut shift, mut i) = (0usize, 0, 0);
            loop {
                let b = rest[i];
                n |= usize::from(b & 0x7f) << shift;
                i += 1;
                if b < 0x80 {
                    break;
                }
                shift += 7;
            }
            let (s, tail) = rest[i..].split_at(n);
            rest = tail;
            Some(s)
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        // Every string was a &str when packed.
        let mut it = self
            .strings()
            .map(|b| std::str::from_utf8(b).expect("packed from &str"));
        std::iter::from_fn(move || Some((it.next()?, it.next()?)))
    }

    pub fn len(&self) -> usize {
        self.strings().count() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether these are exactly `attrs`, compared as bytes.
    #[cfg(test)]
    fn equals(&self, attrs: &[(&str, &str)]) -> bool {
        let mut mine = self.strings();
        attrs
            .iter()
            .flat_map(|(k, v)| [k, v])
            .all(|s| mine.next() == Some(s.as_bytes()))
            && mine.next().is_none()
    }
}

impl Ord for PackedAttrs {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl PartialOrd for PackedAttrs {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Debug for PackedAttrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[derive(Debug)]
pub struct Series {
    /// Metric and statistic names, shared by all series of the signal.
    pub names: Arc<SignalNames>,
    /// Sorted by key.
    pub attributes: PackedAttrs,
    pub ring: VecDeque<Sample>,
    pub baseline: StreamingBaseline,
    pub out_of_order: u32,
    pub duplicates: u32,
    /// Set when a rule reads the series: its next point starts a quantile sketch.
    pub wants_sketch: AtomicBool,
    /// Set when a rule reads the series, cleared by `take_touched` (the seasonal fitter).
    pub touched: AtomicBool,
    /// The fitted band handed over from Python, if any (see `band.rs`).
    pub artifact: Option<Box<BandArtifact>>,
}

impl Series {
    pub fn metric(&self) -> &str {
        &self.names.metric
    }

    pub fn statistic(&self) -> &str {
        &self.names.statistic
    }

    /// The attributes as string pairs.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter()
    }

    /// The attributes as owned strings (for output).
    pub fn attributes_owned(&self) -> Attributes {
        self.attrs()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn is(&self, metric: &str, statistic: &str, key: &AttrKey) -> bool {
        *self.attributes.0 == *key.packed
            && self.metric() == metric
            && self.statistic() == statistic
    }
}

/// A vector in fixed chunks of `CHUNK` items: growing never copies the items, and never
/// leaves up to half of the capacity unused as a doubling `Vec` would (at 100,000 series of
/// ~600 bytes that waste alone would be ~300 bytes per series).
const CHUNK: usize = 4096;

pub struct Chunks<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunks<T> {
    fn default() -> Self {
        Chunks {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunks<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        if self.len % CHUNK == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
        }
        self.len += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

impl<T> std::ops::Index<usize> for Chunks<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> std::ops::IndexMut<usize> for Chunks<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

/// Hash of a series identity: metric, statistic and the attributes' hash (`AttrKey`).
fn identity_hash(metric: &str, statistic: &str, key: &AttrKey) -> u64 {
    let mut h = FxHasher::default();
    key.hash.hash(&mut h);
    metric.hash(&mut h);
    statistic.hash(&mut h);
    h.finish()
}

/// Store-wide counters, reported by `GET /api/v1/series` and the service's metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    pub series: usize,
    pub max_series: usize,
    pub points_accepted: u64,
    pub points_rejected: u64,
    pub series_rejected: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
}

/// Options of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub max_series: usize,
    pub ring_capacity: usize,
    pub baseline: BaselineConfig,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_series: 100_000,
            ring_capacity: 512,
            baseline: BaselineConfig::default(),
        }
    }
}

/// Why a point was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    SeriesLimit,
    NotFinite,
    OutOfOrder,
}

/// Identity hash -> series: open addressing with linear probing over 8-byte slots, each the
/// series number + 1 (0 = empty) under 32 bits of the hash (the tag, which also picks the
/// slot, so growing needs no series' hash). A slot's tag can match other identities: every
/// candidate is confirmed against the series itself (`Series::is`). Series are never removed,
/// so there are no tombstones. At most 7/8 full: half the bytes per series of a
/// `HashMap<u64, u32>` (whose entries pad to 16 bytes).
#[derive(Default)]
struct SeriesIndex {
    slots: Vec<u64>,
    len: usize,
}

impl SeriesIndex {
    fn tag(hash: u64) -> u64 {
        // Both halves of the hash count.
        ((hash >> 32) ^ hash) & 0xffff_ffff
    }

    /// Series numbers whose slots carry this hash's tag, in probe order.
    fn candidates(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let tag = Self::tag(hash);
        let mask = self.slots.len().wrapping_sub(1);
        let mut pos = tag as usize & mask;
        let mut done = self.slots.is_empty();
        std::iter::from_fn(move || {
            while !done {
                let slot = self.slots[pos];
                pos = (pos + 1) & mask;
                if slot == 0 {
                    done = true;
                } else if slot >> 32 == tag {
                    return Some((slot & 0xffff_ffff) as usize - 1);
                }
            }
            None
        })
    }

    fn insert(&mut self, hash: u64, series: u32) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            let grown = vec![0; (self.slots.len() * 2).max(64)];
            let old = std::mem::replace(&mut self.slots, grown);
            for slot in old.into_iter().filter(|s| *s != 0) {
                self.place(slot);
            }
        }
        self.place(Self::tag(hash) << 32 | (u64::from(series) + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut pos = (slot >> 32) as usize & mask;
        while self.slots[pos] != 0 {
            pos = (pos + 1) & mask;
        }
        self.slots[pos] = slot;
    }
}

/// A signal's shared names and its series.
type SignalMembers = (Arc<SignalNames>, Vec<u32>);

pub struct SeriesStore {
    pub config: StoreConfig,
    index: SeriesIndex,
    /// (metric, statistic) -> series, so rules resolve signals without scanning every series.
    by_signal: HashMap<(Arc<str>, Arc<str>), SignalMembers>,
    /// Metric, statistic and attribute-key names, each stored once.
    names: HashSet<Arc<str>>,
    series: Chunks<Series>,
    pub stats: StoreStats,
}

impl SeriesStore {
    pub fn new(config: StoreConfig) -> Self {
        SeriesStore {
            stats: StoreStats {
                max_series: config.max_series,
                ..Default::default()
            },
            config,
            index: SeriesIndex::default(),
            by_signal: HashMap::default(),
            names: HashSet::default(),
            series: Chunks::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Series> {
        self.series.iter()
    }

    /// Adds one point. `attrs` must be sorted by key and free of duplicate keys.
    pub fn push(
        &mut self,
        metric: &str,
        statistic: &str,
        attrs: &[(&str, &str)],
        ts_ms: i64,
        value: f64,
    ) -> Result<(), Rejection> {
        self.push_key(metric, statistic, &AttrKey::new(attrs), ts_ms, value)
    }

    /// `push` with the attributes prepared (ingest prepares a point's once for all the
    /// statistics it writes).
    pub fn push_key(
        &mut self,
        metric: &str,
        statistic: &str,
        key: &AttrKey,
        ts_ms: i64,
        value: f64,
    ) -> Result<(), Rejection> {
        if !value.is_finite() {
            self.stats.points_rejected += 1;
            return Err(Rejection::NotFinite);
        }
        let hash = identity_hash(metric, statistic, key);
        let idx = match self.lookup(hash, metric, statistic, key) {
            Some(i) => i,
            None => {
                if self.series.len() >= self.config.max_series {
                    self.stats.points_rejected += 1;
                    self.stats.series_rejected += 1;
                    return Err(Rejection::SeriesLimit);
                }
                let i = self.series.len();
                let metric = self.name(metric);
                let statistic = self.name(statistic);
                let (names, members) = self
                    .by_signal
                    .entry((metric.clone(), statistic.clone()))
                    .or_insert_with(|| (Arc::new(SignalNames { metric, statistic }), Vec::new()));
                members.push(i as u32);
                let names = names.clone();
                self.series.push(Series {
                    names,
                    attributes: PackedAttrs(key.packed.as_slice().into()),
                    ring: VecDeque::with_capacity(self.config.ring_capacity.min(64)),
                    baseline: StreamingBaseline::new(&self.config.baseline),
                    out_of_order: 0,
                    duplicates: 0,
                    wants_sketch: AtomicBool::new(false),
                    touched: AtomicBool::new(false),
                    artifact: None,
                });
                self.index.insert(hash, i as u32);
                self.stats.series = self.series.len();
                i
            }
        };
        let cfg = &self.config.baseline;
        let series = &mut self.series[idx];
        // The last point's time, from the baseline: points are accepted in time order, so it is
        // the ring's newest sample's, without reading the ring (a cache miss per point).
        if !series.ring.is_empty() {
            let last_ts = series.baseline.last_ts;
            if ts_ms == last_ts {
                // A repeated timestamp replaces nothing: the first write wins, the repeat is counted.
                series.duplicates = series.duplicates.saturating_add(1);
                self.stats.duplicates += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
            if ts_ms < last_ts {
                series.out_of_order = series.out_of_order.saturating_add(1);
                self.stats.out_of_order += 1;
                self.stats.points_rejected += 1;
                return Err(Rejection::OutOfOrder);
            }
        }
        let fitted = series
            .artifact
            .as_ref()
            .and_then(|a| a.at(ts_ms).map(|(e, s)| (e, s, BandModel::Fitted(a.model))));
        if series.baseline.sketch.is_none() && *series.wants_sketch.get_mut() {
            series
                .baseline
                .enable_sketch(series.ring.iter().map(|s| s.value), cfg);
        }
        let mut history = series.ring.iter().rev().map(|s| s.raw);
        let band = series
            .baseline
            .update_judged(ts_ms, value, fitted, Some(&mut history), cfg);
        let sample = match band {
            Some(b) => Sample {
                ts_ms,
                value,
                expected: b.expected,
                sigma: b.sigma,
                score: series.baseline.last_score as f32,
                raw: series.baseline.last_raw as f32,
                model: Some(b.model),
            },
            None => Sample {
                ts_ms,
                value,
                expected: f64::NAN,
                sigma: f64::NAN,
                score: 0.0,
                raw: 0.0,
                model: None,
            },
        };
        if series.ring.len() == self.config.ring_capacity {
            series.ring.pop_front();
        }
        series.ring.push_back(sample);
        self.stats.points_accepted += 1;
        Ok(())
    }

    /// Series of `metric`/`statistic` whose attributes include every `subject` pair, fewest
    /// attributes first (the service-level roll-up before per-route series), then by key.
    pub fn find(
        &self,
        metric: &str,
        statistic: &str,
        subject: &[(String, String)],
    ) -> Vec<&Series> {
        let (Some(m), Some(st)) = (self.names.get(metric), self.names.get(statistic)) else {
            return Vec::new();
        };
        let Some((_, candidates)) = self.by_signal.get(&(m.clone(), st.clone())) else {
            return Vec::new();
        };
        let mut found: Vec<&Series> = candidates
            .iter()
            .map(|i| &self.series[*i as usize])
            .filter(|s| {
                subject
                    .iter()
                    .all(|(k, v)| s.attrs().any(|(sk, sv)| sk == k && sv == v))
            })
            .collect();
        found.sort_by(|a, b| {
            a.attributes
                .len()
                .cmp(&b.attributes.len())
                .then_with(|| a.attributes.cmp(&b.attributes))
        });
        found
    }

    /// For each metric of `statistic`, the subject's series as `find` would pick it (the one
    /// with the fewest attributes, then by key), by metric name: every metric the subject has.
    /// Scans the statistic's series once per metric (no per-subject index yet).
    pub fn subject_series(&self, statistic: &str, subject: &[(String, String)]) -> Vec<&Series> {
        let Some(st) = self.names.get(statistic) else {
            return Vec::new();
        };
        let mut out: Vec<&Series> = self
            .by_signal
            .iter()
            .filter(|((_, s), _)| s == st)
            .filter_map(|((m, s), _)| self.find(m, s, subject).into_iter().next())
            .collect();
        out.sort_by(|a, b| a.metric().cmp(b.metric()));
        out
    }

    /// Records that a rule or suggestion read `series`, so seasonal fits are spent only on
    /// series someone asks about.
    pub fn touch(&self, series: &Series) {
        // Two relaxed stores: reading a signal must stay cheap (no lock, no allocation).
        series.wants_sketch.store(true, Ordering::Relaxed);
        series.touched.store(true, Ordering::Relaxed);
    }

    /// The interned copy of a metric, statistic or attribute-key name.
    fn name(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.names.get(s) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(s);
        self.names.insert(n.clone());
        n
    }

    /// The series with this identity, if any.
    fn lookup(&self, hash: u64, metric: &str, statistic: &str, key: &AttrKey) -> Option<usize> {
        self.index
            .candidates(hash)
            .find(|i| self.series[*i].is(metric, statistic, key))
    }

    /// `lookup` from the attributes as pairs.
    fn lookup_attrs(&self, metric: &str, statistic: &str, attrs: &[(&str, &str)]) -> Option<usize> {
        let key = AttrKey::new(attrs);
        self.lookup(
            identity_hash(metric, statistic, &key),
            metric,
            statistic,
            &key,
        )
    }

    /// The series touched since the last call (and forgets them), sorted.
    pub fn take_touched(&self) -> Vec<(String, String, Attributes)> {
        let mut out: Vec<_> = self
            .series
            .iter()
            .filter(|s| s.touched.swap(false, Ordering::Relaxed))
            .map(|s| {
                (
                    s.metric().to_string(),
                    s.statistic().to_string(),
                    s.attributes_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Hands a fitted band to a series. Refused (with the reason) for an unknown series or a
    /// version not newer than the current one.
    pub fn set_band(
        &mut self,
        metric: &str,
        statistic: &str,
        attrs: &[(&str, &str)],
        artifact: BandArtifact,
    ) -> Result<(), String> {
        let i = self
            .lookup_attrs(metric, statistic, attrs)
            .ok_or_else(|| "series: no such series".to_string())?;
        let series = &mut self.series[i];
        if let Some(cur) = &series.artifact {
            if artifact.version <= cur.version {
                return Err(format!(
                    "version: {} is not newer than the current {}",
                    artifact.version, cur.version
                ));
            }
        }
        series.artifact = Some(Box::new(artifact));
        Ok(())
    }

    /// Looks a series up by its exact identity.
    pub fn get(&self, metric: &str, statistic: &str, attrs: &[(&str, &str)]) -> Option<&Series> {
        self.lookup_attrs(metric, statistic, attrs)
            .map(|i| &self.series[i])
    }
}

#[cfg(test)]
mod tests;
