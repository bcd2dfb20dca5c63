// Fuzz target: registry answers (issue 16), decoded by rollout::DecodeManifest,
// ParseAuthChallenge, DecodeTokenResponse and ParseByteQuantity.
// Input: 1 byte choosing the Content-Type, then the body (also used as the challenge, the token
// answer and the quantity).
// Invariants: no exception escapes; a decoded index has at least one entry and no more than 1024,
// an image at least one layer; every descriptor's digest is sha256/sha512 hex and its size is
// non-negative; the layer sum never goes negative; error messages stay bounded (a few hundred
// bytes whatever the body) and never contain a decoded token.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/rollout/oci_manifest.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

constexpr const char* kTypes[] = {
    "",
    "application/json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
    "text/html",
};

bool ValidDescriptor(const rollgate::rollout::Descriptor& d) {
  return d.size >= 0 && (d.digest.rfind("sha256:", 0) == 0 || d.digest.rfind("sha512:", 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const char* type = kTypes[in.Byte() % (sizeof kTypes / sizeof kTypes[0])];
  const std::string body(in.Rest());
  using rollgate::rollout::Manifest;

  auto m = rollgate::rollout::DecodeManifest(body, type);
  if (m.ok()) {
    if (m->kind == Manifest::Kind::kIndex) {
      FUZZ_CHECK(!m->manifests.empty() && m->manifests.size() <= 1024, body);
      for (const auto& d : m->manifests) FUZZ_CHECK(ValidDescriptor(d), d.digest);
      (void)m->Platforms();
    } else {
      FUZZ_CHECK(!m->layers.empty() && ValidDescriptor(m->config), body);
      for (const auto& d : m->layers) FUZZ_CHECK(ValidDescriptor(d), d.digest);
      FUZZ_CHECK(m->LayersSize() >= 0, body);
    }
  } else {
    FUZZ_CHECK(m.status().message().size() < 400, m.status().message());
  }

  auto c = rollgate::rollout::ParseAuthChallenge(body);
  if (!c.ok()) FUZZ_CHECK(c.status().message().size() < 400, c.status().message());

  auto t = rollgate::rollout::DecodeTokenResponse(body);
  if (t.ok()) {
    FUZZ_CHECK(!t->empty(), body);
  } else {
    FUZZ_CHECK(t.status().message().size() < 100, t.status().message());
  }

  auto q = rollgate::rollout::ParseByteQuantity(body);
  if (q.ok()) FUZZ_CHECK(*q >= 0, body);
  return 0;
}
