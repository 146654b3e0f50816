#include "bundle/diff.h"

#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "bundle/contents.h"
#include "bundle/manifest.h"
#include "bundle/tensor_index.h"
#include "io/dtype.h"
#include "io/error.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace gaggle::bundle {
namespace {

std::string label(const Manifest& m) { return m.name + "@" + m.version; }

// The tensor index of a listed safetensors file: the manifest's, else computed.
TensorIndex index_of(const fs::path& dir, const FileEntry& f) {
  if (f.tensors) return *f.tensors;
  io::SafetensorsFile file = io::SafetensorsFile::open(dir / f.path);
  TensorIndex index;
  for (const auto& t : file.tensors()) {
    TensorEntry e;
    e.name = t.name;
    e.dtype = std::string(io::dtype_name(t.dtype));
    e.shape = t.shape;
    e.size = t.nbytes();
    index.tensors.push_back(std::move(e));  // no sha256: compared by value below
  }
  return index;
}

bool is_float(const std::string& dtype) { return dtype == "F32" || dtype == "F16" || dtype == "BF16" || dtype == "F64"; }

std::vector<float> values_of(const io::SafetensorsFile& file, const std::string& name) {
  const auto& info = file.at(name);
  std::vector<float> out(static_cast<std::size_t>(info.numel()));
  io::convert_to_f32(info.dtype, file.data(info), out.data(), out.size());
  return out;
}

std::vector<TensorChange> diff_tensors(const fs::path& from_dir, const FileEntry& a, const fs::path& to_dir,
                                       const FileEntry& b) {
  const TensorIndex ia = index_of(from_dir, a), ib = index_of(to_dir, b);
  std::map<std::string, const TensorEntry*> old_by_name, new_by_name;
  for (const auto& t : ia.tensors) old_by_name[t.name] = &t;
  for (const auto& t : ib.tensors) new_by_name[t.name] = &t;
  std::optional<io::SafetensorsFile> fa, fb;  // opened only when a value is needed
  std::vector<TensorChange> out;
  for (const auto& [name, nt] : new_by_name) {
    TensorChange c{name, Change::added, nt->dtype, "", nt->shape, {}, nt->size, std::nullopt, std::nullopt};
    auto it = old_by_name.find(name);
    if (it != old_by_name.end()) {
      const TensorEntry* ot = it->second;
      c.old_dtype = ot->dtype;
      c.old_shape = ot->shape;
      const bool same_hash = !ot->sha256.empty() && ot->sha256 == nt->sha256;
      c.change = Change::changed;
      if (same_hash) {
        c.change = Change::unchanged;
      } else if (ot->dtype == nt->dtype && ot->shape == nt->shape && is_float(nt->dtype)) {
        if (!fa) fa.emplace(io::SafetensorsFile::open(from_dir / a.path));
        if (!fb) fb.emplace(io::SafetensorsFile::open(to_dir / b.path));
        auto va = values_of(*fa, name), vb = values_of(*fb, name);
        double d2 = 0, n2 = 0;
        for (std::size_t i = 0; i < va.size(); ++i) {
          const double d = static_cast<double>(vb[i]) - static_cast<double>(va[i]);
          d2 += d * d;
          n2 += static_cast<double>(va[i]) * static_cast<double>(va[i]);
        }
        if (d2 == 0 && fa->data(name).size() == fb->data(name).size() &&
            std::equal(fa->data(name).begin(), fa->data(name).end(), fb->data(name).begin())) {
          c.change = Change::unchanged;
        } else {
          c.diff_norm = std::sqrt(d2);
          if (n2 > 0) c.relative_change = std::sqrt(d2) / std::sqrt(n2);
        }
      }
    }
    out.push_back(std::move(c));
  }
  for (const auto& [name, ot] : old_by_name)
    if (!new_by_name.count(name)) out.push_back({name, Change::removed, "", ot->dtype, {}, ot->shape, ot->size, std::nullopt, std::nullopt});
  return out;
}

void count(BundleDiff& d, Change c, std::uint64_t bytes) {
  switch (c) {
    case Change::unchanged: ++d.unchanged; break;
    case Change::changed: ++d.changed; d.changed_bytes += bytes; break;
    case Change::added: ++d.added; d.changed_bytes += bytes; break;
    case Change::removed: ++d.removed; break;
  }
}

}  // namespace

const char* change_name(Change c) {
  switch (c) {
    case Change::unchanged: return "unchanged";
    case Change::changed: return "changed";
    case Change::added: return "added";
    case Change::removed: return "removed";
  }
  return "?";
}

BundleDiff diff_bundles(const fs::path& from_dir, const fs::path& to_dir) {
  const Manifest ma = read_manifest(from_dir), mb = read_manifest(to_dir);
  check_bundle_files(from_dir, ma, false);
  check_bundle_files(to_dir, mb, false);
  BundleDiff d;
  d.from = label(ma);
  d.to = label(mb);
  for (const auto& fb : mb.files) {
    d.total_bytes += fb.size;
    FileChange fc{fb.path, Change::added, false, {}};
    const FileEntry* fa = ma.find(fb.path);
    const bool tensors = fb.path.ends_with(".safetensors");
    if (fa) fc.change = fa->sha256 == fb.sha256 ? Change::unchanged : Change::changed;
    if (tensors && fa && fa->path.ends_with(".safetensors") && fs::exists(from_dir / fa->path) && fs::exists(to_dir / fb.path)) {
      fc.has_tensors = true;
      fc.tensors = diff_tensors(from_dir, *fa, to_dir, fb);
      for (const auto& t : fc.tensors) count(d, t.change, t.bytes);
    } else {
      count(d, fc.change, fb.size);
    }
    d.files.push_back(std::move(fc));
  }
  for (const auto& fa : ma.files)
    if (!mb.find(fa.path)) {
      d.files.push_back({fa.path, Change::removed, false, {}});
      count(d, Change::removed, fa.size);
    }
  return d;
}

nlohmann::json BundleDiff::to_json(bool include_unchanged) const {
  nlohmann::json files_json = nlohmann::json::array();
  for (const auto& f : files) {
    nlohmann::json j = {{"path", f.path}, {"change", change_name(f.change)}};
    if (f.has_tensors) {
      nlohmann::json ts = nlohmann::json::array();
      for (const auto& t : f.tensors) {
        if (t.change == Change::unchanged && !include_unchanged) continue;
        nlohmann::json e = {{"name", t.name}, {"change", change_name(t.change)}, {"bytes", t.bytes}};
        if (!t.dtype.empty()) e["dtype"] = t.dtype, e["shape"] = t.shape;
        if (t.change == Change::changed && (t.old_dtype != t.dtype || t.old_shape != t.shape))
          e["old_dtype"] = t.old_dtype, e["old_shape"] = t.old_shape;
        if (t.change == Change::removed) e["dtype"] = t.old_dtype, e["shape"] = t.old_shape;
        if (t.diff_norm) e["diff_norm"] = *t.diff_norm;
        if (t.relative_change) e["relative_change"] = *t.relative_change;
        ts.push_back(std::move(e));
      }
      j["tensors"] = std::move(ts);
    }
    files_json.push_back(std::move(j));
  }
  return {{"from", from},
          {"to", to},
          {"summary",
           {{"unchanged", unchanged}, {"changed", changed}, {"added", added}, {"removed", removed},
            {"changed_bytes", changed_bytes}, {"total_bytes", total_bytes}}},
          {"files", files_json}};
}

}  // namespace gaggle::bundle
