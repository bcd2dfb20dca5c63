#include "controller/kube/rate_limiter.h"

#include <gtest/gtest.h>

#include "tests/fakes/fake_clock.h"

namespace rollgate::kube {
namespace {

using std::chrono::milliseconds;
using testing::FakeClock;

TEST(TokenBucketTest, BurstThenSpacedByQps) {
  FakeClock clock;
  TokenBucket b(5, 3, clock);  // 5 qps: one token per 200 ms
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(b.Reserve(), Duration::zero());
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(b.Reserve()), milliseconds(200));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(b.Reserve()), milliseconds(400));
  clock.Advance(milliseconds(400));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(b.Reserve()), milliseconds(200));
}

TEST(TokenBucketTest, RefillsUpToBurstOnly) {
  FakeClock clock;
  TokenBucket b(10, 2, clock);
  EXPECT_TRUE(b.TryAccept());
  EXPECT_TRUE(b.TryAccept());
  EXPECT_FALSE(b.TryAccept());
  clock.Advance(std::chrono::seconds(60));
  EXPECT_TRUE(b.TryAccept());
  EXPECT_TRUE(b.TryAccept());
  EXPECT_FALSE(b.TryAccept()) << "an idle minute must not bank more than `burst` tokens";
}

TEST(TokenBucketTest, ZeroQpsDisablesLimiting) {
  FakeClock clock;
  TokenBucket b(0, 1, clock);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(b.Reserve(), Duration::zero());
}

TEST(ItemBackoffTest, PerKeyIndependentAndCapped) {
  ItemBackoff b(milliseconds(5), std::chrono::seconds(1000));
  EXPECT_EQ(b.When("a"), milliseconds(5));
  EXPECT_EQ(b.When("a"), milliseconds(10));
  EXPECT_EQ(b.When("b"), milliseconds(5));
  for (int i = 0; i < 100; ++i) (void)b.When("a");
  EXPECT_EQ(b.When("a"), std::chrono::seconds(1000));
  EXPECT_EQ(b.NumRequeues("b"), 1);
  b.Forget("a");
  EXPECT_EQ(b.When("a"), milliseconds(5));
}

TEST(BackoffTest, WatchSequenceDoublesFrom800msTo30sWithJitter) {
  double r = 0.0;
  Backoff b({}, [&] { return r; });
  const std::vector<milliseconds> want = {
      milliseconds(800),   milliseconds(1600),  milliseconds(3200),  milliseconds(6400),
      milliseconds(12800), milliseconds(25600), milliseconds(30000), milliseconds(30000)};
  for (auto w : want) EXPECT_EQ(std::chrono::duration_cast<milliseconds>(b.Next()), w);
  b.Reset();
  r = 0.5;  // jitter 0.2 * 0.5 = +10 %
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(b.Next()), milliseconds(880));
  r = 0.999999;
  const auto d = std::chrono::duration_cast<milliseconds>(b.Next());
  EXPECT_GE(d, milliseconds(1600));
  EXPECT_LT(d, milliseconds(1920));
}

TEST(BackoffTest, DefaultRandomIsInUnitInterval) {
  auto r = DefaultRandom01();
  for (int i = 0; i < 1000; ++i) {
    const double v = r();
    ASSERT_GE(v, 0.0);
    ASSERT_LT(v, 1.0);
  }
}

}  // namespace
}  // namespace rollgate::kube
