#include "tests/e2e/support/controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <csignal>

#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/net.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {
namespace {

std::string EndpointFlag(const char* flag, Endpoint e, int port) {
  if (e == Endpoint::kOff) return std::string(flag) + "=0";
  return std::string(flag) + "=127.0.0.1:" + std::to_string(port);
}

}  // namespace

ControllerProcess::ControllerProcess(std::string name, std::string log)
    : name_(std::move(name)), log_(std::move(log)), kubeconfig_(EnvVar("KUBECONFIG")) {}

std::string ControllerProcess::Start(const std::vector<std::string>& flags, Endpoint metrics,
                                     Endpoint health) {
  return Launch(flags, metrics, metrics == Endpoint::kLoopback ? FreePort() : 0, health,
                health == Endpoint::kLoopback ? FreePort() : 0);
}

std::string ControllerProcess::Launch(const std::vector<std::string>& flags, Endpoint metrics,
                                      int metrics_port, Endpoint health, int health_port) {
  metrics_port_ = metrics_port;
  health_port_ = health_port;
  std::vector<std::string> argv = {EnvVar("ROLLGATE_CONTROLLER_BIN"), "--kubeconfig", kubeconfig_};
  if (metrics != Endpoint::kDefault) {
    argv.push_back(EndpointFlag("--metrics-bind-address", metrics, metrics_port));
  }
  if (health != Endpoint::kDefault) {
    argv.push_back(EndpointFlag("--health-probe-bind-address", health, health_port));
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  std::string line = "starting controller " + name_ + ":";
  for (const auto& a : argv) line += " " + a;
  Mark(line);
  return proc_.Start(argv, log_);
}

std::string ControllerProcess::StartServing(const std::vector<std::string>& flags, Endpoint metrics,
                                            int healthz_status, std::chrono::seconds timeout) {
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int metrics_port = metrics == Endpoint::kLoopback ? FreePort() : 0;
    const int health_port = FreePort();
    if (health_port == 0 ||
        (metrics == Endpoint::kLoopback && (metrics_port == 0 || metrics_port == health_port))) {
      continue;
    }
    if (std::string err = Launch(flags, metrics, metrics_port, Endpoint::kLoopback, health_port);
        !err.empty()) {
      return "starting the controller: " + err;
    }
    bool up = false;
    bool exited = false;
    (void)Eventually(
        [&] {
          if (!proc_.Running()) return exited = true;
          const int status = HttpGet(health_port_, "/healthz").status;
          return up = healthz_status == 0 ? status != 0 : status == healthz_status;
        },
        timeout);
    if (up) return "";
    last = exited ? "the controller exited"
                  : "no /healthz answer within " + std::to_string(timeout.count()) + " s";
    Kill(last);
  }
  return "the controller did not start: " + last + "\n" + Tail(log_);
}

std::optional<std::string> ControllerProcess::Metrics() const {
  if (metrics_port_ <= 0) return std::nullopt;
  HttpResponse r = HttpGet(metrics_port_, "/metrics");
  if (r.status != 200) return std::nullopt;
  return std::move(r.body);
}

double ControllerProcess::LeaderGauge() const {
  auto m = Metrics();
  if (!m) return -1;
  auto s = MetricSamples(*m, "rollgate_leader");
  return s.empty() ? -1 : s.begin()->second;
}

std::string ControllerProcess::Identity() const {
  std::array<char, 256> host{};
  ::gethostname(host.data(), host.size() - 1);
  return std::string(host.data()) + "_" + std::to_string(proc_.pid());
}

void ControllerProcess::Mark(const std::string& what) const {
  AppendLine(log_, "=== e2e: " + what);
}

void ControllerProcess::Signal(int sig) {
  Mark(std::string(sig == SIGTERM   ? "SIGTERM"
                   : sig == SIGKILL ? "SIGKILL"
                                    : "signal") +
       " controller " + name_);
  proc_.Signal(sig);
}

void ControllerProcess::Stop(std::chrono::seconds timeout) {
  if (!proc_.Running()) return;
  Signal(SIGTERM);
  const std::optional<int> st = proc_.Wait(timeout);
  if (!st) {
    ADD_FAILURE() << "controller " << name_ << " (pid " << proc_.pid() << ") did not stop within "
                  << timeout.count() << " s of SIGTERM";
    proc_.Signal(SIGKILL);
    (void)proc_.Wait(seconds(10));
    return;
  }
  EXPECT_EQ(ChildProcess::Describe(*st), "exit code 0") << name_ << " after SIGTERM";
}

bool ControllerProcess::Kill(const std::string& why) {
  Mark("SIGKILL controller " + name_ + (why.empty() ? "" : " (" + why + ")"));
  proc_.Signal(SIGKILL);
  if (proc_.Wait(seconds(10))) return true;
  ADD_FAILURE() << "controller " << name_ << " survived SIGKILL";
  return false;
}

void ControllerProcess::Shutdown(std::chrono::seconds timeout) {
  if (!proc_.Running()) return;
  Signal(SIGTERM);
  if (!proc_.Wait(timeout)) {
    proc_.Signal(SIGKILL);
    (void)proc_.Wait(seconds(10));
  }
}

}  // namespace rollgate::e2e
