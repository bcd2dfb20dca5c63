// JSON string literals without a JSON library: escaping (RFC 8259: `"` and `\` backslashed,
// \n \r \t by name, the other control characters as \u00XX, every other byte as it is) and UTF-8
// repair with a byte budget. Header-only and standard library only, so that both the controller's
// JSON log lines (common/log.cc) and rollgate-validate's verdict (validator/verdict.cc, which links
// nothing but libdl and threads) use it.
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rollgate::json {

// Appends `text` escaped for the inside of a JSON string literal. Bytes from 0x20 up (UTF-8
// included) are copied unchanged; invalid UTF-8 is not repaired here (SanitizeUtf8 does that).
inline void AppendEscaped(std::string& out, std::string_view text) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (byte) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out += kHex[byte >> 4U];
          out += kHex[byte & 0xFU];
        } else {
          out += c;
        }
    }
  }
}

// Appends `text` as a JSON string literal, quotes included.
inline void AppendQuoted(std::string& out, std::string_view text) {
  out += '"';
  AppendEscaped(out, text);
  out += '"';
}

// `text` as a JSON string literal, quotes included.
inline std::string Quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  AppendQuoted(out, text);
  return out;
}

// Length of the valid UTF-8 sequence starting at s[i] (i < s.size()), or 0 when the bytes there
// are not one: no overlong forms, no surrogates, nothing above U+10FFFF, no cut sequence.
inline std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  const unsigned b = byte(i);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned lo = b == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b == 0xED ? 0x9F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned lo = b == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b == 0xF4 ? 0x8F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

// `text` as valid UTF-8, every invalid byte replaced by U+FFFD, in at most `max_bytes` bytes: when
// longer, cut on a character boundary and ended with "..." (as much of it as fits), and `*cut` set.
inline std::string SanitizeUtf8(std::string_view text, std::size_t max_bytes = SIZE_MAX,
                                bool* cut = nullptr) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  static constexpr std::string_view kEllipsis = "...";
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  const std::size_t keep = max_bytes > kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
  std::size_t boundary = 0;  // the longest prefix of whole characters that fits in `keep`
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Utf8SequenceLength(text, i);
    const std::string_view piece = n == 0 ? kReplacement : text.substr(i, n);
    i += n == 0 ? 1 : n;
    if (out.size() + piece.size() > max_bytes) {
      out.resize(boundary);
      out += kEllipsis.substr(0, std::min(kEllipsis.size(), max_bytes - boundary));
      if (cut != nullptr) *cut = true;
      return out;
    }
    out += piece;
    if (out.size() <= keep) boundary = out.size();
  }
  return out;
}

}  // namespace rollgate::json
