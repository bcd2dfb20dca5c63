// Fuzz target: rollgate-validate's verdict JSON (validator::RenderVerdictJson, JsonString), which
// goes to the container's termination log (Kubernetes keeps 4096 bytes of it). Input: a Verdict:
// flags and numbers from the first bytes, then its strings (message, failed check, CUDA error name
// and message, device names, check names and details), NUL-separated. Invariants: no exception
// escapes; the default rendering is at most kMaxVerdictBytes (< 4096) and a rendering with a budget
// of B >= 256 at most B bytes; every rendering is one line of valid UTF-8 and parses as a JSON
// object whose "passed" is the verdict's; JsonString of a short valid UTF-8 string parses back to
// the same string.
#include <cpprest/json.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "controller/validator/verdict.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::validator::Verdict;

void CheckRendering(const Verdict& v, const std::string& json, std::size_t budget) {
  FUZZ_CHECK(json.size() <= budget,
             std::to_string(json.size()) + " > " + std::to_string(budget) + ": " + json);
  FUZZ_CHECK(json.find('\n') == std::string::npos, json);
  FUZZ_CHECK(rollgate::fuzz::IsValidUtf8(json), json);
  web::json::value doc;
  try {
    doc = web::json::value::parse(json);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string(e.what()) + ": " + json);
  }
  FUZZ_CHECK(doc.is_object(), json);
  FUZZ_CHECK(doc.has_field("passed") && doc.at("passed").is_boolean() &&
                 doc.at("passed").as_bool() == v.passed,
             json);
  FUZZ_CHECK(doc.has_field("message") && doc.at("message").is_string(), json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  Verdict v;
  const std::uint8_t flags = in.Byte();
  v.passed = (flags & 1U) != 0;
  v.failure = static_cast<rollgate::validator::FailureClass>(in.Byte() % 9);
  const std::size_t budget = 256 + static_cast<std::size_t>(in.U16() % 8192);
  const std::size_t n_devices = in.Byte() % 40;
  const std::size_t n_checks = in.Byte() % 40;
  if ((flags & 2U) != 0) v.failed_device = static_cast<int>(in.U32());
  if ((flags & 4U) != 0) v.driver_version = static_cast<int>(in.U32());
  if ((flags & 8U) != 0) v.device_count = static_cast<int>(in.U32());
  v.duration_ms = static_cast<std::int64_t>(in.U64());
  const int cuda_code = static_cast<int>(in.U32());
  std::vector<std::pair<int, rollgate::validator::ComputeCapability>> device_numbers;
  for (std::size_t i = 0; i < n_devices; ++i) {
    const int index = static_cast<int>(in.U16());
    const int major = static_cast<int>(static_cast<std::int8_t>(in.Byte()));
    const int minor = static_cast<int>(in.Byte());
    device_numbers.push_back({index, {major, minor}});
  }
  std::vector<std::string> s = rollgate::fuzz::Split(in.Rest(), '\0');
  std::size_t next = 0;
  auto str = [&]() -> std::string { return next < s.size() ? s[next++] : std::string(); };

  v.message = str();
  v.failed_check = str();
  if ((flags & 16U) != 0) v.cuda_error = rollgate::validator::CudaError{cuda_code, str(), str()};
  for (std::size_t i = 0; i < n_devices; ++i) {
    rollgate::validator::DeviceInfo d;
    d.index = device_numbers[i].first;
    d.compute_capability = device_numbers[i].second;
    d.name = str();
    d.total_memory_bytes = std::uint64_t{1} << (i % 64);
    v.devices.push_back(std::move(d));
  }
  for (std::size_t i = 0; i < n_checks; ++i) {
    const std::string name = str();
    v.checks.push_back({name, (flags & 32U) != 0, str()});
  }
  if ((flags & 64U) != 0) v = rollgate::validator::TimedOutVerdict(std::move(v), str(), 60);
  if ((flags & 128U) != 0) v = rollgate::validator::UsageVerdict(str());

  const std::string json = rollgate::validator::RenderVerdictJson(v);
  FUZZ_CHECK(json.size() < 4096, json);
  CheckRendering(v, json, rollgate::validator::kMaxVerdictBytes);
  CheckRendering(v, rollgate::validator::RenderVerdictJson(v, budget), budget);

  // JsonString: a string within its budget comes back exactly.
  const std::string& text = v.message;
  bool cut = false;
  const std::string lit = rollgate::validator::JsonString(text, 512, &cut);
  FUZZ_CHECK(rollgate::fuzz::IsValidUtf8(lit), lit);
  web::json::value parsed;
  try {
    parsed = web::json::value::parse(lit);
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, std::string(e.what()) + ": " + lit);
  }
  FUZZ_CHECK(parsed.is_string(), lit);
  if (text.size() <= 512 && rollgate::fuzz::IsValidUtf8(text)) {
    FUZZ_CHECK(!cut && parsed.as_string() == text, lit);
  } else if (text.size() > 512) {
    FUZZ_CHECK(cut && parsed.as_string().size() <= 512, lit);
  }
  return 0;
}
