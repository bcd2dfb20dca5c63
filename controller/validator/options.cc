// rollgate-validate's option parsing. See options.h.
// Thread-safety: stateless; see options.h.
#include "controller/validator/options.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>

namespace rollgate::validator {
namespace {

// A whole string of decimal digits (no sign, no spaces) in [0, max].
std::optional<int> ParseDigits(std::string_view text, int max) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max) {
    return std::nullopt;
  }
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return value;
}

// Splits "M.m" into its parts; a bare "M" has minor 0. Both parts 0-99 (major up to max_major).
std::optional<std::pair<int, int>> ParseMajorMinor(std::string_view text, int max_major) {
  std::size_t dot = text.find('.');
  std::optional<int> major = ParseDigits(text.substr(0, dot), max_major);
  if (!major) return std::nullopt;
  if (dot == std::string_view::npos) return std::pair{*major, 0};
  std::optional<int> minor = ParseDigits(text.substr(dot + 1), 99);
  if (!minor) return std::nullopt;
  return std::pair{*major, *minor};
}

}  // namespace

std::string FormatComputeCapability(ComputeCapability cc) {
  return std::to_string(cc.major) + "." + std::to_string(cc.minor);
}

std::optional<ComputeCapability> ParseComputeCapability(std::string_view text) {
  auto parts = ParseMajorMinor(text, 99);
  if (!parts) return std::nullopt;
  return ComputeCapability{parts->first, parts->second};
}

std::string FormatDriverVersion(int encoded) {
  return std::to_string(encoded / 1000) + "." + std::to_string((encoded % 1000) / 10);
}

std::optional<int> ParseDriverVersion(std::string_view text) {
  if (text.find('.') == std::string_view::npos) {
    std::optional<int> n = ParseDigits(text, 999'999);
    if (!n) return std::nullopt;
    return *n >= 1000 ? *n : *n * 1000;  // "12040" is encoded; "12" is a major version
  }
  auto parts = ParseMajorMinor(text, 999);
  if (!parts) return std::nullopt;
  return parts->first * 1000 + parts->second * 10;
}

ParsedArgs ParseArgs(const std::vector<std::string>& args) {
  ParsedArgs out;
  ValidateOptions& o = out.options;
  using Setter = std::function<std::string(const std::string&)>;  // returns an error or ""
  const std::map<std::string, Setter> flags = {
      {"cuda-library",
       [&o](const std::string& v) -> std::string {
         if (v.empty()) return "want a library name or path";
         o.cuda_library = v;
         return "";
       }},
      {"termination-log",
       [&o](const std::string& v) -> std::string {
         if (v.empty()) return "want a file path";
         o.termination_log = v;
         return "";
       }},
      {"timeout",
       [&o](const std::string& v) -> std::string {
         char* end = nullptr;
         double seconds = std::strtod(v.c_str(), &end);
         if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(seconds) || seconds <= 0 ||
             seconds > 86400) {
           return "want seconds, a number above 0 and at most 86400";
         }
         o.timeout_seconds = seconds;
         return "";
       }},
      {"min-driver-version",
       [&o](const std::string& v) -> std::string {
         std::optional<int> version = ParseDriverVersion(v);
         if (!version) return "want a CUDA driver version such as 12.4 or 12040";
         o.min_driver_version = version;
         return "";
       }},
      {"min-devices",
       [&o](const std::string& v) -> std::string {
         std::optional<int> n = ParseDigits(v, 1024);
         if (!n || *n < 1) return "want a device count from 1 to 1024";
         o.min_devices = *n;
         return "";
       }},
      {"min-compute-capability",
       [&o](const std::string& v) -> std::string {
         std::optional<ComputeCapability> cc = ParseComputeCapability(v);
         if (!cc) return "want a compute capability such as 8.0";
         o.min_compute_capability = cc;
         return "";
       }},
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.help = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      out.error = "unexpected argument \"" + arg + "\"";
      return out;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (std::size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    auto flag = flags.find(name);
    if (flag == flags.end()) {
      out.error = "unknown flag --" + name;
      return out;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        out.error = "flag --" + name + " needs a value";
        return out;
      }
      value = args[++i];
    }
    if (std::string why = flag->second(*value); !why.empty()) {
      out.error = "invalid value \"";
      out.error += *value;
      out.error += "\" for flag --";
      out.error += name;
      out.error += ": ";
      out.error += why;
      return out;
    }
  }
  return out;
}

std::string Usage(std::string_view program) {
  std::string p(program);
  return "Usage: " + p +
         " [flags]\n"
         "\n"
         "Checks that CUDA works on this node: loads the driver library, initialises it, reads\n"
         "the driver version and every device, creates a context, allocates memory and runs a\n"
         "vector-add kernel JIT-compiled from PTX. Prints one JSON verdict on stdout, writes it\n"
         "to the termination log, and exits with the failure class.\n"
         "\n"
         "Flags:\n"
         "  --cuda-library PATH            driver library to load (default libcuda.so.1)\n"
         "  --termination-log PATH         where the verdict is written too\n"
         "                                 (default /dev/termination-log)\n"
         "  --timeout SECONDS              bound on the whole run (default 60)\n"
         "  --min-driver-version VERSION   e.g. 12.4 or 12040 (default: any)\n"
         "  --min-devices N                devices required (default 1)\n"
         "  --min-compute-capability CC    e.g. 8.0, required of every device (default: any)\n"
         "  --help                         this text\n"
         "\n"
         "Exit codes: 0 passed, 2 usage, 10 library missing or unusable, 11 init failed,\n"
         "12 no or too few (usable) devices, 13 below minimum driver version or compute\n"
         "capability, 14 context or allocation failed, 15 kernel failed (load, launch or wrong\n"
         "result), 16 timed out.\n";
}

}  // namespace rollgate::validator
