// The registry client of registry-aware promotion (issue 16): resolves an image reference to the
// digest of its manifest or index through the OCI Distribution API, with the platforms it offers
// and, per platform asked for, the digest and compressed size (the sum of its layers) of the image
// a node of that platform pulls. Speaks plain HTTP only to the registries named so, HTTPS with the
// configured CAs otherwise; authenticates anonymously, with the Docker token flow (401 Bearer
// challenge -> token realm) or basic credentials; never follows a redirect with credentials, and
// a manifest request not at all. Every response is size-capped and every request has a total
// deadline. What a digest names never changes: manifests fetched by digest and the platforms of
// config blobs are cached (bounded), so a later resolution of the same tag costs one request.
// Credentials and tokens never appear in errors or logs.
// See docs/design.md "Registry-aware promotion".
// Thread-safety: Resolve may be called from several threads at once.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/common/status.h"
#include "controller/rollout/analysis.h"
#include "controller/rollout/image_ref.h"
#include "controller/rollout/oci_manifest.h"

namespace rollgate::rollout {

struct RegistryCredential {
  std::string username;
  std::string password;
};

struct RegistryClientOptions {
  // Registries ("host[:port]", as ImageRef::registry) spoken to over plain HTTP, as containerd's
  // hosts.toml allows for a loopback registry; every other one over HTTPS.
  std::vector<std::string> plain_http;
  std::string ca_pem;  // the CAs trusted for HTTPS registries and their token realms
  // The credential for a registry host, if the operator gave one (a dockerconfigjson Secret).
  std::function<std::optional<RegistryCredential>(std::string_view registry)> credentials;
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};  // per request, body included
  std::size_t max_manifest_bytes = std::size_t{4} << 20;        // the OCI limit for manifests
  std::size_t max_config_bytes = std::size_t{1} << 20;
  std::string user_agent = "rollgate";
  TransportFactory new_transport;  // kube::NewCpprestTransport when empty
};

// One platform's image.
struct PlatformImage {
  Platform platform;
  std::string digest;     // its manifest
  std::int64_t size = 0;  // compressed: the sum of its layers
};

struct ResolvedImage {
  std::string digest;                 // of what the reference names: an index or an image manifest
  std::string media_type;             // of that
  std::vector<Platform> platforms;    // what it offers (an image: the platform of its config)
  std::vector<PlatformImage> images;  // the platforms asked for that it offers, in that order
};

class RegistryClient {
 public:
  virtual ~RegistryClient() = default;
  // Resolves `ref` (a tag is resolved; a digest is fetched and verified against the body) and, for
  // each platform in `want` that it offers, the image a node of that platform runs. Errors:
  //   kNotFound        the registry has no such manifest or repository (ImageNotFound);
  //   kUnauthorized    credentials missing or refused, a token realm that refused
  //   (RegistryAuthFailed); kTransport, kTimeout, kUnavailable, kInternal   the registry is
  //   unreachable or failing
  //                    (RegistryUnreachable: retry with backoff);
  //   kMalformed       an answer that is not what the API promises, a digest that does not match,
  //                    a redirect of a manifest request.
  // Messages name the image and the registry and carry the registry's own error text, bounded
  // and sanitised; never a credential or token.
  virtual Result<ResolvedImage> Resolve(const ImageRef& ref, const std::vector<Platform>& want) = 0;
  // Resolve for every platform the image offers (at most kMaxPlatformImages of an index's).
  virtual Result<ResolvedImage> ResolveAll(const ImageRef& ref) = 0;
};

// How many platform images ResolveAll fetches of one index.
inline constexpr std::size_t kMaxPlatformImages = 32;

std::unique_ptr<RegistryClient> NewRegistryClient(RegistryClientOptions opts);

}  // namespace rollgate::rollout
