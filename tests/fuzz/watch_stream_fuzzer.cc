// Fuzz target: a watch stream as the API server sends it, fed line by line through the real
// kube::RestClient::Watch (its line parser is internal) by a fake HttpTransport that splits the
// input the way the cpprest transport does (on '\n', a trailing '\r' dropped, empty lines
// skipped). Every event's object then goes where the informer and the controller send it:
// ObjectKey, MetaString, DecodeRollout / DecodeDeployment / DecodeNamespace, SpecHash.
// Input: 1 byte choosing the HTTP status (mostly 200; otherwise the rest is an error body), then
// the stream.
// Invariants: no exception escapes; Watch returns OK only when every line was an event it
// delivered; errors start with the operation and are bounded by the input; decoders as in
// rollout_codec_fuzzer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "controller/api/codec.h"
#include "controller/common/cancel.h"
#include "controller/common/clock.h"
#include "controller/kube/http_transport.h"
#include "controller/kube/kube_client.h"
#include "controller/kube/resource.h"
#include "controller/kube/rest_client.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rollgate::Result;
using rollgate::Status;
using rollgate::StatusCode;
using rollgate::kube::HttpRequest;
using rollgate::kube::HttpResponse;

class FakeStreamTransport final : public rollgate::kube::HttpTransport {
 public:
  FakeStreamTransport(int status, std::string_view body, std::size_t* lines_delivered)
      : status_(status), body_(body), lines_delivered_(lines_delivered) {}

  Result<HttpResponse> Send(const HttpRequest& /*req*/,
                            const rollgate::CancelToken* /*cancel*/) override {
    return Status(StatusCode::kTransport, "fake transport: Send is not used");
  }

  Result<HttpResponse> Stream(const HttpRequest& /*req*/,
                              const std::function<bool(std::string_view line)>& on_line,
                              const rollgate::CancelToken& /*cancel*/) override {
    HttpResponse out;
    out.status = status_;
    if (status_ < 200 || status_ > 299) {
      out.body = std::string(body_);
      out.headers["retry-after"] = "1";
      return out;
    }
    std::string_view rest = body_;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      ++*lines_delivered_;
      if (!on_line(line)) break;
    }
    return out;
  }

 private:
  int status_;
  std::string_view body_;
  std::size_t* lines_delivered_;
};

constexpr int kStatuses[] = {200, 200, 200, 200, 200, 200, 410, 500};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  rollgate::fuzz::Reader in(data, size);
  const int status = kStatuses[in.Byte() % (sizeof kStatuses / sizeof kStatuses[0])];
  const std::string_view body = in.Rest();

  static const rollgate::RealClock clock;
  std::size_t lines = 0;
  rollgate::kube::RestClientOptions opts;
  opts.qps = 0;  // no client-side throttling: nothing may sleep
  opts.sleep = [](std::chrono::nanoseconds) {};
  rollgate::kube::RestClient client(std::make_unique<FakeStreamTransport>(status, body, &lines),
                                    nullptr, clock, opts);

  std::size_t events = 0;
  auto on_event = [&](rollgate::kube::WatchEvent&& ev) -> bool {
    ++events;
    FUZZ_CHECK(ev.object.is_object(), ev.object.serialize());
    const std::string key = rollgate::kube::ObjectKey(ev.object);
    const std::string ns = rollgate::kube::MetaString(ev.object, "namespace");
    const std::string name = rollgate::kube::MetaString(ev.object, "name");
    FUZZ_CHECK(key == (ns.empty() ? name : ns + "/" + name), key);
    (void)rollgate::kube::MetaString(ev.object, "resourceVersion");
    if (auto r = rollgate::api::DecodeRollout(ev.object); !r.ok()) {
      FUZZ_CHECK(r.status().code() == StatusCode::kInvalidArgument, r.status().ToString());
    }
    if (auto d = rollgate::api::DecodeDeployment(ev.object); !d.ok()) {
      FUZZ_CHECK(d.status().code() == StatusCode::kInvalidArgument, d.status().ToString());
    }
    (void)rollgate::api::DecodeNamespace(ev.object);
    (void)rollgate::api::SpecHash(ev.object);
    return true;
  };

  rollgate::CancelToken cancel;
  rollgate::kube::WatchOptions wo;
  wo.resource_version = "1";
  const Status st =
      client.Watch(rollgate::kube::resources::ContainerRollouts(), "app", wo, on_event, cancel);
  const std::string what = "watch containerrollouts.rollgate.io app";
  if (status != 200) {
    FUZZ_CHECK(!st.ok(), st.ToString());
    FUZZ_CHECK(events == 0, std::to_string(events));
  }
  if (st.ok()) {
    FUZZ_CHECK(events == lines, std::to_string(events) + " events of " + std::to_string(lines));
  } else {
    FUZZ_CHECK(rollgate::fuzz::StartsWith(st.message(), what + ": "), st.message());
    FUZZ_CHECK(st.message().size() <= what.size() + body.size() + 256, st.message());
    (void)st.ToString();
  }
  return 0;
}
