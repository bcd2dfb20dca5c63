// The slice of the CUDA driver API that the startup probe uses, declared here from NVIDIA's
// published reference (cuda.h, "CUDA Driver API") so that nothing of the CUDA toolkit is needed to
// build: opaque handle types, the function signatures (the `_v2` entry points where the ABI has
// them), the few result codes and attribute numbers the probe names, and DriverApi, the table of
// function pointers that DriverLibrary fills from libcuda with dlsym.
// Thread-safety: plain declarations and a value type; a filled DriverApi may be read from any
// thread (whether a driver call may be made concurrently is the driver's business).
#pragma once

#include <cstddef>

namespace rollgate::validator {

// Handle and scalar types, binary-compatible with cuda.h on 64-bit platforms.
using CUresult = int;  // enum cudaError_enum: an int-sized enum
using CUdevice = int;
using CUdeviceptr = unsigned long long;  // NOLINT(google-runtime-int): cuda.h's exact type
using CUdevice_attribute = int;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
using CUcontext = CUctx_st*;
using CUmodule = CUmod_st*;
using CUfunction = CUfunc_st*;
using CUstream = CUstream_st*;

inline constexpr CUresult kCudaSuccess = 0;          // CUDA_SUCCESS
inline constexpr CUresult kCudaErrorNoDevice = 100;  // CUDA_ERROR_NO_DEVICE
inline constexpr CUdevice_attribute kAttrComputeCapabilityMajor = 75;
inline constexpr CUdevice_attribute kAttrComputeCapabilityMinor = 76;

// Function types, one per driver entry point (names as exported by libcuda).
using CuInitFn = CUresult (*)(unsigned int flags);
using CuDriverGetVersionFn = CUresult (*)(int* version);
using CuDeviceGetCountFn = CUresult (*)(int* count);
using CuDeviceGetFn = CUresult (*)(CUdevice* device, int ordinal);
using CuDeviceGetNameFn = CUresult (*)(char* name, int len, CUdevice device);
using CuDeviceGetAttributeFn = CUresult (*)(int* value, CUdevice_attribute attrib, CUdevice device);
using CuDeviceTotalMemFn = CUresult (*)(std::size_t* bytes, CUdevice device);
using CuCtxCreateFn = CUresult (*)(CUcontext* ctx, unsigned int flags, CUdevice device);
using CuCtxDestroyFn = CUresult (*)(CUcontext ctx);
using CuCtxSetCurrentFn = CUresult (*)(CUcontext ctx);
using CuCtxSynchronizeFn = CUresult (*)();
using CuMemAllocFn = CUresult (*)(CUdeviceptr* dptr, std::size_t bytes);
using CuMemFreeFn = CUresult (*)(CUdeviceptr dptr);
using CuMemcpyHtoDFn = CUresult (*)(CUdeviceptr dst, const void* src, std::size_t bytes);
using CuMemcpyDtoHFn = CUresult (*)(void* dst, CUdeviceptr src, std::size_t bytes);
using CuModuleLoadDataFn = CUresult (*)(CUmodule* module, const void* image);
using CuModuleGetFunctionFn = CUresult (*)(CUfunction* fn, CUmodule module, const char* name);
using CuModuleUnloadFn = CUresult (*)(CUmodule module);
using CuLaunchKernelFn = CUresult (*)(CUfunction fn, unsigned int grid_x, unsigned int grid_y,
                                      unsigned int grid_z, unsigned int block_x,
                                      unsigned int block_y, unsigned int block_z,
                                      unsigned int shared_mem_bytes, CUstream stream,
                                      void** kernel_params, void** extra);
using CuGetErrorNameFn = CUresult (*)(CUresult error, const char** name);
using CuGetErrorStringFn = CUresult (*)(CUresult error, const char** message);

// Every entry point the probe calls; DriverLibrary::Open fills all of them or fails.
struct DriverApi {
  CuInitFn cuInit = nullptr;
  CuDriverGetVersionFn cuDriverGetVersion = nullptr;
  CuDeviceGetCountFn cuDeviceGetCount = nullptr;
  CuDeviceGetFn cuDeviceGet = nullptr;
  CuDeviceGetNameFn cuDeviceGetName = nullptr;
  CuDeviceGetAttributeFn cuDeviceGetAttribute = nullptr;
  CuDeviceTotalMemFn cuDeviceTotalMem = nullptr;  // cuDeviceTotalMem_v2
  CuCtxCreateFn cuCtxCreate = nullptr;            // cuCtxCreate_v2
  CuCtxDestroyFn cuCtxDestroy = nullptr;          // cuCtxDestroy_v2
  CuCtxSetCurrentFn cuCtxSetCurrent = nullptr;
  CuCtxSynchronizeFn cuCtxSynchronize = nullptr;
  CuMemAllocFn cuMemAlloc = nullptr;      // cuMemAlloc_v2
  CuMemFreeFn cuMemFree = nullptr;        // cuMemFree_v2
  CuMemcpyHtoDFn cuMemcpyHtoD = nullptr;  // cuMemcpyHtoD_v2
  CuMemcpyDtoHFn cuMemcpyDtoH = nullptr;  // cuMemcpyDtoH_v2
  CuModuleLoadDataFn cuModuleLoadData = nullptr;
  CuModuleGetFunctionFn cuModuleGetFunction = nullptr;
  CuModuleUnloadFn cuModuleUnload = nullptr;
  CuLaunchKernelFn cuLaunchKernel = nullptr;
  CuGetErrorNameFn cuGetErrorName = nullptr;
  CuGetErrorStringFn cuGetErrorString = nullptr;
};

}  // namespace rollgate::validator
