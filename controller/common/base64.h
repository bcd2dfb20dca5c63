// Base64: the standard alphabet (RFC 4648 §4), as Go's base64.StdEncoding decodes it — the
// kubeconfig's *-data fields and a dockerconfigjson's "auth" values are written with it.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rollgate {

// Decodes standard base64 with mandatory padding ('=' only as the last one or two characters);
// ASCII whitespace (" \t\r\n\v\f", line breaks in hand-edited files) is ignored anywhere. nullopt
// for anything else: a character outside the alphabet, a length (without whitespace) that is not a
// multiple of 4. The empty input decodes to the empty string.
std::optional<std::string> DecodeBase64(std::string_view in);

// Encodes `in` as standard base64 with padding, on one line (what a Secret's `data` and a
// kubeconfig's *-data fields hold).
std::string EncodeBase64(std::string_view in);

}  // namespace rollgate
