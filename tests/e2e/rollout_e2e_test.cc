// The rollout engine end to end: the real rollgate-controller binary, run as a child process
// (so that it can be SIGKILLed and restarted), against the real local control plane of the e2e
// fixture (kube-apiserver, kube-controller-manager, scheduler, kwok pods). Each test is one
// scenario of the DESIGN's "Rollout semantics" and "Security" sections, in its own namespaces
// (prefix rg-<pid>-<random>), with Deployments of 2 replicas named like the split-image example.
//
// To keep the suite short on a small machine the scenarios that can share a controller are
// provisioned together in SetUpTestSuite (only those selected by --gtest_filter) and progress in
// parallel under one controller (--allowed-registries=registry.example.com); each test then
// drives and checks its own scenario. The kill/restart test stops that controller first (two
// controllers must never act on one rollout) and runs its own, namespace-scoped one.
//
// Needs: KUBECONFIG (the fixture's cluster), ROLLGATE_CONTROLLER_BIN (the controller binary),
// ROLLGATE_CRD (crds/rollgate.io_containerrollouts.yaml), CONTROL_PLANE_BIN (kubectl, for the
// server-side apply of the CRD). Controller logs go to ROLLGATE_E2E_LOG_DIR (default: a
// directory under the working directory); a failing test prints the lines about its scenario.
// Thread-safety: single-threaded tests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"
#include "controller/rollout/codec.h"
#include "tests/e2e/rollout_e2e_support.h"

namespace rollgate::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

namespace resources = kube::resources;

// ---- images ------------------------------------------------------------------------------------

constexpr const char* kBackend1 = "registry.example.com/app/backend:1.9.0";
constexpr const char* kBackend2 = "registry.example.com/app/backend:2.0.0";
constexpr const char* kBackend3 = "registry.example.com/app/backend:3.0.0";
constexpr const char* kWorkerCpu1 = "registry.example.com/app/worker-cpu:1.9.0";
constexpr const char* kWorkerCpu2 = "registry.example.com/app/worker-cpu:2.0.0";
constexpr const char* kWorkerGpu1 = "registry.example.com/app/worker-gpu:1.9.0";
constexpr const char* kWorkerGpu2 = "registry.example.com/app/worker-gpu:2.0.0";
// Pods of an image whose reference contains "never-ready" run but never become Ready
// (hack/cluster/stages/chaos-pod-never-ready.yaml).
constexpr const char* kBackendNeverReady = "registry.example.com/app/backend:2.0.0-never-ready";

constexpr const char* kRevisionAnnotation = "rollgate.io/revision";

// ---- scenario model ----------------------------------------------------------------------------

struct Dep {
  std::string ns;
  std::string name;
  std::map<std::string, std::string> images;  // container -> image it was created with
  std::int64_t generation = 0;                // metadata.generation right after creation
  std::string Key() const { return ns + "/" + name; }
};

struct TargetDef {
  std::string deployment;
  std::map<std::string, std::string> containers;  // container -> logical image
};

struct EnvDef {
  std::string name;
  std::string ns;  // "" = the rollout's namespace
  bool manual = false;
  std::vector<TargetDef> targets;
};

struct Scenario {
  std::string ns;  // the rollout's namespace
  std::string rollout = "app";
  std::map<std::string, std::string> namespaces;  // name -> allow-rollouts-from value ("" none)
  std::map<std::string, Dep> deps;                // by short name ("dev-api")
  Json object;                                    // the ContainerRollout to create
  std::string log;                                // the controller log acting on it
  std::string Key() const { return ns + "/" + rollout; }
};

Json DeploymentObject(const Dep& d) {
  Json containers = Json::array();
  size_t i = 0;
  for (const auto& [c, image] : d.images)
    containers[i++] = Obj({{"name", S(c)}, {"image", S(image)}});
  Json labels = Obj({{"app", S(d.name)}});
  return Obj({{"apiVersion", S("apps/v1")},
              {"kind", S("Deployment")},
              {"metadata", Obj({{"name", S(d.name)}, {"namespace", S(d.ns)}, {"labels", labels}})},
              {"spec", Obj({{"replicas", Json::number(2)},
                            {"selector", Obj({{"matchLabels", labels}})},
                            {"template", Obj({{"metadata", Obj({{"labels", labels}})},
                                              {"spec", Obj({{"containers", containers},
                                                            {"terminationGracePeriodSeconds",
                                                             Json::number(0)}})}})}})}});
}

Json RolloutObject(const Scenario& s, const std::map<std::string, std::string>& images,
                   const std::vector<EnvDef>& envs, int progress_deadline_seconds = 0) {
  Json environments = Json::array();
  size_t i = 0;
  for (const auto& e : envs) {
    Json targets = Json::array();
    size_t j = 0;
    for (const auto& t : e.targets) {
      targets[j++] = Obj({{"deployment", S(t.deployment)}, {"containers", StrObj(t.containers)}});
    }
    Json env = Obj({{"name", S(e.name)}, {"targets", targets}});
    if (!e.ns.empty()) env["namespace"] = S(e.ns);
    if (e.manual) env["approval"] = S("Manual");
    environments[i++] = env;
  }
  Json spec = Obj({{"images", StrObj(images)}, {"environments", environments}});
  if (progress_deadline_seconds > 0) {
    spec["progressDeadlineSeconds"] = Json::number(progress_deadline_seconds);
  }
  return Obj({{"apiVersion", S("rollgate.io/v1alpha1")},
              {"kind", S("ContainerRollout")},
              {"metadata", Obj({{"name", S(s.rollout)}, {"namespace", S(s.ns)}})},
              {"spec", spec}});
}

// ---- suite-wide state --------------------------------------------------------------------------

struct Suite {
  RealClock clock;
  std::unique_ptr<kube::RestClient> client;
  std::string kubeconfig;
  std::string controller_bin;
  std::string prefix;  // of every namespace this run creates
  std::filesystem::path log_dir;
  std::vector<std::string> namespaces;        // created, deleted in TearDownTestSuite
  std::map<std::string, Scenario> scenarios;  // by test name
  std::unique_ptr<ChildProcess> shared;       // the shared controller
  std::string shared_log;
  std::string setup_error;
};

Suite& G() {
  static Suite* s = new Suite();  // never destroyed: outlives every test
  return *s;
}

std::string TestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return info == nullptr ? std::string() : info->name();
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): tests are single-threaded
  return v == nullptr ? std::string() : std::string(v);
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

// Log lines about any of the scenario's namespaces, plus every warning and error.
std::vector<std::string> ScenarioLog(const Scenario& s) {
  std::vector<std::string> out;
  for (const auto& line : ReadLines(s.log)) {
    bool keep = line.find("level=error") != std::string::npos ||
                line.find("level=warning") != std::string::npos || line.rfind("=== ", 0) == 0;
    for (const auto& [ns, label] : s.namespaces) keep = keep || line.find(ns) != std::string::npos;
    if (keep) out.push_back(line);
  }
  return out;
}

// How many times the controller logged that it patched (or restored) this Deployment.
int CountLog(const Scenario& s, const std::string& msg, const std::string& field_value) {
  int n = 0;
  for (const auto& line : ReadLines(s.log)) {
    if (line.find("msg=\"" + msg + "\"") == std::string::npos) continue;
    const size_t at = line.find(field_value);
    if (at == std::string::npos) continue;
    const size_t end = at + field_value.size();
    if (end == line.size() || line[end] == ' ') ++n;
  }
  return n;
}

// ---- API helpers
// ---------------------------------------------------------------------------------

std::string Apply(const std::string& crd) {
  const std::string kubectl = Env("CONTROL_PLANE_BIN") + "/kubectl";
  std::string out;
  int rc = RunCommand({kubectl, "--kubeconfig", G().kubeconfig, "apply", "--server-side",
                       "--force-conflicts", "--field-manager=rollgate-rollout-e2e", "-f", crd},
                      out);
  if (rc != 0) return "kubectl apply of the CRD failed (" + std::to_string(rc) + "): " + out;
  rc = RunCommand({kubectl, "--kubeconfig", G().kubeconfig, "wait", "--for=condition=Established",
                   "--timeout=60s", "crd/containerrollouts.rollgate.io"},
                  out);
  if (rc != 0) return "the CRD did not become Established: " + out;
  return "";
}

bool Available(const Json& d) {
  const std::int64_t want = Int(d, "spec.replicas");
  return Int(d, "status.observedGeneration") >= Int(d, "metadata.generation") &&
         Int(d, "status.updatedReplicas", 0) == want &&
         Int(d, "status.availableReplicas", 0) == want && Int(d, "status.replicas", 0) == want;
}

// Creates the scenarios' namespaces, Deployments (waiting until they are available) and
// rollouts. Returns "" or what failed.
std::string Provision(const std::vector<Scenario*>& scenarios) {
  auto& c = *G().client;
  for (auto* s : scenarios) {
    for (const auto& [ns, allow_from] : s->namespaces) {
      Json obj = Obj({{"apiVersion", S("v1")},
                      {"kind", S("Namespace")},
                      {"metadata", Obj({{"name", S(ns)}})}});
      if (!allow_from.empty()) {
        obj["metadata"]["labels"] = Obj({{"rollgate.io/allow-rollouts-from", S(allow_from)}});
      }
      auto created = c.Create(resources::Namespaces(), "", obj);
      if (!created.ok()) return "create namespace " + ns + ": " + created.status().ToString();
      G().namespaces.push_back(ns);
    }
  }
  // Pods need the namespace's default service account (made by the controller-manager).
  const auto sa_deadline = steady_clock::now() + seconds(60);
  for (auto* s : scenarios) {
    for (const auto& [ns, allow_from] : s->namespaces) {
      while (!c.Get(kube::ResourceType::Core("v1", "serviceaccounts"), ns, "default").ok()) {
        if (steady_clock::now() > sa_deadline) return "no default service account in " + ns;
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }
  for (auto* s : scenarios) {
    for (auto& [short_name, d] : s->deps) {
      auto created = c.Create(resources::Deployments(), d.ns, DeploymentObject(d));
      if (!created.ok()) return "create deployment " + d.Key() + ": " + created.status().ToString();
      d.generation = Int(*created, "metadata.generation");
    }
  }
  const auto deadline = steady_clock::now() + seconds(120);
  for (auto* s : scenarios) {
    for (const auto& [short_name, d] : s->deps) {
      for (;;) {
        auto got = c.Get(resources::Deployments(), d.ns, d.name);
        if (got.ok() && Available(*got)) break;
        if (steady_clock::now() > deadline) {
          return "deployment " + d.Key() + " not available within 120s: " +
                 (got.ok() ? At(*got, "status")->serialize() : got.status().ToString());
        }
        std::this_thread::sleep_for(milliseconds(100));
      }
    }
  }
  for (auto* s : scenarios) {
    if (s->object.is_null()) continue;
    auto created = c.Create(resources::ContainerRollouts(), s->ns, s->object);
    if (!created.ok()) return "create rollout " + s->Key() + ": " + created.status().ToString();
  }
  return "";
}

std::string StartController(ChildProcess& p, const std::string& log,
                            const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {G().controller_bin, "--kubeconfig", G().kubeconfig,
                                   "--log-level=debug"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string line = "=== rollout e2e: starting";
  for (const auto& a : argv) line += " " + a;
  AppendLine(log, line);
  return p.Start(argv, log);
}

// SIGTERM, then the controller must exit with code 0 within 5 s (graceful shutdown).
void StopController(ChildProcess& p, const std::string& log) {
  if (!p.Running()) return;
  AppendLine(log, "=== rollout e2e: SIGTERM");
  p.Signal(SIGTERM);
  const std::optional<int> st = p.Wait(seconds(5));
  if (!st) {
    ADD_FAILURE() << "the controller (pid " << p.pid() << ") did not stop within 5 s of SIGTERM";
    p.Signal(SIGKILL);
    (void)p.Wait(seconds(10));
    return;
  }
  EXPECT_EQ(ChildProcess::Describe(*st), "exit code 0") << "after SIGTERM";
}

void StopSharedController() {
  if (G().shared) StopController(*G().shared, G().shared_log);
  G().shared.reset();
}

// ---- rollout and deployment helpers
// --------------------------------------------------------------

Json GetRollout(const Scenario& s) {
  auto r = G().client->Get(resources::ContainerRollouts(), s.ns, s.rollout);
  return r.ok() ? *r : Json::null();
}

Json GetDeployment(const Dep& d) {
  auto r = G().client->Get(resources::Deployments(), d.ns, d.name);
  return r.ok() ? *r : Json::null();
}

std::string RevisionAnnotation(const Json& deployment) {
  auto annotations = StrMap(deployment, "metadata.annotations");
  auto it = annotations.find(kRevisionAnnotation);
  return it == annotations.end() ? std::string() : it->second;
}

std::map<std::string, std::string> ContainerImages(const Json& deployment) {
  std::map<std::string, std::string> out;
  const Json* cs = At(deployment, "spec.template.spec.containers");
  if (cs == nullptr || !cs->is_array()) return out;
  for (const auto& c : cs->as_array()) out[Str(c, "name")] = Str(c, "image");
  return out;
}

std::string Status(const Json& r) {
  const Json* st = At(r, "status");
  return st == nullptr ? "(no status)" : st->serialize();
}

const Json* EnvStatus(const Json& r, const std::string& env) {
  return Find(r, "status.environments", "name", env);
}

std::string EnvField(const Json& r, const std::string& env, const char* field) {
  const Json* e = EnvStatus(r, env);
  return e == nullptr ? std::string() : Str(*e, field);
}

std::map<std::string, std::string> PreviousImages(const Json& r, const std::string& env,
                                                  const std::string& deployment) {
  const Json* e = EnvStatus(r, env);
  if (e == nullptr) return {};
  const Json* t = Find(*e, "targets", "deployment", deployment);
  return t == nullptr ? std::map<std::string, std::string>{} : StrMap(*t, "previousImages");
}

bool Terminal(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "RolledBack" || phase == "Aborted";
}

using Pred = std::function<bool(const Json&)>;

std::chrono::system_clock::time_point ParseTimeOrEpoch(const std::string& s) {
  return rollout::ParseTime(s).value_or(std::chrono::system_clock::time_point{});
}

// Polls the rollout every 100 ms until `pred` holds. On timeout, or when `stop` holds first, adds
// a failure naming `what` with the last status; returns the last object read.
std::optional<Json> WaitRollout(const Scenario& s, const std::string& what, const Pred& pred,
                                seconds timeout = seconds(90), const Pred& stop = nullptr) {
  const auto deadline = steady_clock::now() + timeout;
  Json last;
  for (;;) {
    last = GetRollout(s);
    if (!last.is_null() && pred(last)) return last;
    if (!last.is_null() && stop && stop(last)) {
      ADD_FAILURE() << s.Key() << ": gave up waiting for " << what
                    << "; the rollout reached a state it will not leave: " << Status(last);
      return std::nullopt;
    }
    if (steady_clock::now() > deadline) {
      ADD_FAILURE() << s.Key() << ": timed out after " << timeout.count() << "s waiting for "
                    << what << "; last status: " << Status(last);
      return std::nullopt;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Waits for a phase; fails early when the rollout ends in another terminal phase (once `armed`
// holds, when given: e.g. once a retry was taken into account).
std::optional<Json> WaitPhase(const Scenario& s, const std::string& phase,
                              seconds timeout = seconds(90), const Pred& armed = nullptr) {
  return WaitRollout(
      s, "phase " + phase, [&](const Json& r) { return Str(r, "status.phase") == phase; }, timeout,
      [&](const Json& r) { return Terminal(Str(r, "status.phase")) && (!armed || armed(r)); });
}

// Polls for `duration`: `pred` must hold on every read.
void ExpectRolloutStays(const Scenario& s, const std::string& what, const Pred& pred,
                        milliseconds duration) {
  const auto end = steady_clock::now() + duration;
  while (steady_clock::now() < end) {
    const Json r = GetRollout(s);
    if (r.is_null() || !pred(r)) {
      ADD_FAILURE() << s.Key() << ": expected " << what << " to hold for " << duration.count()
                    << " ms; status now: " << Status(r);
      return;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

void ExpectCondition(const Json& r, const std::string& type, const std::string& status,
                     const std::string& reason) {
  const Json* c = Find(r, "status.conditions", "type", type);
  ASSERT_NE(c, nullptr) << "no condition " << type << " in " << Status(r);
  EXPECT_EQ(Str(*c, "status"), status) << type << " in " << Status(r);
  if (!reason.empty()) {
    EXPECT_EQ(Str(*c, "reason"), reason) << type << " in " << Status(r);
  }
  EXPECT_EQ(Int(*c, "observedGeneration"), Int(r, "metadata.generation")) << type;
}

// The Deployment was never changed: same generation, images, no revision annotation.
void ExpectUntouched(const Dep& d) {
  const Json got = GetDeployment(d);
  ASSERT_FALSE(got.is_null()) << d.Key();
  EXPECT_EQ(Int(got, "metadata.generation"), d.generation) << d.Key() << " was changed";
  EXPECT_EQ(ContainerImages(got), d.images) << d.Key();
  EXPECT_EQ(RevisionAnnotation(got), "") << d.Key() << " carries a rollgate revision";
}

// The Deployment's pod template was changed `patches` times since creation (each image patch
// bumps metadata.generation by one) and now runs `images` with revision annotation `revision`.
void ExpectRuns(const Dep& d, const std::map<std::string, std::string>& images, int patches,
                const std::string& revision) {
  const Json got = GetDeployment(d);
  ASSERT_FALSE(got.is_null()) << d.Key();
  EXPECT_EQ(Int(got, "metadata.generation"), d.generation + patches)
      << d.Key() << ": pod template changes since creation";
  EXPECT_EQ(ContainerImages(got), images) << d.Key();
  EXPECT_EQ(RevisionAnnotation(got), revision) << d.Key();
}

// Waits (up to 30 s) until the Deployment runs `images` and is fully rolled out.
void WaitDeploymentAvailable(const Dep& d, const std::map<std::string, std::string>& images) {
  const auto deadline = steady_clock::now() + seconds(30);
  Json got;
  while (steady_clock::now() < deadline) {
    got = GetDeployment(d);
    if (!got.is_null() && ContainerImages(got) == images && Available(got)) return;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ADD_FAILURE() << d.Key() << " not available with " << Render(images)
                << " within 30s; status: " << (got.is_null() ? "(none)" : Status(got));
}

std::vector<Json> Events(const Scenario& s) {
  kube::ListOptions lo;
  lo.field_selector = "involvedObject.name=" + s.rollout + ",involvedObject.kind=ContainerRollout";
  auto list = kube::ListAll(*G().client, kube::ResourceType::Core("v1", "events"), s.ns, lo);
  return list.ok() ? list->items : std::vector<Json>{};
}

int CountEvents(const std::vector<Json>& events, const std::string& type,
                const std::string& reason) {
  return static_cast<int>(std::count_if(events.begin(), events.end(), [&](const Json& e) {
    return Str(e, "type") == type && Str(e, "reason") == reason;
  }));
}

std::string RenderEvents(const std::vector<Json>& events) {
  std::string out;
  for (const auto& e : events) {
    out += "\n  " + Str(e, "type") + " " + Str(e, "reason") + ": " + Str(e, "message");
  }
  return out.empty() ? " (none)" : out;
}

// Waits (up to 20 s) for an event of that type and reason about the rollout; returns it.
std::optional<Json> WaitEvent(const Scenario& s, const std::string& type,
                              const std::string& reason) {
  const auto deadline = steady_clock::now() + seconds(20);
  std::vector<Json> events;
  for (;;) {
    events = Events(s);
    for (const auto& e : events) {
      if (Str(e, "type") == type && Str(e, "reason") == reason) return e;
    }
    if (steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ADD_FAILURE() << s.Key() << ": no " << type << " event " << reason
                << "; events:" << RenderEvents(events);
  return std::nullopt;
}

void Annotate(const Scenario& s, const std::string& key, const std::string& value) {
  Json patch = Obj({{"metadata", Obj({{"annotations", Obj({{key, S(value)}})}})}});
  auto r = G().client->Patch(resources::ContainerRollouts(), s.ns, s.rollout,
                             kube::PatchType::kMerge, patch.serialize(), {});
  ASSERT_TRUE(r.ok()) << "annotate " << s.Key() << " " << key << ": " << r.status().ToString();
}

void SetImage(const Scenario& s, const std::string& logical, const std::string& image) {
  Json patch = Obj({{"spec", Obj({{"images", Obj({{logical, S(image)}})}})}});
  auto r = G().client->Patch(resources::ContainerRollouts(), s.ns, s.rollout,
                             kube::PatchType::kMerge, patch.serialize(), {});
  ASSERT_TRUE(r.ok()) << "patch " << s.Key() << " spec.images: " << r.status().ToString();
}

Pred EnvPhaseIs(const std::string& env, const std::string& phase) {
  return [env, phase](const Json& r) { return EnvField(r, env, "phase") == phase; };
}

// ---- scenarios
// -----------------------------------------------------------------------------------

Scenario NewScenario(const std::string& suffix) {
  Scenario s;
  s.ns = G().prefix + "-" + suffix;
  s.namespaces[s.ns] = "";
  s.log = G().shared_log;
  return s;
}

Dep AddDep(Scenario& s, const std::string& short_name, const std::string& ns,
           const std::string& name, std::map<std::string, std::string> images) {
  Dep d{ns, name, std::move(images), 0};
  s.deps[short_name] = d;
  return d;
}

const std::map<std::string, std::string> kNewImages = {
    {"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}, {"worker-gpu", kWorkerGpu2}};

// dev/staging/prod in three namespaces that opt in to rollouts from the rollout's namespace; an
// API Deployment (backend image) and a worker Deployment (CPU worker in dev, GPU worker later).
Scenario HappyScenario() {
  Scenario s = NewScenario("happy");
  std::vector<EnvDef> envs;
  for (const char* env : {"dev", "staging", "prod"}) {
    const std::string ns = s.ns + "-" + env;
    s.namespaces[ns] = s.ns;
    const bool dev = std::string(env) == "dev";
    AddDep(s, std::string(env) + "-api", ns, "api", {{"api", kBackend1}});
    AddDep(s, std::string(env) + "-worker", ns, "worker",
           {{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}});
    envs.push_back({env,
                    ns,
                    false,
                    {{"api", {{"api", "backend"}}},
                     {"worker", {{"worker", dev ? "worker-cpu" : "worker-gpu"}}}}});
  }
  s.object = RolloutObject(s, kNewImages, envs);
  return s;
}

// dev (a CPU worker, healthy) then staging, whose new backend image never becomes ready.
Scenario DeadlineScenario() {
  Scenario s = NewScenario("deadline");
  AddDep(s, "dev-worker", s.ns, "dev-worker", {{"worker", kWorkerCpu1}});
  AddDep(s, "staging-api", s.ns, "staging-api", {{"api", kBackend1}});
  AddDep(s, "staging-worker", s.ns, "staging-worker", {{"worker", kWorkerGpu1}});
  s.object = RolloutObject(
      s,
      {{"backend", kBackendNeverReady}, {"worker-cpu", kWorkerCpu2}, {"worker-gpu", kWorkerGpu2}},
      {{"dev", "", false, {{"dev-worker", {{"worker", "worker-cpu"}}}}},
       {"staging",
        "",
        false,
        {{"staging-api", {{"api", "backend"}}}, {"staging-worker", {{"worker", "worker-gpu"}}}}}},
      30);
  return s;
}

// dev, staging (manual approval: holds there), prod; one API Deployment each.
Scenario RespecScenario() {
  Scenario s = NewScenario("respec");
  std::vector<EnvDef> envs;
  for (const char* env : {"dev", "staging", "prod"}) {
    AddDep(s, std::string(env) + "-api", s.ns, std::string(env) + "-api", {{"api", kBackend1}});
    envs.push_back({env,
                    "",
                    std::string(env) == "staging",
                    {{std::string(env) + "-api", {{"api", "backend"}}}}});
  }
  s.object = RolloutObject(s, {{"backend", kBackend2}}, envs);
  return s;
}

Scenario ApprovalScenario() {
  Scenario s = NewScenario("approval");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  AddDep(s, "staging-api", s.ns, "staging-api", {{"api", kBackend1}});
  s.object = RolloutObject(s, {{"backend", kBackend2}},
                           {{"dev", "", true, {{"dev-api", {{"api", "backend"}}}}},
                            {"staging", "", true, {{"staging-api", {{"api", "backend"}}}}}});
  return s;
}

// One environment whose new backend never becomes ready; the default 600 s deadline keeps it in
// Verifying until the test aborts it.
Scenario AbortScenario() {
  Scenario s = NewScenario("abort");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  AddDep(s, "dev-worker", s.ns, "dev-worker", {{"worker", kWorkerCpu1}});
  s.object = RolloutObject(
      s, {{"backend", kBackendNeverReady}, {"worker-cpu", kWorkerCpu2}},
      {{"dev",
        "",
        false,
        {{"dev-api", {{"api", "backend"}}}, {"dev-worker", {{"worker", "worker-cpu"}}}}}});
  return s;
}

Scenario AbortHeldScenario() {
  Scenario s = NewScenario("abort-held");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(s, {{"backend", kBackend2}},
                           {{"dev", "", true, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// dev targets dev-api and dev-late; dev-late is created by the test after the failure.
Scenario RetryScenario() {
  Scenario s = NewScenario("retry");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(
      s, {{"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}},
      {{"dev",
        "",
        false,
        {{"dev-api", {{"api", "backend"}}}, {"dev-late", {{"worker", "worker-cpu"}}}}}});
  return s;
}

// The target namespace exists but does not carry rollgate.io/allow-rollouts-from.
Scenario OptInScenario() {
  Scenario s = NewScenario("optin");
  const std::string other = s.ns + "-other";
  s.namespaces[other] = "";
  AddDep(s, "api", other, "api", {{"api", kBackend1}});
  s.object = RolloutObject(s, {{"backend", kBackend2}},
                           {{"dev", other, false, {{"api", {{"api", "backend"}}}}}});
  return s;
}

Scenario NoDeploymentScenario() {
  Scenario s = NewScenario("nodeploy");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(
      s, {{"backend", kBackend2}},
      {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}, {"ghost", {{"api", "backend"}}}}}});
  return s;
}

Scenario NoContainerScenario() {
  Scenario s = NewScenario("nocontainer");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(
      s, {{"backend", kBackend2}, {"worker-cpu", kWorkerCpu2}},
      {{"dev", "", false, {{"dev-api", {{"api", "backend"}, {"sidecar", "worker-cpu"}}}}}});
  return s;
}

// An image reference the CRD accepts (any non-empty string) but that is not valid: uppercase
// repository.
Scenario InvalidScenario() {
  Scenario s = NewScenario("invalid");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(s, {{"backend", "registry.example.com/App:1"}},
                           {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// The shared controller runs with --allowed-registries=registry.example.com.
Scenario RegistryScenario() {
  Scenario s = NewScenario("registry");
  AddDep(s, "dev-api", s.ns, "dev-api", {{"api", kBackend1}});
  s.object = RolloutObject(s, {{"backend", "docker.io/library/nginx:1"}},
                           {{"dev", "", false, {{"dev-api", {{"api", "backend"}}}}}});
  return s;
}

// Test name -> the scenario it checks, for the scenarios that share the suite's controller.
const std::vector<std::pair<std::string, std::function<Scenario()>>>& SharedScenarios() {
  static const auto* list = new std::vector<std::pair<std::string, std::function<Scenario()>>>{
      {"ManualApprovalHoldsUntilPromoteAnnotationChanges", ApprovalScenario},
      {"SpecChangeMidRolloutStartsRevisionTwoAtFirstEnvironment", RespecScenario},
      {"AbortDuringNeverReadyEnvironmentRollsBackAndEndsAborted", AbortScenario},
      {"AbortWhileAwaitingApprovalEndsAbortedAndStaysAborted", AbortHeldScenario},
      {"RetryRestartsFailedEnvironment", RetryScenario},
      {"HappyPathAcrossThreeEnvironmentsPatchesEachDeploymentOnce", HappyScenario},
      {"NeverReadyTargetHitsProgressDeadlineAndRollsBack", DeadlineScenario},
      {"CrossNamespaceTargetWithoutOptInFailsUntouched", OptInScenario},
      {"MissingDeploymentFailsBeforeAnyPatch", NoDeploymentScenario},
      {"MissingContainerFailsBeforeAnyPatch", NoContainerScenario},
      {"InvalidImageReferenceIsInvalidSpecWithoutRequeueLoop", InvalidScenario},
      {"ImageFromRegistryNotAllowedFailsUntouched", RegistryScenario},
  };
  return *list;
}

// ---- the fixture
// ---------------------------------------------------------------------------------

class RolloutE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Suite& g = G();
    g.setup_error = SetUpSuite();
  }

  static std::string SetUpSuite() {
    Suite& g = G();
    g.kubeconfig = Env("KUBECONFIG");
    g.controller_bin = Env("ROLLGATE_CONTROLLER_BIN");
    const std::string crd = Env("ROLLGATE_CRD");
    if (g.kubeconfig.empty() || g.controller_bin.empty() || crd.empty() ||
        Env("CONTROL_PLANE_BIN").empty()) {
      return "KUBECONFIG, ROLLGATE_CONTROLLER_BIN, ROLLGATE_CRD and CONTROL_PLANE_BIN must be set "
             "(ctest sets them)";
    }
    auto cfg = kube::LoadKubeconfig({g.kubeconfig, ""});
    if (!cfg.ok()) return cfg.status().ToString();
    auto c = kube::RestClient::FromConfig(*cfg, g.clock, {});
    if (!c.ok()) return c.status().ToString();
    g.client = std::move(c).value();

    std::random_device rd;
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%04x", rd() & 0xffffu);
    g.prefix = "rg-" + std::to_string(::getpid()) + "-" + suffix;
    const std::string dir = Env("ROLLGATE_E2E_LOG_DIR");
    g.log_dir = dir.empty() ? std::filesystem::current_path() / ("rollout-e2e-logs-" + g.prefix)
                            : std::filesystem::path(dir);
    std::filesystem::create_directories(g.log_dir);
    g.shared_log = (g.log_dir / "shared-controller.log").string();
    std::cout << "[rollout e2e] namespaces " << g.prefix << "-*, controller logs in "
              << g.log_dir.string() << std::endl;

    if (std::string err = Apply(crd); !err.empty()) return err;

    // Provision the shared scenarios of the tests that will run, then start their controller.
    std::set<std::string> selected;
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    for (int i = 0; suite != nullptr && i < suite->total_test_count(); ++i) {
      const auto* info = suite->GetTestInfo(i);
      if (info->should_run()) selected.insert(info->name());
    }
    std::vector<Scenario*> to_provision;
    for (const auto& [test, make] : SharedScenarios()) {
      if (suite != nullptr && !selected.contains(test)) continue;
      g.scenarios[test] = make();
      to_provision.push_back(&g.scenarios[test]);
    }
    if (to_provision.empty()) return "";
    const auto t0 = steady_clock::now();
    if (std::string err = Provision(to_provision); !err.empty()) return err;
    g.shared = std::make_unique<ChildProcess>();
    if (std::string err =
            StartController(*g.shared, g.shared_log, {"--allowed-registries=registry.example.com"});
        !err.empty()) {
      return "start the controller: " + err;
    }
    std::cout << "[rollout e2e] " << to_provision.size() << " scenarios provisioned in "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - t0).count()
              << " ms; shared controller pid " << g.shared->pid() << std::endl;
    return "";
  }

  static void TearDownTestSuite() {
    Suite& g = G();
    StopSharedController();
    if (Env("ROLLGATE_E2E_KEEP_NAMESPACES") == "1" || !g.client) return;
    kube::DeleteOptions d;
    d.propagation_policy = "Background";
    for (const auto& ns : g.namespaces) (void)g.client->Delete(resources::Namespaces(), "", ns, d);
  }

  void SetUp() override {
    ASSERT_EQ(G().setup_error, "") << "suite setup failed";
    auto it = G().scenarios.find(TestName());
    if (it != G().scenarios.end()) {
      ASSERT_TRUE(G().shared && G().shared->Running())
          << "the shared controller is not running; see " << G().shared_log;
    }
  }

  void TearDown() override {
    auto it = G().scenarios.find(TestName());
    if (it == G().scenarios.end()) return;
    const Scenario& s = it->second;
    if (G().shared && s.log == G().shared_log) {
      EXPECT_TRUE(G().shared->Running()) << "the shared controller exited; see " << G().shared_log;
    }
    if (!HasFailure()) return;
    const auto lines = ScenarioLog(s);
    const std::string path = (G().log_dir / (TestName() + ".log")).string();
    std::ofstream out(path);
    for (const auto& l : lines) out << l << '\n';
    std::cout << "---- controller log lines about " << s.Key() << " (all of them: " << s.log
              << "; these: " << path << ") ----\n";
    const size_t from = lines.size() > 300 ? lines.size() - 300 : 0;
    for (size_t i = from; i < lines.size(); ++i) std::cout << lines[i] << '\n';
    std::cout << "---- events ----" << RenderEvents(Events(s)) << "\n---- end ----" << std::endl;
  }

  static Scenario& Sc() {
    static Scenario none;
    auto it = G().scenarios.find(TestName());
    if (it == G().scenarios.end()) {
      ADD_FAILURE() << "no scenario provisioned for " << TestName();
      return none;
    }
    return it->second;
  }
};

// ---- 5a: manual approval
// -------------------------------------------------------------------------

TEST_F(RolloutE2E, ManualApprovalHoldsUntilPromoteAnnotationChanges) {
  Scenario& s = Sc();
  auto r = WaitRollout(s, "dev AwaitingApproval", EnvPhaseIs("dev", "AwaitingApproval"));
  ASSERT_TRUE(r);
  EXPECT_EQ(Str(*r, "status.phase"), "AwaitingApproval");
  ExpectCondition(*r, "Progressing", "True", "AwaitingApproval");
  ExpectCondition(*r, "Ready", "False", "");
  ExpectRolloutStays(
      s, "dev held in AwaitingApproval (no promote annotation yet)",
      [](const Json& x) { return EnvField(x, "dev", "phase") == "AwaitingApproval"; }, seconds(2));
  ExpectUntouched(s.deps["dev-api"]);
  WaitEvent(s, "Normal", "AwaitingApproval");

  Annotate(s, "rollgate.io/promote", "first");
  r = WaitRollout(s, "dev Succeeded and staging AwaitingApproval", [](const Json& x) {
    return EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  EXPECT_NE(EnvField(*r, "dev", "approvedAt"), "");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  // The same promote value acts once: staging stays held.
  ExpectRolloutStays(
      s, "staging held while rollgate.io/promote keeps its old value",
      [](const Json& x) { return EnvField(x, "staging", "phase") == "AwaitingApproval"; },
      seconds(2));
  ExpectUntouched(s.deps["staging-api"]);

  Annotate(s, "rollgate.io/promote", "second");
  r = WaitPhase(s, "Succeeded");
  ASSERT_TRUE(r);
  EXPECT_NE(EnvField(*r, "staging", "approvedAt"), "");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend2}}, 1, "1");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  EXPECT_GE(CountEvents(Events(s), "Normal", "Promoted"), 2) << RenderEvents(Events(s));
}

// ---- 4: spec change mid-rollout
// --------------------------------------------------------------------

TEST_F(RolloutE2E, SpecChangeMidRolloutStartsRevisionTwoAtFirstEnvironment) {
  Scenario& s = Sc();
  auto r = WaitRollout(s, "dev Succeeded, staging AwaitingApproval", [](const Json& x) {
    return EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");

  SetImage(s, "backend", kBackend3);
  bool saw_restart_at_dev = false;
  r = WaitRollout(s, "revision 2 held again at staging", [&](const Json& x) {
    if (Int(x, "status.revision") == 2 && Str(x, "status.currentEnvironment") == "dev") {
      saw_restart_at_dev = true;
    }
    return Int(x, "status.revision") == 2 && EnvField(x, "dev", "phase") == "Succeeded" &&
           EnvField(x, "staging", "phase") == "AwaitingApproval";
  });
  ASSERT_TRUE(r);
  std::cout << "[rollout e2e] observed revision 2 at environment dev while polling: "
            << (saw_restart_at_dev ? "yes" : "no (it was faster than the 100 ms poll)")
            << std::endl;
  // Revision 2 redid dev: its previous images are revision 1's images.
  EXPECT_EQ(PreviousImages(*r, "dev", "dev-api"),
            (std::map<std::string, std::string>{{"api", kBackend2}}));
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend3}}, 2, "2");
  ExpectUntouched(s.deps["staging-api"]);
  ExpectUntouched(s.deps["prod-api"]);
  if (auto ev = WaitEvent(s, "Normal", "NewRevision")) {
    EXPECT_NE(Str(*ev, "message").find("revision 2 started at environment dev"), std::string::npos)
        << Str(*ev, "message");
  }

  Annotate(s, "rollgate.io/promote", "rev2");
  r = WaitPhase(s, "Succeeded");
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 2);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend3}}, 2, "2");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend3}}, 1, "2");
  ExpectRuns(s.deps["prod-api"], {{"api", kBackend3}}, 1, "2");
  EXPECT_EQ(PreviousImages(*r, "prod", "prod-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  ExpectCondition(*r, "Ready", "True", "Succeeded");
}

// ---- 5b: abort during a never-ready environment -------------------------------------------------

TEST_F(RolloutE2E, AbortDuringNeverReadyEnvironmentRollsBackAndEndsAborted) {
  Scenario& s = Sc();
  auto r = WaitRollout(s, "dev Verifying (patched, waiting for never-ready pods)",
                       EnvPhaseIs("dev", "Verifying"));
  ASSERT_TRUE(r);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackendNeverReady}}, 1, "1");
  ExpectRolloutStays(s, "dev still Verifying (its new pods never become ready)",
                     EnvPhaseIs("dev", "Verifying"), seconds(2));

  Annotate(s, "rollgate.io/abort", "stop");
  r = WaitPhase(s, "Aborted", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "RolledBack");
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "Aborted");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend1}}, 2, "1-rollback");
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu1}}, 2, "1-rollback");
  WaitDeploymentAvailable(s.deps["dev-api"], {{"api", kBackend1}});
  ExpectCondition(*r, "Ready", "False", "Aborted");
  ExpectCondition(*r, "Degraded", "True", "Aborted");
  WaitEvent(s, "Warning", "Aborted");
  WaitEvent(s, "Normal", "RolledBack");
}

// ---- 5b': abort while an environment awaits approval
// ----------------------------------------------

TEST_F(RolloutE2E, AbortWhileAwaitingApprovalEndsAbortedAndStaysAborted) {
  Scenario& s = Sc();
  ASSERT_TRUE(WaitRollout(s, "dev AwaitingApproval", EnvPhaseIs("dev", "AwaitingApproval")));
  Annotate(s, "rollgate.io/abort", "stop");
  auto r = WaitPhase(s, "Aborted", seconds(30));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "Aborted");
  ExpectCondition(*r, "Degraded", "True", "Aborted");
  ExpectUntouched(s.deps["dev-api"]);
  WaitEvent(s, "Warning", "Aborted");
  // Aborted is terminal: a promote arriving afterwards must not start the environment (only a
  // retry restarts an aborted rollout).
  Annotate(s, "rollgate.io/promote", "late");
  ExpectRolloutStays(
      s, "phase Aborted after a late promote",
      [](const Json& x) { return Str(x, "status.phase") == "Aborted"; }, seconds(3));
  ExpectUntouched(s.deps["dev-api"]);
}

// ---- 5c: retry a failed environment
// ------------------------------------------------------------------

TEST_F(RolloutE2E, RetryRestartsFailedEnvironment) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Failed");
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "DeploymentNotFound");
  EXPECT_EQ(EnvField(*r, "dev", "attempts").size(), 0u);
  ExpectUntouched(s.deps["dev-api"]);

  // Fix the cause, then retry.
  Dep late{s.ns, "dev-late", {{"worker", kWorkerCpu1}}, 0};
  auto created = G().client->Create(resources::Deployments(), late.ns, DeploymentObject(late));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  late.generation = Int(*created, "metadata.generation");
  s.deps["dev-late"] = late;
  WaitDeploymentAvailable(late, late.images);

  Annotate(s, "rollgate.io/retry", "1");
  r = WaitPhase(s, "Succeeded", seconds(90), [](const Json& x) {
    const Json* e = EnvStatus(x, "dev");
    return e != nullptr && Int(*e, "attempts", 0) >= 1;
  });
  ASSERT_TRUE(r);
  const Json* env = EnvStatus(*r, "dev");
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(Int(*env, "attempts", 0), 1) << Status(*r);
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
  ExpectRuns(late, {{"worker", kWorkerCpu2}}, 1, "1");
  EXPECT_EQ(PreviousImages(*r, "dev", "dev-late"),
            (std::map<std::string, std::string>{{"worker", kWorkerCpu1}}));
  WaitEvent(s, "Normal", "Retry");
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectCondition(*r, "Degraded", "False", "");
}

// ---- 1: happy path
// -------------------------------------------------------------------------------------

TEST_F(RolloutE2E, HappyPathAcrossThreeEnvironmentsPatchesEachDeploymentOnce) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Succeeded", seconds(120));
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectCondition(*r, "Progressing", "False", "");
  ExpectCondition(*r, "Degraded", "False", "");
  std::string previous_finish;
  for (const char* env : {"dev", "staging", "prod"}) {
    SCOPED_TRACE(env);
    EXPECT_EQ(EnvField(*r, env, "phase"), "Succeeded");
    const std::string started = EnvField(*r, env, "startedAt");
    const std::string finished = EnvField(*r, env, "finishedAt");
    EXPECT_NE(started, "");
    EXPECT_NE(finished, "");
    // Strictly in order (RFC 3339 UTC strings compare chronologically).
    EXPECT_LE(previous_finish, started) << "an environment started before the previous finished";
    previous_finish = finished;
    const bool dev = std::string(env) == "dev";
    EXPECT_EQ(PreviousImages(*r, env, "api"),
              (std::map<std::string, std::string>{{"api", kBackend1}}));
    EXPECT_EQ(PreviousImages(*r, env, "worker"),
              (std::map<std::string, std::string>{{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}}));
    const Json* t = Find(*EnvStatus(*r, env), "targets", "deployment", "api");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(Int(*t, "updatedReplicas"), 2);
    EXPECT_EQ(Int(*t, "readyReplicas"), 2);
    ExpectRuns(s.deps[std::string(env) + "-api"], {{"api", kBackend2}}, 1, "1");
    ExpectRuns(s.deps[std::string(env) + "-worker"], {{"worker", dev ? kWorkerCpu2 : kWorkerGpu2}},
               1, "1");
    WaitDeploymentAvailable(s.deps[std::string(env) + "-api"], {{"api", kBackend2}});
  }
  for (const auto& [name, d] : s.deps) {
    EXPECT_EQ(CountLog(s, "patched deployment images", "deployment=" + d.Key()), 1) << d.Key();
  }
  WaitEvent(s, "Normal", "RolloutSucceeded");
  const auto events = Events(s);
  EXPECT_EQ(CountEvents(events, "Normal", "RolloutStarted"), 1) << RenderEvents(events);
  EXPECT_EQ(CountEvents(events, "Normal", "EnvironmentStarted"), 3) << RenderEvents(events);
  EXPECT_EQ(CountEvents(events, "Normal", "EnvironmentSucceeded"), 3) << RenderEvents(events);
  for (const auto& e : events) EXPECT_EQ(Str(e, "type"), "Normal") << RenderEvents(events);
}

// ---- 2: a target that never becomes ready
// ---------------------------------------------------------

TEST_F(RolloutE2E, NeverReadyTargetHitsProgressDeadlineAndRollsBack) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "RolledBack", seconds(150));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "Succeeded");
  EXPECT_EQ(EnvField(*r, "staging", "phase"), "RolledBack");
  EXPECT_EQ(EnvField(*r, "staging", "reason"), "ProgressDeadlineExceeded");
  EXPECT_EQ(Str(*r, "status.currentEnvironment"), "staging");
  EXPECT_EQ(PreviousImages(*r, "staging", "staging-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  // The deadline (30 s) passed before the environment failed.
  const auto started = ParseTimeOrEpoch(EnvField(*r, "staging", "startedAt"));
  const auto finished = ParseTimeOrEpoch(EnvField(*r, "staging", "finishedAt"));
  EXPECT_GE(finished - started, seconds(30)) << Status(*r);
  // Earlier environments keep the new images; the failed one is restored.
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu2}}, 1, "1");
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend1}}, 2, "1-rollback");
  ExpectRuns(s.deps["staging-worker"], {{"worker", kWorkerGpu1}}, 2, "1-rollback");
  WaitDeploymentAvailable(s.deps["staging-api"], {{"api", kBackend1}});
  ExpectCondition(*r, "Ready", "False", "RolledBack");
  ExpectCondition(*r, "Degraded", "True", "ProgressDeadlineExceeded");
  WaitEvent(s, "Warning", "ProgressDeadlineExceeded");
  WaitEvent(s, "Warning", "RollingBack");
  WaitEvent(s, "Normal", "RolledBack");

  // Retry restarts the rolled-back environment (attempt 2): previous images recorded again,
  // the never-ready image patched in again. Then abort it, which rolls back again.
  Annotate(s, "rollgate.io/retry", "1");
  r = WaitRollout(s, "staging restarted by the retry", [](const Json& x) {
    const Json* env = EnvStatus(x, "staging");
    return env != nullptr && Int(*env, "attempts", 0) == 1 && Str(*env, "phase") == "Verifying";
  });
  ASSERT_TRUE(r);
  EXPECT_EQ(Str(*r, "status.phase"), "Progressing");
  EXPECT_EQ(EnvField(*r, "dev", "phase"), "Succeeded") << "retry restarts only the failed one";
  EXPECT_EQ(PreviousImages(*r, "staging", "staging-api"),
            (std::map<std::string, std::string>{{"api", kBackend1}}));
  ExpectRuns(s.deps["staging-api"], {{"api", kBackendNeverReady}}, 3, "1");
  ExpectRuns(s.deps["dev-worker"], {{"worker", kWorkerCpu2}}, 1, "1");
  Annotate(s, "rollgate.io/abort", "1");
  r = WaitPhase(s, "Aborted", seconds(60));
  ASSERT_TRUE(r);
  ExpectRuns(s.deps["staging-api"], {{"api", kBackend1}}, 4, "1-rollback");
}

// ---- 6: namespace opt-in
// ------------------------------------------------------------------------------

TEST_F(RolloutE2E, CrossNamespaceTargetWithoutOptInFailsUntouched) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "NamespaceNotPermitted");
  EXPECT_NE(EnvField(*r, "dev", "message").find("rollgate.io/allow-rollouts-from=" + s.ns),
            std::string::npos)
      << EnvField(*r, "dev", "message");
  EXPECT_TRUE(PreviousImages(*r, "dev", "api").empty()) << "nothing may be recorded or changed";
  ExpectUntouched(s.deps["api"]);
  ExpectCondition(*r, "Ready", "False", "Failed");
  ExpectCondition(*r, "Degraded", "True", "NamespaceNotPermitted");
  WaitEvent(s, "Warning", "NamespaceNotPermitted");
}

// ---- 7: missing Deployment / container
// -----------------------------------------------------------

TEST_F(RolloutE2E, MissingDeploymentFailsBeforeAnyPatch) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "DeploymentNotFound");
  EXPECT_NE(EnvField(*r, "dev", "message").find(s.ns + "/ghost"), std::string::npos);
  EXPECT_TRUE(PreviousImages(*r, "dev", "dev-api").empty());
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "DeploymentNotFound");
  WaitEvent(s, "Warning", "DeploymentNotFound");
}

TEST_F(RolloutE2E, MissingContainerFailsBeforeAnyPatch) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "ContainerNotFound");
  EXPECT_NE(EnvField(*r, "dev", "message").find("sidecar"), std::string::npos);
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "ContainerNotFound");
  WaitEvent(s, "Warning", "ContainerNotFound");
}

// ---- 8: what only the controller can check
// -----------------------------------------------------------

TEST_F(RolloutE2E, InvalidImageReferenceIsInvalidSpecWithoutRequeueLoop) {
  Scenario& s = Sc();
  auto r = WaitRollout(s, "Ready=False reason InvalidSpec", [](const Json& x) {
    const Json* c = Find(x, "status.conditions", "type", "Ready");
    return c != nullptr && Str(*c, "reason") == "InvalidSpec";
  });
  ASSERT_TRUE(r);
  ExpectCondition(*r, "Ready", "False", "InvalidSpec");
  EXPECT_NE(Str(*r, "status.message").find("spec.images.backend"), std::string::npos) << Status(*r);
  EXPECT_EQ(Int(*r, "status.observedGeneration"), Int(*r, "metadata.generation"));
  ExpectUntouched(s.deps["dev-api"]);

  // No requeue loop: the object stays exactly as it is and no reconcile fails.
  const std::string rv = Str(*r, "metadata.resourceVersion");
  const int events_before = CountEvents(Events(s), "Warning", "InvalidSpec");
  ExpectRolloutStays(
      s, "resourceVersion " + rv,
      [&](const Json& x) { return Str(x, "metadata.resourceVersion") == rv; }, seconds(5));
  const int events_after = CountEvents(Events(s), "Warning", "InvalidSpec");
  EXPECT_EQ(CountLog(s, "reconcile failed; will retry", "rollout=" + s.Key()), 0);
  EXPECT_EQ(CountLog(s, "reconcile failed; not retrying", "rollout=" + s.Key()), 0);
  // A target's change makes the controller look at the rollout again; the spec is still the same
  // invalid one, so nothing new may be reported (the Warning was already recorded). A label, as
  // a Deployment's metadata.generation also counts annotation changes.
  auto touched = G().client->Patch(resources::Deployments(), s.deps["dev-api"].ns,
                                   s.deps["dev-api"].name, kube::PatchType::kMerge,
                                   R"({"metadata":{"labels":{"e2e.rollgate.io/touch":"1"}}})", {});
  ASSERT_TRUE(touched.ok()) << touched.status().ToString();
  ExpectRolloutStays(
      s, "resourceVersion " + rv + " after a target Deployment changed",
      [&](const Json& x) { return Str(x, "metadata.resourceVersion") == rv; }, seconds(2));
  const auto events = Events(s);
  std::cout << "[rollout e2e] InvalidSpec events recorded: before the 5 s window " << events_before
            << ", after it " << events_after << ", after a target changed "
            << CountEvents(events, "Warning", "InvalidSpec") << std::endl;
  EXPECT_EQ(CountEvents(events, "Warning", "InvalidSpec"), 1)
      << "one invalid spec, one InvalidSpec event: the controller re-records the Warning on "
         "every reconcile of an unchanged invalid spec"
      << RenderEvents(events);

  // Fixing the spec starts revision 1.
  SetImage(s, "backend", kBackend2);
  r = WaitRollout(s, "phase Succeeded after the fix",
                  [](const Json& x) { return Str(x, "status.phase") == "Succeeded"; });
  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  ExpectRuns(s.deps["dev-api"], {{"api", kBackend2}}, 1, "1");
}

// ---- 9: --allowed-registries
// -------------------------------------------------------------------------

TEST_F(RolloutE2E, ImageFromRegistryNotAllowedFailsUntouched) {
  Scenario& s = Sc();
  auto r = WaitPhase(s, "Failed", seconds(60));
  ASSERT_TRUE(r);
  EXPECT_EQ(EnvField(*r, "dev", "reason"), "ImageNotAllowed");
  const std::string msg = EnvField(*r, "dev", "message");
  EXPECT_NE(msg.find("docker.io"), std::string::npos) << msg;
  EXPECT_NE(msg.find("registry.example.com"), std::string::npos) << msg;
  ExpectUntouched(s.deps["dev-api"]);
  ExpectCondition(*r, "Degraded", "True", "ImageNotAllowed");
  WaitEvent(s, "Warning", "ImageNotAllowed");
}

// ---- 3: SIGKILL between the status write and the patch, and after the patch
// ---------------------------

// What the API shows about one environment of the kill scenario.
struct KillState {
  int env_index = -1;     // of status.currentEnvironment
  std::string env_phase;  // of the environment watched
  bool previous = false;  // previousImages recorded for every target of it
  int patched = 0;        // its Deployments carrying rollgate.io/revision=1
  std::string Describe(int targets) const {
    std::string out = "environment phase " + (env_phase.empty() ? "(none)" : env_phase) +
                      ", previousImages " + (previous ? "recorded" : "absent") + ", " +
                      std::to_string(patched) + "/" + std::to_string(targets) + " patched";
    if (env_phase == "Updating" && previous && patched == 0) {
      out = "A (after the status write, before any patch): " + out;
    } else if (env_phase == "Updating" && patched > 0 && patched < targets) {
      out = "B (between two patches): " + out;
    } else if (env_phase == "Updating" && patched == targets) {
      out = "C (after the patches, before the status write): " + out;
    }
    return out;
  }
};

TEST_F(RolloutE2E, KilledBetweenStatusWriteAndPatchAndAfterPatchPatchesOnce) {
  // Two controllers must never act on one rollout: this test runs its own.
  StopSharedController();
  Scenario s = NewScenario("kill");
  s.log = (G().log_dir / "kill-restart-controller.log").string();
  const std::vector<std::string> envs = {"dev", "staging", "prod"};
  std::vector<EnvDef> env_defs;
  for (const auto& env : envs) {
    const bool dev = env == "dev";
    AddDep(s, env + "-api", s.ns, env + "-api", {{"api", kBackend1}});
    AddDep(s, env + "-worker", s.ns, env + "-worker",
           {{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}});
    env_defs.push_back({env,
                        "",
                        false,
                        {{env + "-api", {{"api", "backend"}}},
                         {env + "-worker", {{"worker", dev ? "worker-cpu" : "worker-gpu"}}}}});
  }
  s.object = RolloutObject(s, kNewImages, env_defs);
  G().scenarios[TestName()] = s;  // for the log extract on failure
  ASSERT_EQ(Provision({&G().scenarios[TestName()]}), "");
  s = G().scenarios[TestName()];

  // A slow API budget (4 requests/s, no burst) spaces the controller's writes ~250 ms apart, so
  // the test can see each instant through the API and SIGKILL the controller right there.
  const std::vector<std::string> flags = {"--namespace=" + s.ns, "--kube-qps=4", "--kube-burst=1"};
  ChildProcess ctl;
  int runs = 0;
  auto ensure_running = [&]() {
    if (ctl.Running()) return;
    ASSERT_EQ(StartController(ctl, s.log, flags), "");
    ++runs;
  };
  auto observe = [&](size_t env_index) {
    KillState st;
    const Json r = GetRollout(s);
    const std::string current = Str(r, "status.currentEnvironment");
    for (size_t i = 0; i < envs.size(); ++i) {
      if (envs[i] == current) st.env_index = static_cast<int>(i);
    }
    const std::string& env = envs[env_index];
    st.env_phase = EnvField(r, env, "phase");
    st.previous = !PreviousImages(r, env, env + "-api").empty() &&
                  !PreviousImages(r, env, env + "-worker").empty();
    for (const char* kind : {"-api", "-worker"}) {
      const Json d = GetDeployment(s.deps[env + kind]);
      if (RevisionAnnotation(d) == "1") ++st.patched;
    }
    return st;
  };

  std::vector<std::string> hits;
  std::vector<std::string> missed;
  int hit_a = 0;
  int hit_after_patch = 0;
  for (size_t e = 0; e < envs.size(); ++e) {
    for (int want_patched = 0; want_patched <= 2; ++want_patched) {
      ensure_running();
      const std::string target =
          envs[e] + ": Updating with " + std::to_string(want_patched) + "/2 patched";
      const auto deadline = steady_clock::now() + seconds(60);
      bool killed = false;
      bool passed = false;
      while (!killed && !passed && steady_clock::now() < deadline) {
        const KillState st = observe(e);
        if (st.env_phase == "Updating" && st.previous && st.patched == want_patched) {
          ctl.Signal(SIGKILL);
          const auto ws = ctl.Wait(seconds(10));
          ASSERT_TRUE(ws) << "the controller survived SIGKILL";
          AppendLine(s.log, "=== rollout e2e: SIGKILL (" + target + ")");
          killed = true;
        } else if (st.env_index > static_cast<int>(e) ||
                   (st.env_phase != "" && st.env_phase != "Pending" &&
                    st.env_phase != "Updating") ||
                   (st.env_phase == "Updating" && st.patched > want_patched)) {
          passed = true;
        }
        ASSERT_TRUE(killed || ctl.Running()) << "the controller exited on its own; see " << s.log;
      }
      if (!killed) {
        missed.push_back(target + (passed ? " (went past it)" : " (timed out)"));
        continue;
      }
      // The state the controller was killed in, as the API server has it.
      const KillState after = observe(e);
      const std::string what = envs[e] + ": " + after.Describe(2);
      hits.push_back(what);
      if (what.find(": A (") != std::string::npos) ++hit_a;
      if (what.find(": B (") != std::string::npos || what.find(": C (") != std::string::npos) {
        ++hit_after_patch;
      }
    }
  }
  ensure_running();
  auto r = WaitPhase(s, "Succeeded", seconds(120));
  StopController(ctl, s.log);

  std::cout << "[rollout e2e] controller runs: " << runs << "; SIGKILL instants hit:\n";
  for (const auto& h : hits) std::cout << "  " << h << "\n";
  for (const auto& m : missed) std::cout << "  missed " << m << "\n";
  std::cout << std::flush;
  ::testing::Test::RecordProperty("controller_runs", runs);
  ::testing::Test::RecordProperty("kills", static_cast<int>(hits.size()));
  EXPECT_GE(hit_a, 1) << "never killed between the status write and the patch";
  EXPECT_GE(hit_after_patch, 1) << "never killed after a patch";

  ASSERT_TRUE(r);
  EXPECT_EQ(Int(*r, "status.revision"), 1);
  ExpectCondition(*r, "Ready", "True", "Succeeded");
  for (const auto& env : envs) {
    SCOPED_TRACE(env);
    const bool dev = env == "dev";
    EXPECT_EQ(EnvField(*r, env, "phase"), "Succeeded");
    EXPECT_EQ(PreviousImages(*r, env, env + "-api"),
              (std::map<std::string, std::string>{{"api", kBackend1}}));
    EXPECT_EQ(PreviousImages(*r, env, env + "-worker"),
              (std::map<std::string, std::string>{{"worker", dev ? kWorkerCpu1 : kWorkerGpu1}}));
    ExpectRuns(s.deps[env + "-api"], {{"api", kBackend2}}, 1, "1");
    ExpectRuns(s.deps[env + "-worker"], {{"worker", dev ? kWorkerCpu2 : kWorkerGpu2}}, 1, "1");
  }
  // A second, identical patch would not bump the generation: count the patches in the log too
  // (0 when the kill came after the API server applied a patch but before the line was written).
  for (const auto& [name, d] : s.deps) {
    EXPECT_LE(CountLog(s, "patched deployment images", "deployment=" + d.Key()), 1) << d.Key();
  }
}

}  // namespace
}  // namespace rollgate::e2e
