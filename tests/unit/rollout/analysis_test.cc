// Canary analysis: table-driven tests of the pure evaluation of Prometheus /api/v1/query
// responses, the aggregation of check results, the HTTP client against a fake transport (request
// path, the endpoint allow-list, credentials and CA from files, the sample deadline, unreachable
// servers, transport cache), the endpoints file, and the AnalysisRunner that keeps samples off
// the reconcile workers. The real Prometheus (plain and behind TLS with basic auth) is exercised
// by tests/e2e/prometheus_analysis_e2e_test.cc, hostile servers by cpprest_transport_test.cc.
// Thread-safety: single-threaded tests, except the concurrent Sample() and runner tests.
#include "controller/rollout/analysis.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "controller/rollout/analysis_runner.h"

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
       "not JSON: " + std::string(117, 'x') + "..."},
      {"control characters and non-ASCII are replaced",
       Bounds({}, 1),
       502,
       "\x1b[31mred\x1b[0m\r\nline\xc3\xa9",
       kInconclusive,
       {},
       "=error-rate: prometheus answered HTTP 502: ?[31mred?[0m  line??"},
      {"a redirect is not followed",
       Bounds({}, 1),
       302,
       "",
       kInconclusive,
       {},
       "=error-rate: prometheus answered HTTP 302 (redirects are not followed)"},
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
  std::vector<std::string> cas;      // their CA
  std::vector<kube::HttpRequest> requests;
};

// The endpoints the tests' addresses go to.
std::vector<AnalysisEndpoint> TestEndpoints() {
  return {{"http://prom.example:9090", "", "", "", ""},
          {"http://other:9090/prefix", "", "", "", ""},
          {"http://127.0.0.1:1", "", "", "", ""},
          {"http://p:9090", "", "", "", ""}};
}

PrometheusClientOptions FakeOptions(Recorder& rec, const FakeTransport::Handler& handler) {
  PrometheusClientOptions opts;
  opts.endpoints = TestEndpoints();
  opts.timeout = milliseconds(1234);
  opts.new_transport =
      [&rec,
       handler](const kube::TransportOptions& t) -> Result<std::unique_ptr<kube::HttpTransport>> {
    {
      std::lock_guard<std::mutex> lock(rec.mu);
      rec.servers.push_back(t.server);
      rec.cas.push_back(t.tls.ca_pem);
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

Result<kube::HttpResponse> OneOk(const kube::HttpRequest&) {
  kube::HttpResponse resp;
  resp.status = 200;
  resp.body = Scalar("1");
  return resp;
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

  r = client->Sample("http://PROM.example:9090", {{"jobs", "jobs", {}, 10}});
  EXPECT_EQ(r.outcome, kFail);
  EXPECT_EQ(r.Summary(), "Fail: jobs = 42 > max 10");

  ASSERT_EQ(rec.servers.size(), 1u);  // one transport per endpoint
  EXPECT_EQ(rec.servers[0], "http://prom.example:9090");
  ASSERT_EQ(rec.requests.size(), 3u);
  EXPECT_EQ(rec.requests[0].method, "GET");
  EXPECT_EQ(rec.requests[0].path, "/api/v1/query?query=errors");
  EXPECT_EQ(rec.requests[0].timeout, milliseconds(1234));
  EXPECT_EQ(rec.requests[0].max_body_bytes, std::size_t{1} << 20);
  ASSERT_EQ(rec.requests[0].headers.size(), 1u);
  EXPECT_EQ(rec.requests[0].headers[0].first, "Accept");

  // A path under an endpoint's path prefix keeps its path.
  (void)client->Sample("http://other:9090/prefix/", {{"jobs", "jobs", {}, {}}});
  (void)client->Sample("http://other:9090/prefix/sub", {{"jobs", "jobs", {}, {}}});
  ASSERT_EQ(rec.servers.size(), 2u);
  EXPECT_EQ(rec.servers[1], "http://other:9090");
  ASSERT_EQ(rec.requests.size(), 5u);
  EXPECT_EQ(rec.requests[3].path, "/prefix/api/v1/query?query=jobs");
  EXPECT_EQ(rec.requests[4].path, "/prefix/sub/api/v1/query?query=jobs");
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

TEST(PrometheusClientTest, OversizedResponseIsInconclusive) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest&) {
    return Result<kube::HttpResponse>(
        Status(StatusCode::kMalformed, "GET http://p:9090: response larger than 1 MiB"));
  }));
  SampleResult r = client->Sample("http://p:9090", {{"e", "errors", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_EQ(r.checks[0].message,
            "e: prometheus response rejected: GET http://p:9090: response larger than 1 MiB");
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

TEST(PrometheusClientTest, AddressesNoEndpointAllowsAreNeverRequested) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, [](const kube::HttpRequest&) {
    return Result<kube::HttpResponse>(Status(StatusCode::kUnknown, "must not be called"));
  }));
  for (const std::string address : {
           "https://prom.example:9090",                // another scheme
           "http://prom.example:9091",                 // another port
           "http://prom.example",                      // port 80
           "http://169.254.169.254/latest/meta-data",  // anything else
           "http://other:9090/prefixed",               // not under /prefix
           "http://other:9090/",                       // above /prefix
       }) {
    SampleResult r = client->Sample(address, {{"error-rate", "errors", {}, 0.01}});
    EXPECT_EQ(r.outcome, kInconclusive) << address;
    ASSERT_EQ(r.checks.size(), 1u);
    EXPECT_EQ(r.checks[0].message, "error-rate: prometheus address \"" + address +
                                       "\" is not an allowed analysis endpoint; not queried");
  }
  for (const std::string address :
       {"prom.example:9090", "http://user:pw@prom.example:9090", "http://prom.example:9090/../x",
        "http://prom.example:9090?x=1", "http://prom.example:9090/%2e%2e", "http://p:9090 x",
        "http://prom.example:9090@evil:80"}) {
    SampleResult r = client->Sample(address, {{"e", "errors", {}, 0.01}});
    EXPECT_EQ(r.outcome, kInconclusive) << address;
    EXPECT_EQ(r.checks[0].message.rfind("e: prometheus address ", 0), 0u) << r.checks[0].message;
    EXPECT_NE(r.checks[0].message.find("is not a usable URL"), std::string::npos)
        << r.checks[0].message;
  }
  EXPECT_TRUE(rec.servers.empty());
  EXPECT_TRUE(rec.requests.empty());

  // No endpoints configured (the default): nothing is allowed.
  PrometheusClientOptions none = FakeOptions(rec, OneOk);
  none.endpoints.clear();
  SampleResult r =
      NewPrometheusClient(std::move(none))->Sample("http://p:9090", {{"e", "q", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_TRUE(rec.requests.empty());
}

TEST(PrometheusClientTest, TransportFactoryFailureIsInconclusive) {
  PrometheusClientOptions opts;
  opts.endpoints = TestEndpoints();
  opts.new_transport =
      [](const kube::TransportOptions&) -> Result<std::unique_ptr<kube::HttpTransport>> {
    return Status(StatusCode::kInvalidArgument, "server is not a valid URL");
  };
  auto client = NewPrometheusClient(std::move(opts));
  SampleResult r = client->Sample("http://p:9090", {{"e", "errors", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_EQ(r.checks[0].message, "e: invalid prometheus endpoint: server is not a valid URL");
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
  PrometheusClientOptions opts;
  opts.endpoints = TestEndpoints();
  opts.timeout = milliseconds(2000);
  auto client = NewPrometheusClient(std::move(opts));
  SampleResult r = client->Sample("http://127.0.0.1:1", {{"e", "up", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_NE(r.checks[0].message.find("e: prometheus unreachable: "), std::string::npos)
      << r.checks[0].message;
}

TEST(PrometheusClientTest, ChecksShareTheSampleDeadline) {
  // Given: a 300 ms sample deadline and a server that takes 400 ms per query.
  Recorder rec;
  PrometheusClientOptions opts = FakeOptions(rec, [](const kube::HttpRequest& req) {
    std::this_thread::sleep_for(milliseconds(400));
    return OneOk(req);
  });
  opts.sample_deadline = milliseconds(300);
  auto client = NewPrometheusClient(std::move(opts));

  // When: a sample of two checks
  SampleResult r = client->Sample("http://p:9090", {{"a", "q", {}, 1}, {"b", "q", {}, 1}});

  // Then: the first query's timeout is what was left of the deadline (not the 1234 ms per
  // query), and the second is not sent.
  ASSERT_EQ(rec.requests.size(), 1u);
  EXPECT_LE(rec.requests[0].timeout, milliseconds(300));
  EXPECT_EQ(r.outcome, kInconclusive);
  ASSERT_EQ(r.checks.size(), 2u);
  EXPECT_EQ(r.checks[1].message, "b: the sample's deadline (300ms) passed before this check");
}

// A file in a fresh temporary directory.
class TempFiles {
 public:
  TempFiles() {
    char tmpl[] = "/tmp/rollgate-analysis-XXXXXX";
    dir_ = mkdtemp(tmpl) != nullptr ? std::string(tmpl) : std::string("/tmp");
  }
  TempFiles(const TempFiles&) = delete;
  TempFiles& operator=(const TempFiles&) = delete;
  ~TempFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& content) const {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    return path;
  }

 private:
  std::string dir_;
};

TEST(PrometheusClientTest, CredentialsAndCaComeFromTheEndpointsFiles) {
  TempFiles files;
  Recorder rec;
  PrometheusClientOptions opts = FakeOptions(rec, OneOk);
  opts.endpoints = {
      {"https://secure:9090", files.Write("ca.crt", "CA PEM"), files.Write("token", "tok-123\n"),
       "", ""},
      {"https://basic:9090/prom", files.Write("ca2.crt", "CA2 PEM"), "",
       files.Write("user", "alice"), files.Write("pass", "s3cret\n")},
      {"https://missing:9090", files.Write("ca3.crt", "CA3"), "/nonexistent/token", "", ""},
  };
  auto client = NewPrometheusClient(std::move(opts));

  // Bearer token, CA from the file.
  SampleResult r = client->Sample("https://secure:9090", {{"e", "q", {}, 1}});
  EXPECT_EQ(r.outcome, kPass) << r.Summary();
  // Basic credentials.
  r = client->Sample("https://basic:9090/prom", {{"e", "q", {}, 1}});
  EXPECT_EQ(r.outcome, kPass) << r.Summary();
  ASSERT_EQ(rec.requests.size(), 2u);
  ASSERT_EQ(rec.requests[0].headers.size(), 2u);
  EXPECT_EQ(rec.requests[0].headers[1],
            (std::pair<std::string, std::string>("Authorization", "Bearer tok-123")));
  ASSERT_EQ(rec.requests[1].headers.size(), 2u);
  EXPECT_EQ(rec.requests[1].headers[1],
            (std::pair<std::string, std::string>("Authorization", "Basic YWxpY2U6czNjcmV0")));
  EXPECT_EQ(rec.requests[1].path, "/prom/api/v1/query?query=q");
  ASSERT_EQ(rec.servers.size(), 2u);
  EXPECT_EQ(rec.servers[0], "https://secure:9090");
  EXPECT_EQ(rec.cas[0], "CA PEM\n");
  EXPECT_EQ(rec.cas[1], "CA2 PEM\n");

  // A token file that cannot be read: inconclusive, no request.
  r = client->Sample("https://missing:9090", {{"e", "q", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  EXPECT_EQ(r.checks[0].message, "e: cannot read bearerTokenFile /nonexistent/token");
  EXPECT_EQ(rec.requests.size(), 2u);

  // A rotated token and CA take effect at the next sample (a new CA: a new transport).
  files.Write("token", "tok-456");
  files.Write("ca.crt", "NEW CA");
  r = client->Sample("https://secure:9090", {{"e", "q", {}, 1}});
  ASSERT_EQ(rec.requests.size(), 3u);
  EXPECT_EQ(rec.requests[2].headers[1].second, "Bearer tok-456");
  ASSERT_EQ(rec.servers.size(), 3u);
  EXPECT_EQ(rec.cas[2], "NEW CA\n");
}

TEST(PrometheusClientTest, CredentialsNeverReachAMessage) {
  // Given: a server that echoes what it got (the Authorization header) in an error.
  TempFiles files;
  Recorder rec;
  PrometheusClientOptions opts = FakeOptions(rec, [](const kube::HttpRequest& req) {
    kube::HttpResponse resp;
    resp.status = 401;
    resp.body = "unauthorized";
    for (const auto& [k, v] : req.headers) {
      if (k == "Authorization") resp.body += " " + v;
    }
    return Result<kube::HttpResponse>(resp);
  });
  opts.endpoints = {{"https://secure:9090", files.Write("ca.crt", "CA"),
                     files.Write("token", "tok-very-secret"), "", ""}};
  auto client = NewPrometheusClient(std::move(opts));
  SampleResult r = client->Sample("https://secure:9090", {{"e", "q", {}, 1}});
  EXPECT_EQ(r.outcome, kInconclusive);
  // The body is the server's; the client itself never writes a credential into a message.
  EXPECT_EQ(r.checks[0].message.rfind("e: prometheus answered HTTP 401: unauthorized", 0), 0u);
  // An address carrying a secret of its own (a tenant's mistake) is shown redacted.
  for (const std::string address :
       {"https://secure:9090/x?token=tok-very-secret", "https://u:tok-very-secret@secure:9090",
        "https://secure:9090/x#tok-very-secret", "http://u:tok-very-secret@elsewhere:1/"}) {
    r = client->Sample(address, {{"e", "q", {}, 1}});
    EXPECT_EQ(r.outcome, kInconclusive);
    EXPECT_EQ(r.Summary().find("tok-very-secret"), std::string::npos) << r.Summary();
  }
}

TEST(AnalysisSanitizeTest, AddressesAreRedacted) {
  EXPECT_EQ(RedactedAddress("http://prom:9090/x"), "http://prom:9090/x");
  EXPECT_EQ(RedactedAddress("http://prom:9090/x?token=s"), "http://prom:9090/x<redacted>");
  EXPECT_EQ(RedactedAddress("http://u:p@prom:9090/x"), "http://<redacted>@prom:9090/x");
  EXPECT_EQ(RedactedAddress("http://u:p@prom:9090"), "http://<redacted>@prom:9090");
  EXPECT_EQ(RedactedAddress("http://prom:9090/a@b"), "http://prom:9090/a@b");
  EXPECT_EQ(RedactedAddress("http://prom:9090#frag"), "http://prom:9090<redacted>");
}

TEST(PrometheusClientTest, ConcurrentSamplesShareOneTransport) {
  Recorder rec;
  auto client = NewPrometheusClient(FakeOptions(rec, OneOk));
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

// ---- The endpoints file and the allow-list ----

TEST(AnalysisEndpointsTest, ParsesTheFile) {
  auto eps = ParseAnalysisEndpoints(R"({"endpoints": [
      {"url": "http://prometheus.monitoring.svc:9090"},
      {"url": "https://prom.example:9443/prometheus", "caFile": "/etc/ca.crt",
       "bearerTokenFile": "/etc/token"},
      {"url": "https://basic.example", "caFile": "/etc/ca.crt",
       "basicAuth": {"usernameFile": "/etc/u", "passwordFile": "/etc/p"}}]})");
  ASSERT_TRUE(eps.ok()) << eps.status().ToString();
  ASSERT_EQ(eps->size(), 3u);
  EXPECT_EQ((*eps)[0].url, "http://prometheus.monitoring.svc:9090");
  EXPECT_EQ((*eps)[1].ca_file, "/etc/ca.crt");
  EXPECT_EQ((*eps)[1].bearer_token_file, "/etc/token");
  EXPECT_EQ((*eps)[2].username_file, "/etc/u");
  EXPECT_EQ((*eps)[2].password_file, "/etc/p");

  auto empty = ParseAnalysisEndpoints(R"({"endpoints": []})");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto null = ParseAnalysisEndpoints(R"({"endpoints": null})");
  ASSERT_TRUE(null.ok());
  EXPECT_TRUE(null->empty());
}

TEST(AnalysisEndpointsTest, RefusesWhatIsUnsafeOrAmbiguous) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not JSON"},
      {R"([])", "must be a JSON object"},
      {R"({"endpoint": []})", "unknown field \"endpoint\""},
      {R"({"endpoints": [{}]})", "endpoints[0].url is required"},
      {R"({"endpoints": [{"url": 5}]})", "endpoints[0].url must be a string"},
      {R"({"endpoints": [{"url": "ftp://x"}]})", "must start with http:// or https://"},
      {R"({"endpoints": [{"url": "http://u:p@x"}]})", "user info is not allowed"},
      {R"({"endpoints": [{"url": "http://x", "token": "t"}]})", "unknown field \"token\""},
      {R"({"endpoints": [{"url": "https://x"}]})", "needs caFile"},
      {R"({"endpoints": [{"url": "http://x", "bearerTokenFile": "/t"}]})",
       "credentials are sent only over https"},
      {R"({"endpoints": [{"url": "http://x", "caFile": "/c"}]})", "caFile needs an https url"},
      {R"({"endpoints": [{"url": "https://x", "caFile": "/c", "bearerTokenFile": "/t",
           "basicAuth": {"usernameFile": "/u", "passwordFile": "/p"}}]})",
       "mutually exclusive"},
      {R"({"endpoints": [{"url": "https://x", "caFile": "/c", "basicAuth": {"usernameFile": "/u"}}]})",
       "needs both usernameFile and passwordFile"},
  };
  for (const auto& [text, want] : cases) {
    auto r = ParseAnalysisEndpoints(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(want), std::string::npos)
        << text << " -> " << r.status().message();
  }
}

TEST(AnalysisEndpointsTest, AnAddressMustBeTheEndpointOrUnderItsPath) {
  struct AllowCase {
    std::string endpoint;
    std::string address;
    bool allowed;
  };
  const std::vector<AllowCase> cases = {
      {"http://prom:9090", "http://prom:9090", true},
      {"http://prom:9090", "http://prom:9090/", true},
      {"http://prom:9090/", "http://prom:9090", true},
      {"http://prom:9090", "HTTP://PROM:9090", true},
      {"http://prom:9090", "http://prom:9090/anything/below", true},
      {"http://prom", "http://prom:80", true},
      {"https://prom", "https://prom:443/x", true},
      {"http://prom:9090/prometheus", "http://prom:9090/prometheus", true},
      {"http://prom:9090/prometheus", "http://prom:9090/prometheus/", true},
      {"http://prom:9090/prometheus", "http://prom:9090/prometheus//x", true},
      {"http://[::1]:9090", "http://[::1]:9090", true},
      {"http://prom:9090/prometheus", "http://prom:9090/prometheus-evil", false},
      {"http://prom:9090/prometheus", "http://prom:9090/", false},
      {"http://prom:9090/prometheus", "http://prom:9090/prometheus/../admin", false},
      {"http://prom:9090", "https://prom:9090", false},
      {"https://prom:9090", "http://prom:9090", false},
      {"http://prom:9090", "http://prom:9091", false},
      {"http://prom:9090", "http://prom", false},
      {"http://prom:9090", "http://prom.evil:9090", false},
      {"http://prom:9090", "http://prom:9090@evil:9090", false},
      {"http://prom:9090", "http://prom:9090/?x=1", false},
      {"http://prom:9090", "http://prom:9090/#x", false},
      {"http://prom:9090", "http://prom:9090/%2e%2e/x", false},
      {"http://prom:9090", "http://prom:9090\\@evil", false},
      {"http://prom:9090", "", false},
      {"http://prom:9090", "http://prom:99999", false},
      {"", "http://prom:9090", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(AnalysisEndpointAllows(c.endpoint, c.address), c.allowed)
        << c.endpoint << " / " << c.address;
  }
}

TEST(AnalysisSanitizeTest, PrintableAndBounded) {
  EXPECT_EQ(SanitizeForStatus("plain", 10), "plain");
  EXPECT_EQ(SanitizeForStatus("a\nb\tc\rd", 10), "a b c d");
  EXPECT_EQ(SanitizeForStatus(std::string("\x00\x7f\xff", 3), 10), "???");
  EXPECT_EQ(SanitizeForStatus("0123456789abc", 10), "0123456...");
  EXPECT_EQ(SanitizeForStatus("0123456789", 10), "0123456789");
}

// ---- AnalysisRunner: samples off the reconcile workers ----

// A client whose samples block until released, recording what it was asked.
class GatedClient final : public PrometheusClient {
 public:
  SampleResult Sample(const std::string& address, const std::vector<Check>&) override {
    std::unique_lock<std::mutex> lock(mu_);
    started_.push_back(address);
    changed_.notify_all();
    changed_.wait(lock, [&] { return released_.contains(address) || all_released_; });
    SampleResult r;
    r.outcome = address.find("fail") != std::string::npos ? kFail : kPass;
    return r;
  }
  void Release(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    released_.insert(address);
    changed_.notify_all();
  }
  void ReleaseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    all_released_ = true;
    changed_.notify_all();
  }
  // Waits until `n` samples started.
  void AwaitStarted(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return started_.size() >= n; });
  }
  std::vector<std::string> started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> started_;
  std::set<std::string> released_;
  bool all_released_ = false;
};

TEST(AnalysisRunnerTest, HangingSamplesDoNotBlockPollersOrOtherRollouts) {
  // Given: four workers, all busy with hostile servers that never answer (until released).
  GatedClient client;
  std::mutex mu;
  std::vector<std::string> done;
  AnalysisRunner::Options o;
  o.workers = 4;
  o.on_done = [&](const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    done.push_back(key);
  };
  AnalysisRunner runner(client, o);
  for (int i = 0; i < 4; ++i) {
    const std::string k = "ns/hostile" + std::to_string(i);
    EXPECT_FALSE(runner.Poll(k, "1", "http://hostile" + std::to_string(i), {}).has_value());
  }
  client.AwaitStarted(4);

  // When: another rollout polls
  // Then: the poll returns at once (no result yet), while the hostile samples hang.
  EXPECT_FALSE(runner.Poll("ns/good", "1", "http://good", {}).has_value());
  EXPECT_EQ(runner.pending(), 5u);

  // When: a hostile sample ends, the good one runs on the freed worker and is delivered.
  client.Release("http://hostile0");
  client.Release("http://good");
  client.AwaitStarted(5);
  for (int i = 0; i < 1000 && runner.pending() > 3; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::optional<SampleResult> r = runner.Poll("ns/good", "1", "http://good", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, kPass);
  // Taken once: the next poll of the same id starts a new sample.
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_NE(std::find(done.begin(), done.end(), "ns/good"), done.end());
  }
  client.ReleaseAll();
}

TEST(AnalysisRunnerTest, AResultIsUsedOnlyForTheSampleItWasTakenFor) {
  GatedClient client;
  AnalysisRunner runner(client, {});
  // Given: sample "rev1/0" of a rollout is running against a failing server.
  EXPECT_FALSE(runner.Poll("ns/r", "rev1/0", "http://fail", {}).has_value());
  client.AwaitStarted(1);

  // When: the rollout moved on (a new revision) before the result came, and then it came.
  EXPECT_FALSE(runner.Poll("ns/r", "rev2/0", "http://pass", {}).has_value());
  client.Release("http://fail");
  client.AwaitStarted(2);
  client.Release("http://pass");
  for (int i = 0; i < 1000 && runner.pending() > 0; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }

  // Then: the new sample's result is the one delivered; the old one is gone.
  std::optional<SampleResult> r = runner.Poll("ns/r", "rev2/0", "http://pass", {});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, kPass);
  EXPECT_FALSE(runner.Poll("ns/r", "rev1/0", "http://fail", {}).has_value());
  client.ReleaseAll();
}

TEST(AnalysisRunnerTest, TheQueueIsBounded) {
  GatedClient client;
  AnalysisRunner::Options o;
  o.workers = 1;
  o.max_queued = 2;
  AnalysisRunner runner(client, o);
  EXPECT_FALSE(runner.Poll("ns/a", "1", "http://a", {}).has_value());
  client.AwaitStarted(1);
  EXPECT_FALSE(runner.Poll("ns/b", "1", "http://b", {}).has_value());
  EXPECT_FALSE(runner.Poll("ns/c", "1", "http://c", {}).has_value());
  EXPECT_FALSE(runner.Poll("ns/d", "1", "http://d", {}).has_value());  // does not fit
  EXPECT_EQ(runner.pending(), 3u);
  client.ReleaseAll();
}

}  // namespace
}  // namespace rollgate::rollout
