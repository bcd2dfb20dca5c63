#include "controller/metrics/metrics_server.h"

#include <CivetServer.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <exception>
#include <utility>
#include <vector>

#include "controller/metrics/bind_address.h"
#include "controller/metrics/civet_support.h"

namespace rollgate::metrics {
namespace {

// Registered on /metrics ahead of the registry: the exposer collects in registration order, so
// the hook runs before the registry's families are read.
class ScrapeHook final : public prometheus::Collectable {
 public:
  explicit ScrapeHook(std::function<void()> fn) : fn_(std::move(fn)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    fn_();
    return {};
  }

 private:
  std::function<void()> fn_;
};

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& bind, std::shared_ptr<prometheus::Registry> registry,
    std::function<void()> before_scrape) {
  auto ports = ParseBindAddress(bind);
  if (!ports.ok()) return Status(ports.status().code(), "metrics: " + ports.status().message());
  if (!ports->has_value()) return std::unique_ptr<MetricsServer>();
  std::unique_ptr<prometheus::Exposer> exposer;
  internal::CivetMessageCapture capture;
  try {
    exposer = std::make_unique<prometheus::Exposer>(internal::CivetOptions(**ports),
                                                    internal::LogCallbacks());
  } catch (const std::exception& e) {
    return Status(StatusCode::kUnavailable,
                  internal::StartFailure("metrics", bind, capture.messages(), e.what()));
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  if (before_scrape) {
    server->hook_ = std::make_shared<ScrapeHook>(std::move(before_scrape));
    exposer->RegisterCollectable(server->hook_, "/metrics");
  }
  exposer->RegisterCollectable(registry, "/metrics");
  const auto bound = exposer->GetListeningPorts();
  server->port_ = bound.empty() ? 0 : bound.front();
  server->registry_ = std::move(registry);
  server->exposer_ = std::move(exposer);
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace rollgate::metrics
