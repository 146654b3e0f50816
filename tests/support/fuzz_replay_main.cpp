// Replays fuzz inputs through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer:
// each file named on the command line, or every file of each directory named. A crash,
// a trap, or an exception the target lets out fails the run (ctest runs one per corpus in
// fuzz/corpus/, so that what a fuzzer once found stays fixed; fuzz/run.sh fuzzes).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    if (fs::is_directory(arg)) {
      for (const auto& entry : fs::directory_iterator(arg))
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    } else if (fs::is_regular_file(arg)) {
      inputs.push_back(arg);
    } else {
      std::cerr << "fuzz replay: '" << arg.string() << "' is neither a file nor a directory\n";
      return 2;
    }
  }
  if (inputs.empty()) {
    std::cerr << "fuzz replay: no inputs (usage: " << argv[0] << " FILE|DIR...)\n";
    return 2;
  }
  std::sort(inputs.begin(), inputs.end());
  for (const auto& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::cout << "replaying " << path.filename().string() << " (" << bytes.size() << " bytes)" << std::endl;
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::cout << "replayed " << inputs.size() << " inputs without a crash\n";
  return 0;
}
