// The cpprest transport's destruction: it waits for the work cpprest finishes on its thread pool
// after a request has returned (the response stream's close continuations), so that none is still
// queued when the process exits. Under AddressSanitizer, work left queued at exit shows up as a
// LeakSanitizer report of the test's process (ctest runs each test in a process of its own); these
// tests also check that the wait is short.
// Hostile servers: a redirect to another host is returned, never followed (the credentials would
// follow it); a body beyond max_body_bytes fails without being read whole; a body dripping one
// byte at a time ends at the request's total deadline. TCP keepalive is proven from the kernel's
// view of the client's connections (/proc/net/tcp: the keepalive timer, due within the 30 s idle
// time), for https and plain http, requests and streams.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/kube/http_transport.h"
#include "tests/fakes/https_server.h"
#include "tests/fakes/loopback.h"
#include "tests/fakes/test_certs.h"

namespace rollgate::kube {
namespace {

using rollgate::testing::HttpsServer;
using rollgate::testing::Request;
using rollgate::testing::ResponseWriter;
using rollgate::testing::SharedTestPki;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::unique_ptr<HttpTransport> Transport(const std::string& server, bool keepalive = true) {
  TransportOptions o;
  o.server = server;
  o.keepalive.enabled = keepalive;
  o.tls.ca_pem = SharedTestPki().ca.cert;
  auto t = NewCpprestTransport(o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(CpprestTransportTest, DestructionAfterRefusedConnectionsIsPrompt) {
  // Port 1 on loopback: nothing listens there.
  std::unique_ptr<HttpTransport> t = Transport("http://127.0.0.1:1");
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/api/v1/query?query=up";
  req.timeout = milliseconds(2000);
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> r = t->Send(req, nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTransport) << r.status().ToString();
  }
  const auto start = steady_clock::now();
  t.reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
}

TEST(CpprestTransportTest, DestructionAfterAStreamItsCallbackEndedIsPrompt) {
  HttpsServer server({SharedTestPki().server, ""}, [](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    while (!w.stopping() && !w.client_gone() && w.WriteChunk("{\"line\":1}\n")) {
      std::this_thread::sleep_for(milliseconds(5));
    }
  });
  std::unique_ptr<HttpTransport> t = Transport(server.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/stream";
  CancelToken cancel;
  int lines = 0;
  Result<HttpResponse> r = t->Stream(
      req,
      [&](std::string_view) {
        ++lines;
        return lines < 3;  // the third line closes the stream
      },
      cancel);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(lines, 3);
  const auto start = steady_clock::now();
  t.reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
}

TEST(CpprestTransportTest, DestructionAfterSuccessfulRequestsIsPrompt) {
  HttpsServer server({SharedTestPki().server, ""},
                     [](const Request&, ResponseWriter& w) { w.Respond(200, R"({"ok":true})"); });
  std::unique_ptr<HttpTransport> t = Transport(server.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/ok";
  for (int i = 0; i < 3; ++i) {
    Result<HttpResponse> r = t->Send(req, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, R"({"ok":true})");
  }
  const auto start = steady_clock::now();
  t.reset();
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
}

// ---- Hostile servers: redirects, huge bodies, a dripping body ----

TEST(CpprestTransportTest, RedirectToAnotherHostIsReturnedNotFollowed) {
  // Given: a server that redirects every request (with its Authorization header) to another.
  HttpsServer other({SharedTestPki().server, ""},
                    [](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  HttpsServer redirector({SharedTestPki().server, ""}, [&](const Request&, ResponseWriter& w) {
    w.Respond(302, "", "text/plain", {{"Location", other.url() + "/stolen"}});
  });
  std::unique_ptr<HttpTransport> t = Transport(redirector.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/api/v1/query?query=up";
  req.headers.emplace_back("Authorization", "Bearer secret-token");

  // When
  Result<HttpResponse> r = t->Send(req, nullptr);

  // Then: the 302 itself comes back; the other host never sees a request (nor the token).
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(redirector.request_count(), 1u);
  EXPECT_EQ(other.request_count(), 0u);
}

TEST(CpprestTransportTest, BodyLargerThanTheCapFailsAndIsNotReadWhole) {
  // Given: a server streaming an endless body, and one announcing 2 MiB by Content-Length.
  std::atomic<std::size_t> streamed{0};
  HttpsServer endless({SharedTestPki().server, ""}, [&](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    const std::string chunk(std::size_t{64} * 1024, 'x');
    while (!w.stopping() && w.WriteChunk(chunk)) streamed += chunk.size();
  });
  HttpsServer announced({SharedTestPki().server, ""}, [](const Request&, ResponseWriter& w) {
    w.Respond(200, std::string(std::size_t{2} << 20, 'y'));
  });
  HttpRequest req;
  req.path = "/api/v1/query?query=up";
  req.timeout = std::chrono::seconds(60);
  req.max_body_bytes = std::size_t{1} << 20;

  for (HttpsServer* server : {&endless, &announced}) {
    std::unique_ptr<HttpTransport> t = Transport(server->url());
    ASSERT_NE(t, nullptr);
    // When
    Result<HttpResponse> r = t->Send(req, nullptr);
    // Then: a failure naming the cap, well before the deadline (an endless body never ends).
    ASSERT_FALSE(r.ok()) << server->url();
    EXPECT_EQ(r.status().code(), StatusCode::kMalformed) << r.status().ToString();
    EXPECT_NE(r.status().message().find("response larger than 1 MiB"), std::string::npos)
        << r.status().ToString();
  }
  // The endless server stopped being read: the connection was closed, not drained.
  const std::size_t at_stop = streamed.load();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(streamed.load(), at_stop);
}

TEST(CpprestTransportTest, BodyAtTheCapIsReadWhole) {
  const std::string body(std::size_t{1} << 20, 'z');
  HttpsServer server({SharedTestPki().server, ""},
                     [&](const Request&, ResponseWriter& w) { w.Respond(200, body); });
  std::unique_ptr<HttpTransport> t = Transport(server.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/x";
  req.max_body_bytes = body.size();
  Result<HttpResponse> r = t->Send(req, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, body);
}

TEST(CpprestTransportTest, DrippingBodyEndsAtTheTotalDeadline) {
  // Given: a server that sends its headers, then one body byte every 200 ms, for ever (each byte
  // restarts cpprest's own inactivity timer).
  HttpsServer server({SharedTestPki().server, ""}, [](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    while (!w.stopping() && w.WriteChunk("x")) std::this_thread::sleep_for(milliseconds(200));
  });
  std::unique_ptr<HttpTransport> t = Transport(server.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/drip";
  req.timeout = milliseconds(1500);

  // When
  Result<HttpResponse> r = t->Send(req, nullptr);

  // Then: the request ends with the total deadline although bytes kept coming.
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("no complete response within 1500ms"), std::string::npos)
      << r.status().ToString();
}

// ---- TCP keepalive ----

// The kernel's view of this process's established client connections to 127.0.0.1:`port`
// (/proc/net/tcp): for each, whether the keepalive timer is pending ("tr" 2, the socket timer,
// which only keepalive arms on an established socket) and in how many seconds it fires.
struct TcpTimer {
  int timer = 0;
  double seconds = 0;
};
std::vector<TcpTimer> ClientTimers(int port) {
  std::vector<TcpTimer> out;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  char rem[32];
  std::snprintf(rem, sizeof rem, "0100007F:%04X", port);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, st, queues, timer;
    f >> sl >> local >> remote >> st >> queues >> timer;
    if (remote != rem || st != "01") continue;
    const auto colon = timer.find(':');
    TcpTimer t;
    t.timer = std::stoi(timer.substr(0, colon), nullptr, 16);
    t.seconds = static_cast<double>(std::stoul(timer.substr(colon + 1), nullptr, 16)) /
                static_cast<double>(sysconf(_SC_CLK_TCK));
    out.push_back(t);
  }
  return out;
}

TEST(CpprestTransportTest, ConnectionsHaveTcpKeepalive) {
  HttpsServer server({SharedTestPki().server, ""},
                     [](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  for (bool enabled : {true, false}) {
    SCOPED_TRACE(enabled ? "keepalive on" : "keepalive off");
    std::unique_ptr<HttpTransport> t = Transport(server.url(), enabled);
    ASSERT_NE(t, nullptr);
    HttpRequest req;
    req.path = "/ok";
    // When: a request (its connection stays open in the client's pool)
    Result<HttpResponse> r = t->Send(req, nullptr);
    ASSERT_TRUE(r.ok()) << r.status().ToString();

    // Then: the connection's keepalive timer fires after the 30 s idle time (the system default
    // is 2 hours); without keepalive no such timer runs.
    std::vector<TcpTimer> timers = ClientTimers(server.port());
    ASSERT_EQ(timers.size(), 1u);
    if (enabled) {
      EXPECT_EQ(timers[0].timer, 2);
      EXPECT_GT(timers[0].seconds, 20.0);
      EXPECT_LE(timers[0].seconds, 30.0);
    } else {
      EXPECT_NE(timers[0].timer, 2);
    }
    t.reset();
  }
}

// A plain-HTTP loopback server answering every request on a connection with a small 200 and
// keeping the connection open (cpprest hands plain connections to the keepalive hook as a bare
// socket, TLS ones as an ssl stream: both are checked).
class PlainHttpServer {
 public:
  PlainHttpServer() {
    const rollgate::testing::LoopbackListener l = rollgate::testing::ListenLoopback(8);
    fd_ = l.fd;
    port_ = l.port;
    if (fd_ < 0) return;
    thread_ = std::thread([this] {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conn_ = c;
      std::string in;
      char buf[4096];
      while (true) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
        if (in.find("\r\n\r\n") == std::string::npos) continue;
        in.clear();
        const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        if (::write(c, resp.data(), resp.size()) < 0) return;
      }
    });
  }
  PlainHttpServer(const PlainHttpServer&) = delete;
  PlainHttpServer& operator=(const PlainHttpServer&) = delete;
  ~PlainHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (conn_ >= 0) ::shutdown(conn_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (conn_ >= 0) ::close(conn_);
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  std::atomic<int> conn_{-1};
  int port_ = 0;
  std::thread thread_;
};

TEST(CpprestTransportTest, PlainHttpConnectionsHaveTcpKeepalive) {
  PlainHttpServer server;
  ASSERT_NE(server.port(), 0);
  std::unique_ptr<HttpTransport> t = Transport("http://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/api/v1/query?query=up";
  Result<HttpResponse> r = t->Send(req, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "{}");
  std::vector<TcpTimer> timers = ClientTimers(server.port());
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].timer, 2);
  EXPECT_GT(timers[0].seconds, 20.0);
  EXPECT_LE(timers[0].seconds, 30.0);
  t.reset();
}

TEST(CpprestTransportTest, StreamsHaveTcpKeepalive) {
  HttpsServer server({SharedTestPki().server, ""}, [](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    w.WriteChunk("{\"line\":1}\n");
    while (!w.stopping() && !w.client_gone()) std::this_thread::sleep_for(milliseconds(20));
  });
  std::unique_ptr<HttpTransport> t = Transport(server.url());
  ASSERT_NE(t, nullptr);
  HttpRequest req;
  req.path = "/watch";
  CancelToken cancel;
  std::optional<std::vector<TcpTimer>> seen;
  Result<HttpResponse> r = t->Stream(
      req,
      [&](std::string_view) {
        seen = ClientTimers(server.port());  // while the watch is open
        return false;
      },
      cancel);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(seen.has_value());
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0].timer, 2);
  EXPECT_LE((*seen)[0].seconds, 30.0);
}

// ---- tls_server_name: the name the server's certificate is verified against ----

// Sends one request to `url` with TlsConfig::server_name = `name` (empty: none), trusting `ca`.
Result<HttpResponse> SendWithServerName(const std::string& url, const std::string& name,
                                        const std::string& ca, bool keepalive = true) {
  TransportOptions o;
  o.server = url;
  o.keepalive.enabled = keepalive;
  o.tls.ca_pem = ca;
  o.tls.server_name = name;
  auto t = NewCpprestTransport(o);
  if (!t.ok()) return t.status();
  HttpRequest req;
  req.path = "/version";
  req.timeout = milliseconds(5000);
  return (*t)->Send(req, nullptr);
}

TEST(CpprestTransportTest, ServerNameIsVerifiedInsteadOfTheUrlHostAndSentAsSni) {
  // Given: a server at 127.0.0.1 whose certificate names only remote.example.
  const auto& pki = SharedTestPki();
  HttpsServer server({rollgate::testing::IssueServerCert(pki.ca, "DNS:remote.example"), ""},
                     [](const Request&, ResponseWriter& w) { w.Respond(200, R"({"ok":true})"); });

  // The certificate's name: verified, sent as SNI (with and without the keepalive option).
  for (const bool keepalive : {true, false}) {
    SCOPED_TRACE(keepalive ? "keepalive" : "no keepalive");
    Result<HttpResponse> r =
        SendWithServerName(server.url(), "remote.example", pki.ca.cert, keepalive);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    ASSERT_FALSE(server.requests().empty());
    EXPECT_EQ(server.requests().back().sni, "remote.example");
  }
  ASSERT_EQ(server.request_count(), 2u);

  // Another name, and no name at all (the URL's host 127.0.0.1 is not in the certificate): the
  // handshake fails and no request reaches the server.
  for (const std::string name : {"other.example", "", "127.0.0.1"}) {
    SCOPED_TRACE("server name \"" + name + "\"");
    Result<HttpResponse> r = SendWithServerName(server.url(), name, pki.ca.cert);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kTransport) << r.status().ToString();
  }
  EXPECT_EQ(server.request_count(), 2u);
}

TEST(CpprestTransportTest, ServerNameStillRequiresTheConfiguredCa) {
  // Given: the right name, but the certificate is signed by a CA the transport does not trust.
  const auto& pki = SharedTestPki();
  HttpsServer server({rollgate::testing::IssueServerCert(pki.other_ca, "DNS:remote.example"), ""},
                     [](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  Result<HttpResponse> r = SendWithServerName(server.url(), "remote.example", pki.ca.cert);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTransport) << r.status().ToString();
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(CpprestTransportTest, IpServerNameMatchesIpSansAndSendsNoSni) {
  const auto& pki = SharedTestPki();
  HttpsServer server({rollgate::testing::IssueServerCert(pki.ca, "IP:10.9.8.7"), ""},
                     [](const Request&, ResponseWriter& w) { w.Respond(200, "{}"); });
  Result<HttpResponse> ok = SendWithServerName(server.url(), "10.9.8.7", pki.ca.cert);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests().back().sni, "");  // RFC 6066: an IP address is never the SNI

  Result<HttpResponse> wrong = SendWithServerName(server.url(), "10.9.8.6", pki.ca.cert);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(server.request_count(), 1u);
}

}  // namespace
}  // namespace rollgate::kube
