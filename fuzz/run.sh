#!/usr/bin/env bash
# Builds the safetensors fuzzer with clang (-fsanitize=fuzzer,address,undefined) and
# runs it for N seconds (default 60) from the seed corpus. No LibTorch involved.
#   fuzz/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out" "$out/corpus"
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang)" >&2; exit 1; }
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Ilib \
  fuzz/safetensors_fuzz.cpp lib/io/safetensors.cpp lib/io/dtype.cpp lib/io/error.cpp \
  lib/io/mapped_file.cpp lib/io/atomic_file.cpp -lcrypto -o "$out/safetensors_fuzz"
cp -n fuzz/corpus/safetensors/* "$out/corpus/" 2>/dev/null || true
cd "$out" && ./safetensors_fuzz -max_total_time="$seconds" -max_len=4096 corpus
