// Tests of RunBounded (the validator's --timeout) and of writing the termination log.
// Thread-safety: each test owns its threads and joins or releases them before it ends.
#include "controller/validator/bounded_run.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "controller/validator/termination_log.h"
#include "tests/unit/validator/validator_test_support.h"

namespace rollgate::validator {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(CudaBoundedRunTest, FinishedWorkIsJoined) {
  int ran = 0;
  auto start = Clock::now();
  EXPECT_EQ(RunBounded([&] { ran = 1; }, std::chrono::seconds(10)), BoundedRunResult::kFinished);
  EXPECT_EQ(ran, 1);  // joined: the write is visible without synchronisation
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << "does not wait for the timeout";
}

TEST(CudaBoundedRunTest, OverrunningWorkTimesOutAndKeepsRunningDetached) {
  // The work blocks until released, like a hung driver call; its state lives in shared_ptrs.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    bool finished = false;
  };
  auto gate = std::make_shared<Gate>();
  auto start = Clock::now();
  BoundedRunResult result = RunBounded(
      [gate] {
        std::unique_lock lock(gate->mu);
        gate->cv.wait(lock, [&] { return gate->open; });
        gate->finished = true;
        gate->cv.notify_all();
      },
      milliseconds(200));
  auto waited = Clock::now() - start;
  EXPECT_EQ(result, BoundedRunResult::kTimedOut);
  EXPECT_GE(waited, milliseconds(200));
  EXPECT_LT(waited, milliseconds(2000));
  // Release the detached worker and see it finish, so that nothing outlives the test.
  std::unique_lock lock(gate->mu);
  gate->open = true;
  gate->cv.notify_all();
  EXPECT_TRUE(gate->cv.wait_for(lock, std::chrono::seconds(10), [&] { return gate->finished; }));
}

TEST(CudaTerminationLogTest, ReplacesTheFileContents) {
  testing::TempDir dir;
  std::string path = dir.File("termination-log");
  ASSERT_EQ(WriteTerminationLog(path, std::string(100, 'x')), "");
  ASSERT_EQ(WriteTerminationLog(path, "{\"passed\":true}"), "");
  EXPECT_EQ(testing::ReadFile(path), "{\"passed\":true}");
}

TEST(CudaTerminationLogTest, ReportsWhyItCannotWrite) {
  EXPECT_EQ(WriteTerminationLog("/nonexistent-dir/termination-log", "{}"),
            "open /nonexistent-dir/termination-log: No such file or directory");
}

}  // namespace
}  // namespace rollgate::validator
