//! An export request's body: how it is encoded, its bytes within the size limit (gzip bodies
//! are inflated here, several members allowed, and the limit is checked while inflating, so a
//! gzip bomb is refused without being held in memory), the report sent back for it, and how an
//! attribute value is rendered as the string series are keyed by.

use std::io::Read;

use flate2::read::MultiGzDecoder;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

use crate::error::IngestError;

/// How the request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Outcome of one export request: the numbers for OTLP's `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub accepted: u64,
    pub rejected: u64,
    /// Empty on full success; otherwise what was wrong with the first rejected points.
    pub message: String,
}

/// Inflates a gzip body (all members) into at most `limit` bytes.
pub fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    // A gzip member ends with its inflated size (ISIZE, mod 2^32): for the usual single-member
    // body that sizes the buffer exactly, so it is never grown and copied. It is only a hint:
    // the limit is still enforced while inflating.
    let hint = body
        .len()
        .checked_sub(4)
        .map(|i| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]) as usize)
        .filter(|n| *n > 0)
        .unwrap_or(body.len().saturating_mul(4));
    // Deflate cannot expand more than ~1032:1, so a forged ISIZE cannot make a small body
    // reserve much.
    let hint = hint.min(body.len().saturating_mul(1032));
    let mut out = Vec::with_capacity(hint.min(limit).saturating_add(1));
    let mut decoder = MultiGzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("gzip: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge { limit });
    }
    Ok(out)
}

/// The request body as sent (`gzip` false) or inflated into `buf`, within `limit` bytes either
/// way.
pub fn request_bytes<'a>(
    body: &'a [u8],
    gzip: bool,
    limit: usize,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], IngestError> {
    if gzip {
        *buf = inflate(body, limit)?;
        Ok(&buf[..])
    } else if body.len() > limit {
        Err(IngestError::TooLarge { limit })
    } else {
        Ok(body)
    }
}

/// Renders an attribute value as the string series are keyed by.
pub fn any_value_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => {
            let parts: Vec<String> = a
                .values
                .iter()
                .map(|x| any_value_string(&Some(x.clone())))
                .collect();
            format!("[{}]", parts.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let parts: Vec<String> = kv
                .values
                .iter()
                .map(|x| format!("{}={}", x.key, any_value_string(&x.value)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        // Profiles' string-table references carry no text of their own here.
        Some(any_value::Value::StringValueStrindex(i)) => format!("#{i}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_bomb_is_refused_without_inflating_it() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 64 << 10);
        assert_eq!(
            inflate(&bomb, 1 << 20).unwrap_err(),
            IngestError::TooLarge { limit: 1 << 20 }
        );
    }

    #[test]
    fn gzip_members_are_one_body() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut body = Vec::new();
        for part in [&b"hello "[..], &b"world"[..]] {
            let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            body.extend(enc.finish().unwrap());
        }
        assert_eq!(inflate(&body, 100).unwrap(), b"hello world");
        assert!(matches!(
            inflate(&body, 5),
            Err(IngestError::TooLarge { .. })
        ));
    }
}
