// Status and Result<T>: errors as values at every boundary (API server, transport, files).
// Codes map the Kubernetes API's HTTP statuses; transport and malformed-response failures are
// distinct so that retry policy can tell them apart.
// Thread-safety: value types; a const instance may be read from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace rollgate {

enum class StatusCode {
  kOk,
  kNotFound,          // 404
  kAlreadyExists,     // 409 reason AlreadyExists
  kConflict,          // 409 (resource version conflict)
  kGone,              // 410 (resource version too old: re-list)
  kInvalid,           // 422 (with field causes)
  kBadRequest,        // 400
  kUnauthorized,      // 401
  kForbidden,         // 403
  kMethodNotAllowed,  // 405
  kTooManyRequests,   // 429 (honour retry_after)
  kTimeout,           // 504 or a server-side timeout
  kUnavailable,       // 503
  kInternal,          // 500 and other 5xx
  kTransport,         // connection refused/reset, TLS failure, client-side timeout
  kMalformed,         // a response that is not what the API promises (bad JSON, truncated)
  kCancelled,         // the caller cancelled
  kInvalidArgument,   // bad input from our own user (configuration, flags)
  kUnknown,
};

// The name used in logs and messages ("NotFound", "Conflict", ...).
const char* StatusCodeName(StatusCode code);

// One field-level cause of an Invalid (422) error, from the API server's Status details.
struct FieldCause {
  std::string field;
  std::string reason;
  std::string message;
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // HTTP status code the error came from; 0 when it did not come from an HTTP response.
  int http_status() const { return http_status_; }
  Status& set_http_status(int s) {
    http_status_ = s;
    return *this;
  }
  // The API server's machine-readable reason (metav1.StatusReason), e.g. "AlreadyExists".
  const std::string& reason() const { return reason_; }
  Status& set_reason(std::string r) {
    reason_ = std::move(r);
    return *this;
  }
  // Retry-After (seconds) for 429/503 responses.
  std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }
  Status& set_retry_after(std::chrono::seconds s) {
    retry_after_ = s;
    return *this;
  }
  const std::vector<FieldCause>& causes() const { return causes_; }
  Status& add_cause(FieldCause c) {
    causes_.push_back(std::move(c));
    return *this;
  }

  // Errors worth retrying with backoff (server overload, transport, timeouts, conflicts).
  bool IsRetryable() const;

  // "NotFound: deployments.apps \"api\" not found" (causes appended for Invalid).
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  int http_status_ = 0;
  std::string reason_;
  std::optional<std::chrono::seconds> retry_after_;
  std::vector<FieldCause> causes_;
};

// A value or the Status explaining why there is none. A Result never holds an OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) {
      v_ = Status(StatusCode::kUnknown, "Result constructed from an OK status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rollgate
