// DriverLibrary: dlopen/dlsym of the CUDA driver. See driver_library.h.
// Thread-safety: see driver_library.h.
#include "controller/validator/driver_library.h"

#include <dlfcn.h>
#include <link.h>

#include <utility>
#include <vector>

namespace rollgate::validator {
namespace {

// Resolves `name` into `*out`; records the name in `missing` when the library lacks it.
template <class Fn>
void Resolve(void* handle, const char* name, Fn* out, std::vector<std::string>* missing) {
  void* symbol = dlsym(handle, name);
  if (symbol == nullptr) {
    missing->emplace_back(name);
    return;
  }
  // POSIX guarantees that a dlsym result for a function converts to a function pointer.
  *out = reinterpret_cast<Fn>(symbol);
}

}  // namespace

std::unique_ptr<DriverLibrary> DriverLibrary::Open(const std::string& path, std::string* error) {
  // dlerror keeps its message per thread in glibc.
  dlerror();  // NOLINT(concurrency-mt-unsafe): clears any stale message
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();  // NOLINT(concurrency-mt-unsafe): see above
    *error = why != nullptr ? why : "cannot open " + path;
    return nullptr;
  }

  DriverApi api;
  std::vector<std::string> missing;
  Resolve(handle, "cuInit", &api.cuInit, &missing);
  Resolve(handle, "cuDriverGetVersion", &api.cuDriverGetVersion, &missing);
  Resolve(handle, "cuDeviceGetCount", &api.cuDeviceGetCount, &missing);
  Resolve(handle, "cuDeviceGet", &api.cuDeviceGet, &missing);
  Resolve(handle, "cuDeviceGetName", &api.cuDeviceGetName, &missing);
  Resolve(handle, "cuDeviceGetAttribute", &api.cuDeviceGetAttribute, &missing);
  Resolve(handle, "cuDeviceTotalMem_v2", &api.cuDeviceTotalMem, &missing);
  Resolve(handle, "cuCtxCreate_v2", &api.cuCtxCreate, &missing);
  Resolve(handle, "cuCtxDestroy_v2", &api.cuCtxDestroy, &missing);
  Resolve(handle, "cuCtxSetCurrent", &api.cuCtxSetCurrent, &missing);
  Resolve(handle, "cuCtxSynchronize", &api.cuCtxSynchronize, &missing);
  Resolve(handle, "cuMemAlloc_v2", &api.cuMemAlloc, &missing);
  Resolve(handle, "cuMemFree_v2", &api.cuMemFree, &missing);
  Resolve(handle, "cuMemcpyHtoD_v2", &api.cuMemcpyHtoD, &missing);
  Resolve(handle, "cuMemcpyDtoH_v2", &api.cuMemcpyDtoH, &missing);
  Resolve(handle, "cuModuleLoadData", &api.cuModuleLoadData, &missing);
  Resolve(handle, "cuModuleGetFunction", &api.cuModuleGetFunction, &missing);
  Resolve(handle, "cuModuleUnload", &api.cuModuleUnload, &missing);
  Resolve(handle, "cuLaunchKernel", &api.cuLaunchKernel, &missing);
  Resolve(handle, "cuGetErrorName", &api.cuGetErrorName, &missing);
  Resolve(handle, "cuGetErrorString", &api.cuGetErrorString, &missing);

  std::string loaded = path;
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
      map->l_name[0] != '\0') {
    loaded = map->l_name;
  }

  if (!missing.empty()) {
    // A library with none of them is not a driver at all; one lacking a few is too old.
    constexpr std::size_t kListed = 4;
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < kListed; ++i) {
      if (!list.empty()) list += ", ";
      list += missing[i];
    }
    if (missing.size() > kListed) {
      list += " and " + std::to_string(missing.size() - kListed) + " more";
    }
    *error = loaded + " is not a usable CUDA driver library: missing " + list;
    dlclose(handle);
    return nullptr;
  }
  return std::unique_ptr<DriverLibrary>(new DriverLibrary(handle, api, std::move(loaded)));
}

DriverLibrary::~DriverLibrary() { dlclose(handle_); }

}  // namespace rollgate::validator
