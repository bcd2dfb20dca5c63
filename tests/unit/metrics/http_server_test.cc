#include "controller/metrics/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controller/metrics/health_server.h"
#include "controller/metrics/metrics.h"
#include "controller/metrics/metrics_server.h"
#include "tests/unit/metrics/http_get.h"

namespace rollgate::metrics {
namespace {

using testing::Connect;
using testing::Exchange;
using testing::Get;
using ::testing::HasSubstr;
using testing::HttpReply;
using ::testing::Not;

// The kubelet's default probe timeout.
constexpr std::chrono::milliseconds kProbeTimeout{1000};

// Idle connections: each connected (accepted by the kernel) and silent, closed on destruction.
class IdleConnections {
 public:
  IdleConnections(int port, int n) {
    for (int i = 0; i < n; ++i) {
      const int fd = Connect(port);
      if (fd >= 0) fds_.push_back(fd);
    }
  }
  ~IdleConnections() {
    for (const int fd : fds_) close(fd);
  }
  IdleConnections(const IdleConnections&) = delete;
  IdleConnections& operator=(const IdleConnections&) = delete;
  std::size_t size() const { return fds_.size(); }
  const std::vector<int>& fds() const { return fds_; }

 private:
  std::vector<int> fds_;
};

std::unique_ptr<HttpServer> StartEcho(HttpServerOptions opts = {}) {
  opts.listen = "127.0.0.1:0";
  opts.routes["/echo"] = [](const HttpRequest& r) {
    std::string body = r.method + " " + r.path + " q=" + r.query;
    for (const auto& [k, v] : r.headers) body.append("\n").append(k).append("=").append(v);
    return HttpResponse{200, "text/plain", body};
  };
  auto s = HttpServer::Start(std::move(opts));
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(ParseRequestHeadTest, SplitsRequestLineAndHeaders) {
  HttpRequest r;
  ASSERT_TRUE(ParseRequestHead(
      "GET /metrics?x=1&y HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer t \r\nX-A: 1\r\nx-a: 2",
      r));
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/metrics");
  EXPECT_EQ(r.query, "x=1&y");
  EXPECT_EQ(r.headers.at("host"), "a");
  EXPECT_EQ(r.headers.at("authorization"), "Bearer t");
  EXPECT_EQ(r.headers.at("x-a"), "2");  // the last value wins
  ASSERT_TRUE(ParseRequestHead("HEAD / HTTP/1.0", r));
  EXPECT_EQ(r.method, "HEAD");
  EXPECT_EQ(r.path, "/");
  EXPECT_TRUE(r.headers.empty());
}

TEST(ParseRequestHeadTest, RefusesMalformedHeads) {
  HttpRequest r;
  for (const std::string head :
       {"", "GET", "GET /", "GET  HTTP/1.1", "GET / HTTP/2", "GET / HTTP/1.1x", "GET x HTTP/1.1",
        "GET / HTTP/1.1\r\nno-colon", "GET / HTTP/1.1\r\n: empty-name",
        "GET / HTTP/1.1\r\n folded: header"}) {
    EXPECT_FALSE(ParseRequestHead(head, r)) << head;
  }
}

TEST(SerializeResponseTest, WritesLengthAndCloseAndDropsTheBodyForHead) {
  const HttpResponse r{503, "text/plain", "busy\n", {{"Retry-After", "1"}}};
  EXPECT_EQ(SerializeResponse(r, false),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\nCache-Control: no-store\r\nConnection: close\r\n"
            "Retry-After: 1\r\n\r\nbusy\n");
  EXPECT_EQ(SerializeResponse(r, true),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\nCache-Control: no-store\r\nConnection: close\r\n"
            "Retry-After: 1\r\n\r\n");
}

TEST(HttpServerTest, RoutesExactPathsAndMethods) {
  auto s = StartEcho();
  ASSERT_NE(s, nullptr);
  HttpReply r = Get(s->port(), "/echo?a=b");
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.body, HasSubstr("GET /echo q=a=b"));
  EXPECT_THAT(r.body, HasSubstr("host=127.0.0.1"));
  r = Get(s->port(), "/echo", kProbeTimeout, "HEAD");
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.headers, HasSubstr("Content-Length: "));
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(Get(s->port(), "/echo/").code, 404);
  EXPECT_EQ(Get(s->port(), "/").code, 404);
  r = Get(s->port(), "/echo", kProbeTimeout, "POST");
  EXPECT_EQ(r.code, 405);
  EXPECT_THAT(r.headers, HasSubstr("Allow: GET, HEAD"));
  EXPECT_EQ(Exchange(s->port(), "nonsense\r\n\r\n").code, 400);
}

TEST(HttpServerTest, AnOversizedHeadIs431AndAThrowingHandler500) {
  HttpServerOptions o;
  o.max_request_bytes = 1024;
  o.routes["/throw"] = [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const std::string big = "GET /echo HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
  EXPECT_EQ(Exchange(s->port(), big).code, 431);
  const HttpReply r = Get(s->port(), "/throw");
  EXPECT_EQ(r.code, 500);
  EXPECT_THAT(r.body, Not(HasSubstr("boom")));  // internals stay in the log
}

// The reproduction of the issue: with idle connections open, probes must still answer within the
// kubelet's timeout (civetweb's two threads made /healthz take 9.7 s with two idle connections
// and never answer with eight).
TEST(HttpServerTest, ProbesAnswerWithAHundredIdleConnectionsOpen) {
  auto health = HealthServer::Start("127.0.0.1:0", {});
  ASSERT_TRUE(health.ok()) << health.status().message();
  Metrics m;
  auto metrics = MetricsServer::Start("127.0.0.1:0", m.Exposition());
  ASSERT_TRUE(metrics.ok()) << metrics.status().message();
  const IdleConnections idle_h((*health)->port(), 100);
  const IdleConnections idle_m((*metrics)->port(), 100);
  ASSERT_EQ(idle_h.size(), 100U);
  ASSERT_EQ(idle_m.size(), 100U);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Get((*health)->port(), "/healthz", kProbeTimeout).code, 200) << i;
    EXPECT_EQ(Get((*health)->port(), "/readyz", kProbeTimeout).code, 200) << i;
    const HttpReply r = Get((*metrics)->port(), "/metrics", kProbeTimeout);
    EXPECT_EQ(r.code, 200) << i;
    EXPECT_THAT(r.body, HasSubstr("rollgate_build_info"));
  }
}

// Above max_connections the oldest connection is closed, so a flood of idle connections cannot
// lock a probe out either.
TEST(HttpServerTest, TheOldestConnectionMakesRoomAtTheLimit) {
  HttpServerOptions o;
  o.max_connections = 4;
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const IdleConnections idle(s->port(), 10);
  ASSERT_EQ(idle.size(), 10U);
  EXPECT_EQ(Get(s->port(), "/echo", kProbeTimeout).code, 200);
  // The first idle connections were closed by the server: reading them ends at once.
  char byte = 0;
  EXPECT_EQ(recv(idle.fds().front(), &byte, 1, 0), 0);
}

// A connection that starts a request and stops (a byte drip, a half-open peer) is closed once
// request_timeout passes, without an answer.
TEST(HttpServerTest, ASlowRequestIsClosedAtItsDeadline) {
  HttpServerOptions o;
  o.request_timeout = std::chrono::milliseconds(300);
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const int fd = Connect(s->port(), std::chrono::seconds(5));
  ASSERT_GE(fd, 0);
  const std::string part = "GET /echo HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(send(fd, part.data(), part.size(), MSG_NOSIGNAL), static_cast<ssize_t>(part.size()));
  const auto start = std::chrono::steady_clock::now();
  char buf[64];
  EXPECT_EQ(recv(fd, buf, sizeof buf, 0), 0);  // closed, with nothing sent
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  close(fd);
  EXPECT_EQ(Get(s->port(), "/echo").code, 200);
}

TEST(HttpServerTest, MalformedListeningAddressIsInvalid) {
  HttpServerOptions o;
  o.listen = "127.0.0.1:99999";
  auto s = HttpServer::Start(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  o.listen = "[::1]:0";
  auto v6 = HttpServer::Start(o);
  if (v6.ok()) {  // IPv6 loopback may be absent in a sandbox
    EXPECT_GT((*v6)->port(), 0);
  }
}

}  // namespace
}  // namespace rollgate::metrics
