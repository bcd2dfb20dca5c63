// The CUDA startup probe: the checks of docs/design.md "Worker startup validation", in order,
// stopping at the first failure, each recorded in a VerdictRecorder:
//   library           dlopen the driver library and resolve the driver API
//   init              cuInit(0)
//   driverVersion     cuDriverGetVersion, against --min-driver-version
//   deviceCount       cuDeviceGetCount, against --min-devices
//   deviceProperties  every device's name, compute capability and total memory, against
//                     --min-compute-capability
//   context           a context on every device
//   memory            three buffers on every device, inputs copied in
//   kernel            the vecadd PTX JIT-loaded, launched, synchronised and its result checked
//                     on the host, on every device
// then "cleanup" releases what was created (modules, buffers, contexts), also after a failure.
// Thread-safety: RunProbe/RunChecks make driver calls on the calling thread (CUDA contexts are
// per-thread); they share nothing but the recorder, which is thread-safe.
#pragma once

#include "controller/validator/driver_api.h"
#include "controller/validator/options.h"
#include "controller/validator/verdict.h"
#include "controller/validator/verdict_recorder.h"

namespace rollgate::validator {

// The whole probe: loads options.cuda_library, runs the checks, and finishes the recorder.
// Returns the failure class (kNone when CUDA works).
FailureClass RunProbe(const ValidateOptions& options, VerdictRecorder& recorder);

// The checks after "library", against an already resolved driver API. Does not finish the
// recorder.
FailureClass RunChecks(const DriverApi& api, const ValidateOptions& options,
                       VerdictRecorder& recorder);

// The driver's name and description of `code` (cuGetErrorName/cuGetErrorString), with stand-ins
// when the driver does not know the code.
CudaError DescribeCudaError(const DriverApi& api, CUresult code);

}  // namespace rollgate::validator
