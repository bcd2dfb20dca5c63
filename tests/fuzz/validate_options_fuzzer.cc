// Fuzz target: rollgate-validate's command line (validator::ParseArgs) and the version parsers
// behind it (ParseDriverVersion, ParseComputeCapability). Input: the arguments, separated by NUL
// bytes. Invariants: no exception escapes; either a usage error naming the problem, or options
// within their documented ranges; the parsers' results format back to text that parses to the same
// value (a driver version's patch digit is dropped, as documented).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "controller/validator/options.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::validator::ComputeCapability;

void CheckVersionParsers(const std::string& text) {
  if (auto v = rollgate::validator::ParseDriverVersion(text)) {
    FUZZ_CHECK(*v >= 0 && *v <= 999'999, text);
    const std::string shown = rollgate::validator::FormatDriverVersion(*v);
    auto again = rollgate::validator::ParseDriverVersion(shown);
    FUZZ_CHECK(again.has_value() && *again == *v - *v % 10, text + " -> " + shown);
  }
  if (auto cc = rollgate::validator::ParseComputeCapability(text)) {
    FUZZ_CHECK(cc->major >= 0 && cc->major <= 99 && cc->minor >= 0 && cc->minor <= 99, text);
    const std::string shown = rollgate::validator::FormatComputeCapability(*cc);
    auto again = rollgate::validator::ParseComputeCapability(shown);
    FUZZ_CHECK(again.has_value() && *again == *cc, text + " -> " + shown);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const std::vector<std::string> args = rollgate::fuzz::Split(in.Rest(), '\0');
  for (const std::string& a : args) CheckVersionParsers(a);

  const rollgate::validator::ParsedArgs parsed = rollgate::validator::ParseArgs(args);
  if (!parsed.error.empty()) {
    const std::string& e = parsed.error;
    FUZZ_CHECK(rollgate::fuzz::StartsWith(e, "unexpected argument \"") ||
                   rollgate::fuzz::StartsWith(e, "unknown flag --") ||
                   (rollgate::fuzz::StartsWith(e, "flag --") &&
                    e.find(" needs a value") != std::string::npos) ||
                   rollgate::fuzz::StartsWith(e, "invalid value \""),
               e);
  }
  const rollgate::validator::ValidateOptions& o = parsed.options;
  FUZZ_CHECK(!o.cuda_library.empty() && !o.termination_log.empty(), parsed.error);
  FUZZ_CHECK(
      std::isfinite(o.timeout_seconds) && o.timeout_seconds > 0 && o.timeout_seconds <= 86400,
      std::to_string(o.timeout_seconds));
  FUZZ_CHECK(o.min_devices >= 1 && o.min_devices <= 1024, std::to_string(o.min_devices));
  if (o.min_driver_version) FUZZ_CHECK(*o.min_driver_version >= 0, parsed.error);
  if (o.min_compute_capability) {
    FUZZ_CHECK(o.min_compute_capability->major <= 99 && o.min_compute_capability->minor <= 99,
               parsed.error);
  }
  (void)rollgate::validator::Usage(args.empty() ? std::string("rollgate-validate") : args.front());
  return 0;
}
