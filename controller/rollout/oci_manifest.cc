#include "controller/rollout/oci_manifest.h"

#include <cpprest/json.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <limits>

#include "controller/common/digest.h"
#include "controller/common/json_escape.h"
#include "controller/kube/json_fields.h"

namespace rollgate::rollout {
namespace {

using kube::Field;
using kube::StringField;
using Json = web::json::value;
using json::Quoted;

constexpr std::size_t kMaxEntries = 1024;

Status Malformed(const std::string& what) {
  return Status(StatusCode::kMalformed, "manifest: " + what);
}

// A field quoted for a message, at most 80 bytes of it.
std::string Short(std::string_view s) {
  constexpr std::size_t kMax = 80;
  if (s.size() <= kMax) return Quoted(s);
  return Quoted(s.substr(0, kMax)) + "...";
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "sha256:<64 hex>", "sha512:<128 hex>" (the algorithms the OCI image spec registers).
bool ValidDigest(std::string_view d) {
  if (d.starts_with("sha256:")) return d.size() == 7 + 64 && IsHex(d.substr(7));
  if (d.starts_with("sha512:")) return d.size() == 7 + 128 && IsHex(d.substr(7));
  return false;
}

std::string MediaTypeOf(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsIndexType(std::string_view t) { return t == kOciIndexType || t == kDockerListType; }
bool IsImageType(std::string_view t) { return t == kOciManifestType || t == kDockerManifestType; }

Result<Descriptor> DecodeDescriptor(const Json& j, const std::string& where) {
  if (!j.is_object()) return Malformed(where + " is not an object");
  Descriptor d;
  d.media_type = StringField(j, "mediaType");
  d.digest = StringField(j, "digest");
  if (!ValidDigest(d.digest)) return Malformed(where + " has no valid digest: " + Short(d.digest));
  const Json* size = Field(j, "size");
  if (size == nullptr || !size->is_number() || !size->is_integer() ||
      size->as_number().to_int64() < 0) {
    return Malformed(where + " has no valid size");
  }
  d.size = size->as_number().to_int64();
  if (const Json* p = Field(j, "platform"); p != nullptr && p->is_object()) {
    d.platform = Platform{StringField(*p, "os"), StringField(*p, "architecture"),
                          StringField(*p, "variant")};
  }
  return d;
}

Result<std::vector<Descriptor>> DecodeList(const Json& doc, const char* name) {
  std::vector<Descriptor> out;
  const Json* list = Field(doc, name);
  if (list == nullptr) return out;
  if (!list->is_array()) return Malformed(std::string(name) + " is not a list");
  if (list->size() > kMaxEntries) {
    return Malformed(std::string(name) + " has more than " + std::to_string(kMaxEntries) +
                     " entries");
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto d = DecodeDescriptor(list->at(i), std::string(name) + "[" + std::to_string(i) + "]");
    if (!d.ok()) return d.status();
    out.push_back(std::move(d).value());
  }
  return out;
}

}  // namespace

std::string ManifestAccept() {
  return std::string(kOciIndexType) + ", " + kDockerListType + ", " + kOciManifestType + ", " +
         kDockerManifestType;
}

std::string Platform::ToString() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

Result<Platform> ParsePlatform(std::string_view text) {
  Platform p;
  std::array<std::string*, 3> parts = {&p.os, &p.architecture, &p.variant};
  std::size_t n = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = text.find('/', start);
    const std::string_view part = text.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    const bool ok =
        !part.empty() && n < parts.size() && std::all_of(part.begin(), part.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                 c == '.';
        });
    if (!ok) {
      return Status(StatusCode::kInvalidArgument,
                    "platform " + Short(text) + ": want os/architecture[/variant] (linux/amd64)");
    }
    *parts[n++] = std::string(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (n < 2) {
    return Status(StatusCode::kInvalidArgument,
                  "platform " + Short(text) + ": want os/architecture[/variant] (linux/amd64)");
  }
  return p;
}

std::int64_t Manifest::LayersSize() const {
  std::int64_t total = 0;
  for (const auto& l : layers) {
    if (l.size > std::numeric_limits<std::int64_t>::max() - total) {
      return std::numeric_limits<std::int64_t>::max();
    }
    total += l.size;
  }
  return total;
}

std::vector<Platform> Manifest::Platforms() const {
  std::vector<Platform> out;
  for (const auto& m : manifests) {
    if (!m.platform || m.platform->os == "unknown" || m.platform->architecture == "unknown") {
      continue;
    }
    if (std::find(out.begin(), out.end(), *m.platform) == out.end()) out.push_back(*m.platform);
  }
  return out;
}

Result<Manifest> DecodeManifest(std::string_view body, std::string_view content_type) {
  Json doc;
  try {
    doc = Json::parse(std::string(body));
  } catch (const std::exception&) {
    return Malformed("not JSON (" + std::to_string(body.size()) + " bytes)");
  }
  if (!doc.is_object()) return Malformed("not a JSON object");
  const std::string header_type = MediaTypeOf(content_type);
  const std::string body_type = StringField(doc, "mediaType");
  Manifest m;
  m.media_type = body_type.empty() ? header_type : body_type;
  if (!body_type.empty() && !header_type.empty() && header_type != "application/json" &&
      header_type != body_type) {
    return Malformed("served as " + Short(header_type) + " but its mediaType is " +
                     Short(body_type));
  }
  if (m.media_type.empty() || m.media_type == "application/json") {
    m.media_type = Field(doc, "manifests") != nullptr ? kOciIndexType : kOciManifestType;
  }
  if (const Json* v = Field(doc, "schemaVersion");
      v == nullptr || !v->is_integer() || v->as_integer() != 2) {
    return Malformed("schemaVersion is not 2 (a schema 1 manifest is not supported)");
  }
  if (IsIndexType(m.media_type)) {
    m.kind = Manifest::Kind::kIndex;
    auto list = DecodeList(doc, "manifests");
    if (!list.ok()) return list.status();
    m.manifests = std::move(list).value();
    if (m.manifests.empty()) return Malformed("an index without manifests");
    return m;
  }
  if (!IsImageType(m.media_type)) {
    return Malformed("unsupported media type " + Short(m.media_type));
  }
  m.kind = Manifest::Kind::kImage;
  const Json* config = Field(doc, "config");
  if (config == nullptr) return Malformed("an image manifest without config");
  auto c = DecodeDescriptor(*config, "config");
  if (!c.ok()) return c.status();
  m.config = std::move(c).value();
  auto layers = DecodeList(doc, "layers");
  if (!layers.ok()) return layers.status();
  m.layers = std::move(layers).value();
  if (m.layers.empty()) return Malformed("an image manifest without layers");
  return m;
}

const Descriptor* SelectPlatform(const Manifest& index, const Platform& want) {
  for (const auto& m : index.manifests) {
    if (!m.platform) continue;
    const Platform& p = *m.platform;
    if (p.os != want.os || p.architecture != want.architecture) continue;
    if (want.variant.empty() || p.variant == want.variant ||
        (p.variant.empty() && want.architecture == "arm64" && want.variant == "v8")) {
      return &m;
    }
  }
  return nullptr;
}

bool DigestMatches(std::string_view body, std::string_view digest) {
  if (!digest.starts_with("sha256:")) return false;
  return digest.substr(7) == Sha256Hex(std::string(body));
}

Result<AuthChallenge> ParseAuthChallenge(std::string_view header) {
  auto bad = [&](const std::string& why) {
    return Status(StatusCode::kMalformed, "WWW-Authenticate " + Short(header) + ": " + why);
  };
  AuthChallenge c;
  std::size_t i = 0;
  while (i < header.size() && header[i] == ' ') ++i;
  while (i < header.size() && header[i] != ' ') {
    c.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(header[i])));
    ++i;
  }
  if (c.scheme.empty()) return bad("no scheme");
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    if (i >= header.size()) break;
    std::string name;
    while (i < header.size() && header[i] != '=' && header[i] != ' ' && header[i] != ',') {
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(header[i])));
      ++i;
    }
    if (i >= header.size() || header[i] != '=') return bad("parameter without a value");
    ++i;
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      bool closed = false;
      while (i < header.size()) {
        char ch = header[i++];
        if (ch == '\\' && i < header.size()) {
          value += header[i++];
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value += ch;
        }
      }
      if (!closed) return bad("unterminated quoted value");
    } else {
      while (i < header.size() && header[i] != ',' && header[i] != ' ') value += header[i++];
    }
    if (name.empty()) return bad("empty parameter name");
    c.params[name] = value;
  }
  return c;
}

Result<std::string> DecodeTokenResponse(std::string_view body) {
  Json doc;
  try {
    doc = Json::parse(std::string(body));
  } catch (const std::exception&) {
    return Status(StatusCode::kMalformed, "token response: not JSON");
  }
  for (const char* name : {"token", "access_token"}) {
    std::string t = StringField(doc, name);
    if (!t.empty()) return t;
  }
  return Status(StatusCode::kMalformed, "token response: no token");
}

Result<std::int64_t> ParseByteQuantity(std::string_view text) {
  auto bad = [&] {
    return Status(StatusCode::kInvalidArgument,
                  "size " + Short(text) + ": want an integer with an optional Ki/Mi/Gi/Ti or " +
                      "k/M/G/T suffix (900Mi)");
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 19) return bad();
  std::int64_t value = 0;
  for (std::size_t k = 0; k < digits; ++k) {
    const int d = text[k] - '0';
    if (value > (std::numeric_limits<std::int64_t>::max() - d) / 10) return bad();
    value = value * 10 + d;
  }
  const std::string_view suffix = text.substr(digits);
  static constexpr std::array<std::pair<std::string_view, std::int64_t>, 9> kUnits = {{
      {"", 1},
      {"Ki", 1LL << 10},
      {"Mi", 1LL << 20},
      {"Gi", 1LL << 30},
      {"Ti", 1LL << 40},
      {"k", 1'000},
      {"M", 1'000'000},
      {"G", 1'000'000'000},
      {"T", 1'000'000'000'000},
  }};
  for (const auto& [unit, factor] : kUnits) {
    if (suffix != unit) continue;
    if (value > std::numeric_limits<std::int64_t>::max() / factor) return bad();
    return value * factor;
  }
  return bad();
}

std::string HumanBytes(std::int64_t bytes) {
  static constexpr std::array<const char*, 5> kUnits = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes) / 1024;
  std::size_t u = 0;
  while (v >= 1024 && u + 1 < kUnits.size()) {
    v /= 1024;
    ++u;
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f %s", v, kUnits[u]);
  return buf.data();
}

}  // namespace rollgate::rollout
