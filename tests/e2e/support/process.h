// Child processes of the e2e tests: a process started with fork/execv whose output goes to a log
// file (the real rollgate-controller, Prometheus, run so that a test can SIGTERM, SIGKILL and
// restart it), and a command run to completion with its output captured (kubectl,
// hack/cluster.sh, tests/e2e/prometheus.sh).
// Thread-safety: a ChildProcess is used by one thread; RunCommand is reentrant.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace rollgate::e2e {

// A child process started with fork/execv, stdin from /dev/null, stdout and stderr appended to a
// log file. The child gets SIGKILL when the test process dies (PR_SET_PDEATHSIG) and when the
// ChildProcess is destroyed while it still runs, so no child outlives its test.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts argv[0] (a path) with the test's environment. Returns "" or what went wrong.
  std::string Start(const std::vector<std::string>& argv, const std::string& log_path);

  pid_t pid() const { return pid_; }

  // True while started and not yet reaped (a zombie is reaped here).
  bool Running();

  void Signal(int sig) const;

  // Waits for the process to end; its wait status, or nullopt when it still runs after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // "exit code 0", "signal 9 (Killed)".
  static std::string Describe(int wait_status);

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int wait_status_ = 0;
};

// Runs argv to completion (at most `timeout`); returns its exit code (-1 when it could not run or
// did not finish) and sets `output` to its stdout and stderr together.
int RunCommand(const std::vector<std::string>& argv, std::string& output,
               std::chrono::milliseconds timeout = std::chrono::minutes(2));

}  // namespace rollgate::e2e
