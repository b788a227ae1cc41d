//! Times the stages of metrics ingest (steady state: the first 4 requests only create series) on payload files (`cargo run --release --example
//! ingest_profile -- [--prost] FILE...`, gzip OTLP requests): inflate, decode, apply. For profiling;
//! `make bench` measures the whole path from Python.
use std::collections::HashMap;
use std::time::Instant;

use referee_core::otlp::wire;
use referee_core::otlp::{self, Encoding};
use referee_core::store::{SeriesStore, StoreConfig};

fn main() {
    // `--prost` times the prost decoder instead of the zero-copy one.
    let prost = std::env::args().any(|a| a == "--prost");
    let bodies: Vec<Vec<u8>> = std::env::args()
        .skip(1)
        .filter(|a| a != "--prost")
        .map(|p| std::fs::read(p).expect("payload file"))
        .collect();
    let rounds = 5;
    let (mut t_inflate, mut t_decode, mut t_apply, mut points) = (0.0, 0.0, 0.0, 0u64);
    for _ in 0..rounds {
        let mut store = SeriesStore::new(StoreConfig::default());
        let mut cumulative = HashMap::new();
        let mut agg = otlp::EventAggregator::default();
        for (i, body) in bodies.iter().enumerate() {
            if i < 4 {
                // Warm-up: the first requests create the series.
                let raw = otlp::inflate(body, 64 << 20).unwrap();
                let view = wire::decode_metrics(&raw).unwrap();
                otlp::apply_view(&mut store, &mut cumulative, &mut agg, &view);
                continue;
            }
            let t = Instant::now();
            let raw = otlp::inflate(body, 64 << 20).unwrap();
            t_inflate += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let view = if prost {
                // The reference decoder, for comparison.
                let req = otlp::decode_metrics(&raw, Encoding::Protobuf).unwrap();
                t_decode += t.elapsed().as_secs_f64();
                let t = Instant::now();
                let r = otlp::apply_metrics(&mut store, &mut cumulative, &mut agg, &req);
                t_apply += t.elapsed().as_secs_f64();
                points += r.accepted;
                continue;
            } else {
                wire::decode_metrics(&raw).unwrap()
            };
            t_decode += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let r = otlp::apply_view(&mut store, &mut cumulative, &mut agg, &view);
            t_apply += t.elapsed().as_secs_f64();
            points += r.accepted;
        }
    }
    let total = t_inflate + t_decode + t_apply;
    println!(
        "points/s {:.0}  inflate {:.0} ns/pt  decode {:.0} ns/pt  apply {:.0} ns/pt",
        points as f64 / total,
        t_inflate / points as f64 * 1e9,
        t_decode / points as f64 * 1e9,
        t_apply / points as f64 * 1e9
    );
}
