// VerdictRecorder. See verdict_recorder.h.
// Thread-safety: guarded by one mutex; see verdict_recorder.h.
#include "controller/validator/verdict_recorder.h"

#include <utility>

namespace rollgate::validator {

void VerdictRecorder::Begin(std::string name) {
  std::lock_guard lock(mu_);
  running_ = std::move(name);
}

void VerdictRecorder::Pass(std::string detail) {
  std::lock_guard lock(mu_);
  verdict_.checks.push_back({running_, true, std::move(detail)});
  running_.clear();
}

void VerdictRecorder::Fail(FailureClass failure, std::string detail, std::optional<CudaError> error,
                           std::optional<int> device) {
  std::lock_guard lock(mu_);
  if (verdict_.failure != FailureClass::kNone) return;
  verdict_.failure = failure;
  verdict_.passed = false;
  verdict_.failed_check = running_;
  verdict_.failed_device = device;
  verdict_.cuda_error = std::move(error);
  verdict_.message = running_ + ": " + detail;
  verdict_.checks.push_back({running_, false, std::move(detail)});
  running_.clear();
}

void VerdictRecorder::SetDriverVersion(int encoded) {
  std::lock_guard lock(mu_);
  verdict_.driver_version = encoded;
}

void VerdictRecorder::SetDeviceCount(int count) {
  std::lock_guard lock(mu_);
  verdict_.device_count = count;
}

void VerdictRecorder::AddDevice(DeviceInfo device) {
  std::lock_guard lock(mu_);
  verdict_.devices.push_back(std::move(device));
}

void VerdictRecorder::Finish() {
  std::lock_guard lock(mu_);
  running_.clear();
  if (verdict_.failure != FailureClass::kNone) return;
  verdict_.passed = true;
  std::string summary = "CUDA works";
  if (verdict_.driver_version) {
    summary += ": driver " + FormatDriverVersion(*verdict_.driver_version);
  }
  summary += ", " + std::to_string(verdict_.devices.size()) + " device(s)";
  if (!verdict_.devices.empty()) {
    const DeviceInfo& first = verdict_.devices.front();
    summary += ": " + first.name + " (compute capability " +
               FormatComputeCapability(first.compute_capability) + ")";
    if (verdict_.devices.size() > 1) {
      summary += " and " + std::to_string(verdict_.devices.size() - 1) + " more";
    }
  }
  verdict_.message = std::move(summary);
}

VerdictRecorder::Progress VerdictRecorder::Snapshot() const {
  std::lock_guard lock(mu_);
  return {verdict_, running_};
}

FailureClass VerdictRecorder::failure() const {
  std::lock_guard lock(mu_);
  return verdict_.failure;
}

}  // namespace rollgate::validator
