#include "hub/detail/staging.h"

#include <stdlib.h>

#include "io/error.h"

namespace fs = std::filesystem;

namespace gaggle::hub::detail {

ScratchDir::ScratchDir(const std::string& prefix, const fs::path& parent) {
  fs::path base = parent.empty() ? fs::temp_directory_path() : parent;
  std::error_code ec;
  fs::create_directories(base, ec);
  std::string tmpl = (base / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    throw Error(ErrorCode::io, "hub", "cannot create a scratch directory in '" + base.string() + "': " + errno_text(errno));
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace gaggle::hub::detail
