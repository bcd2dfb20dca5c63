// Tests of the CUDA probe through the real loader against the fake driver library
// (tests/fakes/fake_libcuda): every success and failure path, the release of everything the
// probe creates, and the "no library" paths for real. Also checks that the fake is a faithful
// enough driver to be worth testing against (it rejects bad PTX, honours the launch geometry,
// and reports out-of-bounds accesses).
// Thread-safety: single-threaded tests (they set environment variables).
#include "controller/validator/probe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/validator/driver_library.h"
#include "controller/validator/vecadd.h"
#include "tests/unit/validator/validator_test_support.h"

namespace rollgate::validator {
namespace {

using testing::FakeLiveObjects;
using testing::kFakeLibcuda;
using testing::ScopedEnv;

// Test tables are built before main: a failure there ends the test binary, the right outcome.
// NOLINTNEXTLINE(cert-err58-cpp)
const std::vector<std::string> kAllChecks = {
    "library",          "init",    "driverVersion", "deviceCount",
    "deviceProperties", "context", "memory",        "kernel"};

struct ProbeRun {
  FailureClass failure;
  Verdict verdict;
};

ProbeRun Probe(const std::map<std::string, std::string>& env, ValidateOptions options = {}) {
  std::map<std::string, std::string> all = {
      {"FAKE_CUDA_MODE", "ok"}, {"FAKE_CUDA_DEVICES", "1"}, {"FAKE_CUDA_FAIL_DEVICE", "-1"}};
  for (const auto& [k, v] : env) all[k] = v;
  ScopedEnv scoped(all);
  if (options.cuda_library == kDefaultCudaLibrary) options.cuda_library = kFakeLibcuda;
  VerdictRecorder recorder;
  FailureClass failure = RunProbe(options, recorder);
  return {failure, recorder.Snapshot().verdict};
}

std::vector<std::string> CheckNames(const Verdict& v) {
  std::vector<std::string> names;
  for (const CheckResult& c : v.checks) names.push_back(c.name);
  return names;
}

TEST(CudaProbeTest, PassesOnAWorkingDriverAndReleasesEverything) {
  ProbeRun run = Probe({});
  ASSERT_EQ(run.failure, FailureClass::kNone) << run.verdict.message;
  const Verdict& v = run.verdict;
  EXPECT_TRUE(v.passed);
  EXPECT_EQ(CheckNames(v), kAllChecks);
  for (const CheckResult& c : v.checks) EXPECT_TRUE(c.passed) << c.name;
  EXPECT_EQ(v.checks[0].detail, "loaded " + kFakeLibcuda);
  EXPECT_EQ(v.checks[7].detail, "vecadd of 1024 elements correct on 1 device(s)");
  EXPECT_EQ(v.driver_version, 12040);
  EXPECT_EQ(v.device_count, 1);
  ASSERT_EQ(v.devices.size(), 1U);
  EXPECT_EQ(v.devices[0], (DeviceInfo{0, "Fake CUDA Device", {9, 0}, 80ULL << 30}));
  EXPECT_EQ(v.failed_check, "");
  EXPECT_FALSE(v.cuda_error.has_value());
  EXPECT_EQ(v.message,
            "CUDA works: driver 12.4, 1 device(s): Fake CUDA Device (compute capability 9.0)");
  EXPECT_EQ(FakeLiveObjects(), 0);
}

TEST(CudaProbeTest, RunsTheKernelOnEveryDevice) {
  ProbeRun run = Probe({{"FAKE_CUDA_DEVICES", "4"},
                        {"FAKE_CUDA_DEVICE_NAME", "NVIDIA H200"},
                        {"FAKE_CUDA_COMPUTE_CAPABILITY", "9.0"},
                        {"FAKE_CUDA_DRIVER_VERSION", "12080"}},
                       [] {
                         ValidateOptions o;
                         o.min_devices = 4;
                         o.min_compute_capability = ComputeCapability{8, 0};
                         o.min_driver_version = 12040;
                         return o;
                       }());
  ASSERT_EQ(run.failure, FailureClass::kNone) << run.verdict.message;
  EXPECT_EQ(run.verdict.devices.size(), 4U);
  EXPECT_EQ(run.verdict.devices[3].index, 3);
  EXPECT_EQ(run.verdict.checks[2].detail, "CUDA driver 12.8 (at least 12.4)");
  EXPECT_EQ(run.verdict.checks[4].detail, "every device has compute capability 8.0 or higher");
  EXPECT_EQ(run.verdict.checks[7].detail, "vecadd of 1024 elements correct on 4 device(s)");
  EXPECT_EQ(FakeLiveObjects(), 0);
}

// One failure path: the fake's settings, the options, and what the verdict must say.
struct FailureCase {
  std::string label;
  std::map<std::string, std::string> env;
  std::optional<int> min_driver_version;
  std::optional<ComputeCapability> min_compute_capability;
  int min_devices = 1;
  FailureClass want_failure;
  std::string want_check;
  std::string want_cuda_error;  // "" = none
  std::optional<int> want_device;
  std::string want_detail;  // the failed check's detail
};

class CudaProbeFailureTest : public ::testing::TestWithParam<FailureCase> {};

TEST_P(CudaProbeFailureTest, StopsAtTheFirstFailureWithItsClass) {
  const FailureCase& c = GetParam();
  ValidateOptions options;
  options.min_driver_version = c.min_driver_version;
  options.min_compute_capability = c.min_compute_capability;
  options.min_devices = c.min_devices;
  ProbeRun run = Probe(c.env, options);
  const Verdict& v = run.verdict;
  EXPECT_EQ(run.failure, c.want_failure) << v.message;
  EXPECT_EQ(v.failure, c.want_failure);
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(v.failed_check, c.want_check);
  EXPECT_EQ(v.failed_device, c.want_device);
  EXPECT_EQ(v.cuda_error ? v.cuda_error->name : "", c.want_cuda_error);
  // Every check before the failed one passed, in order; the failed one is last.
  std::vector<std::string> names = CheckNames(v);
  ASSERT_FALSE(names.empty());
  auto at = std::find(kAllChecks.begin(), kAllChecks.end(), c.want_check);
  ASSERT_NE(at, kAllChecks.end());
  EXPECT_EQ(names, std::vector<std::string>(kAllChecks.begin(), at + 1));
  for (std::size_t i = 0; i + 1 < v.checks.size(); ++i) EXPECT_TRUE(v.checks[i].passed);
  EXPECT_FALSE(v.checks.back().passed);
  EXPECT_EQ(v.checks.back().detail, c.want_detail);
  EXPECT_EQ(v.message, c.want_check + ": " + c.want_detail);
  EXPECT_EQ(FakeLiveObjects(), 0) << "the probe must release what it created";
}

// NOLINTNEXTLINE(cert-err58-cpp): a test table, see kAllChecks
const FailureCase kFailureCases[] = {
    {"InitFails",
     {{"FAKE_CUDA_MODE", "init_fail"}},
     {},
     {},
     1,
     FailureClass::kInit,
     "init",
     "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     {},
     "cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (system has unsupported display driver / "
     "cuda driver combination)"},
    {"InitSeesNoDevice",
     {{"FAKE_CUDA_MODE", "init_no_device"}},
     {},
     {},
     1,
     FailureClass::kDevices,
     "init",
     "CUDA_ERROR_NO_DEVICE",
     {},
     "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)"},
    {"DriverVersionFails",
     {{"FAKE_CUDA_MODE", "version_fail"}},
     {},
     {},
     1,
     FailureClass::kInit,
     "driverVersion",
     "CUDA_ERROR_UNKNOWN",
     {},
     "cuDriverGetVersion failed: CUDA_ERROR_UNKNOWN (unknown error)"},
    {"DriverTooOld",
     {{"FAKE_CUDA_MODE", "old_driver"}},
     12040,
     {},
     1,
     FailureClass::kBelowMinimum,
     "driverVersion",
     "",
     {},
     "CUDA driver 11.4 is older than the required 12.4"},
    {"NoDevices",
     {{"FAKE_CUDA_MODE", "no_devices"}},
     {},
     {},
     1,
     FailureClass::kDevices,
     "deviceCount",
     "",
     {},
     "no CUDA devices are visible"},
    {"TooFewDevices",
     {{"FAKE_CUDA_DEVICES", "2"}},
     {},
     {},
     4,
     FailureClass::kDevices,
     "deviceCount",
     "",
     {},
     "2 device(s) visible, 4 required"},
    {"DeviceNameFails",
     {{"FAKE_CUDA_MODE", "name_fail"}},
     {},
     {},
     1,
     FailureClass::kDevices,
     "deviceProperties",
     "CUDA_ERROR_INVALID_DEVICE",
     0,
     "device 0: cuDeviceGetName failed: CUDA_ERROR_INVALID_DEVICE (invalid device ordinal)"},
    {"ComputeCapabilityTooLow",
     {{"FAKE_CUDA_MODE", "low_cc"}, {"FAKE_CUDA_DEVICES", "2"}, {"FAKE_CUDA_FAIL_DEVICE", "1"}},
     {},
     ComputeCapability{8, 0},
     1,
     FailureClass::kBelowMinimum,
     "deviceProperties",
     "",
     1,
     "device 1 (Fake CUDA Device) has compute capability 3.5, below the required 8.0"},
    {"PtxNewerThanTheDevice",
     {{"FAKE_CUDA_MODE", "low_cc"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "CUDA_ERROR_NO_BINARY_FOR_GPU",
     0,
     "device 0: cuModuleLoadData (vecadd PTX) failed: CUDA_ERROR_NO_BINARY_FOR_GPU (no kernel "
     "image is available for execution on the device)"},
    {"ContextFails",
     {{"FAKE_CUDA_MODE", "ctx_fail"}},
     {},
     {},
     1,
     FailureClass::kContext,
     "context",
     "CUDA_ERROR_DEVICES_UNAVAILABLE",
     0,
     "device 0: cuCtxCreate_v2 failed: CUDA_ERROR_DEVICES_UNAVAILABLE (CUDA-capable device(s) "
     "is/are busy or unavailable)"},
    {"ContextFailsOnTheSecondDevice",
     {{"FAKE_CUDA_MODE", "ctx_fail"}, {"FAKE_CUDA_DEVICES", "2"}, {"FAKE_CUDA_FAIL_DEVICE", "1"}},
     {},
     {},
     1,
     FailureClass::kContext,
     "context",
     "CUDA_ERROR_DEVICES_UNAVAILABLE",
     1,
     "device 1: cuCtxCreate_v2 failed: CUDA_ERROR_DEVICES_UNAVAILABLE (CUDA-capable device(s) "
     "is/are busy or unavailable)"},
    {"AllocationFails",
     {{"FAKE_CUDA_MODE", "alloc_fail"}},
     {},
     {},
     1,
     FailureClass::kContext,
     "memory",
     "CUDA_ERROR_OUT_OF_MEMORY",
     0,
     "device 0: cuMemAlloc_v2(4096 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"},
    {"AllocationFailsOnTheThirdDevice",
     {{"FAKE_CUDA_MODE", "alloc_fail"}, {"FAKE_CUDA_DEVICES", "3"}, {"FAKE_CUDA_FAIL_DEVICE", "2"}},
     {},
     {},
     1,
     FailureClass::kContext,
     "memory",
     "CUDA_ERROR_OUT_OF_MEMORY",
     2,
     "device 2: cuMemAlloc_v2(4096 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"},
    {"ModuleLoadFails",
     {{"FAKE_CUDA_MODE", "module_fail"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "CUDA_ERROR_INVALID_PTX",
     0,
     "device 0: cuModuleLoadData (vecadd PTX) failed: CUDA_ERROR_INVALID_PTX (a PTX JIT "
     "compilation failed)"},
    {"LaunchFails",
     {{"FAKE_CUDA_MODE", "launch_fail"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
     0,
     "device 0: cuLaunchKernel(vecadd) failed: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES (too many "
     "resources requested for launch)"},
    {"KernelFaultsAtSynchronize",
     {{"FAKE_CUDA_MODE", "sync_fail"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "CUDA_ERROR_ILLEGAL_ADDRESS",
     0,
     "device 0: cuCtxSynchronize after vecadd failed: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal "
     "memory access was encountered)"},
    {"WrongResult",
     {{"FAKE_CUDA_MODE", "wrong_result"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "",
     0,
     "device 0: vecadd wrong result in 1 of 1024 elements, first at index 512: got 641, want 640"},
    {"WrongResultOnTheSecondDevice",
     {{"FAKE_CUDA_MODE", "wrong_result"},
      {"FAKE_CUDA_DEVICES", "2"},
      {"FAKE_CUDA_FAIL_DEVICE", "1"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "",
     1,
     "device 1: vecadd wrong result in 1 of 1024 elements, first at index 512: got 641, want 640"},
    {"KernelNeverRan",
     {{"FAKE_CUDA_MODE", "noop_kernel"}},
     {},
     {},
     1,
     FailureClass::kKernel,
     "kernel",
     "",
     0,
     "device 0: vecadd wrong result in 1024 of 1024 elements, first at index 0: got -1, want "
     "256"},
};

INSTANTIATE_TEST_SUITE_P(AllPaths, CudaProbeFailureTest, ::testing::ValuesIn(kFailureCases),
                         [](const ::testing::TestParamInfo<FailureCase>& p) {
                           return p.param.label;
                         });

TEST(CudaProbeTest, OldDriverPassesWithoutAMinimum) {
  ProbeRun run = Probe({{"FAKE_CUDA_MODE", "old_driver"}});
  EXPECT_EQ(run.failure, FailureClass::kNone) << run.verdict.message;
  EXPECT_EQ(run.verdict.driver_version, 11040);
}

TEST(CudaProbeTest, MissingLibraryIsReportedForReal) {
  ValidateOptions options;
  options.cuda_library = "/nonexistent/libcuda.so.1";
  VerdictRecorder recorder;
  EXPECT_EQ(RunProbe(options, recorder), FailureClass::kLibrary);
  Verdict v = recorder.Snapshot().verdict;
  EXPECT_EQ(v.failed_check, "library");
  ASSERT_EQ(v.checks.size(), 1U);
  EXPECT_EQ(v.checks[0].detail,
            "/nonexistent/libcuda.so.1: cannot open shared object file: No such file or directory");
  EXPECT_FALSE(v.cuda_error.has_value());
}

TEST(CudaProbeTest, ALibraryThatIsNotADriverIsRejected) {
  std::string error;
  EXPECT_EQ(DriverLibrary::Open("libm.so.6", &error), nullptr);
  EXPECT_NE(error.find("is not a usable CUDA driver library: missing cuInit, "
                       "cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet and 17 more"),
            std::string::npos)
      << error;
}

TEST(CudaDriverLibraryTest, ResolvesEveryEntryPointOfTheFake) {
  std::string error;
  std::unique_ptr<DriverLibrary> lib = DriverLibrary::Open(kFakeLibcuda, &error);
  ASSERT_NE(lib, nullptr) << error;
  EXPECT_EQ(lib->loaded_path(), kFakeLibcuda);
  const DriverApi& api = lib->api();
  EXPECT_NE(api.cuInit, nullptr);
  EXPECT_NE(api.cuLaunchKernel, nullptr);
  EXPECT_NE(api.cuGetErrorString, nullptr);
  // A code the driver does not know still gets a description.
  CudaError unknown = DescribeCudaError(api, 12345);
  EXPECT_EQ(unknown.code, 12345);
  EXPECT_EQ(unknown.name, "CUresult 12345");
  EXPECT_EQ(unknown.message, "unrecognised error code");
  EXPECT_EQ(DescribeCudaError(api, 2).name, "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(DescribeCudaError(DriverApi{}, 2).name, "CUresult 2");
}

// The fake driver itself: the probe's kernel test is only as good as the fake's execution of it.
class CudaFakeDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    lib_ = DriverLibrary::Open(kFakeLibcuda, &error);
    ASSERT_NE(lib_, nullptr) << error;
    ASSERT_EQ(api().cuInit(0), kCudaSuccess);
    ASSERT_EQ(api().cuCtxCreate(&ctx_, 0, 0), kCudaSuccess);
    for (CUdeviceptr& b : buffers_) ASSERT_EQ(api().cuMemAlloc(&b, kBytes), kCudaSuccess);
    VecAddInputs in = MakeVecAddInputs(kVecAddElements);
    ASSERT_EQ(api().cuMemcpyHtoD(buffers_[0], in.a.data(), kBytes), kCudaSuccess);
    ASSERT_EQ(api().cuMemcpyHtoD(buffers_[1], in.b.data(), kBytes), kCudaSuccess);
    std::vector<float> sentinel(kVecAddElements, kVecAddSentinel);
    ASSERT_EQ(api().cuMemcpyHtoD(buffers_[2], sentinel.data(), kBytes), kCudaSuccess);
  }
  void TearDown() override {
    if (lib_ == nullptr) return;
    if (module_ != nullptr) {
      EXPECT_EQ(api().cuModuleUnload(module_), kCudaSuccess);
    }
    for (CUdeviceptr b : buffers_) {
      if (b != 0) {
        EXPECT_EQ(api().cuMemFree(b), kCudaSuccess);
      }
    }
    if (ctx_ != nullptr) {
      EXPECT_EQ(api().cuCtxDestroy(ctx_), kCudaSuccess);
    }
    EXPECT_EQ(FakeLiveObjects(), 0);
  }
  const DriverApi& api() const { return lib_->api(); }

  CUresult Launch(unsigned grid, unsigned block, int n) {
    CUresult r = api().cuModuleLoadData(&module_, kVecAddPtx);
    if (r != kCudaSuccess) return r;
    CUfunction fn = nullptr;
    if ((r = api().cuModuleGetFunction(&fn, module_, "vecadd")) != kCudaSuccess) return r;
    std::array<void*, 4> params = {&buffers_[0], &buffers_[1], &buffers_[2], &n};
    if ((r = api().cuLaunchKernel(fn, grid, 1, 1, block, 1, 1, 0, nullptr, params.data(),
                                  nullptr)) != kCudaSuccess) {
      return r;
    }
    return api().cuCtxSynchronize();
  }
  std::vector<float> Result() {
    std::vector<float> c(kVecAddElements);
    EXPECT_EQ(api().cuMemcpyDtoH(c.data(), buffers_[2], kBytes), kCudaSuccess);
    return c;
  }

  static constexpr std::size_t kBytes = sizeof(float) * kVecAddElements;
  ScopedEnv env_{
      {{"FAKE_CUDA_MODE", "ok"}, {"FAKE_CUDA_DEVICES", "1"}, {"FAKE_CUDA_FAIL_DEVICE", "-1"}}};
  std::unique_ptr<DriverLibrary> lib_;
  CUcontext ctx_ = nullptr;
  std::array<CUdeviceptr, 3> buffers_{};
  CUmodule module_ = nullptr;
};

TEST_F(CudaFakeDriverTest, RunsThePtxOverTheLaunchGeometry) {
  ASSERT_EQ(Launch(1, 256, kVecAddElements), kCudaSuccess);  // one block: a quarter done
  std::vector<float> c = Result();
  EXPECT_EQ(c[0], 256.0F);
  EXPECT_EQ(c[255], 255.0F + (1024.0F - 255.0F) / 4);
  EXPECT_EQ(c[256], kVecAddSentinel);
  EXPECT_EQ(c[1023], kVecAddSentinel);
}

TEST_F(CudaFakeDriverTest, HonoursTheElementCountParameter) {
  ASSERT_EQ(Launch(4, 256, 10), kCudaSuccess);
  std::vector<float> c = Result();
  EXPECT_EQ(c[9], 9.0F + (1024.0F - 9.0F) / 4);
  EXPECT_EQ(c[10], kVecAddSentinel);
}

TEST_F(CudaFakeDriverTest, ReportsOutOfBoundsAccessAtSynchronize) {
  EXPECT_EQ(Launch(8, 256, 2048), 700);  // CUDA_ERROR_ILLEGAL_ADDRESS
}

TEST_F(CudaFakeDriverTest, RejectsPtxItCannotCompile) {
  CUmodule m = nullptr;
  EXPECT_EQ(api().cuModuleLoadData(&m, "not ptx"), 218);  // CUDA_ERROR_INVALID_PTX
  std::string ptx = kVecAddPtx;
  std::string bad = ptx;
  bad.replace(bad.find("add.f32"), 7, "sub.f32");
  EXPECT_EQ(api().cuModuleLoadData(&m, bad.c_str()), 218);
  std::string newer = ptx;
  newer.replace(newer.find("sm_50"), 5, "sm_100");
  EXPECT_EQ(api().cuModuleLoadData(&m, newer.c_str()), 209);  // CUDA_ERROR_NO_BINARY_FOR_GPU
  ASSERT_EQ(api().cuModuleLoadData(&module_, kVecAddPtx), kCudaSuccess);
  CUfunction fn = nullptr;
  EXPECT_EQ(api().cuModuleGetFunction(&fn, module_, "vecmul"), 500);  // CUDA_ERROR_NOT_FOUND
}

TEST_F(CudaFakeDriverTest, NeedsACurrentContext) {
  ASSERT_EQ(api().cuCtxSetCurrent(nullptr), kCudaSuccess);
  CUdeviceptr p = 0;
  EXPECT_EQ(api().cuMemAlloc(&p, 16), 201);  // CUDA_ERROR_INVALID_CONTEXT
  ASSERT_EQ(api().cuCtxSetCurrent(ctx_), kCudaSuccess);
}

}  // namespace
}  // namespace rollgate::validator
