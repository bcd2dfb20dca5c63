#include "controller/rollout/image_ref.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rollgate::rollout {
namespace {

constexpr std::size_t kNameMax = 255;         // registry + path, as written
constexpr std::size_t kTagMax = 128;          // [\w][\w.-]{0,127}
constexpr std::size_t kHostLabelMax = 63;     // DNS label
constexpr std::size_t kQuotedInputMax = 200;  // longer input is shortened in messages
constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kDockerHubLegacy = "index.docker.io";
constexpr std::string_view kLibraryPrefix = "library/";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsLowerAlnum(char c) { return IsLower(c) || IsDigit(c); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || IsUpper(c); }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsLowerHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f'); }
bool IsSpaceOrControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

char ToLower(char c) { return IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ToLower(c);
  return out;
}

// Escapes anything but printable ASCII (and '"', '\\') so that input cannot forge log lines,
// and shortens very long input.
std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool shorten = s.size() > kQuotedInputMax;
  if (shorten) s = s.substr(0, kQuotedInputMax);
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (shorten) out += "...";
  return out;
}

std::string Quote(std::string_view s) { return "\"" + Escape(s) + "\""; }
std::string QuoteChar(char c) { return "'" + Escape(std::string_view(&c, 1)) + "'"; }

Status ImageError(std::string_view ref, std::string_view problem) {
  return Status(StatusCode::kInvalidArgument, "image " + Quote(ref) + ": " + std::string(problem));
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

// The docker rule: the first component names a registry when it contains '.' or ':' or is
// "localhost". A bracketed IPv6 address always contains ':'.
bool LooksLikeRegistry(std::string_view first) {
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost";
}

// A registry's host and port, split but not validated. The port excludes the ':'.
struct HostPort {
  std::string_view host;
  std::string_view port;
  bool has_port = false;
};

HostPort SplitHostPort(std::string_view domain) {
  HostPort hp;
  std::size_t colon = std::string_view::npos;
  if (!domain.empty() && domain.front() == '[') {
    const std::size_t close = domain.find(']');
    if (close != std::string_view::npos) colon = domain.find(':', close);
  } else {
    colon = domain.find(':');
  }
  hp.host = domain.substr(0, colon);
  if (colon != std::string_view::npos) {
    hp.port = domain.substr(colon + 1);
    hp.has_port = true;
  }
  return hp;
}

// Validates a DNS name or IPv4 address. Returns "" or the problem.
std::string CheckDnsName(std::string_view host, std::string_view what) {
  if (host.empty()) return std::string(what) + " has an empty host";
  for (std::string_view label : Split(host, '.')) {
    if (label.empty()) return std::string(what) + " has an empty host label";
    if (label.size() > kHostLabelMax) {
      return std::string(what) + " has a host label longer than 63 characters";
    }
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') {
        return std::string(what) + " contains invalid character " + QuoteChar(c);
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return std::string(what) + " has a host label that starts or ends with '-'";
    }
  }
  return "";
}

// Validates host[:port] where host is a DNS name, an IPv4 address or [IPv6].
std::string CheckDomain(std::string_view domain) {
  const std::string what = "registry " + Quote(domain);
  const HostPort hp = SplitHostPort(domain);
  if (!hp.host.empty() && hp.host.front() == '[') {
    if (hp.host.back() != ']') return what + " has an unterminated IPv6 address";
    const std::string_view addr = hp.host.substr(1, hp.host.size() - 2);
    if (addr.empty() || addr.find(':') == std::string_view::npos) {
      return what + " has an invalid IPv6 address";
    }
    for (char c : addr) {
      if (!IsHex(c) && c != ':') return what + " has an invalid IPv6 address";
    }
  } else if (std::string p = CheckDnsName(hp.host, what); !p.empty()) {
    return p;
  }
  if (hp.has_port) {
    if (hp.port.empty()) return what + " has an empty port";
    unsigned long value = 0;
    for (char c : hp.port) {
      if (!IsDigit(c)) return what + " has a port that is not a number";
      value = value * 10 + static_cast<unsigned long>(c - '0');
      if (value > 65535) break;
    }
    if (value == 0 || value > 65535) return what + " has a port outside 1-65535";
  }
  return "";
}

// Validates one path component: lowercase alphanumerics separated by '.', '_', '__' or '-'+.
std::string CheckPathComponent(std::string_view comp) {
  const std::string what = "path component " + Quote(comp);
  for (char c : comp) {
    if (IsUpper(c)) return "repository must be lowercase";
    if (!IsLowerAlnum(c) && c != '.' && c != '_' && c != '-') {
      return "repository contains invalid character " + QuoteChar(c);
    }
  }
  if (!IsLowerAlnum(comp.front()) || !IsLowerAlnum(comp.back())) {
    return what + " must start and end with a lowercase letter or digit";
  }
  std::size_t i = 0;
  while (i < comp.size()) {
    if (IsLowerAlnum(comp[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < comp.size() && !IsLowerAlnum(comp[j])) ++j;
    const std::string_view sep = comp.substr(i, j - i);
    const bool ok = sep == "." || sep == "_" || sep == "__" ||
                    sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) {
      return what + " has an invalid separator " + Quote(sep) +
             " (use '.', '_', '__' or dashes between letters and digits)";
    }
    i = j;
  }
  return "";
}

// Validates a '/'-separated repository path.
std::string CheckPath(std::string_view path) {
  if (path.empty()) return "repository is empty";
  for (std::string_view comp : Split(path, '/')) {
    if (comp.empty()) return "repository " + Quote(path) + " has an empty path component";
    if (std::string p = CheckPathComponent(comp); !p.empty()) return p;
  }
  return "";
}

std::string CheckTag(std::string_view tag) {
  if (tag.size() > kTagMax) {
    return "tag is " + std::to_string(tag.size()) + " characters long; the limit is 128";
  }
  if (!IsWord(tag.front())) return "tag must start with a letter, digit or '_'";
  for (char c : tag) {
    if (!IsWord(c) && c != '.' && c != '-') return "tag contains invalid character " + QuoteChar(c);
  }
  return "";
}

std::string CheckDigest(std::string_view digest) {
  const std::size_t colon = digest.find(':');
  if (colon == std::string_view::npos) {
    return "digest " + Quote(digest) + " must be <algorithm>:<hex>, e.g. sha256:<64 hex>";
  }
  const std::string_view algorithm = digest.substr(0, colon);
  const std::string_view hex = digest.substr(colon + 1);
  std::size_t want = 0;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha384") {
    want = 96;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return "digest algorithm " + Quote(algorithm) + " is not supported (sha256, sha384, sha512)";
  }
  for (char c : hex) {
    if (!IsHex(c)) return "digest contains invalid character " + QuoteChar(c);
    if (!IsLowerHex(c)) return "digest must be lowercase hex";
  }
  if (hex.size() != want) {
    return std::string(algorithm) + " digest must have " + std::to_string(want) +
           " hex characters, not " + std::to_string(hex.size());
  }
  return "";
}

bool IsImageId(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

// host[:port] lowercased, with the legacy Docker Hub name mapped to docker.io.
std::string NormaliseHost(std::string_view host) {
  std::string h = Lowercase(host);
  if (h == kDockerHubLegacy) h = std::string(kDockerHub);
  return h;
}

std::string_view StripLeadingZeros(std::string_view port) {
  while (port.size() > 1 && port.front() == '0') port.remove_prefix(1);
  return port;
}

// One parsed --allowed-registries entry.
struct AllowedEntry {
  bool wildcard = false;
  std::string host;  // lowercased; for a wildcard the domain after "*." with a leading '.'
  std::string port;  // leading zeros stripped; "" when none
  bool has_port = false;
  std::string path;  // repository prefix; "" when none
};

// Parses an entry; returns "" and fills *out, or the problem.
std::string ParseAllowedEntry(std::string_view entry, AllowedEntry* out) {
  if (entry.empty()) return "is empty";
  for (char c : entry) {
    if (IsSpaceOrControl(c)) return "must not contain whitespace or control characters";
  }
  if (entry.find("://") != std::string_view::npos) {
    return "must not include a scheme; write the registry host, e.g. \"registry.example.com\"";
  }
  if (entry.find('@') != std::string_view::npos) return "must not include a digest";
  const std::size_t slash = entry.find('/');
  std::string_view domain = entry.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view path = entry.substr(slash + 1);
    if (path.find(':') != std::string_view::npos) return "must not include a tag";
    if (std::string p = CheckPath(path); !p.empty()) return p;
    out->path = std::string(path);
  }
  if (domain.starts_with("*.")) {
    out->wildcard = true;
    domain.remove_prefix(2);
    if (domain.empty() || domain.front() == '[' || domain.front() == ':') {
      return R"(needs a domain name after "*.", e.g. "*.example.com")";
    }
  }
  if (domain.find('*') != std::string_view::npos) {
    return R"(may use '*' only as a leading "*.", e.g. "*.example.com")";
  }
  if (std::string p = CheckDomain(domain); !p.empty()) return p;
  if (!out->wildcard && !LooksLikeRegistry(domain)) {
    return Quote(domain) +
           " is not a registry host: a registry contains '.' or ':' or is \"localhost\" (for "
           "Docker Hub images write \"docker.io/library/nginx\" or \"docker.io/<org>\")";
  }
  const HostPort hp = SplitHostPort(domain);
  out->host = NormaliseHost(hp.host);
  if (out->wildcard) out->host.insert(0, ".");
  out->has_port = hp.has_port;
  out->port = std::string(StripLeadingZeros(hp.port));
  return "";
}

bool RegistryMatches(const AllowedEntry& e, const HostPort& ref_hp, const std::string& ref_host) {
  if (e.has_port != ref_hp.has_port) return false;
  if (e.has_port && e.port != StripLeadingZeros(ref_hp.port)) return false;
  if (e.wildcard) return ref_host.size() > e.host.size() && ref_host.ends_with(e.host);
  return ref_host == e.host;
}

bool PathMatches(const AllowedEntry& e, std::string_view repository) {
  if (e.path.empty()) return true;
  if (!repository.starts_with(e.path)) return false;
  return repository.size() == e.path.size() || repository[e.path.size()] == '/';
}

}  // namespace

std::string ImageRef::Familiar() const {
  std::string out;
  if (registry == kDockerHub) {
    std::string_view repo = repository;
    if (repo.starts_with(kLibraryPrefix) &&
        repo.find('/', kLibraryPrefix.size()) == std::string_view::npos) {
      repo.remove_prefix(kLibraryPrefix.size());
    }
    out = std::string(repo);
  } else {
    out = registry + "/" + repository;
  }
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

Result<ImageRef> ParseImageRef(std::string_view ref) {
  if (ref.empty()) return ImageError(ref, "reference is empty");
  for (char c : ref) {
    if (IsSpaceOrControl(c)) {
      return ImageError(ref, "reference must not contain whitespace or control characters");
    }
  }
  if (ref.find("://") != std::string_view::npos) {
    return ImageError(ref, "reference must not include a scheme such as \"https://\"");
  }
  if (IsImageId(ref)) {
    return ImageError(ref, "a 64-character hex string is an image ID, not a reference");
  }

  ImageRef out;
  // [name[:tag]]@digest: the digest is everything after the first '@'.
  std::string_view rest = ref;
  if (const std::size_t at = rest.find('@'); at != std::string_view::npos) {
    const std::string_view digest = rest.substr(at + 1);
    if (digest.empty()) return ImageError(ref, "digest is empty (trailing '@')");
    if (std::string p = CheckDigest(digest); !p.empty()) return ImageError(ref, p);
    out.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // name[:tag]: a ':' after the last '/' starts the tag; an earlier one belongs to a port.
  const std::size_t last_slash = rest.rfind('/');
  const std::size_t last_colon = rest.rfind(':');
  if (last_colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || last_colon > last_slash)) {
    const std::string_view tag = rest.substr(last_colon + 1);
    if (tag.empty()) return ImageError(ref, "tag is empty (trailing ':')");
    if (std::string p = CheckTag(tag); !p.empty()) return ImageError(ref, p);
    out.tag = std::string(tag);
    rest = rest.substr(0, last_colon);
  }
  const std::string_view name = rest;
  if (name.empty()) return ImageError(ref, "repository name is empty");
  if (name.size() > kNameMax) {
    return ImageError(
        ref, "name is " + std::to_string(name.size()) + " characters long; the limit is 255");
  }

  std::string_view path = name;
  std::string_view domain;
  if (const std::size_t slash = name.find('/'); slash != std::string_view::npos) {
    const std::string_view first = name.substr(0, slash);
    if (LooksLikeRegistry(first)) {
      if (std::string p = CheckDomain(first); !p.empty()) return ImageError(ref, p);
      domain = first;
      path = name.substr(slash + 1);
    }
  }
  if (std::string p = CheckPath(path); !p.empty()) return ImageError(ref, p);

  // Host names are case-insensitive: the registry is kept lowercase so that it compares simply.
  out.registry = domain.empty() ? std::string(kDockerHub) : NormaliseHost(domain);
  out.repository = std::string(path);
  if (out.registry == kDockerHub && path.find('/') == std::string_view::npos) {
    out.repository.insert(0, kLibraryPrefix);
  }
  return out;
}

Status CheckAllowedRegistry(const ImageRef& ref, const std::vector<std::string>& allowed,
                            std::string_view original) {
  if (allowed.empty()) return Status::Ok();
  const HostPort ref_hp = SplitHostPort(ref.registry);
  const std::string ref_host = NormaliseHost(ref_hp.host);
  bool registry_matched = false;
  for (const std::string& entry : allowed) {
    AllowedEntry e;
    if (!ParseAllowedEntry(entry, &e).empty()) continue;
    if (!RegistryMatches(e, ref_hp, ref_host)) continue;
    if (PathMatches(e, ref.repository)) return Status::Ok();
    registry_matched = true;
  }
  std::string list;
  for (const std::string& entry : allowed) {
    if (!list.empty()) list += ", ";
    list += Escape(entry);
  }
  std::string from = registry_matched ? "repository " + Quote(ref.registry + "/" + ref.repository)
                                      : "registry " + Quote(ref.registry);
  return Status(StatusCode::kInvalidArgument, "image " + Quote(original) + " is from " + from +
                                                  ", which is not in --allowed-registries (" +
                                                  list + ")");
}

Status ValidateAllowedRegistries(const std::vector<std::string>& allowed) {
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    AllowedEntry e;
    const std::string problem = ParseAllowedEntry(allowed[i], &e);
    if (problem.empty()) continue;
    if (allowed[i].empty()) {
      return Status(StatusCode::kInvalidArgument,
                    "--allowed-registries entry " + std::to_string(i + 1) + " is empty");
    }
    return Status(StatusCode::kInvalidArgument,
                  "--allowed-registries entry " + Quote(allowed[i]) + ": " + problem);
  }
  return Status::Ok();
}

}  // namespace rollgate::rollout
