// Fuzz target: Prometheus /api/v1/query responses, evaluated by rollout::EvaluateQueryResponse.
// Input: 1 byte choosing the HTTP status, 1 byte choosing the bounds (none, min, max, both; the
// values from the next 16 bytes as doubles), then the response body.
// Invariants: no exception escapes; Pass and Fail only for a 2xx answer with a number that is not
// NaN, and only as the bounds say; the message starts with the check's name; messages are
// bounded by the body (the body itself is quoted at most 200 bytes).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "controller/rollout/analysis.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::rollout::SampleOutcome;

constexpr int kStatuses[] = {200, 200, 200, 200, 204, 400, 422, 503, 500, 302};

double ToDouble(std::uint64_t bits) {
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const int http = kStatuses[in.Byte() % (sizeof kStatuses / sizeof kStatuses[0])];
  const std::uint8_t bounds = in.Byte();
  const std::uint64_t lo_bits = in.U64();
  const std::uint64_t hi_bits = in.U64();
  const std::string body(in.Rest());

  rollgate::rollout::Check check;
  check.name = (bounds & 4U) != 0 ? "" : "error-rate";
  check.query = "sum(rate(http_errors_total[2m]))";
  // Mostly small, readable bounds; sometimes any double (NaN and infinities included).
  if ((bounds & 1U) != 0) {
    check.min = (bounds & 8U) != 0 ? ToDouble(lo_bits) : static_cast<double>(lo_bits % 1000) / 100;
  }
  if ((bounds & 2U) != 0) {
    check.max = (bounds & 8U) != 0 ? ToDouble(hi_bits) : static_cast<double>(hi_bits % 1000) / 100;
  }
  const std::string name = check.name.empty() ? check.query : check.name;

  const auto r = rollgate::rollout::EvaluateQueryResponse(check, http, body);
  FUZZ_CHECK(r.name == name, r.name);
  FUZZ_CHECK(rollgate::fuzz::StartsWith(r.message, name), r.message);
  FUZZ_CHECK(r.message.size() <= name.size() + body.size() + 300, r.message);
  if (r.outcome != SampleOutcome::kInconclusive) {
    FUZZ_CHECK(http >= 200 && http <= 299, r.message);
    FUZZ_CHECK(r.value.has_value(), r.message);
    FUZZ_CHECK(!std::isnan(*r.value), r.message);
    const bool below = check.min && *r.value < *check.min;
    const bool above = check.max && *r.value > *check.max;
    FUZZ_CHECK((r.outcome == SampleOutcome::kFail) == (below || above), r.message);
  }
  (void)rollgate::rollout::AggregateChecks({r}).Summary();
  return 0;
}
