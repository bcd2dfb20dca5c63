// RunBounded. See bounded_run.h.
// Thread-safety: see bounded_run.h.
#include "controller/validator/bounded_run.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

namespace rollgate::validator {
namespace {

// Shared by the caller and the worker; outlives whichever of them ends first.
struct Completion {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

}  // namespace

BoundedRunResult RunBounded(std::function<void()> work, std::chrono::nanoseconds timeout) {
  auto completion = std::make_shared<Completion>();
  auto fn = std::make_shared<std::function<void()>>(std::move(work));
  std::thread worker;
  try {
    worker = std::thread([completion, fn] {
      (*fn)();
      std::lock_guard lock(completion->mu);
      completion->done = true;
      completion->cv.notify_all();
    });
  } catch (const std::system_error&) {
    (*fn)();  // no thread to be had: the work still runs, unbounded
    return BoundedRunResult::kFinished;
  }
  std::unique_lock lock(completion->mu);
  if (completion->cv.wait_for(lock, timeout, [&] { return completion->done; })) {
    lock.unlock();
    worker.join();
    return BoundedRunResult::kFinished;
  }
  lock.unlock();
  worker.detach();
  return BoundedRunResult::kTimedOut;
}

}  // namespace rollgate::validator
