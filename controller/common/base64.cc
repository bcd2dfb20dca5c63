#include "controller/common/base64.h"

#include <cstddef>
#include <cstdint>

namespace rollgate {
namespace {

constexpr std::string_view kWhitespace = " \t\r\n\v\f";

int ValueOf(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::optional<std::string> DecodeBase64(std::string_view in) {
  std::string s;
  s.reserve(in.size());
  for (const char c : in) {
    if (kWhitespace.find(c) == std::string_view::npos) s.push_back(c);
  }
  if (s.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  if (!s.empty() && s.back() == '=') pad = (s[s.size() - 2] == '=') ? 2 : 1;
  std::string out;
  out.reserve(s.size() / 4 * 3);
  for (std::size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    std::uint32_t v = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = s[i + j];
      int d = 0;
      if (c == '=') {
        // '=' only as the final one or two characters of the input.
        if (!last || j < 4 - pad) return std::nullopt;
      } else {
        d = ValueOf(c);
        if (d < 0) return std::nullopt;
      }
      v = (v << 6U) | static_cast<std::uint32_t>(d);
    }
    out.push_back(static_cast<char>((v >> 16U) & 0xFFU));
    if (!last || pad < 2) out.push_back(static_cast<char>((v >> 8U) & 0xFFU));
    if (!last || pad < 1) out.push_back(static_cast<char>(v & 0xFFU));
  }
  return out;
}

std::string EncodeBase64(std::string_view in) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const std::size_t n = in.size() - i < 3 ? in.size() - i : 3;
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << 16U;
    if (n > 1) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8U;
    if (n > 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out.push_back(kAlphabet[(v >> 18U) & 0x3FU]);
    out.push_back(kAlphabet[(v >> 12U) & 0x3FU]);
    out.push_back(n > 1 ? kAlphabet[(v >> 6U) & 0x3FU] : '=');
    out.push_back(n > 2 ? kAlphabet[v & 0x3FU] : '=');
  }
  return out;
}

}  // namespace rollgate
