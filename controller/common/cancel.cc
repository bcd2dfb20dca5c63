#include "controller/common/cancel.h"

#include <utility>

namespace rollgate {

void CancelToken::Cancel() {
  std::unique_lock<std::mutex> lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  cv_.notify_all();
  while (!callbacks_.empty()) {
    auto it = callbacks_.begin();
    const std::uint64_t id = it->first;
    std::function<void()> fn = std::move(it->second);
    callbacks_.erase(it);
    running_ = id;
    lock.unlock();
    fn();
    lock.lock();
    running_ = 0;
    done_cv_.notify_all();
  }
}

bool CancelToken::cancelled() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

bool CancelToken::SleepFor(std::chrono::nanoseconds d) const {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return cancelled_; });
}

CancelToken::Registration CancelToken::OnCancel(std::function<void()> fn) const {
  std::unique_lock<std::mutex> lock(mu_);
  if (cancelled_) {
    lock.unlock();
    fn();
    return {};
  }
  const std::uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(fn));
  return {this, id};
}

void CancelToken::Unregister(std::uint64_t id) const {
  std::unique_lock<std::mutex> lock(mu_);
  callbacks_.erase(id);
  // If Cancel() is running this very callback on another thread, wait for it to return so that
  // the caller may destroy what the callback touches.
  done_cv_.wait(lock, [&] { return running_ != id; });
}

CancelToken::Registration& CancelToken::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    if (token_ != nullptr) token_->Unregister(id_);
    token_ = std::exchange(o.token_, nullptr);
    id_ = o.id_;
  }
  return *this;
}

CancelToken::Registration::~Registration() {
  if (token_ != nullptr) token_->Unregister(id_);
}

}  // namespace rollgate
