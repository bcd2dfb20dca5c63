#include "controller/rollout/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "controller/rollout/analysis.h"

namespace rollgate::rollout {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool HostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
}

}  // namespace

Result<Url> ParseUrl(std::string_view raw) {
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::kInvalidArgument,
                  "\"" + RedactedAddress(raw) + "\" is not a usable URL: " + why);
  };
  for (char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return bad("it contains a space or a non-ASCII character");
    if (c == '?' || c == '#') return bad("a query or fragment is not allowed");
    if (c == '@') return bad("user info is not allowed");
    if (c == '%' || c == '\\') return bad("percent-encoding and backslashes are not allowed");
  }
  Url u;
  const size_t sep = raw.find("://");
  if (sep == std::string_view::npos) return bad("it must start with http:// or https://");
  u.scheme = Lower(raw.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https")
    return bad("it must start with http:// or https://");
  std::string_view rest = raw.substr(sep + 3);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    u.host = Lower(authority.substr(0, close + 1));
    for (char c : u.host.substr(1, u.host.size() - 2)) {
      if (std::isxdigit(static_cast<unsigned char>(c)) == 0 && c != ':' && c != '.') {
        return bad("invalid IPv6 literal");
      }
    }
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("invalid authority");
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    u.host = Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
    if (!std::all_of(u.host.begin(), u.host.end(), HostChar)) return bad("invalid host");
  }
  if (u.host.empty() || u.host == "[]") return bad("no host");
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
      return bad("invalid port");
    }
    u.port = p;
  } else if (authority.size() > u.host.size()) {
    return bad("empty port");
  }
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    if (seg == "." || seg == "..") return bad(R"("." and ".." path segments are not allowed)");
    if (!seg.empty()) {
      u.path += "/";
      u.path += seg;
    }
    i = j + 1;
  }
  return u;
}

}  // namespace rollgate::rollout
