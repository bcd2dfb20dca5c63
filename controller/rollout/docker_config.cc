#include "controller/rollout/docker_config.h"

#include <cpprest/json.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <exception>
#include <system_error>
#include <utility>

#include "controller/common/base64.h"
#include "controller/common/file_read.h"
#include "controller/common/json_escape.h"
#include "controller/common/log.h"

namespace rollgate::rollout {
namespace {

using Json = web::json::value;

constexpr std::string_view kComponent = "registry-auth";
constexpr std::string_view kDockerHub = "docker.io";
// A Secret holds at most 1 MiB; anything much larger is not one.
constexpr std::size_t kMaxFileBytes = std::size_t{4} << 20U;
constexpr std::chrono::seconds kMinRecheck{1};

Status Invalid(const std::string& what) {
  return {StatusCode::kInvalidArgument, "dockerconfigjson: " + what};
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// A key quoted for a message (keys name registries; they are not secret), at most ~100 bytes.
std::string QuotedKey(std::string_view key) { return json::Quoted(json::SanitizeUtf8(key, 100)); }

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), s.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

// cpprest's parse errors read "* Line L, Column C Syntax error: <fixed text>"; only the two
// numbers are kept, so that nothing of the document can reach the message.
std::string ParseErrorPlace(std::string_view what) {
  const auto number_after = [what](std::string_view label) -> std::string {
    const auto at = what.find(label);
    if (at == std::string_view::npos) return {};
    std::string digits;
    for (std::size_t i = at + label.size(); i < what.size() && digits.size() < 9; ++i) {
      if (what[i] < '0' || what[i] > '9') break;
      digits.push_back(what[i]);
    }
    return digits;
  };
  const std::string line = number_after("Line ");
  const std::string column = number_after("Column ");
  if (line.empty() || column.empty()) return {};
  return " at line " + line + ", column " + column;
}

// The string field `name` of `entry`: nullopt when absent or null, an error when not a string.
Result<std::optional<std::string>> StringOf(const Json& entry, const char* name,
                                            const std::string& where) {
  if (!entry.has_field(name)) return std::optional<std::string>();
  const Json& v = entry.at(name);
  if (v.is_null()) return std::optional<std::string>();
  if (!v.is_string()) return Invalid(where + ": \"" + name + "\" is not a string");
  return std::optional<std::string>(v.as_string());
}

// One entry of "auths": a credential, nullopt for an entry that is skipped, or an error.
Result<std::optional<RegistryCredential>> DecodeEntry(const Json& entry, const std::string& where) {
  if (!entry.is_object()) return Invalid(where + ": the entry is not an object");
  auto auth = StringOf(entry, "auth", where);
  if (!auth.ok()) return auth.status();
  auto username = StringOf(entry, "username", where);
  if (!username.ok()) return username.status();
  auto password = StringOf(entry, "password", where);
  if (!password.ok()) return password.status();

  if (auth->has_value() && !(*auth)->empty()) {
    // As docker's config loader: base64 of "user:password", split at the first ':'.
    std::optional<std::string> decoded = DecodeBase64(**auth);
    if (!decoded) return Invalid(where + ": \"auth\" is not valid base64");
    const std::size_t colon = decoded->find(':');
    if (colon == std::string::npos) {
      return Invalid(where + ": \"auth\" does not decode to user:password (no ':')");
    }
    if (colon == 0) return Invalid(where + ": \"auth\" has an empty user name");
    RegistryCredential cred;
    cred.username = decoded->substr(0, colon);
    cred.password = decoded->substr(colon + 1);
    while (!cred.password.empty() && cred.password.back() == '\0') cred.password.pop_back();
    return std::optional<RegistryCredential>(std::move(cred));
  }
  const bool has_user = username->has_value() && !(*username)->empty();
  const bool has_password = password->has_value() && !(*password)->empty();
  if (has_user) {
    RegistryCredential cred;
    cred.username = std::move(**username);
    if (has_password) cred.password = std::move(**password);
    return std::optional<RegistryCredential>(std::move(cred));
  }
  if (has_password) return Invalid(where + R"(: "password" without "username")");
  // identitytoken/registrytoken only (unsupported), or nothing at all: anonymous.
  return std::optional<RegistryCredential>();
}

// The legacy .dockercfg shape: the top level is the auths map, each value an object, and at least
// one of them has an "auth" (which every entry of that format had).
bool LooksLikeDockercfg(const Json& doc) {
  const auto& obj = doc.as_object();
  if (obj.empty()) return false;
  bool any_auth = false;
  for (const auto& [key, value] : obj) {
    if (!value.is_object()) return false;
    any_auth = any_auth || value.has_field("auth");
  }
  return any_auth;
}

Result<std::map<std::string, RegistryCredential>> DecodeAuths(const Json& auths) {
  // registry -> (the key it came from, its credential)
  std::map<std::string, std::pair<std::string, RegistryCredential>> chosen;
  for (const auto& [key, entry] : auths.as_object()) {
    const std::string where = "registry " + QuotedKey(key);
    const std::string registry = NormaliseRegistryKey(key);
    if (registry.empty()) return Invalid(where + ": the key names no registry host");
    auto cred = DecodeEntry(entry, where);
    if (!cred.ok()) return cred.status();
    if (!cred->has_value()) continue;
    auto it = chosen.find(registry);
    if (it == chosen.end()) {
      chosen.emplace(registry, std::make_pair(key, std::move(**cred)));
      continue;
    }
    // Two keys for one registry: the one written in the normalised form, else the smaller key.
    const std::string& other = it->second.first;
    const bool better = key == registry || (other != registry && key < other);
    if (better) it->second = std::make_pair(key, std::move(**cred));
  }
  std::map<std::string, RegistryCredential> out;
  for (auto& [registry, from] : chosen) out.emplace(registry, std::move(from.second));
  return out;
}

}  // namespace

std::string NormaliseRegistryKey(std::string_view key) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto first = key.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  key = key.substr(first, key.find_last_not_of(kSpace) - first + 1);
  for (const std::string_view scheme :
       {std::string_view("https://"), std::string_view("http://")}) {
    if (StartsWithNoCase(key, scheme)) {
      key.remove_prefix(scheme.size());
      break;
    }
  }
  key = key.substr(0, key.find('/'));
  std::string out(key);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (out == "index.docker.io" || out == "registry-1.docker.io") return std::string(kDockerHub);
  return out;
}

Result<std::map<std::string, RegistryCredential>> ParseDockerConfigJson(std::string_view text) {
  try {
    Json doc;
    try {
      doc = Json::parse(std::string(text));
    } catch (const web::json::json_exception& e) {
      return Invalid("not valid JSON" + ParseErrorPlace(e.what()));
    }
    if (!doc.is_object()) return Invalid("the top level is not a JSON object");
    if (doc.has_field("auths")) {
      const Json& auths = doc.at("auths");
      if (!auths.is_object()) return Invalid("\"auths\" is not an object");
      return DecodeAuths(auths);
    }
    if (LooksLikeDockercfg(doc)) return DecodeAuths(doc);
    return Invalid("no \"auths\" object: not a .dockerconfigjson (nor a legacy .dockercfg)");
  } catch (const std::exception&) {
    // Not expected (every field's type is checked before use); its text is not passed on, since
    // cpprest's messages are not promised to leave values out.
    return Invalid("unexpected structure");
  }
}

DockerConfigFile::DockerConfigFile(std::string path)
    : DockerConfigFile(std::move(path), []() -> const Clock& {
        static const RealClock kClock;
        return kClock;
      }()) {}

DockerConfigFile::DockerConfigFile(std::string path, const Clock& clock)
    : path_(std::move(path)), clock_(clock) {}

Status DockerConfigFile::ReadLocked() {
  const auto cannot = [this](const std::string& why) {
    return Status(StatusCode::kInvalidArgument,
                  "cannot read registry auth file " + path_ + ": " + why);
  };
  // The identity comes from the descriptor read, so that it describes this content even when
  // the path is swapped meanwhile.
  FileRead f = ReadWholeFile(path_, kMaxFileBytes);
  if (f.err == EFBIG) {
    return cannot("larger than " + std::to_string(kMaxFileBytes >> 20U) + " MiB");
  }
  if (f.err != 0) return cannot(ErrnoText(f.err));
  const std::string& data = f.data;
  const FileIdentity identity = f.identity;
  auto parsed = ParseDockerConfigJson(data);
  seen_ = identity;  // parsed or rejected: this content is not read again
  if (!parsed.ok()) {
    return {StatusCode::kInvalidArgument,
            "registry auth file " + path_ + ": " + parsed.status().message()};
  }
  creds_.clear();
  for (auto& [registry, cred] : *parsed) creds_.emplace(registry, std::move(cred));
  return Status::Ok();
}

Status DockerConfigFile::Load() {
  const std::lock_guard<std::mutex> lock(mu_);
  last_look_ = clock_.Now();
  Status st = ReadLocked();
  last_warning_ = st.ok() ? std::string() : st.message();
  return st;
}

void DockerConfigFile::RefreshLocked() {
  const Clock::MonoTime now = clock_.Now();
  if (last_look_ && now - *last_look_ < kMinRecheck) return;
  last_look_ = now;
  int err = 0;
  const std::optional<FileIdentity> identity = StatIdentity(path_, &err);
  Status st;
  if (!identity) {
    st = Status(StatusCode::kInvalidArgument,
                "cannot read registry auth file " + path_ + ": " + ErrnoText(err));
  } else if (seen_ && *seen_ == *identity) {
    return;
  } else {
    st = ReadLocked();
  }
  if (st.ok()) {
    log::Info(kComponent, "registry auth file read",
              {{"path", path_}, {"registries", std::to_string(creds_.size())}});
    last_warning_.clear();
    return;
  }
  if (st.message() == last_warning_) return;
  last_warning_ = st.message();
  log::Warn(kComponent, "registry auth file unusable; the credentials last read stay in use",
            {{"path", path_}, {"error", st.message()}});
}

std::optional<RegistryCredential> DockerConfigFile::For(std::string_view registry) {
  const std::string key = NormaliseRegistryKey(registry);
  const std::lock_guard<std::mutex> lock(mu_);
  RefreshLocked();
  const auto it = creds_.find(key);
  if (it == creds_.end()) return std::nullopt;
  return it->second;
}

}  // namespace rollgate::rollout
