// VerdictRecorder: the verdict as the probe builds it, check by check. The probe runs on a worker
// thread while main waits for it with a deadline; when the deadline passes, main takes a Snapshot
// (the checks finished so far and the one still running) to report the timeout, while the worker
// may still be stuck inside a driver call.
// Thread-safety: every member may be called concurrently from any thread (one mutex; it is never
// held across a driver call).
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "controller/validator/verdict.h"

namespace rollgate::validator {

class VerdictRecorder {
 public:
  // `name` is now running (a check name from verdict.h, or "cleanup").
  void Begin(std::string name);
  // The running check passed.
  void Pass(std::string detail);
  // The running check failed. Only the first failure sets the failure class, message, error and
  // device; later calls are ignored.
  void Fail(FailureClass failure, std::string detail, std::optional<CudaError> error = {},
            std::optional<int> device = {});

  void SetDriverVersion(int encoded);
  void SetDeviceCount(int count);
  void AddDevice(DeviceInfo device);

  // The run is over: nothing is running any more, and without a failure the verdict passes with
  // a one-line summary as its message.
  void Finish();

  struct Progress {
    Verdict verdict;
    std::string running;  // the check (or "cleanup") under way; empty when none
  };
  Progress Snapshot() const;
  FailureClass failure() const;

 private:
  mutable std::mutex mu_;
  Verdict verdict_;
  std::string running_;
};

}  // namespace rollgate::validator
