#include "controller/metrics/bind_address.h"

#include <arpa/inet.h>

#include <cstddef>

namespace rollgate::metrics {
namespace {

Status Invalid(const std::string& bind, const std::string& why) {
  return {StatusCode::kInvalidArgument, "invalid bind address \"" + bind + "\": " + why +
                                            " (want :PORT, IP:PORT, [IPv6]:PORT, or 0 to disable)"};
}

bool ValidPort(const std::string& port) {
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoi(port) <= 65535;
}

}  // namespace

Result<std::optional<std::string>> ParseBindAddress(const std::string& bind) {
  if (bind == "0") return std::optional<std::string>();
  if (bind.empty()) return Invalid(bind, "empty");
  std::string host;
  std::string port;
  if (bind.front() == '[') {
    const std::size_t close = bind.find(']');
    if (close == std::string::npos || close + 1 >= bind.size() || bind[close + 1] != ':') {
      return Invalid(bind, "an IPv6 address needs the form [ADDR]:PORT");
    }
    host = bind.substr(1, close - 1);
    port = bind.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.c_str(), &a6) != 1) return Invalid(bind, "bad IPv6 address");
    if (!ValidPort(port)) return Invalid(bind, "bad port");
    return std::optional<std::string>(bind);
  }
  const std::size_t colon = bind.rfind(':');
  if (colon == std::string::npos) return Invalid(bind, "missing port");
  host = bind.substr(0, colon);
  port = bind.substr(colon + 1);
  if (!ValidPort(port)) return Invalid(bind, "bad port");
  if (host.empty()) return std::optional<std::string>(std::to_string(std::stoi(port)));
  if (host == "localhost") host = "127.0.0.1";
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) != 1) {
    return Invalid(bind, "the host must be an IPv4 address, [IPv6 address] or localhost");
  }
  return std::optional<std::string>(host + ":" + std::to_string(std::stoi(port)));
}

}  // namespace rollgate::metrics
