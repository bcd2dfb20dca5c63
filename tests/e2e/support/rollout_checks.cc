#include "tests/e2e/support/rollout_checks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include "controller/api/codec.h"
#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/log_reader.h"

namespace rollgate::e2e {

namespace resources = kube::resources;

namespace {

kube::RestClient& Client() { return Cluster::Get().client(); }

// The tail of the controller log acting on the scenario, for wait failures ("" when unknown).
std::string LogTail(const Scenario& s) { return s.log.empty() ? "" : "\n" + Tail(s.log, 20); }

}  // namespace

Json GetRollout(const Scenario& s) {
  auto r = Client().Get(resources::ContainerRollouts(), s.ns, s.rollout);
  return r.ok() ? *r : Json::null();
}

Json GetDeployment(const Workload& d) {
  auto r = Client().Get(resources::Deployments(), d.ns, d.name);
  return r.ok() ? *r : Json::null();
}

std::string StatusOf(const Json& obj) {
  const Json* st = At(obj, "status");
  return st == nullptr ? "(no status)" : st->serialize();
}

const Json* EnvStatus(const Json& r, const std::string& env) {
  return Find(r, "status.environments", "name", env);
}

std::string EnvField(const Json& r, const std::string& env, const char* field) {
  const Json* e = EnvStatus(r, env);
  return e == nullptr ? std::string() : Str(*e, field);
}

std::string EnvPhase(const Json& r, const std::string& env) { return EnvField(r, env, "phase"); }

std::chrono::system_clock::time_point EnvTime(const Json& r, const std::string& env,
                                              const char* field) {
  return api::ParseTime(EnvField(r, env, field)).value_or(std::chrono::system_clock::time_point{});
}

std::map<std::string, std::string> PreviousImages(const Json& r, const std::string& env,
                                                  const std::string& deployment) {
  const Json* e = EnvStatus(r, env);
  if (e == nullptr) return {};
  const Json* t = Find(*e, "targets", "deployment", deployment);
  return t == nullptr ? std::map<std::string, std::string>{} : StrMap(*t, "previousImages");
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

bool Available(const Json& deployment) {
  const std::int64_t want = Int(deployment, "spec.replicas");
  return Int(deployment, "status.observedGeneration") >= Int(deployment, "metadata.generation") &&
         Int(deployment, "status.updatedReplicas", 0) == want &&
         Int(deployment, "status.availableReplicas", 0) == want &&
         Int(deployment, "status.replicas", 0) == want;
}

bool Terminal(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "RolledBack" || phase == "Aborted";
}

Pred EnvPhaseIs(const std::string& env, const std::string& phase) {
  return [env, phase](const Json& r) { return EnvField(r, env, "phase") == phase; };
}

std::optional<Json> WaitRollout(const Scenario& s, const std::string& what, const Pred& pred,
                                std::chrono::seconds timeout, const Pred& stop) {
  const auto deadline = steady_clock::now() + timeout;
  Json last;
  for (;;) {
    last = GetRollout(s);
    if (!last.is_null() && pred(last)) return last;
    if (!last.is_null() && stop && stop(last)) {
      ADD_FAILURE() << s.Key() << ": gave up waiting for " << what
                    << "; the rollout reached a state it will not leave: " << StatusOf(last)
                    << LogTail(s);
      return std::nullopt;
    }
    if (steady_clock::now() > deadline) {
      ADD_FAILURE() << s.Key() << ": timed out after " << timeout.count() << "s waiting for "
                    << what << "; last status: " << StatusOf(last) << LogTail(s);
      return std::nullopt;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

std::optional<Json> WaitPhase(const Scenario& s, const std::string& phase,
                              std::chrono::seconds timeout, const Pred& armed) {
  return WaitRollout(
      s, "phase " + phase, [&](const Json& r) { return Str(r, "status.phase") == phase; }, timeout,
      [&](const Json& r) { return Terminal(Str(r, "status.phase")) && (!armed || armed(r)); });
}

void ExpectRolloutStays(const Scenario& s, const std::string& what, const Pred& pred,
                        std::chrono::milliseconds duration) {
  Json r;
  ExpectHoldsFor(
      s.Key() + ": " + what, duration,
      [&] {
        r = GetRollout(s);
        return !r.is_null() && pred(r);
      },
      [&] { return "status now: " + StatusOf(r); });
}

void WaitDeploymentAvailable(const Workload& d, const std::map<std::string, std::string>& images) {
  const auto deadline = steady_clock::now() + seconds(30);
  Json got;
  while (steady_clock::now() < deadline) {
    got = GetDeployment(d);
    if (!got.is_null() && ContainerImages(got) == images && Available(got)) return;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ADD_FAILURE() << d.Key() << " not available with " << Render(images)
                << " within 30s; status: " << (got.is_null() ? "(none)" : StatusOf(got));
}

void ExpectCondition(const Json& r, const std::string& type, const std::string& status,
                     const std::string& reason) {
  const Json* c = Find(r, "status.conditions", "type", type);
  ASSERT_NE(c, nullptr) << "no condition " << type << " in " << StatusOf(r);
  EXPECT_EQ(Str(*c, "status"), status) << type << " in " << StatusOf(r);
  if (!reason.empty()) {
    EXPECT_EQ(Str(*c, "reason"), reason) << type << " in " << StatusOf(r);
  }
  EXPECT_EQ(Int(*c, "observedGeneration"), Int(r, "metadata.generation")) << type;
}

void ExpectUntouched(const Workload& d) {
  const Json got = GetDeployment(d);
  ASSERT_FALSE(got.is_null()) << d.Key();
  EXPECT_EQ(Int(got, "metadata.generation"), d.generation) << d.Key() << " was changed";
  EXPECT_EQ(ContainerImages(got), d.images) << d.Key();
  EXPECT_EQ(RevisionAnnotation(got), "") << d.Key() << " carries a rollgate revision";
}

void ExpectRuns(const Workload& d, const std::map<std::string, std::string>& images, int patches,
                const std::string& revision) {
  const Json got = GetDeployment(d);
  ASSERT_FALSE(got.is_null()) << d.Key();
  EXPECT_EQ(Int(got, "metadata.generation"), d.generation + patches)
      << d.Key() << ": pod template changes since creation";
  EXPECT_EQ(ContainerImages(got), images) << d.Key();
  EXPECT_EQ(RevisionAnnotation(got), revision) << d.Key();
}

std::vector<Json> Events(const Scenario& s) {
  kube::ListOptions lo;
  lo.field_selector = "involvedObject.name=" + s.rollout + ",involvedObject.kind=ContainerRollout";
  auto list = kube::ListAll(Client(), kube::ResourceType::Core("v1", "events"), s.ns, lo);
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

std::vector<std::string> ScenarioLog(const Scenario& s) {
  std::vector<std::string> out;
  for (const auto& line : ReadLines(s.log)) {
    const std::optional<LogRecord> r = ParseLogLine(line);
    bool keep = (r && (r->level == "error" || r->level == "warning")) ||
                line.find("level=error") != std::string::npos ||
                line.find("level=warning") != std::string::npos || line.rfind("=== ", 0) == 0;
    for (const auto& [ns, label] : s.namespaces) keep = keep || line.find(ns) != std::string::npos;
    if (keep) out.push_back(line);
  }
  return out;
}

void ReportScenario(const Scenario& s, const std::string& path) {
  const auto lines = ScenarioLog(s);
  std::ofstream out(path);
  for (const auto& l : lines) out << l << '\n';
  std::cout << "---- controller log lines about " << s.Key() << " (all of them: " << s.log
            << "; these: " << path << ") ----\n";
  const size_t from = lines.size() > 300 ? lines.size() - 300 : 0;
  for (size_t i = from; i < lines.size(); ++i) std::cout << lines[i] << '\n';
  std::cout << "---- events ----" << RenderEvents(Events(s)) << "\n---- end ----" << std::endl;
}

void Annotate(const Scenario& s, const std::string& key, const std::string& value) {
  Json patch = Obj({{"metadata", Obj({{"annotations", Obj({{key, S(value)}})}})}});
  auto r = Client().Patch(resources::ContainerRollouts(), s.ns, s.rollout, kube::PatchType::kMerge,
                          patch.serialize(), {});
  ASSERT_TRUE(r.ok()) << "annotate " << s.Key() << " " << key << ": " << r.status().ToString();
}

void SetImage(const Scenario& s, const std::string& logical, const std::string& image) {
  Json patch = Obj({{"spec", Obj({{"images", Obj({{logical, S(image)}})}})}});
  auto r = Client().Patch(resources::ContainerRollouts(), s.ns, s.rollout, kube::PatchType::kMerge,
                          patch.serialize(), {});
  ASSERT_TRUE(r.ok()) << "patch " << s.Key() << " spec.images: " << r.status().ToString();
}

}  // namespace rollgate::e2e
