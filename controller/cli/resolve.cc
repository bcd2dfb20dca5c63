#include "controller/cli/resolve.h"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "controller/rollout/image_ref.h"
#include "controller/rollout/oci_manifest.h"
#include "controller/rollout/registry_client.h"

namespace rollgate::cli {
namespace {

// The contents of a file, trailing whitespace removed; nullopt when it cannot be read.
std::optional<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  std::string out = text.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

}  // namespace

int Resolve(const std::string& image, const ResolveFlags& f) {
  auto ref = rollout::ParseImageRef(image);
  if (!ref.ok()) {
    std::fprintf(stderr, "error: %s\n", ref.status().message().c_str());
    return 2;
  }
  std::vector<rollout::Platform> want;
  for (const auto& p :
       f.platforms.empty() ? std::vector<std::string>{"linux/amd64"} : f.platforms) {
    auto parsed = rollout::ParsePlatform(p);
    if (!parsed.ok()) {
      std::fprintf(stderr, "error: --platform: %s\n", parsed.status().message().c_str());
      return 2;
    }
    want.push_back(*parsed);
  }
  rollout::RegistryClientOptions opts;
  opts.plain_http = f.plain_http;
  opts.user_agent = std::string("rollgate/") + ROLLGATE_VERSION;
  if (!f.ca_file.empty()) {
    auto ca = ReadSecretFile(f.ca_file);
    if (!ca && f.ca_file == kSystemCaFile) ca = "";  // no system bundle: only plain HTTP works
    if (!ca) {
      std::fprintf(stderr, "error: --registry-ca-file: cannot read %s\n", f.ca_file.c_str());
      return 2;
    }
    opts.ca_pem = *ca + "\n";
  }
  if (!f.username.empty()) {
    auto password =
        f.password_file.empty() ? std::optional<std::string>("") : ReadSecretFile(f.password_file);
    if (!password) {
      std::fprintf(stderr, "error: --registry-password-file: cannot read %s\n",
                   f.password_file.c_str());
      return 2;
    }
    opts.credentials =
        [user = f.username, pw = *password, host = ref->registry](
            std::string_view registry) -> std::optional<rollout::RegistryCredential> {
      if (registry != host) return std::nullopt;
      return rollout::RegistryCredential{user, pw};
    };
  }
  auto client = rollout::NewRegistryClient(std::move(opts));
  auto got = client->Resolve(*ref, want);
  if (!got.ok()) {
    std::fprintf(stderr, "error: %s\n", got.status().ToString().c_str());
    return 1;
  }
  std::printf("%s  %s  %s\n", image.c_str(), got->digest.c_str(), got->media_type.c_str());
  std::string platforms;
  for (const auto& p : got->platforms) platforms += (platforms.empty() ? "" : ", ") + p.ToString();
  std::printf("  platforms: %s\n", platforms.c_str());
  for (const auto& p : want) {
    bool found = false;
    for (const auto& i : got->images) {
      if (!(i.platform == p)) continue;
      found = true;
      std::printf("  %-16s %s  %s (%lld bytes)\n", p.ToString().c_str(), i.digest.c_str(),
                  rollout::HumanBytes(i.size).c_str(), static_cast<long long>(i.size));
    }
    if (!found) std::printf("  %-16s not offered\n", p.ToString().c_str());
  }
  return 0;
}

}  // namespace rollgate::cli
