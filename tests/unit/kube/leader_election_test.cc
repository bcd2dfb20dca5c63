#include "controller/kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/unimplemented_client.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// An API server holding one Lease, with resourceVersion-checked updates like the real one.
class LeaseServer : public testing::UnimplementedClient {
 public:
  std::mutex mu;
  std::optional<Json> lease;
  int version = 0;
  std::atomic<bool> down{false};
  // A frozen connection: requests neither answer nor fail until it thaws.
  std::atomic<bool> frozen{false};
  std::atomic<int> hanging{0};  // requests waiting on the frozen connection now

  void WaitWhileFrozen() {
    if (!frozen) return;
    ++hanging;
    while (frozen) std::this_thread::sleep_for(milliseconds(2));
    --hanging;
  }

  Result<Json> Get(const ResourceType&, const std::string&, const std::string&) override {
    WaitWhileFrozen();
    std::lock_guard<std::mutex> l(mu);
    if (down) return Status(StatusCode::kTransport, "connection refused");
    if (!lease) return Status(StatusCode::kNotFound, "lease not found");
    return *lease;
  }
  Result<Json> Create(const ResourceType&, const std::string&, const Json& obj) override {
    std::lock_guard<std::mutex> l(mu);
    if (down) return Status(StatusCode::kTransport, "connection refused");
    if (lease) return Status(StatusCode::kAlreadyExists, "exists");
    lease = obj;
    (*lease)["metadata"]["resourceVersion"] = Json::string(std::to_string(++version));
    return *lease;
  }
  Result<Json> Update(const ResourceType&, const std::string&, const Json& obj) override {
    WaitWhileFrozen();
    std::lock_guard<std::mutex> l(mu);
    if (down) return Status(StatusCode::kTransport, "connection refused");
    if (!lease) return Status(StatusCode::kNotFound, "gone");
    if (MetaString(obj, "resourceVersion") != std::to_string(version)) {
      return Status(StatusCode::kConflict, "the object has been modified");
    }
    lease = obj;
    (*lease)["metadata"]["resourceVersion"] = Json::string(std::to_string(++version));
    return *lease;
  }
  std::string Holder() {
    std::lock_guard<std::mutex> l(mu);
    return lease ? lease->at("spec").at("holderIdentity").as_string() : "";
  }
};

LeaderElectionOptions Opts(const std::string& id) {
  LeaderElectionOptions o;
  o.namespace_ = "rollgate-system";
  o.name = "rollgate-controller";
  o.identity = id;
  return o;
}

TEST(LeaderElectionTest, OptionsAreValidated) {
  EXPECT_TRUE(ValidateLeaderElectionOptions(Opts("a")).ok());
  auto o = Opts("a");
  o.renew_deadline = seconds(15);
  EXPECT_FALSE(ValidateLeaderElectionOptions(o).ok()) << "lease must exceed renew deadline";
  o = Opts("a");
  o.retry_period = milliseconds(9000);
  EXPECT_FALSE(ValidateLeaderElectionOptions(o).ok()) << "renew must exceed 1.2 x retry";
  o = Opts("");
  EXPECT_FALSE(ValidateLeaderElectionOptions(o).ok());
}

TEST(LeaderElectionTest, OneHolderAtATimeAndTakeoverAfterExpiry) {
  LeaseServer api;
  testing::FakeClock clock_a;
  testing::FakeClock clock_b;
  LeaderElector a(api, clock_a, Opts("a"), {});
  LeaderElector b(api, clock_b, Opts("b"), {});
  EXPECT_TRUE(a.TryAcquireOrRenew()) << "absent lease is created";
  EXPECT_FALSE(b.TryAcquireOrRenew());
  EXPECT_EQ(api.Holder(), "a");
  // a keeps renewing: b never sees it expire however long it waits.
  for (int i = 0; i < 10; ++i) {
    clock_b.Advance(seconds(2));
    EXPECT_TRUE(a.TryAcquireOrRenew());
    EXPECT_FALSE(b.TryAcquireOrRenew());
  }
  // a stops renewing (killed): b takes over once the lease duration passed on b's own clock.
  clock_b.Advance(seconds(14));
  EXPECT_FALSE(b.TryAcquireOrRenew());
  clock_b.Advance(seconds(1));
  EXPECT_TRUE(b.TryAcquireOrRenew());
  EXPECT_EQ(api.Holder(), "b");
  EXPECT_EQ(api.lease->at("spec").at("leaseTransitions").as_integer(), 1);
  // The old leader, back, finds it lost.
  EXPECT_FALSE(a.TryAcquireOrRenew());
}

TEST(LeaderElectionTest, ReleasedLeaseIsTakenAtOnce) {
  LeaseServer api;
  testing::FakeClock clock;
  LeaderElector a(api, clock, Opts("a"), {});
  LeaderElector b(api, clock, Opts("b"), {});
  ASSERT_TRUE(a.TryAcquireOrRenew());
  EXPECT_FALSE(b.TryAcquireOrRenew());
  a.Release();
  EXPECT_EQ(api.Holder(), "");
  EXPECT_TRUE(b.TryAcquireOrRenew()) << "no waiting for expiry after a release";
}

TEST(LeaderElectionTest, ConcurrentCandidatesNeverBothWin) {
  LeaseServer api;
  RealClock clock;
  std::atomic<int> wins{0};
  std::vector<std::thread> ts;
  ts.reserve(8);
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&, i] {
      LeaderElector e(api, clock, Opts("c" + std::to_string(i)), {});
      if (e.TryAcquireOrRenew()) wins++;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST(LeaderElectionTest, LeaderStopsActingWhenItCannotRenewAndReleasesOnStop) {
  LeaseServer api;
  RealClock clock;
  auto o = Opts("a");
  o.lease_duration = milliseconds(600);
  o.renew_deadline = milliseconds(400);
  o.retry_period = milliseconds(50);
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  LeaderElector a(api, clock, o, {[&] { started++; }, [&] { stopped++; }, nullptr});
  CancelToken stop;
  std::thread t([&] { a.Run(stop); });
  while (started.load() == 0) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(a.IsLeader());
  api.down = true;  // the API server goes away
  const auto t0 = std::chrono::steady_clock::now();
  t.join();  // Run returns once the renew deadline passed without a renewal
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(stopped.load(), 1);
  EXPECT_FALSE(a.IsLeader());
  EXPECT_LT(took, o.lease_duration) << "must stop acting before the lease can expire";

  api.down = false;
  LeaderElector b(api, clock, Opts("b"), {[] {}, nullptr, nullptr});
  CancelToken stop_b;
  std::thread tb([&] { b.Run(stop_b); });
  while (!b.IsLeader()) std::this_thread::sleep_for(milliseconds(5));
  stop_b.Cancel();
  tb.join();
  EXPECT_EQ(api.Holder(), "") << "a stopped leader releases the lease";
}

// A renewal that hangs (a half-open connection, a frozen proxy) must not keep the leader acting:
// leadership ends at the renew deadline while the request is still waiting, before the Lease can
// expire for the standby.
TEST(LeaderElectionTest, AFrozenConnectionCannotKeepTheLeaderActing) {
  LeaseServer api;
  RealClock clock;
  auto o = Opts("a");
  o.lease_duration = milliseconds(2000);
  o.renew_deadline = milliseconds(1000);
  o.retry_period = milliseconds(100);
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  std::atomic<int> hanging_when_stopped{-1};
  LeaderElector a(api, clock, o,
                  {[&] { started++; },
                   [&] {
                     hanging_when_stopped = api.hanging.load();
                     stopped++;
                   },
                   nullptr});
  CancelToken stop;
  std::thread t([&] { a.Run(stop); });
  while (started.load() == 0) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_TRUE(a.IsLeader());
  const auto t0 = std::chrono::steady_clock::now();
  api.frozen = true;
  while (stopped.load() == 0 && std::chrono::steady_clock::now() - t0 < seconds(10)) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(stopped.load(), 1);
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(hanging_when_stopped.load(), 1) << "leadership must end while the renewal hangs";
  EXPECT_LT(took, o.lease_duration) << "must stop acting before the lease can expire";
  api.frozen = false;  // the request returns (late); Run ends without acting again
  stop.Cancel();       // (only needed when leadership was wrongly kept)
  t.join();
  EXPECT_EQ(stopped.load(), 1);
  EXPECT_FALSE(a.IsLeader());
}

}  // namespace
}  // namespace rollgate::kube
