// Container image references: parsing them the way the Docker/OCI distribution reference grammar
// does ([registry[:port]/]path[:tag][@digest]), and deciding whether an image comes from a registry
// that --allowed-registries permits. Pure functions over strings; no I/O.
// Thread-safety: stateless free functions and a value type; safe to call from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "controller/common/status.h"

namespace rollgate::rollout {

// A parsed, normalised image reference.
struct ImageRef {
  std::string registry;    // "registry.example.com:5000"; "docker.io" when the reference names none
  std::string repository;  // "app/backend" ("library/nginx" for a bare docker.io name)
  std::string tag;         // "" when absent
  std::string digest;      // "sha256:<64 hex>" or "" when absent

  // The reference in Docker's familiar (short) form: the registry is left out when it is
  // docker.io, and "library/" is left out of an official docker.io image; the tag and digest
  // follow as written ("nginx:1.25", "registry.io:5000/app/api@sha256:...").
  std::string Familiar() const;

  friend bool operator==(const ImageRef&, const ImageRef&) = default;
};

// Parses a container image reference: [registry[:port]/]path[:tag][@digest].
// - The first '/'-separated component is the registry when it contains '.' or ':' or is
//   "localhost" (or is a bracketed IPv6 address); otherwise the image is on docker.io.
//   The registry is lowercased (host names are case-insensitive), "index.docker.io" becomes
//   "docker.io", and a single-component docker.io repository gets the "library/" prefix. A registry
//   host may be a DNS name, an IPv4 address or
//   "[IPv6]", with an optional port (1-65535).
// - Path components are lowercase alphanumerics separated by '.', '_', '__' or one or more '-'.
// - A tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
// - A digest is sha256:<64>, sha384:<96> or sha512:<128> lowercase hex.
// - The name part (registry and path as written) is at most 255 characters.
// Errors are kInvalidArgument with a message naming the problem, e.g.
// `image "Registry.io/App:1": repository must be lowercase`. The reference is quoted in messages
// with control characters escaped and very long input shortened.
Result<ImageRef> ParseImageRef(std::string_view ref);

// Checks a parsed image against --allowed-registries. Entries are
//   "registry.example.com"        that registry, on the default port only
//   "registry.example.com:5000"   that registry on port 5000 only
//   "*.example.com"               any subdomain at any depth (not example.com itself); a port may
//                                 follow ("*.example.com:5000") with the same meaning as above
//   "registry.example.com/team"   that registry, repositories "team" and "team/..." only (whole
//                                 path components: "teamx/app" does not match)
// Hosts compare case-insensitively; "index.docker.io" means "docker.io". An empty list allows
// everything. Entries that ValidateAllowedRegistries would reject never match.
// `original` is the reference as the user wrote it, used in the message:
// `image "x/y:1" is from registry "docker.io", which is not in --allowed-registries (a.io, b.io)`.
Status CheckAllowedRegistry(const ImageRef& ref, const std::vector<std::string>& allowed,
                            std::string_view original);

// Validates the --allowed-registries entries themselves: no empty entries, no scheme, no tag or
// digest, each a valid host[:port][/path] or *.domain[:port][/path], where the host is one that
// ParseImageRef would take as a registry. kInvalidArgument naming the first bad entry.
Status ValidateAllowedRegistries(const std::vector<std::string>& allowed);

}  // namespace rollgate::rollout
