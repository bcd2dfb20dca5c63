// RunBounded: runs a piece of work on its own thread and waits for it at most a given time. The
// validator bounds its whole run this way because a hung driver call cannot be cancelled: when
// the deadline passes, the caller reports the timeout and ends the process (_exit) while the
// worker thread is still inside the driver.
// Thread-safety: RunBounded may be called from any thread. After kTimedOut the worker keeps
// running detached: everything `work` touches must be owned by its closure (e.g. shared_ptr).
#pragma once

#include <chrono>
#include <functional>

namespace rollgate::validator {

enum class BoundedRunResult {
  kFinished,  // `work` returned within the timeout; its thread has been joined
  kTimedOut,  // the timeout passed first; the thread is detached and may still be running
};

// Runs `work` on a new thread and waits up to `timeout`. If no thread can be started, runs
// `work` on the calling thread, unbounded, and returns kFinished.
BoundedRunResult RunBounded(std::function<void()> work, std::chrono::nanoseconds timeout);

}  // namespace rollgate::validator
