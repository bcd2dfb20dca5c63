// Verdict helpers and the size-bounded JSON rendering. See verdict.h.
// Thread-safety: pure functions; see verdict.h.
#include "controller/validator/verdict.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "controller/common/json_escape.h"

namespace rollgate::validator {
namespace {

struct Limits {
  std::size_t max_string;
  std::size_t max_devices;
};

std::string Render(const Verdict& v, Limits limits) {
  bool truncated = false;
  auto str = [&](std::string_view s) {
    bool cut = false;
    std::string out = JsonString(s, limits.max_string, &cut);
    truncated = truncated || cut;
    return out;
  };
  std::string j = "{\"passed\":";
  j += v.passed ? "true" : "false";
  j += ",\"message\":" + str(v.message);
  if (!v.failed_check.empty()) j += ",\"failedCheck\":" + str(v.failed_check);
  if (v.failed_device) j += ",\"failedDevice\":" + std::to_string(*v.failed_device);
  if (v.cuda_error) {
    j += R"(,"cudaError":{"code":)" + std::to_string(v.cuda_error->code) + R"(,"name":)" +
         str(v.cuda_error->name) + R"(,"message":)" + str(v.cuda_error->message) + "}";
  }
  if (v.driver_version) {
    j += ",\"driverVersion\":" + str(FormatDriverVersion(*v.driver_version));
  }
  if (v.device_count) j += ",\"deviceCount\":" + std::to_string(*v.device_count);
  std::size_t shown = std::min(v.devices.size(), limits.max_devices);
  if (!v.devices.empty()) {
    j += ",\"devices\":[";
    for (std::size_t i = 0; i < shown; ++i) {
      const DeviceInfo& d = v.devices[i];
      if (i > 0) j += ",";
      j += "{\"index\":" + std::to_string(d.index) + ",\"name\":" + str(d.name) +
           ",\"computeCapability\":" + str(FormatComputeCapability(d.compute_capability)) +
           ",\"totalMemoryBytes\":" + std::to_string(d.total_memory_bytes) + "}";
    }
    j += "]";
  }
  j += ",\"checks\":[";
  for (std::size_t i = 0; i < v.checks.size(); ++i) {
    const CheckResult& c = v.checks[i];
    if (i > 0) j += ",";
    j += "{\"name\":" + str(c.name) + ",\"passed\":" + (c.passed ? "true" : "false") +
         ",\"detail\":" + str(c.detail) + "}";
  }
  j += "],\"durationMs\":" + std::to_string(v.duration_ms);
  if (shown < v.devices.size()) {
    truncated = true;
    j += ",\"devicesOmitted\":" + std::to_string(v.devices.size() - shown);
  }
  if (truncated) j += ",\"truncated\":true";
  j += "}";
  return j;
}

}  // namespace

int ExitCode(FailureClass failure) {
  switch (failure) {
    case FailureClass::kNone:
      return 0;
    case FailureClass::kUsage:
      return 2;
    case FailureClass::kLibrary:
      return 10;
    case FailureClass::kInit:
      return 11;
    case FailureClass::kDevices:
      return 12;
    case FailureClass::kBelowMinimum:
      return 13;
    case FailureClass::kContext:
      return 14;
    case FailureClass::kKernel:
      return 15;
    case FailureClass::kTimeout:
      return 16;
  }
  return 1;
}

const char* FailureClassName(FailureClass failure) {
  switch (failure) {
    case FailureClass::kNone:
      return "none";
    case FailureClass::kUsage:
      return "usage";
    case FailureClass::kLibrary:
      return "library";
    case FailureClass::kInit:
      return "init";
    case FailureClass::kDevices:
      return "devices";
    case FailureClass::kBelowMinimum:
      return "belowMinimum";
    case FailureClass::kContext:
      return "context";
    case FailureClass::kKernel:
      return "kernel";
    case FailureClass::kTimeout:
      return "timeout";
  }
  return "unknown";
}

Verdict UsageVerdict(const std::string& error) {
  Verdict v;
  v.failure = FailureClass::kUsage;
  v.failed_check = kCheckUsage;
  v.checks.push_back({kCheckUsage, false, error});
  v.message = std::string(kCheckUsage) + ": " + error;
  return v;
}

Verdict TimedOutVerdict(Verdict progress, const std::string& running_check,
                        double timeout_seconds) {
  std::array<char, 32> seconds{};
  std::snprintf(seconds.data(), seconds.size(), "%g", timeout_seconds);
  std::string where = running_check.empty() ? "timeout" : running_check;
  std::string detail = "did not finish within " + std::string(seconds.data()) + "s";
  Verdict v = std::move(progress);
  v.passed = false;
  v.checks.push_back({where, false, detail});
  if (v.failure == FailureClass::kNone) {
    v.failed_check = where;
    v.message = where + ": " + detail;
  } else {
    // The probe had already failed and then hung (e.g. while releasing what it had created):
    // keep the first failure's check and error, and say that the run did not end.
    v.message += "; then " + where + " " + detail;
  }
  v.failure = FailureClass::kTimeout;
  return v;
}

std::string JsonString(std::string_view text, std::size_t max_bytes, bool* cut) {
  return json::Quoted(json::SanitizeUtf8(text, max_bytes, cut));
}

std::string RenderVerdictJson(const Verdict& verdict, std::size_t max_bytes) {
  static constexpr std::array<Limits, 8> kSteps = {
      {{1024, SIZE_MAX}, {256, SIZE_MAX}, {256, 16}, {160, 8}, {96, 4}, {64, 2}, {48, 1}, {32, 0}}};
  for (const Limits& limits : kSteps) {
    std::string json = Render(verdict, limits);
    if (json.size() <= max_bytes) return json;
  }
  // Still too long (only with a tiny budget or a pathological verdict): the essentials.
  std::string j = "{\"passed\":";
  j += verdict.passed ? "true" : "false";
  j += ",\"message\":" + JsonString(verdict.message, 24);
  if (!verdict.failed_check.empty()) {
    j += ",\"failedCheck\":" + JsonString(verdict.failed_check, 24);
  }
  j += ",\"durationMs\":" + std::to_string(verdict.duration_ms) + ",\"truncated\":true}";
  if (j.size() <= max_bytes) return j;
  // Escaping can grow 24 bytes of control characters six-fold: drop the texts altogether.
  return std::string("{\"passed\":") + (verdict.passed ? "true" : "false") +
         R"(,"message":"verdict too large","checks":[],"durationMs":)" +
         std::to_string(verdict.duration_ms) + ",\"truncated\":true}";
}

}  // namespace rollgate::validator
