#include "controller/metrics/metrics_server.h"

#include <utility>

#include "controller/metrics/bind_address.h"
#include "controller/metrics/metrics_auth.h"

namespace rollgate::metrics {

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& bind, std::function<HttpStreamPull()> exposition,
    std::function<void()> before_scrape, MetricsSecurity security) {
  auto ports = ParseBindAddress(bind);
  if (!ports.ok()) return Status(ports.status().code(), "metrics: " + ports.status().message());
  if (!ports->has_value()) return std::unique_ptr<MetricsServer>();
  HttpServerOptions opts;
  opts.name = "metrics";
  opts.listen = **ports;
  opts.tls = std::move(security.tls);
  opts.routes["/metrics"] = [exposition = std::move(exposition), hook = std::move(before_scrape),
                             auth = security.authorizer](const HttpRequest& req) {
    if (auth != nullptr) {
      const auto h = req.headers.find("authorization");
      const AuthDecision d = auth->Authorize(h == req.headers.end() ? "" : h->second, req.path);
      if (d.code != 200) {
        HttpResponse denied{d.code, "text/plain; charset=utf-8", d.reason + "\n"};
        if (d.code == 401) denied.headers.emplace_back("WWW-Authenticate", "Bearer");
        return denied;
      }
    }
    if (hook) hook();
    HttpResponse r{200, "text/plain; version=0.0.4; charset=utf-8", ""};
    r.pieces = exposition();  // sent a piece at a time: a scrape never holds the whole text
    return r;
  };
  auto server = HttpServer::Start(std::move(opts));
  if (!server.ok()) return server.status();
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->server_ = std::move(*server);
  return s;
}

MetricsServer::~MetricsServer() = default;

}  // namespace rollgate::metrics
