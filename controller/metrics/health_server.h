// HealthServer: the kubelet's probes on the --health-probe-bind-address (plain HTTP, HttpServer:
// one poll loop, so idle connections never delay a probe).
//   GET /healthz  200 "ok" while the process is alive and the work loop is not wedged;
//                 500 with the reason when `wedged` returns one (see Heartbeat).
//   GET /readyz   200 "ok" once `ready` returns true (informer caches synced); else 503.
// Any other path is 404.
// Thread-safety: start and destroy from one thread. The checks are called on the server's
// thread, concurrently with everything else: they must be thread-safe, and the objects they use
// must outlive the HealthServer (destroy it first).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "controller/common/status.h"
#include "controller/metrics/http_server.h"

namespace rollgate::metrics {

struct HealthChecks {
  std::function<bool()> ready;                         // null: always ready
  std::function<std::optional<std::string>()> wedged;  // null: never wedged
};

class HealthServer {
 public:
  // Listens on `bind` (see ParseBindAddress). A null server (and OK) when bind is "0"; an
  // InvalidArgument error for a malformed address, Unavailable when the port cannot be bound.
  static Result<std::unique_ptr<HealthServer>> Start(const std::string& bind, HealthChecks checks);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const;

 private:
  HealthServer() = default;

  std::unique_ptr<HttpServer> server_;
};

}  // namespace rollgate::metrics
