// Digests: the lower-case hex SHA-256 of a byte string (spec hashes, hashed annotation values,
// cache keys that must not hold the secret they stand for).
// Thread-safety: a pure function.
#pragma once

#include <string>

namespace rollgate {

// 64 lower-case hex digits.
std::string Sha256Hex(const std::string& data);

}  // namespace rollgate
