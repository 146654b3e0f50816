#pragma once
// A hub: a git repository holding experts/<name>/<version>/ (manifest.json,
// manifest.json.sig, and adapter.safetensors below the blob threshold), design.md §4.
// This header: where a hub is (URL forms), and creating one.
#include <filesystem>
#include <string>

namespace gaggle::hub {

enum class HubTransport {
  local,         // a path or file:// URL: read and written directly (no server, no hooks)
  git,           // git:// (git daemon)
  http,          // http:// or https:// smart HTTP (git http-backend)
  ssh,           // ssh:// or user@host:path
  static_index,  // an http(s):// URL ending in pool.json: a static pool served by any web server
};

struct HubLocation {
  HubTransport transport = HubTransport::local;
  std::string url;             // as given (file:// stripped for local)
  std::filesystem::path path;  // local hubs: the repository directory
};

// Classifies a --hub argument. Throws Error{usage} for an empty or unknown scheme.
HubLocation parse_hub_location(const std::string& hub);
const char* transport_name(HubTransport t);

struct HubInitOptions {
  std::filesystem::path trust_file;     // allowed signers copied into the hub (the hook's trust); optional
  std::filesystem::path gaggle_binary;  // recorded as gaggle.binary for the hook; empty: 'gaggle' on PATH
  std::string title = "gaggle hub";     // first line of the hub's README
};

// Creates a bare repository at `path` (must not exist or be empty) with HEAD -> main,
// an initial commit (README.md, hub.json, experts/README.md), the pre-receive hook, and
// the config a server needs (deny deletes and non-fast-forwards, http.receivepack,
// git-daemon-export-ok). Built in a temporary and renamed into place.
// Throws Error{exists} when `path` holds something, Error{io|invalid} otherwise.
void init_hub(const std::filesystem::path& path, const HubInitOptions& options);

// Installs (replaces) the allowed-signers file a local hub's hook verifies against, and
// rewrites the hook itself with this gaggle's (hubs made by an older gaggle catch up).
void set_hub_trust(const std::filesystem::path& hub_path, const std::filesystem::path& trust_file);

// The hook scripts shipped in hooks/ (embedded so that 'hub init' works from any install).
const std::string& pre_receive_hook_script();
const std::string& pre_push_hook_script();

// "experts/<name>/<version>" — the one place the layout is spelled.
std::string bundle_tree_path(const std::string& name, const std::string& version);

}  // namespace gaggle::hub
