// The CUDA startup probe. See probe.h.
// Thread-safety: see probe.h.
#include "controller/validator/probe.h"

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "controller/validator/driver_library.h"
#include "controller/validator/vecadd.h"

namespace rollgate::validator {
namespace {

constexpr std::size_t kVecAddBytes = sizeof(float) * static_cast<std::size_t>(kVecAddElements);

// What the probe created on one device; released in reverse order.
struct DeviceSession {
  int index = 0;
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::array<CUdeviceptr, 3> buffers{};  // a, b, c; 0 = not allocated
  CUmodule module = nullptr;
};

class Prober {
 public:
  Prober(const DriverApi& api, const ValidateOptions& options, VerdictRecorder& recorder)
      : api_(api), options_(options), recorder_(recorder) {}
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;
  ~Prober() { Release(); }

  FailureClass Run() {
    FailureClass failure = RunStages();
    recorder_.Begin("cleanup");
    Release();
    return failure;
  }

 private:
  FailureClass RunStages() {
    for (auto stage :
         {&Prober::Init, &Prober::DriverVersion, &Prober::DeviceCount, &Prober::DeviceProperties,
          &Prober::Contexts, &Prober::Memory, &Prober::Kernel}) {
      FailureClass failure = (this->*stage)();
      if (failure != FailureClass::kNone) return failure;
    }
    return FailureClass::kNone;
  }

  // Records a failed driver call of the running check.
  FailureClass CallFailed(FailureClass failure, const std::string& call, CUresult code,
                          std::optional<int> device = std::nullopt) {
    CudaError error = DescribeCudaError(api_, code);
    std::string detail = device ? "device " + std::to_string(*device) + ": " : "";
    detail += call + " failed: " + error.name + " (" + error.message + ")";
    recorder_.Fail(failure, std::move(detail), std::move(error), device);
    return failure;
  }

  std::string OnDevices() const { return "on " + std::to_string(sessions_.size()) + " device(s)"; }

  FailureClass Init() {
    recorder_.Begin(kCheckInit);
    if (CUresult r = api_.cuInit(0); r != kCudaSuccess) {
      // No visible device is reported by cuInit itself: that is the "no devices" class.
      return CallFailed(r == kCudaErrorNoDevice ? FailureClass::kDevices : FailureClass::kInit,
                        "cuInit", r);
    }
    recorder_.Pass("cuInit(0) succeeded");
    return FailureClass::kNone;
  }

  FailureClass DriverVersion() {
    recorder_.Begin(kCheckDriverVersion);
    int version = 0;
    if (CUresult r = api_.cuDriverGetVersion(&version); r != kCudaSuccess) {
      return CallFailed(FailureClass::kInit, "cuDriverGetVersion", r);
    }
    recorder_.SetDriverVersion(version);
    std::string text = "CUDA driver " + FormatDriverVersion(version);
    if (options_.min_driver_version) {
      std::string required = FormatDriverVersion(*options_.min_driver_version);
      if (version < *options_.min_driver_version) {
        recorder_.Fail(FailureClass::kBelowMinimum,
                       text + " is older than the required " + required);
        return FailureClass::kBelowMinimum;
      }
      text += " (at least " + required + ")";
    }
    recorder_.Pass(std::move(text));
    return FailureClass::kNone;
  }

  FailureClass DeviceCount() {
    recorder_.Begin(kCheckDeviceCount);
    int count = 0;
    if (CUresult r = api_.cuDeviceGetCount(&count); r != kCudaSuccess) {
      return CallFailed(FailureClass::kDevices, "cuDeviceGetCount", r);
    }
    if (count < 0) count = 0;
    recorder_.SetDeviceCount(count);
    if (count < options_.min_devices) {
      recorder_.Fail(FailureClass::kDevices,
                     count == 0 ? "no CUDA devices are visible"
                                : std::to_string(count) + " device(s) visible, " +
                                      std::to_string(options_.min_devices) + " required");
      return FailureClass::kDevices;
    }
    device_count_ = count;
    recorder_.Pass(std::to_string(count) + " device(s)");
    return FailureClass::kNone;
  }

  FailureClass DeviceProperties() {
    recorder_.Begin(kCheckDeviceProperties);
    std::vector<DeviceInfo> infos;
    for (int i = 0; i < device_count_; ++i) {
      DeviceSession session;
      session.index = i;
      if (CUresult r = api_.cuDeviceGet(&session.device, i); r != kCudaSuccess) {
        return CallFailed(FailureClass::kDevices, "cuDeviceGet", r, i);
      }
      std::array<char, 256> name{};
      if (CUresult r =
              api_.cuDeviceGetName(name.data(), static_cast<int>(name.size()) - 1, session.device);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kDevices, "cuDeviceGetName", r, i);
      }
      DeviceInfo info;
      info.index = i;
      info.name = name.data();  // NUL-terminated: the last byte is never written
      if (CUresult r = api_.cuDeviceGetAttribute(&info.compute_capability.major,
                                                 kAttrComputeCapabilityMajor, session.device);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kDevices, "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)",
                          r, i);
      }
      if (CUresult r = api_.cuDeviceGetAttribute(&info.compute_capability.minor,
                                                 kAttrComputeCapabilityMinor, session.device);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kDevices, "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)",
                          r, i);
      }
      std::size_t bytes = 0;
      if (CUresult r = api_.cuDeviceTotalMem(&bytes, session.device); r != kCudaSuccess) {
        return CallFailed(FailureClass::kDevices, "cuDeviceTotalMem_v2", r, i);
      }
      info.total_memory_bytes = bytes;
      recorder_.AddDevice(info);
      infos.push_back(std::move(info));
      sessions_.push_back(session);
    }
    if (options_.min_compute_capability) {
      const ComputeCapability required = *options_.min_compute_capability;
      for (const DeviceInfo& info : infos) {
        if (info.compute_capability < required) {
          recorder_.Fail(FailureClass::kBelowMinimum,
                         "device " + std::to_string(info.index) + " (" + info.name +
                             ") has compute capability " +
                             FormatComputeCapability(info.compute_capability) +
                             ", below the required " + FormatComputeCapability(required),
                         std::nullopt, info.index);
          return FailureClass::kBelowMinimum;
        }
      }
      recorder_.Pass("every device has compute capability " + FormatComputeCapability(required) +
                     " or higher");
    } else {
      recorder_.Pass("queried " + std::to_string(infos.size()) + " device(s)");
    }
    return FailureClass::kNone;
  }

  FailureClass Contexts() {
    recorder_.Begin(kCheckContext);
    for (DeviceSession& s : sessions_) {
      if (CUresult r = api_.cuCtxCreate(&s.context, 0, s.device); r != kCudaSuccess) {
        s.context = nullptr;
        return CallFailed(FailureClass::kContext, "cuCtxCreate_v2", r, s.index);
      }
    }
    recorder_.Pass("created a context " + OnDevices());
    return FailureClass::kNone;
  }

  FailureClass Memory() {
    recorder_.Begin(kCheckMemory);
    std::vector<float> sentinel(static_cast<std::size_t>(kVecAddElements), kVecAddSentinel);
    const std::array<const float*, 3> host = {inputs_.a.data(), inputs_.b.data(), sentinel.data()};
    for (DeviceSession& s : sessions_) {
      if (CUresult r = api_.cuCtxSetCurrent(s.context); r != kCudaSuccess) {
        return CallFailed(FailureClass::kContext, "cuCtxSetCurrent", r, s.index);
      }
      for (std::size_t k = 0; k < s.buffers.size(); ++k) {
        CUdeviceptr ptr = 0;
        if (CUresult r = api_.cuMemAlloc(&ptr, kVecAddBytes); r != kCudaSuccess) {
          return CallFailed(FailureClass::kContext,
                            "cuMemAlloc_v2(" + std::to_string(kVecAddBytes) + " bytes)", r,
                            s.index);
        }
        s.buffers[k] = ptr;
        if (CUresult r = api_.cuMemcpyHtoD(ptr, host[k], kVecAddBytes); r != kCudaSuccess) {
          return CallFailed(FailureClass::kContext, "cuMemcpyHtoD_v2", r, s.index);
        }
      }
    }
    recorder_.Pass("allocated 3 x " + std::to_string(kVecAddBytes) +
                   " bytes and copied the inputs " + OnDevices());
    return FailureClass::kNone;
  }

  FailureClass Kernel() {
    recorder_.Begin(kCheckKernel);
    for (DeviceSession& s : sessions_) {
      if (CUresult r = api_.cuCtxSetCurrent(s.context); r != kCudaSuccess) {
        return CallFailed(FailureClass::kKernel, "cuCtxSetCurrent", r, s.index);
      }
      if (CUresult r = api_.cuModuleLoadData(&s.module, kVecAddPtx); r != kCudaSuccess) {
        s.module = nullptr;
        return CallFailed(FailureClass::kKernel, "cuModuleLoadData (vecadd PTX)", r, s.index);
      }
      CUfunction function = nullptr;
      if (CUresult r = api_.cuModuleGetFunction(&function, s.module, kVecAddKernelName);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kKernel, "cuModuleGetFunction(vecadd)", r, s.index);
      }
      int n = kVecAddElements;
      std::array<void*, 4> params = {&s.buffers[0], &s.buffers[1], &s.buffers[2], &n};
      if (CUresult r = api_.cuLaunchKernel(function, VecAddGridSize(n), 1, 1, kVecAddBlockSize, 1,
                                           1, 0, nullptr, params.data(), nullptr);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kKernel, "cuLaunchKernel(vecadd)", r, s.index);
      }
      if (CUresult r = api_.cuCtxSynchronize(); r != kCudaSuccess) {
        return CallFailed(FailureClass::kKernel, "cuCtxSynchronize after vecadd", r, s.index);
      }
      std::vector<float> result(static_cast<std::size_t>(n), 0.0F);
      if (CUresult r = api_.cuMemcpyDtoH(result.data(), s.buffers[2], kVecAddBytes);
          r != kCudaSuccess) {
        return CallFailed(FailureClass::kKernel, "cuMemcpyDtoH_v2", r, s.index);
      }
      if (std::string wrong = CheckVecAddResult(inputs_, result); !wrong.empty()) {
        recorder_.Fail(FailureClass::kKernel,
                       "device " + std::to_string(s.index) + ": vecadd " + wrong, std::nullopt,
                       s.index);
        return FailureClass::kKernel;
      }
    }
    recorder_.Pass("vecadd of " + std::to_string(kVecAddElements) + " elements correct " +
                   OnDevices());
    return FailureClass::kNone;
  }

  // Releases modules, buffers and contexts, newest first. Errors are ignored: the process is
  // about to exit, and the verdict is already decided.
  void Release() {
    for (std::size_t i = sessions_.size(); i-- > 0;) {
      DeviceSession& s = sessions_[i];
      if (s.context == nullptr) continue;
      (void)api_.cuCtxSetCurrent(s.context);
      if (s.module != nullptr) (void)api_.cuModuleUnload(s.module);
      s.module = nullptr;
      for (std::size_t k = s.buffers.size(); k-- > 0;) {
        if (s.buffers[k] != 0) (void)api_.cuMemFree(s.buffers[k]);
        s.buffers[k] = 0;
      }
      (void)api_.cuCtxSetCurrent(nullptr);
      (void)api_.cuCtxDestroy(s.context);
      s.context = nullptr;
    }
    sessions_.clear();
  }

  const DriverApi& api_;
  const ValidateOptions& options_;
  VerdictRecorder& recorder_;
  const VecAddInputs inputs_ = MakeVecAddInputs(kVecAddElements);
  int device_count_ = 0;
  std::vector<DeviceSession> sessions_;
};

}  // namespace

CudaError DescribeCudaError(const DriverApi& api, CUresult code) {
  CudaError error;
  error.code = code;
  const char* name = nullptr;
  if (api.cuGetErrorName != nullptr && api.cuGetErrorName(code, &name) == kCudaSuccess &&
      name != nullptr) {
    error.name = name;
  } else {
    error.name = "CUresult " + std::to_string(code);
  }
  const char* message = nullptr;
  if (api.cuGetErrorString != nullptr && api.cuGetErrorString(code, &message) == kCudaSuccess &&
      message != nullptr) {
    error.message = message;
  } else {
    error.message = "unrecognised error code";
  }
  return error;
}

FailureClass RunChecks(const DriverApi& api, const ValidateOptions& options,
                       VerdictRecorder& recorder) {
  Prober prober(api, options, recorder);
  return prober.Run();
}

FailureClass RunProbe(const ValidateOptions& options, VerdictRecorder& recorder) {
  recorder.Begin(kCheckLibrary);
  std::string error;
  std::unique_ptr<DriverLibrary> library = DriverLibrary::Open(options.cuda_library, &error);
  if (library == nullptr) {
    recorder.Fail(FailureClass::kLibrary, error);
    recorder.Finish();
    return FailureClass::kLibrary;
  }
  recorder.Pass("loaded " + library->loaded_path());
  FailureClass failure = RunChecks(library->api(), options, recorder);
  recorder.Finish();
  return failure;
}

}  // namespace rollgate::validator
