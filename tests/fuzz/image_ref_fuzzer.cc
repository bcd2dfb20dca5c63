// Fuzz target: container image references (rollout::ParseImageRef) and --allowed-registries
// entries (ValidateAllowedRegistries, CheckAllowedRegistry).
// Input: the reference on the first line; each further line is one allowed-registries entry.
// Invariants: no exception escapes; an accepted reference is normalised (lowercase registry,
// docker.io for Docker Hub, "library/" for official images, tag and digest as the grammar says)
// and its fully qualified form parses back to the same value; errors are kInvalidArgument and
// quote the input escaped and shortened; an image is always allowed by its own registry, and by
// its own registry/repository; an invalid entry never allows anything.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "controller/rollout/image_ref.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::StatusCode;
using rollgate::rollout::ImageRef;

bool Printable(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return false;
  }
  return true;
}

std::string Show(const ImageRef& r) {
  return "registry=" + r.registry + " repository=" + r.repository + " tag=" + r.tag +
         " digest=" + r.digest;
}

void CheckError(const rollgate::Status& st) {
  FUZZ_CHECK(st.code() == StatusCode::kInvalidArgument, st.ToString());
  // The input is quoted escaped (no control or non-ASCII bytes) and cut to 200 bytes.
  FUZZ_CHECK(Printable(st.message()), st.message());
}

void CheckParsed(const ImageRef& r) {
  FUZZ_CHECK(!r.registry.empty() && !r.repository.empty(), Show(r));
  for (char c : r.registry) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), Show(r));
  for (char c : r.repository) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), Show(r));
  FUZZ_CHECK(r.registry != "index.docker.io", Show(r));
  if (r.registry == "docker.io") {
    FUZZ_CHECK(r.repository.find('/') != std::string::npos, Show(r));
  }
  FUZZ_CHECK(r.tag.size() <= 128, Show(r));
  FUZZ_CHECK(r.digest.empty() || rollgate::fuzz::StartsWith(r.digest, "sha"), Show(r));
  FUZZ_CHECK(Printable(r.registry + r.repository + r.tag + r.digest), Show(r));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const std::string ref(in.Until('\n'));
  const std::vector<std::string> allowed = rollgate::fuzz::Split(in.Rest(), '\n');

  const rollgate::Status valid = rollgate::rollout::ValidateAllowedRegistries(allowed);
  if (!valid.ok()) CheckError(valid);

  auto parsed = rollgate::rollout::ParseImageRef(ref);
  if (!parsed.ok()) {
    CheckError(parsed.status());
    FUZZ_CHECK(parsed.status().message().size() <= 2048, parsed.status().message());
    return 0;
  }
  const ImageRef& r = *parsed;
  CheckParsed(r);
  (void)r.Familiar();

  // The fully qualified form reads back as the same reference (when it fits the 255-byte name).
  std::string qualified = r.registry + "/" + r.repository;
  if (qualified.size() <= 255) {
    if (!r.tag.empty()) qualified += ":" + r.tag;
    if (!r.digest.empty()) qualified += "@" + r.digest;
    auto again = rollgate::rollout::ParseImageRef(qualified);
    FUZZ_CHECK(again.ok(), qualified + ": " + again.status().ToString());
    FUZZ_CHECK(*again == r, ref + " -> " + Show(r) + " but " + qualified + " -> " + Show(*again));
  }

  // An image is allowed by an entry naming its own registry, or its registry and repository.
  for (const std::string& own : {r.registry, r.registry + "/" + r.repository}) {
    const std::vector<std::string> just_own = {own};
    FUZZ_CHECK(rollgate::rollout::ValidateAllowedRegistries(just_own).ok(),
               own + ": " + rollgate::rollout::ValidateAllowedRegistries(just_own).ToString());
    const rollgate::Status st = rollgate::rollout::CheckAllowedRegistry(r, just_own, ref);
    FUZZ_CHECK(st.ok(), ref + " with " + own + ": " + st.ToString());
  }

  const rollgate::Status st = rollgate::rollout::CheckAllowedRegistry(r, allowed, ref);
  if (!st.ok()) {
    CheckError(st);
    FUZZ_CHECK(!allowed.empty(), st.ToString());
  }
  // Entries ValidateAllowedRegistries rejects never match: the valid ones alone decide.
  std::vector<std::string> valid_only;
  for (const std::string& e : allowed) {
    if (rollgate::rollout::ValidateAllowedRegistries({e}).ok()) valid_only.push_back(e);
  }
  if (!allowed.empty() && valid_only.empty()) {
    FUZZ_CHECK(!st.ok(), "only invalid entries, yet allowed: " + ref);
  } else if (!valid_only.empty()) {
    const bool ok_valid = rollgate::rollout::CheckAllowedRegistry(r, valid_only, ref).ok();
    FUZZ_CHECK(ok_valid == st.ok(), ref);
  }
  return 0;
}
