// The TLS server context of the metrics endpoint (--metrics-secure): a certificate and key from
// --metrics-cert-dir (tls.crt, tls.key, as a kubernetes.io/tls Secret mounts them), or, without
// one, a self-signed ECDSA P-256 certificate made at startup (as controller-runtime does; scrapers
// then skip verification, the bearer token still decides access). TLS 1.2 or later.
// Thread-safety: plain functions; the returned context is shared read-only by the server.
#pragma once

#include <memory>
#include <string>

#include "controller/common/status.h"

using SSL_CTX = struct ssl_ctx_st;

namespace rollgate::metrics {

// InvalidArgument naming the file when the pair cannot be loaded or does not match.
Result<std::shared_ptr<SSL_CTX>> LoadServerTls(const std::string& cert_file,
                                               const std::string& key_file);

// A new key and a certificate for `common_name` (also its DNS name), valid for a year.
Result<std::shared_ptr<SSL_CTX>> SelfSignedServerTls(const std::string& common_name);

}  // namespace rollgate::metrics
