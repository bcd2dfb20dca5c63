// Base64Encode: standard base64 (RFC 4648, with padding) through OpenSSL, for tests that write
// kubeconfigs, dockerconfigjson documents and decoder vectors. The product only decodes
// (controller/common/base64.h); an independent encoder keeps its tests honest.
// Thread-safety: a pure function.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace rollgate::testing {

inline std::string Base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace rollgate::testing
