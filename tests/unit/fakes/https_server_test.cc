#include "tests/fakes/https_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/fakes/openssl_ptr.h"
#include "tests/fakes/test_certs.h"

namespace rollgate::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

X509Ptr ParseCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr ParseKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string NameEntry(X509* cert, int nid) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

// X509_V_OK when `leaf` verifies against `ca_pem` for `purpose`.
int Verify(const std::string& ca_pem, const std::string& leaf_pem, int purpose) {
  X509StorePtr store(X509_STORE_new());
  X509Ptr ca = ParseCert(ca_pem);
  X509Ptr leaf = ParseCert(leaf_pem);
  EXPECT_TRUE(ca && leaf);
  if (!ca || !leaf) return -1;
  X509_STORE_add_cert(store.get(), ca.get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), purpose);
  X509_verify_cert(ctx.get());
  return X509_STORE_CTX_get_error(ctx.get());
}

bool WaitFor(const std::function<bool()>& cond, milliseconds limit = milliseconds(3000)) {
  auto deadline = steady_clock::now() + limit;
  while (!cond()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::vector<std::string> chunks;  // when chunked
};

// A tiny blocking TLS client: verifies the server (CA and IP 127.0.0.1) and optionally presents a
// client certificate. Reads time out after 5 s so a broken server fails the test, not hangs it.
class TlsClient {
 public:
  TlsClient(int port, const std::string& ca_pem, const Pem* client_cert = nullptr) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    X509Ptr ca = ParseCert(ca_pem);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_.get()), ca.get());
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (client_cert != nullptr) {
      X509Ptr cert = ParseCert(client_cert->cert);
      PkeyPtr key = ParseKey(client_cert->key);
      SSL_CTX_use_certificate(ctx_.get(), cert.get());
      SSL_CTX_use_PrivateKey(ctx_.get(), key.get());
    }
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(0x7f000001U);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return;
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
    ERR_clear_error();
    handshake_ok_ = SSL_connect(ssl_.get()) == 1;
  }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;
  ~TlsClient() {
    ssl_.reset();
    if (fd_ >= 0) ::close(fd_);
  }

  bool handshake_ok() const { return handshake_ok_; }
  long verify_result() const { return ssl_ ? SSL_get_verify_result(ssl_.get()) : -1; }
  bool got_close_notify() const { return close_notify_; }

  bool Send(std::string_view bytes) {
    if (!handshake_ok_) return false;
    ERR_clear_error();
    return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) ==
           static_cast<int>(bytes.size());
  }

  std::optional<Response> ReadHead() {
    std::size_t end = 0;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadSome()) return std::nullopt;
    }
    Response resp;
    std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (head.size() < 12 || head.compare(0, 5, "HTTP/") != 0) return std::nullopt;
    resp.status = std::atoi(head.c_str() + 9);
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
      std::size_t next = head.find("\r\n", pos + 2);
      std::string line = head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
      std::size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::size_t value = line.find_first_not_of(' ', colon + 1);
      resp.headers[name] = value == std::string::npos ? "" : line.substr(value);
      pos = next;
    }
    return resp;
  }

  // The next chunk of a chunked body; "" for the terminating chunk, nullopt on error or EOF.
  std::optional<std::string> ReadChunk() {
    std::size_t eol = 0;
    while ((eol = buf_.find("\r\n")) == std::string::npos) {
      if (!ReadSome()) return std::nullopt;
    }
    std::size_t size = std::strtoul(buf_.c_str(), nullptr, 16);
    buf_.erase(0, eol + 2);
    if (!Fill(size + 2)) return std::nullopt;
    std::string chunk = buf_.substr(0, size);
    buf_.erase(0, size + 2);
    return chunk;
  }

  std::optional<Response> ReadResponse() {
    std::optional<Response> resp = ReadHead();
    if (!resp) return std::nullopt;
    if (resp->headers["transfer-encoding"] == "chunked") {
      while (true) {
        std::optional<std::string> chunk = ReadChunk();
        if (!chunk) return std::nullopt;
        if (chunk->empty()) break;
        resp->body += *chunk;
        resp->chunks.push_back(std::move(*chunk));
      }
    } else if (resp->headers.count("content-length") != 0) {
      std::size_t length = std::strtoul(resp->headers["content-length"].c_str(), nullptr, 10);
      if (!Fill(length)) return std::nullopt;
      resp->body = buf_.substr(0, length);
      buf_.erase(0, length);
    } else {
      while (ReadSome()) {
      }
      resp->body = std::move(buf_);
      buf_.clear();
    }
    return resp;
  }

  // Reads until the connection ends; the bytes read (after anything already buffered).
  std::string ReadToEnd() {
    while (ReadSome()) {
    }
    std::string out = std::move(buf_);
    buf_.clear();
    return out;
  }

 private:
  bool ReadSome() {
    if (!handshake_ok_) return false;
    char tmp[16384];
    ERR_clear_error();
    int n = SSL_read(ssl_.get(), tmp, sizeof tmp);
    if (n > 0) {
      buf_.append(tmp, static_cast<std::size_t>(n));
      return true;
    }
    close_notify_ = SSL_get_error(ssl_.get(), n) == SSL_ERROR_ZERO_RETURN;
    return false;
  }

  bool Fill(std::size_t n) {
    while (buf_.size() < n) {
      if (!ReadSome()) return false;
    }
    return true;
  }

  SslCtxPtr ctx_;
  SslPtr ssl_;
  int fd_ = -1;
  bool handshake_ok_ = false;
  bool close_notify_ = false;
  std::string buf_;
};

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

void RespondOk(const Request& req, ResponseWriter& w) {
  w.Respond(200, R"({"path":")" + req.target_path + R"("})");
}

// ---------------------------------------------------------------------------------------------
// TestPki

TEST(TestPki, ChainVerifiesForItsPurposes) {
  const TestPki& pki = SharedTestPki();
  EXPECT_EQ(Verify(pki.ca.cert, pki.server.cert, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_EQ(Verify(pki.ca.cert, pki.client.cert, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(Verify(pki.ca.cert, pki.client.cert, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_NE(Verify(pki.ca.cert, pki.server.cert, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
  EXPECT_NE(Verify(pki.other_ca.cert, pki.server.cert, X509_PURPOSE_SSL_SERVER), X509_V_OK);
  EXPECT_NE(Verify(pki.other_ca.cert, pki.client.cert, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
}

TEST(TestPki, CertificatesHaveTheExpectedNamesAndKeys) {
  const TestPki& pki = SharedTestPki();
  X509Ptr ca = ParseCert(pki.ca.cert);
  X509Ptr server = ParseCert(pki.server.cert);
  X509Ptr client = ParseCert(pki.client.cert);
  ASSERT_TRUE(ca && server && client);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_ca(server.get()), 0);
  EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(NameEntry(client.get(), NID_commonName), "rollgate-test");
  EXPECT_EQ(NameEntry(client.get(), NID_organizationName), "system:masters");
  for (const Pem* pem : {&pki.ca, &pki.server, &pki.client, &pki.other_ca}) {
    X509Ptr cert = ParseCert(pem->cert);
    PkeyPtr key = ParseKey(pem->key);
    ASSERT_TRUE(cert && key);
    EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
    EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
    EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
    EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
  }
}

TEST(TestPki, SharedIsGeneratedOnceAndClientCnIsConfigurable) {
  EXPECT_EQ(&SharedTestPki(), &SharedTestPki());
  TestPki pki = GenerateTestPki("alice");
  X509Ptr client = ParseCert(pki.client.cert);
  ASSERT_TRUE(client);
  EXPECT_EQ(NameEntry(client.get(), NID_commonName), "alice");
  EXPECT_NE(pki.ca.cert, SharedTestPki().ca.cert);
}

// ---------------------------------------------------------------------------------------------
// HttpsServer

TEST(HttpsServer, RequestGetsTheHandlersResponse) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, RespondOk);
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.url(), "https://127.0.0.1:" + std::to_string(server.port()));

  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  ASSERT_TRUE(client.Send(Get("/healthz")));
  std::optional<Response> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, R"({"path":"/healthz"})");
  EXPECT_EQ(resp->headers["content-type"], "application/json");
  EXPECT_EQ(server.request_count(), 1U);
  EXPECT_EQ(server.tls_handshake_failures(), 0);
}

TEST(HttpsServer, RecordsRequestFieldsWithClientCertificate) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, pki.ca.cert}, [](const Request&, ResponseWriter& w) {
    w.Respond(201, "{}", "application/json", {{"X-Test", "yes"}});
  });
  TlsClient client(server.port(), pki.ca.cert, &pki.client);
  ASSERT_TRUE(client.handshake_ok());
  std::string body = R"({"kind":"Rollout"})";
  ASSERT_TRUE(client.Send(
      "POST /apis/x/v1/rollouts?labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&flag HTTP/1.1\r\n"
      "Host: 127.0.0.1\r\nAuthorization: Bearer t0k3n\r\nContent-Type: application/json\r\n"
      "X-Multi: a\r\nx-multi: b\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body));
  std::optional<Response> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(resp->headers["x-test"], "yes");

  std::vector<Request> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1U);
  const Request& req = reqs[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path, "/apis/x/v1/rollouts?labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&flag");
  EXPECT_EQ(req.target_path, "/apis/x/v1/rollouts");
  EXPECT_EQ(req.query,
            (std::map<std::string, std::string>{
                {"labelSelector", "app=web,tier in (a)"}, {"limit", "5"}, {"flag", ""}}));
  EXPECT_EQ(req.headers.at("authorization"), "Bearer t0k3n");
  EXPECT_EQ(req.headers.at("content-type"), "application/json");
  EXPECT_EQ(req.headers.at("x-multi"), "a, b");
  EXPECT_EQ(req.body, body);
  EXPECT_EQ(req.client_cn, "rollgate-test");
}

TEST(HttpsServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, RespondOk);
  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client.Send(Get("/r" + std::to_string(i))));
    std::optional<Response> resp = client.ReadResponse();
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->body, R"({"path":"/r)" + std::to_string(i) + R"("})");
  }
  // "Connection: close" is honoured: the response says so and the server closes orderly.
  ASSERT_TRUE(client.Send("GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"));
  std::optional<Response> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->headers["connection"], "close");
  EXPECT_EQ(client.ReadToEnd(), "");
  EXPECT_TRUE(client.got_close_notify());

  std::vector<Request> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4U);
  EXPECT_EQ(reqs[2].path, "/r2");
  EXPECT_EQ(reqs[2].client_cn, "");  // no client certificate requested
}

TEST(HttpsServer, MtlsRefusesClientWithoutCertificate) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, pki.ca.cert}, RespondOk);
  TlsClient client(server.port(), pki.ca.cert);
  // With TLS 1.3 the client's handshake completes before the server checks its certificate; the
  // refusal then arrives as an alert instead of the response.
  bool got_response = client.handshake_ok() && client.Send(Get("/")) && client.ReadResponse();
  EXPECT_FALSE(got_response);
  EXPECT_TRUE(WaitFor([&] { return server.tls_handshake_failures() == 1; }));
  EXPECT_EQ(server.request_count(), 0U);
}

TEST(HttpsServer, MtlsRefusesClientCertificateFromAnotherCa) {
  const TestPki& pki = SharedTestPki();
  TestPki stranger = GenerateTestPki("mallory");
  HttpsServer server({pki.server, pki.ca.cert}, RespondOk);
  TlsClient client(server.port(), pki.ca.cert, &stranger.client);
  bool got_response = client.handshake_ok() && client.Send(Get("/")) && client.ReadResponse();
  EXPECT_FALSE(got_response);
  EXPECT_TRUE(WaitFor([&] { return server.tls_handshake_failures() == 1; }));
  EXPECT_EQ(server.request_count(), 0U);
}

TEST(HttpsServer, ClientTrustingAnotherCaRefusesTheServer) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, RespondOk);
  TlsClient client(server.port(), pki.other_ca.cert);
  EXPECT_FALSE(client.handshake_ok());
  EXPECT_NE(client.verify_result(), X509_V_OK);
  EXPECT_TRUE(WaitFor([&] { return server.tls_handshake_failures() == 1; }));
  EXPECT_EQ(server.request_count(), 0U);
}

TEST(HttpsServer, ChunkedResponseArrivesChunkByChunk) {
  const TestPki& pki = SharedTestPki();
  std::promise<void> proceed;
  std::shared_future<void> proceed_future = proceed.get_future().share();
  HttpsServer server({pki.server, ""}, [&](const Request&, ResponseWriter& w) {
    w.StartChunked(200, "application/json", {{"X-Stream", "1"}});
    EXPECT_TRUE(w.WriteChunk("{\"n\":1}\n"));
    // The second chunk waits until the client has seen the first: proof that chunks are flushed.
    proceed_future.wait_for(std::chrono::seconds(5));
    EXPECT_TRUE(w.WriteChunk("{\"n\":2}\n"));
    w.EndChunked();
  });
  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  ASSERT_TRUE(client.Send(Get("/watch")));
  std::optional<Response> head = client.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->headers["transfer-encoding"], "chunked");
  EXPECT_EQ(head->headers["x-stream"], "1");
  EXPECT_EQ(client.ReadChunk(), "{\"n\":1}\n");
  proceed.set_value();
  EXPECT_EQ(client.ReadChunk(), "{\"n\":2}\n");
  EXPECT_EQ(client.ReadChunk(), "");
  // The connection stays usable after the stream.
  ASSERT_TRUE(client.Send(Get("/again")));
  std::optional<Response> again = client.ReadResponse();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->chunks, (std::vector<std::string>{"{\"n\":1}\n", "{\"n\":2}\n"}));
}

TEST(HttpsServer, AbortDropsTheConnectionWithoutCloseNotify) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, [](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    w.WriteChunk("partial\n");
    w.Abort();
  });
  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  ASSERT_TRUE(client.Send(Get("/watch")));
  ASSERT_TRUE(client.ReadHead());
  EXPECT_EQ(client.ReadChunk(), "partial\n");
  EXPECT_EQ(client.ReadChunk(), std::nullopt);
  EXPECT_FALSE(client.got_close_notify());
}

TEST(HttpsServer, WriteRawSendsATruncatedBodyThenClosesOrderly) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, [](const Request&, ResponseWriter& w) {
    EXPECT_TRUE(w.WriteRaw("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"));
  });
  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  ASSERT_TRUE(client.Send(Get("/")));
  std::optional<Response> head = client.ReadHead();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->headers["content-length"], "100");
  EXPECT_EQ(client.ReadToEnd(), "short");
  EXPECT_TRUE(client.got_close_notify());
}

TEST(HttpsServer, HandlerThatWritesNothingYields500) {
  const TestPki& pki = SharedTestPki();
  HttpsServer server({pki.server, ""}, [](const Request&, ResponseWriter&) {});
  TlsClient client(server.port(), pki.ca.cert);
  ASSERT_TRUE(client.handshake_ok());
  ASSERT_TRUE(client.Send(Get("/")));
  std::optional<Response> resp = client.ReadResponse();
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->status, 500);
}

TEST(HttpsServer, WriteChunkFailsOnceTheClientHasGone) {
  const TestPki& pki = SharedTestPki();
  std::promise<void> first_sent;
  std::promise<bool> handler_done;
  HttpsServer server({pki.server, ""}, [&](const Request&, ResponseWriter& w) {
    w.StartChunked(200);
    w.WriteChunk("hello\n");
    first_sent.set_value();
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    bool failed = false;
    while (steady_clock::now() < deadline && !failed) {
      failed = !w.WriteChunk(std::string(1024, 'x'));
      std::this_thread::sleep_for(milliseconds(2));
    }
    handler_done.set_value(failed && w.client_gone());
  });
  std::future<bool> done = handler_done.get_future();
  {
    TlsClient client(server.port(), pki.ca.cert);
    ASSERT_TRUE(client.handshake_ok());
    ASSERT_TRUE(client.Send(Get("/watch")));
    ASSERT_TRUE(client.ReadHead());
    first_sent.get_future().wait();
  }  // the client goes away mid-stream
  ASSERT_EQ(done.wait_for(std::chrono::seconds(6)), std::future_status::ready);
  EXPECT_TRUE(done.get());
}

TEST(HttpsServer, DestructorReturnsPromptlyDuringAnEndlessStream) {
  const TestPki& pki = SharedTestPki();
  std::atomic<int> streaming{0};
  auto server = std::make_unique<HttpsServer>(HttpsServer::Options{pki.server, pki.ca.cert},
                                              [&](const Request&, ResponseWriter& w) {
                                                w.StartChunked(200);
                                                ++streaming;
                                                while (!w.stopping()) {
                                                  w.WriteChunk("{\"type\":\"BOOKMARK\"}\n");
                                                  std::this_thread::sleep_for(milliseconds(20));
                                                }
                                              });
  TlsClient streamer(server->port(), pki.ca.cert, &pki.client);
  ASSERT_TRUE(streamer.handshake_ok());
  ASSERT_TRUE(streamer.Send(Get("/watch")));
  ASSERT_TRUE(streamer.ReadHead());
  ASSERT_TRUE(streamer.ReadChunk());
  // A second, idle keep-alive connection and a third one that never finishes its request.
  TlsClient idle(server->port(), pki.ca.cert, &pki.client);
  ASSERT_TRUE(idle.handshake_ok());
  TlsClient partial(server->port(), pki.ca.cert, &pki.client);
  ASSERT_TRUE(partial.handshake_ok());
  ASSERT_TRUE(partial.Send("GET /half HTTP/1.1\r\n"));
  EXPECT_EQ(streaming.load(), 1);

  auto start = steady_clock::now();
  server.reset();
  auto elapsed = steady_clock::now() - start;
  EXPECT_LT(elapsed, milliseconds(1000));
}

}  // namespace
}  // namespace rollgate::testing
