// Canary analysis: table-driven tests of the pure evaluation of Prometheus /api/v1/query
// responses, the aggregation of check results, and the HTTP client against a fake transport
// (request path, https refusal, unreachable servers, transport cache). The real Prometheus is
// exercised by tests/e2e/prometheus_analysis_e2e_test.cc.
// Thread-safety: single-threaded tests, except the concurrent Sample() test.
#include "controller/rollout/analysis.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <thread>

namespace rollgate::rollout {
namespace {

using std::chrono::milliseconds;

constexpr SampleOutcome kPass = SampleOutcome::kPass;
constexpr SampleOutcome kFail = SampleOutcome::kFail;
constexpr SampleOutcome kInconclusive = SampleOutcome::kInconclusive;

std::string Vector(const std::vector<std::string>& values) {
  std::string out = R"({"status":"success","data":{"resultType":"vector","result":[)";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += R"({"metric":{"job":"j)" + std::to_string(i) + R"("},"value":[1700000000.123,")" +
           values[i] + R"("]})";
  }
  return out + "]}}";
}

std::string Scalar(const std::string& value) {
  return R"({"status":"success","data":{"resultType":"scalar","result":[1700000000.123,")" + value +
         R"("]}})";
}

Check Bounds(std::optional<double> min, std::optional<double> max) {
  return Check{"error-rate", "sum(rate(errors[5m]))", min, max};
}

struct Case {
  std::string label;
  Check check;
  int http;
  std::string body;
  SampleOutcome want;
  std::optional<double> want_value;
  std::string want_message;  // exact when it starts with "=", else a substring
};

void ExpectCase(const Case& c) {
  SCOPED_TRACE(c.label);
  CheckResult r = EvaluateQueryResponse(c.check, c.http, c.body);
  EXPECT_EQ(r.name, c.check.name.empty() ? c.check.query : c.check.name);
  EXPECT_EQ(SampleOutcomeName(r.outcome), std::string(SampleOutcomeName(c.want)));
  if (c.want_value) {
    ASSERT_TRUE(r.value.has_value());
    if (std::isinf(*c.want_value)) {
      EXPECT_EQ(*r.value, *c.want_value);
    } else {
      EXPECT_DOUBLE_EQ(*r.value, *c.want_value);
    }
  } else {
    EXPECT_FALSE(r.value.has_value()) << *r.value;
  }
  if (!c.want_message.empty() && c.want_message.front() == '=') {
    EXPECT_EQ(r.message, c.want_message.substr(1));
  } else {
    EXPECT_NE(r.message.find(c.want_message), std::string::npos) << r.message;
  }
}

TEST(AnalysisEvaluateTest, ValuesAgainstBounds) {
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"vector, one series, under max", Bounds({}, 0.01), 200, Vector({"0.002"}), kPass, 0.002,
       "=error-rate = 0.002 (max 0.01)"},
      {"vector, one series, over max", Bounds({}, 0.01), 200, Vector({"0.05"}), kFail, 0.05,
       "=error-rate = 0.05 > max 0.01"},
      {"max equal passes", Bounds({}, 0.01), 200, Vector({"0.01"}), kPass, 0.01,
       "=error-rate = 0.01 (max 0.01)"},
      {"min only, above", Bounds(100, {}), 200, Vector({"150"}), kPass, 150,
       "=error-rate = 150 (min 100)"},
      {"min only, below", Bounds(100, {}), 200, Vector({"99.5"}), kFail, 99.5,
       "=error-rate = 99.5 < min 100"},
      {"min equal passes", Bounds(100, {}), 200, Vector({"100"}), kPass, 100,
       "=error-rate = 100 (min 100)"},
      {"both, inside", Bounds(1, 2), 200, Vector({"1.5"}), kPass, 1.5,
       "=error-rate = 1.5 (min 1, max 2)"},
      {"both, at lower edge", Bounds(1, 2), 200, Vector({"1"}), kPass, 1.0, "(min 1, max 2)"},
      {"both, at upper edge", Bounds(1, 2), 200, Vector({"2"}), kPass, 2.0, "(min 1, max 2)"},
      {"both, below", Bounds(1, 2), 200, Vector({"0.5"}), kFail, 0.5, "=error-rate = 0.5 < min 1"},
      {"both, above", Bounds(1, 2), 200, Vector({"2.5"}), kFail, 2.5, "=error-rate = 2.5 > max 2"},
      {"no bounds passes with a value", Bounds({}, {}), 200, Vector({"-3"}), kPass, -3.0,
       "=error-rate = -3 (no bounds)"},
      {"exponent notation", Bounds({}, 0.001), 200, Vector({"1e-05"}), kPass, 1e-05,
       "=error-rate = 1e-05 (max 0.001)"},
      {"scalar", Bounds({}, 10), 200, Scalar("42"), kFail, 42.0, "=error-rate = 42 > max 10"},
      {"scalar passes", Bounds(40, {}), 200, Scalar("42"), kPass, 42.0,
       "=error-rate = 42 (min 40)"},
      {"+Inf over max fails", Bounds({}, 0.01), 200, Vector({"+Inf"}), kFail, inf,
       "=error-rate = +Inf > max 0.01"},
      {"+Inf with min only passes", Bounds(1, {}), 200, Scalar("+Inf"), kPass, inf,
       "=error-rate = +Inf (min 1)"},
      {"-Inf under min fails", Bounds(0, {}), 200, Vector({"-Inf"}), kFail, -inf,
       "=error-rate = -Inf < min 0"},
      {"NaN is inconclusive",
       Bounds({}, 0.01),
       200,
       Vector({"NaN"}),
       kInconclusive,
       {},
       "=error-rate: value is NaN"},
      {"scalar NaN is inconclusive",
       Bounds({}, {}),
       200,
       Scalar("NaN"),
       kInconclusive,
       {},
       "=error-rate: value is NaN"},
      {"unnamed check uses the query", Check{"", "up", {}, 1}, 200, Vector({"1"}), kPass, 1.0,
       "=up = 1 (max 1)"},
  };
  for (const auto& c : cases) ExpectCase(c);
}

TEST(AnalysisEvaluateTest, ResultShapes) {
  const std::vector<Case> cases = {
      {"no series",
       Bounds({}, 0.01),
       200,
       Vector({}),
       kInconclusive,
       {},
       "=error-rate: query returned no data"},
      {"two series",
       Bounds({}, 0.01),
       200,
       Vector({"0.001", "0.002"}),
       kInconclusive,
       {},
       "=error-rate: query returned 2 series; aggregate it to one"},
      {"three series",
       Bounds({}, 0.01),
       200,
       Vector({"1", "2", "3"}),
       kInconclusive,
       {},
       "returned 3 series"},
      {"matrix",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}})",
       kInconclusive,
       {},
       "range vector"},
      {"string",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"string","result":[1,"hello"]}})",
       kInconclusive,
       {},
       "string, not a number"},
      {"native histogram",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"2"}]}]}})",
       kInconclusive,
       {},
       "native histogram"},
      {"unknown resultType",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"tensor","result":[]}})",
       kInconclusive,
       {},
       "unknown resultType \"tensor\""},
      {"warnings are ignored", Bounds({}, 1), 200,
       R"({"status":"success","warnings":["slow"],"data":{"resultType":"scalar","result":[1,"0.5"]}})",
       kPass, 0.5, "=error-rate = 0.5 (max 1)"},
  };
  for (const auto& c : cases) ExpectCase(c);
}

TEST(AnalysisEvaluateTest, ErrorsAndMalformedResponses) {
  const std::vector<Case> cases = {
      {"status error 400",
       Bounds({}, 1),
       400,
       R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"})",
       kInconclusive,
       {},
       "=error-rate: prometheus error bad_data (HTTP 400): 1:5: parse error: unexpected end of "
       "input"},
      {"status error 422",
       Bounds({}, 1),
       422,
       R"({"status":"error","errorType":"execution","error":"many-to-many matching not allowed"})",
       kInconclusive,
       {},
       "execution (HTTP 422): many-to-many"},
      {"status error 503",
       Bounds({}, 1),
       503,
       R"({"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"})",
       kInconclusive,
       {},
       "prometheus error timeout (HTTP 503): query timed out"},
      {"status error without text",
       Bounds({}, 1),
       200,
       R"({"status":"error"})",
       kInconclusive,
       {},
       "=error-rate: prometheus error: no error text"},
      {"plain 503",
       Bounds({}, 1),
       503,
       "Service Unavailable\n",
       kInconclusive,
       {},
       "=error-rate: prometheus answered HTTP 503: Service Unavailable "},
      {"plain 400",
       Bounds({}, 1),
       400,
       "",
       kInconclusive,
       {},
       "=error-rate: prometheus answered HTTP 400"},
      {"404 from a proxy",
       Bounds({}, 1),
       404,
       "<html>not found</html>",
       kInconclusive,
       {},
       "HTTP 404: <html>not found</html>"},
      {"success JSON with an error code",
       Bounds({}, 1),
       500,
       Vector({"0.5"}),
       kInconclusive,
       {},
       "HTTP 500"},
      {"garbage body",
       Bounds({}, 1),
       200,
       "this is not json",
       kInconclusive,
       {},
       "=error-rate: malformed prometheus response: not JSON: this is not json"},
      {"long garbage is cut",
       Bounds({}, 1),
       200,
       std::string(1000, 'x'),
       kInconclusive,
       {},
       std::string(200, 'x') + "..."},
      {"empty body", Bounds({}, 1), 200, "", kInconclusive, {}, "not JSON"},
      {"truncated JSON",
       Bounds({}, 1),
       200,
       Vector({"0.5"}).substr(0, 40),
       kInconclusive,
       {},
       "not JSON"},
      {"JSON array", Bounds({}, 1), 200, "[1,2]", kInconclusive, {}, "no \"status\""},
      {"no status", Bounds({}, 1), 200, R"({"data":{}})", kInconclusive, {}, "no \"status\""},
      {"odd status",
       Bounds({}, 1),
       200,
       R"({"status":"partial"})",
       kInconclusive,
       {},
       "unknown status \"partial\""},
      {"no data",
       Bounds({}, 1),
       200,
       R"({"status":"success"})",
       kInconclusive,
       {},
       "no \"data\" object"},
      {"data not an object",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":[]})",
       kInconclusive,
       {},
       "no \"data\" object"},
      {"no result",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"vector"}})",
       kInconclusive,
       {},
       "no \"data.result\""},
      {"no resultType",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"result":[]}})",
       kInconclusive,
       {},
       "no \"data.resultType\""},
      {"vector result not an array",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"vector","result":{}}})",
       kInconclusive,
       {},
       "not an array"},
      {"series without value",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}})",
       kInconclusive,
       {},
       "series has no \"value\""},
      {"series not an object",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"vector","result":[7]}})",
       kInconclusive,
       {},
       "series has no \"value\""},
      {"sample of one element",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"scalar","result":[1]}})",
       kInconclusive,
       {},
       "sample is not [time, \"value\"]"},
      {"sample not an array",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"scalar","result":"1"}})",
       kInconclusive,
       {},
       "sample is not [time, \"value\"]"},
      {"value not a number",
       Bounds({}, 1),
       200,
       Scalar("abc"),
       kInconclusive,
       {},
       "sample value \"abc\" is not a number"},
      {"value with trailing junk",
       Bounds({}, 1),
       200,
       Scalar("0.5x"),
       kInconclusive,
       {},
       "is not a number"},
      {"empty value", Bounds({}, 1), 200, Scalar(""), kInconclusive, {}, "is not a number"},
      {"value null",
       Bounds({}, 1),
       200,
       R"({"status":"success","data":{"resultType":"scalar","result":[1,null]}})",
       kInconclusive,
       {},
       "sample value null is not a number"},
      {"numeric value accepted", Bounds({}, 1), 200,
       R"({"status":"success","data":{"resultType":"scalar","result":[1,0.25]}})", kPass, 0.25,
       "=error-rate = 0.25 (max 1)"},
  };
  for (const auto& c : cases) ExpectCase(c);
}

CheckResult Made(const std::string& name, SampleOutcome o, const std::string& msg) {
  return CheckResult{name, o, std::nullopt, msg};
}

TEST(AnalysisAggregateTest, FailWinsThenInconclusiveThenPass) {
  struct AggCase {
    std::vector<SampleOutcome> in;
    SampleOutcome want;
  };
  const std::vector<AggCase> cases = {
      {{}, kPass},
      {{kPass}, kPass},
      {{kPass, kPass}, kPass},
      {{kPass, kInconclusive}, kInconclusive},
      {{kInconclusive, kPass}, kInconclusive},
      {{kInconclusive, kFail}, kFail},
      {{kFail, kInconclusive}, kFail},
      {{kPass, kFail, kPass}, kFail},
      {{kInconclusive, kInconclusive}, kInconclusive},
  };
  for (const auto& c : cases) {
    std::vector<CheckResult> checks;
    for (SampleOutcome o : c.in) checks.push_back(Made("c", o, "m"));
    SampleResult r = AggregateChecks(checks);
    EXPECT_EQ(r.outcome, c.want) << c.in.size();
    EXPECT_EQ(r.checks.size(), c.in.size());
  }
}

TEST(AnalysisAggregateTest, SummaryListsEveryCheck) {
  SampleResult r =
      AggregateChecks({Made("a", kFail, "a = 0.05 > max 0.01"), Made("b", kPass, "b = 1 (max 2)")});
  EXPECT_EQ(r.Summary(), "Fail: a = 0.05 > max 0.01; b = 1 (max 2)");
  EXPECT_EQ(AggregateChecks({}).Summary(), "Pass: no checks");
}

TEST(AnalysisQueryPathTest, EscapesPromQL) {
  EXPECT_EQ(QueryPath("up"), "/api/v1/query?query=up");
  EXPECT_EQ(QueryPath(R"(sum(rate(http_requests_total{code=~"5.."}[5m])) / 2)"),
            "/api/v1/query?query=sum%28rate%28http_requests_total%7Bcode%3D~%225..%22%7D%5B5m%5D"
            "%29%29%20%2F%202");
  EXPECT_EQ(QueryPath("a+b&c=d#e"), "/api/v1/query?query=a%2Bb%26c%3Dd%23e");
}

// A transport that answers from a function and records what it was asked.
class FakeTransport final : public kube::HttpTransport {
 public:
  using Handler = std::function<Result<kube::HttpResponse>(const kube::HttpRequest&)>;
  explicit FakeTransport(Handler h) : handler_(std::move(h)) {}
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req, const CancelToken*) override {
    return handler_(req);
  }
  Result<kube::HttpResponse> Stream(const kube::HttpRequest&,
                                    const std::function<bool(std::string_view)>&,
                                    const CancelToken&) override {
    return Status(StatusCode::kUnknown, "not used");
  }

 private:
  Handler handler_;
};

struct Recorder {
  std::mutex mu;
  std::vector<std::string> servers;  // transports created
  std::vector<kube::HttpRequest> requests;
};

PrometheusClientOptions FakeOptions(Recorder& rec, const FakeTransport::Handler& handler) {
  PrometheusClientOptions opts;
  opts.timeout = milliseconds(1234);
  opts.new_transport =
      [&rec,
       handler](const kube::TransportOptions& t) -> Result<std::unique_ptr<kube::HttpTransport>> {
    {
      std::lock_guard<std::mutex> lock(rec.mu);
      rec.servers.push_back(t.server);
    }
    return std::unique_ptr<kube::HttpTransport>(
        std::make_unique<FakeTransport>([&rec, handler](const kube::HttpRequest& req) {
          {
            std::lock_guard<std::mutex> lock(rec.mu);
            rec.requests.push_back(req);
          }
          return handler(req);
        }));
  };
  return opts;
}

TEST(PrometheusClientTest, QueriesEveryCheckAndCachesTheTransport) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest& req) {
    kube::HttpResponse resp;
    resp.status = 200;
    resp.body = req.path == QueryPath("errors") ? Vector({"0.002"}) : Vector({"42"});
    return Result<kube::HttpResponse>(resp);
  }));
  const std::vector<Check> checks = {{"error-rate", "errors", {}, 0.01}, {"jobs", "jobs", 40, {}}};
  SampleResult r = client->Sample("http://prom.example:9090/", checks);
  EXPECT_EQ(r.outcome, kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: error-rate = 0.002 (max 0.01); jobs = 42 (min 40)");
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(r.checks[0].value, 0.002);
  EXPECT_EQ(r.checks[1].value, 42.0);

  r = client->Sample("http://prom.example:9090", {{"jobs", "jobs", {}, 10}});
  EXPECT_EQ(r.outcome, kFail);
  EXPECT_EQ(r.Summary(), "Fail: jobs = 42 > max 10");

  ASSERT_EQ(rec.servers.size(), 1u);  // one transport per address, trailing slash ignored
  EXPECT_EQ(rec.servers[0], "http://prom.example:9090");
  ASSERT_EQ(rec.requests.size(), 3u);
  EXPECT_EQ(rec.requests[0].method, "GET");
  EXPECT_EQ(rec.requests[0].path, "/api/v1/query?query=errors");
  EXPECT_EQ(rec.requests[0].timeout, milliseconds(1234));
  ASSERT_EQ(rec.requests[0].headers.size(), 1u);
  EXPECT_EQ(rec.requests[0].headers[0].first, "Accept");

  (void)client->Sample("http://other:9090/prefix", {{"jobs", "jobs", {}, {}}});
  ASSERT_EQ(rec.servers.size(), 2u);
  EXPECT_EQ(rec.servers[1], "http://other:9090/prefix");
}

TEST(PrometheusClientTest, TransportErrorsAreUnreachableAndInconclusive) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest&) {
    return Result<kube::HttpResponse>(
        Status(StatusCode::kTransport, "GET http://127.0.0.1:1: Connection refused"));
  }));
  SampleResult r = client->Sample("http://127.0.0.1:1",
                                  {{"error-rate", "errors", {}, 0.01}, {"jobs", "jobs", 1, {}}});
  EXPECT_EQ(r.outcome, kInconclusive);
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(r.checks[0].message,
            "error-rate: prometheus unreachable: GET http://127.0.0.1:1: Connection refused");
  EXPECT_EQ(r.checks[1].outcome, kInconclusive);
  EXPECT_EQ(rec.requests.size(), 2u);
}

TEST(PrometheusClientTest, AFailingCheckStillFailsTheSampleWhenAnotherIsInconclusive) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest& req) {
    kube::HttpResponse resp;
    resp.status = 200;
    resp.body = req.path == QueryPath("errors") ? Vector({"0.5"}) : Vector({});
    return Result<kube::HttpResponse>(resp);
  }));
  SampleResult r = client->Sample(
      "http://p:9090", {{"error-rate", "errors", {}, 0.01}, {"absent", "absent_metric", {}, 1}});
  EXPECT_EQ(r.outcome, kFail);
  EXPECT_EQ(r.Summary(), "Fail: error-rate = 0.5 > max 0.01; absent: query returned no data");
}

TEST(PrometheusClientTest, HttpsAndBadAddressesAreInconclusiveWithoutARequest) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest&) {
    return Result<kube::HttpResponse>(Status(StatusCode::kUnknown, "must not be called"));
  }));
  SampleResult r = client->Sample("https://prom:9090", {{"error-rate", "errors", {}, 0.01}});
  EXPECT_EQ(r.outcome, kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].message,
            "error-rate: https Prometheus addresses need a CA; not supported yet");

  r = client->Sample("prom:9090", {{"error-rate", "errors", {}, 0.01}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_NE(r.checks[0].message.find("must start with http://"), std::string::npos)
      << r.checks[0].message;
  EXPECT_TRUE(rec.servers.empty());
  EXPECT_TRUE(rec.requests.empty());
}

TEST(PrometheusClientTest, TransportFactoryFailureIsInconclusive) {
  PrometheusClientOptions opts;
  opts.new_transport =
      [](const kube::TransportOptions&) -> Result<std::unique_ptr<kube::HttpTransport>> {
    return Status(StatusCode::kInvalidArgument, "server \"http://\" is not a valid URL");
  };
  auto client = NewPrometheusClient(std::move(opts));
  SampleResult r = client->Sample("http://", {{"e", "errors", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_EQ(r.checks[0].message,
            "e: invalid prometheus address: server \"http://\" is not a valid URL");

  // The real transport factory refuses an address without a host the same way.
  auto real = NewPrometheusClient(milliseconds(1000));
  r = real->Sample("http:///", {{"e", "errors", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_NE(r.checks[0].message.find("e: invalid prometheus address: "), std::string::npos)
      << r.checks[0].message;
}

TEST(PrometheusClientTest, ThrowingTransportIsCaught) {
  Recorder rec;
  auto client = NewPrometheusClient(
      FakeOptions(rec, [](const kube::HttpRequest&) -> Result<kube::HttpResponse> {
        throw std::runtime_error("boom");
      }));
  SampleResult r = client->Sample("http://p:9090", {{"e", "errors", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_EQ(r.checks[0].message, "e: prometheus unreachable: boom");
}

TEST(PrometheusClientTest, RealTransportToAClosedPortIsUnreachable) {
  // Port 1 on loopback: nothing listens there (and binding it needs privileges).
  auto client = NewPrometheusClient(milliseconds(2000));
  const auto start = std::chrono::steady_clock::now();
  SampleResult r = client->Sample("http://127.0.0.1:1", {{"e", "up", {}, 1}});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(r.outcome, kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_NE(r.checks[0].message.find("e: prometheus unreachable: "), std::string::npos)
      << r.checks[0].message;
}

TEST(PrometheusClientTest, ConcurrentSamplesShareOneTransport) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest&) {
    kube::HttpResponse resp;
    resp.status = 200;
    resp.body = Scalar("1");
    return Result<kube::HttpResponse>(resp);
  }));
  std::atomic<int> passes{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 20; ++j) {
        if (client->Sample("http://p:9090", {{"e", "one", {}, 1}}).outcome == kPass) ++passes;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(passes.load(), 160);
  EXPECT_EQ(rec.servers.size(), 1u);
}

}  // namespace
}  // namespace rollgate::rollout
