#!/usr/bin/env bash
# The README's performance table: lloyd's criterion benches and the numpy/faiss code of the
# field, side by side in one run on this machine.
#   bash benches/compare.sh            (CPU; LLOYD_BENCH_DEVICES=cpu,gpu adds the GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "## machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
echo "## lloyd (criterion, one iteration)"
cargo bench --bench lloyd_iteration 2>/dev/null | grep -E "^(lloyd1d|kmeans)|time:" | paste - - | \
  sed -E 's/ +/ /g; s/time: \[[^ ]+ [^ ]+ ([^ ]+ [^ ]+) [^]]+\]/median \1/'
echo "## numpy 1-D (field code = N x M broadcast; best = sort once + prefix sums + searchsorted)"
python3 benches/lloyd_numpy.py table
echo "## faiss-cpu K-means iteration"
python3 benches/lloyd_numpy.py faiss
