// DriverLibrary: the CUDA driver library (libcuda) loaded at run time with dlopen, and the
// DriverApi table resolved from it with dlsym. Loading at run time is what lets one validator
// binary, built without the CUDA toolkit, run on any node: on a GPU node the NVIDIA container
// runtime mounts the host's libcuda.so.1 into the container; elsewhere Open reports it missing.
// The library is opened RTLD_NODELETE: the driver starts its own threads, so it must never be
// unmapped while the process lives, and closing the handle only drops the reference.
// Thread-safety: Open may be called from any thread; a DriverLibrary is immutable after Open and
// may be read from any thread.
#pragma once

#include <memory>
#include <string>

#include "controller/validator/driver_api.h"

namespace rollgate::validator {

class DriverLibrary {
 public:
  // Opens `path` (a file name such as "libcuda.so.1", searched like any shared library, or a
  // path) and resolves every DriverApi entry point. On failure returns nullptr and sets `*error`
  // to why: the loader's message when the library cannot be opened, or the missing symbols when
  // it is not (or is too old to be) a CUDA driver library.
  static std::unique_ptr<DriverLibrary> Open(const std::string& path, std::string* error);

  DriverLibrary(const DriverLibrary&) = delete;
  DriverLibrary& operator=(const DriverLibrary&) = delete;
  ~DriverLibrary();

  const DriverApi& api() const { return api_; }
  // The file the dynamic loader actually mapped (e.g. "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
  // or the requested name when the loader does not say.
  const std::string& loaded_path() const { return loaded_path_; }

 private:
  DriverLibrary(void* handle, DriverApi api, std::string loaded_path)
      : handle_(handle), api_(api), loaded_path_(std::move(loaded_path)) {}

  void* handle_;
  DriverApi api_;
  std::string loaded_path_;
};

}  // namespace rollgate::validator
