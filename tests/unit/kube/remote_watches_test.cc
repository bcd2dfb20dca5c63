// RemoteWatches: a watch of a remote namespace's Deployments per (cluster, namespace), kept while
// rollouts ask for it, reconciling them on every change.
#include "controller/kube/remote_watches.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;

Json Deployment(const std::string& name, const std::string& rv) {
  Json d = Json::object();
  d["metadata"]["namespace"] = Json::string("prod");
  d["metadata"]["name"] = Json::string(name);
  d["metadata"]["resourceVersion"] = Json::string(rv);
  d["metadata"]["annotations"]["big"] = Json::string(std::string(4096, 'x'));
  return d;
}

// Lists one Deployment; its watches deliver what the test queues, until cancelled.
class WatchableClient : public testing::UnimplementedClient {
 public:
  Result<ObjectList> List(const ResourceType& rt, const std::string& ns,
                          const ListOptions&) override {
    EXPECT_EQ(rt.resource, "deployments");
    EXPECT_EQ(ns, "prod");
    ++lists;
    ObjectList l;
    l.items.push_back(Deployment("api", "1"));
    l.resource_version = "1";
    return l;
  }
  Status Watch(const ResourceType&, const std::string& ns, const WatchOptions&,
               const std::function<bool(WatchEvent&&)>& on_event,
               const CancelToken& cancel) override {
    EXPECT_EQ(ns, "prod");
    ++watches;
    while (!cancel.cancelled()) {
      std::deque<WatchEvent> now;
      {
        std::lock_guard<std::mutex> lock(mu);
        now.swap(queued);
      }
      for (auto& e : now) on_event(std::move(e));
      (void)cancel.SleepFor(milliseconds(2));
    }
    ++ended;
    return Status(StatusCode::kCancelled, "cancelled");
  }
  void Queue(WatchEvent e) {
    std::lock_guard<std::mutex> lock(mu);
    queued.push_back(std::move(e));
  }
  std::atomic<int> lists{0};
  std::atomic<int> watches{0};
  std::atomic<int> ended{0};
  std::mutex mu;
  std::deque<WatchEvent> queued;
};

struct Changes {
  std::mutex mu;
  std::vector<std::string> keys;
  void Add(const std::string& k) {
    std::lock_guard<std::mutex> lock(mu);
    keys.push_back(k);
  }
  std::size_t Count() {
    std::lock_guard<std::mutex> lock(mu);
    return keys.size();
  }
};

// Polls `done` for up to 5 s (the watch runs on its own thread).
template <class F>
bool Eventually(F done) {
  for (int i = 0; i < 2500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return done();
}

TEST(RemoteWatchesTest, AChangeThereReconcilesTheRolloutsThatAskedAndOnlyThem) {
  testing::FakeClock clock;
  Changes changes;
  auto client = std::make_shared<WatchableClient>();
  RemoteWatches w(clock, [&](const std::string& k) { changes.Add(k); });
  EXPECT_FALSE(w.Want("team-a/prod-eu", client, "prod", "team-a/r1"));
  (void)w.Want("team-a/prod-eu", client, "prod", "team-a/r2");
  EXPECT_EQ(w.Size(), 1U) << "one watch per (cluster, namespace), however many rollouts ask";
  ASSERT_TRUE(Eventually([&] { return w.Want("team-a/prod-eu", client, "prod", "team-a/r1"); }))
      << "the watch lists, then says so";
  EXPECT_EQ(client->lists.load(), 1);
  ASSERT_TRUE(Eventually([&] { return client->watches.load() == 1; }));
  const std::size_t after_list = changes.Count();
  client->Queue({WatchEvent::Type::kModified, Deployment("api", "2")});
  ASSERT_TRUE(Eventually([&] { return changes.Count() >= after_list + 2; }));
  {
    std::lock_guard<std::mutex> lock(changes.mu);
    const std::vector<std::string> last(changes.keys.end() - 2, changes.keys.end());
    EXPECT_EQ(last, (std::vector<std::string>{"team-a/r1", "team-a/r2"}));
  }
  // A rollout that stopped asking is not reconciled any more.
  clock.Advance(std::chrono::seconds(90));
  (void)w.Want("team-a/prod-eu", client, "prod", "team-a/r1");
  clock.Advance(std::chrono::seconds(40));  // r2 last asked 130 s ago, r1 40 s ago
  const std::size_t before = changes.Count();
  client->Queue({WatchEvent::Type::kModified, Deployment("api", "3")});
  ASSERT_TRUE(Eventually([&] { return changes.Count() >= before + 1; }));
  std::this_thread::sleep_for(milliseconds(50));
  std::lock_guard<std::mutex> lock(changes.mu);
  EXPECT_EQ(changes.keys.size(), before + 1);
  EXPECT_EQ(changes.keys.back(), "team-a/r1");
}

TEST(RemoteWatchesTest, AWatchNobodyAsksForIsStoppedAndARotatedClientRestartsIt) {
  testing::FakeClock clock;
  auto first = std::make_shared<WatchableClient>();
  auto second = std::make_shared<WatchableClient>();
  RemoteWatches w(clock, [](const std::string&) {});
  (void)w.Want("team-a/prod-eu", first, "prod", "team-a/r1");
  ASSERT_TRUE(Eventually([&] { return first->watches.load() == 1; }));
  // The Secret rotated: the registry hands out a new client; the old watch ends.
  (void)w.Want("team-a/prod-eu", second, "prod", "team-a/r1");
  EXPECT_EQ(first->ended.load(), 1);
  ASSERT_TRUE(Eventually([&] { return second->watches.load() == 1; }));
  EXPECT_EQ(w.Size(), 1U);
  clock.Advance(std::chrono::minutes(1));
  EXPECT_EQ(w.Collect(), 0U);
  clock.Advance(std::chrono::minutes(1));
  EXPECT_EQ(w.Collect(), 1U);
  EXPECT_EQ(w.Size(), 0U);
  EXPECT_EQ(second->ended.load(), 1) << "its thread was stopped and joined";
}

}  // namespace
}  // namespace rollgate::kube
