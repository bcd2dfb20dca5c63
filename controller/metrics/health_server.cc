#include "controller/metrics/health_server.h"

#include <CivetServer.h>

#include <exception>

#include "controller/metrics/bind_address.h"
#include "controller/metrics/civet_support.h"

namespace rollgate::metrics {
namespace {

void Reply(mg_connection* conn, int code, const std::string& body) {
  const std::string text = body + "\n";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            code, mg_get_response_code_text(conn, code), text.size());
  mg_write(conn, text.data(), text.size());
}

}  // namespace

class HealthServer::Handler final : public CivetHandler {
 public:
  enum class Kind { kHealthz, kReadyz };
  Handler(Kind kind, const HealthChecks& checks) : kind_(kind), checks_(checks) {}

  bool handleGet(CivetServer* /*server*/, mg_connection* conn) override {
    if (kind_ == Kind::kHealthz) {
      std::optional<std::string> wedged;
      if (checks_.wedged) wedged = Evaluate(checks_.wedged);
      if (wedged) {
        Reply(conn, 500, *wedged);
      } else {
        Reply(conn, 200, "ok");
      }
    } else {
      bool ready = true;
      if (checks_.ready) {
        try {
          ready = checks_.ready();
        } catch (const std::exception&) {
          ready = false;
        }
      }
      if (ready) {
        Reply(conn, 200, "ok");
      } else {
        Reply(conn, 503, "not ready: informer caches have not synced");
      }
    }
    return true;
  }

 private:
  static std::optional<std::string> Evaluate(
      const std::function<std::optional<std::string>()>& check) {
    try {
      return check();
    } catch (const std::exception& e) {
      return std::string("health check failed: ") + e.what();
    }
  }

  const Kind kind_;
  const HealthChecks& checks_;
};

Result<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& bind,
                                                          HealthChecks checks) {
  auto ports = ParseBindAddress(bind);
  if (!ports.ok()) return Status(ports.status().code(), "health: " + ports.status().message());
  if (!ports->has_value()) return std::unique_ptr<HealthServer>();
  std::unique_ptr<HealthServer> s(new HealthServer());
  s->checks_ = std::move(checks);
  s->healthz_ = std::make_unique<Handler>(Handler::Kind::kHealthz, s->checks_);
  s->readyz_ = std::make_unique<Handler>(Handler::Kind::kReadyz, s->checks_);
  internal::CivetMessageCapture capture;
  try {
    s->server_ =
        std::make_unique<CivetServer>(internal::CivetOptions(**ports), internal::LogCallbacks());
  } catch (const std::exception& e) {
    return Status(StatusCode::kUnavailable,
                  internal::StartFailure("health", bind, capture.messages(), e.what()));
  }
  // "$" anchors the match: /healthz/x and /healthzz are 404s, not probes.
  s->server_->addHandler("/healthz$", s->healthz_.get());
  s->server_->addHandler("/readyz$", s->readyz_.get());
  const auto bound = s->server_->getListeningPorts();
  s->port_ = bound.empty() ? 0 : bound.front();
  return s;
}

HealthServer::~HealthServer() {
  if (server_) server_->close();  // joins the server's threads before the handlers go
}

}  // namespace rollgate::metrics
