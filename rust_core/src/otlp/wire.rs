//! A zero-copy protobuf decoder for `ExportMetricsServiceRequest`.
//!
//! prost decodes every attribute key and value into its own `String` and every data point
//! into its own `Vec`s; at 8,192 points of 5 attributes per request that was about half of
//! the ingest time. This decoder walks the wire format over the (inflated) request bytes and
//! produces a [`MetricsView`]: names and string attributes are `&str` slices of the request,
//! and points, attributes, bucket bounds and counts live in a few flat vectors (one growth
//! per request, not one allocation per point).
//!
//! It accepts exactly what prost accepts and reads the same values (a differential test
//! runs both on the same bytes): every known field is checked for its wire type and every
//! string for UTF-8, even fields ingest ignores; unknown fields of every wire type, groups
//! included, are skipped; a repeated message field appends; a singular message field merges;
//! a oneof of the same variant merges and of another variant replaces; the last scalar wins;
//! packed and unpacked repeated numbers are both read; nesting is bounded like prost's
//! recursion limit. Malformed input is an error, never a panic.
//!
//! Why this file is long: it is over the crate's usual ~800 lines because it is one state
//! machine (a reader and one decoding function per message type, each following the schema),
//! and splitting it would only scatter the field tables. Its tests are in `wire/tests.rs`.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::histogram::exponential_buckets;
use super::view::{
    Attr, DataView, HistogramPoint, MetricView, MetricsView, NumberPoint, ResourceView,
    SummaryPoint,
};

/// Why the bytes are not an `ExportMetricsServiceRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

type Result<T> = std::result::Result<T, WireError>;

/// prost's recursion limit: a message nested this deep (or a group inside it) is refused.
const RECURSION_LIMIT: u32 = 100;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
#[derive(Clone, Copy)]
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn varint(&mut self) -> Result<u64> {
        // Tags, lengths and small numbers are one byte.
        if let Some(&b) = self.buf.first() {
            if b < 0x80 {
                self.buf = &self.buf[1..];
                return Ok(u64::from(b));
            }
        }
        self.varint_slow()
    }

    fn varint_slow(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, b) in self.buf.iter().take(10).enumerate() {
            // The tenth byte holds the 64th bit only.
            if i == 9 && *b > 1 {
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if *b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("invalid varint"))
    }

    /// The next field's tag and wire type, or `None` at the end of the message.
    #[inline]
    fn key(&mut self) -> Result<Option<(u32, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.key_required().map(Some)
    }

    #[inline]
    fn key_required(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("invalid key value"));
        }
        let wire_type = (key & 7) as u8;
        if wire_type > FIXED32 {
            return Err(WireError("invalid wire type value"));
        }
        let tag = key as u32 >> 3;
        if tag == 0 {
            return Err(WireError("invalid tag value: 0"));
        }
        Ok((tag, wire_type))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(WireError("buffer underflow"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn expect(wire_type: u8, expected: u8) -> Result<()> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(WireError("invalid wire type"))
        }
    }

    fn u64_varint(&mut self, wire_type: u8) -> Result<u64> {
        Self::expect(wire_type, VARINT)?;
        self.varint()
    }

    fn fixed64(&mut self, wire_type: u8) -> Result<u64> {
        Self::expect(wire_type, FIXED64)?;
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn double(&mut self, wire_type: u8) -> Result<f64> {
        self.fixed64(wire_type).map(f64::from_bits)
    }

    #[inline]
    fn bytes(&mut self, wire_type: u8) -> Result<&'a [u8]> {
        Self::expect(wire_type, LEN)?;
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(WireError("buffer underflow"));
        }
        self.take(len as usize)
    }

    #[inline]
    fn string(&mut self, wire_type: u8) -> Result<&'a str> {
        std::str::from_utf8(self.bytes(wire_type)?)
            .map_err(|_| WireError("invalid string value: data is not UTF-8 encoded"))
    }

    /// A nested message's bytes; `depth` is the nesting budget left at this message's fields.
    #[inline]
    fn message(&mut self, wire_type: u8, depth: u32) -> Result<Reader<'a>> {
        Self::expect(wire_type, LEN)?;
        if depth == 0 {
            return Err(WireError("recursion limit reached"));
        }
        Ok(Reader {
            buf: self.bytes(LEN)?,
        })
    }

    /// Repeated fixed64, packed or not, each converted by `from_bits` (`u64::from` for
    /// counts, `f64::from_bits` for doubles).
    fn repeated_fixed64<T>(
        &mut self,
        wire_type: u8,
        out: &mut Vec<T>,
        from_bits: fn(u64) -> T,
    ) -> Result<()> {
        if wire_type == LEN {
            let b = self.bytes(LEN)?;
            if b.len() % 8 != 0 {
                return Err(WireError("delimited length exceeded"));
            }
            out.extend(
                b.chunks_exact(8)
                    .map(|c| from_bits(u64::from_le_bytes(c.try_into().expect("8 bytes")))),
            );
        } else {
            out.push(from_bits(self.fixed64(wire_type)?));
        }
        Ok(())
    }

    fn repeated_varint(&mut self, wire_type: u8, out: &mut Vec<u64>) -> Result<()> {
        if wire_type == LEN {
            let mut packed = Reader {
                buf: self.bytes(LEN)?,
            };
            while !packed.buf.is_empty() {
                out.push(packed.varint()?);
            }
            Ok(())
        } else {
            let v = self.u64_varint(wire_type)?;
            out.push(v);
            Ok(())
        }
    }

    /// Skips an unknown field (prost's `skip_field`, groups included).
    fn skip(&mut self, wire_type: u8, tag: u32, depth: u32) -> Result<()> {
        if depth == 0 {
            return Err(WireError("recursion limit reached"));
        }
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            FIXED32 => self.take(4).map(drop),
            LEN => self.bytes(LEN).map(drop),
            START_GROUP => loop {
                let (inner_tag, inner_type) = self.key_required()?;
                if inner_type == END_GROUP {
                    if inner_tag != tag {
                        return Err(WireError("unexpected end group tag"));
                    }
                    return Ok(());
                }
                self.skip(inner_type, inner_tag, depth - 1)?;
            },
            _ => Err(WireError("unexpected end group tag")),
        }
    }
}

/// An `AnyValue` while it is decoded: arrays and key-value lists keep their structure so a
/// repeated field can merge into them as prost does; rendered to a string at the end.
#[derive(Debug, Clone)]
enum Any<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Array(Vec<Option<Any<'a>>>),
    Kvlist(Vec<(&'a str, Option<Any<'a>>)>),
    Strindex(i32),
}

/// Renders a value exactly as `body::any_value_string` does.
fn render(v: &Option<Any<'_>>, out: &mut String) {
    match v {
        None => {}
        Some(Any::Str(s)) => out.push_str(s),
        Some(Any::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Any::Int(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Any::Double(d)) => {
            let _ = write!(out, "{d}");
        }
        Some(Any::Bytes(b)) => {
            for x in *b {
                let _ = write!(out, "{x:02x}");
            }
        }
        Some(Any::Array(items)) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                render(x, out);
            }
            out.push(']');
        }
        Some(Any::Kvlist(items)) => {
            out.push('{');
            for (i, (k, x)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push('=');
                render(x, out);
            }
            out.push('}');
        }
        Some(Any::Strindex(i)) => {
            let _ = write!(out, "#{i}");
        }
    }
}

fn rendered<'a>(v: &Option<Any<'a>>) -> Cow<'a, str> {
    match v {
        Some(Any::Str(s)) => Cow::Borrowed(s),
        None => Cow::Borrowed(""),
        other => {
            let mut s = String::new();
            render(other, &mut s);
            Cow::Owned(s)
        }
    }
}

fn any_value<'a>(mut r: Reader<'a>, depth: u32, cur: &mut Option<Any<'a>>) -> Result<()> {
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => *cur = Some(Any::Str(r.string(wt)?)),
            2 => *cur = Some(Any::Bool(r.u64_varint(wt)? != 0)),
            3 => *cur = Some(Any::Int(r.u64_varint(wt)? as i64)),
            4 => *cur = Some(Any::Double(r.double(wt)?)),
            5 => {
                let m = r.message(wt, depth)?;
                if let Some(Any::Array(items)) = cur {
                    array_value(m, depth - 1, items)?;
                } else {
                    let mut items = Vec::new();
                    array_value(m, depth - 1, &mut items)?;
                    *cur = Some(Any::Array(items));
                }
            }
            6 => {
                let m = r.message(wt, depth)?;
                if let Some(Any::Kvlist(items)) = cur {
                    kvlist_value(m, depth - 1, items)?;
                } else {
                    let mut items = Vec::new();
                    kvlist_value(m, depth - 1, &mut items)?;
                    *cur = Some(Any::Kvlist(items));
                }
            }
            7 => *cur = Some(Any::Bytes(r.bytes(wt)?)),
            8 => *cur = Some(Any::Strindex(r.u64_varint(wt)? as i32)),
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

fn array_value<'a>(mut r: Reader<'a>, depth: u32, items: &mut Vec<Option<Any<'a>>>) -> Result<()> {
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => {
                let m = r.message(wt, depth)?;
                let mut item = None;
                any_value(m, depth - 1, &mut item)?;
                items.push(item);
            }
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

fn kvlist_value<'a>(
    mut r: Reader<'a>,
    depth: u32,
    items: &mut Vec<(&'a str, Option<Any<'a>>)>,
) -> Result<()> {
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => {
                let m = r.message(wt, depth)?;
                items.push(key_value(m, depth - 1)?);
            }
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

fn key_value<'a>(mut r: Reader<'a>, depth: u32) -> Result<(&'a str, Option<Any<'a>>)> {
    let mut key = "";
    let mut value = None;
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => key = r.string(wt)?,
            2 => {
                let m = r.message(wt, depth)?;
                any_value(m, depth - 1, &mut value)?;
            }
            3 => {
                r.u64_varint(wt)?;
            }
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok((key, value))
}

/// One `KeyValue` field (at `depth`) appended to `out` as an attribute.
#[inline]
fn attribute<'a>(r: &mut Reader<'a>, wt: u8, depth: u32, out: &mut Vec<Attr<'a>>) -> Result<()> {
    let m = r.message(wt, depth)?;
    // Nearly every attribute is a short string key with a short string value, encoded as
    // `0a len key 12 len 0a len value`: read that layout directly, anything else the general
    // way (which reads this layout the same).
    if depth >= 3 {
        if let Some((k, v)) = short_string_attribute(m.buf) {
            out.push((k, Cow::Borrowed(v)));
            return Ok(());
        }
    }
    let (k, v) = key_value(m, depth - 1)?;
    out.push((k, rendered(&v)));
    Ok(())
}

/// `key = "k", value = { string_value = "v" }` with one-byte lengths, and nothing else.
fn short_string_attribute(b: &[u8]) -> Option<(&str, &str)> {
    let [0x0a, klen, rest @ ..] = b else {
        return None;
    };
    let klen = usize::from(*klen);
    if klen >= 0x80 || rest.len() < klen {
        return None;
    }
    let (key, rest) = rest.split_at(klen);
    let [0x12, alen, 0x0a, vlen, value @ ..] = rest else {
        return None;
    };
    let vlen = usize::from(*vlen);
    if vlen >= 0x80 || usize::from(*alen) != vlen + 2 || value.len() != vlen {
        return None;
    }
    Some((
        std::str::from_utf8(key).ok()?,
        std::str::from_utf8(value).ok()?,
    ))
}

/// A `KeyValue` field ingest does not use, decoded only to be refused if prost would refuse it.
fn check_key_value(r: &mut Reader<'_>, wt: u8, depth: u32) -> Result<()> {
    let m = r.message(wt, depth)?;
    key_value(m, depth - 1).map(drop)
}

fn check_exemplar(r: &mut Reader<'_>, wt: u8, depth: u32) -> Result<()> {
    let mut m = r.message(wt, depth)?;
    let depth = depth - 1;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            7 => check_key_value(&mut m, wt, depth)?,
            2 | 3 | 6 => {
                m.fixed64(wt)?;
            }
            4 | 5 => {
                m.bytes(wt)?;
            }
            _ => m.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

/// Bucket counts of one side of an exponential histogram.
#[derive(Default)]
struct ExpBuckets {
    offset: i32,
    counts: Vec<u64>,
}

fn exp_buckets(mut r: Reader<'_>, depth: u32, b: &mut ExpBuckets) -> Result<()> {
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => {
                let v = r.u64_varint(wt)? as u32;
                b.offset = ((v >> 1) as i32) ^ (-((v & 1) as i32));
            }
            2 => r.repeated_varint(wt, &mut b.counts)?,
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok(())
}

/// Arena lengths when a metric started: its data is everything after them.
struct Marks {
    numbers: usize,
    histograms: usize,
    summaries: usize,
    attrs: usize,
    bounds: usize,
    counts: usize,
    quantiles: usize,
}

struct Decoder<'a> {
    v: MetricsView<'a>,
    /// Reused for every exponential histogram point.
    positive: ExpBuckets,
    negative: ExpBuckets,
}

/// Decodes a protobuf `ExportMetricsServiceRequest`.
pub fn decode_metrics(buf: &[u8]) -> Result<MetricsView<'_>> {
    // Sized for typical requests (about 20 bytes per attribute) so the vectors rarely grow;
    // capacity only reserves address space until it is written.
    let mut v = MetricsView::default();
    v.attrs.reserve((buf.len() / 16).min(1 << 20));
    v.numbers.reserve((buf.len() / 64).min(1 << 18));
    let mut d = Decoder {
        v,
        positive: ExpBuckets::default(),
        negative: ExpBuckets::default(),
    };
    let mut r = Reader { buf };
    let depth = RECURSION_LIMIT;
    while let Some((tag, wt)) = r.key()? {
        match tag {
            1 => {
                let m = r.message(wt, depth)?;
                d.resource_metrics(m, depth - 1)?;
            }
            _ => r.skip(wt, tag, depth)?,
        }
    }
    Ok(d.v)
}

impl<'a> Decoder<'a> {
    fn resource_metrics(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let mut res = ResourceView {
            attrs: Vec::new(),
            metrics: self.v.metrics.len()..self.v.metrics.len(),
        };
        while let Some((tag, wt)) = r.key()? {
            match tag {
                1 => {
                    let mut m = r.message(wt, depth)?;
                    let depth = depth - 1;
                    while let Some((tag, wt)) = m.key()? {
                        match tag {
                            1 => attribute(&mut m, wt, depth, &mut res.attrs)?,
                            2 => {
                                m.u64_varint(wt)?;
                            }
                            3 => check_entity_ref(&mut m, wt, depth)?,
                            _ => m.skip(wt, tag, depth)?,
                        }
                    }
                }
                2 => {
                    let m = r.message(wt, depth)?;
                    self.scope_metrics(m, depth - 1)?;
                }
                3 => {
                    r.string(wt)?;
                }
                _ => r.skip(wt, tag, depth)?,
            }
        }
        res.metrics.end = self.v.metrics.len();
        self.v.resources.push(res);
        Ok(())
    }

    fn scope_metrics(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        while let Some((tag, wt)) = r.key()? {
            match tag {
                1 => {
                    let mut m = r.message(wt, depth)?;
                    let depth = depth - 1;
                    while let Some((tag, wt)) = m.key()? {
                        match tag {
                            1 | 2 => {
                                m.string(wt)?;
                            }
                            3 => check_key_value(&mut m, wt, depth)?,
                            4 => {
                                m.u64_varint(wt)?;
                            }
                            _ => m.skip(wt, tag, depth)?,
                        }
                    }
                }
                2 => {
                    let m = r.message(wt, depth)?;
                    self.metric(m, depth - 1)?;
                }
                3 => {
                    r.string(wt)?;
                }
                _ => r.skip(wt, tag, depth)?,
            }
        }
        Ok(())
    }

    fn marks(&self) -> Marks {
        Marks {
            numbers: self.v.numbers.len(),
            histograms: self.v.histograms.len(),
            summaries: self.v.summaries.len(),
            attrs: self.v.attrs.len(),
            bounds: self.v.bounds.len(),
            counts: self.v.counts.len(),
            quantiles: self.v.quantiles.len(),
        }
    }

    fn truncate(&mut self, m: &Marks) {
        self.v.numbers.truncate(m.numbers);
        self.v.histograms.truncate(m.histograms);
        self.v.summaries.truncate(m.summaries);
        self.v.attrs.truncate(m.attrs);
        self.v.bounds.truncate(m.bounds);
        self.v.counts.truncate(m.counts);
        self.v.quantiles.truncate(m.quantiles);
    }

    fn metric(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let marks = self.marks();
        let mut name = "";
        let mut data: Option<DataView> = None;
        while let Some((tag, wt)) = r.key()? {
            match tag {
                1 => name = r.string(wt)?,
                2 | 3 => {
                    r.string(wt)?;
                }
                12 => check_key_value(&mut r, wt, depth)?,
                5 | 7 | 9 | 10 | 11 => {
                    let m = r.message(wt, depth)?;
                    let same = matches!(
                        (tag, &data),
                        (5, Some(DataView::Gauge { .. }))
                            | (7, Some(DataView::Sum { .. }))
                            | (9, Some(DataView::Histogram { .. }))
                            | (10, Some(DataView::ExponentialHistogram { .. }))
                            | (11, Some(DataView::Summary { .. }))
                    );
                    if !same {
                        // Another variant of the oneof replaces the data decoded so far.
                        self.truncate(&marks);
                        let at = |n: usize| n..n;
                        data = Some(match tag {
                            5 => DataView::Gauge {
                                points: at(marks.numbers),
                            },
                            7 => DataView::Sum {
                                temporality: 0,
                                monotonic: false,
                                points: at(marks.numbers),
                            },
                            9 => DataView::Histogram {
                                temporality: 0,
                                points: at(marks.histograms),
                            },
                            10 => DataView::ExponentialHistogram {
                                temporality: 0,
                                points: at(marks.histograms),
                            },
                            _ => DataView::Summary {
                                points: at(marks.summaries),
                            },
                        });
                    }
                    let d = data.as_mut().expect("set above");
                    self.data(m, depth - 1, d)?;
                }
                _ => r.skip(wt, tag, depth)?,
            }
        }
        if let Some(d) = data.as_mut() {
            let end = match d {
                DataView::Gauge { .. } | DataView::Sum { .. } => self.v.numbers.len(),
                DataView::Histogram { .. } | DataView::ExponentialHistogram { .. } => {
                    self.v.histograms.len()
                }
                DataView::Summary { .. } => self.v.summaries.len(),
            };
            d.points_mut().end = end;
        }
        self.v.metrics.push(MetricView { name, data });
        Ok(())
    }

    /// The fields of a Gauge, Sum, Histogram, ExponentialHistogram or Summary message.
    fn data(&mut self, mut r: Reader<'a>, depth: u32, d: &mut DataView) -> Result<()> {
        while let Some((tag, wt)) = r.key()? {
            match (tag, &mut *d) {
                (1, DataView::Gauge { .. } | DataView::Sum { .. }) => {
                    let m = r.message(wt, depth)?;
                    self.number_point(m, depth - 1)?;
                }
                (1, DataView::Histogram { .. }) => {
                    let m = r.message(wt, depth)?;
                    self.histogram_point(m, depth - 1)?;
                }
                (1, DataView::ExponentialHistogram { .. }) => {
                    let m = r.message(wt, depth)?;
                    self.exponential_point(m, depth - 1)?;
                }
                (1, DataView::Summary { .. }) => {
                    let m = r.message(wt, depth)?;
                    self.summary_point(m, depth - 1)?;
                }
                (
                    2,
                    DataView::Sum { temporality, .. }
                    | DataView::Histogram { temporality, .. }
                    | DataView::ExponentialHistogram { temporality, .. },
                ) => *temporality = r.u64_varint(wt)? as i32,
                (3, DataView::Sum { monotonic, .. }) => *monotonic = r.u64_varint(wt)? != 0,
                _ => r.skip(wt, tag, depth)?,
            }
        }
        Ok(())
    }

    fn number_point(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let start = self.v.attrs.len();
        let mut p = NumberPoint {
            attrs: start..start,
            start_ns: 0,
            time_ns: 0,
            value: None,
            flags: 0,
        };
        while let Some((tag, wt)) = r.key()? {
            match tag {
                7 => attribute(&mut r, wt, depth, &mut self.v.attrs)?,
                2 => p.start_ns = r.fixed64(wt)?,
                3 => p.time_ns = r.fixed64(wt)?,
                4 => p.value = Some(r.double(wt)?),
                6 => p.value = Some(r.fixed64(wt)? as i64 as f64),
                5 => check_exemplar(&mut r, wt, depth)?,
                8 => p.flags = r.u64_varint(wt)? as u32,
                _ => r.skip(wt, tag, depth)?,
            }
        }
        p.attrs.end = self.v.attrs.len();
        self.v.numbers.push(p);
        Ok(())
    }

    fn histogram_point(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let (a, b, c) = (self.v.attrs.len(), self.v.bounds.len(), self.v.counts.len());
        let mut p = HistogramPoint {
            attrs: a..a,
            start_ns: 0,
            time_ns: 0,
            count: 0,
            sum: None,
            bounds: b..b,
            counts: c..c,
            min: None,
            max: None,
            flags: 0,
        };
        while let Some((tag, wt)) = r.key()? {
            match tag {
                9 => attribute(&mut r, wt, depth, &mut self.v.attrs)?,
                2 => p.start_ns = r.fixed64(wt)?,
                3 => p.time_ns = r.fixed64(wt)?,
                4 => p.count = r.fixed64(wt)?,
                5 => p.sum = Some(r.double(wt)?),
                6 => r.repeated_fixed64(wt, &mut self.v.counts, u64::from)?,
                7 => r.repeated_fixed64(wt, &mut self.v.bounds, f64::from_bits)?,
                8 => check_exemplar(&mut r, wt, depth)?,
                10 => p.flags = r.u64_varint(wt)? as u32,
                11 => p.min = Some(r.double(wt)?),
                12 => p.max = Some(r.double(wt)?),
                _ => r.skip(wt, tag, depth)?,
            }
        }
        p.attrs.end = self.v.attrs.len();
        p.bounds.end = self.v.bounds.len();
        p.counts.end = self.v.counts.len();
        self.v.histograms.push(p);
        Ok(())
    }

    fn exponential_point(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let a = self.v.attrs.len();
        let mut p = HistogramPoint {
            attrs: a..a,
            start_ns: 0,
            time_ns: 0,
            count: 0,
            sum: None,
            bounds: 0..0,
            counts: 0..0,
            min: None,
            max: None,
            flags: 0,
        };
        let (mut scale, mut zero_count, mut zero_threshold) = (0i32, 0u64, 0f64);
        let mut pos = std::mem::take(&mut self.positive);
        let mut neg = std::mem::take(&mut self.negative);
        for b in [&mut pos, &mut neg] {
            b.offset = 0;
            b.counts.clear();
        }
        while let Some((tag, wt)) = r.key()? {
            match tag {
                1 => attribute(&mut r, wt, depth, &mut self.v.attrs)?,
                2 => p.start_ns = r.fixed64(wt)?,
                3 => p.time_ns = r.fixed64(wt)?,
                4 => p.count = r.fixed64(wt)?,
                5 => p.sum = Some(r.double(wt)?),
                6 => {
                    let v = r.u64_varint(wt)? as u32;
                    scale = ((v >> 1) as i32) ^ (-((v & 1) as i32));
                }
                7 => zero_count = r.fixed64(wt)?,
                8 => {
                    let m = r.message(wt, depth)?;
                    exp_buckets(m, depth - 1, &mut pos)?;
                }
                9 => {
                    let m = r.message(wt, depth)?;
                    exp_buckets(m, depth - 1, &mut neg)?;
                }
                10 => p.flags = r.u64_varint(wt)? as u32,
                11 => check_exemplar(&mut r, wt, depth)?,
                12 => p.min = Some(r.double(wt)?),
                13 => p.max = Some(r.double(wt)?),
                14 => zero_threshold = r.double(wt)?,
                _ => r.skip(wt, tag, depth)?,
            }
        }
        p.attrs.end = self.v.attrs.len();
        let (b, c) = (self.v.bounds.len(), self.v.counts.len());
        exponential_buckets(
            scale,
            zero_count,
            zero_threshold,
            (neg.offset, &neg.counts),
            (pos.offset, &pos.counts),
            &mut self.v.bounds,
            &mut self.v.counts,
        );
        p.bounds = b..self.v.bounds.len();
        p.counts = c..self.v.counts.len();
        self.positive = pos;
        self.negative = neg;
        self.v.histograms.push(p);
        Ok(())
    }

    fn summary_point(&mut self, mut r: Reader<'a>, depth: u32) -> Result<()> {
        let (a, q) = (self.v.attrs.len(), self.v.quantiles.len());
        let mut p = SummaryPoint {
            attrs: a..a,
            start_ns: 0,
            time_ns: 0,
            quantiles: q..q,
            flags: 0,
        };
        while let Some((tag, wt)) = r.key()? {
            match tag {
                7 => attribute(&mut r, wt, depth, &mut self.v.attrs)?,
                2 => p.start_ns = r.fixed64(wt)?,
                3 => p.time_ns = r.fixed64(wt)?,
                4 | 5 => {
                    r.fixed64(wt)?;
                }
                6 => {
                    let mut m = r.message(wt, depth)?;
                    let (mut quantile, mut value) = (0.0, 0.0);
                    while let Some((tag, wt)) = m.key()? {
                        match tag {
                            1 => quantile = m.double(wt)?,
                            2 => value = m.double(wt)?,
                            _ => m.skip(wt, tag, depth - 1)?,
                        }
                    }
                    self.v.quantiles.push((quantile, value));
                }
                8 => p.flags = r.u64_varint(wt)? as u32,
                _ => r.skip(wt, tag, depth)?,
            }
        }
        p.attrs.end = self.v.attrs.len();
        p.quantiles.end = self.v.quantiles.len();
        self.v.summaries.push(p);
        Ok(())
    }
}

fn check_entity_ref(r: &mut Reader<'_>, wt: u8, depth: u32) -> Result<()> {
    let mut m = r.message(wt, depth)?;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1..=4 => {
                m.string(wt)?;
            }
            _ => m.skip(wt, tag, depth - 1)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
