//! Referee's Rust core.
//!
//! Data flows one way: [`otlp`] decodes export requests into the [`store`], whose series keep
//! [`baseline`]s (and fitted [`band`]s); [`evidence`] resolves a rule's signal (metric,
//! statistic, window) to a series and reads the window's evidence; [`rules`] evaluates CEL
//! conditions against it; [`summary`] describes series for callers (listings, baseline details).
//! Modules use only modules before them in this flow, so there are no
//! import cycles (`tools/check_module_cycles.py` checks). Everything here builds and tests
//! without Python; the PyO3 module `referee._core` lives in `python` behind the `python`
//! feature, and hands Python typed objects over these modules' structs.

/// Ingest allocates and frees many small objects per request (prost decodes every attribute of
/// logs, traces and OTLP/JSON into its own `String`; series state is many small blocks);
/// mimalloc does that several times faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod band;
pub mod baseline;
pub mod error;
pub mod evidence;
pub mod fastpath;
pub mod functions;
pub mod host;
pub mod otlp;
pub mod quantile;
pub mod rules;
pub mod score;
pub mod store;
pub mod summary;

#[cfg(feature = "python")]
mod python;
