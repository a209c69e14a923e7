//! The built-in demo: a small multi-tenant API to replay against
//! (`reprise demo-target`), used by the demo, the tests and the benchmarks.

pub mod target;

pub use target::{DemoTarget, TargetConfig};
