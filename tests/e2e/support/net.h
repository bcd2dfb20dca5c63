// Loopback networking for the e2e tests: a free port for a child to listen on, a socket that
// refuses or swallows connections (an unreachable or silent server), a minimal HTTP/1.0 GET (the
// controller's /metrics, /healthz, /readyz; Prometheus' API), and the Prometheus text exposition
// parsed into samples.
// Thread-safety: the functions are reentrant; a LoopbackListener is used by one thread.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace rollgate::e2e {

// A loopback TCP port that was free a moment ago (the kernel's choice); 0 when none could be had.
int FreePort();

// A loopback TCP socket owned by the test: closed (nothing listens on the port once it is
// released: connecting is refused) or listening without ever accepting (the kernel completes the
// handshake, then the server stays silent; as an API server it keeps every request hanging).
class LoopbackListener {
 public:
  enum class Mode { kClosed, kSilent };
  explicit LoopbackListener(Mode mode);
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  int port() const { return port_; }  // 0 when the socket could not be set up

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct HttpResponse {
  int status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  std::string error;
};

// GET http://127.0.0.1:<port><target> with HTTP/1.0 (no chunking, the server closes).
HttpResponse HttpGet(int port, const std::string& target,
                     std::chrono::seconds timeout = std::chrono::seconds(5));

// "200 <body...>" or "no answer (<error>)", for failure messages.
std::string Describe(const HttpResponse& r);

// Percent-encodes everything but unreserved characters (a query parameter's value).
std::string UrlEncode(const std::string& s);

// Samples of the metric family `name` in a Prometheus text exposition: labels ("{a="b"}", or ""
// for none) -> value.
std::map<std::string, double> MetricSamples(const std::string& text, const std::string& name);

}  // namespace rollgate::e2e
