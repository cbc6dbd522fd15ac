//! The wgpu backend: WGSL kernels for assignment and exact, order-independent reductions,
//! a host that keeps the points resident across iterations, and adapter selection.

pub(crate) mod backend;
pub(crate) mod buffers;
pub(crate) mod context;
pub(crate) mod fixed;
pub(crate) mod kernels;
pub(crate) mod layout;
pub(crate) mod points;
pub(crate) mod shaders;
pub(crate) mod tiles;

pub use context::{AdapterSummary, list_adapters};
