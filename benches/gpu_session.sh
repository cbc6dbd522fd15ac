#!/usr/bin/env bash
# Issue #14's measurements on a lent GPU machine, in one call. That machine has no Rust
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
    mkdir -p .git/info
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
    rm -rf .gpu-bin && mkdir -p .gpu-bin
    cp target/release/lloyd target/release/lloyd-bench .gpu-bin/
    cp "$(executable bench gpu_probe)" .gpu-bin/gpu_probe
    # Every test suite that opens a GPU, and the library's own tests (naga validation).
    local name path
    for name in gpu_crosscheck gpu_device_loop gpu_chunks clvq; do
        path=$(executable test "$name")
        cp "$path" ".gpu-bin/test_$name"
    done
    path=$(cargo test --release --lib --no-run --message-format=json |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])')
    cp "$path" .gpu-bin/test_lib
    strip .gpu-bin/*
    # What travels is capped at 64 MiB: the binaries go compressed.
    tar -C .gpu-bin -cJf /tmp/gpu-bin.tar.xz . && rm -rf .gpu-bin/* && mv /tmp/gpu-bin.tar.xz .gpu-bin/
    du -sh .gl .gpu-bin
}

# Runs "$@" with a time limit of $1 seconds, appending its output to the report; a failure
# or a timeout is written down and the session goes on.
step() {
    local limit=$1
    shift
    timeout "$limit" "$@" >>"$report" 2>&1 || echo "(exit $?: $*)" >>"$report"
}

measure() {
    # The device tool brings back at most 8 files from $OUT: report.txt (everything worth
    # reading, in order), the main run's summary.md and bench.csv, torch.csv, tiles.csv,
    # tests.txt and the two plots.
    local out=${OUT:-bench-out/gpu}
    local w
    w=$(mktemp -d)
    # Sizes: issue #14's by default; smaller ones (M=20000 KN=5000) smoke-test the script on
    # lavapipe.
    local m=${M:-200000,500000,1000000} kn=${KN:-1000000}
    local peak=${PEAK_TFLOPS:-66.9}
    mkdir -p "$out"
    if [ -e .gpu-bin/gpu-bin.tar.xz ]; then
        tar -C .gpu-bin -xJf .gpu-bin/gpu-bin.tar.xz && rm .gpu-bin/gpu-bin.tar.xz
    fi
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
    report=$out/report.txt
    {
        echo "## machine ($(date -u +%FT%TZ))"
        nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total,power.limit --format=csv || true
        .gpu-bin/lloyd devices
    } >"$report" 2>&1
    echo "## what the units can do through wgpu (benches/gpu_probe.rs)" >>"$report"
    step 120 .gpu-bin/gpu_probe
    # Correctness on the real driver before any timing: the GPU test suites, CPU-checked.
    echo "## GPU tests (LLOYD_REQUIRE_GPU=1)" >>"$report"
    local t
    : >"$w/tests.txt"
    for t in .gpu-bin/test_*; do
        [ -n "${SKIP_TESTS:-}" ] && break
        echo "### $t" >>"$w/tests.txt"
        LLOYD_REQUIRE_GPU=1 timeout 240 "$t" --test-threads 4 >>"$w/tests.txt" 2>&1 ||
            echo "FAILED: $t exit $?" >>"$w/tests.txt"
    done
    grep -E "^### |^test result|FAILED|panicked" "$w/tests.txt" >>"$report" || true
    cp "$w/tests.txt" "$out/tests.txt"
    local qm=${QM:-1000000}
    echo "## lloyd quantize --n 500 --samples $qm --iterations 100 --device gpu" >>"$report"
    local keep='import json, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
    print({k: d[k] for k in d if not isinstance(d[k], list)})
except ValueError:
    print(text)'
    timeout 60 .gpu-bin/lloyd quantize --n 500 --samples "$qm" --iterations 100 --device gpu --json \
        2>&1 | python3 -c "$keep" >>"$report" || true
    echo "## fresh samples each iteration: lloyd quantize-nd --d 1 --n 500 --samples $qm --iterations 100 --fresh" >>"$report"
    timeout 60 .gpu-bin/lloyd quantize-nd --d 1 --n 500 --samples "$qm" --iterations 100 --fresh \
        --device gpu --json 2>&1 | python3 -c "$keep" >>"$report" || true
    echo "## lloyd-bench (1-D grid, K-means grid, PQ; cpu and gpu)" >>"$report"
    step 300 .gpu-bin/lloyd-bench --quiet --device cpu,gpu --n 10,20,50,100,200,500 --m "$m" \
        --seeds 0,1 --iterations 100 --kmeans-n "$kn" --kmeans-d 32,128 --kmeans-k 16,256,1024 \
        --peak-tflops "$peak" --out "$w/main"
    cp "$w"/main/{summary.md,bench.csv,time_vs_n.svg} "$out/" 2>/dev/null || true
    echo "## the field's PyTorch code on this GPU" >>"$report"
    step 200 python3 benches/lloyd_torch.py --csv "$out/torch.csv" oned --m "$m"
    step 200 python3 benches/lloyd_torch.py --csv "$out/torch.csv" kmeans --n "$kn" \
        --d 32,128 --k 16,256,1024 --precision fp32,tf32,fp16,cdist
    echo "## the d-D kernel's tile shapes" >>"$report"
    local dk
    for dk in 128:1024 32:256; do
        step 120 .gpu-bin/lloyd-bench --quiet --kinds kmeans --device gpu --tiles all \
            --kmeans-n "$kn" --kmeans-d "${dk%:*}" --kmeans-k "${dk#*:}" --peak-tflops "$peak" \
            --out "$w/tiles$dk"
        tail -n +2 "$w/tiles$dk/bench.csv" >>"$w/tiles.csv" 2>/dev/null || true
    done
    cp "$w/tiles.csv" "$out/tiles.csv" 2>/dev/null || true
    echo "## few cells (n=$kn d=32 k=16): workgroup accumulators off, then on" >>"$report"
    local local_sums
    for local_sums in 0 1; do
        LLOYD_GPU_LOCAL_SUMS=$local_sums step 60 .gpu-bin/lloyd-bench --quiet --kinds kmeans \
            --device gpu --kmeans-n "$kn" --kmeans-d 32 --kmeans-k 16 --out "$w/local$local_sums"
    done
    echo "## the field's numpy code on this machine's CPU" >>"$report"
    step 120 python3 benches/lloyd_numpy.py table --n 500 --m "$qm" --repeat 2
    echo "## Nsight Compute on the d-D kernel (n=$kn d=128 k=1024)" >>"$report"
    ncu --help 2>&1 | grep -i -A2 "graphics\|replay-mode" >>"$report" || true
    step 60 ncu --graphics-profiling-type range --section SpeedOfLight --launch-skip 2 \
        --launch-count 1 .gpu-bin/lloyd-bench --quiet --kinds kmeans --device gpu \
        --kmeans-n "$kn" --kmeans-d 128 --kmeans-k 1024 --out "$w/ncu"
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
