// FakeClock: a Clock that only moves when a test advances it.
// Thread-safety: safe to read and advance from any thread.
#pragma once

#include <atomic>
#include <chrono>

#include "controller/common/clock.h"

namespace rollgate::testing {

class FakeClock final : public Clock {
 public:
  FakeClock() : mono_(std::chrono::hours(1000)), wall_(std::chrono::hours(24 * 365 * 56)) {}
  MonoTime Now() const override { return MonoTime(mono_.load()); }
  WallTime WallNow() const override { return WallTime(wall_.load()); }
  void Advance(std::chrono::nanoseconds d) {
    mono_.store(mono_.load() + std::chrono::duration_cast<MonoTime::duration>(d));
    wall_.store(wall_.load() + std::chrono::duration_cast<WallTime::duration>(d));
  }

 private:
  std::atomic<MonoTime::duration> mono_;
  std::atomic<WallTime::duration> wall_;
};

}  // namespace rollgate::testing
