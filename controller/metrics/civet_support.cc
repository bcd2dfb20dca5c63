#include "controller/metrics/civet_support.h"

#include <CivetServer.h>

#include "controller/common/log.h"

namespace rollgate::metrics::internal {
namespace {

thread_local std::string* capture = nullptr;

int LogMessage(const mg_connection* /*conn*/, const char* message) {
  if (message == nullptr) return 1;
  std::string m = message;
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.pop_back();
  if (capture != nullptr) {
    if (!capture->empty()) *capture += "; ";
    *capture += m;
  } else {
    log::Debug("http", "civetweb", {{"message", m}});
  }
  return 1;  // handled: civetweb prints nothing itself
}

int LogAccess(const mg_connection* /*conn*/, const char* /*message*/) { return 1; }

}  // namespace

std::vector<std::string> CivetOptions(const std::string& listening_ports) {
  return {"listening_ports", listening_ports, "num_threads", "2", "request_timeout_ms", "10000"};
}

const CivetCallbacks* LogCallbacks() {
  static const CivetCallbacks* callbacks = [] {
    auto* cb = new CivetCallbacks();  // NOLINT(cppcoreguidelines-owning-memory): lives forever
    cb->log_message = &LogMessage;
    cb->log_access = &LogAccess;
    return cb;
  }();
  return callbacks;
}

std::string StartFailure(const std::string& server, const std::string& bind,
                         const std::string& messages, const char* exception_text) {
  if (!messages.empty()) return server + ": " + messages.substr(0, messages.find("; "));
  return server + ": cannot listen on " + bind + ": " + exception_text;
}

CivetMessageCapture::CivetMessageCapture() { capture = &messages_; }

CivetMessageCapture::~CivetMessageCapture() { capture = nullptr; }

}  // namespace rollgate::metrics::internal
