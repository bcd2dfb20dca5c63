// Fuzz target: a Pod as JSON text with the injected init containers' statuses and their
// termination messages (rollgate-validate's JSON verdict), judged by validation::PodVerdict.
// The injected names are fixed: rollgate-validate and rollgate-validate-command.
// Invariants: no exception escapes; pending and passed verdicts carry no message; a failed one
// says which container and pod, is bounded (the termination message is cut to 600 bytes), and is
// valid UTF-8 whenever the pod's strings are.
#include <cpprest/json.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "controller/validation/pod_validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::validation::Verdict;

const std::vector<std::string>& InitNames() {
  static const std::vector<std::string> names = {"rollgate-validate", "rollgate-validate-command"};
  return names;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  const std::string text(reinterpret_cast<const char*>(data), size);
  web::json::value pod;
  try {
    pod = web::json::value::parse(text);
  } catch (const std::exception&) {
    return 0;
  }
  for (std::size_t n = 0; n <= InitNames().size(); ++n) {
    const std::vector<std::string> names(InitNames().begin(),
                                         InitNames().begin() + static_cast<std::ptrdiff_t>(n));
    const Verdict v = rollgate::validation::PodVerdict(pod, names);
    switch (v.state) {
      case Verdict::State::kPending:
      case Verdict::State::kPassed:
        FUZZ_CHECK(v.message.empty(), v.message);
        FUZZ_CHECK(!(n == 0 && v.state != Verdict::State::kPassed), "no containers: passed");
        break;
      case Verdict::State::kFailed:
        FUZZ_CHECK(n > 0, v.message);
        FUZZ_CHECK(rollgate::fuzz::StartsWith(v.message, "pod "), v.message);
        FUZZ_CHECK(v.message.find(" exited ") != std::string::npos, v.message);
        // Pod name, node name and reason are the API server's; the termination message (what the
        // container wrote) is cut to 600 bytes.
        FUZZ_CHECK(v.message.size() <= text.size() + 700, v.message);
        // Strings decoded from valid UTF-8 JSON (without \u escapes, which may encode lone
        // surrogates) are valid UTF-8, and so must the message be.
        if (rollgate::fuzz::IsValidUtf8(text) && text.find("\\u") == std::string::npos) {
          FUZZ_CHECK(rollgate::fuzz::IsValidUtf8(v.message), v.message);
        }
        break;
    }
  }
  return 0;
}
