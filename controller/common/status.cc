#include "controller/common/status.h"

namespace rollgate {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kNotFound:
      return "NotFound";
    case StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case StatusCode::kConflict:
      return "Conflict";
    case StatusCode::kGone:
      return "Gone";
    case StatusCode::kInvalid:
      return "Invalid";
    case StatusCode::kBadRequest:
      return "BadRequest";
    case StatusCode::kUnauthorized:
      return "Unauthorized";
    case StatusCode::kForbidden:
      return "Forbidden";
    case StatusCode::kMethodNotAllowed:
      return "MethodNotAllowed";
    case StatusCode::kTooManyRequests:
      return "TooManyRequests";
    case StatusCode::kTimeout:
      return "Timeout";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kInternal:
      return "Internal";
    case StatusCode::kTransport:
      return "Transport";
    case StatusCode::kMalformed:
      return "Malformed";
    case StatusCode::kCancelled:
      return "Cancelled";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kUnknown:
      return "Unknown";
  }
  return "Unknown";
}

bool Status::IsRetryable() const {
  switch (code_) {
    case StatusCode::kConflict:
    case StatusCode::kTooManyRequests:
    case StatusCode::kTimeout:
    case StatusCode::kUnavailable:
    case StatusCode::kInternal:
    case StatusCode::kTransport:
    case StatusCode::kMalformed:
    case StatusCode::kGone:
      return true;
    default:
      return false;
  }
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = StatusCodeName(code_);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  for (const auto& c : causes_) {
    out += "; ";
    out += c.field.empty() ? std::string("(object)") : c.field;
    out += ": ";
    out += c.message.empty() ? c.reason : c.message;
  }
  return out;
}

}  // namespace rollgate
