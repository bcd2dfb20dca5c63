// URLs of servers the controller talks to on a user's behalf (Prometheus endpoints, registry
// token realms), parsed strictly: what is compared (an allow-list) is exactly what is requested.
// Thread-safety: pure functions and values.
#pragma once

#include <string>
#include <string_view>

#include "controller/common/status.h"

namespace rollgate::rollout {

// A URL split for comparison: lower-case scheme and host, explicit port, and the path as
// "/a/b" (no empty, "." or ".." segments; "" for the root).
struct Url {
  std::string scheme;
  std::string host;  // as written, lower-cased; IPv6 literals keep their brackets
  int port = 0;
  std::string path;

  std::string Origin() const { return scheme + "://" + host + ":" + std::to_string(port); }
};

// Parses http(s)://host[:port][/path]. No user info, query, fragment, percent-encoding,
// backslashes, whitespace or control characters. kInvalidArgument naming the problem, with the
// address redacted (RedactedAddress).
Result<Url> ParseUrl(std::string_view raw);

}  // namespace rollgate::rollout
