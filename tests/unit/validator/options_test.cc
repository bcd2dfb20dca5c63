// Tests of rollgate-validate's option parsing: flags, driver versions, compute capabilities.
// Thread-safety: single-threaded tests.
#include "controller/validator/options.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace rollgate::validator {
namespace {

TEST(CudaOptionsTest, DriverVersionsParseInBothForms) {
  struct Case {
    std::string text;
    std::optional<int> want;
  };
  const std::vector<Case> cases = {
      {"12.4", 12040},          {"12040", 12040},
      {"12.10", 12100},         {"12", 12000},
      {"11.0", 11000},          {"13.0", 13000},
      {"12030", 12030},         {"1000", 1000},
      {"", std::nullopt},       {"12.", std::nullopt},
      {".4", std::nullopt},     {"12.4.1", std::nullopt},
      {"12.100", std::nullopt}, {"-12.4", std::nullopt},
      {"v12.4", std::nullopt},  {"12.4 ", std::nullopt},
      {"+12", std::nullopt},    {"1e4", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseDriverVersion(c.text), c.want) << "\"" << c.text << "\"";
  }
}

TEST(CudaOptionsTest, DriverVersionsFormatAsMajorMinor) {
  EXPECT_EQ(FormatDriverVersion(12040), "12.4");
  EXPECT_EQ(FormatDriverVersion(12000), "12.0");
  EXPECT_EQ(FormatDriverVersion(11080), "11.8");
  EXPECT_EQ(FormatDriverVersion(12100), "12.10");
  EXPECT_EQ(FormatDriverVersion(12041), "12.4");  // a patch digit is dropped
  for (int v : {11040, 12000, 12040, 12090, 13000}) {
    EXPECT_EQ(ParseDriverVersion(FormatDriverVersion(v)), v);
  }
}

TEST(CudaOptionsTest, ComputeCapabilitiesParseAndOrder) {
  EXPECT_EQ(ParseComputeCapability("8.0"), (ComputeCapability{8, 0}));
  EXPECT_EQ(ParseComputeCapability("8.6"), (ComputeCapability{8, 6}));
  EXPECT_EQ(ParseComputeCapability("10.0"), (ComputeCapability{10, 0}));
  EXPECT_EQ(ParseComputeCapability("12.1"), (ComputeCapability{12, 1}));
  EXPECT_EQ(ParseComputeCapability("9"), (ComputeCapability{9, 0}));
  for (const char* bad : {"", "8.", ".0", "8.0.0", "sm_80", "80a", "8,0", "-8.0", "100.0"}) {
    EXPECT_EQ(ParseComputeCapability(bad), std::nullopt) << bad;
  }
  EXPECT_LT((ComputeCapability{7, 5}), (ComputeCapability{8, 0}));
  EXPECT_LT((ComputeCapability{8, 0}), (ComputeCapability{8, 6}));
  EXPECT_LT((ComputeCapability{9, 0}), (ComputeCapability{10, 0}));  // not compared as text
  EXPECT_GE((ComputeCapability{8, 0}), (ComputeCapability{8, 0}));
  EXPECT_EQ(FormatComputeCapability({9, 0}), "9.0");
  EXPECT_EQ(FormatComputeCapability({12, 1}), "12.1");
}

TEST(CudaOptionsTest, DefaultsWithoutFlags) {
  ParsedArgs p = ParseArgs({});
  EXPECT_EQ(p.error, "");
  EXPECT_FALSE(p.help);
  EXPECT_EQ(p.options.cuda_library, "libcuda.so.1");
  EXPECT_EQ(p.options.termination_log, "/dev/termination-log");
  EXPECT_EQ(p.options.timeout_seconds, 60);
  EXPECT_EQ(p.options.min_devices, 1);
  EXPECT_EQ(p.options.min_driver_version, std::nullopt);
  EXPECT_EQ(p.options.min_compute_capability, std::nullopt);
}

TEST(CudaOptionsTest, ParsesEveryFlagInBothForms) {
  ParsedArgs p = ParseArgs({"--cuda-library", "/x/libcuda.so.1", "--termination-log=/tmp/t",
                            "--timeout", "2.5", "--min-driver-version=12.4", "--min-devices", "2",
                            "--min-compute-capability=8.0"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.options.cuda_library, "/x/libcuda.so.1");
  EXPECT_EQ(p.options.termination_log, "/tmp/t");
  EXPECT_EQ(p.options.timeout_seconds, 2.5);
  EXPECT_EQ(p.options.min_driver_version, 12040);
  EXPECT_EQ(p.options.min_devices, 2);
  EXPECT_EQ(p.options.min_compute_capability, (ComputeCapability{8, 0}));
  EXPECT_EQ(ParseArgs({"--min-driver-version", "12040"}).options.min_driver_version, 12040);
  EXPECT_TRUE(ParseArgs({"--help"}).help);
  EXPECT_TRUE(ParseArgs({"-h"}).help);
}

TEST(CudaOptionsTest, ErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"--nope"}, "unknown flag --nope"},
      {{"--nope=1"}, "unknown flag --nope"},
      {{"positional"}, "unexpected argument \"positional\""},
      {{"--"}, "unexpected argument \"--\""},
      {{"--timeout"}, "flag --timeout needs a value"},
      {{"--timeout=0"},
       "invalid value \"0\" for flag --timeout: want seconds, a number above 0 and at most 86400"},
      {{"--timeout=-1"},
       "invalid value \"-1\" for flag --timeout: want seconds, a number above 0 and at most 86400"},
      {{"--timeout=nan"},
       "invalid value \"nan\" for flag --timeout: want seconds, a number above 0 and at most "
       "86400"},
      {{"--timeout=5s"},
       "invalid value \"5s\" for flag --timeout: want seconds, a number above 0 and at most 86400"},
      {{"--min-devices=0"},
       "invalid value \"0\" for flag --min-devices: want a device count from 1 to 1024"},
      {{"--min-devices=two"},
       "invalid value \"two\" for flag --min-devices: want a device count from 1 to 1024"},
      {{"--min-driver-version=latest"},
       "invalid value \"latest\" for flag --min-driver-version: want a CUDA driver version such "
       "as 12.4 or 12040"},
      {{"--min-compute-capability=sm_80"},
       "invalid value \"sm_80\" for flag --min-compute-capability: want a compute capability "
       "such as 8.0"},
      {{"--cuda-library="},
       "invalid value \"\" for flag --cuda-library: want a library name or "
       "path"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ParseArgs(c.args).error, c.want) << c.args.front();
  }
}

TEST(CudaOptionsTest, FlagsBeforeAnErrorStillApply) {
  // So that the usage verdict reaches the termination log that was asked for.
  ParsedArgs p = ParseArgs({"--termination-log", "/tmp/t", "--bogus", "--timeout=3"});
  EXPECT_EQ(p.error, "unknown flag --bogus");
  EXPECT_EQ(p.options.termination_log, "/tmp/t");
  EXPECT_EQ(p.options.timeout_seconds, 60);
}

TEST(CudaOptionsTest, UsageListsEveryFlagAndExitCode) {
  std::string usage = Usage("rollgate-validate");
  for (const char* s :
       {"--cuda-library", "--termination-log", "--timeout", "--min-driver-version", "--min-devices",
        "--min-compute-capability", "10 library", "16 timed out"}) {
    EXPECT_NE(usage.find(s), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace rollgate::validator
