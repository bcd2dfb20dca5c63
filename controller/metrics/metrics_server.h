// MetricsServer: serves metrics in the text exposition format (the pieces `exposition` gives for
// each scrape, e.g. Metrics::Exposition, sent one at a time with chunked coding) at /metrics on the
// --metrics-bind-address (HttpServer: one poll loop, so idle connections never block a scrape;
// prometheus-cpp's text serializer). An optional
// `before_scrape` hook runs at the start of every scrape, to refresh gauges that are read rather
// than pushed (the work queue depth: workers that are stuck push nothing).
// Thread-safety: start and destroy from one thread; scrapes (and `before_scrape`) run on the
// server's thread: the hook must be thread-safe, and what it uses must outlive the server.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "controller/common/status.h"
#include "controller/metrics/http_server.h"

namespace rollgate::metrics {

class MetricsAuthorizer;

// --metrics-secure: HTTPS with `tls`, and every scrape authorised by `authorizer` (a bearer token
// that may get /metrics; see MetricsAuthorizer). Both null: plain HTTP, open to any peer.
struct MetricsSecurity {
  std::shared_ptr<SSL_CTX> tls{};
  MetricsAuthorizer* authorizer = nullptr;  // must outlive the server
};

class MetricsServer {
 public:
  // Listens on `bind` (see ParseBindAddress). A null server (and OK) when bind is "0"; an
  // InvalidArgument error for a malformed address, Unavailable when the port cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& bind,
                                                      std::function<HttpStreamPull()> exposition,
                                                      std::function<void()> before_scrape = nullptr,
                                                      MetricsSecurity security = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the ephemeral one when the address asked for port 0).
  int port() const { return server_->port(); }

 private:
  MetricsServer() = default;

  std::unique_ptr<HttpServer> server_;
};

}  // namespace rollgate::metrics
