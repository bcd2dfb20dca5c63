// The validator's verdict: what each check found, the device list, the failure class that the
// exit code reports, and its JSON rendering. The JSON goes to stdout and to the container's
// termination log, which Kubernetes caps at 4096 bytes, so rendering keeps it under a byte budget
// by shortening strings and leaving devices out (and says so) rather than being cut mid-document.
//
// JSON shape (absent fields are left out, never null):
//   {"passed":false,
//    "message":"kernel: device 0: cuModuleLoadData failed: CUDA_ERROR_INVALID_PTX (...)",
//    "failedCheck":"kernel", "failedDevice":0,
//    "cudaError":{"code":218,"name":"CUDA_ERROR_INVALID_PTX","message":"..."},
//    "driverVersion":"12.4", "deviceCount":1,
//    "devices":[{"index":0,"name":"NVIDIA H200","computeCapability":"9.0",
//                "totalMemoryBytes":150754820096}],
//    "checks":[{"name":"library","passed":true,"detail":"..."}, ...],
//    "durationMs":412, "truncated":true, "devicesOmitted":3}
// Check names, in probe order: library, init, driverVersion, deviceCount, deviceProperties,
// context, memory, kernel; "usage" for a command-line error. On a timeout the failed check is the
// one that was running.
// Thread-safety: value types and pure functions; safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/validator/options.h"

namespace rollgate::validator {

inline constexpr const char* kCheckUsage = "usage";
inline constexpr const char* kCheckLibrary = "library";
inline constexpr const char* kCheckInit = "init";
inline constexpr const char* kCheckDriverVersion = "driverVersion";
inline constexpr const char* kCheckDeviceCount = "deviceCount";
inline constexpr const char* kCheckDeviceProperties = "deviceProperties";
inline constexpr const char* kCheckContext = "context";
inline constexpr const char* kCheckMemory = "memory";
inline constexpr const char* kCheckKernel = "kernel";

// Why validation failed; each class has its own exit code.
enum class FailureClass {
  kNone,          // 0: CUDA works
  kUsage,         // 2: bad command line
  kLibrary,       // 10: libcuda missing, or not a usable driver library
  kInit,          // 11: cuInit or cuDriverGetVersion failed
  kDevices,       // 12: no devices, fewer than --min-devices, or a device cannot be queried
  kBelowMinimum,  // 13: driver version or compute capability below the required minimum
  kContext,       // 14: context creation or memory allocation/copy failed
  kKernel,        // 15: module load, launch, synchronisation or a wrong result
  kTimeout,       // 16: the run exceeded --timeout
};

int ExitCode(FailureClass failure);
// "none", "usage", "library", "init", "devices", "belowMinimum", "context", "kernel", "timeout".
const char* FailureClassName(FailureClass failure);

// A driver API error, named by cuGetErrorName/cuGetErrorString.
struct CudaError {
  int code = 0;
  std::string name;     // "CUDA_ERROR_OUT_OF_MEMORY"
  std::string message;  // "out of memory"
  friend bool operator==(const CudaError&, const CudaError&) = default;
};

struct CheckResult {
  std::string name;
  bool passed = false;
  std::string detail;
  friend bool operator==(const CheckResult&, const CheckResult&) = default;
};

struct DeviceInfo {
  int index = 0;
  std::string name;
  ComputeCapability compute_capability;
  std::uint64_t total_memory_bytes = 0;
  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

struct Verdict {
  bool passed = false;
  FailureClass failure = FailureClass::kNone;
  std::string message;       // one line: the summary on success, "<check>: <detail>" on failure
  std::string failed_check;  // empty when passed
  std::optional<int> failed_device;
  std::optional<CudaError> cuda_error;
  std::optional<int> driver_version;  // encoded, as cuDriverGetVersion returns it
  std::optional<int> device_count;
  std::vector<DeviceInfo> devices;
  std::vector<CheckResult> checks;
  std::int64_t duration_ms = 0;
};

// The verdict of a command-line error (exit 2).
Verdict UsageVerdict(const std::string& error);

// Turns the progress made so far into the verdict of a run that overran `timeout_seconds`:
// `running_check` (empty if none had started) is recorded as failed and named as the failed check.
Verdict TimedOutVerdict(Verdict progress, const std::string& running_check, double timeout_seconds);

// The Kubernetes termination message limit is 4096 bytes; stay clearly under it.
inline constexpr std::size_t kMaxVerdictBytes = 4000;

// Renders the verdict as one line of JSON of at most `max_bytes` bytes (max_bytes >= 256).
// Strings are valid UTF-8 (invalid bytes become U+FFFD). When the full rendering is too long,
// strings are shortened (ending in "...") and trailing devices left out, marked by
// "truncated":true and "devicesOmitted".
std::string RenderVerdictJson(const Verdict& verdict, std::size_t max_bytes = kMaxVerdictBytes);

// `text` as a JSON string literal (quotes included), at most `max_bytes` bytes of content before
// escaping, cut on a UTF-8 boundary and marked with "..." when shortened; `*cut` is set then.
std::string JsonString(std::string_view text, std::size_t max_bytes = SIZE_MAX,
                       bool* cut = nullptr);

}  // namespace rollgate::validator
