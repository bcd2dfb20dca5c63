// Registry credentials from a kubernetes.io/dockerconfigjson Secret: the file its key
// `.dockerconfigjson` becomes when the Secret is mounted into the controller's pod
// (--registry-auth-file), in the format `kubectl create secret docker-registry` writes:
//
//   {"auths": {"registry.example.com": {"auth": "<base64 of user:password>"},
//              "https://index.docker.io/v1/": {"username": "u", "password": "p"}}}
//
// The legacy kubernetes.io/dockercfg shape, whose top level is that "auths" map itself, is read
// too. Other fields (email, credsStore, credHelpers, ...) are ignored.
//
// Keys are normalised to the form of ImageRef::registry ("host[:port]"): a scheme (https://,
// http://) and any path ("/v1/", "/v2/", "/team") are dropped, the rest is lowercased, and
// index.docker.io and registry-1.docker.io become docker.io. Lookups are exact on that form: no
// wildcard ("*.example.com") and no per-repository keys, unlike the kubelet's keyring. When two
// keys normalise to the same registry, the one already written in the normalised form wins, else
// the one that sorts first.
//
// Per entry, `auth` wins over `username`/`password` when both are present. Not supported, and
// skipped (that registry is spoken to anonymously): an entry with only `identitytoken` or
// `registrytoken` (OAuth tokens of `docker login` against some registries), and an empty entry
// (whose secret lives in a credential helper). Any other problem fails the whole file.
//
// Errors are kInvalidArgument and name the problem and the registry key; never a credential, a
// password, an `auth` value or any other part of the file's content but its keys.
// Thread-safety: ParseDockerConfigJson is a pure function; DockerConfigFile may be used from
// several threads at once.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "controller/common/clock.h"
#include "controller/common/file_read.h"
#include "controller/common/status.h"
#include "controller/rollout/registry_client.h"

namespace rollgate::rollout {

// A dockerconfigjson key ("https://index.docker.io/v1/", "Registry.io:5000/v2/") in the form of
// ImageRef::registry ("docker.io", "registry.io:5000"); "" when it names no host.
std::string NormaliseRegistryKey(std::string_view key);

// The credentials of a dockerconfigjson document (or a legacy dockercfg one), by normalised
// registry. An empty "auths" gives an empty map.
Result<std::map<std::string, RegistryCredential>> ParseDockerConfigJson(std::string_view text);

// The credentials of a dockerconfigjson file, re-read when it changes: the kubelet updates a
// mounted Secret by swapping a symlink, so the path is stat()ed (following links) and read again
// when its inode, size or modification time differ, at most once a second. A re-read that fails
// keeps the last good credentials and logs a warning (once per distinct failure; the path and the
// problem, never the content). Suitable as RegistryClientOptions::credentials:
//   [file](std::string_view r) { return file->For(r); }
class DockerConfigFile {
 public:
  explicit DockerConfigFile(std::string path);
  // `clock` paces the re-reads; it must outlive this object.
  DockerConfigFile(std::string path, const Clock& clock);
  DockerConfigFile(const DockerConfigFile&) = delete;
  DockerConfigFile& operator=(const DockerConfigFile&) = delete;
  ~DockerConfigFile() = default;

  // The first read, at startup: the file's error (unreadable, malformed; the message names the
  // path), for the controller to refuse to start with. On success the credentials are in use.
  Status Load();

  // The credential for `registry` (ImageRef::registry; normalised as a key is), or nullopt when
  // the file has none for it (anonymous access), or when no read has succeeded yet.
  std::optional<RegistryCredential> For(std::string_view registry);

  const std::string& path() const { return path_; }

 private:
  // Reads and parses the file; on success replaces the credentials. Callers hold mu_.
  Status ReadLocked();
  // Re-reads when the file changed and a second has passed since the last look. Callers hold
  // mu_.
  void RefreshLocked();

  const std::string path_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, RegistryCredential, std::less<>> creds_;
  std::optional<FileIdentity> seen_;  // of the content last read (parsed or rejected)
  std::optional<Clock::MonoTime> last_look_;
  std::string last_warning_;  // the failure last logged; "" after a success
};

}  // namespace rollgate::rollout
