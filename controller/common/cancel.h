// CancelToken: cooperative cancellation for long-running calls (watch streams, backoff sleeps,
// work loops). Cancel() wakes every sleeper and runs the registered callbacks (which, for the
// HTTP transport, cancel the in-flight request).
// Thread-safety: all members may be called concurrently from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace rollgate {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  void Cancel();
  bool cancelled() const;

  // Sleeps up to `d`; returns false (early) when cancelled.
  bool SleepFor(std::chrono::nanoseconds d) const;

  // Runs `fn` on Cancel() (at once when already cancelled). The registration ends with the
  // returned handle's destruction; `fn` never runs after that.
  class Registration {
   public:
    Registration() = default;
    Registration(const CancelToken* token, std::uint64_t id) : token_(token), id_(id) {}
    Registration(Registration&& o) noexcept : token_(o.token_), id_(o.id_) { o.token_ = nullptr; }
    Registration& operator=(Registration&& o) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

   private:
    const CancelToken* token_ = nullptr;
    std::uint64_t id_ = 0;
  };
  [[nodiscard]] Registration OnCancel(std::function<void()> fn) const;

 private:
  void Unregister(std::uint64_t id) const;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ = false;
  mutable std::uint64_t next_id_ = 1;
  mutable std::map<std::uint64_t, std::function<void()>> callbacks_;
  mutable std::uint64_t running_ = 0;  // id of the callback being run by Cancel(), if any
  mutable std::condition_variable done_cv_;
};

}  // namespace rollgate
