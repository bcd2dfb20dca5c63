// Fuzz target: a ContainerRollout / Deployment / Namespace object as JSON text, decoded by
// api::DecodeRollout, DecodeDeployment, DecodeNamespace and hashed by SpecHash.
// Invariants: no exception escapes the decoders; a decode is ok or kInvalidArgument with a short
// message naming the field; SpecHash is 16 lowercase hex digits; a decoded status survives
// EncodeStatus -> JSON text -> DecodeRollout unchanged.
#include <cpprest/json.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "controller/api/codec.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::StatusCode;
using rollgate::api::Json;

void CheckDecodeError(const rollgate::Status& st) {
  FUZZ_CHECK(st.code() == StatusCode::kInvalidArgument, st.ToString());
  FUZZ_CHECK(!st.message().empty(), st.ToString());
  // Messages name a field ("spec.environments[3].targets: must be a list"), never echo data.
  FUZZ_CHECK(st.message().size() < 256, st.ToString());
}

bool IsLowerHex(const std::string& s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Json obj;
  try {
    obj = Json::parse(text);
  } catch (const std::exception&) {
    return 0;  // not JSON: the callers report it as kMalformed before any decoder runs
  }

  auto rollout = rollgate::api::DecodeRollout(obj);
  if (!rollout.ok()) {
    CheckDecodeError(rollout.status());
  } else {
    // The status round trip the controller relies on: what it writes, it reads back the same.
    Json again = Json::object();
    again["metadata"] = Json::object();
    again["spec"] = Json::object();
    again["spec"]["environments"] = Json::array();
    again["status"] = rollgate::api::EncodeStatus(rollout->status);
    const std::string wire = again.serialize();
    Json reparsed;
    try {
      reparsed = Json::parse(wire);
    } catch (const std::exception& e) {
      FUZZ_CHECK(false, std::string("EncodeStatus produced unparseable JSON: ") + e.what());
    }
    auto back = rollgate::api::DecodeRollout(reparsed);
    FUZZ_CHECK(back.ok(), back.status().ToString());
    FUZZ_CHECK(back->status == rollout->status,
               wire + "\n  re-encoded: " + rollgate::api::EncodeStatus(back->status).serialize());
  }

  auto deployment = rollgate::api::DecodeDeployment(obj);
  if (!deployment.ok()) CheckDecodeError(deployment.status());

  (void)rollgate::api::DecodeNamespace(obj);

  const std::string hash = rollgate::api::SpecHash(obj);
  FUZZ_CHECK(hash.size() == 64 && IsLowerHex(hash), hash);
  return 0;
}
