// Fuzz target: API server error responses, as kube::StatusFromResponse (HTTP status, body,
// Retry-After header) and kube::StatusFromStatusObject (a watch ERROR event's object) map them.
// Input: 2 bytes HTTP status (mapped into 100-599), one line of Retry-After header value (absent
// when the line is empty), then the body.
// Invariants: no exception escapes; the Status is never OK and its message starts with the
// operation; a body that is not a metav1.Status is summarised (message bounded whatever the body);
// a Retry-After hint is not negative and fits in nanoseconds.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "controller/kube/api_errors.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// A Retry-After hint is a wait: not negative, and usable where callers put it (the informer's
// backoff and the work queue hold nanoseconds).
void CheckRetryAfter(const rollgate::Status& st) {
  if (!st.retry_after()) return;
  const std::chrono::seconds s = *st.retry_after();
  constexpr auto kMax =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::nanoseconds::max());
  FUZZ_CHECK(s.count() >= 0 && s <= kMax,
             "retry_after " + std::to_string(s.count()) + "s: " + st.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const int http = 100 + static_cast<int>(in.U16() % 500);
  const std::string retry_after(in.Until('\n'));
  const std::string body(in.Rest());
  std::map<std::string, std::string> headers;
  if (!retry_after.empty()) headers["retry-after"] = retry_after;

  const std::string what = "get deployments.apps app/api";
  const rollgate::Status st = rollgate::kube::StatusFromResponse(http, body, headers, what);
  FUZZ_CHECK(!st.ok(), body);
  FUZZ_CHECK(rollgate::fuzz::StartsWith(st.message(), what + ": "), st.message());
  FUZZ_CHECK(st.http_status() != 0, st.ToString());
  // A metav1.Status carries the server's own message (bounded by the body); anything else is
  // cut to its first line, 200 bytes.
  FUZZ_CHECK(st.message().size() <= what.size() + body.size() + 64, st.message());
  if (body.find("Status") == std::string::npos && body.find("\\u") == std::string::npos) {
    FUZZ_CHECK(st.message().size() <= what.size() + 240, st.message());
  }
  CheckRetryAfter(st);
  (void)st.ToString();
  (void)st.IsRetryable();

  const rollgate::Status ev = rollgate::kube::StatusFromStatusObject(body, what);
  FUZZ_CHECK(!ev.ok(), body);
  FUZZ_CHECK(rollgate::fuzz::StartsWith(ev.message(), what + ": "), ev.message());
  FUZZ_CHECK(ev.message().size() <= what.size() + body.size() + 64, ev.message());
  CheckRetryAfter(ev);
  (void)ev.ToString();
  return 0;
}
