// What the civetweb-based servers (MetricsServer, HealthServer) share: the server options for a
// parsed bind address, and civetweb's log messages: captured while a server starts on this thread
// (so that a failed start is reported as a Status with civetweb's own words: "cannot bind to
// 127.0.0.1:8080: 98 (Address already in use)"), otherwise logged at debug level, never printed.
// Thread-safety: safe from any thread; a capture covers the thread that created it (civetweb
// binds its listeners on the thread that starts the server).
#pragma once

#include <string>
#include <vector>

struct CivetCallbacks;

namespace rollgate::metrics::internal {

// listening_ports plus a small fixed thread pool and a request timeout.
std::vector<std::string> CivetOptions(const std::string& listening_ports);

// Callbacks that route civetweb's messages as described above; lives forever.
const CivetCallbacks* LogCallbacks();

// The Status message for a server that failed to start: civetweb's first message when it logged
// one ("cannot bind to 127.0.0.1:8080: 98 (Address already in use)"), else the exception's text.
std::string StartFailure(const std::string& server, const std::string& bind,
                         const std::string& messages, const char* exception_text);

// While alive, civetweb messages logged on this thread are collected. Not nestable.
class CivetMessageCapture {
 public:
  CivetMessageCapture();
  ~CivetMessageCapture();
  CivetMessageCapture(const CivetMessageCapture&) = delete;
  CivetMessageCapture& operator=(const CivetMessageCapture&) = delete;

  // The messages so far, joined by "; " ("" if none).
  const std::string& messages() const { return messages_; }

 private:
  std::string messages_;
};

}  // namespace rollgate::metrics::internal
