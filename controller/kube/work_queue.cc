#include "controller/kube/work_queue.h"

#include <algorithm>

namespace rollgate::kube {

WorkQueue::WorkQueue(const Clock& clock, Options opts)
    : clock_(clock),
      opts_(opts),
      item_backoff_(opts.base_delay, opts.max_delay),
      bucket_(opts.qps, opts.burst, clock) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_ || dirty_.contains(key)) return;
  dirty_.insert(key);
  if (processing_.contains(key)) return;  // re-queued by Done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, Duration delay) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return;
  if (delay <= Duration::zero()) {
    AddLocked(key);
    return;
  }
  const auto ready_at = clock_.Now() + delay;
  auto it = delayed_at_.find(key);
  if (it != delayed_at_.end() && it->second <= ready_at) return;  // an earlier one is pending
  delayed_at_[key] = ready_at;
  delayed_.push({ready_at, seq_++, key});
  cv_.notify_one();  // a waiting Get may need to wake earlier
}

void WorkQueue::AddRateLimited(const std::string& key) {
  AddAfter(key, std::max(item_backoff_.When(key), bucket_.Reserve()));
}

void WorkQueue::Forget(const std::string& key) { item_backoff_.Forget(key); }

int WorkQueue::NumRequeues(const std::string& key) { return item_backoff_.NumRequeues(key); }

void WorkQueue::PromoteReadyLocked(Clock::MonoTime now) {
  while (!delayed_.empty() && delayed_.top().ready_at <= now) {
    Delayed d = delayed_.top();
    delayed_.pop();
    auto it = delayed_at_.find(d.key);
    // Entries superseded by an earlier AddAfter of the same key are stale: skip them.
    if (it == delayed_at_.end() || it->second != d.ready_at) continue;
    delayed_at_.erase(it);
    AddLocked(d.key);
  }
}

std::optional<std::string> WorkQueue::PopLocked() {
  if (queue_.empty()) return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  return key;
}

std::optional<std::string> WorkQueue::TryGet() {
  std::lock_guard<std::mutex> lock(mu_);
  PromoteReadyLocked(clock_.Now());
  return PopLocked();
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    PromoteReadyLocked(clock_.Now());
    if (!queue_.empty()) return PopLocked();
    if (shutting_down_) return std::nullopt;
    Duration wait = opts_.poll;
    if (!delayed_.empty()) {
      wait = std::clamp<Duration>(delayed_.top().ready_at - clock_.Now(), Duration::zero(),
                                  opts_.poll);
    }
    cv_.wait_for(lock, wait);
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.contains(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

bool WorkQueue::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutting_down_;
}

std::size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

std::size_t WorkQueue::DelayedLen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_at_.size();
}

}  // namespace rollgate::kube
