// Canary analysis against a real Prometheus (Debian's `prometheus`, started on loopback by
// tests/e2e/prometheus.sh for this test suite): a query that holds passes, one that does not
// fails with a readable message, an empty result, NaN, several series and a PromQL error are
// inconclusive, and an unreachable or silent Prometheus is inconclusive within the timeout.
// Needs no Kubernetes cluster. ROLLGATE_PROMETHEUS_SH overrides the script's location.
// Thread-safety: single-threaded tests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "controller/rollout/analysis.h"

namespace rollgate::rollout {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command; returns its exit status and stdout (stderr goes to the test's stderr).
int RunCommand(const std::string& cmd, std::string& out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return ::pclose(p);
}

std::string Script() {
  if (const char* s = std::getenv("ROLLGATE_PROMETHEUS_SH")) return s;  // NOLINT
  return (std::filesystem::path(__FILE__).parent_path() / "prometheus.sh").string();
}

// A loopback TCP socket owned by the test: closed (nothing listens on the port once it is
// released) or listening without ever accepting (the kernel completes the handshake, then the
// server stays silent).
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen_forever) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        (listen_forever && ::listen(fd_, 16) != 0)) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    if (!listen_forever) {
      ::close(fd_);  // the port is now closed: connecting is refused
      fd_ = -1;
    }
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class PrometheusAnalysisE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/rollgate-prometheus-e2e.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      *error_ = "mkdtemp failed";
      return;
    }
    *dir_ = templ;
    std::string out;
    const int rc = RunCommand("bash " + ShellQuote(Script()) + " start " + ShellQuote(*dir_) +
                                  " --owner " + std::to_string(::getpid()),
                              out);
    std::map<std::string, std::string> vars;
    size_t pos = 0;
    while (pos < out.size()) {
      size_t nl = out.find('\n', pos);
      if (nl == std::string::npos) nl = out.size();
      const std::string line = out.substr(pos, nl - pos);
      const size_t eq = line.find('=');
      if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
      pos = nl + 1;
    }
    if (rc != 0 || vars["PROMETHEUS_URL"].empty() || vars["METRICS_URL"].empty()) {
      *error_ = Script() + " start failed (status " + std::to_string(rc) + "): " + out;
      return;
    }
    *prometheus_ = vars["PROMETHEUS_URL"];
    *metrics_ = vars["METRICS_URL"];
  }

  static void TearDownTestSuite() {
    if (dir_->empty()) return;
    std::string out;
    (void)RunCommand("bash " + ShellQuote(Script()) + " stop " + ShellQuote(*dir_), out);
    std::error_code ec;
    std::filesystem::remove_all(*dir_, ec);  // when start failed before taking the directory
  }

  void SetUp() override {
    ASSERT_TRUE(error_->empty()) << *error_;
    client_ = NewPrometheusClient(seconds(5));
  }

  CheckResult One(const Check& check) {
    SampleResult r = client_->Sample(*prometheus_, {check});
    EXPECT_EQ(r.checks.size(), 1u);
    if (r.checks.size() != 1) return {};
    EXPECT_EQ(r.outcome, r.checks[0].outcome);
    return r.checks[0];
  }

  static inline std::string* const dir_ = new std::string();
  static inline std::string* const prometheus_ = new std::string();
  static inline std::string* const metrics_ = new std::string();
  static inline std::string* const error_ = new std::string();
  std::unique_ptr<PrometheusClient> client_;
};

TEST_F(PrometheusAnalysisE2E, QueryThatHoldsPasses) {
  CheckResult r = One({"error-rate", "rollgate_demo_errors_ratio", {}, 0.01});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.value, 0.002);
  EXPECT_EQ(r.message, "error-rate = 0.002 (max 0.01)");

  r = One({"jobs", "sum(rollgate_demo_jobs_total)", 40, 50});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.message, "jobs = 42 (min 40, max 50)");

  r = One({"jobs-scalar", "scalar(rollgate_demo_jobs_total)", 42, 42});  // bounds inclusive
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.message;
  EXPECT_EQ(r.value, 42.0);
}

TEST_F(PrometheusAnalysisE2E, QueryThatDoesNotHoldFails) {
  CheckResult r = One({"error-rate", "rollgate_demo_errors_ratio", {}, 0.001});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.value, 0.002);
  EXPECT_EQ(r.message, "error-rate = 0.002 > max 0.001");

  r = One({"jobs", "rollgate_demo_jobs_total", 100, {}});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.message, "jobs = 42 < min 100");

  r = One({"infinite", "1/0", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail);
  EXPECT_EQ(r.message, "infinite = +Inf > max 1");
}

TEST_F(PrometheusAnalysisE2E, NoDataAndUnusableResultsAreInconclusive) {
  CheckResult r = One({"absent", "absent_metric_xyz", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_FALSE(r.value.has_value());
  EXPECT_EQ(r.message, "absent: query returned no data");

  r = One({"nan", "0/0", {}, 1});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_EQ(r.message, "nan: value is NaN");

  r = One({"many", R"({__name__=~"rollgate_demo_.*"})", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_EQ(r.message, "many: query returned 2 series; aggregate it to one");

  r = One({"range", "rollgate_demo_jobs_total[5s]", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_NE(r.message.find("range vector"), std::string::npos) << r.message;

  r = One({"typo", "sum(rollgate_demo_jobs_total", {}, 100});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  EXPECT_NE(r.message.find("typo: prometheus error bad_data (HTTP 400): "), std::string::npos)
      << r.message;
  EXPECT_NE(r.message.find("parse error"), std::string::npos) << r.message;
}

TEST_F(PrometheusAnalysisE2E, SampleAggregatesEveryCheck) {
  const std::vector<Check> checks = {
      {"error-rate", "rollgate_demo_errors_ratio", {}, 0.01},
      {"jobs", "rollgate_demo_jobs_total", 1, {}},
  };
  SampleResult r = client_->Sample(*prometheus_ + "/", checks);
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: error-rate = 0.002 (max 0.01); jobs = 42 (min 1)");

  r = client_->Sample(*prometheus_, {checks[0], {"absent", "absent_metric_xyz", {}, 1}});
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive) << r.Summary();

  r = client_->Sample(*prometheus_, {{"absent", "absent_metric_xyz", {}, 1},
                                     {"error-rate", "rollgate_demo_errors_ratio", {}, 0.001}});
  EXPECT_EQ(r.outcome, SampleOutcome::kFail) << r.Summary();
  EXPECT_EQ(r.Summary(), "Fail: absent: query returned no data; error-rate = 0.002 > max 0.001");
}

TEST_F(PrometheusAnalysisE2E, AddressPathPrefixIsKept) {
  // A Prometheus behind a path prefix (--web.route-prefix, a reverse proxy): the static server
  // answers /prefix/api/v1/query from a file, whatever the query string.
  const auto file = std::filesystem::path(*dir_) / "www" / "prefix" / "api" / "v1" / "query";
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << R"({"status":"success","data":{"resultType":"scalar","result":[1,"7"]}})";
  SampleResult r = client_->Sample(*metrics_ + "/prefix", {{"prefixed", "anything", 7, 7}});
  EXPECT_EQ(r.outcome, SampleOutcome::kPass) << r.Summary();
  EXPECT_EQ(r.Summary(), "Pass: prefixed = 7 (min 7, max 7)");
}

TEST_F(PrometheusAnalysisE2E, UnreachablePrometheusIsInconclusive) {
  LoopbackSocket closed(/*listen_forever=*/false);
  ASSERT_NE(closed.port(), 0);
  const std::string address = "http://127.0.0.1:" + std::to_string(closed.port());
  const auto start = steady_clock::now();
  SampleResult r = client_->Sample(address, {{"error-rate", "rollgate_demo_errors_ratio", {}, 1}});
  EXPECT_LT(steady_clock::now() - start, seconds(5));
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_FALSE(r.checks[0].value.has_value());
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus unreachable: ", 0), 0u)
      << r.checks[0].message;
}

TEST_F(PrometheusAnalysisE2E, SilentPrometheusIsInconclusiveWithinTheTimeout) {
  LoopbackSocket silent(/*listen_forever=*/true);
  ASSERT_NE(silent.port(), 0);
  auto client = NewPrometheusClient(milliseconds(1500));
  const auto start = steady_clock::now();
  SampleResult r = client->Sample("http://127.0.0.1:" + std::to_string(silent.port()),
                                  {{"error-rate", "rollgate_demo_errors_ratio", {}, 1}});
  const auto elapsed = steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(1400));
  EXPECT_LT(elapsed, milliseconds(4000));
  EXPECT_EQ(r.outcome, SampleOutcome::kInconclusive);
  ASSERT_EQ(r.checks.size(), 1u);
  EXPECT_EQ(r.checks[0].message.rfind("error-rate: prometheus unreachable: ", 0), 0u)
      << r.checks[0].message;
}

}  // namespace
}  // namespace rollgate::rollout
