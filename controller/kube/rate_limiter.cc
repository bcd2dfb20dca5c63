#include "controller/kube/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

namespace rollgate::kube {

TokenBucket::TokenBucket(double qps, int burst, const Clock& clock)
    : qps_(qps),
      burst_(static_cast<double>(std::max(1, burst))),
      clock_(clock),
      tokens_(burst_),
      last_(clock.Now()) {}

void TokenBucket::Refill(Clock::MonoTime now) {
  if (now > last_) {
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
    last_ = now;
  }
}

Duration TokenBucket::Reserve() {
  if (qps_ <= 0) return Duration::zero();
  std::lock_guard<std::mutex> lock(mu_);
  Refill(clock_.Now());
  tokens_ -= 1.0;
  if (tokens_ >= 0) return Duration::zero();
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(-tokens_ / qps_));
}

bool TokenBucket::TryAccept() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  Refill(clock_.Now());
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

Duration ItemBackoff::When(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  const int n = failures_[key]++;
  // 2^n overflows quickly: compare in double and cap.
  const double d = static_cast<double>(base_.count()) * std::pow(2.0, n);
  if (d >= static_cast<double>(max_.count())) return max_;
  return Duration(static_cast<Duration::rep>(d));
}

void ItemBackoff::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int ItemBackoff::NumRequeues(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

Backoff::Backoff(Options opts, std::function<double()> random01)
    : opts_(opts), random01_(std::move(random01)) {}

Duration Backoff::Next() {
  if (current_ == Duration::zero()) {
    current_ = opts_.initial;
  } else {
    const double next = static_cast<double>(current_.count()) * opts_.factor;
    current_ = next >= static_cast<double>(opts_.max.count())
                   ? opts_.max
                   : Duration(static_cast<Duration::rep>(next));
  }
  const double scale = 1.0 + opts_.jitter * std::clamp(random01_(), 0.0, 1.0);
  return Duration(static_cast<Duration::rep>(static_cast<double>(current_.count()) * scale));
}

std::function<double()> DefaultRandom01() {
  auto state = std::make_shared<std::pair<std::mutex, std::mt19937_64>>();
  state->second.seed(std::random_device{}());
  return [state] {
    std::lock_guard<std::mutex> lock(state->first);
    return std::uniform_real_distribution<double>(0.0, 1.0)(state->second);
  };
}

}  // namespace rollgate::kube
