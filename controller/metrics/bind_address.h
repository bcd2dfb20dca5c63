// Bind addresses of the metrics and health endpoints, as controller-runtime users write them
// (`:8080`, `127.0.0.1:8080`, `[::1]:8080`, `0` to disable), parsed into the listening address
// HttpServer takes (HttpServerOptions::listen). Pure functions.
// Thread-safety: stateless.
#pragma once

#include <optional>
#include <string>

#include "controller/common/status.h"

namespace rollgate::metrics {

// The HttpServer listening address for `bind`: ":8080" -> "8080" (every IPv4 interface),
// "127.0.0.1:8080" -> itself, "localhost:8080" -> "127.0.0.1:8080", "[::1]:8080" -> itself.
// Port 0 asks for an ephemeral port. "0" returns nullopt: the endpoint is disabled. Anything else
// (no port, a host name, a port above 65535) is an InvalidArgument error naming the value.
Result<std::optional<std::string>> ParseBindAddress(const std::string& bind);

}  // namespace rollgate::metrics
