//! Adapters and devices: found once, shared by every fit that asks for the same device.

use std::sync::{Arc, Mutex, OnceLock};

use super::kernels::{Kernel, Slot};
use crate::device::Device;
use crate::error::{Error, Result};

/// The library's tests that use the shared device hold this for reading; the one that makes
/// the device report a fault holds it for writing, so that no other test's read-back takes
/// that fault (faults are reported device-wide).
#[cfg(test)]
pub(crate) static SHARED_DEVICE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// One GPU adapter as `lloyd devices` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AdapterSummary {
    /// Index for [`Device::GpuAdapter`].
    pub index: usize,
    /// The adapter's name (`llvmpipe`, `NVIDIA H100 …`).
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl, …
    pub backend: String,
    /// Discrete, integrated, CPU, …
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// What the kernels can use, as `name value` words: subgroup sizes, workgroup memory,
    /// the largest storage binding, timestamps, f16, subgroups and each cooperative-matrix
    /// shape (`coop 16x16x16 f16->f32`).
    pub capabilities: Vec<String>,
}

/// A wgpu device and queue with the adapter's limits, created once per adapter.
pub(crate) struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Whether kernels can be timed with timestamp queries.
    pub timestamps: bool,
    /// Pipelines compiled so far, by entry point: shader compilation is paid once per
    /// process and adapter, not once per fit or per encode call.
    pipelines: Mutex<Vec<(String, wgpu::ComputePipeline)>>,
    /// Errors outside any error scope, and a lost device: wgpu would panic on the first by
    /// default; here they are kept and fail the next read-back on this device instead.
    faults: Arc<Mutex<Vec<String>>>,
}

fn instance() -> wgpu::Instance {
    // Honours WGPU_BACKEND and the other WGPU_* variables. Without WGPU_BACKEND only the
    // primary backends (Vulkan, Metal, DX12) are probed: GL adds no compute-capable adapter
    // worth having here and its probing prints noise on headless machines.
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(desc)
}

fn adapters() -> Vec<wgpu::Adapter> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
}

fn summary(index: usize, a: &wgpu::Adapter) -> AdapterSummary {
    let i = a.get_info();
    let limits = a.limits();
    let features = a.features();
    let mut capabilities = vec![
        format!("subgroup {}..{}", i.subgroup_min_size, i.subgroup_max_size),
        format!(
            "workgroup-memory {}",
            limits.max_compute_workgroup_storage_size
        ),
        format!("storage-binding {}", limits.max_storage_buffer_binding_size),
        format!("buffer {}", limits.max_buffer_size),
    ];
    for (flag, name) in [
        (wgpu::Features::TIMESTAMP_QUERY, "timestamps"),
        (wgpu::Features::SHADER_F16, "f16"),
        (wgpu::Features::SUBGROUP, "subgroups"),
        (
            wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
            "cooperative-matrix",
        ),
    ] {
        if features.contains(flag) {
            capabilities.push(name.to_string());
        }
    }
    for c in a.cooperative_matrix_properties() {
        capabilities.push(format!(
            "coop {}x{}x{} {:?}->{:?}",
            c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type
        ));
    }
    AdapterSummary {
        index,
        name: i.name,
        backend: format!("{:?}", i.backend),
        device_type: format!("{:?}", i.device_type),
        driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
        capabilities,
    }
}

/// Every adapter wgpu finds (after `WGPU_BACKEND` filtering).
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters()
        .iter()
        .enumerate()
        .map(|(i, a)| summary(i, a))
        .collect()
}

fn name_matches(a: &wgpu::Adapter, needle: &str) -> bool {
    a.get_info()
        .name
        .to_lowercase()
        .contains(&needle.to_lowercase())
}

/// The adapters as `lloyd devices` names them, for messages; None when there are none.
fn adapter_list(all: &[wgpu::Adapter]) -> Option<String> {
    (!all.is_empty()).then(|| {
        all.iter()
            .enumerate()
            .map(|(j, a)| format!("gpu:{j} {} ({:?})", a.get_info().name, a.get_info().backend))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn pick_adapter(device: &Device) -> Result<wgpu::Adapter> {
    let all = adapters();
    let none = |why: String| Error::NoAdapter(why);
    match device {
        Device::GpuAdapter(i) => {
            let listed = adapter_list(&all);
            all.into_iter().nth(*i).ok_or_else(|| match listed {
                None => none(format!("--device gpu:{i}: wgpu finds no adapter")),
                Some(l) => Error::InvalidArgument(format!(
                    "--device gpu:{i}: no such adapter; the adapters are {l}"
                )),
            })
        }
        Device::GpuNamed(name) => {
            let listed = adapter_list(&all);
            all.into_iter()
                .find(|a| name_matches(a, name))
                .ok_or_else(|| match listed {
                    None => none(format!("--device gpu:{name}: wgpu finds no adapter")),
                    Some(l) => Error::InvalidArgument(format!(
                        "--device gpu:{name}: no adapter name contains '{name}'; the adapters \
                         are {l}"
                    )),
                })
        }
        _ => {
            if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
                return all
                    .into_iter()
                    .find(|a| name_matches(a, &name))
                    .ok_or_else(|| none(format!("WGPU_ADAPTER_NAME='{name}' matches no adapter")));
            }
            pollster::block_on(instance().request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            }))
            .map_err(|e| none(e.to_string()))
        }
    }
}

/// Contexts opened so far, keyed by the device choice that found them.
type Cache = Mutex<Vec<(String, Arc<GpuContext>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Vec::new()))
}

impl GpuContext {
    /// The context of the adapter `device` names, created on first use and then shared.
    pub(crate) fn get(device: &Device) -> Result<Arc<GpuContext>> {
        let key = format!(
            "{device}|{}",
            std::env::var("WGPU_ADAPTER_NAME").unwrap_or_default()
        );
        let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(c.clone());
        }
        let adapter = pick_adapter(device)?;
        let needed =
            wgpu::DownlevelFlags::COMPUTE_SHADERS | wgpu::DownlevelFlags::INDIRECT_EXECUTION;
        if !adapter.get_downlevel_capabilities().flags.contains(needed) {
            return Err(Error::Gpu(format!(
                "{} lacks compute shaders or indirect dispatch; use --device cpu",
                adapter.get_info().name
            )));
        }
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device_handle, queue) =
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("lloyd"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            }))
            .map_err(|e| Error::Gpu(format!("could not open the adapter: {e}")))?;
        let faults = Arc::new(Mutex::new(Vec::new()));
        let sink = faults.clone();
        device_handle.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));
        let sink = faults.clone();
        device_handle.set_device_lost_callback(move |reason, message| {
            let text = format!("the device was lost ({reason:?}): {message}");
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(text);
        });
        let ctx = Arc::new(GpuContext {
            device: device_handle,
            queue,
            info: adapter.get_info(),
            limits,
            timestamps: !features.is_empty(),
            pipelines: Mutex::new(Vec::new()),
            faults,
        });
        cache.push((key, ctx.clone()));
        Ok(ctx)
    }

    /// The pipeline of `kernel`, compiled on first use.
    pub(crate) fn kernel(&self, kernel: &Kernel) -> wgpu::ComputePipeline {
        self.pipeline(kernel, kernel.name, kernel.source)
    }

    /// The pipeline of `kernel`'s entry point in the WGSL `source` makes (a specialisation
    /// of the kernel's own, cached as `key`), with group 0 laid out as the kernel declares
    /// it rather than as the shader happens to use it: entry points that use different
    /// subsets of one module's buffers can then share one bind group, and a bind group that
    /// does not fit the kernel is refused by wgpu.
    pub(crate) fn pipeline(
        &self,
        kernel: &Kernel,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, p)) = cache.iter().find(|(k, _)| *k == key) {
            return p.clone();
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings
            .iter()
            .map(|&(binding, slot)| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match slot {
                        Slot::Params => wgpu::BufferBindingType::Uniform,
                        Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: match slot {
                        Slot::Params => std::num::NonZeroU64::new(kernel.params.size),
                        _ => None,
                    },
                },
                count: None,
            })
            .collect();
        let group = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&format!("{key}: {} and buffers", kernel.params.name)),
                entries: &entries,
            });
        let layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(key),
                bind_group_layouts: &[Some(&group)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(kernel.entry),
                compilation_options: Default::default(),
                cache: None,
            });
        cache.push((key.to_string(), pipeline.clone()));
        pipeline
    }

    /// The errors the device reported outside any error scope since the last call, as one
    /// error.
    pub(crate) fn take_faults(&self) -> Result<()> {
        let mut f = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_empty() {
            return Ok(());
        }
        let text = f.join("; ");
        f.clear();
        Err(Error::Gpu(format!("the GPU reported: {text}")))
    }

    /// A name for reports: the adapter's name and backend.
    pub(crate) fn name(&self) -> String {
        format!("{} ({:?})", self.info.name, self.info.backend)
    }
}
