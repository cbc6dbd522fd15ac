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
    # The device tool brings back at most 8 files from $OUT: the logs go to a scratch folder
    # and $OUT gets report.txt (everything worth reading, in order), the main run's
    # summary.md, bench.csv and plots, tiles.csv, and tests.txt only when a test failed.
    local out=${OUT:-bench-out/gpu}
    local w
    w=$(mktemp -d)
    # Sizes: issue #3's by default; smaller ones (M=20000 KN=5000 KD=8 KK=16) smoke-test the
    # script on lavapipe.
    local m=${M:-1000000} kn=${KN:-1000000} kd=${KD:-128} kk=${KK:-1024}
    local peak=${PEAK_TFLOPS:-66.9}
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
    local report=$out/report.txt
    {
        echo "## machine"
        nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv || true
        .gpu-bin/lloyd devices
    } >"$report" 2>&1
    # Correctness on the real driver before any timing: the GPU test suites, CPU-checked.
    echo "## GPU tests (LLOYD_REQUIRE_GPU=1)" >>"$report"
    local failed=0
    for t in .gpu-bin/test_*; do
        if ! LLOYD_REQUIRE_GPU=1 "$t" --test-threads 1 >>"$w/tests.txt" 2>&1; then
            failed=1
        fi
    done
    grep -E "^test result|FAILED|panicked" "$w/tests.txt" >>"$report" || true
    [ "$failed" = 0 ] || cp "$w/tests.txt" "$out/tests.txt"
    echo "## lloyd quantize --n 500 --samples $m --iterations 100 --device gpu" >>"$report"
    .gpu-bin/lloyd quantize --n 500 --samples "$m" --iterations 100 --device gpu --json \
        2>&1 | python3 -c 'import json, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
    print({k: d[k] for k in ("device", "iterations", "distortion", "mse", "ms_per_iteration", "setup_ms")})
except ValueError:
    print(text)' >>"$report"
    # H100 SXM f32 peak (non-tensor): 132 SMs x 128 lanes x 2 flops x 1.98 GHz = 66.9 TFLOP/s.
    echo "## lloyd-bench (1-D grid, K-means, PQ; cpu and gpu)" >>"$report"
    .gpu-bin/lloyd-bench --quiet --device cpu,gpu --n 10,100,500 --m "$m" --seeds 0,1 \
        --iterations 100 --kmeans-n "$kn" --kmeans-d "$kd" --kmeans-k "$kk" \
        --peak-tflops "$peak" --out "$w/main" >"$w/main.txt" 2>&1 || cat "$w/main.txt" >>"$report"
    cat "$w/main/summary.md" >>"$report" 2>/dev/null || true
    cp "$w"/main/{summary.md,bench.csv,time_vs_n.svg,ratio_vs_n.svg} "$out/" 2>/dev/null || true
    echo "## the d-D kernel's tile shapes at n=$kn d=$kd k=$kk" >>"$report"
    .gpu-bin/lloyd-bench --quiet --kinds kmeans --device gpu --tiles all --kmeans-n "$kn" \
        --kmeans-d "$kd" --kmeans-k "$kk" --peak-tflops "$peak" --out "$w/tiles" \
        >"$w/tiles.txt" 2>&1 || cat "$w/tiles.txt" >>"$report"
    grep -E "^\| (gpu|method)" "$w/tiles/summary.md" >>"$report" 2>/dev/null || true
    cp "$w/tiles/bench.csv" "$out/tiles.csv" 2>/dev/null || true
    echo "## few cells (n=$kn d=32 k=16): workgroup accumulators off, then on" >>"$report"
    for local in 0 1; do
        LLOYD_GPU_LOCAL_SUMS=$local .gpu-bin/lloyd-bench --quiet --kinds kmeans --device gpu \
            --kmeans-n "$kn" --kmeans-d 32 --kmeans-k 16 --out "$w/local$local" >/dev/null 2>&1
        grep -E "^\| gpu" "$w/local$local/summary.md" >>"$report" 2>/dev/null || true
    done
    echo "## criterion (LLOYD_BENCH_DEVICES=gpu)" >>"$report"
    LLOYD_BENCH_DEVICES=gpu timeout 300 .gpu-bin/lloyd_iteration --bench --warm-up-time 1 \
        --measurement-time 3 2>&1 | grep -E "^(lloyd1d|kmeans)|time:" >>"$report" || true
    echo "## the field's PyTorch code on this GPU" >>"$report"
    {
        python3 benches/lloyd_torch.py oned --n 10,100,500 --m "$m"
        python3 benches/lloyd_torch.py kmeans --n "$kn" --d "$kd" --k "$kk"
    } >>"$report" 2>&1 || true
    echo "## the field's numpy code on this machine's CPU" >>"$report"
    python3 benches/lloyd_numpy.py table --n 500 --m "$m" --repeat 2 >>"$report" 2>&1 || true
    cat "$report"
    rm -rf "$w"
}

case "${1:-}" in
prepare) prepare ;;
measure) measure ;;
*)
    echo "usage: bash benches/gpu_session.sh prepare|measure" >&2
    exit 2
    ;;
esac
