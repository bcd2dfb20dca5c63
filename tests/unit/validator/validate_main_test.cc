// Process-level tests of rollgate-validate: the binary run against the fake driver (and against
// no driver at all), checking the JSON verdict on stdout, the termination log file, and the exit
// code of every failure class, including --timeout with a driver call that never returns.
// Thread-safety: single-threaded tests; each child process gets its own environment.
#include <cpprest/json.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/unit/validator/validator_test_support.h"

namespace rollgate::validator {
namespace {

using testing::kFakeLibcuda;
using testing::kValidateBin;
using testing::ProcessResult;
using testing::RunProcess;
using testing::TempDir;

class ValidateProcessTest : public ::testing::Test {
 protected:
  // Runs rollgate-validate against the fake in `mode` with the termination log in the temp dir.
  ProcessResult Run(const std::string& mode, std::vector<std::string> flags = {},
                    std::map<std::string, std::optional<std::string>> env = {},
                    bool fake_library = true) {
    std::vector<std::string> argv = {kValidateBin, "--termination-log", log_};
    if (fake_library) {
      argv.emplace_back("--cuda-library");
      argv.push_back(kFakeLibcuda);
    }
    argv.insert(argv.end(), flags.begin(), flags.end());
    env.emplace("FAKE_CUDA_MODE", mode);
    env.emplace("FAKE_CUDA_DEVICES", std::nullopt);
    env.emplace("FAKE_CUDA_FAIL_DEVICE", std::nullopt);
    return RunProcess(argv, env, dir_);
  }

  // The stdout verdict: one line of JSON, the same as the termination log, under 4 KiB.
  web::json::value Verdict(const ProcessResult& r) {
    EXPECT_FALSE(r.out.empty()) << r.err;
    EXPECT_EQ(r.out.back(), '\n');
    EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "exactly one line";
    std::string json = r.out.substr(0, r.out.size() - 1);
    EXPECT_LE(json.size(), 4000U);
    EXPECT_EQ(testing::ReadFile(log_), json) << "termination log";
    try {
      return web::json::value::parse(json);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what() << "\n" << json;
      return web::json::value::object();
    }
  }

  TempDir dir_;
  std::string log_ = dir_.File("termination-log");
};

TEST_F(ValidateProcessTest, PassesAgainstAWorkingDriver) {
  ProcessResult r = Run("ok", {"--min-driver-version", "12.4", "--min-compute-capability", "8.0"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  web::json::value v = Verdict(r);
  EXPECT_TRUE(v.at("passed").as_bool());
  EXPECT_EQ(v.at("driverVersion").as_string(), "12.4");
  EXPECT_EQ(v.at("deviceCount").as_integer(), 1);
  web::json::value device = v.at("devices").at(0);
  EXPECT_EQ(device.at("index").as_integer(), 0);
  EXPECT_EQ(device.at("name").as_string(), "Fake CUDA Device");
  EXPECT_EQ(device.at("computeCapability").as_string(), "9.0");
  EXPECT_EQ(device.at("totalMemoryBytes").as_number().to_uint64(), 80ULL << 30);
  EXPECT_EQ(v.at("checks").as_array().size(), 8U);
  for (const web::json::value& c : v.at("checks").as_array()) {
    EXPECT_TRUE(c.at("passed").as_bool()) << c.serialize();
  }
  EXPECT_FALSE(v.has_field("failedCheck"));
  EXPECT_FALSE(v.has_field("cudaError"));
  EXPECT_GE(v.at("durationMs").as_integer(), 0);
  EXPECT_EQ(r.err, "");
}

struct ClassCase {
  std::string mode;
  std::vector<std::string> flags;
  int want_exit;
  std::string want_check;
  std::string want_cuda_error;  // "" = none
};

TEST_F(ValidateProcessTest, EachFailureClassHasItsExitCode) {
  const std::vector<ClassCase> cases = {
      {"init_fail", {}, 11, "init", "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"},
      {"init_no_device", {}, 12, "init", "CUDA_ERROR_NO_DEVICE"},
      {"no_devices", {}, 12, "deviceCount", ""},
      {"ok", {"--min-devices", "2"}, 12, "deviceCount", ""},
      {"old_driver", {"--min-driver-version", "12.4"}, 13, "driverVersion", ""},
      {"low_cc", {"--min-compute-capability", "8.0"}, 13, "deviceProperties", ""},
      {"ctx_fail", {}, 14, "context", "CUDA_ERROR_DEVICES_UNAVAILABLE"},
      {"alloc_fail", {}, 14, "memory", "CUDA_ERROR_OUT_OF_MEMORY"},
      {"module_fail", {}, 15, "kernel", "CUDA_ERROR_INVALID_PTX"},
      {"launch_fail", {}, 15, "kernel", "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"},
      {"wrong_result", {}, 15, "kernel", ""},
  };
  for (const ClassCase& c : cases) {
    SCOPED_TRACE(c.mode);
    ProcessResult r = Run(c.mode, c.flags);
    EXPECT_EQ(r.exit_code, c.want_exit) << r.out << r.err;
    web::json::value v = Verdict(r);
    EXPECT_FALSE(v.at("passed").as_bool());
    EXPECT_EQ(v.at("failedCheck").as_string(), c.want_check);
    EXPECT_EQ(v.at("message").as_string().rfind(c.want_check + ": ", 0), 0U);
    if (c.want_cuda_error.empty()) {
      EXPECT_FALSE(v.has_field("cudaError"));
    } else {
      EXPECT_EQ(v.at("cudaError").at("name").as_string(), c.want_cuda_error);
      EXPECT_FALSE(v.at("cudaError").at("message").as_string().empty());
    }
  }
}

TEST_F(ValidateProcessTest, MissingLibraryExits10) {
  ProcessResult r = Run("ok", {"--cuda-library", "/nonexistent/libcuda.so.1"}, {}, false);
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  web::json::value v = Verdict(r);
  EXPECT_EQ(v.at("failedCheck").as_string(), "library");
  EXPECT_EQ(v.at("message").as_string(),
            "library: /nonexistent/libcuda.so.1: cannot open shared object file: No such file or "
            "directory");
}

TEST_F(ValidateProcessTest, DefaultLibraryNameIsMissingOnThisMachine) {
  // Decided in the child: this test process has the fake loaded, and its soname is libcuda.so.1.
  ProcessResult r = Run("ok", {}, {{"LD_LIBRARY_PATH", std::nullopt}}, false);
  web::json::value v = Verdict(r);
  if (v.at("checks").at(0).at("passed").as_bool()) {
    GTEST_SKIP() << "a CUDA driver is installed here: " << v.at("checks").at(0).serialize();
  }
  EXPECT_EQ(r.exit_code, 10) << r.out << r.err;
  EXPECT_EQ(v.at("message").as_string(),
            "library: libcuda.so.1: cannot open shared object file: No such file or directory");
}

TEST_F(ValidateProcessTest, DefaultLibraryNameFindsTheDriverOnTheLibraryPath) {
  // As the NVIDIA container runtime does: libcuda.so.1 where the loader looks.
  ProcessResult r = Run("ok", {}, {{"LD_LIBRARY_PATH", testing::DirName(kFakeLibcuda)}}, false);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Verdict(r).at("checks").at(0).at("detail").as_string(), "loaded " + kFakeLibcuda);
}

TEST_F(ValidateProcessTest, TimeoutExits16WithTheHungCheck) {
  struct Hang {
    std::string mode;
    std::string check;
  };
  for (const Hang& h :
       {Hang{"hang", "kernel"}, Hang{"hang_init", "init"}, Hang{"hang_destroy", "cleanup"}}) {
    SCOPED_TRACE(h.mode);
    ProcessResult r = Run(h.mode, {"--timeout", "1"});
    EXPECT_EQ(r.exit_code, 16) << r.out << r.err;
    EXPECT_GE(r.elapsed, std::chrono::milliseconds(1000));
    EXPECT_LT(r.elapsed, std::chrono::milliseconds(2500)) << "the bound holds";
    web::json::value v = Verdict(r);
    EXPECT_FALSE(v.at("passed").as_bool());
    EXPECT_EQ(v.at("failedCheck").as_string(), h.check);
    EXPECT_EQ(v.at("message").as_string(), h.check + ": did not finish within 1s");
    web::json::array checks = v.at("checks").as_array();
    EXPECT_EQ(checks.at(checks.size() - 1).at("name").as_string(), h.check);
    EXPECT_GE(v.at("durationMs").as_integer(), 1000);
  }
}

TEST_F(ValidateProcessTest, UsageErrorExits2WithAVerdict) {
  ProcessResult r = Run("ok", {"--min-compute-capability", "sm_80"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  web::json::value v = Verdict(r);
  EXPECT_EQ(v.at("failedCheck").as_string(), "usage");
  EXPECT_NE(r.err.find("Usage: "), std::string::npos);
}

TEST_F(ValidateProcessTest, HelpPrintsUsageAndExits0) {
  ProcessResult r = RunProcess({kValidateBin, "--help"}, {}, dir_);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("Usage: ", 0), 0U) << r.out;
}

TEST_F(ValidateProcessTest, UnwritableTerminationLogDoesNotChangeTheVerdict) {
  ProcessResult r = RunProcess(
      {kValidateBin, "--cuda-library", kFakeLibcuda, "--termination-log", "/nonexistent-dir/log"},
      {{"FAKE_CUDA_MODE", "ok"}}, dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err,
            "rollgate-validate: cannot write the termination log: open /nonexistent-dir/log: No "
            "such file or directory\n");
  EXPECT_TRUE(web::json::value::parse(r.out.substr(0, r.out.size() - 1)).at("passed").as_bool());
}

TEST_F(ValidateProcessTest, ManyDevicesStayUnder4KiB) {
  ProcessResult r = Run(
      "ok", {}, {{"FAKE_CUDA_DEVICES", "64"}, {"FAKE_CUDA_DEVICE_NAME", std::string(120, 'N')}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  web::json::value v = Verdict(r);  // checks the size bound
  EXPECT_TRUE(v.at("passed").as_bool());
  EXPECT_TRUE(v.at("truncated").as_bool());
  EXPECT_EQ(v.at("deviceCount").as_integer(), 64);
  EXPECT_EQ(v.at("devices").as_array().size() + v.at("devicesOmitted").as_integer(), 64U);
}

}  // namespace
}  // namespace rollgate::validator
