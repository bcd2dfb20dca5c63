// Command-line options of rollgate-validate and the pure parsing behind them: the flags, CUDA
// driver versions ("12.4" or cuDriverGetVersion's 12040) and compute capabilities ("8.0"). No
// I/O: main prints the usage text and decides the exit code.
// Thread-safety: stateless free functions and value types; safe to call from any thread.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rollgate::validator {

// A compute capability, e.g. {9, 0} for Hopper; ordered by (major, minor).
struct ComputeCapability {
  int major = 0;
  int minor = 0;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  friend auto operator<=>(const ComputeCapability&, const ComputeCapability&) = default;
};

// "9.0"
std::string FormatComputeCapability(ComputeCapability cc);
// Accepts "M.m" (each 0-99: "8.0", "8.6", "10.0", "12.1") or a bare major "9" (= "9.0").
std::optional<ComputeCapability> ParseComputeCapability(std::string_view text);

// Driver versions use cuDriverGetVersion's encoding, 1000 * major + 10 * minor (12040 = 12.4).
// "12.4"; a patch digit that the encoding may carry is dropped (12041 -> "12.4").
std::string FormatDriverVersion(int encoded);
// Accepts "12.4" / "12.10" (minor 0-99), a bare major "12" (= 12.0), or the encoded form
// "12040" (any integer >= 1000). Returns the encoded version.
std::optional<int> ParseDriverVersion(std::string_view text);

inline constexpr const char* kDefaultCudaLibrary = "libcuda.so.1";
inline constexpr const char* kDefaultTerminationLog = "/dev/termination-log";

struct ValidateOptions {
  std::string cuda_library = kDefaultCudaLibrary;
  std::string termination_log = kDefaultTerminationLog;
  double timeout_seconds = 60;                              // bounds the whole run
  std::optional<int> min_driver_version;                    // encoded; none = any
  int min_devices = 1;                                      // >= 1
  std::optional<ComputeCapability> min_compute_capability;  // none = any
};

struct ParsedArgs {
  // The options as far as they were parsed: on an error the flags before it are applied, so
  // that a usage verdict can still go to the requested --termination-log.
  ValidateOptions options;
  bool help = false;
  std::string error;  // non-empty: a usage error naming the flag
};

// Parses argv[1..] as `--flag=value` or `--flag value`; `--help`/`-h` sets `help`. Unknown
// flags, positional arguments, missing or malformed values are errors.
ParsedArgs ParseArgs(const std::vector<std::string>& args);

// The --help text.
std::string Usage(std::string_view program);

}  // namespace rollgate::validator
