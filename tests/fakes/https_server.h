// HttpsServer: a small blocking HTTPS/1.1 server on 127.0.0.1 (ephemeral port) for HTTP adapter
// tests. One thread accepts; each connection gets its own thread, which serves requests one after
// another (keep-alive) and runs the handler for each. Every request is recorded before its
// handler runs. Optionally requires and verifies client certificates (mTLS). The writer can send
// full responses, chunked streams (each chunk flushed at once), raw bytes, or drop the connection
// abruptly, so tests can simulate slow, truncated and broken servers.
// The first server ignores SIGPIPE for the whole process, so writes to a gone peer fail instead of
// killing the test binary.
// Thread-safety: HttpsServer's accessors may be called from any thread. A ResponseWriter belongs
// to the connection thread that runs the handler: use it only inside the handler call. Handlers
// may run concurrently (one per connection) and must synchronise what they share.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/fakes/openssl_ptr.h"
#include "tests/fakes/test_certs.h"

namespace rollgate::testing {

struct Request {
  std::string method;
  std::string path;         // request target as sent, with query: "/api/v1/pods?limit=5"
  std::string target_path;  // path without query, not decoded: "/api/v1/pods"
  std::map<std::string, std::string> query;    // percent-decoded ('+' is a space, as in Go)
  std::map<std::string, std::string> headers;  // lower-cased names; repeats joined with ", "
  std::string body;
  std::string client_cn;  // CN of the verified client certificate, or ""
  std::string sni;        // the TLS server name (SNI) the client sent, or ""
};

class HttpsServer;
struct Connection;

// Writes the response to one request. Exactly one of Respond / StartChunked (+ WriteChunk ... +
// EndChunked) / WriteRaw is expected; a handler that writes nothing gets a 500. After the handler
// returns: a chunked stream not yet ended is ended, and the connection is kept for the next
// request unless Close/Abort/WriteRaw was used, the request asked for "Connection: close", or a
// write failed.
class ResponseWriter {
 public:
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;
  ~ResponseWriter() = default;

  // A full response with Content-Length (none, and no body, for 1xx/204/304).
  void Respond(int status, const std::string& body,
               const std::string& content_type = "application/json",
               const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

  // A chunked stream: headers first, then each WriteChunk is one chunk, flushed immediately.
  void StartChunked(int status, const std::string& content_type = "application/json",
                    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});
  bool WriteChunk(std::string_view data);  // false when the client has gone (or the server stops)
  void EndChunked();                       // the terminating zero-length chunk

  // Drops the TCP connection at once: no TLS close_notify, no terminating chunk. The client sees
  // the bytes sent so far, then an unexpected EOF.
  void Abort();

  // Writes bytes verbatim, with no framing: a hand-made status line and headers, a Content-Length
  // larger than the data, or garbage after StartChunked. The connection is closed (orderly, with
  // close_notify) after the handler returns. False when the client has gone.
  bool WriteRaw(std::string_view bytes);

  // Closes the connection (orderly, with close_notify) after this response; adds
  // "Connection: close" when the headers are not yet sent.
  void Close();

  // Best effort: a write failed, the peer hung up, or the server is stopping.
  bool client_gone() const;
  bool stopping() const;

 private:
  friend class HttpsServer;
  enum class State { kNone, kResponded, kChunked, kChunkedEnded, kRaw, kAborted };

  ResponseWriter(Connection* conn, const HttpsServer* server, bool close_requested)
      : conn_(conn), server_(server), close_(close_requested) {}
  bool Write(std::string_view bytes);
  std::string Head(int status, const std::string& content_type,
                   const std::vector<std::pair<std::string, std::string>>& extra_headers,
                   bool chunked, std::size_t content_length) const;
  bool Expect(State state, const char* call);
  void Finish();  // after the handler returns

  Connection* conn_;
  const HttpsServer* server_;
  State state_ = State::kNone;
  bool close_;
  bool write_failed_ = false;
};

using Handler = std::function<void(const Request&, ResponseWriter&)>;

class HttpsServer {
 public:
  struct Options {
    Pem server;                 // certificate and key the server presents
    std::string client_ca_pem;  // empty: no client certificate requested; else one is required
                                // and must verify against these CA certificate(s)
  };

  // Starts listening immediately; aborts on bad PEM data or socket errors.
  HttpsServer(const Options& opts, Handler handler);
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;
  // Stops: closes the listener and shuts down every open connection, then joins every thread.
  // Prompt as long as handlers return when stopping() is set or a write fails.
  ~HttpsServer();

  int port() const { return port_; }
  std::string url() const;  // "https://127.0.0.1:PORT"
  std::vector<Request> requests() const;
  std::size_t request_count() const;
  bool stopping() const { return stopping_.load(); }
  // Handshakes that failed (no or unverifiable client certificate, client refused our
  // certificate). Counted when the server's side of the handshake ends, which can be a moment
  // after the client has already seen its own failure: poll briefly.
  int tls_handshake_failures() const { return handshake_failures_.load(); }

 private:
  void AcceptLoop();
  void Serve(Connection* conn);
  void ReapFinished();

  Handler handler_;
  SslCtxPtr ctx_;
  bool verify_clients_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshake_failures_{0};

  mutable std::mutex mu_;
  std::vector<Request> requests_;                 // guarded by mu_
  std::list<std::unique_ptr<Connection>> conns_;  // guarded by mu_
  std::thread accept_thread_;
};

}  // namespace rollgate::testing
