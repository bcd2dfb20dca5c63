// What the OCI Distribution API says about an image, decoded: manifests and indexes (OCI and
// Docker v2 media types), the platforms an index offers, the compressed size of the image a
// platform runs (the sum of its layers), the registry's WWW-Authenticate challenge and token
// answer, and byte quantities ("900Mi") for size budgets. Issue 16: resolve a tag to a digest
// once, check existence, size and platforms before any patch. Pure functions over strings; the
// I/O is the registry client's.
// Thread-safety: pure functions and values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/common/status.h"

namespace rollgate::rollout {

inline constexpr char kOciIndexType[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciManifestType[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kDockerListType[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerManifestType[] =
    "application/vnd.docker.distribution.manifest.v2+json";

// The Accept header of a manifest request: the four media types above, indexes first.
std::string ManifestAccept();

// An OCI platform: os/architecture[/variant], as in an index entry ("linux/arm64/v8").
struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;  // "" when none

  std::string ToString() const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

// "os/arch[/variant]"; kInvalidArgument naming the text otherwise.
Result<Platform> ParsePlatform(std::string_view text);

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<64 hex>"
  std::int64_t size = 0;
  std::optional<Platform> platform;  // index entries only
};

struct Manifest {
  enum class Kind { kIndex, kImage };
  Kind kind = Kind::kImage;
  std::string media_type;
  std::vector<Descriptor> manifests;  // kIndex: one per platform (attestations included)
  Descriptor config;                  // kImage
  std::vector<Descriptor> layers;     // kImage

  // kImage: the compressed size a node pulls, the sum of the layers' sizes.
  std::int64_t LayersSize() const;
  // kIndex: the platforms of its entries, attestation manifests ("unknown/unknown") left out,
  // each once, in index order.
  std::vector<Platform> Platforms() const;
};

// Decodes a manifest or index body. `content_type` is the response's Content-Type (parameters
// after ';' ignored); the body's own mediaType, when present, must agree with it. A body without
// either is told by its fields (manifests: index; layers: image). kMalformed with a message
// naming what is wrong (bounded; the body is never quoted whole): not JSON, an unsupported
// media type (a schema 1 manifest), a descriptor without a valid digest or with a negative size,
// an image without layers, more than 1024 entries.
Result<Manifest> DecodeManifest(std::string_view body, std::string_view content_type);

// The entry of an index that runs on `want`: os and architecture equal, and the variant equal
// when `want` names one (an entry without a variant matches "arm64/v8", as containerd does).
// nullptr when there is none.
const Descriptor* SelectPlatform(const Manifest& index, const Platform& want);

// True when `body` hashes to `digest` ("sha256:<hex>"); other algorithms are never equal.
bool DigestMatches(std::string_view body, std::string_view digest);

// A registry's challenge: `Bearer realm="https://auth.example/token",service="registry",
// scope="repository:app:pull"` or `Basic realm="Registry Realm"`. The scheme is lower-cased;
// parameter names are lower-cased, values unquoted (backslash escapes honoured).
struct AuthChallenge {
  std::string scheme;  // "bearer", "basic"
  std::map<std::string, std::string> params;
};
Result<AuthChallenge> ParseAuthChallenge(std::string_view header);

// The token of a token server's answer ({"token": ...} or {"access_token": ...}); kMalformed
// without one. The token is never part of an error message.
Result<std::string> DecodeTokenResponse(std::string_view body);

// A byte quantity as Kubernetes writes it: an integer with an optional binary (Ki, Mi, Gi, Ti)
// or decimal (k, M, G, T) suffix: "900Mi", "1G", "52428800". kInvalidArgument otherwise, or when
// it does not fit in 63 bits.
Result<std::int64_t> ParseByteQuantity(std::string_view text);

// Bytes for people: "812.4 MiB", "3.1 GiB", "900 B".
std::string HumanBytes(std::int64_t bytes);

}  // namespace rollgate::rollout
