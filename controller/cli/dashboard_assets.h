// The web dashboard's static files (controller/cli/dashboard/), compiled into the binary by
// cmake/embed_assets.cmake so that `rollgate dashboard` needs no file and no network but the API
// server's.
// Thread-safety: immutable after first use.
#pragma once

#include <string_view>
#include <vector>

namespace rollgate::cli {

struct DashboardAsset {
  std::string_view path;  // "/" for index.html, else "/<file name>"
  std::string_view content_type;
  std::string_view body;
};

const std::vector<DashboardAsset>& DashboardAssets();

}  // namespace rollgate::cli
