// A real Prometheus (Debian's `prometheus`) for the e2e tests, on loopback: either through
// tests/e2e/prometheus.sh (scraping a static exposition: a fixed rollgate_demo_errors_ratio and
// rollgate_demo_jobs_total) or started directly with a configuration the test writes (scraping the
// real controller, evaluating alert rules). PrometheusApi reads its HTTP API: instant queries, the
// rules, the active alerts.
// Thread-safety: each object is used by one thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/support/json.h"
#include "tests/e2e/support/process.h"

namespace rollgate::e2e {

// tests/e2e/prometheus.sh start|stop: a Prometheus and the static server it scrapes, all state in
// one directory, stopped by the script's watchdog when the test process dies.
class PrometheusScript {
 public:
  // The script: ROLLGATE_PROMETHEUS_SH, else tests/e2e/prometheus.sh.
  static std::string Path();

  // `prometheus.sh start <dir> --owner <this pid> [--tls]`; "" once it answers queries, else what
  // failed. With `tls`, Prometheus serves HTTPS only, with basic auth (see the script).
  std::string Start(const std::string& dir, bool tls = false);

  // `prometheus.sh stop <dir>` (which removes the directory); nothing when never started.
  void Stop();

  const std::string& url() const { return url_; }  // PROMETHEUS_URL
  const std::string& metrics_url() const {
    return metrics_url_;
  }  // METRICS_URL (the static server)
  // With tls: PROMETHEUS_CA, PROMETHEUS_USERNAME_FILE, PROMETHEUS_PASSWORD_FILE.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& username_file() const { return username_file_; }
  const std::string& password_file() const { return password_file_; }

 private:
  std::string dir_;
  std::string ca_file_;
  std::string username_file_;
  std::string password_file_;
  std::string url_;
  std::string metrics_url_;
};

// The binary started directly: PROMETHEUS_BIN, else /usr/bin/prometheus.
class PrometheusServer {
 public:
  // Writes `config` to <dir>/prometheus.yml and starts Prometheus on a free loopback port with its
  // TSDB in <dir>/data and its log at `log`; "" once /-/ready answers 200 (up to 60 s, 3 tries).
  std::string Start(const std::string& dir, const std::string& config, const std::string& log);

  // SIGTERM, up to 10 s, then SIGKILL.
  void Shutdown();

  int port() const { return port_; }

 private:
  ChildProcess proc_;
  int port_ = 0;
};

// Prometheus' HTTP API on a loopback port.
class PrometheusApi {
 public:
  explicit PrometheusApi(int port) : port_(port) {}

  // GET /api/v1/<path>; the `data` member of a successful answer, else null with a failure.
  Json Api(const std::string& path) const;

  // An instant query; its result vector (an empty array when the query failed).
  Json Query(const std::string& expr) const;

  // The active alerts (pending and firing).
  std::vector<Json> Alerts() const;

  // "  <state> {labels}\n" per alert, for failure messages.
  static std::string RenderAlerts(const std::vector<Json>& alerts);

  // The alert named `name` whose labels include `labels`, in any state; nullopt when none.
  static std::optional<Json> FindAlert(const std::vector<Json>& alerts, const std::string& name,
                                       const std::map<std::string, std::string>& labels);

  // Waits until alert `name` with `labels` is firing and returns it; else adds a failure showing
  // the active alerts and what `context` returns, and returns nullopt.
  std::optional<Json> WaitFiring(const std::string& name,
                                 const std::map<std::string, std::string>& labels,
                                 std::chrono::seconds timeout,
                                 const std::function<std::string()>& context) const;

 private:
  int port_;
};

}  // namespace rollgate::e2e
