// HttpTransport: the one seam between Rollgate and an HTTP(S) library. A request is sent to the
// configured API server; bodies are strings, streams deliver one line at a time as it arrives.
// The only implementation (cpprest_transport.cc) is the only file that includes cpprest's client
// headers: it costs ~9 s and ~600 MB to compile and keeps the library swappable.
// Headers and bodies are never logged here (they carry tokens and object data).
// Thread-safety: implementations are safe for concurrent requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "controller/common/cancel.h"
#include "controller/common/status.h"

namespace rollgate::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // absolute path with query: "/api/v1/namespaces/x/pods?limit=500"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type;  // sent exactly as given when body is non-empty
  // Total time allowed for a plain request, body included; for a stream, the longest silence
  // tolerated.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Plain requests: the longest response body read; a longer one (by Content-Length or as it
  // arrives) fails kMalformed "response larger than N bytes" and the connection is closed.
  // 0: no limit.
  std::size_t max_body_bytes = 0;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

struct TlsConfig {
  std::string ca_pem;           // the only trusted CA(s); the system store is never consulted
  std::string client_cert_pem;  // optional client certificate chain
  std::string client_key_pem;   // optional client key
  bool insecure_skip_verify = false;
  // The name the server's certificate is verified against, and the SNI sent, instead of the host
  // in `server` (kubeconfig tls-server-name); empty: that host. An IP address is matched against
  // the certificate's IP SANs and sends no SNI.
  std::string server_name;
};

// TCP keepalive on every connection: a peer that vanished without closing (a half-open
// connection, a stuck middlebox) is detected after idle + interval * count instead of never.
struct KeepaliveOptions {
  bool enabled = true;
  std::chrono::seconds idle{30};      // TCP_KEEPIDLE
  std::chrono::seconds interval{10};  // TCP_KEEPINTVL
  int count = 3;                      // TCP_KEEPCNT
};

// Redirects are never followed: a 3xx is returned as a response (a bearer token or basic
// credentials must not follow a Location to another host).
struct TransportOptions {
  std::string server;  // "https://host:port"
  TlsConfig tls;
  std::string user_agent;
  int threads = 4;  // worker threads of the HTTP library's pool
  KeepaliveOptions keepalive{};
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Sends a request and reads the whole response. HTTP error statuses are returned as responses;
  // only transport failures (connect, TLS, timeout, reset) and cancellation are errors.
  virtual Result<HttpResponse> Send(const HttpRequest& req, const CancelToken* cancel) = 0;

  // Sends a request whose 2xx response body is a stream of newline-delimited records and calls
  // `on_line` for each line (without the newline) as it arrives; returning false from `on_line`
  // closes the stream. Returns the response (status, headers; body only for non-2xx) when the
  // server ends the stream, or an error when the connection fails, stalls past `timeout`, or
  // `cancel` fires (kCancelled, within about a second).
  virtual Result<HttpResponse> Stream(const HttpRequest& req,
                                      const std::function<bool(std::string_view line)>& on_line,
                                      const CancelToken& cancel) = 0;
};

// The cpprestsdk implementation. Fails (kInvalidArgument) on an unusable server URL or PEM data.
Result<std::unique_ptr<HttpTransport>> NewCpprestTransport(const TransportOptions& opts);

}  // namespace rollgate::kube
