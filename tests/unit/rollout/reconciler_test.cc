// The reconciler against a recording fake KubeClient and map-backed caches: the order of its
// writes (previous images before any patch; patches before the status that leaves Updating),
// error handling (a failed patch writes no status; a status conflict records no events), the
// overlay of its own writes while the caches lag, live confirmation of cache misses, and
// analysis samples taken off the reconcile (AnalysisRunner) and used on a later one.
#include "controller/rollout/reconciler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/api/codec.h"
#include "tests/fakes/base64.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_pods.h"
#include "tests/fakes/map_lister.h"
#include "tests/fakes/test_certs.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::rollout {
namespace {

using kube::Json;

using rollgate::testing::MapLister;

// Holds Deployments and rollouts by key; records every write; errors can be injected.
// Thread-safety: Get may be called concurrently (the write guard's reads of a round are); the
// other calls, and the test's reads of the fields, come from one thread while no Get runs.
class RecordingClient : public testing::UnimplementedClient {
 public:
  std::map<std::string, Json> objects;       // "ns/name" (deployments and rollouts share the space)
  std::vector<std::string> actions;          // "patch ns/name", "status ns/name", "get ns/name"
  std::map<std::string, Status> get_errors;  // by "ns/name": what a Get of it answers instead
  // Groups of Gets that must be in flight at the same time: each Get of the next group (its size
  // the front entry) waits until the whole group has arrived, for at most 5 s; a group that does
  // not come together in that time (the reads are sequential) is counted in `apart` and let go.
  std::vector<int> together;
  int apart = 0;
  std::string last_patch;  // the body of the last patch
  std::optional<Status> patch_error;
  std::optional<Status> status_error;
  std::vector<Status> status_errors;  // consumed one per status write (Ok: accepted)
  std::vector<Json> status_bodies;    // every status write's object, in order
  int version = 100;

  Result<Json> Get(const kube::ResourceType& rt, const std::string& ns,
                   const std::string& name) override {
    {
      std::unique_lock<std::mutex> lock(get_mu_);
      actions.push_back("get " + rt.resource + " " + ns + "/" + name);
      Gather(lock);
    }
    if (auto err = get_errors.find(ns + "/" + name); err != get_errors.end()) return err->second;
    auto it = objects.find(ns + "/" + name);
    if (it == objects.end()) return Status(StatusCode::kNotFound, name + " not found");
    return it->second;
  }
  Result<Json> Patch(const kube::ResourceType&, const std::string& ns, const std::string& name,
                     kube::PatchType, const std::string& body, const kube::PatchOptions&) override {
    actions.push_back("patch " + ns + "/" + name);
    last_patch = body;
    if (patch_error) return *patch_error;
    Json& d = objects.at(ns + "/" + name);
    const Json p = Json::parse(body);
    for (const auto& c : p.at("spec").at("template").at("spec").at("containers").as_array()) {
      for (auto& dc : d["spec"]["template"]["spec"]["containers"].as_array()) {
        if (dc.at("name").as_string() == c.at("name").as_string()) dc["image"] = c.at("image");
      }
    }
    d["metadata"]["annotations"]["rollgate.io/revision"] =
        p.at("metadata").at("annotations").at("rollgate.io/revision");
    d["metadata"]["generation"] = Json::number(d.at("metadata").at("generation").as_integer() + 1);
    d["metadata"]["resourceVersion"] = Json::string(std::to_string(++version));
    return d;
  }
  Result<Json> UpdateStatus(const kube::ResourceType&, const std::string& ns,
                            const Json& obj) override {
    const std::string key = ns + "/" + kube::MetaString(obj, "name");
    actions.push_back("status " + key);
    status_bodies.push_back(obj);
    if (!status_errors.empty()) {
      Status err = status_errors.front();
      status_errors.erase(status_errors.begin());
      if (!err.ok()) return err;  // an Ok entry lets this write through
    }
    if (status_error) return *status_error;
    Json stored = obj;
    stored["metadata"]["resourceVersion"] = Json::string(std::to_string(++version));
    objects[key] = stored;
    return stored;
  }
  // Pods, listed by the pod-health gate: the list's options are recorded in the action.
  std::vector<Json> pods;
  std::optional<Status> list_error;
  Result<kube::ObjectList> List(const kube::ResourceType& rt, const std::string& ns,
                                const kube::ListOptions& opts) override {
    actions.push_back("list " + rt.resource + " " + ns + " selector=" + opts.label_selector +
                      " rv=" + opts.resource_version);
    if (list_error) return *list_error;
    kube::ObjectList out;
    out.items = pods;
    return out;
  }
  // Creates are recorded with the object's name; a Job is stored (Get finds it afterwards).
  Result<Json> Create(const kube::ResourceType& rt, const std::string& ns,
                      const Json& obj) override {
    const std::string name = kube::MetaString(obj, "name");
    actions.push_back("create " + rt.resource + " " + ns + "/" + name);
    if (rt.resource != "jobs") return obj;
    if (objects.contains(ns + "/" + name)) {
      return Status(StatusCode::kAlreadyExists, name + " already exists");
    }
    Json stored = obj;
    stored["metadata"]["uid"] = Json::string("job-uid-" + std::to_string(++version));
    objects[ns + "/" + name] = stored;
    return stored;
  }
  Status Delete(const kube::ResourceType& rt, const std::string& ns, const std::string& name,
                const kube::DeleteOptions& opts) override {
    actions.push_back("delete " + rt.resource + " " + ns + "/" + name +
                      " uid=" + opts.precondition_uid + " " + opts.propagation_policy);
    objects.erase(ns + "/" + name);
    return Status::Ok();
  }
  int Count(const std::string& prefix) const {
    int n = 0;
    for (const auto& a : actions) n += a.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }

 private:
  void Gather(std::unique_lock<std::mutex>& lock) {
    if (together.empty()) return;
    const std::uint64_t group = group_;
    if (++arrived_ < together.front()) {
      if (gathered_.wait_for(lock, std::chrono::seconds(5), [&] { return group_ != group; })) {
        return;
      }
      ++apart;  // timed out: the rest of the group is not coming while this Get waits
    }
    together.erase(together.begin());
    arrived_ = 0;
    ++group_;
    gathered_.notify_all();
  }

  std::mutex get_mu_;
  std::condition_variable gathered_;
  std::uint64_t group_ = 0;  // the groups done so far
  int arrived_ = 0;          // the Gets of the current group so far
};

class RecordingEvents : public kube::EventRecorder {
 public:
  std::vector<std::string> reasons;
  void Record(const kube::ObjectReference&, const std::string&, const std::string& reason,
              const std::string&) override {
    reasons.push_back(reason);
  }
};

Json DeploymentJson(const std::string& image, int rv) {
  return Json::parse(
      R"({"metadata":{"namespace":"app","name":"api","generation":1,"resourceVersion":")" +
      std::to_string(rv) +
      R"("},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"api"}},"template":{"spec":)"
      R"({"containers":[{"name":"api","image":")" +
      image +
      R"("}]}}},"status":{"observedGeneration":1,"replicas":2,"updatedReplicas":2,)"
      R"("readyReplicas":2,"availableReplicas":2}})");
}

Json RolloutJson() {
  return Json::parse(
      R"({"apiVersion":"rollgate.io/v1alpha1","kind":"ContainerRollout","metadata":{"namespace":)"
      R"("app","name":"r","uid":"u1","generation":1,"resourceVersion":"10"},"spec":{"images":)"
      R"({"backend":"registry.example.com/api:2"},"environments":[{"name":"dev","targets":[)"
      R"({"deployment":"api","containers":{"api":"backend"}}]}]}})");
}

struct Harness {
  testing::FakeClock clock;
  RecordingClient client;
  MapLister rollouts;
  MapLister deployments;
  MapLister namespaces;
  RecordingEvents events;
  std::unique_ptr<Reconciler> reconciler;

  Harness() {
    client.objects["app/api"] = DeploymentJson("registry.example.com/api:1", 5);
    client.objects["app/r"] = RolloutJson();
    rollouts.Put(RolloutJson());
    deployments.Put(DeploymentJson("registry.example.com/api:1", 5));
    reconciler = std::make_unique<Reconciler>(client, clock, rollouts, deployments, namespaces,
                                              nullptr, nullptr, events, ReconcilerOptions{});
  }
  // The watch catches up: caches see what the fake API server holds.
  void SyncCaches() {
    rollouts.Put(client.objects.at("app/r"));
    deployments.Put(client.objects.at("app/api"));
  }
  // The environment enters Updating (previous images written) but its patch fails once, so the
  // rollout waits, unpatched, in Updating; the caches catch up and the actions are forgotten.
  void StartUpdating() {
    client.patch_error = Status(StatusCode::kUnavailable, "apiserver restarting");
    (void)reconciler->Reconcile("app/r");
    client.patch_error.reset();
    SyncCaches();
    client.actions.clear();
  }
  std::string Phase() const {
    auto r = api::DecodeRollout(client.objects.at("app/r"));
    return r.ok() ? api::PhaseName(r->status.environments.at(0).phase) : "";
  }
  // "reason: message" of the first environment, as the fake API server holds it.
  std::string Verdict() const {
    auto r = api::DecodeRollout(client.objects.at("app/r"));
    if (!r.ok() || r->status.environments.empty()) return "";
    return r->status.environments[0].reason + ": " + r->status.environments[0].message;
  }
};

// One reconcile per environment transition: the status that records the previous images, then
// (on the object that write returned, with no watch round trip) the patch, then the status that
// leaves Updating.
TEST(ReconcilerTest, PreviousImagesArePersistedBeforeThePatchInTheSameReconcile) {
  Harness h;
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_EQ(h.client.actions,
            (std::vector<std::string>{"get deployments app/api", "status app/r",
                                      "get deployments app/api", "patch app/api", "status app/r"}))
      << "entering Updating commits to a write: its target is read fresh first, and again "
         "before the patch";
  auto first = api::DecodeRollout(h.client.status_bodies.at(0));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(api::PhaseName(first->status.environments.at(0).phase), "Updating");
  EXPECT_EQ(first->status.environments[0].targets.at(0).previous_images.at("api"),
            "registry.example.com/api:1")
      << "no patch before the previous images are written";
  EXPECT_EQ(h.Phase(), "Verifying");
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].targets[0].previous_images.at("api"),
            "registry.example.com/api:1");
  EXPECT_EQ(h.events.reasons, (std::vector<std::string>{"RolloutStarted", "EnvironmentStarted"}));
}

// The success of one environment and the start of the next (previous images, then the patch)
// are one reconcile: three passes, the same writes in the same order, no watch round trip.
TEST(ReconcilerTest, TheNextEnvironmentStartsInTheReconcileThatSawTheLastOneSucceed) {
  Harness h;
  Json rollout = RolloutJson();
  rollout["spec"]["environments"][1] = Json::parse(
      R"({"name":"prod","targets":[{"deployment":"api-prod","containers":{"api":"backend"}}]})");
  Json prod = DeploymentJson("registry.example.com/api:1", 6);
  prod["metadata"]["name"] = Json::string("api-prod");
  h.client.objects["app/r"] = rollout;
  h.client.objects["app/api-prod"] = prod;
  h.rollouts.Put(rollout);
  h.deployments.Put(prod);
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // dev: Updating, patched, Verifying
  // The Deployment controller rolls dev out.
  h.client.objects["app/api"]["status"]["observedGeneration"] = Json::number(2);
  h.SyncCaches();
  h.client.actions.clear();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.actions,
            (std::vector<std::string>{"status app/r", "get deployments app/api-prod",
                                      "status app/r", "get deployments app/api-prod",
                                      "patch app/api-prod", "status app/r"}));
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(api::PhaseName(r->status.environments.at(0).phase), "Succeeded");
  EXPECT_EQ(api::PhaseName(r->status.environments.at(1).phase), "Verifying");
  EXPECT_EQ(r->status.environments[1].targets.at(0).previous_images.at("api"),
            "registry.example.com/api:1");
}

// A rollout whose only environment "prod" is in namespace prod (opted in), with targets a and b.
struct TwoTargetsHarness : Harness {
  TwoTargetsHarness() {
    Json rollout = RolloutJson();
    rollout["spec"]["environments"][0] =
        Json::parse(R"({"name":"prod","namespace":"prod","targets":[)"
                    R"({"deployment":"a","containers":{"api":"backend"}},)"
                    R"({"deployment":"b","containers":{"api":"backend"}}]})");
    client.objects["app/r"] = rollout;
    rollouts.Put(rollout);
    const Json ns = Json::parse(
        R"({"metadata":{"name":"prod","labels":{"rollgate.io/allow-rollouts-from":"app"}}})");
    client.objects["/prod"] = ns;
    namespaces.Put(ns);
    for (const char* name : {"a", "b"}) {
      Json d = DeploymentJson("registry.example.com/api:1", 7);
      d["metadata"]["namespace"] = Json::string("prod");
      d["metadata"]["name"] = Json::string(name);
      client.objects[std::string("prod/") + name] = d;
      deployments.Put(d);
    }
  }
};

// The write guard reads a target namespace fresh once per plan, not once per Deployment in it.
TEST(ReconcilerTest, ANamespaceSharedByTargetsIsReadOncePerPlan) {
  TwoTargetsHarness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 2);
  EXPECT_EQ(h.client.Count("get namespaces /prod"), 2)
      << "one fresh read for the plan that records the previous images, one for the patches";
  EXPECT_EQ(h.client.Count("get deployments prod/"), 4);
}

// The GETs of a round of the write guard are in flight together (issue 14): entering the
// environment reads its namespace and both Deployments before the status write, and again before
// the patches, each time as one group; the outcome is that of reading them one at a time.
TEST(ReconcilerTest, TheWriteGuardsReadsOfARoundAreInFlightTogether) {
  TwoTargetsHarness h;
  h.client.together = {3, 3};
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.apart, 0) << "a read of the round waited 5 s for the others: sequential? "
                               << ::testing::PrintToString(h.client.actions);
  EXPECT_TRUE(h.client.together.empty()) << ::testing::PrintToString(h.client.actions);
  ASSERT_GE(h.client.actions.size(), 4U);
  std::vector<std::string> first(h.client.actions.begin(), h.client.actions.begin() + 3);
  std::sort(first.begin(), first.end());
  EXPECT_EQ(first, (std::vector<std::string>{"get deployments prod/a", "get deployments prod/b",
                                             "get namespaces /prod"}));
  EXPECT_EQ(h.client.actions[3], "status app/r") << "the reads come before the status write";
  EXPECT_EQ(h.client.Count("patch"), 2);
  EXPECT_EQ(h.Phase(), "Verifying");
  EXPECT_EQ(h.deployments.offered,
            (std::vector<std::string>{"prod/a", "prod/b", "prod/a", "prod/b"}))
      << "the reads are applied in target order";
}

// A namespace read that fails (other than NotFound) fails the reconcile as before, with nothing
// applied after it, although the Deployment reads of its round were sent at the same time; an
// error of a Deployment read later in that order is not the one reported.
TEST(ReconcilerTest, AFailedNamespaceReadOfARoundIsReportedAsWhenReadAlone) {
  TwoTargetsHarness h;
  h.client.together = {3};
  h.client.get_errors["/prod"] = Status(StatusCode::kUnavailable, "etcdserver: leader changed");
  h.client.get_errors["prod/b"] = Status(StatusCode::kForbidden, "deployments is forbidden");
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(res.status.code(), StatusCode::kUnavailable) << res.status.ToString();
  EXPECT_NE(res.status.message().find("leader changed"), std::string::npos) << res.status.message();
  EXPECT_TRUE(res.status.IsRetryable());
  EXPECT_EQ(h.client.apart, 0) << "the Deployment reads are sent with the namespace read";
  EXPECT_EQ(h.client.Count("get deployments prod/"), 2);
  EXPECT_TRUE(h.deployments.offered.empty()) << "nothing after the failed read is applied";
  EXPECT_EQ(h.client.Count("status"), 0);
  EXPECT_EQ(h.client.Count("patch"), 0);

  // The namespace answers again: the Deployment's error is the one reported now.
  h.client.get_errors.erase("/prod");
  res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(res.status.code(), StatusCode::kForbidden) << res.status.ToString();
  EXPECT_EQ(h.deployments.offered, (std::vector<std::string>{"prod/a"}));
  EXPECT_EQ(h.client.Count("patch"), 0);

  h.client.get_errors.clear();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 2);
}

TEST(ReconcilerTest, OwnWritesOverlayLaggingCachesSoNothingIsPatchedTwice) {
  Harness h;
  h.StartUpdating();
  h.rollouts.Put(RolloutJson());  // the rollout cache lags: it has not seen Updating
  // The caches have NOT seen the status write: the overlay must be used.
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 1);
  // Still lagging: neither the patch nor the Verifying status has reached the caches.
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 1) << "a lagging Deployment cache must not cause a re-patch";
  EXPECT_EQ(h.reconciler->patches(), 1u);
}

TEST(ReconcilerTest, FailedPatchWritesNoStatus) {
  Harness h;
  h.client.patch_error = Status(StatusCode::kUnavailable, "apiserver restarting");
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(res.status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(res.status.IsRetryable());
  EXPECT_EQ(h.client.Count("status"), 1) << "Updating must not be left without the patch";
  EXPECT_EQ(h.Phase(), "Updating");
  h.client.patch_error.reset();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.Phase(), "Verifying");
}

TEST(ReconcilerTest, StatusConflictRecordsNoEvents) {
  Harness h;
  h.client.status_error = Status(StatusCode::kConflict, "the object has been modified");
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(res.status.code(), StatusCode::kConflict);
  EXPECT_TRUE(h.events.reasons.empty()) << "events describe persisted transitions only";
  EXPECT_EQ(h.client.Count("patch"), 0);
  EXPECT_EQ(h.client.Count("get containerrollouts app/r"), 1)
      << "a Conflict re-reads the rollout, so the retry does not plan from the same stale cache";
}

// The status that leaves Updating is refused (422, e.g. a stricter CRD installed mid-rollout)
// after the patch was sent: the key is kept with backoff, the last accepted status (with the
// previous images) stays and says why, and the retry neither patches again nor loses anything.
TEST(ReconcilerTest, ARefusedStatusWriteKeepsThePreviousImagesAndTheKey) {
  Harness h;
  h.client.status_errors = {
      Status(StatusCode::kOk, ""),  // Updating is accepted ...
      Status(StatusCode::kInvalid, "status.message: Too long: may not be longer than 4096")};
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(h.client.Count("patch"), 1);
  EXPECT_FALSE(res.status.ok());
  EXPECT_TRUE(res.status.IsRetryable()) << "a refused status write must not drop the key";
  EXPECT_NE(res.status.message().find("Too long"), std::string::npos) << res.status.message();
  EXPECT_EQ(h.client.Count("status"), 3) << "Updating, the refused write, the kept status";
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(api::PhaseName(r->status.environments.at(0).phase), "Updating");
  EXPECT_EQ(r->status.environments[0].targets.at(0).previous_images.at("api"),
            "registry.example.com/api:1");
  EXPECT_NE(r->status.message.find("refused the status update (Invalid)"), std::string::npos)
      << r->status.message;
  EXPECT_EQ(h.events.reasons.back(), "StatusUpdateRefused");

  // The retry (the CRD fixed, or the cause gone): no second patch, and the rollout moves on.
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 1) << "the Deployment already runs the revision";
  EXPECT_EQ(h.Phase(), "Verifying");
}

// Progress (the Deployment's replica counters) is mirrored into status at most once per 5 s;
// a phase change is written at once, with the latest counters.
TEST(ReconcilerTest, ProgressOnlyChangesAreWrittenAtMostOncePerInterval) {
  Harness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched: Verifying
  h.SyncCaches();
  const int writes = h.client.Count("status");
  auto progress = [&](int updated) {
    Json d = h.client.objects.at("app/api");
    d["status"]["updatedReplicas"] = Json::number(updated);
    d["metadata"]["resourceVersion"] = Json::string(std::to_string(++h.client.version));
    h.client.objects["app/api"] = d;
    h.deployments.Put(d);
  };
  progress(1);
  h.clock.Advance(std::chrono::seconds(1));
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_EQ(h.client.Count("status"), writes) << "progress within 5 s of the last write waits";
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(4)) << "it is written when the interval ends";

  h.clock.Advance(std::chrono::seconds(4));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("status"), writes + 1);
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].targets[0].updated_replicas, 1);

  // More progress, then the Deployment is rolled out within the interval: written at once.
  progress(2);
  h.client.objects["app/api"]["status"]["observedGeneration"] = Json::number(2);
  h.deployments.Put(h.client.objects.at("app/api"));
  h.clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("status"), writes + 2);
  EXPECT_EQ(h.Phase(), "Succeeded");
  r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].targets[0].updated_replicas, 2);
}

// Deleted while it rolls back (or at any other step): the status write finds nothing, which is
// the end of the rollout, not an error to retry and log.
TEST(ReconcilerTest, ARolloutDeletedDuringTheReconcileIsDoneNotAnError) {
  Harness h;
  h.client.status_error = Status(StatusCode::kNotFound, "containerrollouts \"r\" not found");
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_FALSE(res.requeue_after.has_value());
  EXPECT_TRUE(h.events.reasons.empty());
}

// A stalled Deployment watch: the cache still shows the patched generation unobserved after the
// progress deadline, while the API server knows the Deployment is healthy. The failure verdict is
// confirmed on a fresh read first, so nothing is rolled back.
TEST(ReconcilerTest, AFailureVerdictIsConfirmedOnAFreshReadBeforeItIsPersisted) {
  Harness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched: Verifying
  ASSERT_EQ(h.Phase(), "Verifying");
  h.SyncCaches();  // the cache: generation 2, observedGeneration 1 (not rolled out)
  // The API server: the Deployment controller has rolled generation 2 out since.
  h.client.objects["app/api"]["status"]["observedGeneration"] = Json::number(2);
  h.clock.Advance(std::chrono::seconds(601));  // past the default progress deadline
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.Phase(), "Succeeded") << "a healthy Deployment must not be rolled back";
  EXPECT_EQ(h.client.Count("patch"), 1);
}

// ---- analysis never blocks a reconcile ----

// A Prometheus client whose samples pass, but only once released.
class GatedPrometheus final : public PrometheusClient {
 public:
  SampleResult Sample(const std::string&, const std::vector<Check>&) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++started_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return released_; });
    return AggregateChecks({CheckResult{"e", SampleOutcome::kPass, 0.5, "e = 0.5 (max 1)"}});
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int started() {
    std::lock_guard<std::mutex> lock(mu_);
    return started_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  bool released_ = false;
};

TEST(ReconcilerTest, AnAnalysisSampleIsTakenOffTheReconcileAndUsedOnALaterOne) {
  // Given: a rollout whose environment is analysed (one sample) against an allowed endpoint, a
  // Prometheus that does not answer until released, and the runner that takes samples.
  Harness h;
  Json rollout = RolloutJson();
  rollout["spec"]["environments"][0]["analysis"] = Json::parse(
      R"({"prometheus":{"address":"http://prom:9090"},"checks":[{"name":"e","query":"q","max":1}],)"
      R"("intervalSeconds":1,"samples":1})");
  h.client.objects["app/r"] = rollout;
  h.rollouts.Put(rollout);
  GatedPrometheus prometheus;
  std::atomic<int> done{0};
  AnalysisRunner::Options ao;
  ao.on_done = [&](const std::string&) { ++done; };
  AnalysisRunner runner(prometheus, ao);
  ReconcilerOptions ro;
  ro.planner.analysis_endpoints = {"http://prom:9090"};
  h.reconciler = std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments,
                                              h.namespaces, &runner, nullptr, h.events, ro);
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched: Verifying
  h.client.objects["app/api"]["status"]["observedGeneration"] = Json::number(2);
  h.SyncCaches();

  // When: reconciled while the sample hangs
  ReconcileResult res = h.reconciler->Reconcile("app/r");

  // Then: the reconcile returns (no result yet, no sample counted) and looks again soon.
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(2));
  EXPECT_EQ(h.Phase(), "Verifying");
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].analysis.value_or(api::AnalysisStatus{}).samples, 0);
  // Another reconcile meanwhile neither waits nor starts a second sample.
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(runner.pending(), 1u);

  // When: the sample is done (the runner asks for the rollout to be reconciled)
  prometheus.Release();
  for (int i = 0; i < 2000 && done.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(done.load(), 1);
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());

  // Then: the next reconcile plans with it.
  r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->status.environments[0].analysis.has_value());
  EXPECT_EQ(r->status.environments[0].analysis->samples, 1);
  EXPECT_EQ(r->status.environments[0].analysis->passed, 1);
  EXPECT_EQ(prometheus.started(), 1);
}

// A registry that answers every image with one index, counting the lookups.
class CountingRegistry final : public RegistryClient {
 public:
  Result<ResolvedImage> Resolve(const ImageRef& ref, const std::vector<Platform>&) override {
    return ResolveAll(ref);
  }
  Result<ResolvedImage> ResolveAll(const ImageRef&) override {
    ++calls;
    ResolvedImage out;
    out.digest = "sha256:" + std::string(64, 'e');
    out.media_type = "application/vnd.oci.image.index.v1+json";
    out.platforms = {{"linux", "amd64", ""}};
    out.images = {{{"linux", "amd64", ""}, "sha256:" + std::string(64, 'f'), 1234}};
    return out;
  }
  std::atomic<int> calls{0};
};

TEST(ReconcilerTest, ARegistryPreFlightLooksUpOnceOffTheReconcileAndPatchesThePinnedImage) {
  // Given: a rollout with spec.imagePolicy and a resolver over a counting registry.
  Harness h;
  Json rollout = RolloutJson();
  rollout["spec"]["imagePolicy"] = Json::object();
  h.client.objects["app/r"] = rollout;
  h.rollouts.Put(rollout);
  CountingRegistry registry;
  std::atomic<int> done{0};
  ImageResolver::Options io;
  io.on_done = [&](const std::string&) { ++done; };
  ImageResolver resolver(registry, io);
  ReconcilerOptions ro;
  ro.images = &resolver;
  h.reconciler = std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments,
                                              h.namespaces, nullptr, nullptr, h.events, ro);

  // When: the first reconcile starts the revision; the lookup runs on the resolver's thread.
  ReconcileResult first = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  ASSERT_TRUE(first.requeue_after.has_value());
  for (int i = 0; i < 2000 && done.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(done.load(), 1);
  EXPECT_EQ(h.Phase(), "Pending") << "nothing recorded or patched before the lookup is in";
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());

  // Then: the lookup made for the revision the first reconcile started is the one used (one
  // lookup, not one per reconcile), recorded, and the patch pins its digest.
  EXPECT_EQ(registry.calls.load(), 1);
  EXPECT_EQ(h.Phase(), "Verifying");
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status.resolved_images.size(), 1u);
  EXPECT_EQ(r->status.resolved_images[0].digest, "sha256:" + std::string(64, 'e'));
  EXPECT_EQ(h.client.Count("patch"), 1);
  EXPECT_NE(h.client.last_patch.find("\"registry.example.com/api:2@sha256:" + std::string(64, 'e') +
                                     "\""),
            std::string::npos)
      << h.client.last_patch;
}

// ---- smoke checks ----

Json RolloutWithSmokeCheck() {
  Json r = RolloutJson();
  r["spec"]["environments"][0]["smokeChecks"] =
      Json::parse(R"([{"name":"imports","image":"backend","command":["/app/check","--imports"]}])");
  return r;
}

// A before-patch smoke check: its Job is read, then created from a fresh read of the Deployment
// (the write guard), with the new image and the check's command; nothing is patched while it
// runs; a restarted controller adopts the Job instead of creating another; the pass is written to
// status before the Job is deleted (uid precondition), and the patch follows.
TEST(ReconcilerTest, ASmokeCheckJobIsCreatedOnAFreshReadAdoptedAfterARestartDeletedAfterItsPass) {
  Harness h;
  h.client.objects["app/r"] = RolloutWithSmokeCheck();
  h.rollouts.Put(RolloutWithSmokeCheck());
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  const std::string job = SmokeJobName("r", "u1", 1, "dev", 0, "imports");
  auto get_job = std::find(h.client.actions.begin(), h.client.actions.end(), "get jobs app/" + job);
  auto fresh = std::find(get_job, h.client.actions.end(), "get deployments app/api");
  auto create = std::find(fresh, h.client.actions.end(), "create jobs app/" + job);
  auto status = std::find(create, h.client.actions.end(), "status app/r");
  ASSERT_NE(status, h.client.actions.end())
      << "read the Job, read the Deployment fresh, create, then write status: "
      << ::testing::PrintToString(h.client.actions);
  EXPECT_EQ(h.client.Count("patch"), 0);
  EXPECT_EQ(h.Phase(), "Pending");
  const Json& body = h.client.objects.at("app/" + job);
  const Json& c = body.at("spec").at("template").at("spec").at("containers").at(0);
  EXPECT_EQ(c.at("image").as_string(), "registry.example.com/api:2");
  EXPECT_EQ(c.at("command").serialize(), R"(["/app/check","--imports"])");
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status.environments[0].smoke_checks.size(), 1u);
  EXPECT_EQ(r->status.environments[0].smoke_checks[0].job, job);
  EXPECT_EQ(r->status.environments[0].smoke_checks[0].phase, api::SmokeCheckPhase::kRunning);

  // A new controller (nothing remembered) while the Job runs: it adopts it.
  h.SyncCaches();
  h.reconciler =
      std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments, h.namespaces,
                                   nullptr, nullptr, h.events, ReconcilerOptions{});
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("create jobs"), 1) << "exactly one Job";
  EXPECT_EQ(h.client.Count("patch"), 0);

  // The Job completes.
  Json& stored = h.client.objects.at("app/" + job);
  const std::string uid = kube::MetaString(stored, "uid");
  stored["status"] = Json::parse(R"({"conditions":[{"type":"Complete","status":"True"}]})");
  h.SyncCaches();
  h.client.actions.clear();
  const size_t writes = h.client.status_bodies.size();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  auto passed = std::find(h.client.actions.begin(), h.client.actions.end(), "status app/r");
  auto del = std::find(passed, h.client.actions.end(),
                       "delete jobs app/" + job + " uid=" + uid + " Background");
  ASSERT_NE(del, h.client.actions.end()) << "the pass is recorded before its Job is deleted: "
                                         << ::testing::PrintToString(h.client.actions);
  EXPECT_EQ(h.client.Count("patch"), 1) << "the environment proceeds in the same reconcile";
  EXPECT_EQ(h.client.Count("create jobs"), 0);
  auto after = api::DecodeRollout(h.client.status_bodies.at(writes));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status.environments[0].smoke_checks.at(0).phase, api::SmokeCheckPhase::kPassed);
}

// A namespace read fresh at creation time that no longer opts in: no Job.
TEST(ReconcilerTest, ASmokeCheckInANamespaceThatWithdrewItsOptInCreatesNoJob) {
  Harness h;
  Json r = RolloutWithSmokeCheck();
  r["spec"]["environments"][0]["namespace"] = Json::string("team");
  h.client.objects["app/r"] = r;
  h.rollouts.Put(r);
  Json d = DeploymentJson("registry.example.com/api:1", 5);
  d["metadata"]["namespace"] = Json::string("team");
  h.client.objects["team/api"] = d;
  h.deployments.Put(d);
  // The cache still has the opt-in; the API server no longer does.
  h.namespaces.Put(Json::parse(
      R"({"metadata":{"name":"team","labels":{"rollgate.io/allow-rollouts-from":"app"}}})"));
  h.client.objects["/team"] = Json::parse(R"({"metadata":{"name":"team"}})");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("create jobs"), 0) << ::testing::PrintToString(h.client.actions);
  auto got = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status.environments[0].reason, "NamespaceNotPermitted");
}

// ---- the write guard: every patch is planned on a fresh read of its target ----

TEST(ReconcilerTest, ThePatchCarriesTheFreshReadsResourceVersionAndTheClaim) {
  Harness h;
  h.StartUpdating();
  // The API server holds a newer version than the cache (a status update since).
  h.client.objects["app/api"]["metadata"]["resourceVersion"] = Json::string("77");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  ASSERT_EQ(h.client.Count("patch"), 1);
  const Json body = Json::parse(h.client.last_patch);
  EXPECT_EQ(body.at("metadata").at("resourceVersion").as_string(), "77") << h.client.last_patch;
  EXPECT_EQ(body.at("metadata").at("annotations").at("rollgate.io/owner").as_string(), "app/r");
}

TEST(ReconcilerTest, AFreshReadOverridesAStaleCacheBeforeAnyPatch) {
  Harness h;
  h.StartUpdating();  // the cache still shows container "api"
  // Its owner renamed the container; the watch has not delivered that yet.
  h.client.objects["app/api"]["spec"]["template"]["spec"]["containers"][0]["name"] =
      Json::string("api2");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 0) << "no patch may re-create container api";
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].reason, "ContainerNotFound");
}

TEST(ReconcilerTest, AClaimSeenOnlyByTheFreshReadFailsPreFlightWithNothingRecorded) {
  Harness h;
  // The cache shows no claim; the API server does, by a rollout that is progressing.
  h.client.objects["app/api"]["metadata"]["annotations"]["rollgate.io/owner"] =
      Json::string("team/x");
  h.client.objects["team/x"] = Json::parse(
      R"({"metadata":{"namespace":"team","name":"x"},"status":{"phase":"Progressing"}})");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 0);
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(api::PhaseName(r->status.phase), "Failed");
  EXPECT_EQ(r->status.environments[0].reason, "TargetConflict");
  EXPECT_TRUE(r->status.environments[0].targets.empty()) << "nothing recorded";
}

TEST(ReconcilerTest, AClaimIsJudgedOnAFreshReadOfTheClaimingRollout) {
  for (const std::string phase : {"Progressing", "Succeeded", ""}) {
    SCOPED_TRACE(phase.empty() ? "claiming rollout deleted" : phase);
    Harness h;
    h.StartUpdating();
    h.client.objects["app/api"]["metadata"]["annotations"]["rollgate.io/owner"] =
        Json::string("team/x");
    if (!phase.empty()) {
      h.client.objects["team/x"] = Json::parse(
          R"({"metadata":{"namespace":"team","name":"x"},"status":{"phase":")" + phase + R"("}})");
    }
    ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
    EXPECT_EQ(h.client.Count("get containerrollouts team/x"), 1);
    auto r = api::DecodeRollout(h.client.objects.at("app/r"));
    ASSERT_TRUE(r.ok());
    if (phase == "Progressing") {
      EXPECT_EQ(h.client.Count("patch"), 0);
      EXPECT_EQ(r->status.environments[0].reason, "TargetConflict");
    } else {
      EXPECT_EQ(h.client.Count("patch"), 1)
          << "a finished or deleted rollout's claim holds nothing";
      EXPECT_EQ(h.Phase(), "Verifying");
    }
  }
}

TEST(ReconcilerTest, APatchConflictIsRetriedWithoutAStatusWrite) {
  Harness h;
  h.client.patch_error = Status(StatusCode::kConflict, "the object has been modified");
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_EQ(res.status.code(), StatusCode::kConflict);
  EXPECT_EQ(h.client.Count("status"), 1) << "Updating is not left without the patch";
  h.client.patch_error.reset();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.Phase(), "Verifying");
}

TEST(ReconcilerTest, CacheMissIsConfirmedWithTheApiServer) {
  Harness h;
  h.deployments.objects.clear();  // created a moment ago: not in the cache yet
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_GE(h.client.Count("get deployments app/api"), 1);
  EXPECT_EQ(h.Phase(), "Verifying") << "a lagging cache is no reason for DeploymentNotFound";
  ASSERT_FALSE(h.deployments.offered.empty()) << "what was read live is offered to the cache";
  EXPECT_EQ(h.deployments.offered.front(), "app/api");

  Harness gone;
  gone.deployments.objects.clear();
  gone.client.objects.erase("app/api");
  ASSERT_TRUE(gone.reconciler->Reconcile("app/r").status.ok());
  EXPECT_TRUE(gone.deployments.offered.empty()) << "nothing read, nothing offered";
  auto r = api::DecodeRollout(gone.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status.environments[0].reason, "DeploymentNotFound");
}

// A new pod of the patched Deployment "app/api" (image api:2) as the kubelet reports a tag that
// does not exist, created at `created`.
Json PullingPod(api::WallTime created) {
  return Json::parse(
      R"({"metadata":{"namespace":"app","name":"api-6d4-q7x","creationTimestamp":")" +
      api::FormatTime(created) +
      R"("},"spec":{"nodeName":"n1","containers":[{"name":"api","image":)"
      R"("registry.example.com/api:2"}]},"status":{"containerStatuses":[{"name":"api",)"
      R"("restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff","message":)"
      R"("Back-off pulling image \"registry.example.com/api:2\": not found"}}}]}})");
}

// While the environment verifies and its Deployment has not rolled out, the reconciler lists the
// target's pods by its selector from the watch cache, and a pull failing past the threshold fails
// the environment ImagePullFailed with the kubelet's message; the rollback restores api:1.
TEST(ReconcilerTest, APullThatKeepsFailingFailsTheEnvironmentBeforeTheDeadline) {
  Harness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched, Verifying
  ASSERT_EQ(h.Phase(), "Verifying");
  EXPECT_EQ(h.client.Count("list"), 0) << "no pod list before the grace";
  h.SyncCaches();  // generation 2, observedGeneration 1: not rolled out
  h.client.pods = {PullingPod(h.clock.WallNow())};
  h.client.actions.clear();
  h.clock.Advance(std::chrono::seconds(20));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  ASSERT_FALSE(h.client.actions.empty());
  EXPECT_EQ(h.client.actions.front(), "list pods app selector=app=api rv=0");
  EXPECT_EQ(h.client.Count("list"), 1);
  EXPECT_EQ(h.Phase(), "Verifying") << "failing for 20 s: below the 30 s threshold";

  h.client.actions.clear();
  h.clock.Advance(std::chrono::seconds(10));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  auto r = api::DecodeRollout(h.client.objects.at("app/r"));
  ASSERT_TRUE(r.ok());
  const auto& env = r->status.environments.at(0);
  EXPECT_EQ(env.reason, "ImagePullFailed");
  EXPECT_NE(env.message.find("cannot pull image \"registry.example.com/api:2\""), std::string::npos)
      << env.message;
  EXPECT_NE(env.message.find("not found"), std::string::npos) << env.message;
  EXPECT_EQ(h.client.Count("patch"), 0) << "the rollback is recorded before it is executed";
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch app/api"), 1) << "the rollback restores api:1";
  EXPECT_NE(h.client.last_patch.find("registry.example.com/api:1"), std::string::npos);
  EXPECT_EQ(std::count(h.events.reasons.begin(), h.events.reasons.end(), "ImagePullFailed"), 1);
}

// The reconciles that follow a trouble-free pod list (one per Deployment status change) trust it
// instead of listing again, with a reconcile when that ends: 5 s after the first clean list, then
// twice as long after each further one in a row, up to 30 s. A list that found a trouble is never
// reused (a verdict always rests on a fresh list) and starts the trust again from 5 s.
TEST(ReconcilerTest, ATroubleFreePodListIsTrustedLongerEachTimeATroubledOneNever) {
  Harness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched, Verifying
  h.SyncCaches();                                             // not rolled out
  h.clock.Advance(std::chrono::seconds(20));
  const std::string list = "list pods app selector=app=api";
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), 1);
  h.clock.Advance(std::chrono::seconds(2));
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok());
  EXPECT_EQ(h.client.Count(list), 1) << "2 s after a clean list: trusted";
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(3)) << "looked at again when trust ends";
  h.clock.Advance(std::chrono::seconds(3));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), 2) << "5 s after: listed again";

  // Each clean list in a row is trusted twice as long as the one before: 10 s, 20 s, then 30 s.
  int lists = 2;
  for (const int trust : {10, 20, 30, 30}) {
    h.clock.Advance(std::chrono::seconds(trust - 1));
    res = h.reconciler->Reconcile("app/r");
    ASSERT_TRUE(res.status.ok());
    EXPECT_EQ(h.client.Count(list), lists) << trust - 1 << " s after a clean list: trusted";
    ASSERT_TRUE(res.requeue_after.has_value());
    EXPECT_LE(*res.requeue_after, std::chrono::seconds(1));
    h.clock.Advance(std::chrono::seconds(1));
    ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
    EXPECT_EQ(h.client.Count(list), ++lists) << trust << " s after: listed again";
  }

  h.clock.Advance(std::chrono::seconds(30));
  h.client.pods = {PullingPod(h.clock.WallNow())};  // a new pod, its pull failing
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), ++lists);
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), ++lists) << "a list with a trouble is not trusted";
  EXPECT_EQ(h.Phase(), "Verifying");

  h.client.pods.clear();  // the pull went through
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), ++lists);
  h.clock.Advance(std::chrono::seconds(5));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count(list), ++lists) << "after a trouble, trust starts again from 5 s";
}

// PullingPod as its ReplicaSet (api-6d4) made it: what the pod cache keeps.
Json OwnedPod(Json pod) {
  pod["metadata"]["labels"] = Json::parse(R"({"app":"api","pod-template-hash":"6d4"})");
  pod["metadata"]["ownerReferences"] =
      Json::parse(R"([{"kind":"ReplicaSet","name":"api-6d4","controller":true}])");
  return pod;
}

struct CachedHarness : Harness {
  testing::FakePods pods;
  PodHealthCache cache{pods, [this](const std::string& p) { (void)pods.Prune(p); }};
  CachedHarness() {
    pods.keep = [this](const Json& p) { return cache.Keeps(p); };
    pods.resource_version = "640";
    ReconcilerOptions o;
    o.pod_cache = &cache;
    reconciler = std::make_unique<Reconciler>(client, clock, rollouts, deployments, namespaces,
                                              nullptr, nullptr, events, o);
  }
};

// With the pod cache, the first look at an environment lists its targets' pods (not older than
// the cache) into the cache; the looks after list nothing and judge what the cache holds, and a
// pull that keeps failing there fails the environment ImagePullFailed as before.
TEST(ReconcilerTest, WithThePodCacheAnEnvironmentListsItsPodsOnceThenReadsTheWatch) {
  CachedHarness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // Updating, patched, Verifying
  h.SyncCaches();                                             // not rolled out
  h.client.pods = {OwnedPod(PullingPod(h.clock.WallNow()))};
  h.client.actions.clear();
  h.clock.Advance(std::chrono::seconds(12));
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok());
  ASSERT_FALSE(h.client.actions.empty());
  EXPECT_EQ(h.client.actions.front(), "list pods app selector=app=api rv=640");
  EXPECT_EQ(h.client.Count("list"), 1);
  EXPECT_EQ(h.pods.objects.size(), 1u) << "the listed pod is offered to the cache";
  EXPECT_EQ(h.pods.offers, (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(h.cache.watched_deployments(), 1u);
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(30));

  h.client.pods.clear();  // the API server is not asked again: the cache answers
  h.clock.Advance(std::chrono::seconds(10));
  res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok());
  EXPECT_EQ(h.client.Count("list"), 1);
  EXPECT_EQ(h.Phase(), "Verifying") << "failing for 22 s: below the 30 s threshold";
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(8)) << "looked at when it would cross it";

  h.clock.Advance(std::chrono::seconds(8));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("list"), 1);
  EXPECT_TRUE(h.Verdict().starts_with("ImagePullFailed: ")) << h.Verdict();
  EXPECT_NE(h.Verdict().find("not found"), std::string::npos) << h.Verdict();
}

// The cache is the watch's: a trouble it brings after the first list is seen on the next look,
// one it clears is gone; once the environment rolls out, its pods leave the cache.
TEST(ReconcilerTest, ThePodCacheFollowsTheWatchAndIsReleasedWhenTheEnvironmentRollsOut) {
  CachedHarness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  h.SyncCaches();
  h.clock.Advance(std::chrono::seconds(12));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());  // lists: no pod yet
  EXPECT_EQ(h.client.Count("list pods"), 1);
  EXPECT_TRUE(h.pods.objects.empty());

  Json crashing = OwnedPod(PullingPod(h.clock.WallNow()));
  crashing["status"]["containerStatuses"][0] = Json::parse(
      R"({"name":"api","restartCount":3,"state":{"waiting":{"reason":"CrashLoopBackOff"}},)"
      R"("lastState":{"terminated":{"exitCode":1,"reason":"Error","message":"no config"}}})");
  h.pods.Put(crashing);  // the watch brings it
  h.clock.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("list pods"), 1);
  EXPECT_TRUE(h.Verdict().starts_with("ContainerCrashing: ")) << h.Verdict();
  EXPECT_NE(h.Verdict().find("no config"), std::string::npos) << h.Verdict();

  // Another rollout's environment: its pod was in trouble, the watch clears it, it rolls out.
  CachedHarness g;
  ASSERT_TRUE(g.reconciler->Reconcile("app/r").status.ok());
  g.SyncCaches();
  g.clock.Advance(std::chrono::seconds(12));
  g.client.pods = {OwnedPod(PullingPod(g.clock.WallNow()))};
  ASSERT_TRUE(g.reconciler->Reconcile("app/r").status.ok());
  ASSERT_EQ(g.pods.objects.size(), 1u);
  g.pods.objects.clear();  // the pull went through, the watch replaced the pod
  g.clock.Advance(std::chrono::seconds(25));
  ASSERT_TRUE(g.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(g.Phase(), "Verifying") << "what the watch cleared is no trouble";
  EXPECT_EQ(g.client.Count("list pods"), 1);
  EXPECT_EQ(g.cache.watched_deployments(), 1u);
  g.client.objects["app/api"]["status"]["observedGeneration"] = Json::number(2);
  g.SyncCaches();
  ASSERT_TRUE(g.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(g.cache.watched_deployments(), 0u) << "rolled out: its pods leave the cache";
  EXPECT_EQ(g.pods.prunes, (std::vector<std::string>{"app/api-"}));
}

// A pod list the API server refuses is no verdict: the environment keeps verifying (the progress
// deadline still applies) and the reconcile is not an error.
TEST(ReconcilerTest, APodListThatFailsLeavesTheEnvironmentVerifying) {
  Harness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  h.SyncCaches();
  h.client.list_error = Status(StatusCode::kForbidden, "pods is forbidden");
  h.clock.Advance(std::chrono::seconds(45));
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_EQ(h.client.Count("list pods"), 1);
  EXPECT_EQ(h.Phase(), "Verifying");
  EXPECT_TRUE(res.requeue_after.has_value());
}

TEST(ReconcilerTest, DeletedRolloutIsDone) {
  Harness h;
  h.rollouts.objects.clear();
  auto res = h.reconciler->Reconcile("app/r");
  EXPECT_TRUE(res.status.ok());
  EXPECT_TRUE(h.client.actions.empty());
}

TEST(ReconcilerTest, DryRunChangesNothing) {
  Harness h;
  ReconcilerOptions o;
  o.dry_run = true;
  Reconciler dry(h.client, h.clock, h.rollouts, h.deployments, h.namespaces, nullptr, nullptr,
                 h.events, o);
  ASSERT_TRUE(dry.Reconcile("app/r").status.ok());
  EXPECT_EQ(h.client.Count("patch"), 0);
  EXPECT_EQ(h.client.Count("status"), 0);
  EXPECT_TRUE(h.events.reasons.empty());
}

TEST(ReconcilerTest, ImagePatchIsAStrategicMergeOfNamedContainers) {
  DeploymentPatch p{"app", "api", {{"api", "r/a:2"}, {"sidecar", "r/s:2"}}, "3", false, {}, {},
                    {},    false};
  const Json patch = Json::parse(BuildImagePatch(p));
  EXPECT_EQ(patch.at("metadata").at("annotations").at("rollgate.io/revision").as_string(), "3");
  const auto& cs = patch.at("spec").at("template").at("spec").at("containers").as_array();
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs.at(0).at("name").as_string(), "api");
  EXPECT_EQ(cs.at(0).at("image").as_string(), "r/a:2");
  EXPECT_FALSE(patch.at("spec").at("template").at("spec").has_field("initContainers"));
}

TEST(ReconcilerTest, AnInjectedInitContainerCarriesItsSecurityContextAndResources) {
  DeploymentPatch p{"app", "worker", {{"worker", "r/w:2"}}, "3", false, {}, "3", {}, false};
  validation::InitContainer v;
  v.name = "rollgate-validate";
  v.image = "r/validate:1";
  v.gpu_resource = "nvidia.com/gpu";
  v.gpu_amount = "1";
  v.security_context_json = validation::kValidatorSecurityContext;
  v.requests = {{"cpu", "10m"}, {"memory", "64Mi"}};
  v.limits = {{"memory", "1Gi"}};
  p.init_containers.push_back(v);
  const Json patch = Json::parse(BuildImagePatch(p));
  const auto& inits = patch.at("spec").at("template").at("spec").at("initContainers").as_array();
  ASSERT_EQ(inits.size(), 1u);
  const Json& c = inits.at(0);
  EXPECT_EQ(c.at("resources").at("requests").at("cpu").as_string(), "10m");
  EXPECT_EQ(c.at("resources").at("requests").at("memory").as_string(), "64Mi");
  EXPECT_EQ(c.at("resources").at("requests").at("nvidia.com/gpu").as_string(), "1");
  EXPECT_EQ(c.at("resources").at("limits").at("memory").as_string(), "1Gi");
  EXPECT_EQ(c.at("resources").at("limits").at("nvidia.com/gpu").as_string(), "1");
  EXPECT_TRUE(c.at("securityContext").at("runAsNonRoot").as_bool());
  EXPECT_EQ(c.at("securityContext").at("seccompProfile").at("type").as_string(), "RuntimeDefault");
}

TEST(ReconcilerTest, ARestoredInitContainerGetsOnlyItsImageBack) {
  DeploymentPatch p{"app", "worker", {{"worker", "r/w:1"}}, "3-rollback", true, {}, {}, {}, true};
  validation::InitContainer restore;
  restore.name = "rollgate-validate";
  restore.image = "r/validate:0";
  p.init_containers.push_back(restore);
  const Json patch = Json::parse(BuildImagePatch(p));
  const Json& c = patch.at("spec").at("template").at("spec").at("initContainers").at(0);
  EXPECT_EQ(c.at("image").as_string(), "r/validate:0");
  EXPECT_FALSE(c.has_field("resources"));
  EXPECT_FALSE(c.has_field("securityContext"));
}

// ---- Environments in a remote cluster (environments[].cluster) ----

// Forwards every call to a RecordingClient the test owns (the registry owns its clients), one at
// a time: a remote watch calls from its own thread.
class Forwarding final : public testing::UnimplementedClient {
 public:
  explicit Forwarding(kube::KubeClient& to) : to_(to) {}
  Result<Json> Get(const kube::ResourceType& rt, const std::string& ns,
                   const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    return to_.Get(rt, ns, name);
  }
  Result<kube::ObjectList> List(const kube::ResourceType& rt, const std::string& ns,
                                const kube::ListOptions& o) override {
    std::lock_guard<std::mutex> lock(mu_);
    return to_.List(rt, ns, o);
  }
  Result<Json> Patch(const kube::ResourceType& rt, const std::string& ns, const std::string& name,
                     kube::PatchType t, const std::string& body,
                     const kube::PatchOptions& o) override {
    std::lock_guard<std::mutex> lock(mu_);
    return to_.Patch(rt, ns, name, t, body, o);
  }

 private:
  std::mutex mu_;
  kube::KubeClient& to_;
};

// A rollout whose only environment is in cluster "prod-eu" (the kubeconfig Secret app/prod-eu in
// the hub), in the namespace named like the rollout's own ("app"), where the remote cluster holds
// a Deployment app/api that runs another image than the hub's app/api.
struct RemoteHarness : Harness {
  RecordingClient remote;
  std::optional<Status> remote_down;  // the factory's client fails every call with this
  std::unique_ptr<kube::ClusterRegistry> registry;

  RemoteHarness() {
    Json rollout = RolloutJson();
    rollout["spec"]["environments"][0]["cluster"] =
        Json::parse(R"({"secretRef":{"name":"prod-eu"}})");
    client.objects["app/r"] = rollout;
    rollouts.Put(rollout);
    const std::string kubeconfig =
        "apiVersion: v1\nkind: Config\ncurrent-context: hub\nclusters:\n- name: prod\n"
        "  cluster:\n    server: https://prod.example:6443\n    certificate-authority-data: " +
        testing::Base64Encode(testing::SharedTestPki().ca.cert) +
        "\ncontexts:\n- name: hub\n  context:\n    cluster: prod\n    user: hub\nusers:\n"
        "- name: hub\n  user:\n    token: remote-token\n";
    Json secret = Json::object();
    secret["metadata"]["namespace"] = Json::string("app");
    secret["metadata"]["name"] = Json::string("prod-eu");
    secret["metadata"]["resourceVersion"] = Json::string("1");
    secret["data"]["value"] = Json::string(testing::Base64Encode(kubeconfig));
    client.objects["app/prod-eu"] = secret;
    remote.objects["app/api"] = DeploymentJson("registry.example.com/api:remote-1", 40);
    remote.objects["/app"] = Json::parse(
        R"({"metadata":{"name":"app","labels":{"rollgate.io/allow-rollouts-from":"app"}}})");
    registry = std::make_unique<kube::ClusterRegistry>(
        client, clock,
        [this](const kube::RestConfig&) -> Result<std::unique_ptr<kube::KubeClient>> {
          if (remote_down) return *remote_down;
          return std::unique_ptr<kube::KubeClient>(std::make_unique<Forwarding>(remote));
        });
    ReconcilerOptions ro;
    ro.clusters = registry.get();
    reconciler = std::make_unique<Reconciler>(client, clock, rollouts, deployments, namespaces,
                                              nullptr, nullptr, events, ro);
  }
  api::Rollout Stored() const {
    auto r = api::DecodeRollout(client.objects.at("app/r"));
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : api::Rollout{};
  }
};

TEST(ReconcilerRemoteTest, ARemoteEnvironmentIsReadAndPatchedWithItsClustersClientOnly) {
  RemoteHarness h;
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_EQ(h.remote.Count("patch app/api"), 1);
  EXPECT_EQ(h.client.Count("patch"), 0) << "the hub's own app/api is not the target";
  EXPECT_EQ(h.client.Count("get deployments"), 0);
  EXPECT_GE(h.remote.Count("get namespaces /app"), 1) << "the opt-in is read in the remote cluster";
  EXPECT_GE(h.client.Count("get secrets app/prod-eu"), 1);
  const api::Rollout r = h.Stored();
  ASSERT_EQ(r.status.environments.size(), 1U);
  EXPECT_EQ(api::PhaseName(r.status.environments[0].phase), "Verifying");
  const api::TargetStatus& t = r.status.environments[0].targets.at(0);
  EXPECT_EQ(t.namespace_, "prod-eu:app");
  EXPECT_EQ(t.previous_images.at("api"), "registry.example.com/api:remote-1")
      << "the previous image is the remote Deployment's";
  // Recorded in status as cluster + namespace (the status schema's namespace is a plain name).
  const Json& jt =
      h.client.status_bodies.back().at("status").at("environments").at(0).at("targets").at(0);
  EXPECT_EQ(jt.at("cluster").as_string(), "prod-eu");
  EXPECT_EQ(jt.at("namespace").as_string(), "app");
  // No watch brings the remote cluster's changes: the rollout is looked at again soon.
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(3));
}

TEST(ReconcilerRemoteTest, ARemoteEnvironmentAsksForAWatchOfItsNamespace) {
  RemoteHarness h;
  kube::RemoteWatches watches(h.clock, [](const std::string&) {});
  ReconcilerOptions ro;
  ro.clusters = h.registry.get();
  ro.remote_watches = &watches;
  h.reconciler = std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments,
                                              h.namespaces, nullptr, nullptr, h.events, ro);
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  EXPECT_EQ(watches.Size(), 1U) << "one watch of prod-eu's namespace app";
  h.clock.Advance(std::chrono::minutes(3));
  EXPECT_EQ(watches.Collect(), 1U) << "stopped once nobody asks for it";
  ASSERT_TRUE(res.requeue_after.has_value());
  EXPECT_LE(*res.requeue_after, std::chrono::seconds(3)) << "polled until the watch has listed";
}

// A remote cluster's validation pods are read live (its pods are not watched), and only for an
// environment whose targets validate their workers: without worker validation, no LIST.
TEST(ReconcilerRemoteTest, ValidationPodsAreListedOnlyWhereWorkersAreValidated) {
  const std::string validation_list = "list pods app selector=rollgate.io/validation=";
  {
    RemoteHarness h;
    ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
    h.SyncCaches();
    ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
    ASSERT_EQ(api::PhaseName(h.Stored().status.environments.at(0).phase), "Verifying");
    EXPECT_EQ(h.remote.Count(validation_list), 0) << "no target validates its workers";
  }
  RemoteHarness h;
  Json rollout = h.client.objects.at("app/r");
  rollout["spec"]["environments"][0]["targets"][0]["workerValidation"] = Json::object();
  h.client.objects["app/r"] = rollout;
  h.rollouts.Put(rollout);
  Json gpu = DeploymentJson("registry.example.com/api:remote-1", 40);
  gpu["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] =
      Json::string("1");
  h.remote.objects["app/api"] = gpu;
  ReconcilerOptions ro;
  ro.clusters = h.registry.get();
  ro.planner.validator_image = "registry.example.com/rollgate-validate:1";
  h.reconciler = std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments,
                                              h.namespaces, nullptr, nullptr, h.events, ro);
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  h.SyncCaches();
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  const api::Rollout r = h.Stored();
  ASSERT_EQ(api::PhaseName(r.status.environments.at(0).phase), "Verifying");
  EXPECT_GE(h.remote.Count(validation_list + "1"), 1) << "the GPU worker's pods are awaited";
  EXPECT_EQ(h.client.Count(validation_list), 0) << "never the hub's pods";
}

TEST(ReconcilerRemoteTest, ARemoteNamespaceNamedLikeTheRolloutsOwnMustStillOptIn) {
  RemoteHarness h;
  h.remote.objects["/app"] = Json::parse(R"({"metadata":{"name":"app"}})");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  EXPECT_EQ(h.remote.Count("patch"), 0);
  const api::Rollout r = h.Stored();
  EXPECT_EQ(r.status.environments.at(0).reason, "NamespaceNotPermitted");
  EXPECT_EQ(api::PhaseName(r.status.phase), "Failed");
}

TEST(ReconcilerRemoteTest, AnUnreachableClusterHoldsTheEnvironmentThenFailsAtTheDeadline) {
  RemoteHarness h;
  h.remote_down = Status(StatusCode::kTransport, "connect: connection refused");
  auto res = h.reconciler->Reconcile("app/r");
  ASSERT_TRUE(res.status.ok()) << "not an error of the reconcile: " << res.status.ToString();
  api::Rollout r = h.Stored();
  EXPECT_EQ(api::PhaseName(r.status.environments.at(0).phase), "Pending");
  EXPECT_NE(r.status.environments[0].message.find(
                "waiting for the cluster (ClusterUnreachable): cluster prod-eu (environment dev): "
                "kubeconfig Secret app/prod-eu: connect: connection refused"),
            std::string::npos)
      << r.status.environments[0].message;
  bool held = false;
  for (const auto& c : r.status.conditions) {
    held = held || (c.type == "Progressing" && c.reason == "ClusterUnreachable");
  }
  EXPECT_TRUE(held) << "the Progressing condition says why it waits";
  ASSERT_TRUE(res.requeue_after.has_value());

  h.SyncCaches();
  h.clock.Advance(std::chrono::seconds(601));  // past the default progress deadline (600 s)
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  r = h.Stored();
  EXPECT_EQ(api::PhaseName(r.status.phase), "Failed");
  EXPECT_EQ(r.status.environments.at(0).reason, "ClusterUnreachable");
  EXPECT_EQ(h.remote.Count("patch"), 0);
}

TEST(ReconcilerRemoteTest, AMissingKubeconfigSecretHoldsTheEnvironmentAndSaysSo) {
  RemoteHarness h;
  h.client.objects.erase("app/prod-eu");
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  const api::Rollout r = h.Stored();
  EXPECT_NE(r.status.environments.at(0).message.find("kubeconfig Secret app/prod-eu not found"),
            std::string::npos)
      << r.status.environments[0].message;
  EXPECT_EQ(h.remote.Count("get"), 0);
}

TEST(ReconcilerRemoteTest, ARemoteClusterThatStopsAnsweringMidRolloutHoldsVerifying) {
  RemoteHarness h;
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  ASSERT_EQ(api::PhaseName(h.Stored().status.environments.at(0).phase), "Verifying");
  h.SyncCaches();
  h.remote.objects.erase("/app");  // the remote namespace read now fails as below
  h.remote.objects.erase("app/api");
  // The remote API server answers 503 to everything: its reads fail, so nothing is judged on
  // them (no DeploymentNotFound, no rollback), the environment waits.
  class Down final : public testing::UnimplementedClient {
    Result<Json> Get(const kube::ResourceType&, const std::string&, const std::string&) override {
      return Status(StatusCode::kUnavailable, "the server is currently unable to handle it");
    }
  };
  h.remote_down.reset();
  auto down_registry = std::make_unique<kube::ClusterRegistry>(
      h.client, h.clock, [](const kube::RestConfig&) -> Result<std::unique_ptr<kube::KubeClient>> {
        return std::unique_ptr<kube::KubeClient>(std::make_unique<Down>());
      });
  ReconcilerOptions ro;
  ro.clusters = down_registry.get();
  h.reconciler = std::make_unique<Reconciler>(h.client, h.clock, h.rollouts, h.deployments,
                                              h.namespaces, nullptr, nullptr, h.events, ro);
  ASSERT_TRUE(h.reconciler->Reconcile("app/r").status.ok());
  const api::Rollout r = h.Stored();
  EXPECT_EQ(api::PhaseName(r.status.environments.at(0).phase), "Verifying");
  EXPECT_NE(r.status.environments[0].message.find("ClusterUnreachable"), std::string::npos)
      << r.status.environments[0].message;
}

}  // namespace
}  // namespace rollgate::rollout
