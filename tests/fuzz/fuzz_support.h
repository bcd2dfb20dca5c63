// Helpers shared by the fuzz targets (tests/fuzz/*_fuzzer.cc): invariant checks that abort with a
// message (a finding for libFuzzer, a failure for the corpus regression runner), a byte reader
// that splits one input into typed pieces, and a UTF-8 validator.
// Header-only, standard library only: the regression runner builds it with g++ and no clang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// Inputs above this are ignored by every target: the decoders bound what they read elsewhere
// (API responses, kubeconfig files), and big inputs only slow fuzzing down.
inline constexpr std::size_t kFuzzMaxInput = 64 * 1024;

// Aborts with the failed invariant and a detail (shortened) on stderr.
[[noreturn]] inline void FuzzFail(const char* file, int line, const char* cond,
                                  std::string_view detail) {
  constexpr std::size_t kMaxDetail = 2000;
  std::fprintf(stderr, "\n%s:%d: fuzz invariant failed: %s\n", file, line, cond);
  if (!detail.empty()) {
    const bool cut = detail.size() > kMaxDetail;
    std::fprintf(stderr, "  detail (%zu bytes): %.*s%s\n", detail.size(),
                 static_cast<int>(cut ? kMaxDetail : detail.size()), detail.data(),
                 cut ? "..." : "");
  }
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                \
  do {                                                          \
    if (!(cond)) FuzzFail(__FILE__, __LINE__, #cond, (detail)); \
  } while (false)

namespace rollgate::fuzz {

// Consumes an input front to back. Running out of bytes is not an error: every accessor then
// returns empty/zero values, so any input maps to some case.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size)
      : s_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return s_.empty(); }
  std::size_t size() const { return s_.size(); }

  std::uint8_t Byte() {
    if (s_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(s_.front());
    s_.remove_prefix(1);
    return b;
  }
  bool Bool() { return (Byte() & 1U) != 0; }
  // Little-endian; each call sequenced (the order of operands within one expression is not).
  std::uint16_t U16() {
    const unsigned lo = Byte();
    const unsigned hi = Byte();
    return static_cast<std::uint16_t>(lo | (hi << 8U));
  }
  std::uint32_t U32() {
    const std::uint32_t lo = U16();
    const std::uint32_t hi = U16();
    return lo | (hi << 16U);
  }
  std::uint64_t U64() {
    const std::uint64_t lo = U32();
    const std::uint64_t hi = U32();
    return lo | (hi << 32U);
  }
  // A value in [lo, hi] (hi - lo < 2^32).
  std::int64_t Range(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(U32() % span);
  }

  // The bytes up to the next `sep` (consumed, not returned), or all that is left.
  std::string_view Until(char sep) {
    const std::size_t pos = s_.find(sep);
    std::string_view out = s_.substr(0, pos);
    s_.remove_prefix(pos == std::string_view::npos ? s_.size() : pos + 1);
    return out;
  }
  std::string_view Rest() {
    std::string_view out = s_;
    s_ = {};
    return out;
  }

 private:
  std::string_view s_;
};

// Splits on `sep`; an empty input gives no parts.
inline std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  for (;;) {
    const std::size_t pos = s.find(sep);
    out.emplace_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
inline bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  const auto cont = [&](std::size_t k, unsigned lo, unsigned hi) {
    if (k >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[k]);
    return b >= lo && b <= hi;
  };
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      i += 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
      if (!cont(i + 1, 0x80, 0xBF)) return false;
      i += 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      const unsigned lo = b == 0xE0 ? 0xA0 : 0x80;
      const unsigned hi = b == 0xED ? 0x9F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2, 0x80, 0xBF)) return false;
      i += 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      const unsigned lo = b == 0xF0 ? 0x90 : 0x80;
      const unsigned hi = b == 0xF4 ? 0x8F : 0xBF;
      if (!cont(i + 1, lo, hi) || !cont(i + 2, 0x80, 0xBF) || !cont(i + 3, 0x80, 0xBF)) {
        return false;
      }
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace rollgate::fuzz
