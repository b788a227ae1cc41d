//! Decoding alone, best of 20 runs per payload file (`cargo run --release --example
//! decode_bench -- FILE...`, gzip OTLP metrics requests): prost vs the zero-copy decoder.
use std::time::Instant;

use referee_core::otlp::wire;
use referee_core::otlp::{self, Encoding};

fn main() {
    let raws: Vec<Vec<u8>> = std::env::args()
        .skip(1)
        .map(|p| otlp::inflate(&std::fs::read(p).expect("payload file"), 64 << 20).unwrap())
        .collect();
    let points: usize = raws
        .iter()
        .map(|r| wire::decode_metrics(r).unwrap().attrs.len() / 5)
        .sum();
    let best = |f: &dyn Fn(&[u8])| {
        (0..20)
            .map(|_| {
                let t = Instant::now();
                for r in &raws {
                    f(r);
                }
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let prost = best(&|r| {
        std::hint::black_box(otlp::decode_metrics(r, Encoding::Protobuf).unwrap());
    });
    let wire = best(&|r| {
        std::hint::black_box(wire::decode_metrics(r).unwrap());
    });
    println!(
        "prost {:.0} ns/pt  zero-copy {:.0} ns/pt  ({:.1}x)",
        prost / points as f64 * 1e9,
        wire / points as f64 * 1e9,
        prost / wire
    );
}
