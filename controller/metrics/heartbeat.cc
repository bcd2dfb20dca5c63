#include "controller/metrics/heartbeat.h"

#include <algorithm>

namespace rollgate::metrics {

Heartbeat::Heartbeat(const Clock& clock, std::chrono::nanoseconds stall_after)
    : clock_(clock), stall_after_(stall_after), last_beat_(clock.Now()), last_empty_(last_beat_) {}

void Heartbeat::Beat() {
  const auto now = clock_.Now();
  std::lock_guard<std::mutex> lock(mu_);
  last_beat_ = now;
}

std::optional<std::string> Heartbeat::Wedged(std::size_t queued) {
  const auto now = clock_.Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (queued == 0) {
    last_empty_ = now;
    return std::nullopt;
  }
  const auto quiet = now - std::max(last_beat_, last_empty_);
  if (quiet <= stall_after_) return std::nullopt;
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  return "work loop wedged: no worker progress for " +
         std::to_string(duration_cast<seconds>(quiet).count()) + "s while " +
         std::to_string(queued) + " key(s) are queued (limit " +
         std::to_string(duration_cast<seconds>(stall_after_).count()) + "s)";
}

}  // namespace rollgate::metrics
