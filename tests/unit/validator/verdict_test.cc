// Tests of the verdict: exit codes, JSON rendering and its 4 KiB bound, the usage and timeout
// verdicts, and the thread-safe recorder the probe fills.
// Thread-safety: single-threaded tests, except the recorder's concurrency test.
#include "controller/validator/verdict.h"

#include <cpprest/json.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "controller/validator/verdict_recorder.h"

namespace rollgate::validator {
namespace {

web::json::value Parse(const std::string& json) { return web::json::value::parse(json); }

Verdict PassedVerdict() {
  Verdict v;
  v.passed = true;
  v.message = "CUDA works";
  v.driver_version = 12040;
  v.device_count = 1;
  v.devices.push_back({0, "NVIDIA H200", {9, 0}, 150754820096ULL});
  v.checks.push_back({"library", true, "loaded /usr/lib/libcuda.so.1"});
  v.checks.push_back({"kernel", true, "ok"});
  v.duration_ms = 412;
  return v;
}

TEST(CudaVerdictTest, EveryFailureClassHasItsOwnExitCode) {
  const std::vector<std::pair<FailureClass, int>> table = {
      {FailureClass::kNone, 0},     {FailureClass::kUsage, 2},    {FailureClass::kLibrary, 10},
      {FailureClass::kInit, 11},    {FailureClass::kDevices, 12}, {FailureClass::kBelowMinimum, 13},
      {FailureClass::kContext, 14}, {FailureClass::kKernel, 15},  {FailureClass::kTimeout, 16},
  };
  std::set<std::string> names;
  for (const auto& [failure, code] : table) {
    EXPECT_EQ(ExitCode(failure), code) << FailureClassName(failure);
    names.insert(FailureClassName(failure));
  }
  EXPECT_EQ(names.size(), table.size());
}

TEST(CudaVerdictTest, RendersAPassedVerdict) {
  EXPECT_EQ(RenderVerdictJson(PassedVerdict()),
            R"({"passed":true,"message":"CUDA works","driverVersion":"12.4","deviceCount":1,)"
            R"("devices":[{"index":0,"name":"NVIDIA H200","computeCapability":"9.0",)"
            R"("totalMemoryBytes":150754820096}],"checks":[{"name":"library","passed":true,)"
            R"("detail":"loaded /usr/lib/libcuda.so.1"},{"name":"kernel","passed":true,)"
            R"("detail":"ok"}],"durationMs":412})");
}

TEST(CudaVerdictTest, RendersAFailureWithItsCudaError) {
  Verdict v;
  v.failure = FailureClass::kContext;
  v.message = "memory: device 1: cuMemAlloc_v2 failed";
  v.failed_check = "memory";
  v.failed_device = 1;
  v.cuda_error = CudaError{2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"};
  v.checks.push_back({"memory", false, "device 1: cuMemAlloc_v2 failed"});
  web::json::value j = Parse(RenderVerdictJson(v));
  EXPECT_FALSE(j.at("passed").as_bool());
  EXPECT_EQ(j.at("failedCheck").as_string(), "memory");
  EXPECT_EQ(j.at("failedDevice").as_integer(), 1);
  EXPECT_EQ(j.at("cudaError").at("code").as_integer(), 2);
  EXPECT_EQ(j.at("cudaError").at("name").as_string(), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(j.at("cudaError").at("message").as_string(), "out of memory");
  EXPECT_FALSE(j.has_field("driverVersion"));
  EXPECT_FALSE(j.has_field("devices"));
  EXPECT_FALSE(j.has_field("truncated"));
}

TEST(CudaVerdictTest, JsonStringsAreEscapedAndValidUtf8) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\te\x01"), R"("a\"b\\c\nd\te\u0001")");
  EXPECT_EQ(JsonString("GPU \xC3\xA9\xE2\x82\xAC"), "\"GPU \xC3\xA9\xE2\x82\xAC\"");  // é €
  EXPECT_EQ(JsonString("bad \xFF\xC3("), "\"bad \xEF\xBF\xBD\xEF\xBF\xBD(\"");
  EXPECT_EQ(JsonString("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // surrogate
  bool cut = false;
  EXPECT_EQ(JsonString("abcdefgh", 8, &cut), "\"abcdefgh\"");
  EXPECT_FALSE(cut);
  EXPECT_EQ(JsonString("abcdefghi", 8, &cut), "\"abcde...\"");
  EXPECT_TRUE(cut);
  // Never cuts inside a character: "ab" + "é" (2 bytes) + ... with room for 3 bytes + "...".
  EXPECT_EQ(JsonString("ab\xC3\xA9xyz", 6), "\"ab...\"");
  EXPECT_EQ(JsonString("ab\xC3\xA9xyz", 7), "\"ab\xC3\xA9xyz\"");  // exactly 7 bytes
  EXPECT_EQ(JsonString("ab\xC3\xA9xyzw", 7), "\"ab\xC3\xA9...\"");
}

TEST(CudaVerdictTest, StaysUnderTheTerminationMessageLimit) {
  Verdict v = PassedVerdict();
  v.devices.clear();
  for (int i = 0; i < 64; ++i) {
    v.devices.push_back({i, std::string(300, 'G') + "\xC3\xA9", {9, 0}, 150754820096ULL});
  }
  v.device_count = 64;
  v.message = std::string(5000, 'm');
  v.checks.push_back({"kernel", false, std::string(3000, '"')});
  std::string json = RenderVerdictJson(v);
  EXPECT_LE(json.size(), kMaxVerdictBytes);
  EXPECT_LT(kMaxVerdictBytes, 4096U);
  web::json::value j = Parse(json);
  EXPECT_TRUE(j.at("truncated").as_bool());
  EXPECT_EQ(j.at("deviceCount").as_integer(), 64);
  std::size_t shown = j.at("devices").as_array().size();
  EXPECT_GE(shown, 1U);
  EXPECT_EQ(static_cast<std::size_t>(j.at("devicesOmitted").as_integer()) + shown, 64U);
  EXPECT_EQ(j.at("checks").as_array().size(), 3U);
}

TEST(CudaVerdictTest, EightDevicesFitWithoutTruncation) {
  Verdict v = PassedVerdict();
  v.devices.clear();
  for (int i = 0; i < 8; ++i)
    v.devices.push_back({i, "NVIDIA H100 80GB HBM3", {9, 0}, 85ULL << 30});
  std::string json = RenderVerdictJson(v);
  web::json::value j = Parse(json);
  EXPECT_FALSE(j.has_field("truncated"));
  EXPECT_EQ(j.at("devices").as_array().size(), 8U);
}

TEST(CudaVerdictTest, TinyBudgetKeepsTheEssentials) {
  Verdict v = UsageVerdict(std::string(2000, '\x01'));
  std::string json = RenderVerdictJson(v, 256);
  EXPECT_LE(json.size(), 256U);
  web::json::value j = Parse(json);
  EXPECT_FALSE(j.at("passed").as_bool());
  EXPECT_EQ(j.at("failedCheck").as_string(), "usage");
  EXPECT_TRUE(j.at("truncated").as_bool());
}

TEST(CudaVerdictTest, UsageVerdict) {
  Verdict v = UsageVerdict("unknown flag --x");
  EXPECT_EQ(v.failure, FailureClass::kUsage);
  EXPECT_EQ(v.failed_check, "usage");
  EXPECT_EQ(v.message, "usage: unknown flag --x");
  ASSERT_EQ(v.checks.size(), 1U);
  EXPECT_FALSE(v.checks[0].passed);
}

TEST(CudaVerdictTest, TimedOutVerdictNamesTheRunningCheck) {
  Verdict progress;
  progress.checks.push_back({"library", true, "loaded"});
  Verdict v = TimedOutVerdict(progress, "init", 1);
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(v.failure, FailureClass::kTimeout);
  EXPECT_EQ(v.failed_check, "init");
  EXPECT_EQ(v.message, "init: did not finish within 1s");
  ASSERT_EQ(v.checks.size(), 2U);
  EXPECT_EQ(v.checks[1], (CheckResult{"init", false, "did not finish within 1s"}));

  EXPECT_EQ(TimedOutVerdict({}, "", 2.5).failed_check, "timeout");
  EXPECT_EQ(TimedOutVerdict({}, "", 2.5).message, "timeout: did not finish within 2.5s");
}

TEST(CudaVerdictTest, TimedOutAfterAFailureKeepsTheFailure) {
  Verdict progress;
  progress.failure = FailureClass::kKernel;
  progress.failed_check = "kernel";
  progress.message = "kernel: device 0: wrong result";
  progress.cuda_error = CudaError{700, "CUDA_ERROR_ILLEGAL_ADDRESS", "illegal"};
  Verdict v = TimedOutVerdict(progress, "cleanup", 60);
  EXPECT_EQ(v.failure, FailureClass::kTimeout);
  EXPECT_EQ(v.failed_check, "kernel");
  EXPECT_EQ(v.message, "kernel: device 0: wrong result; then cleanup did not finish within 60s");
  EXPECT_TRUE(v.cuda_error.has_value());
}

TEST(CudaVerdictRecorderTest, RecordsChecksInOrderAndFinishes) {
  VerdictRecorder r;
  r.Begin("library");
  EXPECT_EQ(r.Snapshot().running, "library");
  r.Pass("loaded x");
  EXPECT_EQ(r.Snapshot().running, "");
  r.Begin("driverVersion");
  r.SetDriverVersion(12040);
  r.Pass("12.4");
  r.SetDeviceCount(2);
  r.AddDevice({0, "A", {9, 0}, 1});
  r.AddDevice({1, "A", {9, 0}, 1});
  r.Finish();
  Verdict v = r.Snapshot().verdict;
  EXPECT_TRUE(v.passed);
  EXPECT_EQ(r.failure(), FailureClass::kNone);
  EXPECT_EQ(v.message,
            "CUDA works: driver 12.4, 2 device(s): A (compute capability 9.0) and 1 more");
  ASSERT_EQ(v.checks.size(), 2U);
  EXPECT_EQ(v.checks[0], (CheckResult{"library", true, "loaded x"}));
  EXPECT_EQ(v.checks[1], (CheckResult{"driverVersion", true, "12.4"}));
  EXPECT_EQ(v.device_count, 2);
}

TEST(CudaVerdictRecorderTest, FirstFailureWins) {
  VerdictRecorder r;
  r.Begin("context");
  r.Fail(FailureClass::kContext, "device 0: boom", CudaError{46, "E", "busy"}, 0);
  r.Begin("cleanup");
  r.Fail(FailureClass::kKernel, "later");
  r.Finish();
  Verdict v = r.Snapshot().verdict;
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(v.failure, FailureClass::kContext);
  EXPECT_EQ(v.failed_check, "context");
  EXPECT_EQ(v.failed_device, 0);
  EXPECT_EQ(v.message, "context: device 0: boom");
  EXPECT_EQ(v.cuda_error->name, "E");
  EXPECT_EQ(v.checks.size(), 1U);
  EXPECT_EQ(r.Snapshot().running, "");
}

TEST(CudaVerdictRecorderTest, SnapshotsWhileTheProbeWrites) {
  VerdictRecorder r;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      r.Begin("c" + std::to_string(i));
      r.AddDevice({i, "GPU", {8, 0}, 1});
      r.Pass("ok");
    }
    stop = true;
  });
  std::size_t last = 0;
  while (!stop) {
    VerdictRecorder::Progress p = r.Snapshot();
    EXPECT_GE(p.verdict.checks.size(), last);
    last = p.verdict.checks.size();
  }
  writer.join();
  EXPECT_EQ(r.Snapshot().verdict.checks.size(), 2000U);
}

}  // namespace
}  // namespace rollgate::validator
