#include "controller/metrics/health_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "controller/metrics/heartbeat.h"
#include "controller/metrics/metrics.h"
#include "controller/metrics/metrics_server.h"
#include "tests/fakes/fake_clock.h"
#include "tests/unit/metrics/http_get.h"

namespace rollgate::metrics {
namespace {

using testing::Get;
using ::testing::HasSubstr;
using testing::HttpReply;
using ::testing::StartsWith;

TEST(MetricsServerTest, ServesTheRegistryOverHttp) {
  MetricsOptions o;
  o.version = "9.8.7";
  Metrics m(nullptr, o);
  m.ObserveRollout("app", "r", 5, "Progressing", {{"dev", "Updating"}});
  std::atomic<std::size_t> depth{4};  // what the work queue would report
  std::atomic<int> scrapes{0};
  auto server = MetricsServer::Start("127.0.0.1:0", m.Exposition(), [&] {
    scrapes.fetch_add(1);
    m.SetQueueDepth(depth.load());
  });
  ASSERT_TRUE(server.ok()) << server.status().message();
  ASSERT_NE(*server, nullptr);
  ASSERT_GT((*server)->port(), 0);
  const HttpReply r = Get((*server)->port(), "/metrics");
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.headers, HasSubstr("text/plain"));
  EXPECT_THAT(r.body, HasSubstr("# TYPE rollgate_build_info gauge\n"));
  EXPECT_THAT(r.body, HasSubstr("rollgate_build_info{version=\"9.8.7\"} 1\n"));
  EXPECT_THAT(r.body, HasSubstr("rollgate_rollout_info{namespace=\"app\",rollout=\"r\"} 5\n"));
  // The hook ran before the registry was read.
  EXPECT_THAT(r.body, HasSubstr("rollgate_workqueue_depth 4\n"));
  EXPECT_EQ(scrapes.load(), 1);
  // Later changes show in the next scrape.
  depth = 7;
  m.SetLeader(false);
  const std::string body = Get((*server)->port(), "/metrics").body;
  EXPECT_THAT(body, HasSubstr("rollgate_workqueue_depth 7\n"));
  EXPECT_THAT(body, HasSubstr("rollgate_leader 0\n"));
  EXPECT_EQ(Get((*server)->port(), "/nothing").code, 404);
  server->reset();  // stops serving before `depth` and `scrapes` go
}

TEST(MetricsServerTest, ZeroDisablesAndBadAddressesAreErrors) {
  Metrics m;
  auto off = MetricsServer::Start("0", m.Exposition());
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  auto bad = MetricsServer::Start("metrics:8080", m.Exposition());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), StartsWith("metrics: invalid bind address"));
}

TEST(MetricsServerTest, PortInUseIsUnavailable) {
  Metrics m;
  auto first = MetricsServer::Start("127.0.0.1:0", m.Exposition());
  ASSERT_TRUE(first.ok()) << first.status().message();
  const std::string bind = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsServer::Start(bind, m.Exposition());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(second.status().message(),
            "metrics: cannot bind to " + bind + ": 98 (Address already in use)");
  auto health = HealthServer::Start(bind, {});
  ASSERT_FALSE(health.ok());
  EXPECT_EQ(health.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(health.status().message(),
            "health: cannot bind to " + bind + ": 98 (Address already in use)");
}

// One server for the suite; each test plugs its own checks into the slots the server calls.
class HealthServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    HealthChecks checks;
    checks.ready = [] {
      std::lock_guard<std::mutex> lock(mu_);
      return ready_ ? ready_() : true;
    };
    checks.wedged = []() -> std::optional<std::string> {
      std::lock_guard<std::mutex> lock(mu_);
      return wedged_ ? wedged_() : std::nullopt;
    };
    auto s = HealthServer::Start("127.0.0.1:0", checks);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(server_->port(), 0);
    SetChecks(nullptr, nullptr);
  }
  void TearDown() override { SetChecks(nullptr, nullptr); }

  static void SetChecks(std::function<bool()> ready,
                        std::function<std::optional<std::string>()> wedged) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = std::move(ready);
    wedged_ = std::move(wedged);
  }
  static int port() { return server_->port(); }

  static inline std::unique_ptr<HealthServer> server_;
  static inline std::mutex mu_;
  static inline std::function<bool()> ready_;
  static inline std::function<std::optional<std::string>()> wedged_;
};

TEST_F(HealthServerTest, ReadyzFollowsTheCacheSync) {
  std::atomic<bool> synced{false};
  SetChecks([&] { return synced.load(); }, nullptr);
  HttpReply r = Get(port(), "/readyz");
  EXPECT_EQ(r.code, 503);
  EXPECT_THAT(r.body, HasSubstr("caches have not synced"));
  EXPECT_EQ(Get(port(), "/healthz").code, 200);  // not ready is still alive
  synced = true;
  r = Get(port(), "/readyz");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "ok\n");
  SetChecks(nullptr, nullptr);  // before `synced` goes
}

TEST_F(HealthServerTest, HealthzFailsWithTheReasonWhenWedged) {
  std::atomic<bool> wedged{false};
  SetChecks(nullptr, [&]() -> std::optional<std::string> {
    if (wedged.load()) return "work loop wedged: test";
    return std::nullopt;
  });
  HttpReply r = Get(port(), "/healthz");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(Get(port(), "/readyz").code, 200);  // no readiness check: ready
  wedged = true;
  r = Get(port(), "/healthz");
  EXPECT_EQ(r.code, 500);
  EXPECT_EQ(r.body, "work loop wedged: test\n");
  EXPECT_THAT(r.headers, HasSubstr("Content-Type: text/plain"));
  SetChecks(nullptr, nullptr);
}

TEST_F(HealthServerTest, OtherPathsAreNotFound) {
  EXPECT_EQ(Get(port(), "/").code, 404);
  EXPECT_EQ(Get(port(), "/metrics").code, 404);
  EXPECT_EQ(Get(port(), "/healthzz").code, 404);
  EXPECT_EQ(Get(port(), "/healthz").code, 200);
  EXPECT_EQ(Get(port(), "/readyz").code, 200);
}

TEST_F(HealthServerTest, ServesTheHeartbeat) {
  rollgate::testing::FakeClock clock;
  Heartbeat hb(clock, std::chrono::seconds(60));
  std::atomic<std::size_t> queued{2};
  SetChecks(nullptr, [&] { return hb.Wedged(queued.load()); });
  clock.Advance(std::chrono::seconds(61));
  HttpReply r = Get(port(), "/healthz");
  EXPECT_EQ(r.code, 500);
  EXPECT_THAT(r.body, HasSubstr("no worker progress for 61s while 2 key(s) are queued"));
  hb.Beat();
  EXPECT_EQ(Get(port(), "/healthz").code, 200);
  clock.Advance(std::chrono::seconds(61));
  EXPECT_EQ(Get(port(), "/healthz").code, 500);
  queued = 0;  // drained: idle is healthy
  EXPECT_EQ(Get(port(), "/healthz").code, 200);
  SetChecks(nullptr, nullptr);  // before `hb` goes
}

TEST(HealthServerStartTest, ZeroDisablesAndBadAddressesAreErrors) {
  auto off = HealthServer::Start("0", {});
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(*off, nullptr);
  auto bad = HealthServer::Start(":99999", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), StartsWith("health: invalid bind address"));
}

TEST(HealthHeartbeatTest, IdleLoopIsNeverWedged) {
  rollgate::testing::FakeClock clock;
  Heartbeat hb(clock, std::chrono::seconds(60));
  clock.Advance(std::chrono::hours(5));
  EXPECT_EQ(hb.Wedged(0), std::nullopt);
  clock.Advance(std::chrono::hours(5));
  EXPECT_EQ(hb.Wedged(0), std::nullopt);
}

TEST(HealthHeartbeatTest, QueuedWorkWithoutProgressIsWedged) {
  rollgate::testing::FakeClock clock;
  Heartbeat hb(clock, std::chrono::seconds(60));
  clock.Advance(std::chrono::seconds(60));
  EXPECT_EQ(hb.Wedged(1), std::nullopt);  // at the limit: still fine
  clock.Advance(std::chrono::seconds(1));
  auto why = hb.Wedged(1);
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("no worker progress for 61s while 1 key(s) are queued (limit 60s)"));
  EXPECT_TRUE(hb.Wedged(3).has_value());
  hb.Beat();
  EXPECT_EQ(hb.Wedged(3), std::nullopt);
  clock.Advance(std::chrono::seconds(59));
  hb.Beat();
  clock.Advance(std::chrono::seconds(59));
  EXPECT_EQ(hb.Wedged(3), std::nullopt);  // beats keep it alive
  clock.Advance(std::chrono::seconds(2));
  EXPECT_TRUE(hb.Wedged(3).has_value());
}

TEST(HealthHeartbeatTest, WorkAfterALongIdleTimeCountsFromTheLastEmptyQueue) {
  rollgate::testing::FakeClock clock;
  Heartbeat hb(clock, std::chrono::seconds(60));
  clock.Advance(std::chrono::hours(1));  // no beats: nothing to do
  EXPECT_EQ(hb.Wedged(0), std::nullopt);
  clock.Advance(std::chrono::seconds(10));  // a key arrives between two probes
  EXPECT_EQ(hb.Wedged(1), std::nullopt);
  clock.Advance(std::chrono::seconds(51));
  auto why = hb.Wedged(1);
  ASSERT_TRUE(why.has_value());
  EXPECT_THAT(*why, HasSubstr("for 61s"));
}

}  // namespace
}  // namespace rollgate::metrics
