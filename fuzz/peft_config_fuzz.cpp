// libFuzzer target: a Hugging Face PEFT adapter's adapter_config.json, as downloaded with
// the adapter, read by `gaggle import-peft` (bundle/peft_adapter.h). Any bytes must end in
// a bundle or an Error, never a crash, hang, out-of-bounds read or another exception. The
// adapter's weights are a real PEFT-made T5 adapter (tests/data/peft/t5-peft-made), so
// configs close to the real one reach the import's per-module checks and its writes.
// Run with fuzz/run.sh peft_config.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "bundle/peft_adapter.h"
#include "io/error.h"
#include "model/t5_config.h"

#ifndef GAGGLE_SOURCE_DIR
#error "GAGGLE_SOURCE_DIR must name the repository (the adapter's weights and base config are read from it)"
#endif

namespace fs = std::filesystem;

namespace {

// The adapter directory (weights copied once, config per input), the base's linear layers
// from the golden tiny T5 the adapter was made for, and this process's scratch directory.
struct Fixture {
  fs::path dir;
  gaggle::bundle::PeftImportOptions options;

  Fixture() {
    const fs::path data = fs::path(GAGGLE_SOURCE_DIR) / "tests" / "data";
    dir = fs::temp_directory_path() / ("gaggle-fuzz-peft-" + std::to_string(getpid()));
    fs::create_directories(dir / "adapter");
    fs::copy_file(data / "peft" / "t5-peft-made" / gaggle::bundle::kPeftWeightsFile,
                  dir / "adapter" / gaggle::bundle::kPeftWeightsFile, fs::copy_options::overwrite_existing);
    const auto config = gaggle::model::read_t5_config(data / "golden" / "t5-v1_1-tiny");
    for (const auto& name : gaggle::model::t5_linear_names(config)) {
      const auto shape = gaggle::model::t5_linear_shape(config, name);  // [d_out, d_in]
      options.linears.push_back({name, shape[1], shape[0]});
    }
    options.adapter_dir = dir / "adapter";
    options.task_type = "SEQ_2_SEQ_LM";
    options.base_fingerprint = "sha256:" + std::string(64, '0');
    options.name = "fuzz";
    options.version = "1.0.0";
    options.out_dir = dir / "bundle";
    options.force = true;
  }
  ~Fixture() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Fixture& f = fixture();
  {
    std::ofstream out(f.dir / "adapter" / gaggle::bundle::kPeftConfigFile, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    gaggle::bundle::import_peft(f.options);
  } catch (const gaggle::Error&) {
  }
  return 0;
}
