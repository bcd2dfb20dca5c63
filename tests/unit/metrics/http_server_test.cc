#include "controller/metrics/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
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

// A client that asks for `path` and then reads nothing: connected, its receive buffer shrunk to
// 4 KiB, the request sent. The socket, or -1 when any step failed.
int RequestWithoutReading(int port, const std::string& path) {
  const int fd = Connect(port);
  if (fd < 0) return -1;
  const int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const std::string req = "GET " + path + " HTTP/1.1\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return -1;
  }
  return fd;
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
  EXPECT_FALSE(r.http10);
  ASSERT_TRUE(ParseRequestHead("HEAD / HTTP/1.0", r));
  EXPECT_TRUE(r.http10);
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

// POST where allowed: its body (Content-Length) reaches the handler; without a length it is 411,
// above max_body_bytes 413; a path without a route goes to the fallback handler.
TEST(HttpServerTest, PostBodiesAndTheFallbackHandler) {
  HttpServerOptions o;
  o.allow_post = true;
  o.max_body_bytes = 16;
  o.fallback = [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", "fallback " + r.method + " " + r.path + " " + r.body};
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  HttpReply r = Exchange(s->port(), "POST /x/y HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "fallback POST /x/y hello");
  // The body may arrive after the head, in pieces.
  const int fd = Connect(s->port());
  ASSERT_GE(fd, 0);
  for (const std::string part : {"POST /z HTTP/1.1\r\nContent-Length: 3\r\n\r\n", "a", "bc"}) {
    ASSERT_EQ(send(fd, part.data(), part.size(), MSG_NOSIGNAL), static_cast<ssize_t>(part.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r = testing::ReadReply(fd);
  close(fd);
  EXPECT_EQ(r.body, "fallback POST /z abc");
  EXPECT_EQ(Exchange(s->port(), "POST /x HTTP/1.1\r\n\r\n").code, 411);
  EXPECT_EQ(Exchange(s->port(), "POST /x HTTP/1.1\r\nContent-Length: 17\r\n\r\n").code, 413);
  EXPECT_EQ(Exchange(s->port(), "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n").code, 411);
  EXPECT_EQ(Get(s->port(), "/echo", kProbeTimeout, "PUT").code, 405);
  EXPECT_EQ(Get(s->port(), "/anything").body, "fallback GET /anything ");
}

// A streamed response: the head at once (no Content-Length), then what the stream gives on each
// Notify() and at each tick; the stream is released when the client goes away, and a stream that
// says it is complete closes the connection.
TEST(HttpServerTest, StreamsSendOnNotifyAndEndWhenTheClientLeaves) {
  auto counter = std::make_shared<std::atomic<int>>(0);
  auto alive = std::make_shared<int>(0);
  HttpServerOptions o;
  o.stream_tick = std::chrono::seconds(30);  // only Notify() pulls, after the first pull
  o.routes["/hold"] = [alive](const HttpRequest&) {
    HttpResponse r{200, "text/event-stream", ""};
    r.stream = [alive]() -> std::optional<std::string> { return ""; };
    return r;
  };
  o.routes["/events"] = [counter](const HttpRequest&) {
    HttpResponse r{200, "text/event-stream", ""};
    r.stream = [counter]() -> std::optional<std::string> {
      const int n = ++*counter;
      if (n > 3) return std::nullopt;
      return "data: " + std::to_string(n) + "\n\n";
    };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const int fd = Connect(s->port());
  ASSERT_GE(fd, 0);
  const std::string req = "GET /events HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  auto read_until = [&](const std::string& want,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::array<char, 512> buf{};
    while (got.find(want) == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got.append(buf.data(), static_cast<std::size_t>(n));
    }
    return got.find(want) != std::string::npos;
  };
  EXPECT_TRUE(read_until("data: 1\n\n")) << got;
  EXPECT_THAT(got, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(got, Not(HasSubstr("Content-Length")));
  EXPECT_FALSE(read_until("data: 2", std::chrono::milliseconds(500)))
      << "sent without a Notify: " << got;
  s->Notify();
  EXPECT_TRUE(read_until("data: 2\n\n")) << got;
  s->Notify();
  EXPECT_TRUE(read_until("data: 3\n\n")) << got;
  s->Notify();  // the stream is complete: the server closes the connection
  std::array<char, 64> buf{};
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(recv(fd, buf.data(), buf.size(), 0), 0);
  close(fd);
  // A client that leaves: its stream is released (the shared state has one owner again).
  const long base = alive.use_count();  // this test's, and the options' copies of the route
  const int fd2 = Connect(s->port());
  ASSERT_GE(fd2, 0);
  const std::string hold = "GET /hold HTTP/1.1\r\n\r\n";
  ASSERT_EQ(send(fd2, hold.data(), hold.size(), MSG_NOSIGNAL), static_cast<ssize_t>(hold.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(alive.use_count(), base + 1);  // and the live stream's
  close(fd2);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (alive.use_count() > base && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(alive.use_count(), base);  // the stream was released
}

// A stream's client that does not read is dropped once max_stream_backlog bytes wait for it, and
// the server goes on answering others.
TEST(HttpServerTest, AStreamWhoseClientDoesNotReadIsDropped) {
  HttpServerOptions o;
  o.stream_tick = std::chrono::milliseconds(5);
  o.max_stream_backlog = std::size_t{64} * 1024;
  auto released = std::make_shared<std::atomic<int>>(0);  // counts the pulls
  o.routes["/flood"] = [released](const HttpRequest&) {
    HttpResponse r{200, "text/event-stream", ""};
    r.stream = [released]() -> std::optional<std::string> {
      ++*released;
      return "data: " + std::string(std::size_t{16} * 1024, 'x') + "\n\n";
    };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const long base = released.use_count();
  const int fd = RequestWithoutReading(s->port(), "/flood");
  ASSERT_GE(fd, 0);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*released == 0 || released.use_count() > base) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GT(released->load(), 0);
  EXPECT_EQ(released.use_count(), base) << "the stream of a client that does not read was kept";
  EXPECT_EQ(Get(s->port(), "/echo", kProbeTimeout).code, 200);
  close(fd);
}

// HEAD of a stream route sends the head only, and closes.
TEST(HttpServerTest, HeadOfAStreamIsTheHeadOnly) {
  HttpServerOptions o;
  o.routes["/events"] = [](const HttpRequest&) {
    HttpResponse r{200, "text/event-stream", ""};
    r.stream = []() -> std::optional<std::string> { return "data: x\n\n"; };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const HttpReply r = Get(s->port(), "/events", kProbeTimeout, "HEAD");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "");
}

// A response in pieces: chunked, each piece asked for only once the one before it has been sent
// (a client that does not read holds back the rest), empty pieces skipped, and the whole body
// arrives in order with its last chunk.
TEST(HttpServerTest, PiecesAreAskedForOnlyAsTheClientReads) {
  constexpr int kPieces = 16;
  const std::size_t piece_size = std::size_t{2} << 20;  // 32 MiB in all: more than any buffer
  auto pulls = std::make_shared<std::atomic<int>>(0);
  HttpServerOptions o;
  o.routes["/big"] = [pulls, piece_size](const HttpRequest&) {
    HttpResponse r{200, "text/plain", "ignored"};
    r.pieces = [pulls, piece_size, n = 0]() mutable -> std::optional<std::string> {
      ++*pulls;
      ++n;
      if (n > 2 * kPieces) return std::nullopt;
      if (n % 2 == 0) return "";  // skipped: an empty chunk would end the body
      return std::string(piece_size, static_cast<char>('a' + (n / 2) % 26));
    };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const int fd = Connect(s->port(), std::chrono::seconds(10));
  ASSERT_GE(fd, 0);
  const std::string req = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int held_back = pulls->load();
  EXPECT_GE(held_back, 1);
  EXPECT_LT(held_back, kPieces) << "pieces were asked for although the client read nothing";
  const HttpReply r = testing::ReadReply(fd);
  close(fd);
  EXPECT_EQ(r.code, 200);
  EXPECT_THAT(r.headers, HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(r.headers, Not(HasSubstr("Content-Length")));
  EXPECT_TRUE(r.chunked);
  EXPECT_TRUE(r.complete) << "the body must end with the last chunk";
  ASSERT_EQ(r.body.size(), piece_size * kPieces);
  for (int i = 0; i < kPieces; ++i) {
    const char want = static_cast<char>('a' + i % 26);
    const std::size_t at = piece_size * static_cast<std::size_t>(i);
    EXPECT_EQ(r.body.find_first_not_of(want, at),
              i + 1 == kPieces ? std::string::npos : at + piece_size)
        << "piece " << i;
  }
  EXPECT_EQ(pulls->load(), 2 * kPieces + 1);
}

// A piece that throws closes the connection before the last chunk: the client sees an
// incomplete body, never one that looks whole. HEAD asks for no piece.
TEST(HttpServerTest, AFailedPieceLeavesTheBodyIncompleteAndHeadAsksForNone) {
  auto pulls = std::make_shared<std::atomic<int>>(0);
  HttpServerOptions o;
  o.routes["/broken"] = [pulls](const HttpRequest&) {
    HttpResponse r{200, "text/plain", ""};
    r.pieces = [pulls, n = 0]() mutable -> std::optional<std::string> {
      ++*pulls;
      if (++n > 2) throw std::runtime_error("collect failed");
      return "line " + std::to_string(n) + "\n";
    };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  HttpReply r = Get(s->port(), "/broken");
  EXPECT_EQ(r.code, 200);
  EXPECT_TRUE(r.chunked);
  EXPECT_FALSE(r.complete) << r.body;
  // An HTTP/1.0 client cannot take chunks: it gets the pieces as they are, ended by the close.
  r = testing::Exchange(s->port(), "GET /broken HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.code, 200);
  EXPECT_FALSE(r.chunked);
  EXPECT_THAT(r.headers, Not(HasSubstr("Transfer-Encoding")));
  EXPECT_THAT(r.headers, Not(HasSubstr("Content-Length")));
  EXPECT_EQ(r.body, "line 1\nline 2\n");  // HTTP/1.0 cannot tell this from a whole body
  r = Get(s->port(), "/broken", kProbeTimeout, "HEAD");
  EXPECT_EQ(r.code, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(pulls->load(), 6) << "HEAD asked for a piece";
  EXPECT_EQ(Get(s->port(), "/echo", kProbeTimeout).code, 200);  // the server goes on
}

// A client that stops reading a response in pieces is dropped after request_timeout without
// progress, and its pieces (what they hold) are released.
TEST(HttpServerTest, AClientThatStopsReadingPiecesIsDropped) {
  HttpServerOptions o;
  o.request_timeout = std::chrono::milliseconds(300);
  auto held = std::make_shared<int>(0);
  o.routes["/big"] = [held](const HttpRequest&) {
    HttpResponse r{200, "text/plain", ""};
    r.pieces = [held]() -> std::optional<std::string> {
      return std::string(std::size_t{1} << 20, 'x');  // never ends
    };
    return r;
  };
  auto s = StartEcho(o);
  ASSERT_NE(s, nullptr);
  const long base = held.use_count();
  const int fd = RequestWithoutReading(s->port(), "/big");
  ASSERT_GE(fd, 0);
  const auto start = std::chrono::steady_clock::now();
  while (held.use_count() == base && std::chrono::steady_clock::now() - start < kProbeTimeout) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(held.use_count(), base + 1) << "the response never started";
  while (held.use_count() > base && std::chrono::steady_clock::now() - start < 10 * kProbeTimeout) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(held.use_count(), base) << "the pieces of a client that does not read were kept";
  EXPECT_EQ(Get(s->port(), "/echo", kProbeTimeout).code, 200);
  close(fd);
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
