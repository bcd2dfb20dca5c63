// HttpServer: the small HTTP/1.1 server behind the health probes and /metrics. One thread runs a
// poll(2) loop over the listening socket and every connection, so a connection that sends nothing
// (a port scanner, a half-open peer, a stuck proxy) costs one file descriptor and a buffer, never
// a thread: a probe is answered at once whatever else is connected. (civetweb, used before, gives
// each connection one of a fixed number of threads until it times out, so two idle connections
// delayed /healthz by 10 s and five made the kubelet's 1 s probe fail.)
//
// What it serves: GET and HEAD (and POST with a small body where `allow_post` says so), exact
// paths (and a fallback handler for the rest), one request per connection (every response says
// `Connection: close`; probes and Prometheus reconnect cheaply). Limits, each a clean failure:
//   - a connection must deliver its request head within `request_timeout`, and take its response
//     within the same time again, or it is closed;
//   - a request head above `max_request_bytes` is answered 431; a body is read only for POST,
//     with a Content-Length of at most `max_body_bytes` (413 above, 411 without one);
//   - at `max_connections`, the oldest connection is closed to admit a new one, so idle
//     connections can never lock a probe out.
// With `tls` set, every connection starts with a TLS handshake (non-blocking, same deadlines).
//
// A streamed response (HttpResponse::stream; Server-Sent Events) keeps its connection: after the
// head, the server asks the stream for more on every Notify() and at least every `stream_tick`,
// and sends what it gives until it says it is complete or the client goes away. A client that does
// not read is dropped once `max_stream_backlog` bytes wait for it, or when nothing could be sent
// for `request_timeout`. Streams are for plain HTTP: a TLS server answers them 500.
//
// Handlers run on the server's thread, one at a time: they must be quick (they read in-memory
// state) and thread-safe with respect to the rest of the program.
// Thread-safety: Start and destroy from one thread; the destructor stops and joins the thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "controller/common/status.h"

using SSL_CTX = struct ssl_ctx_st;

namespace rollgate::metrics {

struct HttpRequest {
  std::string method;                          // "GET" or "HEAD"
  std::string path;                            // without the query
  std::string query;                           // after '?', undecoded; empty when none
  bool http10 = false;                         // an HTTP/1.0 request (no chunked coding back)
  std::map<std::string, std::string> headers;  // names lower-cased; the last value wins
  std::string body;                            // POST only
};

// The body of a streamed response, called on the server's thread: the bytes to send now ("" for
// none yet), or nullopt when the response is complete.
using HttpStreamPull = std::function<std::optional<std::string>()>;

struct HttpResponse {
  int code = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers{};  // extra headers
  HttpStreamPull stream{};  // set: `body` is ignored and the body is streamed (no Content-Length)
  // Set (and `stream` not): `body` is ignored and the body is sent in pieces with chunked transfer
  // coding, each asked for once the one before it has been sent, until nullopt (an empty piece is
  // skipped). An HTTP/1.0 client, which cannot take chunks, gets the pieces as they are, the body
  // ending when the connection closes. Only one piece is ever held, so a large body (a scrape)
  // costs its largest piece, not its size; a client that stops reading holds one piece, and is
  // dropped after request_timeout without progress. Works over TLS too. A piece that throws closes
  // the connection before the last chunk, so the client sees an incomplete body, never a short one
  // that looks whole.
  HttpStreamPull pieces{};
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string name = "http";  // for logs and errors: "health", "metrics"
  // A listening address as ParseBindAddress returns it: "8080" (every IPv4
  // interface), "127.0.0.1:8080", "[::1]:8080"; port 0 asks for an ephemeral port.
  std::string listen;
  std::map<std::string, HttpHandler> routes{};  // exact path -> handler
  HttpHandler fallback{};                       // any other path; none: 404
  bool allow_post = false;                      // else POST is 405
  std::size_t max_body_bytes = 0;
  std::chrono::milliseconds stream_tick{std::chrono::seconds(1)};
  std::size_t max_stream_backlog = std::size_t{1} << 20;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(5)};
  std::size_t max_connections = 256;
  std::size_t max_request_bytes = 8192;
  std::shared_ptr<SSL_CTX> tls{};  // null: plain HTTP
};

class HttpServer {
 public:
  // Binds and starts serving. Unavailable when the address cannot be bound (named in the
  // message), InvalidArgument when `listen` is malformed.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions opts);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

  // Asks every streamed response for more now. Thread-safe; cheap when nothing streams.
  void Notify();

 private:
  struct Connection;
  explicit HttpServer(HttpServerOptions opts) : opts_(std::move(opts)) {}
  void Loop();
  void Accept(std::vector<std::unique_ptr<Connection>>& conns,
              std::chrono::steady_clock::time_point now);
  // Advances one connection as far as it can without blocking; false when it is finished.
  bool Advance(Connection& c, short revents, std::chrono::steady_clock::time_point now);
  void Respond(Connection& c);
  // Whether the request (its head, and a POST's body) is all here, or too large to wait for.
  bool RequestComplete(Connection& c) const;
  // A streamed connection: asks its stream for more; false when it should be closed.
  bool Pull(Connection& c, std::chrono::steady_clock::time_point now);
  // A response in pieces whose last piece has been sent: puts the next one (framed as a chunk
  // unless the client speaks HTTP/1.0) in its output; false when the piece failed and the
  // connection should be closed.
  bool NextPiece(Connection& c);

  HttpServerOptions opts_;
  int listen_fd_ = -1;
  int wake_read_ = -1;  // the destructor writes to wake_write_ to stop the loop
  int wake_write_ = -1;
  int notify_read_ = -1;  // Notify() writes to notify_write_
  int notify_write_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// Pure. Splits "GET /a?b HTTP/1.1\r\nName: v\r\n..." (the head without the final blank line).
// False when the request line or a header line is malformed.
bool ParseRequestHead(const std::string& head, HttpRequest& out);

// Pure. The serialised response: status line, Content-Type, Content-Length (not for a stream or
// pieces; Transfer-Encoding: chunked for pieces unless `http10`), Cache-Control: no-store,
// Connection: close, the extra headers, then the body (omitted for HEAD, a stream and pieces).
std::string SerializeResponse(const HttpResponse& r, bool head_only, bool http10 = false);

}  // namespace rollgate::metrics
