// Observing, driving and checking a scenario's ContainerRollout and Deployments on the shared
// cluster: reads of their current state and accessors for the fields the tests look at (phases,
// conditions, previous images, the revision annotation), waits for a rollout state with a failure
// that shows the last status, the tests' recurring expectations (a Deployment untouched, or
// patched N times to given images), the rollout's Events, and the annotations and spec changes a
// user would make.
// Thread-safety: single-threaded tests (everything goes through Cluster::Get()).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/support/json.h"
#include "tests/e2e/support/scenario.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {

constexpr const char* kRevisionAnnotation = "rollgate.io/revision";

// ---- reading state ----

// The scenario's rollout, or null when it cannot be read.
Json GetRollout(const Scenario& s);

// The Deployment, or null when it cannot be read.
Json GetDeployment(const Workload& d);

// The object's status, serialized ("(no status)").
std::string StatusOf(const Json& obj);

// status.environments[name=env] of a rollout, or nullptr.
const Json* EnvStatus(const Json& r, const std::string& env);

// A string field of that environment's status ("" when missing).
std::string EnvField(const Json& r, const std::string& env, const char* field);
std::string EnvPhase(const Json& r, const std::string& env);

// A time field of that environment's status (startedAt, finishedAt); the epoch when missing.
std::chrono::system_clock::time_point EnvTime(const Json& r, const std::string& env,
                                              const char* field);

// previousImages recorded for `deployment` in that environment (empty when none).
std::map<std::string, std::string> PreviousImages(const Json& r, const std::string& env,
                                                  const std::string& deployment);

// The Deployment's rollgate.io/revision annotation ("" when none).
std::string RevisionAnnotation(const Json& deployment);

// The Deployment's pod template: container -> image.
std::map<std::string, std::string> ContainerImages(const Json& deployment);

// Fully rolled out: observed, and every replica updated and available.
bool Available(const Json& deployment);

// A phase the rollout does not leave by itself.
bool Terminal(const std::string& phase);

// ---- waiting ----

using Pred = std::function<bool(const Json&)>;

// Whether environment `env` is in `phase`.
Pred EnvPhaseIs(const std::string& env, const std::string& phase);

// Polls the rollout every 100 ms until `pred` holds. On timeout, or when `stop` holds first, adds
// a failure naming `what` with the last status (and the tail of s.log); returns the last object
// read, or nullopt on failure.
std::optional<Json> WaitRollout(const Scenario& s, const std::string& what, const Pred& pred,
                                std::chrono::seconds timeout = std::chrono::seconds(90),
                                const Pred& stop = nullptr);

// Waits for a phase; fails early when the rollout ends in another terminal phase (once `armed`
// holds, when given: e.g. once a retry was taken into account).
std::optional<Json> WaitPhase(const Scenario& s, const std::string& phase,
                              std::chrono::seconds timeout = std::chrono::seconds(90),
                              const Pred& armed = nullptr);

// Polls the rollout for `duration`: `pred` must hold on every read.
void ExpectRolloutStays(const Scenario& s, const std::string& what, const Pred& pred,
                        std::chrono::milliseconds duration);

// Waits (up to 30 s) until the Deployment runs `images` and is fully rolled out.
void WaitDeploymentAvailable(const Workload& d, const std::map<std::string, std::string>& images);

// ---- expectations ----

// Condition `type` has `status`, `reason` (unless "") and the rollout's generation.
void ExpectCondition(const Json& r, const std::string& type, const std::string& status,
                     const std::string& reason);

// The Deployment was never changed: same generation, images, no revision annotation.
void ExpectUntouched(const Workload& d);

// The Deployment's pod template was changed `patches` times since creation (each image patch
// bumps metadata.generation by one) and now runs `images` with revision annotation `revision`.
void ExpectRuns(const Workload& d, const std::map<std::string, std::string>& images, int patches,
                const std::string& revision);

// ---- events ----

// The Events about the scenario's rollout.
std::vector<Json> Events(const Scenario& s);

int CountEvents(const std::vector<Json>& events, const std::string& type,
                const std::string& reason);

// "\n  <type> <reason>: <message>" per event, or " (none)".
std::string RenderEvents(const std::vector<Json>& events);

// Waits (up to 20 s) for an event of that type and reason about the rollout; returns it.
std::optional<Json> WaitEvent(const Scenario& s, const std::string& type,
                              const std::string& reason);

// ---- failure reports ----

// The lines of s.log about the scenario: those naming any of its namespaces, every warning and
// error, and the tests' "=== " markers.
std::vector<std::string> ScenarioLog(const Scenario& s);

// For a failed test: writes ScenarioLog(s) to `path`, prints its last 300 lines and the
// rollout's Events.
void ReportScenario(const Scenario& s, const std::string& path);

// ---- acting as a user ----

// Sets annotation `key` on the rollout (rollgate.io/promote, abort, retry).
void Annotate(const Scenario& s, const std::string& key, const std::string& value);

// Sets spec.images[logical] of the rollout.
void SetImage(const Scenario& s, const std::string& logical, const std::string& image);

}  // namespace rollgate::e2e
