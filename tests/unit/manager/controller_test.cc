// Tests of the controller's work loop (Controller) over real informers fed by a scripted client:
// every rollout is reconciled once the caches sync, events on a Deployment, a Namespace or a
// labelled pod reach exactly the rollouts that target them, a plan's requeue-after brings the key
// back, and nothing is reconciled before this replica may act.
// Thread-safety: the controller runs on its own thread; the test reads under a mutex.
#include "controller/manager/controller.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "controller/common/clock.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::manager {
namespace {

using kube::Json;
using std::chrono::milliseconds;

Json Meta(const std::string& ns, const std::string& name, const std::string& rv) {
  Json o = Json::object();
  o["metadata"] = Json::object();
  if (!ns.empty()) o["metadata"]["namespace"] = Json::string(ns);
  o["metadata"]["name"] = Json::string(name);
  o["metadata"]["resourceVersion"] = Json::string(rv);
  return o;
}

// A pod "ns/name" carrying the worker-validation label `value`.
Json Pod(const std::string& ns, const std::string& name, const std::string& rv,
         const std::string& value) {
  Json o = Meta(ns, name, rv);
  o["metadata"]["labels"] = Json::object();
  o["metadata"]["labels"]["rollgate.io/validation"] = Json::string(value);
  return o;
}

// A rollout "ns/name" with one environment in `target_ns` targeting Deployment `deployment`.
Json Rollout(const std::string& ns, const std::string& name, const std::string& target_ns,
             const std::string& deployment) {
  Json o = Meta(ns, name, "1");
  o["spec"] = Json::parse(R"({"images":{"app":"registry.example.com/app:2"},"environments":[
      {"name":"dev","namespace":")" +
                          target_ns + R"(","targets":[{"deployment":")" + deployment +
                          R"(","containers":{"app":"app"}}]}]})");
  return o;
}

// Lists answer from `objects` per resource; watches deliver what a test pushes, else idle.
class ScriptedClient : public testing::UnimplementedClient {
 public:
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<Json>> objects;             // resource -> list
  std::map<std::string, std::deque<kube::WatchEvent>> pending;  // resource -> events

  void Push(const std::string& resource, kube::WatchEvent ev) {
    std::lock_guard<std::mutex> l(mu);
    pending[resource].push_back(std::move(ev));
    cv.notify_all();
  }

  Result<kube::ObjectList> List(const kube::ResourceType& rt, const std::string&,
                                const kube::ListOptions&) override {
    std::lock_guard<std::mutex> l(mu);
    return kube::ObjectList{objects[rt.resource], "1", ""};
  }
  Status Watch(const kube::ResourceType& rt, const std::string&, const kube::WatchOptions&,
               const std::function<bool(kube::WatchEvent&&)>& on_event,
               const CancelToken& cancel) override {
    while (!cancel.cancelled()) {
      std::optional<kube::WatchEvent> ev;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait_for(l, milliseconds(20), [&] { return !pending[rt.resource].empty(); });
        if (!pending[rt.resource].empty()) {
          ev = std::move(pending[rt.resource].front());
          pending[rt.resource].pop_front();
        }
      }
      if (ev && !on_event(std::move(*ev))) break;
    }
    return Status(StatusCode::kCancelled, "stopped");
  }
};

kube::InformerOptions For(const kube::ResourceType& rt) {
  kube::InformerOptions o;
  o.type = rt;
  return o;
}

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest()
      : rollouts_(client_, For(kube::resources::ContainerRollouts())),
        deployments_(client_, For(kube::resources::Deployments())),
        namespaces_(client_, For(kube::resources::Namespaces())),
        pods_(client_, For(kube::resources::Pods())) {
    client_.objects["containerrollouts"] = {Rollout("team-a", "x", "team-b", "web"),
                                            Rollout("team-a", "y", "team-a", "api")};
  }
  ~ControllerTest() override { Stop(); }

  void Start(ControllerOptions opts = {}, const rollout::ReconcileResult& result = {}) {
    opts.concurrency = 2;
    controller_ = std::make_unique<Controller>(
        clock_, Informers{rollouts_, deployments_, namespaces_, pods_},
        [this, result](const std::string& key) {
          std::lock_guard<std::mutex> l(mu_);
          reconciled_[key] += 1;
          cv_.notify_all();
          return result;
        },
        std::move(opts));
    thread_ = std::thread([this] { controller_->Run(stop_); });
  }
  void Stop() {
    stop_.Cancel();
    if (thread_.joinable()) thread_.join();
  }
  // Waits until `key` was reconciled at least `n` times; false after 5 s.
  bool WaitFor(const std::string& key, int n) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, std::chrono::seconds(5), [&] { return reconciled_[key] >= n; });
  }
  int Count(const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    return reconciled_[key];
  }

  RealClock clock_;
  ScriptedClient client_;
  kube::Informer rollouts_;
  kube::Informer deployments_;
  kube::Informer namespaces_;
  kube::Informer pods_;
  CancelToken stop_;
  std::unique_ptr<Controller> controller_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> reconciled_;
};

TEST_F(ControllerTest, EveryRolloutIsReconciledOnceTheCachesSync) {
  Start();
  EXPECT_TRUE(WaitFor("team-a/x", 1));
  EXPECT_TRUE(WaitFor("team-a/y", 1));
  EXPECT_TRUE(controller_->HasSynced());
}

TEST_F(ControllerTest, ADeploymentEventReachesOnlyTheRolloutThatTargetsIt) {
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  ASSERT_TRUE(WaitFor("team-a/y", 1));
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-b", "web", "5")});
  EXPECT_TRUE(WaitFor("team-a/x", 2));
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-c", "other", "6")});
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-a", "api", "7")});
  EXPECT_TRUE(WaitFor("team-a/y", 2));
  EXPECT_EQ(Count("team-a/x"), 2) << "an unrelated Deployment woke rollout x";
}

TEST_F(ControllerTest, NamespaceAndPodEventsReachTheRolloutsTargetingThatNamespace) {
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  client_.Push("namespaces", {kube::WatchEvent::Type::kModified, Meta("", "team-b", "8")});
  EXPECT_TRUE(WaitFor("team-a/x", 2));
  client_.Push("pods", {kube::WatchEvent::Type::kAdded, Pod("team-b", "web-1", "9", "1")});
  EXPECT_TRUE(WaitFor("team-a/x", 3));
  EXPECT_EQ(Count("team-a/y"), 1);
}

// The caches hold only what a rollout needs: Deployments some rollout targets, and pods labelled
// with a validation value one waits for (its revision or the next) in its environments'
// namespaces. A tenant's other objects are neither stored nor wake anything.
TEST_F(ControllerTest, TheDeploymentCacheHoldsOnlyTargetedDeployments) {
  client_.objects["deployments"] = {Meta("team-b", "web", "2"), Meta("team-b", "other", "3"),
                                    Meta("team-c", "web", "4")};
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  EXPECT_NE(deployments_.Get("team-b/web"), nullptr) << "listed after the rollouts were known";
  EXPECT_EQ(deployments_.Get("team-b/other"), nullptr);
  EXPECT_EQ(deployments_.Get("team-c/web"), nullptr);
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-c", "more", "5")});
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-a", "api", "6")});
  ASSERT_TRUE(WaitFor("team-a/y", 2));
  EXPECT_NE(deployments_.Get("team-a/api"), nullptr);
  EXPECT_EQ(deployments_.Get("team-c/more"), nullptr);
  EXPECT_EQ(deployments_.Size(), 2U);
}

TEST_F(ControllerTest, ADeploymentNoRolloutTargetsAnyMoreLeavesTheCache) {
  client_.objects["deployments"] = {Meta("team-b", "web", "2"), Meta("team-a", "api", "3")};
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  ASSERT_NE(deployments_.Get("team-b/web"), nullptr);
  Json moved = Rollout("team-a", "x", "team-c", "web");
  moved["metadata"]["resourceVersion"] = Json::string("10");
  client_.Push("containerrollouts", {kube::WatchEvent::Type::kModified, moved});
  ASSERT_TRUE(WaitFor("team-a/x", 2));
  EXPECT_EQ(deployments_.Get("team-b/web"), nullptr) << "retargeted: pruned";
  client_.Push("containerrollouts",
               {kube::WatchEvent::Type::kDeleted, Rollout("team-a", "y", "team-a", "api")});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (deployments_.Get("team-a/api") != nullptr && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(deployments_.Get("team-a/api"), nullptr) << "its rollout deleted: pruned";
}

TEST_F(ControllerTest, ADeploymentRecordedInStatusStaysCachedAfterTheSpecMovedOn) {
  Json x = Rollout("team-a", "x", "team-c", "web");  // the spec moved to team-c ...
  x["status"] = Json::parse(
      R"({"revision":2,"environments":[{"name":"dev","targets":[
          {"deployment":"web","namespace":"team-b","previousImages":{"app":"a:1"}}]}]})");
  client_.objects["containerrollouts"] = {x};  // ... the status still records team-b/web
  client_.objects["deployments"] = {Meta("team-b", "web", "2"), Meta("team-c", "web", "3")};
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  EXPECT_NE(deployments_.Get("team-b/web"), nullptr) << "a rollback may still patch it";
  EXPECT_NE(deployments_.Get("team-c/web"), nullptr);
}

TEST_F(ControllerTest, ThePodCacheHoldsOnlyPodsWithAnAwaitedValidationLabel) {
  Json x = Rollout("team-a", "x", "team-b", "web");
  x["status"] = Json::parse(R"({"revision":4})");
  client_.objects["containerrollouts"] = {x};
  client_.objects["pods"] = {Pod("team-b", "old", "2", "3"), Pod("team-b", "now", "3", "4"),
                             Pod("team-b", "next", "4", "5"), Pod("team-c", "else", "5", "4")};
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  EXPECT_NE(pods_.Get("team-b/now"), nullptr);
  EXPECT_NE(pods_.Get("team-b/next"), nullptr) << "the revision a reconcile may be writing";
  EXPECT_EQ(pods_.Get("team-b/old"), nullptr);
  EXPECT_EQ(pods_.Get("team-c/else"), nullptr) << "no rollout has an environment there";
  client_.Push("pods", {kube::WatchEvent::Type::kAdded, Pod("team-b", "tenant", "6", "999")});
  client_.Push("pods", {kube::WatchEvent::Type::kAdded, Pod("team-b", "new", "7", "4")});
  ASSERT_TRUE(WaitFor("team-a/x", 2));
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(Count("team-a/x"), 2) << "a pod with a value no one awaits woke the rollout";
  EXPECT_EQ(pods_.Get("team-b/tenant"), nullptr);
  // The rollout moves on to revision 5: the pods of revision 4 are no longer awaited.
  x["status"] = Json::parse(R"({"revision":5})");
  x["metadata"]["resourceVersion"] = Json::string("20");
  client_.Push("containerrollouts", {kube::WatchEvent::Type::kModified, x});
  ASSERT_TRUE(WaitFor("team-a/x", 3));
  EXPECT_EQ(pods_.Get("team-b/now"), nullptr);
  EXPECT_EQ(pods_.Get("team-b/new"), nullptr);
  EXPECT_NE(pods_.Get("team-b/next"), nullptr);
}

TEST_F(ControllerTest, ARolloutRetargetedElsewhereNoLongerHearsItsOldDeployment) {
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  Json moved = Rollout("team-a", "x", "team-c", "web");
  moved["metadata"]["resourceVersion"] = Json::string("10");
  client_.Push("containerrollouts", {kube::WatchEvent::Type::kModified, moved});
  ASSERT_TRUE(WaitFor("team-a/x", 2));
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-b", "web", "11")});
  client_.Push("deployments", {kube::WatchEvent::Type::kAdded, Meta("team-c", "web", "12")});
  EXPECT_TRUE(WaitFor("team-a/x", 3));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(Count("team-a/x"), 3);
}

TEST_F(ControllerTest, APlansRequeueAfterBringsTheKeyBack) {
  Start({}, rollout::ReconcileResult{Status::Ok(), milliseconds(50)});
  EXPECT_TRUE(WaitFor("team-a/x", 3));
}

// A key that keeps failing (an API server that is down, then answering 503 while it starts)
// retries with a doubling delay, but never waits longer than max_retry_delay: 40 failures take
// ~1.7 s at a 40 ms cap, and would take years with client-go's uncapped doubling.
TEST_F(ControllerTest, RetriesOfAFailingKeyWaitAtMostTheMaximumDelay) {
  ControllerOptions opts;
  opts.max_retry_delay = milliseconds(40);
  Start(std::move(opts),
        rollout::ReconcileResult{Status(StatusCode::kUnavailable, "the API server is starting"),
                                 std::nullopt});
  EXPECT_TRUE(WaitFor("team-a/x", 40)) << Count("team-a/x") << " attempts";
}

TEST_F(ControllerTest, NothingIsReconciledBeforeThisReplicaMayAct) {
  CancelToken leader;
  ControllerOptions opts;
  opts.wait_for_leadership = [&leader](const CancelToken& s) {
    while (!leader.cancelled() && !s.cancelled()) (void)s.SleepFor(milliseconds(10));
    return !s.cancelled();
  };
  Start(opts);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(Count("team-a/x"), 0);
  EXPECT_TRUE(controller_->HasSynced()) << "caches warm up on every replica";
  leader.Cancel();
  EXPECT_TRUE(WaitFor("team-a/x", 1));
}

TEST_F(ControllerTest, StopEndsEveryThread) {
  Start();
  ASSERT_TRUE(WaitFor("team-a/x", 1));
  const auto t0 = std::chrono::steady_clock::now();
  Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

}  // namespace
}  // namespace rollgate::manager
