// Waiting in the e2e tests: poll a condition until a deadline, with a failure that says what was
// awaited, for how long, and what was seen last; check that a condition keeps holding for a
// while; and the small time arithmetic the tests print their figures with.
// Thread-safety: reentrant; the conditions run on the calling thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace rollgate::e2e {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

// A point in time a wait gives up at; several waits can share one.
class Deadline {
 public:
  explicit Deadline(milliseconds timeout) : at_(steady_clock::now() + timeout) {}
  bool Passed() const { return steady_clock::now() > at_; }

 private:
  steady_clock::time_point at_;
};

// Polls `done` every `every` until it returns true (true) or `timeout` passes (false, after one
// last try). Adds no failure: for waits whose caller reports.
template <typename F>
bool Eventually(F&& done, milliseconds timeout, milliseconds every = milliseconds(200)) {
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

// Polls `done` every `every` until it returns true. On timeout adds a failure "timed out after
// <timeout> ms waiting for <what>", followed by `context()` when given (the last state seen),
// and returns false.
bool WaitUntil(const std::string& what, milliseconds timeout, const std::function<bool()>& done,
               milliseconds every = milliseconds(100),
               const std::function<std::string()>& context = nullptr);

// Polls `holds` every 100 ms for `duration`: it must hold on every read. Otherwise adds a failure
// "expected <what> to hold for <duration> ms", followed by `context()` when given.
void ExpectHoldsFor(const std::string& what, milliseconds duration,
                    const std::function<bool()>& holds,
                    const std::function<std::string()>& context = nullptr);

// Seconds from `t0` to now.
double SecondsSince(steady_clock::time_point t0);

// `v` with `decimals` decimals ("4.02").
std::string Fixed(double v, int decimals = 2);

}  // namespace rollgate::e2e
