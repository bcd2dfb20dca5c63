#include "tests/e2e/support/prometheus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "tests/e2e/support/cluster.h"
#include "tests/e2e/support/log_reader.h"
#include "tests/e2e/support/net.h"
#include "tests/e2e/support/wait.h"

namespace rollgate::e2e {

std::string PrometheusScript::Path() {
  if (std::string s = EnvVar("ROLLGATE_PROMETHEUS_SH"); !s.empty()) return s;
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "prometheus.sh").string();
}

std::string PrometheusScript::Start(const std::string& dir, bool tls) {
  dir_ = dir;
  std::string out;
  std::vector<std::string> args = {"/bin/bash", Path(),    "start",
                                   dir,         "--owner", std::to_string(::getpid())};
  if (tls) args.emplace_back("--tls");
  const int rc = RunCommand(args, out);
  std::map<std::string, std::string> vars;
  for (size_t pos = 0; pos < out.size();) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    const std::string line = out.substr(pos, nl - pos);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
    pos = nl + 1;
  }
  url_ = vars["PROMETHEUS_URL"];
  metrics_url_ = vars["METRICS_URL"];
  ca_file_ = vars["PROMETHEUS_CA"];
  username_file_ = vars["PROMETHEUS_USERNAME_FILE"];
  password_file_ = vars["PROMETHEUS_PASSWORD_FILE"];
  if (rc != 0 || url_.empty() || metrics_url_.empty() || (tls && ca_file_.empty())) {
    return Path() + " start failed (status " + std::to_string(rc) + "): " + out;
  }
  return "";
}

void PrometheusScript::Stop() {
  if (dir_.empty()) return;
  std::string out;
  (void)RunCommand({"/bin/bash", Path(), "stop", dir_}, out);
}

std::string PrometheusServer::Start(const std::string& dir, const std::string& config,
                                    const std::string& log) {
  const std::string bin =
      EnvVar("PROMETHEUS_BIN").empty() ? "/usr/bin/prometheus" : EnvVar("PROMETHEUS_BIN");
  if (::access(bin.c_str(), X_OK) != 0) {
    return "no prometheus binary at " + bin +
           " (apt-get install prometheus, or set PROMETHEUS_BIN)";
  }
  std::ofstream(dir + "/prometheus.yml") << config;
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (port_ == 0) continue;
    if (std::string err = proc_.Start(
            {bin, "--config.file=" + dir + "/prometheus.yml",
             "--storage.tsdb.path=" + dir + "/data",
             "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
            log);
        !err.empty()) {
      return "starting prometheus: " + err;
    }
    bool ready = false;
    bool exited = false;
    (void)Eventually(
        [&] {
          if (!proc_.Running()) return exited = true;
          return ready = HttpGet(port_, "/-/ready").status == 200;
        },
        seconds(60));
    if (ready) return "";
    last = exited ? "prometheus exited" : "prometheus not ready within 60 s";
    proc_.Signal(SIGKILL);
    (void)proc_.Wait(seconds(10));
  }
  return last + "\n" + Tail(log);
}

void PrometheusServer::Shutdown() {
  proc_.Signal(SIGTERM);
  if (!proc_.Wait(seconds(10))) {
    proc_.Signal(SIGKILL);
    (void)proc_.Wait(seconds(10));
  }
}

Json PrometheusApi::Api(const std::string& path) const {
  const HttpResponse r = HttpGet(port_, "/api/v1/" + path);
  if (r.status != 200) {
    ADD_FAILURE() << "GET /api/v1/" << path << ": " << Describe(r);
    return Json::null();
  }
  try {
    Json j = Json::parse(r.body);
    if (Str(j, "status") == "success" && j.has_field("data")) return j.at("data");
  } catch (const std::exception& e) {
    ADD_FAILURE() << "GET /api/v1/" << path << ": " << e.what();
    return Json::null();
  }
  ADD_FAILURE() << "GET /api/v1/" << path << ": " << r.body.substr(0, 500);
  return Json::null();
}

Json PrometheusApi::Query(const std::string& expr) const {
  Json data = Api("query?query=" + UrlEncode(expr));
  const Json* result = At(data, "result");
  return result != nullptr && result->is_array() ? *result : Json::array();
}

std::vector<Json> PrometheusApi::Alerts() const {
  std::vector<Json> out;
  const Json data = Api("alerts");
  const Json* alerts = At(data, "alerts");
  if (alerts == nullptr || !alerts->is_array()) return out;
  for (const auto& a : alerts->as_array()) out.push_back(a);
  return out;
}

std::string PrometheusApi::RenderAlerts(const std::vector<Json>& alerts) {
  std::string out;
  for (const auto& a : alerts) {
    out += "  " + Str(a, "state") + " " + Render(StrMap(a, "labels")) + "\n";
  }
  return out.empty() ? "  (no active alerts)\n" : out;
}

std::optional<Json> PrometheusApi::FindAlert(const std::vector<Json>& alerts,
                                             const std::string& name,
                                             const std::map<std::string, std::string>& labels) {
  for (const auto& a : alerts) {
    const auto l = StrMap(a, "labels");
    bool match = l.count("alertname") != 0 && l.at("alertname") == name;
    for (const auto& [k, v] : labels) match = match && l.count(k) != 0 && l.at(k) == v;
    if (match) return a;
  }
  return std::nullopt;
}

std::optional<Json> PrometheusApi::WaitFiring(const std::string& name,
                                              const std::map<std::string, std::string>& labels,
                                              std::chrono::seconds timeout,
                                              const std::function<std::string()>& context) const {
  std::vector<Json> last;
  std::optional<Json> found;
  const auto start = steady_clock::now();
  (void)Eventually(
      [&] {
        last = Alerts();
        found = FindAlert(last, name, labels);
        return found && Str(*found, "state") == "firing";
      },
      timeout);
  if (found && Str(*found, "state") == "firing") {
    std::cout << "[ alerts  ] " << name << " " << Render(labels) << " firing after "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count()
              << " ms\n";
    return found;
  }
  ADD_FAILURE() << name << " " << Render(labels) << " is not firing after " << timeout.count()
                << " s; active alerts:\n"
                << RenderAlerts(last) << (context ? context() : std::string());
  return std::nullopt;
}

}  // namespace rollgate::e2e
