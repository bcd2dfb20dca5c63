#include "tests/e2e/support/wait.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>

namespace rollgate::e2e {

bool WaitUntil(const std::string& what, milliseconds timeout, const std::function<bool()>& done,
               milliseconds every, const std::function<std::string()>& context) {
  const auto deadline = steady_clock::now() + timeout;
  while (!done()) {
    if (steady_clock::now() > deadline) {
      ADD_FAILURE() << "timed out after " << timeout.count() << " ms waiting for " << what
                    << (context ? "; " + context() : std::string());
      return false;
    }
    std::this_thread::sleep_for(every);
  }
  return true;
}

void ExpectHoldsFor(const std::string& what, milliseconds duration,
                    const std::function<bool()>& holds,
                    const std::function<std::string()>& context) {
  const auto end = steady_clock::now() + duration;
  while (steady_clock::now() < end) {
    if (!holds()) {
      ADD_FAILURE() << "expected " << what << " to hold for " << duration.count() << " ms"
                    << (context ? "; " + context() : std::string());
      return;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

double SecondsSince(steady_clock::time_point t0) {
  return std::chrono::duration<double>(steady_clock::now() - t0).count();
}

std::string Fixed(double v, int decimals) {
  std::array<char, 64> buf{};
  std::snprintf(buf.data(), buf.size(), "%.*f", decimals, v);
  return buf.data();
}

}  // namespace rollgate::e2e
