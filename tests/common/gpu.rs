//! The GPU device for tests, or a printed reason to skip; with LLOYD_REQUIRE_GPU set (CI)
//! a missing adapter fails the test instead.

use std::io::Write;
use std::sync::Once;

use lloyd::Device;

pub fn gpu() -> Option<Device> {
    let adapters = lloyd::list_adapters();
    if adapters.is_empty() {
        if std::env::var_os("LLOYD_REQUIRE_GPU").is_some() {
            panic!(
                "LLOYD_REQUIRE_GPU is set but wgpu finds no adapter (install mesa-vulkan-drivers)"
            );
        }
        // Written to the process's stderr directly, past the test harness's capture, so a
        // plain `cargo test` shows why the GPU tests did nothing.
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "GPU tests skipped: wgpu finds no adapter (install mesa-vulkan-drivers for lavapipe)"
            );
        });
        return None;
    }
    Some(Device::Gpu)
}
