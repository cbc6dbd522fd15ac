//! The GPU device for tests, or a printed reason to skip; with LLOYD_REQUIRE_GPU set (CI)
//! a missing adapter fails the test instead.

use lloyd::Device;

pub fn gpu() -> Option<Device> {
    let adapters = lloyd::list_adapters();
    if adapters.is_empty() {
        if std::env::var_os("LLOYD_REQUIRE_GPU").is_some() {
            panic!(
                "LLOYD_REQUIRE_GPU is set but wgpu finds no adapter (install mesa-vulkan-drivers)"
            );
        }
        eprintln!("skipped: no GPU adapter found (install mesa-vulkan-drivers for lavapipe)");
        return None;
    }
    Some(Device::Gpu)
}
