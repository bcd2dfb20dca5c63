#include "controller/metrics/health_server.h"

#include <exception>
#include <utility>

#include "controller/metrics/bind_address.h"

namespace rollgate::metrics {
namespace {

HttpResponse Text(int code, const std::string& body) {
  return {code, "text/plain; charset=utf-8", body + "\n"};
}

HttpResponse Healthz(const HealthChecks& checks) {
  if (!checks.wedged) return Text(200, "ok");
  std::optional<std::string> wedged;
  try {
    wedged = checks.wedged();
  } catch (const std::exception& e) {
    wedged = std::string("health check failed: ") + e.what();
  }
  return wedged ? Text(500, *wedged) : Text(200, "ok");
}

HttpResponse Readyz(const HealthChecks& checks) {
  bool ready = true;
  if (checks.ready) {
    try {
      ready = checks.ready();
    } catch (const std::exception&) {
      ready = false;
    }
  }
  return ready ? Text(200, "ok") : Text(503, "not ready: informer caches have not synced");
}

}  // namespace

Result<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& bind,
                                                          HealthChecks checks) {
  auto ports = ParseBindAddress(bind);
  if (!ports.ok()) return Status(ports.status().code(), "health: " + ports.status().message());
  if (!ports->has_value()) return std::unique_ptr<HealthServer>();
  HttpServerOptions opts;
  opts.name = "health";
  opts.listen = **ports;
  // Exact paths: /healthz/x and /healthzz are 404s, not probes.
  opts.routes["/healthz"] = [checks](const HttpRequest&) { return Healthz(checks); };
  opts.routes["/readyz"] = [checks = std::move(checks)](const HttpRequest&) {
    return Readyz(checks);
  };
  auto server = HttpServer::Start(std::move(opts));
  if (!server.ok()) return server.status();
  std::unique_ptr<HealthServer> s(new HealthServer());
  s->server_ = std::move(*server);
  return s;
}

int HealthServer::port() const { return server_->port(); }

HealthServer::~HealthServer() = default;

}  // namespace rollgate::metrics
