#!/usr/bin/env bash
# Builds a fuzzer with clang (-fsanitize=fuzzer,address,undefined) and runs it for N
# seconds (default 60) from its seed corpus. No LibTorch involved.
#   fuzz/run.sh [safetensors|tensor_delta|bundle_text|pool_tasks|model_config|signing|peft_config] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-safetensors}
seconds=${2:-60}
out=build-fuzz
mkdir -p "$out" "$out/corpus-$target"
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang)" >&2; exit 1; }
io="lib/io/dtype.cpp lib/io/error.cpp lib/io/mapped_file.cpp lib/io/atomic_file.cpp lib/io/sha256.cpp lib/io/json_file.cpp"
# The JSON Schemas the build embeds (manifests, pools validate against them), made here the
# way the build makes them; prints the generated file.
embedded_schemas() {
  local schemas
  schemas=$(ls manifests/*.schema.json | tr '\n' '|' | sed 's/|$//')
  cmake -DOUT="$out/embedded_schemas.cpp" -DINPUTS="$schemas" -P cmake/EmbedSchemas.cmake >&2
  echo "$out/embedded_schemas.cpp"
}
bundle="lib/bundle/*.cpp"
defines=""
case "$target" in
  safetensors) sources="fuzz/safetensors_fuzz.cpp lib/io/safetensors.cpp $io" ;;
  tensor_delta) sources="fuzz/tensor_delta_fuzz.cpp lib/bundle/tensor_delta.cpp $io" ;;
  bundle_text) sources="fuzz/bundle_text_fuzz.cpp $(ls lib/io/*.cpp $bundle | tr '\n' ' ') $(embedded_schemas)" ;;
  pool_tasks)
    sources="fuzz/pool_tasks_fuzz.cpp lib/hub/pool.cpp lib/tasks/task_data.cpp $(ls lib/io/*.cpp | tr '\n' ' ')"
    sources="$sources $(embedded_schemas)" ;;
  model_config)
    sources="fuzz/model_config_fuzz.cpp $(ls lib/io/*.cpp | tr '\n' ' ') $(embedded_schemas)"
    sources="$sources lib/model/architecture.cpp lib/model/t5_config.cpp lib/model/llama_config.cpp"
    sources="$sources lib/model/token_format.cpp lib/model/detail/config_fields.cpp" ;;
  signing)
    sources="fuzz/signing_fuzz.cpp $(ls lib/io/*.cpp $bundle | tr '\n' ' ') $(embedded_schemas)"
    sources="$sources lib/hub/known_hosts.cpp" ;;
  peft_config)
    sources="fuzz/peft_config_fuzz.cpp $(ls lib/io/*.cpp $bundle | tr '\n' ' ') $(embedded_schemas)"
    sources="$sources lib/model/t5_config.cpp lib/model/detail/config_fields.cpp"
    defines="-DGAGGLE_SOURCE_DIR=\"$PWD\"" ;;
  *)
    echo "fuzz: unknown target '$target' (safetensors, tensor_delta, bundle_text, pool_tasks, model_config, signing," \
      "peft_config)" >&2
    exit 2 ;;
esac
# shellcheck disable=SC2086
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Ilib $defines $sources -lcrypto -lpcre2-8 \
  -o "$out/${target}_fuzz"
cp -n fuzz/corpus/"$target"/* "$out/corpus-$target/" 2>/dev/null || true
# Inputs up to 8 KiB: a bundle manifest's seed is 5 KiB. An input that takes over 5 s is a
# finding (libFuzzer's default waits 20 minutes): a parser must not hang on what it is sent.
cd "$out" && "./${target}_fuzz" -max_total_time="$seconds" -max_len=8192 -timeout=5 "corpus-$target"
