// AsyncEventRecorder against a fake API client whose Event creates can be held: recording never
// waits for the API server, duplicates waiting in the queue become one Event with a count, a
// duplicate within the window updates the sent Event (a merge patch of count and lastTimestamp),
// the queue is bounded (a storm is dropped and counted, never blocks), and the destructor sends
// what is queued within its flush timeout and drops the rest.
// Thread-safety: the fake client is called from the recorder's thread; it guards its state.
#include "controller/kube/event_recorder.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class EventClient final : public testing::UnimplementedClient {
 public:
  struct Call {
    std::string verb;  // "create" or "patch"
    std::string reason;
    std::int64_t count = 0;
    std::string name;
  };

  Result<Json> Create(const ResourceType& rt, const std::string&, const Json& obj) override {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_EQ(rt.resource, "events");
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !held_; });
    calls_.push_back(Call{"create", obj.at("reason").as_string(),
                          obj.at("count").as_number().to_int64(),
                          obj.at("metadata").at("name").as_string()});
    return obj;
  }
  Result<Json> Patch(const ResourceType&, const std::string&, const std::string& name, PatchType t,
                     const std::string& body, const PatchOptions&) override {
    std::lock_guard<std::mutex> lock(mu_);
    EXPECT_EQ(t, PatchType::kMerge);
    const Json p = Json::parse(body);
    EXPECT_TRUE(p.has_field("lastTimestamp")) << body;
    calls_.push_back(Call{"patch", "", p.at("count").as_number().to_int64(), name});
    return p;
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  // Waits until `n` creates have started (the recorder's thread is inside the client).
  bool WaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return entered_ >= n; });
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int entered_ = 0;
  std::vector<Call> calls_;
};

ObjectReference Rollout() {
  return {"rollgate.io/v1alpha1", "ContainerRollout", "app", "r", "u1", ""};
}

TEST(AsyncEventRecorderTest, RecordingNeverWaitsForTheApiServer) {
  testing::FakeClock clock;
  EventClient client;
  AsyncEventRecorder rec(client, clock, "rollgate-controller", "host");
  const ObjectReference ref = Rollout();
  client.Hold();
  rec.Record(ref, "Normal", "RolloutStarted", "revision 1");
  ASSERT_TRUE(client.WaitEntered(1));
  // The first create hangs in the client; these return at once (a synchronous recorder would
  // block this thread here forever).
  rec.Record(ref, "Normal", "EnvironmentStarted", "dev");
  rec.Record(ref, "Normal", "EnvironmentSucceeded", "dev");
  EXPECT_TRUE(client.calls().empty());
  client.Release();
  ASSERT_TRUE(rec.Flush(seconds(10)));
  const auto calls = client.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].reason, "RolloutStarted");
  EXPECT_EQ(calls[1].reason, "EnvironmentStarted");
  EXPECT_EQ(calls[2].reason, "EnvironmentSucceeded");
  EXPECT_EQ(rec.created(), 3u);
}

TEST(AsyncEventRecorderTest, DuplicatesWaitingInTheQueueBecomeOneEventWithACount) {
  testing::FakeClock clock;
  EventClient client;
  AsyncEventRecorder rec(client, clock, "rollgate-controller", "host");
  const ObjectReference ref = Rollout();
  client.Hold();
  rec.Record(ref, "Normal", "RolloutStarted", "revision 1");
  ASSERT_TRUE(client.WaitEntered(1));
  for (int i = 0; i < 5; ++i) rec.Record(ref, "Warning", "AnalysisInconclusive", "no data");
  rec.Record(ref, "Warning", "AnalysisInconclusive", "other text");  // distinct: its own
  client.Release();
  ASSERT_TRUE(rec.Flush(seconds(10)));
  const auto calls = client.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].reason, "AnalysisInconclusive");
  EXPECT_EQ(calls[1].count, 5);
  EXPECT_EQ(calls[2].count, 1);
  EXPECT_EQ(rec.aggregated(), 4u);
}

TEST(AsyncEventRecorderTest, ADuplicateWithinTheWindowUpdatesTheSentEvent) {
  testing::FakeClock clock;
  EventClient client;
  AsyncEventRecorder::Options o;
  o.window = seconds(600);
  AsyncEventRecorder rec(client, clock, "rollgate-controller", "host", o);
  const ObjectReference ref = Rollout();
  rec.Record(ref, "Warning", "ReconcileError", "timeout");
  ASSERT_TRUE(rec.Flush(seconds(10)));
  clock.Advance(seconds(30));
  rec.Record(ref, "Warning", "ReconcileError", "timeout");
  ASSERT_TRUE(rec.Flush(seconds(10)));
  clock.Advance(seconds(601));  // past the window: a new Event
  rec.Record(ref, "Warning", "ReconcileError", "timeout");
  ASSERT_TRUE(rec.Flush(seconds(10)));
  const auto calls = client.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].verb, "create");
  EXPECT_EQ(calls[1].verb, "patch");
  EXPECT_EQ(calls[1].name, calls[0].name) << "the sent Event is updated";
  EXPECT_EQ(calls[1].count, 2);
  EXPECT_EQ(calls[2].verb, "create");
  EXPECT_NE(calls[2].name, calls[0].name);
  EXPECT_EQ(rec.created(), 2u);
}

TEST(AsyncEventRecorderTest, AStormIsBoundedDroppedAndCountedNeverBlocking) {
  testing::FakeClock clock;
  EventClient client;
  AsyncEventRecorder::Options o;
  o.max_pending = 2;
  AsyncEventRecorder rec(client, clock, "rollgate-controller", "host", o);
  const ObjectReference ref = Rollout();
  client.Hold();
  rec.Record(ref, "Normal", "X", "being sent");
  ASSERT_TRUE(client.WaitEntered(1));
  for (int i = 0; i < 10; ++i) rec.Record(ref, "Normal", "E" + std::to_string(i), "m");
  EXPECT_EQ(rec.dropped(), 8u);
  client.Release();
  ASSERT_TRUE(rec.Flush(seconds(10)));
  const auto calls = client.calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[1].reason, "E0");
  EXPECT_EQ(calls[2].reason, "E1");
}

TEST(AsyncEventRecorderTest, TheDestructorSendsWhatIsQueued) {
  testing::FakeClock clock;
  EventClient client;
  {
    AsyncEventRecorder rec(client, clock, "rollgate-controller", "host");
    const ObjectReference ref = Rollout();
    client.Hold();
    rec.Record(ref, "Normal", "A", "a");
    ASSERT_TRUE(client.WaitEntered(1));
    rec.Record(ref, "Normal", "B", "b");
    client.Release();
  }
  EXPECT_EQ(client.calls().size(), 2u);
}

// The destructor waits flush_timeout for the queue, then drops what is left: a stop never waits
// on an API server that does not answer for longer than that and the request in flight.
TEST(AsyncEventRecorderTest, AStopDropsWhatTheFlushTimeoutLeftQueued) {
  testing::FakeClock clock;
  EventClient client;
  std::thread releaser;
  {
    AsyncEventRecorder::Options o;
    o.flush_timeout = milliseconds(50);
    AsyncEventRecorder rec(client, clock, "rollgate-controller", "host", o);
    const ObjectReference ref = Rollout();
    client.Hold();
    releaser = std::thread([&client] {
      std::this_thread::sleep_for(milliseconds(300));
      client.Release();
    });
    rec.Record(ref, "Normal", "A", "a");
    EXPECT_TRUE(client.WaitEntered(1));
    rec.Record(ref, "Normal", "B", "b");
    rec.Record(ref, "Normal", "C", "c");
  }
  releaser.join();
  EXPECT_EQ(client.calls().size(), 1u) << "B and C were still queued when the flush timed out";
}

}  // namespace
}  // namespace rollgate::kube
