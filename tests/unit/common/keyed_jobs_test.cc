#include "controller/common/keyed_jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace rollgate {
namespace {

using Jobs = KeyedJobs<int>;

Jobs::Options Opts(int workers) {
  Jobs::Options o;
  o.workers = workers;
  o.on_exception = [](const std::string&) { return -1; };
  return o;
}

// Polls until the result of (key, id) is in, or 5 s pass.
std::optional<int> AwaitResult(Jobs& jobs, const std::string& key, const std::string& id,
                               const std::function<int()>& job) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    if (auto r = jobs.Poll(key, id, job)) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return std::nullopt;
}

// A pool whose jobs never come keeps no thread; one job at a time needs one worker.
TEST(KeyedJobsTest, WorkersStartOnlyWhenJobsNeedThem) {
  Jobs jobs(Opts(4));
  EXPECT_EQ(jobs.threads(), 0U);
  EXPECT_EQ(AwaitResult(jobs, "a", "1", [] { return 7; }), 7);
  EXPECT_EQ(jobs.threads(), 1U);
  EXPECT_EQ(AwaitResult(jobs, "b", "1", [] { return 8; }), 8);
  EXPECT_EQ(jobs.threads(), 1U) << "an idle worker takes the next job";
}

// Jobs that wait start workers up to `workers`, which then run them at once; the rest wait.
TEST(KeyedJobsTest, ConcurrentJobsStartAtMostWorkersThreads) {
  Jobs jobs(Opts(3));
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  auto job = [&] {
    const int now = ++running;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(5), [&] { return release; });
    --running;
    return 1;
  };
  for (int k = 0; k < 5; ++k) EXPECT_FALSE(jobs.Poll("k" + std::to_string(k), "1", job));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (running.load() < 3 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(running.load(), 3);
  EXPECT_EQ(jobs.threads(), 3U);
  EXPECT_EQ(jobs.pending(), 5U);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  for (int k = 0; k < 5; ++k) EXPECT_EQ(AwaitResult(jobs, "k" + std::to_string(k), "1", job), 1);
  EXPECT_EQ(most.load(), 3);
  EXPECT_EQ(jobs.threads(), 3U);
}

}  // namespace
}  // namespace rollgate
