// The cpprest transport's destruction: it waits for the work cpprest finishes on its thread pool
// after a request has returned (the response stream's close continuations), so that none is still
// queued when the process exits. Under AddressSanitizer, work left queued at exit shows up as a
// LeakSanitizer report of the test's process (ctest runs each test in a process of its own); these
// tests also check that the wait is short.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "controller/common/cancel.h"
#include "controller/kube/http_transport.h"
#include "tests/fakes/https_server.h"
#include "tests/fakes/test_certs.h"

namespace rollgate::kube {
namespace {

using rollgate::testing::HttpsServer;
using rollgate::testing::Request;
using rollgate::testing::ResponseWriter;
using rollgate::testing::SharedTestPki;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::unique_ptr<HttpTransport> Transport(const std::string& server) {
  TransportOptions o;
  o.server = server;
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

}  // namespace
}  // namespace rollgate::kube
