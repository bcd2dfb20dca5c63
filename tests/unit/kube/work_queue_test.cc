#include "controller/kube/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/fakes/fake_clock.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeClock;

WorkQueue::Options NoBucket() {
  WorkQueue::Options o;
  o.qps = 0;  // isolate the per-key backoff
  return o;
}

TEST(WorkQueueTest, DeduplicatesKeys) {
  FakeClock clock;
  WorkQueue q(clock, {});
  q.Add("a/x");
  q.Add("a/x");
  q.Add("a/y");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(q.TryGet(), "a/x");
  EXPECT_EQ(q.TryGet(), "a/y");
  EXPECT_EQ(q.TryGet(), std::nullopt);
}

TEST(WorkQueueTest, KeyAddedWhileProcessingIsRequeuedOnDoneOnly) {
  FakeClock clock;
  WorkQueue q(clock, {});
  q.Add("k");
  auto k = q.TryGet();
  ASSERT_EQ(k, "k");
  q.Add("k");  // an event arrives while a worker holds the key
  EXPECT_EQ(q.TryGet(), std::nullopt) << "a key must never be handed to two workers at once";
  q.Done("k");
  EXPECT_EQ(q.TryGet(), "k");
  q.Done("k");
  EXPECT_EQ(q.TryGet(), std::nullopt);
}

TEST(WorkQueueTest, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue q(clock, {});
  q.AddAfter("k", seconds(5));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  EXPECT_EQ(q.DelayedLen(), 1u);
  clock.Advance(milliseconds(4999));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(q.TryGet(), "k");
  EXPECT_EQ(q.DelayedLen(), 0u);
}

TEST(WorkQueueTest, EarlierAddAfterWinsAndStaleEntriesAreDropped) {
  FakeClock clock;
  WorkQueue q(clock, {});
  q.AddAfter("k", seconds(10));
  q.AddAfter("k", seconds(2));
  q.AddAfter("k", seconds(30));  // later than the pending one: ignored
  clock.Advance(seconds(2));
  EXPECT_EQ(q.TryGet(), "k");
  q.Done("k");
  clock.Advance(seconds(30));
  EXPECT_EQ(q.TryGet(), std::nullopt) << "superseded delays must not fire again";
}

TEST(WorkQueueTest, PerKeyBackoffDoublesFrom5msTo1000s) {
  FakeClock clock;
  WorkQueue q(clock, NoBucket());
  const std::vector<milliseconds> want = {milliseconds(5), milliseconds(10), milliseconds(20),
                                          milliseconds(40), milliseconds(80)};
  for (auto d : want) {
    q.AddRateLimited("k");
    clock.Advance(d - milliseconds(1));
    EXPECT_EQ(q.TryGet(), std::nullopt) << "ready before " << d.count() << "ms";
    clock.Advance(milliseconds(1));
    auto k = q.TryGet();
    ASSERT_EQ(k, "k") << "not ready after " << d.count() << "ms";
    q.Done("k");
  }
  EXPECT_EQ(q.NumRequeues("k"), 5);
  for (int i = 0; i < 40; ++i) {
    q.AddRateLimited("k");
    clock.Advance(seconds(1000));
    ASSERT_EQ(q.TryGet(), "k");
    q.Done("k");
  }
  // Capped at 1000 s however many failures (2^45 * 5 ms would be centuries).
  q.AddRateLimited("k");
  clock.Advance(seconds(999));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  clock.Advance(seconds(1));
  EXPECT_EQ(q.TryGet(), "k");
  q.Done("k");
  q.Forget("k");
  EXPECT_EQ(q.NumRequeues("k"), 0);
  q.AddRateLimited("k");
  clock.Advance(milliseconds(5));
  EXPECT_EQ(q.TryGet(), "k") << "Forget resets the backoff";
}

TEST(WorkQueueTest, OverallBucketLimitsBurstsAcrossKeys) {
  FakeClock clock;
  WorkQueue::Options o;
  o.qps = 10;
  o.burst = 2;
  WorkQueue q(clock, o);
  q.AddRateLimited("a");  // token 1: 5 ms backoff
  q.AddRateLimited("b");  // token 2: 5 ms
  q.AddRateLimited("c");  // bucket empty: waits 100 ms
  clock.Advance(milliseconds(5));
  std::set<std::string> got;
  while (auto k = q.TryGet()) got.insert(*k);
  EXPECT_EQ(got, (std::set<std::string>{"a", "b"}));
  clock.Advance(milliseconds(94));
  EXPECT_EQ(q.TryGet(), std::nullopt);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(q.TryGet(), "c");
}

TEST(WorkQueueTest, ShutDownWakesBlockedWorkers) {
  RealClock clock;
  WorkQueue q(clock, {});
  std::atomic<int> returned{0};
  std::thread t1([&] {
    if (!q.Get().has_value()) returned++;
  });
  std::thread t2([&] {
    if (!q.Get().has_value()) returned++;
  });
  q.ShutDown();
  t1.join();
  t2.join();
  EXPECT_EQ(returned.load(), 2);
  q.Add("x");
  EXPECT_EQ(q.Len(), 0u) << "adds after shutdown are dropped";
}

TEST(WorkQueueTest, BlockingGetSeesDelayedKeyOnRealClock) {
  RealClock clock;
  WorkQueue q(clock, {});
  q.AddAfter("k", milliseconds(20));
  auto k = q.Get();
  EXPECT_EQ(k, "k");
}

TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKey) {
  RealClock clock;
  WorkQueue q(clock, {});
  std::mutex mu;
  std::set<std::string> in_flight;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  workers.reserve(4);
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.Get()) {
        {
          std::lock_guard<std::mutex> l(mu);
          if (!in_flight.insert(*k).second) overlap = true;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        {
          std::lock_guard<std::mutex> l(mu);
          in_flight.erase(*k);
        }
        processed++;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.Add("key" + std::to_string(i % 7));
  while (q.Len() > 0) std::this_thread::sleep_for(milliseconds(1));
  std::this_thread::sleep_for(milliseconds(20));
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap.load());
  EXPECT_GE(processed.load(), 7);
}

}  // namespace
}  // namespace rollgate::kube
