//! What the GPU's units can do through wgpu, measured once per adapter: the cooperative-matrix
//! layout convention on this driver (checked against the CPU), the f16 x f16 -> f32 matrix
//! rate, and the plain f32 FMA rate that the WGSL d-D kernel is held against.
//!
//! `cargo bench --bench gpu_probe` (prints a reason and exits when no adapter has the
//! features).

use std::time::Instant;

const SOURCE: &str = include_str!("../shaders/probe_coop.wgsl");

fn main() {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    for adapter in adapters {
        let info = adapter.get_info();
        println!(
            "## {} ({:?}, {})",
            info.name, info.backend, info.driver_info
        );
        for c in adapter.cooperative_matrix_properties() {
            println!(
                "coop {}x{}x{} {:?} -> {:?} saturating {}",
                c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type, c.saturating_accumulation
            );
        }
        let wanted = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX
            | wgpu::Features::SHADER_F16
            | wgpu::Features::TIMESTAMP_QUERY;
        if !adapter.features().contains(wanted) {
            println!("skipped: lacks {:?}", wanted - adapter.features());
            continue;
        }
        if let Err(e) = probe(&adapter, wanted) {
            println!("probe failed: {e}");
        }
    }
}

fn probe(adapter: &wgpu::Adapter, features: wgpu::Features) -> Result<(), String> {
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("probe"),
        required_features: features,
        required_limits: adapter.limits(),
        // SAFETY: the experimental cooperative-matrix feature is what is being probed; its
        // results are checked against the CPU below.
        experimental_features: unsafe { wgpu::ExperimentalFeatures::enabled() },
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    }))
    .map_err(|e| e.to_string())?;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("probe"),
        source: wgpu::ShaderSource::Wgsl(SOURCE.into()),
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(format!("shader: {e}"));
    }
    // Inputs: small integers and halves, exact in f16 and in the f32 sums.
    let av: Vec<f32> = (0..64 * 256)
        .map(|i| ((i * 7 + 3) % 11) as f32 - 5.0)
        .collect();
    let bv: Vec<f32> = (0..64 * 256)
        .map(|i| ((i * 5 + 1) % 9) as f32 * 0.5 - 2.0)
        .collect();
    let cv: Vec<f32> = (0..256).map(|i| (i % 13) as f32 - 6.0).collect();
    let half = |v: &[f32]| -> Vec<u16> { v.iter().map(|&x| f16_bits(x)).collect() };
    use wgpu::util::DeviceExt;
    let buf = |bytes: &[u8], usage| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytes,
            usage,
        })
    };
    let s = wgpu::BufferUsages::STORAGE;
    let a = buf(bytemuck::cast_slice(&half(&av)), s);
    let b = buf(bytemuck::cast_slice(&half(&bv)), s);
    let out_len = 1024 + 4096 * 1024;
    let mut cinit = cv.clone();
    cinit.resize(out_len, 0.0);
    let c = buf(
        bytemuck::cast_slice(&cinit),
        s | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    let read = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 1024,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let queries = device.create_query_set(&wgpu::QuerySetDescriptor {
        label: None,
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let resolved = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let ts_read = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let run = |entry: &str, groups: u32, timed: bool| -> Result<(Vec<f32>, f64), String> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module: &module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: a.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: b.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: c.as_entire_binding(),
                },
            ],
        });
        queue.write_buffer(&c, 0, bytemuck::cast_slice(&cv));
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: timed.then_some(wgpu::ComputePassTimestampWrites {
                    query_set: &queries,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        enc.copy_buffer_to_buffer(&c, 0, &read, 0, 1024);
        if timed {
            enc.resolve_query_set(&queries, 0..2, &resolved, 0);
            enc.copy_buffer_to_buffer(&resolved, 0, &ts_read, 0, 16);
        }
        queue.submit([enc.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(format!("{entry}: {e}"));
        }
        let t = Instant::now();
        let out = map_bytes(&device, &read);
        let wall = t.elapsed().as_secs_f64();
        let secs = if timed {
            let ticks: Vec<u64> = bytemuck::cast_slice(&map_bytes(&device, &ts_read)).to_vec();
            (ticks[1] - ticks[0]) as f64 * f64::from(queue.get_timestamp_period()) * 1e-9
        } else {
            wall
        };
        Ok((bytemuck::cast_slice(&out).to_vec(), secs))
    };
    for (entry, row_major) in [("tile_col", false), ("tile_row", true)] {
        let (got, _) = run(entry, 1, false)?;
        let at = |v: &[f32], r: usize, col: usize| {
            if row_major {
                v[r * 16 + col]
            } else {
                v[col * 16 + r]
            }
        };
        let mut worst = 0.0f32;
        for r in 0..16 {
            for col in 0..16 {
                let mut want = at(&cv, r, col);
                for k in 0..16 {
                    want += at(&av, r, k) * at(&bv, k, col);
                }
                worst = worst.max((at(&got, r, col) - want).abs());
            }
        }
        println!(
            "{entry}: C = A B + C, {} layout: largest error {worst} ({})",
            if row_major {
                "row-major"
            } else {
                "column-major"
            },
            if worst == 0.0 { "exact" } else { "WRONG" }
        );
    }
    let groups = 132 * 64;
    for (entry, flops_per_group) in [
        ("mma_loop", 4.0 * 4.0 * 4096.0 * 8192.0),
        ("fma_loop", 256.0 * 4096.0 * 8.0 * 4.0 * 2.0),
    ] {
        run(entry, groups, true)?;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            best = best.min(run(entry, groups, true)?.1);
        }
        println!(
            "{entry}: {:.1} TFLOP/s ({:.3} ms for {} workgroups)",
            flops_per_group * f64::from(groups) / best / 1e12,
            best * 1e3,
            groups
        );
    }
    Ok(())
}

fn map_bytes(device: &wgpu::Device, buf: &wgpu::Buffer) -> Vec<u8> {
    let slice = buf.slice(..);
    slice.map_async(wgpu::MapMode::Read, |_| {});
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    let bytes = slice.get_mapped_range().expect("mapped").to_vec();
    buf.unmap();
    bytes
}

/// IEEE binary16 bits of `x` (exact for the small values used here).
fn f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = x.abs();
    if abs == 0.0 {
        return sign;
    }
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = ((bits >> 13) & 0x3ff) as u16;
    sign | ((exp as u16) << 10) | mant
}
