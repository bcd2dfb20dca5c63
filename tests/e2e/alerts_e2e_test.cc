// Alerting end to end (issue 6): a real Prometheus (Debian's `prometheus`, started by the test on
// loopback) scrapes the real rollgate-controller (started by the test against the shared cluster,
// --namespace <test namespace>) every second as job="rollgate" with honor_labels, and evaluates
// manifests/alerts/rollgate-alerts.yaml every second. Rollouts that fail on the local control
// plane must turn the alerts `firing` in Prometheus' /api/v1/alerts with the rollout's
// namespace/rollout/environment labels:
//   - a target Deployment that does not exist: DeploymentNotFound -> RolloutFailed;
//   - a never-ready image with progressDeadlineSeconds 30: ProgressDeadlineExceeded and an
//     automatic rollback -> RolloutFailed and RolloutRolledBack;
//   - a rollout that succeeds raises neither.
// The rules file is loaded unchanged: RolloutFailed and RolloutRolledBack have no `for:` clause, so
// they fire on the first evaluation that sees the failure (the test asserts that the rules it
// relies on still have none, rather than rewriting them).
// Health endpoints: /readyz answers 503 while the informer caches have not synced (a second
// controller pointed at a black-hole API server never syncs) and 200 once they have; /healthz is
// 200 in both. The scrape carries rollgate_build_info{version}.
// Finally every query of the Grafana dashboard (manifests/dashboards/rollgate-dashboard.json) runs
// against this Prometheus: each must be valid, and each must return data except where the test
// cannot produce any (watch restarts, API errors).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"
#include "tests/e2e/rollout_e2e_support.h"

namespace rollgate::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

std::string EnvVar(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): test set-up
  return v == nullptr ? std::string() : std::string(v);
}

std::filesystem::path RepoRoot() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last `n` lines of a file, for failure messages.
std::string Tail(const std::string& path, size_t n = 30) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    out += "  " + lines[i] + "\n";
  }
  return "--- " + path + " (last " + std::to_string(n) + " lines)\n" + out;
}

// ---- loopback sockets and a minimal HTTP/1.0 client -------------------------------------------

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// A loopback port that nothing listened on a moment ago (0 when none could be had).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// A loopback socket that listens and never accepts: the kernel completes the TCP handshake, then
// the "server" stays silent. As an API server it keeps every request hanging.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof addr;
    if (fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 64) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~BlackHole() {
    if (fd_ >= 0) ::close(fd_);
  }
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct HttpResponse {
  int status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  std::string error;
};

// GET http://127.0.0.1:<port><target> with HTTP/1.0 (no chunking, the server closes).
HttpResponse HttpGet(int port, const std::string& target, seconds timeout = seconds(5)) {
  HttpResponse r;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = "socket failed";
    return r;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr = Loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    r.error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return r;
  }
  const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    r.error = "send failed";
    ::close(fd);
    return r;
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
    } else {
      if (n < 0) r.error = std::string("recv: ") + std::strerror(errno);
      break;
    }
  }
  ::close(fd);
  const size_t sp = raw.find(' ');
  const size_t hdr_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/", 0) != 0 || sp == std::string::npos || hdr_end == std::string::npos) {
    if (r.error.empty()) r.error = "not an HTTP response: " + raw.substr(0, 200);
    return r;
  }
  r.status = std::atoi(raw.c_str() + sp + 1);
  r.body = raw.substr(hdr_end + 4);
  r.error.clear();
  return r;
}

std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Describe(const HttpResponse& r) {
  return r.status == 0 ? "no answer (" + r.error + ")"
                       : std::to_string(r.status) + " " + r.body.substr(0, 300);
}

// ---- suite-wide state --------------------------------------------------------------------------

struct Suite {
  std::string kubeconfig;
  std::string controller_bin;
  std::string alerts_file;
  std::string dir;  // work directory: logs, prometheus.yml, TSDB
  std::string ns;
  RealClock clock;
  std::unique_ptr<kube::RestClient> client;
  ChildProcess controller;
  std::string controller_log;
  int metrics_port = 0;
  int health_port = 0;
  ChildProcess prometheus;
  std::string prometheus_log;
  int prometheus_port = 0;
};

Suite& Ctx() {
  static Suite* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

// Polls `f` every 200 ms until it returns true or `timeout` passes.
template <typename F>
bool Eventually(F f, std::chrono::milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    if (f()) return true;
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(200));
  }
}

// Starts the controller on fresh loopback ports; "" once /healthz answers.
std::string StartController(Suite& s) {
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s.metrics_port = FreePort();
    s.health_port = FreePort();
    if (s.metrics_port == 0 || s.health_port == 0 || s.metrics_port == s.health_port) continue;
    if (std::string err = s.controller.Start(
            {s.controller_bin, "--kubeconfig", s.kubeconfig, "--namespace", s.ns,
             "--metrics-bind-address=127.0.0.1:" + std::to_string(s.metrics_port),
             "--health-probe-bind-address=127.0.0.1:" + std::to_string(s.health_port)},
            s.controller_log);
        !err.empty()) {
      return "starting the controller: " + err;
    }
    bool up = false;
    bool exited = false;
    (void)Eventually(
        [&] {
          if (!s.controller.Running()) return exited = true;
          return up = HttpGet(s.health_port, "/healthz").status == 200;
        },
        seconds(30));
    if (up) return "";
    last = exited ? "the controller exited" : "no /healthz answer within 30 s";
    s.controller.Signal(SIGKILL);
    (void)s.controller.Wait(seconds(10));
  }
  return "the controller did not start: " + last + "\n" + Tail(s.controller_log);
}

// Writes prometheus.yml and starts Prometheus on a fresh loopback port; "" once /-/ready is 200.
std::string StartPrometheus(Suite& s) {
  const std::string bin =
      EnvVar("PROMETHEUS_BIN").empty() ? "/usr/bin/prometheus" : EnvVar("PROMETHEUS_BIN");
  if (::access(bin.c_str(), X_OK) != 0) {
    return "no prometheus binary at " + bin +
           " (apt-get install prometheus, or set PROMETHEUS_BIN)";
  }
  // job_name rollgate and honor_labels: what the alerts assume (README, "Runbook"): Rollgate's own
  // `namespace` label names the rollout's namespace.
  std::ofstream(s.dir + "/prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  scrape_timeout: 1s\n"
                                              "  evaluation_interval: 1s\n"
                                              "rule_files:\n"
                                              "  - '"
                                           << s.alerts_file
                                           << "'\n"
                                              "scrape_configs:\n"
                                              "  - job_name: rollgate\n"
                                              "    honor_labels: true\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:"
                                           << s.metrics_port << "']\n";
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    s.prometheus_port = FreePort();
    if (s.prometheus_port == 0) continue;
    if (std::string err = s.prometheus.Start(
            {bin, "--config.file=" + s.dir + "/prometheus.yml",
             "--storage.tsdb.path=" + s.dir + "/data",
             "--web.listen-address=127.0.0.1:" + std::to_string(s.prometheus_port),
             "--log.level=warn"},
            s.prometheus_log);
        !err.empty()) {
      return "starting prometheus: " + err;
    }
    bool ready = false;
    bool exited = false;
    (void)Eventually(
        [&] {
          if (!s.prometheus.Running()) return exited = true;
          return ready = HttpGet(s.prometheus_port, "/-/ready").status == 200;
        },
        seconds(60));
    if (ready) return "";
    last = exited ? "prometheus exited" : "prometheus not ready within 60 s";
    s.prometheus.Signal(SIGKILL);
    (void)s.prometheus.Wait(seconds(10));
  }
  return last + "\n" + Tail(s.prometheus_log);
}

std::string StartSuite() {
  Suite& s = Ctx();
  s.kubeconfig = EnvVar("KUBECONFIG");
  s.controller_bin = EnvVar("ROLLGATE_CONTROLLER_BIN");
  s.alerts_file = EnvVar("ROLLGATE_ALERTS");
  const std::string crd = EnvVar("ROLLGATE_CRD");
  const std::string kubectl = EnvVar("CONTROL_PLANE_BIN") + "/kubectl";
  if (s.kubeconfig.empty() || s.controller_bin.empty() || crd.empty() || s.alerts_file.empty()) {
    return "KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD and ROLLGATE_ALERTS must be set by "
           "ctest";
  }
  std::string out;
  if (RunCommand({kubectl, "--kubeconfig", s.kubeconfig, "apply", "--server-side",
                  "--force-conflicts", "-f", crd},
                 out) != 0) {
    return "applying the CRD failed: " + out;
  }
  (void)RunCommand({kubectl, "--kubeconfig", s.kubeconfig, "wait", "--for=condition=Established",
                    "crd/containerrollouts.rollgate.io", "--timeout=60s"},
                   out);
  char templ[] = "/tmp/rollgate-alerts-e2e.XXXXXX";
  if (::mkdtemp(templ) == nullptr) return "mkdtemp failed";
  s.dir = templ;
  s.controller_log = s.dir + "/controller.log";
  s.prometheus_log = s.dir + "/prometheus.log";

  auto cfg = kube::LoadKubeconfig({s.kubeconfig, ""});
  if (!cfg.ok()) return cfg.status().ToString();
  auto c = kube::RestClient::FromConfig(*cfg, s.clock, {});
  if (!c.ok()) return c.status().ToString();
  s.client = std::move(c).value();
  s.ns = "e2e-alerts-" + std::to_string(::getpid());
  auto created = s.client->Create(kube::resources::Namespaces(), "",
                                  Obj({{"apiVersion", S("v1")},
                                       {"kind", S("Namespace")},
                                       {"metadata", Obj({{"name", S(s.ns)}})}}));
  if (!created.ok()) return created.status().ToString();
  (void)Eventually(
      [&] {
        return s.client->Get(kube::ResourceType::Core("v1", "serviceaccounts"), s.ns, "default")
            .ok();
      },
      seconds(20));
  if (std::string err = StartController(s); !err.empty()) return err;
  return StartPrometheus(s);
}

class AlertsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { error_ = new std::string(StartSuite()); }
  static void TearDownTestSuite() {
    Suite& s = Ctx();
    for (ChildProcess* p : {&s.prometheus, &s.controller}) {
      p->Signal(SIGTERM);
      if (!p->Wait(seconds(10))) {
        p->Signal(SIGKILL);
        (void)p->Wait(seconds(10));
      }
    }
    if (s.client) {
      kube::DeleteOptions d;
      d.propagation_policy = "Background";
      (void)s.client->Delete(kube::resources::Namespaces(), "", s.ns, d);
    }
    if (s.dir.empty()) return;
    if (::testing::UnitTest::GetInstance()->Passed()) {
      std::error_code ec;
      std::filesystem::remove_all(s.dir, ec);
    } else {
      std::cerr << "alerts e2e: kept " << s.dir << " (controller.log, prometheus.log)\n";
    }
  }
  void SetUp() override { ASSERT_TRUE(error_->empty()) << *error_; }

  // ---- Prometheus API ----

  // GET /api/v1/<path>; the `data` member of a successful answer, else null with a failure.
  static Json Api(const std::string& path) {
    const HttpResponse r = HttpGet(Ctx().prometheus_port, "/api/v1/" + path);
    if (r.status != 200) {
      ADD_FAILURE() << "GET /api/v1/" << path << ": " << Describe(r);
      return Json::null();
    }
    try {
      Json j = Json::parse(r.body);
      if (Str(j, "status") == "success" && j.has_field("data")) return j.at("data");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "GET /api/v1/" << path << ": " << e.what();
      return Json::null();
    }
    ADD_FAILURE() << "GET /api/v1/" << path << ": " << r.body.substr(0, 500);
    return Json::null();
  }

  // An instant query; its result vector (an empty array when the query failed).
  static Json Query(const std::string& expr) {
    Json data = Api("query?query=" + UrlEncode(expr));
    const Json* result = At(data, "result");
    return result != nullptr && result->is_array() ? *result : Json::array();
  }

  // The active alerts (pending and firing).
  static std::vector<Json> Alerts() {
    std::vector<Json> out;
    const Json data = Api("alerts");
    const Json* alerts = At(data, "alerts");
    if (alerts == nullptr || !alerts->is_array()) return out;
    for (const auto& a : alerts->as_array()) out.push_back(a);
    return out;
  }

  static std::string RenderAlerts(const std::vector<Json>& alerts) {
    std::string out;
    for (const auto& a : alerts) {
      out += "  " + Str(a, "state") + " " + Render(StrMap(a, "labels")) + "\n";
    }
    return out.empty() ? "  (no active alerts)\n" : out;
  }

  // The alert named `name` whose labels include `labels`, in any state; nullopt when none.
  static std::optional<Json> FindAlert(const std::vector<Json>& alerts, const std::string& name,
                                       const std::map<std::string, std::string>& labels) {
    for (const auto& a : alerts) {
      const auto l = StrMap(a, "labels");
      bool match = l.count("alertname") != 0 && l.at("alertname") == name;
      for (const auto& [k, v] : labels) match = match && l.count(k) != 0 && l.at(k) == v;
      if (match) return a;
    }
    return std::nullopt;
  }

  // Waits until alert `name` with `labels` is firing; returns it (with a failure when it is not).
  static std::optional<Json> WaitFiring(const std::string& name,
                                        const std::map<std::string, std::string>& labels,
                                        seconds timeout = seconds(60)) {
    std::vector<Json> last;
    std::optional<Json> found;
    const auto start = steady_clock::now();
    (void)Eventually(
        [&] {
          last = Alerts();
          found = FindAlert(last, name, labels);
          return found && Str(*found, "state") == "firing";
        },
        timeout);
    if (found && Str(*found, "state") == "firing") {
      std::cout << "[ alerts  ] " << name << " " << Render(labels) << " firing after "
                << std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count()
                << " ms\n";
      return found;
    }
    ADD_FAILURE() << name << " " << Render(labels) << " is not firing after " << timeout.count()
                  << " s; active alerts:\n"
                  << RenderAlerts(last) << "rollgate_rollout_failures_total > 0: "
                  << Query("rollgate_rollout_failures_total > 0").serialize()
                  << "\nrollgate_environment_phase == 1: "
                  << Query("rollgate_environment_phase == 1").serialize() << "\n"
                  << Tail(Ctx().controller_log, 20);
    return std::nullopt;
  }

  // ---- Kubernetes objects ----

  static void CreateDeployment(const std::string& name, const std::string& image) {
    Suite& s = Ctx();
    Json labels = Obj({{"app", S(name)}});
    Json containers = Json::array();
    containers[0] = Obj({{"name", S("app")}, {"image", S(image)}});
    Json d = Obj({{"apiVersion", S("apps/v1")},
                  {"kind", S("Deployment")},
                  {"metadata", Obj({{"name", S(name)}, {"labels", labels}})},
                  {"spec", Obj({{"replicas", Json::number(1)},
                                {"selector", Obj({{"matchLabels", labels}})},
                                {"template", Obj({{"metadata", Obj({{"labels", labels}})},
                                                  {"spec", Obj({{"containers", containers},
                                                                {"terminationGracePeriodSeconds",
                                                                 Json::number(0)}})}})}})}});
    auto created = s.client->Create(kube::resources::Deployments(), s.ns, d);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    // Start from an available Deployment, as in production (kwok makes the pod ready).
    EXPECT_TRUE(Eventually(
        [&] {
          auto got = s.client->Get(kube::resources::Deployments(), s.ns, name);
          return got.ok() && Int(*got, "status.availableReplicas", 0) >= 1;
        },
        seconds(60)))
        << "Deployment " << name << " did not become available";
  }

  // A one-environment ("dev") rollout of image key "app" to `image` on Deployment `target`.
  static void CreateRollout(const std::string& name, const std::string& target,
                            const std::string& image, int progress_deadline_seconds = 0) {
    Suite& s = Ctx();
    Json targets = Json::array();
    targets[0] = Obj({{"deployment", S(target)}, {"containers", StrObj({{"app", "app"}})}});
    Json envs = Json::array();
    envs[0] = Obj({{"name", S("dev")}, {"targets", targets}});
    Json spec = Obj({{"images", StrObj({{"app", image}})}, {"environments", envs}});
    if (progress_deadline_seconds > 0) {
      spec["progressDeadlineSeconds"] = Json::number(progress_deadline_seconds);
    }
    auto created = s.client->Create(kube::resources::ContainerRollouts(), s.ns,
                                    Obj({{"apiVersion", S("rollgate.io/v1alpha1")},
                                         {"kind", S("ContainerRollout")},
                                         {"metadata", Obj({{"name", S(name)}})},
                                         {"spec", spec}}));
    ASSERT_TRUE(created.ok()) << created.status().ToString();
  }

  // Waits for the rollout to reach `phase`; returns its last state.
  static Json WaitPhase(const std::string& name, const std::string& phase, seconds timeout) {
    Suite& s = Ctx();
    Json last;
    const bool ok = Eventually(
        [&] {
          auto got = s.client->Get(kube::resources::ContainerRollouts(), s.ns, name);
          if (got.ok()) last = *got;
          return Str(last, "status.phase") == phase;
        },
        timeout);
    EXPECT_TRUE(ok) << name << " is not " << phase << " after " << timeout.count()
                    << " s: " << last.serialize() << "\n"
                    << Tail(s.controller_log, 20);
    return last;
  }

  static inline std::string* error_ = nullptr;
};

std::map<std::string, std::string> RolloutLabels(const std::string& rollout) {
  return {{"namespace", Ctx().ns}, {"rollout", rollout}, {"environment", "dev"}};
}

// The rules this test relies on exist, have no `for:` clause (so no rewritten copy is needed) and
// are loaded and evaluated by Prometheus.
TEST_F(AlertsE2E, PrometheusLoadsTheAlertRules) {
  const std::string rules = ReadFile(Ctx().alerts_file);
  for (const std::string name : {"RolloutFailed", "RolloutRolledBack"}) {
    const size_t at = rules.find("- alert: " + name);
    ASSERT_NE(at, std::string::npos) << name << " is not in " << Ctx().alerts_file;
    const size_t next = rules.find("- alert:", at + 1);
    const std::string rule = rules.substr(at, next == std::string::npos ? next : next - at);
    EXPECT_EQ(rule.find("\n        for:"), std::string::npos)
        << name << " gained a `for:` clause: load a copy with a short `for:` in this test";
  }
  const std::vector<std::string> kAlerts = {"RolloutFailed",  "RolloutRolledBack",
                                            "RolloutStuck",   "WorkerValidationFailing",
                                            "ControllerDown", "NoLeader"};
  std::set<std::string> healthy;
  std::string seen;
  ASSERT_TRUE(Eventually(
      [&] {
        healthy.clear();
        seen.clear();
        const Json data = Api("rules");
        const Json* groups = At(data, "groups");
        if (groups == nullptr || !groups->is_array()) return false;
        for (const auto& g : groups->as_array()) {
          const Json* rs = At(g, "rules");
          if (rs == nullptr || !rs->is_array()) continue;
          for (const auto& r : rs->as_array()) {
            seen += Str(r, "name") + "(" + Str(r, "health") + ") ";
            if (Str(r, "type") == "alerting" && Str(r, "health") == "ok") {
              healthy.insert(Str(r, "name"));
            }
          }
        }
        for (const std::string& name : kAlerts) {
          if (healthy.count(name) == 0) return false;
        }
        return true;
      },
      seconds(30)))
      << "alerting rules loaded and evaluated by Prometheus (health ok), want all of "
         "RolloutFailed RolloutRolledBack RolloutStuck WorkerValidationFailing ControllerDown "
         "NoLeader: "
      << seen;
}

// /readyz is 503 while the caches have not synced: a second controller whose API server never
// answers (a listening socket that never accepts) stays unready, yet alive (/healthz 200).
TEST_F(AlertsE2E, ReadyzIsNotReadyBeforeTheCachesSync) {
  Suite& s = Ctx();
  BlackHole api;
  ASSERT_NE(api.port(), 0);
  const std::string kubeconfig = ReadFile(s.kubeconfig);
  const std::regex server(R"(server:\s*https://[^\s]+)");
  ASSERT_TRUE(std::regex_search(kubeconfig, server)) << "no server: line in " << s.kubeconfig;
  const std::string blackhole_kubeconfig = s.dir + "/blackhole.kubeconfig";
  std::ofstream(blackhole_kubeconfig) << std::regex_replace(
      kubeconfig, server, "server: https://127.0.0.1:" + std::to_string(api.port()));
  const std::string log = s.dir + "/controller-unsynced.log";
  int health_port = 0;
  ChildProcess c;
  bool answered = false;
  for (int attempt = 0; attempt < 3 && !answered; ++attempt) {
    health_port = FreePort();
    ASSERT_EQ(c.Start({s.controller_bin, "--kubeconfig", blackhole_kubeconfig, "--namespace", s.ns,
                       "--metrics-bind-address=0",
                       "--health-probe-bind-address=127.0.0.1:" + std::to_string(health_port)},
                      log),
              "");
    answered = Eventually([&] { return !c.Running() || HttpGet(health_port, "/healthz").status; },
                          seconds(30)) &&
               c.Running();
    if (!answered) {
      c.Signal(SIGKILL);
      (void)c.Wait(seconds(10));
    }
  }
  ASSERT_TRUE(answered) << "the unsynced controller did not serve /healthz\n" << Tail(log);
  // Several probes over 3 s: never ready while no list ever completes.
  for (int i = 0; i < 6; ++i) {
    const HttpResponse ready = HttpGet(health_port, "/readyz");
    EXPECT_EQ(ready.status, 503) << "/readyz before the caches synced: " << Describe(ready);
    const HttpResponse alive = HttpGet(health_port, "/healthz");
    EXPECT_EQ(alive.status, 200) << "/healthz of an unsynced controller: " << Describe(alive);
    std::this_thread::sleep_for(milliseconds(500));
  }
  EXPECT_EQ(ReadFile(log).find("caches synced"), std::string::npos) << Tail(log);
  // SIGKILL: with a list request hanging, SIGTERM only takes effect once the request times out
  // (30 s), and this test is not about shutting down.
  c.Signal(SIGKILL);
  (void)c.Wait(seconds(10));
}

// The real controller: ready once its caches synced, alive, and scraped by Prometheus with its
// build info.
TEST_F(AlertsE2E, ControllerIsReadyAndScraped) {
  Suite& s = Ctx();
  HttpResponse ready;
  EXPECT_TRUE(Eventually([&] { return (ready = HttpGet(s.health_port, "/readyz")).status == 200; },
                         seconds(60)))
      << "/readyz: " << Describe(ready) << "\n"
      << Tail(s.controller_log);
  EXPECT_NE(ReadFile(s.controller_log).find("caches synced"), std::string::npos)
      << "/readyz is 200 but the controller never logged that its caches synced";
  const HttpResponse alive = HttpGet(s.health_port, "/healthz");
  EXPECT_EQ(alive.status, 200) << Describe(alive);
  const HttpResponse metrics = HttpGet(s.metrics_port, "/metrics");
  EXPECT_EQ(metrics.status, 200) << Describe(metrics);
  EXPECT_NE(metrics.body.find("rollgate_build_info{"), std::string::npos)
      << metrics.body.substr(0, 1000);

  Json up;
  EXPECT_TRUE(Eventually(
      [&] {
        up = Query(R"(up{job="rollgate"} == 1)");
        return up.size() == 1;
      },
      seconds(30)))
      << "up{job=\"rollgate\"}: " << Query(R"(up{job="rollgate"})").serialize() << "\n"
      << Api("targets").serialize();
  const Json info = Query(R"(rollgate_build_info{job="rollgate"})");
  ASSERT_EQ(info.size(), 1u) << info.serialize();
  EXPECT_EQ(Str(info.at(0), "metric.version"), ROLLGATE_VERSION) << info.serialize();
  EXPECT_EQ(Str(info.at(0), "metric.instance"), "127.0.0.1:" + std::to_string(s.metrics_port));
  EXPECT_EQ(Query(R"(rollgate_leader{job="rollgate"} == 1)").size(), 1u)
      << "without leader election the only instance leads";
}

// A target Deployment that does not exist: the environment fails with DeploymentNotFound before
// any patch; RolloutFailed fires for that environment, RolloutRolledBack does not.
TEST_F(AlertsE2E, MissingDeploymentFiresRolloutFailed) {
  Suite& s = Ctx();
  CreateRollout("missing-target", "does-not-exist", "registry.example.com/app/x:2.0.0");
  const Json st = WaitPhase("missing-target", "Failed", seconds(90));
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "DeploymentNotFound") << st.serialize();

  const auto alert = WaitFiring("RolloutFailed", RolloutLabels("missing-target"));
  ASSERT_TRUE(alert);
  EXPECT_EQ(Str(*alert, "labels.severity"), "critical");
  EXPECT_NE(Str(*alert, "annotations.summary").find(s.ns + "/missing-target"), std::string::npos)
      << alert->serialize();
  EXPECT_NE(Str(*alert, "annotations.description").find("in environment dev"), std::string::npos)
      << alert->serialize();
  EXPECT_FALSE(Str(*alert, "annotations.runbook_url").empty()) << alert->serialize();
  const Json failures = Query("rollgate_rollout_failures_total{namespace=\"" + s.ns +
                              "\",rollout=\"missing-target\",reason=\"DeploymentNotFound\"}");
  ASSERT_EQ(failures.size(), 1u) << failures.serialize();
  EXPECT_EQ(Str(failures.at(0), "value.1"), "1") << failures.serialize();

  // Two more evaluations: nothing was patched, so nothing was rolled back.
  std::this_thread::sleep_for(seconds(3));
  const auto alerts = Alerts();
  EXPECT_FALSE(FindAlert(alerts, "RolloutRolledBack", {{"rollout", "missing-target"}}))
      << RenderAlerts(alerts);
}

// A never-ready image: the progress deadline (30 s) fails the environment and the controller
// rolls it back; RolloutFailed and RolloutRolledBack both fire for that environment.
TEST_F(AlertsE2E, ProgressDeadlineRollbackFiresRolloutFailedAndRolledBack) {
  Suite& s = Ctx();
  CreateDeployment("never-ready", "registry.example.com/app/x:1.0.0");
  CreateRollout("never-ready", "never-ready", "registry.example.com/app/x:2.0.0-never-ready", 30);
  const Json st = WaitPhase("never-ready", "RolledBack", seconds(120));
  EXPECT_EQ(Str(st, "status.environments.0.reason"), "ProgressDeadlineExceeded") << st.serialize();
  auto d = s.client->Get(kube::resources::Deployments(), s.ns, "never-ready");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(Str(*d, "spec.template.spec.containers.0.image"), "registry.example.com/app/x:1.0.0");

  const auto failed = WaitFiring("RolloutFailed", RolloutLabels("never-ready"));
  const auto rolled_back = WaitFiring("RolloutRolledBack", RolloutLabels("never-ready"));
  ASSERT_TRUE(rolled_back);
  EXPECT_EQ(Str(*rolled_back, "labels.severity"), "warning");
  EXPECT_NE(Str(*rolled_back, "annotations.summary").find("rolled back environment dev"),
            std::string::npos)
      << rolled_back->serialize();
  const Json reason = Query("rollgate_rollout_failures_total{namespace=\"" + s.ns +
                            "\",rollout=\"never-ready\",reason=\"ProgressDeadlineExceeded\"} == 1");
  EXPECT_EQ(reason.size(), 1u) << reason.serialize();
  const Json rollbacks = Query("rollgate_rollbacks_total{namespace=\"" + s.ns +
                               "\",rollout=\"never-ready\",environment=\"dev\"} == 1");
  EXPECT_EQ(rollbacks.size(), 1u) << rollbacks.serialize();
}

// A rollout that succeeds raises no alert at all.
TEST_F(AlertsE2E, SucceededRolloutRaisesNoAlert) {
  CreateDeployment("healthy", "registry.example.com/app/x:1.0.0");
  CreateRollout("healthy", "healthy", "registry.example.com/app/x:2.0.0");
  (void)WaitPhase("healthy", "Succeeded", seconds(90));
  // Its final state scraped and evaluated a few times over.
  const std::string sel = "namespace=\"" + Ctx().ns + "\",rollout=\"healthy\"";
  EXPECT_TRUE(Eventually(
      [&] {
        return Query("rollgate_rollout_phase{" + sel + ",phase=\"Succeeded\"} == 1").size() == 1;
      },
      seconds(30)))
      << "the Succeeded phase was not scraped";
  std::this_thread::sleep_for(seconds(3));
  const auto alerts = Alerts();
  EXPECT_FALSE(FindAlert(alerts, "RolloutFailed", {{"rollout", "healthy"}}))
      << RenderAlerts(alerts);
  EXPECT_FALSE(FindAlert(alerts, "RolloutRolledBack", {{"rollout", "healthy"}}))
      << RenderAlerts(alerts);
  EXPECT_FALSE(FindAlert(alerts, "WorkerValidationFailing", {{"rollout", "healthy"}}))
      << RenderAlerts(alerts);
  const Json duration = Query("rollgate_environment_duration_seconds_count{" + sel + "} == 1");
  EXPECT_EQ(duration.size(), 1u) << "the environment's duration was observed once: "
                                 << duration.serialize();
}

// Every query of the Grafana dashboard runs against this Prometheus (Grafana's variables
// substituted): all are valid PromQL, and all return data except those about events this test
// cannot cause (watch restarts, API errors).
TEST_F(AlertsE2E, DashboardQueriesReturnData) {
  const std::string path = (RepoRoot() / "manifests/dashboards/rollgate-dashboard.json").string();
  Json dashboard;
  ASSERT_NO_THROW(dashboard = Json::parse(ReadFile(path))) << path;
  const std::vector<std::pair<std::string, std::string>> subst = {
      {"$__rate_interval", "30s"}, {"$__interval", "15s"},   {"$__range", "10m"},
      {"$job", "rollgate"},        {"$namespace", Ctx().ns}, {"$rollout", ".*"},
      {"$environment", ".*"}};
  auto substitute = [&](std::string e) {
    for (const auto& [from, to] : subst) {
      for (size_t at = e.find(from); at != std::string::npos; at = e.find(from, at + to.size())) {
        e.replace(at, from.size(), to);
      }
    }
    return e;
  };
  std::vector<std::pair<std::string, std::string>> queries;  // (where, expr)
  const Json* vars = At(dashboard, "templating.list");
  ASSERT_TRUE(vars != nullptr && vars->is_array());
  for (const auto& v : vars->as_array()) {
    const std::string q = Str(v, "query.query");
    const std::regex label_values(R"(^\s*label_values\((.*),\s*([a-z_]+)\s*\)\s*$)");
    std::smatch m;
    if (Str(v, "type") != "query") continue;
    ASSERT_TRUE(std::regex_match(q, m, label_values)) << q;
    // The variable's values: the label of the series the selector matches.
    queries.emplace_back("variable " + Str(v, "name"),
                         "count by (" + m[2].str() + ") (" + m[1].str() + ")");
  }
  const Json* panels = At(dashboard, "panels");
  ASSERT_TRUE(panels != nullptr && panels->is_array());
  for (const auto& p : panels->as_array()) {
    const Json* targets = At(p, "targets");
    if (targets == nullptr || !targets->is_array()) continue;
    for (const auto& t : targets->as_array()) {
      queries.emplace_back("panel '" + Str(p, "title") + "' " + Str(t, "refId"), Str(t, "expr"));
    }
  }
  ASSERT_GT(queries.size(), 20u);
  int with_data = 0;
  for (const auto& [where, expr] : queries) {
    const std::string q = substitute(expr);
    const HttpResponse r = HttpGet(Ctx().prometheus_port, "/api/v1/query?query=" + UrlEncode(q));
    EXPECT_EQ(r.status, 200) << where << ": " << q << " -> " << Describe(r);
    if (r.status != 200) continue;
    const Json j = Json::parse(r.body);
    const Json* result = At(j, "data.result");
    const size_t n = result != nullptr && result->is_array() ? result->size() : 0;
    const bool may_be_empty = expr.find("rollgate_watch_restarts_total") != std::string::npos ||
                              expr.find("code!~") != std::string::npos;
    if (n > 0) ++with_data;
    EXPECT_TRUE(n > 0 || may_be_empty) << where << " returned no data: " << q;
    if (where.rfind("variable namespace", 0) == 0) {
      EXPECT_NE(r.body.find("\"namespace\":\"" + Ctx().ns + "\""), std::string::npos)
          << "the namespace variable does not offer the test's namespace: " << r.body;
    }
  }
  std::cout << "[ alerts  ] dashboard: " << queries.size() << " queries valid, " << with_data
            << " with data\n";
}

}  // namespace
}  // namespace rollgate::e2e
