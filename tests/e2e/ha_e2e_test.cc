// High availability and resilience end to end (issue 8): the real rollgate-controller binary, run
// as child processes, against the real local control plane of the e2e fixture.
//
//   1. Two replicas with --leader-elect: exactly one reconciles; SIGKILL of the leader mid rollout
//      → the standby takes over within the lease duration and the rollout finishes with each
//      Deployment patched once; SIGTERM of the new leader → a third replica takes over at once
//      (the lease is released on shutdown).
//   2. The API server stopped for 20 s in the middle of a rollout and started again (same data,
//      port and flags; etcd keeps running): the rollout completes, each Deployment patched once,
//      and the restarts are counted in rollgate_watch_restarts_total.
//   3. A seeded, bounded loop of 20 SIGKILLs at random instants across a three-environment
//      rollout, then a run to completion: the final state is exactly that of an undisturbed run.
//
// Each test prints its figures on lines starting with "[ha e2e]" (takeover after SIGKILL,
// hand-over after SIGTERM, recovery after the API-server outage, the random seed).
//
// Needs: KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD, CONTROL_PLANE_BIN (kubectl), and for
// the outage test ROLLGATE_CLUSTER_SH (hack/cluster.sh) and ROLLGATE_CLUSTER_DIR (ctest sets
// them all). ROLLGATE_HA_SEED fixes the random-kill seed. Controller logs go to
// ROLLGATE_E2E_LOG_DIR (default: a directory under the working directory).
// The outage test disturbs every client of the shared cluster: the ctest entry runs RUN_SERIAL,
// and the fixture starts the API server again even when the test fails.
// Thread-safety: single-threaded tests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"
#include "tests/e2e/rollout_e2e_support.h"

namespace rollgate::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace resources = kube::resources;

constexpr const char* kBackend1 = "registry.example.com/app/backend:1.9.0";
constexpr const char* kBackend2 = "registry.example.com/app/backend:2.0.0";
constexpr const char* kWorker1 = "registry.example.com/app/worker-cpu:1.9.0";
constexpr const char* kWorker2 = "registry.example.com/app/worker-cpu:2.0.0";
constexpr const char* kRevisionAnnotation = "rollgate.io/revision";
constexpr const char* kPatchedMsg = "patched deployment images";
constexpr const char* kLeaseName = "rollgate-ha-e2e";

// Leader election timing of the HA test (seconds): lease > renew > 1.2 x retry.
constexpr double kLease = 4;
constexpr double kRenew = 3;
constexpr double kRetry = 0.5;

// ---- suite state --------------------------------------------------------------------------------

struct Suite {
  RealClock clock;
  std::unique_ptr<kube::RestClient> client;
  std::string kubeconfig;
  std::string controller_bin;
  std::string cluster_sh;
  std::string cluster_dir;
  std::string prefix;
  std::filesystem::path log_dir;
  std::vector<std::string> namespaces;
  std::string setup_error;
};

Suite& G() {
  static auto* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests are single-threaded
  return v == nullptr ? std::string() : std::string(v);
}

std::string TestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info == nullptr ? std::string() : info->name();
}

void AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << '\n';
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Lines of the log at `path` with msg="<msg>" and, when given, the field value `field_value`
// ("deployment=ns/name") followed by a space or the end of the line.
int CountLog(const std::string& path, const std::string& msg, const std::string& field_value = {}) {
  int n = 0;
  for (const auto& line : ReadLines(path)) {
    if (line.find("msg=\"" + msg + "\"") == std::string::npos &&
        line.find("msg=" + msg + " ") == std::string::npos) {
      continue;
    }
    if (field_value.empty()) {
      ++n;
      continue;
    }
    const size_t at = line.find(field_value);
    if (at == std::string::npos) continue;
    const size_t end = at + field_value.size();
    if (end == line.size() || line[end] == ' ') ++n;
  }
  return n;
}

double SecondsSince(steady_clock::time_point t0) {
  return std::chrono::duration<double>(steady_clock::now() - t0).count();
}

std::string Fixed(double v, int decimals = 2) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.*f", decimals, v);
  return buf.data();
}

// ---- loopback HTTP (metrics) --------------------------------------------------------------------

// A loopback TCP port that was free a moment ago (the kernel's choice).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// GET http://127.0.0.1:<port><path> (HTTP/1.0); the body, or nullopt.
std::optional<std::string> HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string resp;
  std::array<char, 8192> buf{};
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    resp.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return std::nullopt;
  if (resp.find(" 200 ") > body) return std::nullopt;
  return resp.substr(body + 4);
}

// Samples of the metric family `name` in a Prometheus text exposition: labels -> value.
std::map<std::string, double> Samples(const std::string& text, const std::string& name) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.rfind(name, 0) != 0) continue;
    const std::string rest = line.substr(name.size());
    std::string labels;
    std::string value;
    if (!rest.empty() && rest[0] == '{') {
      const size_t close = rest.find('}');
      if (close == std::string::npos) continue;
      labels = rest.substr(0, close + 1);
      value = rest.substr(close + 1);
    } else if (!rest.empty() && rest[0] == ' ') {
      value = rest;
    } else {
      continue;  // another family with this prefix
    }
    out[labels] = std::strtod(value.c_str(), nullptr);
  }
  return out;
}

// ---- controller processes -----------------------------------------------------------------------

struct Controller {
  std::string name;  // "A", "B", ...
  std::string log;
  int metrics_port = 0;
  ChildProcess proc;

  // The identity the controller campaigns with (hostname_pid, see controller_main.cc).
  std::string Identity() const {
    std::array<char, 256> host{};
    ::gethostname(host.data(), host.size() - 1);
    return std::string(host.data()) + "_" + std::to_string(proc.pid());
  }

  std::optional<std::string> Metrics() const {
    if (metrics_port <= 0) return std::nullopt;
    return HttpGet(metrics_port, "/metrics");
  }

  // rollgate_leader of this controller, or -1 when it cannot be scraped.
  double LeaderGauge() const {
    auto m = Metrics();
    if (!m) return -1;
    auto s = Samples(*m, "rollgate_leader");
    return s.empty() ? -1 : s.begin()->second;
  }
};

// Starts `c` with the common flags, `extra` and its own loopback metrics port (health disabled
// unless `extra` names one).
std::string StartController(Controller& c, const std::vector<std::string>& extra,
                            bool with_metrics) {
  std::vector<std::string> argv = {G().controller_bin, "--kubeconfig", G().kubeconfig,
                                   "--log-level=debug", "--health-probe-bind-address=0"};
  if (with_metrics) {
    c.metrics_port = FreePort();
    argv.push_back("--metrics-bind-address=127.0.0.1:" + std::to_string(c.metrics_port));
  } else {
    c.metrics_port = 0;
    argv.emplace_back("--metrics-bind-address=0");
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string line = "=== ha e2e: starting controller " + c.name + ":";
  for (const auto& a : argv) line += " " + a;
  AppendLine(c.log, line);
  return c.proc.Start(argv, c.log);
}

// SIGTERM, then the controller must exit with code 0 within 10 s.
void StopController(Controller& c) {
  if (!c.proc.Running()) return;
  AppendLine(c.log, "=== ha e2e: SIGTERM " + c.name);
  c.proc.Signal(SIGTERM);
  const std::optional<int> st = c.proc.Wait(seconds(10));
  if (!st) {
    ADD_FAILURE() << "controller " << c.name << " (pid " << c.proc.pid()
                  << ") did not stop within 10 s of SIGTERM";
    c.proc.Signal(SIGKILL);
    (void)c.proc.Wait(seconds(10));
    return;
  }
  EXPECT_EQ(ChildProcess::Describe(*st), "exit code 0") << c.name << " after SIGTERM";
}

void KillController(Controller& c) {
  AppendLine(c.log, "=== ha e2e: SIGKILL " + c.name);
  c.proc.Signal(SIGKILL);
  const std::optional<int> st = c.proc.Wait(seconds(10));
  ASSERT_TRUE(st) << "controller " << c.name << " survived SIGKILL";
}

// ---- the scenario: namespace, Deployments, rollout ----------------------------------------------

struct Dep {
  std::string name;  // "dev-api"
  std::string container;
  std::string old_image;
  std::string new_image;
  std::int64_t generation = 0;  // once available, before the rollout
};

struct EnvDef {
  std::string name;
  bool manual = false;
  std::vector<std::string> deployments;
};

struct Scenario {
  std::string ns;
  std::string rollout = "app";
  std::vector<EnvDef> envs;
  std::map<std::string, Dep> deps;
  std::string ready_delay;  // kwok pod-ready delay of every pod ("2s"), "" for none
  std::string Key() const { return ns + "/" + rollout; }
};

// dev, staging, prod; an api (backend image) and a worker Deployment in each, one namespace.
Scenario ThreeEnvironments(const std::string& suffix, const std::string& ready_delay,
                           bool prod_manual) {
  Scenario s;
  s.ns = G().prefix + "-" + suffix;
  s.ready_delay = ready_delay;
  for (const char* env : {"dev", "staging", "prod"}) {
    const std::string e = env;
    s.deps[e + "-api"] = {e + "-api", "api", kBackend1, kBackend2, 0};
    s.deps[e + "-worker"] = {e + "-worker", "worker", kWorker1, kWorker2, 0};
    s.envs.push_back({e, prod_manual && e == "prod", {e + "-api", e + "-worker"}});
  }
  return s;
}

Json DeploymentObject(const Scenario& s, const Dep& d) {
  Json labels = Obj({{"app", S(d.name)}});
  Json containers = Json::array();
  containers[0] = Obj({{"name", S(d.container)}, {"image", S(d.old_image)}});
  Json pod_meta = Obj({{"labels", labels}});
  if (!s.ready_delay.empty()) {
    pod_meta["annotations"] = Obj({{"pod-ready.stage.kwok.x-k8s.io/delay", S(s.ready_delay)}});
  }
  return Obj({{"apiVersion", S("apps/v1")},
              {"kind", S("Deployment")},
              {"metadata", Obj({{"name", S(d.name)}, {"namespace", S(s.ns)}, {"labels", labels}})},
              {"spec", Obj({{"replicas", Json::number(2)},
                            {"selector", Obj({{"matchLabels", labels}})},
                            {"template", Obj({{"metadata", pod_meta},
                                              {"spec", Obj({{"containers", containers},
                                                            {"terminationGracePeriodSeconds",
                                                             Json::number(0)}})}})}})}});
}

Json RolloutObject(const Scenario& s) {
  Json environments = Json::array();
  size_t i = 0;
  for (const auto& e : s.envs) {
    Json targets = Json::array();
    size_t j = 0;
    for (const auto& name : e.deployments) {
      const Dep& d = s.deps.at(name);
      targets[j++] = Obj(
          {{"deployment", S(d.name)},
           {"containers", Obj({{d.container, S(d.container == "api" ? "backend" : "worker")}})}});
    }
    Json env = Obj({{"name", S(e.name)}, {"targets", targets}});
    if (e.manual) env["approval"] = S("Manual");
    environments[i++] = env;
  }
  Json images = Obj({{"backend", S(kBackend2)}, {"worker", S(kWorker2)}});
  return Obj({{"apiVersion", S("rollgate.io/v1alpha1")},
              {"kind", S("ContainerRollout")},
              {"metadata", Obj({{"name", S(s.rollout)}, {"namespace", S(s.ns)}})},
              {"spec", Obj({{"images", images}, {"environments", environments}})}});
}

bool Available(const Json& d) {
  const std::int64_t want = Int(d, "spec.replicas");
  return Int(d, "status.observedGeneration") >= Int(d, "metadata.generation") &&
         Int(d, "status.updatedReplicas", 0) == want &&
         Int(d, "status.availableReplicas", 0) == want && Int(d, "status.replicas", 0) == want;
}

// Creates the namespace and Deployments, waits until they are available (recording their
// generation), then creates the rollout. "" or what failed.
std::string Provision(Scenario& s) {
  auto& c = *G().client;
  auto ns = c.Create(resources::Namespaces(), "",
                     Obj({{"apiVersion", S("v1")},
                          {"kind", S("Namespace")},
                          {"metadata", Obj({{"name", S(s.ns)}})}}));
  if (!ns.ok()) return "create namespace " + s.ns + ": " + ns.status().ToString();
  G().namespaces.push_back(s.ns);
  const auto deadline = steady_clock::now() + seconds(120);
  while (!c.Get(kube::ResourceType::Core("v1", "serviceaccounts"), s.ns, "default").ok()) {
    if (steady_clock::now() > deadline) return "no default service account in " + s.ns;
    std::this_thread::sleep_for(milliseconds(100));
  }
  for (auto& [name, d] : s.deps) {
    auto created = c.Create(resources::Deployments(), s.ns, DeploymentObject(s, d));
    if (!created.ok()) return "create deployment " + name + ": " + created.status().ToString();
  }
  for (auto& [name, d] : s.deps) {
    for (;;) {
      auto got = c.Get(resources::Deployments(), s.ns, d.name);
      if (got.ok() && Available(*got)) {
        d.generation = Int(*got, "metadata.generation");
        break;
      }
      if (steady_clock::now() > deadline) {
        return "deployment " + s.ns + "/" + name + " not available within 120 s";
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  auto r = c.Create(resources::ContainerRollouts(), s.ns, RolloutObject(s));
  if (!r.ok()) return "create rollout " + s.Key() + ": " + r.status().ToString();
  return "";
}

// ---- observation --------------------------------------------------------------------------------

Json GetRollout(const Scenario& s) {
  auto r = G().client->Get(resources::ContainerRollouts(), s.ns, s.rollout);
  return r.ok() ? *r : Json::null();
}

Json GetDeployment(const Scenario& s, const Dep& d) {
  auto r = G().client->Get(resources::Deployments(), s.ns, d.name);
  return r.ok() ? *r : Json::null();
}

std::string StatusOf(const Json& r) {
  const Json* st = At(r, "status");
  return st == nullptr ? "(no status)" : st->serialize();
}

std::string EnvPhase(const Json& r, const std::string& env) {
  const Json* e = Find(r, "status.environments", "name", env);
  return e == nullptr ? std::string() : Str(*e, "phase");
}

std::map<std::string, std::string> PreviousImages(const Json& r, const std::string& env,
                                                  const std::string& deployment) {
  const Json* e = Find(r, "status.environments", "name", env);
  if (e == nullptr) return {};
  const Json* t = Find(*e, "targets", "deployment", deployment);
  return t == nullptr ? std::map<std::string, std::string>{} : StrMap(*t, "previousImages");
}

std::string RevisionAnnotation(const Json& d) {
  auto a = StrMap(d, "metadata.annotations");
  auto it = a.find(kRevisionAnnotation);
  return it == a.end() ? std::string() : it->second;
}

std::string LeaseHolder(const std::string& ns) {
  auto l = G().client->Get(resources::Leases(), ns, kLeaseName);
  return l.ok() ? Str(*l, "spec.holderIdentity") : std::string("(unreadable)");
}

// "staging/Verifying 1/2 patched" (the current environment as the API server has it).
std::string Where(const Scenario& s) {
  const Json r = GetRollout(s);
  if (r.is_null()) return "(rollout unreadable)";
  const std::string phase = Str(r, "status.phase");
  const std::string env = Str(r, "status.currentEnvironment");
  if (env.empty()) return phase.empty() ? "(no status yet)" : phase;
  int patched = 0;
  int targets = 0;
  for (const auto& e : s.envs) {
    if (e.name != env) continue;
    for (const auto& name : e.deployments) {
      ++targets;
      if (RevisionAnnotation(GetDeployment(s, s.deps.at(name))) == "1") ++patched;
    }
  }
  return phase + " " + env + "/" + EnvPhase(r, env) + " " + std::to_string(patched) + "/" +
         std::to_string(targets) + " patched";
}

// Polls every `every` until pred() holds; false (after adding a failure naming `what` and the
// rollout's last status) on timeout.
bool WaitFor(const Scenario& s, const std::string& what, milliseconds timeout,
             const std::function<bool()>& pred, milliseconds every = milliseconds(100)) {
  const auto deadline = steady_clock::now() + timeout;
  while (!pred()) {
    if (steady_clock::now() > deadline) {
      ADD_FAILURE() << s.Key() << ": timed out after " << timeout.count() << " ms waiting for "
                    << what << "; rollout status: " << StatusOf(GetRollout(s));
      return false;
    }
    std::this_thread::sleep_for(every);
  }
  return true;
}

bool Terminal(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "RolledBack" || phase == "Aborted";
}

// Waits for the rollout's phase; gives up early on another terminal phase.
std::optional<Json> WaitPhase(const Scenario& s, const std::string& phase, seconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  Json r;
  for (;;) {
    r = GetRollout(s);
    const std::string now = Str(r, "status.phase");
    if (now == phase) return r;
    if (Terminal(now)) {
      ADD_FAILURE() << s.Key() << ": ended " << now << " while waiting for " << phase << ": "
                    << StatusOf(r);
      return std::nullopt;
    }
    if (steady_clock::now() > deadline) {
      ADD_FAILURE() << s.Key() << ": not " << phase << " within " << timeout.count()
                    << " s; status: " << StatusOf(r);
      return std::nullopt;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// The end state of an undisturbed run: Succeeded at revision 1, every environment Succeeded with
// the original images recorded as previous, every Deployment on the new image, patched exactly
// once (generation + 1), and at most one "patched" log line per Deployment across `logs`.
void ExpectCompleted(const Scenario& s, const Json& r, const std::vector<std::string>& logs) {
  EXPECT_EQ(Str(r, "status.phase"), "Succeeded") << StatusOf(r);
  EXPECT_EQ(Int(r, "status.revision"), 1);
  EXPECT_EQ(Int(r, "status.observedGeneration"), Int(r, "metadata.generation"));
  for (const auto& e : s.envs) {
    EXPECT_EQ(EnvPhase(r, e.name), "Succeeded") << e.name;
    for (const auto& name : e.deployments) {
      SCOPED_TRACE(name);
      const Dep& d = s.deps.at(name);
      EXPECT_EQ(PreviousImages(r, e.name, name),
                (std::map<std::string, std::string>{{d.container, d.old_image}}))
          << "previousImages of " << name;
      const Json got = GetDeployment(s, d);
      ASSERT_FALSE(got.is_null());
      EXPECT_EQ(Int(got, "metadata.generation"), d.generation + 1)
          << name << ": patched once per revision means exactly one pod-template change";
      const Json* c = At(got, "spec.template.spec.containers.0");
      ASSERT_NE(c, nullptr);
      EXPECT_EQ(Str(*c, "image"), d.new_image);
      EXPECT_EQ(RevisionAnnotation(got), "1");
      int lines = 0;
      for (const auto& log : logs)
        lines += CountLog(log, kPatchedMsg, "deployment=" + s.ns + "/" + name);
      EXPECT_LE(lines, 1) << name << " was patched " << lines << " times (controller logs)";
    }
  }
}

bool NodesReady() {
  auto nodes = kube::ListAll(*G().client, resources::Nodes(), "", {});
  if (!nodes.ok() || nodes->items.empty()) return false;
  for (const auto& n : nodes->items) {
    const Json* c = Find(n, "status.conditions", "type", "Ready");
    if (c == nullptr || Str(*c, "status") != "True") return false;
  }
  return true;
}

// Runs hack/cluster.sh with `args`; "" or its exit code and output.
std::string ClusterSh(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash", G().cluster_sh};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  const int rc = RunCommand(argv, out);
  std::cout << out << std::flush;
  if (rc == 0) return "";
  return "hack/cluster.sh " + args[0] + " exited " + std::to_string(rc) + ": " + out;
}

// ---- the fixture --------------------------------------------------------------------------------

class HaE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { G().setup_error = SetUpSuite(); }

  static std::string SetUpSuite() {
    Suite& g = G();
    g.kubeconfig = Env("KUBECONFIG");
    g.controller_bin = Env("ROLLGATE_CONTROLLER_BIN");
    g.cluster_sh = Env("ROLLGATE_CLUSTER_SH");
    g.cluster_dir = Env("ROLLGATE_CLUSTER_DIR");
    const std::string crd = Env("ROLLGATE_CRD");
    const std::string kubectl = Env("CONTROL_PLANE_BIN") + "/kubectl";
    if (g.kubeconfig.empty() || g.controller_bin.empty() || crd.empty() ||
        Env("CONTROL_PLANE_BIN").empty()) {
      return "KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD and CONTROL_PLANE_BIN must be set "
             "(ctest sets them)";
    }
    auto cfg = kube::LoadKubeconfig({g.kubeconfig, ""});
    if (!cfg.ok()) return cfg.status().ToString();
    kube::RestClientOptions ro;
    ro.request_timeout = seconds(10);
    auto c = kube::RestClient::FromConfig(*cfg, g.clock, ro);
    if (!c.ok()) return c.status().ToString();
    g.client = std::move(c).value();

    std::random_device rd;
    std::array<char, 8> suffix{};
    std::snprintf(suffix.data(), suffix.size(), "%04x", rd() & 0xffffu);
    g.prefix = "rg-ha-" + std::to_string(::getpid()) + "-" + suffix.data();
    const std::string dir = Env("ROLLGATE_E2E_LOG_DIR");
    g.log_dir = dir.empty() ? std::filesystem::current_path() / ("ha-e2e-logs-" + g.prefix)
                            : std::filesystem::path(dir);
    std::filesystem::create_directories(g.log_dir);
    std::cout << "[ha e2e] namespaces " << g.prefix << "-*, controller logs in "
              << g.log_dir.string() << std::endl;

    std::string out;
    int rc = RunCommand({kubectl, "--kubeconfig", g.kubeconfig, "apply", "--server-side",
                         "--force-conflicts", "--field-manager=rollgate-ha-e2e", "-f", crd},
                        out);
    if (rc != 0) return "kubectl apply of the CRD failed (" + std::to_string(rc) + "): " + out;
    rc = RunCommand({kubectl, "--kubeconfig", g.kubeconfig, "wait", "--for=condition=Established",
                     "--timeout=60s", "crd/containerrollouts.rollgate.io"},
                    out);
    if (rc != 0) return "the CRD did not become Established: " + out;
    return "";
  }

  static void TearDownTestSuite() {
    Suite& g = G();
    if (Env("ROLLGATE_E2E_KEEP_NAMESPACES") == "1" || !g.client) return;
    kube::DeleteOptions d;
    d.propagation_policy = "Background";
    for (const auto& ns : g.namespaces) (void)g.client->Delete(resources::Namespaces(), "", ns, d);
  }

  void SetUp() override { ASSERT_EQ(G().setup_error, "") << "suite setup failed"; }

  void TearDown() override {
    // Whatever happened, the shared cluster must be whole again for the tests that follow.
    if (api_server_stopped_) {
      std::cout << "[ha e2e] starting the API server again (fixture teardown)" << std::endl;
      EXPECT_EQ(ClusterSh({"start-component", G().cluster_dir, "kube-apiserver"}), "");
      api_server_stopped_ = false;
    }
    if (check_nodes_) {
      const auto deadline = steady_clock::now() + seconds(90);
      while (!NodesReady() && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(200));
      }
      EXPECT_TRUE(NodesReady()) << "the cluster's nodes are not all Ready after the test";
    }
    for (auto* c : controllers_) {
      if (c->proc.Running()) {
        c->proc.Signal(SIGKILL);
        (void)c->proc.Wait(seconds(10));
      }
    }
    if (!HasFailure()) return;
    for (auto* c : controllers_) {
      const auto lines = ReadLines(c->log);
      std::cout << "---- last lines of controller " << c->name << " (" << c->log << ") ----\n";
      const size_t from = lines.size() > 60 ? lines.size() - 60 : 0;
      for (size_t i = from; i < lines.size(); ++i) std::cout << lines[i] << '\n';
    }
    std::cout << "---- end ----" << std::endl;
  }

  // A controller whose log is <log dir>/<test>-<name>.log and which TearDown kills if needed.
  Controller& NewController(const std::string& name) {
    owned_.push_back(std::make_unique<Controller>());
    Controller& c = *owned_.back();
    c.name = name;
    c.log = (G().log_dir / (TestName() + "-" + name + ".log")).string();
    controllers_.push_back(&c);
    return c;
  }

  bool api_server_stopped_ = false;
  bool check_nodes_ = false;
  std::vector<std::unique_ptr<Controller>> owned_;
  std::vector<Controller*> controllers_;
};

// ---- 1: leader election: SIGKILL takeover, SIGTERM hand-over ------------------------------------

TEST_F(HaE2E, LeaderElectionFailoverPatchesOnceAndHandsOverOnSigterm) {
  Scenario s = ThreeEnvironments("le", "2s", /*prod_manual=*/true);
  ASSERT_EQ(Provision(s), "");
  const std::vector<std::string> flags = {"--namespace=" + s.ns,
                                          "--leader-elect",
                                          "--leader-election-namespace=" + s.ns,
                                          std::string("--leader-election-id=") + kLeaseName,
                                          "--leader-election-lease-duration=" + Fixed(kLease, 1),
                                          "--leader-election-renew-deadline=" + Fixed(kRenew, 1),
                                          "--leader-election-retry-period=" + Fixed(kRetry, 1)};
  Controller& a = NewController("A");
  Controller& b = NewController("B");
  ASSERT_EQ(StartController(a, flags, true), "");
  ASSERT_EQ(StartController(b, flags, true), "");

  // One of them acquires the Lease.
  Controller* leader = nullptr;
  Controller* standby = nullptr;
  ASSERT_TRUE(WaitFor(s, "a replica to hold the Lease", seconds(30), [&] {
    const std::string h = LeaseHolder(s.ns);
    if (h == a.Identity()) {
      leader = &a;
      standby = &b;
    } else if (h == b.Identity()) {
      leader = &b;
      standby = &a;
    }
    return leader != nullptr;
  }));
  std::cout << "[ha e2e] leader " << leader->name << " (" << leader->Identity() << "), standby "
            << standby->name << " (" << standby->Identity() << ")" << std::endl;

  // Mid rollout: staging patched and waiting for its pods (2 s readiness each). The Lease must
  // stay with the leader the whole time.
  bool lease_stable = true;
  ASSERT_TRUE(WaitFor(s, "staging Verifying", seconds(120), [&] {
    if (LeaseHolder(s.ns) != leader->Identity()) lease_stable = false;
    const Json r = GetRollout(s);
    return EnvPhase(r, "staging") == "Verifying" || Terminal(Str(r, "status.phase"));
  }));
  EXPECT_TRUE(lease_stable) << "the Lease changed hands while both replicas were healthy";
  ASSERT_EQ(EnvPhase(GetRollout(s), "staging"), "Verifying");
  ASSERT_TRUE(a.proc.Running() && b.proc.Running());

  // Exactly one reconciles: only the leader started workers and patched.
  EXPECT_EQ(leader->LeaderGauge(), 1);
  EXPECT_EQ(standby->LeaderGauge(), 0);
  EXPECT_EQ(CountLog(standby->log, kPatchedMsg), 0) << "the standby patched Deployments";
  EXPECT_EQ(CountLog(standby->log, "caches synced"), 0) << "the standby started its workers";
  for (const char* d : {"dev-api", "dev-worker", "staging-api", "staging-worker"}) {
    EXPECT_EQ(CountLog(leader->log, kPatchedMsg, "deployment=" + s.ns + "/" + d), 1) << d;
  }

  // SIGKILL the leader: the standby takes over once the lease has expired, not before.
  const std::string where_killed = Where(s);
  const auto t_kill = steady_clock::now();
  KillController(*leader);
  std::string holder;
  ASSERT_TRUE(WaitFor(
      s, "the standby to take the Lease", seconds(30),
      [&] {
        holder = LeaseHolder(s.ns);
        return holder != leader->Identity() && holder != "(unreadable)";
      },
      milliseconds(20)));
  const double takeover = SecondsSince(t_kill);
  std::cout << "[ha e2e] FIGURE takeover after SIGKILL of the leader: " << Fixed(takeover)
            << " s (lease " << Fixed(kLease, 1) << " s, renew deadline " << Fixed(kRenew, 1)
            << " s, retry " << Fixed(kRetry, 1) << " s; killed at " << where_killed << ")"
            << std::endl;
  ::testing::Test::RecordProperty("takeover_after_sigkill_ms", static_cast<int>(takeover * 1000));
  ASSERT_EQ(holder, standby->Identity());
  EXPECT_GE(takeover, kLease - kRetry - 0.5) << "taken over before the lease could have expired";
  EXPECT_LE(takeover, kLease + 2.0) << "not taken over within the lease duration (+ 2 s slack)";
  Controller& leader2 = *standby;
  // The replacement replica (as a Deployment would start one), started once the standby leads:
  // a candidate that starts while the Lease is orphaned judges its expiry from its own first
  // look, so it could win that race just as well.
  Controller& third = NewController("C");
  ASSERT_EQ(StartController(third, flags, true), "");

  // The new leader finishes staging and holds prod for approval; it re-patches nothing.
  auto r = WaitPhase(s, "AwaitingApproval", seconds(120));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvPhase(*r, "staging"), "Succeeded");
  EXPECT_EQ(CountLog(leader2.log, kPatchedMsg), 0) << "the new leader re-patched a Deployment";
  EXPECT_EQ(CountLog(third.log, kPatchedMsg), 0);

  // SIGTERM the new leader: it releases the Lease; the third replica takes over at once.
  ASSERT_TRUE(WaitFor(s, "the third replica to campaign", seconds(30),
                      [&] { return CountLog(third.log, "campaigning") > 0; }));
  std::this_thread::sleep_for(milliseconds(1500));  // let it observe the current holder
  EXPECT_EQ(leader2.LeaderGauge(), 1);
  EXPECT_EQ(third.LeaderGauge(), 0);
  ASSERT_EQ(LeaseHolder(s.ns), leader2.Identity());
  const auto t_term = steady_clock::now();
  AppendLine(leader2.log, "=== ha e2e: SIGTERM " + leader2.name);
  leader2.proc.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor(
      s, "the third replica to take the Lease", seconds(30),
      [&] { return LeaseHolder(s.ns) == third.Identity(); }, milliseconds(20)));
  const double handover = SecondsSince(t_term);
  const std::optional<int> st = leader2.proc.Wait(seconds(10));
  ASSERT_TRUE(st) << "the SIGTERMed leader did not exit";
  EXPECT_EQ(ChildProcess::Describe(*st), "exit code 0");
  std::cout << "[ha e2e] FIGURE hand-over after SIGTERM of the leader: " << Fixed(handover)
            << " s (lease released on shutdown; retry period " << Fixed(kRetry, 1) << " s)"
            << std::endl;
  ::testing::Test::RecordProperty("handover_after_sigterm_ms", static_cast<int>(handover * 1000));
  EXPECT_LT(handover, 3.0) << "hand-over after SIGTERM should take about a second";
  EXPECT_GE(CountLog(leader2.log, "released the lease"), 1);

  // Promote prod: the third leader patches it and the rollout succeeds.
  auto promoted =
      G().client->Patch(resources::ContainerRollouts(), s.ns, s.rollout, kube::PatchType::kMerge,
                        R"({"metadata":{"annotations":{"rollgate.io/promote":"ha-e2e"}}})", {});
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  r = WaitPhase(s, "Succeeded", seconds(120));
  ASSERT_TRUE(r);
  ExpectCompleted(s, *r, {a.log, b.log, third.log});
  for (const char* d : {"prod-api", "prod-worker"}) {
    EXPECT_EQ(CountLog(third.log, kPatchedMsg, "deployment=" + s.ns + "/" + d), 1) << d;
  }
  auto lease = G().client->Get(resources::Leases(), s.ns, kLeaseName);
  ASSERT_TRUE(lease.ok());
  std::cout << "[ha e2e] lease transitions: " << Int(*lease, "spec.leaseTransitions") << std::endl;
  StopController(third);
}

// ---- 2: API server stopped for 20 s mid rollout -------------------------------------------------

TEST_F(HaE2E, ApiServerDownTwentySecondsMidRolloutCompletesAndCountsWatchRestarts) {
  if (G().cluster_sh.empty() || G().cluster_dir.empty()) {
    GTEST_SKIP()
        << "ROLLGATE_CLUSTER_SH and ROLLGATE_CLUSTER_DIR are needed to stop the API server";
  }
  check_nodes_ = true;
  Scenario s = ThreeEnvironments("outage", "2s", /*prod_manual=*/false);
  ASSERT_EQ(Provision(s), "");
  Controller& c = NewController("A");
  ASSERT_EQ(StartController(c, {"--namespace=" + s.ns}, true), "");

  ASSERT_TRUE(WaitFor(s, "staging Verifying", seconds(120), [&] {
    const Json r = GetRollout(s);
    return EnvPhase(r, "staging") == "Verifying" || Terminal(Str(r, "status.phase"));
  }));
  ASSERT_EQ(EnvPhase(GetRollout(s), "staging"), "Verifying");
  const std::string where_stopped = Where(s);
  double restarts_before = 0;
  if (auto m = c.Metrics()) {
    for (const auto& [l, v] : Samples(*m, "rollgate_watch_restarts_total")) restarts_before += v;
  }

  // Stop the API server; 20 s after the stop began, start it again.
  const auto t_stop = steady_clock::now();
  api_server_stopped_ = true;
  AppendLine(c.log, "=== ha e2e: stopping the API server");
  ASSERT_EQ(ClusterSh({"stop-component", G().cluster_dir, "kube-apiserver"}), "");
  const double stop_took = SecondsSince(t_stop);
  while (SecondsSince(t_stop) < 20.0) {
    ASSERT_TRUE(c.proc.Running()) << "the controller exited while the API server was down";
    std::this_thread::sleep_for(milliseconds(200));
  }
  const double down_for = SecondsSince(t_stop);
  AppendLine(c.log, "=== ha e2e: starting the API server");
  ASSERT_EQ(ClusterSh({"start-component", G().cluster_dir, "kube-apiserver"}), "");
  api_server_stopped_ = false;
  const auto t_ready = steady_clock::now();
  const double outage = SecondsSince(t_stop);
  AppendLine(c.log, "=== ha e2e: the API server is ready again");
  ASSERT_TRUE(c.proc.Running()) << "the controller exited during the outage";

  // Recovery, observed every 50 ms from the moment the API server is ready again: the
  // controller's first write to the rollout, the staging Deployments fully rolled out
  // (kube-controller-manager and kwok resume on their own schedule), staging Succeeded in the
  // rollout's status (the controller's reaction to that), and the whole rollout Succeeded. The
  // resourceVersion is read again now: the stopping API server may still have served requests on
  // open connections during its graceful shutdown.
  const std::string rv_at_ready = Str(GetRollout(s), "metadata.resourceVersion");
  std::optional<double> first_write;
  std::optional<double> staging_available;
  std::optional<double> staging_succeeded;
  auto mark = [&](std::optional<double>& at, bool now) {
    if (!at && now) at = SecondsSince(t_ready);
  };
  std::optional<Json> r;
  const auto deadline = steady_clock::now() + seconds(180);
  while (!r) {
    if (!staging_available) {
      bool all = true;
      for (const char* d : {"staging-api", "staging-worker"}) {
        const Json got = GetDeployment(s, s.deps.at(d));
        all = all && !got.is_null() && Available(got) && RevisionAnnotation(got) == "1";
      }
      mark(staging_available, all);
    }
    const Json now = GetRollout(s);
    const std::string rv = Str(now, "metadata.resourceVersion");
    mark(first_write, !rv.empty() && !rv_at_ready.empty() && rv != rv_at_ready);
    mark(staging_succeeded, EnvPhase(now, "staging") == "Succeeded");
    const std::string phase = Str(now, "status.phase");
    if (phase == "Succeeded") {
      r = now;
    } else if (Terminal(phase) || steady_clock::now() > deadline) {
      FAIL() << s.Key() << ": not Succeeded within 180 s of the API server's return; status "
             << StatusOf(now);
    } else {
      std::this_thread::sleep_for(milliseconds(50));
    }
  }
  const double completed = SecondsSince(t_ready);
  auto secs = [](const std::optional<double>& v) {
    return v ? Fixed(*v) + " s" : std::string("(not seen)");
  };
  std::cout << "[ha e2e] FIGURE API-server outage: stopped at " << where_stopped << "; stop took "
            << Fixed(stop_took) << " s, restart issued " << Fixed(down_for)
            << " s after the stop began, API server ready " << Fixed(outage)
            << " s after the stop began (total outage)" << std::endl;
  std::cout << "[ha e2e] FIGURE recovery after the API server was ready again: the controller's "
               "first rollout write after "
            << secs(first_write)
            << "; staging Deployments rolled out (kube-controller-manager, kwok) after "
            << secs(staging_available) << ", staging Succeeded in the rollout status after "
            << secs(staging_succeeded) << "; rollout Succeeded after " << Fixed(completed) << " s"
            << std::endl;
  if (staging_available && staging_succeeded) {
    std::cout << "[ha e2e] FIGURE controller reaction after the outage (staging rolled out -> "
                 "staging Succeeded): "
              << Fixed(*staging_succeeded - *staging_available) << " s" << std::endl;
  }
  ::testing::Test::RecordProperty("outage_ms", static_cast<int>(outage * 1000));
  ::testing::Test::RecordProperty("recovery_succeeded_ms", static_cast<int>(completed * 1000));
  ExpectCompleted(s, *r, {c.log});

  // Watch restarts are counted.
  auto m = c.Metrics();
  ASSERT_TRUE(m) << "cannot scrape the controller's /metrics on port " << c.metrics_port;
  const auto restarts = Samples(*m, "rollgate_watch_restarts_total");
  double total = 0;
  std::string rendered;
  for (const auto& [labels, v] : restarts) {
    total += v;
    rendered += " " + labels + "=" + Fixed(v, 0);
  }
  std::cout << "[ha e2e] rollgate_watch_restarts_total before the outage "
            << Fixed(restarts_before, 0)
            << ", after:" << (rendered.empty() ? " (no samples)" : rendered) << std::endl;
  EXPECT_GT(total, restarts_before) << "no watch restart counted across the API-server outage";
  bool any_positive = false;
  for (const auto& [labels, v] : restarts) any_positive = any_positive || v > 0;
  EXPECT_TRUE(any_positive);
  EXPECT_TRUE(NodesReady()) << "nodes not Ready after the API server came back";
  StopController(c);
}

// ---- 3: random SIGKILLs across a three-environment rollout --------------------------------------

TEST_F(HaE2E, RandomSigkillLoopEndsInTheCorrectState) {
  constexpr int kKills = 20;
  std::uint64_t seed = 0;
  if (const std::string fixed = Env("ROLLGATE_HA_SEED"); !fixed.empty()) {
    seed = std::strtoull(fixed.c_str(), nullptr, 10);
  } else {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  }
  std::cout << "[ha e2e] random-kill seed " << seed << " (rerun with ROLLGATE_HA_SEED=" << seed
            << ")" << std::endl;
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 700);

  Scenario s = ThreeEnvironments("randkill", "1s", /*prod_manual=*/false);
  ASSERT_EQ(Provision(s), "");
  Controller& c = NewController("A");
  const std::vector<std::string> flags = {"--namespace=" + s.ns};
  std::vector<std::string> kills;
  const auto t0 = steady_clock::now();
  for (int i = 0; i < kKills; ++i) {
    ASSERT_EQ(StartController(c, flags, false), "");
    const int d = delay_ms(rng);
    std::this_thread::sleep_for(milliseconds(d));
    ASSERT_TRUE(c.proc.Running()) << "the controller exited on its own (run " << i + 1 << ")";
    KillController(c);
    kills.push_back("kill " + std::to_string(i + 1) + " after " + std::to_string(d) +
                    " ms: " + Where(s));
  }
  const double loop_s = SecondsSince(t0);
  ASSERT_EQ(StartController(c, flags, false), "");
  auto r = WaitPhase(s, "Succeeded", seconds(180));
  std::cout << "[ha e2e] " << kKills << " SIGKILLs in " << Fixed(loop_s, 1)
            << " s; state the API server showed after each kill:\n";
  for (const auto& k : kills) std::cout << "  " << k << "\n";
  std::cout << "[ha e2e] final run to Succeeded took " << Fixed(SecondsSince(t0) - loop_s, 1)
            << " s" << std::endl;
  ASSERT_TRUE(r);
  ExpectCompleted(s, *r, {c.log});
  StopController(c);
}

}  // namespace
}  // namespace rollgate::e2e
