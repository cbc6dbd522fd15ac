#!/usr/bin/env bash
# Issue #3's measurements on a lent GPU machine, in one call. That machine has no Rust
# toolchain and no Vulkan loader, so both are prepared here and carried:
#
#   here:   bash benches/gpu_session.sh prepare
#   there:  the device tool's `run` with carry [".gl", ".gpu-bin"] and the command
#           bash benches/gpu_session.sh measure
#
# `measure` writes everything under $OUT (bench-out/gpu when unset) and ends with a short
# table: the 1-D iteration at N = 500, M = 10^6 against the field's numpy and PyTorch code,
# and the K-means iteration at n = 10^6, d = 128, k = 1024 with its share of the f32 peak.
set -euo pipefail
cd "$(dirname "$0")/.."

# The path of the optimised executable of test or bench $2 ($1: test or bench).
executable() {
    local profile=--release
    [ "$1" = bench ] && profile=
    # shellcheck disable=SC2086
    cargo "$1" $profile --"$1" "$2" --no-run --message-format=json |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$2"
}

prepare() {
    for d in /.gl/ /.gpu-bin/; do
        grep -qxF "$d" .git/info/exclude 2>/dev/null || echo "$d" >>.git/info/exclude
    done
    if ! ls .gl/*.deb >/dev/null 2>&1; then
        # The loader packages, as the device README gives them.
        mkdir -p .gl /tmp/amd64/partial
        local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
        # shellcheck disable=SC2086
        apt-get $o update
        # shellcheck disable=SC2086
        (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    cargo build --release --bins
    local bench
    bench=$(executable bench lloyd_iteration)
    rm -rf .gpu-bin && mkdir -p .gpu-bin
    cp target/release/lloyd target/release/lloyd-bench "$bench" .gpu-bin/
    mv ".gpu-bin/$(basename "$bench")" .gpu-bin/lloyd_iteration
    local name path
    for name in gpu_crosscheck gpu_device_loop gpu_chunks; do
        path=$(executable test "$name")
        cp "$path" ".gpu-bin/test_$name"
    done
    strip .gpu-bin/*
    du -sh .gl .gpu-bin
}

measure() {
    local out=${OUT:-bench-out/gpu}
    # Sizes: issue #3's by default; smaller ones (M=20000 KN=5000 KD=8 KK=16) smoke-test the
    # script on lavapipe.
    local m=${M:-1000000} kn=${KN:-1000000} kd=${KD:-128} kk=${KK:-1024}
    mkdir -p "$out"
    if ! ldconfig -p | grep -q libvulkan.so.1; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
    local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ -e "$icd" ] && ! .gpu-bin/lloyd devices 2>/dev/null | grep -qi nvidia; then
        export VK_DRIVER_FILES=$icd
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    fi
    {
        nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv || true
        .gpu-bin/lloyd devices
    } 2>&1 | tee "$out/devices.txt"
    # Correctness on the real driver before any timing: the GPU test suites, CPU-checked.
    for t in .gpu-bin/test_*; do
        LLOYD_REQUIRE_GPU=1 "$t" --test-threads 1 2>&1 | tee -a "$out/tests.txt" | grep -E "^test result|FAILED|panicked" || true
    done
    .gpu-bin/lloyd quantize --n 500 --samples "$m" --iterations 100 --device gpu --json \
        >"$out/quantize_gpu.json"
    # H100 SXM f32 peak (non-tensor): 132 SMs x 128 lanes x 2 flops x 1.98 GHz = 66.9 TFLOP/s.
    .gpu-bin/lloyd-bench --quiet --device cpu,gpu --n 10,100,500 --m "$m" --seeds 0,1 \
        --iterations 100 --kmeans-n "$kn" --kmeans-d "$kd" --kmeans-k "$kk" \
        --peak-tflops "${PEAK_TFLOPS:-66.9}" --out "$out" >"$out/lloyd-bench.txt" 2>&1
    # The d-D kernel's tile shapes, each timed at the K-means size.
    .gpu-bin/lloyd-bench --quiet --kinds kmeans --device gpu --tiles all --kmeans-n "$kn" \
        --kmeans-d "$kd" --kmeans-k "$kk" --peak-tflops "${PEAK_TFLOPS:-66.9}" \
        --out "$out/tiles" >"$out/tiles.txt" 2>&1
    LLOYD_BENCH_DEVICES=gpu timeout 300 .gpu-bin/lloyd_iteration --bench --warm-up-time 1 \
        --measurement-time 3 >"$out/criterion.txt" 2>&1 || true
    python3 benches/lloyd_torch.py oned --n 10,100,500 --m "$m" | tee "$out/torch.txt"
    python3 benches/lloyd_torch.py kmeans --n "$kn" --d "$kd" --k "$kk" | tee -a "$out/torch.txt"
    python3 benches/lloyd_numpy.py table --n 500 --m "$m" --repeat 2 | tee "$out/numpy.txt"
    cat "$out/summary.md"
    grep -E "^\| gpu" "$out/tiles/summary.md"
}

case "${1:-}" in
prepare) prepare ;;
measure) measure ;;
*)
    echo "usage: bash benches/gpu_session.sh prepare|measure" >&2
    exit 2
    ;;
esac
