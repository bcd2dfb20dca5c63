// The real rollgate-controller binary (ROLLGATE_CONTROLLER_BIN) as a child process of an e2e test:
// started with the test's flags against the shared cluster (or another kubeconfig), its output in
// a log file of its own, its metrics and health endpoints on free loopback ports when asked, and
// stopped the way each test needs: SIGTERM with a clean exit expected, SIGKILL, or a teardown
// that just makes sure it is gone. Markers ("=== e2e: ...") in its log say what the test did
// when.
// Thread-safety: a ControllerProcess is used by one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/e2e/support/process.h"

namespace rollgate::e2e {

// How the controller serves one of its HTTP endpoints (--metrics-bind-address,
// --health-probe-bind-address).
enum class Endpoint {
  kDefault,   // the flag is not passed: the controller's default address
  kOff,       // "=0": not served
  kLoopback,  // 127.0.0.1:<a free port>
};

class ControllerProcess {
 public:
  // `name` names it in its log's markers and in failures ("A"); `log` is its log file (appended).
  ControllerProcess(std::string name, std::string log);
  ControllerProcess(const ControllerProcess&) = delete;
  ControllerProcess& operator=(const ControllerProcess&) = delete;

  const std::string& name() const { return name_; }
  const std::string& log() const { return log_; }
  pid_t pid() const { return proc_.pid(); }
  bool Running() { return proc_.Running(); }
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }

  // Another kubeconfig than KUBECONFIG for the next starts.
  void set_kubeconfig(std::string kubeconfig) { kubeconfig_ = std::move(kubeconfig); }

  // Starts ROLLGATE_CONTROLLER_BIN --kubeconfig <kubeconfig> [endpoint flags] <flags>. "" or what
  // went wrong.
  std::string Start(const std::vector<std::string>& flags, Endpoint metrics = Endpoint::kDefault,
                    Endpoint health = Endpoint::kDefault);

  // Starts it with its health endpoint (and `metrics`) on fresh loopback ports and waits up to
  // `timeout` until GET /healthz answers `healthz_status` (0: any HTTP answer). A port taken in
  // between or a process that exits costs one of 3 attempts. "" or what went wrong, with the
  // log's tail.
  std::string StartServing(const std::vector<std::string>& flags, Endpoint metrics,
                           int healthz_status, std::chrono::seconds timeout);

  // GET /metrics: the body when it answered 200, else nullopt (or when metrics are not served).
  std::optional<std::string> Metrics() const;

  // rollgate_leader of this controller, or -1 when it cannot be scraped.
  double LeaderGauge() const;

  // The identity it campaigns with for leadership (hostname_pid, see controller_main.cc).
  std::string Identity() const;

  // Writes "=== e2e: <what>" into its log.
  void Mark(const std::string& what) const;

  // Sends `sig`, marked in the log, without waiting.
  void Signal(int sig);

  // Waits for it to exit: its wait status, or nullopt when it still runs after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout) { return proc_.Wait(timeout); }

  // SIGTERM, then it must exit with code 0 within `timeout` (failures are added; SIGKILL when it
  // does not stop). Nothing when it is not running.
  void Stop(std::chrono::seconds timeout);

  // SIGKILL (marked with `why`); true once it is gone, else false after adding a failure.
  bool Kill(const std::string& why = "");

  // Teardown: SIGTERM, up to `timeout` to exit, then SIGKILL. Checks nothing.
  void Shutdown(std::chrono::seconds timeout);

 private:
  std::string Launch(const std::vector<std::string>& flags, Endpoint metrics, int metrics_port,
                     Endpoint health, int health_port);

  std::string name_;
  std::string log_;
  std::string kubeconfig_;
  int metrics_port_ = 0;
  int health_port_ = 0;
  ChildProcess proc_;
};

}  // namespace rollgate::e2e
