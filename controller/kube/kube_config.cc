#include "controller/kube/kube_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "controller/common/base64.h"
#include "controller/common/file_read.h"

namespace rollgate::kube {
namespace {

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// Nothing Rollgate reads here (kubeconfig, PEM bundles, tokens) comes close to this.
constexpr std::size_t kMaxFileBytes = 16U << 20U;
constexpr std::string_view kWhitespace = " \t\r\n\v\f";
constexpr std::string_view kPemMarker = "-----BEGIN";

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string Trim(std::string_view s) {
  const auto first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kWhitespace);
  return std::string(s.substr(first, last - first + 1));
}

bool LooksLikePem(std::string_view data) { return data.find(kPemMarker) != std::string_view::npos; }

struct TokenRead {
  std::string token;
  FileIdentity identity;
};

// Messages name the path, never the content.
Result<TokenRead> ReadTokenFile(const std::string& path) {
  FileRead f = ReadWholeFile(path, kMaxFileBytes);
  if (f.err != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "cannot read token file " + path + ": " + ErrnoText(f.err));
  }
  std::string token = Trim(f.data);
  if (token.empty()) {
    return Status(StatusCode::kInvalidArgument, "token file " + path + " is empty");
  }
  if (token.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    return Status(StatusCode::kInvalidArgument, "token file " + path + " holds more than one line");
  }
  return TokenRead{std::move(token), f.identity};
}

// yaml-cpp's parser messages are fixed texts, except two that append characters taken from the
// offending scalar (which may be a token): those are cut back to their fixed part.
std::string ParserMessage(const std::string& msg) {
  for (const std::string_view prefix :
       {YAML::ErrorMsg::INVALID_ESCAPE, YAML::ErrorMsg::INVALID_UNICODE}) {
    if (msg.rfind(prefix, 0) == 0) return Trim(prefix.substr(0, prefix.rfind(':')));
  }
  return msg;
}

// What a kubeconfig may contain depends on who wrote it.
enum class Trust {
  // The operator's own file (--kubeconfig, $KUBECONFIG): file references resolve against its
  // directory; plain http, insecure-skip-tls-verify and anonymous contexts are honoured.
  kOperatorFile,
  // A tenant's Secret, used by the controller to reach another cluster: only inline credentials
  // and https with a CA; nothing that reads the controller's files or runs a program.
  kTenantSecret,
};

// Walks one kubeconfig document. Every accessor checks the node type before use, so garbage
// structures become errors; the caller still catches YAML::Exception as a last resort.
class KubeconfigParser {
 public:
  // `label` names the input in errors and in RestConfig::source ("/x/config", "Secret a/b").
  KubeconfigParser(std::string label, Trust trust)
      : path_(std::move(label)),
        dir_(trust == Trust::kOperatorFile ? std::filesystem::path(path_).parent_path()
                                           : std::filesystem::path()),
        trust_(trust) {}

  Status Error(const std::string& what) const {
    return {StatusCode::kInvalidArgument, "kubeconfig " + path_ + ": " + what};
  }

  Result<RestConfig> Parse(const YAML::Node& root, const std::string& context_flag) const {
    if (!root.IsDefined() || root.IsNull()) return Error("empty document, not a kubeconfig");
    if (!root.IsMap()) return Error("top level must be a map, not a kubeconfig");

    std::string context_name = context_flag;
    if (context_name.empty()) {
      auto current = String(root, "current-context", "current-context");
      if (!current.ok()) return current.status();
      if (!current->has_value()) {
        return Error(tenant() ? "no current-context and no context given"
                              : "no current-context and no --context given");
      }
      context_name = **current;
    }

    auto context = FindNamed(root, "contexts", "context", context_name);
    if (!context.ok()) return context.status();
    if (!context->has_value()) {
      return Error("context \"" + context_name + "\" not found in contexts");
    }
    const std::string ctx_field = "contexts[" + context_name + "]";
    auto cluster_name = String(**context, "cluster", ctx_field + ".cluster");
    if (!cluster_name.ok()) return cluster_name.status();
    if (!cluster_name->has_value()) return Error(ctx_field + ".cluster: missing");
    auto user_name = String(**context, "user", ctx_field + ".user");
    if (!user_name.ok()) return user_name.status();
    if (tenant() && !user_name->has_value()) {
      return Error(ctx_field + ".user: missing (a remote cluster is never reached anonymously)");
    }
    auto ns = String(**context, "namespace", ctx_field + ".namespace");
    if (!ns.ok()) return ns.status();

    RestConfig config;
    config.namespace_ = ns->value_or("default");
    config.source = "kubeconfig " + path_ + " context " + context_name;

    auto cluster = FindNamed(root, "clusters", "cluster", **cluster_name);
    if (!cluster.ok()) return cluster.status();
    if (!cluster->has_value()) {
      return Error("cluster \"" + **cluster_name + "\" (from context \"" + context_name +
                   "\") not found in clusters");
    }
    if (Status s = ParseCluster(**cluster, "clusters[" + **cluster_name + "]", config); !s.ok()) {
      return s;
    }

    // A context without a user is anonymous (as in client-go).
    if (user_name->has_value()) {
      auto user = FindNamed(root, "users", "user", **user_name);
      if (!user.ok()) return user.status();
      if (!user->has_value()) {
        return Error("user \"" + **user_name + "\" (from context \"" + context_name +
                     "\") not found in users");
      }
      if (Status s = ParseUser(**user, "users[" + **user_name + "]", config); !s.ok()) return s;
    }
    return config;
  }

 private:
  // The value under `key` of a map, or nullopt when absent or null.
  static std::optional<YAML::Node> Child(const YAML::Node& map, std::string_view key) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) {
        if (!kv.second.IsDefined() || kv.second.IsNull()) return std::nullopt;
        return kv.second;
      }
    }
    return std::nullopt;
  }

  // A string field; absent, null and "" all read as unset (client-go checks len() > 0).
  Result<std::optional<std::string>> String(const YAML::Node& map, std::string_view key,
                                            const std::string& field) const {
    auto node = Child(map, key);
    if (!node) return std::optional<std::string>();
    if (!node->IsScalar()) return Error(field + ": must be a string");
    if (node->Scalar().empty()) return std::optional<std::string>();
    return std::optional<std::string>(node->Scalar());
  }

  Result<bool> Bool(const YAML::Node& map, std::string_view key, const std::string& field) const {
    auto node = Child(map, key);
    if (!node) return false;
    bool b = false;
    if (!node->IsScalar() || !YAML::convert<bool>::decode(*node, b)) {
      return Error(field + ": must be true or false");
    }
    return b;
  }

  // Finds the entry `name` in the list `list_key` (e.g. contexts) and returns its inner map
  // (e.g. `context`); nullopt when there is no such entry. An entry without the inner map reads
  // as an empty one, so that the missing required field is what gets reported.
  Result<std::optional<YAML::Node>> FindNamed(const YAML::Node& root, const std::string& list_key,
                                              std::string_view inner_key,
                                              const std::string& name) const {
    auto list = Child(root, list_key);
    if (!list) return std::optional<YAML::Node>();
    if (!list->IsSequence()) return Error(list_key + ": must be a list");
    std::optional<YAML::Node> found;
    std::size_t i = 0;
    for (const YAML::Node& entry : *list) {
      const std::string at = list_key + "[" + std::to_string(i) + "]";
      if (!entry.IsMap()) return Error(at + ": must be a map");
      auto entry_name = String(entry, "name", at + ".name");
      if (!entry_name.ok()) return entry_name.status();
      ++i;
      if (!entry_name->has_value() || **entry_name != name) continue;
      if (found) return Duplicate(list_key, name);
      std::string field = list_key;
      field.append("[").append(name).append("].").append(inner_key);
      auto inner = Child(entry, inner_key);
      if (!inner) {
        found = YAML::Node(YAML::NodeType::Map);
      } else if (!inner->IsMap()) {
        return Error(field + ": must be a map");
      } else {
        found = *inner;
      }
    }
    return found;
  }

  Status Duplicate(const std::string& list_key, const std::string& name) const {
    return Error(list_key + ": name \"" + name + "\" appears more than once");
  }

  std::string Resolve(const std::string& p) const {
    const std::filesystem::path fp(p);
    if (fp.is_absolute() || dir_.empty()) return p;
    return (dir_ / fp).string();
  }

  // `<data_key>` (base64 PEM) wins over `<file_key>` (path); nullopt when neither is set.
  Result<std::optional<std::string>> Pem(const YAML::Node& map, const std::string& at,
                                         const std::string& data_key,
                                         const std::string& file_key) const {
    const std::string data_field = at + "." + data_key;
    const std::string file_field = at + "." + file_key;
    auto data = String(map, data_key, data_field);
    if (!data.ok()) return data.status();
    auto file = String(map, file_key, file_field);
    if (!file.ok()) return file.status();
    if (data->has_value()) {
      auto decoded = DecodeBase64(**data);
      if (!decoded) return Error(data_field + ": invalid base64");
      if (!LooksLikePem(*decoded)) {
        return Error(data_field + ": decoded data is not PEM (no \"-----BEGIN\" line)");
      }
      return std::optional<std::string>(std::move(*decoded));
    }
    if (file->has_value()) {
      const std::string resolved = Resolve(**file);
      FileRead f = ReadWholeFile(resolved, kMaxFileBytes);
      if (f.err != 0) {
        return Error(file_field + ": cannot read " + resolved + ": " + ErrnoText(f.err));
      }
      if (!LooksLikePem(f.data)) {
        return Error(file_field + ": " + resolved + " is not PEM (no \"-----BEGIN\" line)");
      }
      return std::optional<std::string>(std::move(f.data));
    }
    return std::optional<std::string>();
  }

  bool tenant() const { return trust_ == Trust::kTenantSecret; }

  // Fields a tenant's kubeconfig must not set in a cluster entry.
  Status RefuseTenantClusterFields(const YAML::Node& cluster, const std::string& at) const {
    if (Child(cluster, "certificate-authority")) {
      return Error(at +
                   ".certificate-authority: file references are not allowed in a remote "
                   "kubeconfig (they would read the controller's own files); use "
                   "certificate-authority-data");
    }
    if (Child(cluster, "proxy-url")) {
      return Error(at + ".proxy-url: proxies are not supported in a remote kubeconfig");
    }
    return Status::Ok();
  }

  Status ParseCluster(const YAML::Node& cluster, const std::string& at, RestConfig& config) const {
    if (tenant()) {
      if (Status s = RefuseTenantClusterFields(cluster, at); !s.ok()) return s;
    }
    auto server = String(cluster, "server", at + ".server");
    if (!server.ok()) return server.status();
    if (!server->has_value()) return Error(at + ".server: missing");
    std::string url = **server;
    std::size_t scheme_len = 0;
    if (url.rfind("https://", 0) == 0) {
      scheme_len = 8;
    } else if (tenant()) {
      return Error(at + ".server: must start with https:// (a remote cluster is reached over TLS)");
    } else if (url.rfind("http://", 0) == 0) {
      scheme_len = 7;
    } else {
      return Error(at + ".server: must start with https:// or http://");
    }
    while (url.size() > scheme_len && url.back() == '/') url.pop_back();
    if (url.size() == scheme_len) return Error(at + ".server: has no host");
    if (tenant()) {
      const std::string_view authority =
          std::string_view(url).substr(scheme_len, url.find('/', scheme_len) - scheme_len);
      if (authority.find('@') != std::string_view::npos) {
        return Error(at + ".server: must not contain user information (\"user@\")");
      }
    }
    config.server = std::move(url);

    auto insecure = Bool(cluster, "insecure-skip-tls-verify", at + ".insecure-skip-tls-verify");
    if (!insecure.ok()) return insecure.status();
    if (tenant() && *insecure) {
      return Error(at +
                   ".insecure-skip-tls-verify: not allowed in a remote kubeconfig; set "
                   "certificate-authority-data to the cluster's CA instead");
    }
    config.insecure_skip_tls_verify = *insecure;

    if (tenant()) {
      auto server_name = String(cluster, "tls-server-name", at + ".tls-server-name");
      if (!server_name.ok()) return server_name.status();
      if (server_name->has_value()) {
        const std::string& name = **server_name;
        const bool bad = std::any_of(name.begin(), name.end(), [](char c) {
          return static_cast<unsigned char>(c) <= ' ' || c == '/' || c == '\x7f';
        });
        if (bad) {
          return Error(at + ".tls-server-name: must be a host name or an IP address");
        }
        config.tls_server_name = name;
      }
    }

    auto ca = Pem(cluster, at, "certificate-authority-data", "certificate-authority");
    if (!ca.ok()) return ca.status();
    if (ca->has_value()) {
      // client-go refuses this combination too: a CA that would silently be ignored.
      if (config.insecure_skip_tls_verify) {
        return Error(at +
                     ".insecure-skip-tls-verify: cannot be combined with certificate-authority "
                     "or certificate-authority-data");
      }
      config.ca_pem = std::move(**ca);
    } else if (tenant()) {
      // The transport never consults the system store: without this nothing would verify.
      return Error(at +
                   ".certificate-authority-data: missing (the remote cluster's CA is the only "
                   "one trusted for it)");
    }
    return Status::Ok();
  }

  // Fields a tenant's kubeconfig must not set in a user entry. Names only, never values.
  Status RefuseTenantUserFields(const YAML::Node& user, const std::string& at) const {
    if (Child(user, "exec")) {
      return Error(at + ".exec: not supported: it would run a program inside the controller");
    }
    if (Child(user, "auth-provider")) {
      return Error(at + ".auth-provider: auth-provider plugins are not supported");
    }
    for (const char* key : {"username", "password"}) {
      if (Child(user, key)) {
        return Error(at + "." + key + ": basic authentication is not supported");
      }
    }
    for (const auto& kv : user) {
      if (!kv.first.IsScalar() || !kv.second.IsDefined() || kv.second.IsNull()) continue;
      const std::string& key = kv.first.Scalar();
      if (key == "as" || key.rfind("as-", 0) == 0 || key.rfind("impersonate", 0) == 0) {
        std::string field = at;
        field += ".";
        field += key;
        return Error(field + ": impersonation is not supported in a remote kubeconfig");
      }
    }
    for (const char* key : {"client-certificate", "client-key", "tokenFile"}) {
      if (Child(user, key)) {
        return Error(at + "." + key +
                     ": file references are not allowed in a remote kubeconfig (they would read "
                     "the controller's own files); use client-certificate-data, client-key-data "
                     "or token");
      }
    }
    return Status::Ok();
  }

  Status ParseUser(const YAML::Node& user, const std::string& at, RestConfig& config) const {
    if (tenant()) {
      if (Status s = RefuseTenantUserFields(user, at); !s.ok()) return s;
    }
    // Credentials Rollgate cannot use must not silently turn into anonymous requests.
    for (const char* key : {"exec", "auth-provider"}) {
      if (Child(user, key)) return Error(at + "." + key + ": not supported");
    }
    for (const char* key : {"username", "password"}) {
      if (Child(user, key))
        return Error(at + "." + key + ": basic authentication is not supported");
    }

    // Presence first, so that a lone certificate or key is reported as such.
    bool has_cert = false;
    bool has_key = false;
    for (const auto& [key, flag] : {std::pair<const char*, bool*>{"client-certificate", &has_cert},
                                    {"client-certificate-data", &has_cert},
                                    {"client-key", &has_key},
                                    {"client-key-data", &has_key}}) {
      auto v = String(user, key, at + "." + key);
      if (!v.ok()) return v.status();
      if (v->has_value()) *flag = true;
    }
    if (has_cert && !has_key) {
      return Error(at + ".client-key: missing (client-certificate and client-key go together)");
    }
    if (has_key && !has_cert) {
      return Error(at +
                   ".client-certificate: missing (client-certificate and client-key go together)");
    }
    if (has_cert) {
      auto cert = Pem(user, at, "client-certificate-data", "client-certificate");
      if (!cert.ok()) return cert.status();
      auto key = Pem(user, at, "client-key-data", "client-key");
      if (!key.ok()) return key.status();
      config.client_cert_pem = std::move(**cert);
      config.client_key_pem = std::move(**key);
    }

    auto token = String(user, "token", at + ".token");
    if (!token.ok()) return token.status();
    auto token_file = String(user, "tokenFile", at + ".tokenFile");
    if (!token_file.ok()) return token_file.status();
    if (token->has_value()) {  // `token` wins over `tokenFile`, as in client-go
      if ((*token)->find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        return Error(at + ".token: contains a line break");
      }
      config.token = TokenSource::Static(std::move(**token));
    } else if (token_file->has_value()) {
      auto source = TokenSource::FromFile(Resolve(**token_file));
      if (!source.ok()) return Error(at + ".tokenFile: " + source.status().message());
      config.token = std::move(*source);
    }
    if (tenant() && !config.token && config.client_cert_pem.empty()) {
      return Error(at +
                   ": no credentials (set token, or client-certificate-data and "
                   "client-key-data)");
    }
    return Status::Ok();
  }

  std::string path_;
  std::filesystem::path dir_;
  Trust trust_;
};

// Parses `text` as one kubeconfig document; YAML errors keep the parser's fixed texts only.
Result<RestConfig> ParseText(const KubeconfigParser& parser, const std::string& text,
                             const std::string& context) {
  try {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      const std::string msg = ParserMessage(e.msg);
      if (e.mark.is_null()) return parser.Error("malformed YAML: " + msg);
      return parser.Error("malformed YAML at line " + std::to_string(e.mark.line + 1) +
                          ", column " + std::to_string(e.mark.column + 1) + ": " + msg);
    }
    return parser.Parse(root, context);
  } catch (const YAML::Exception& e) {
    // Not expected (the parser checks node types first); e.msg never holds scalar values.
    return parser.Error("unexpected structure: " + e.msg);
  }
}

}  // namespace

std::shared_ptr<TokenSource> TokenSource::Static(std::string token) {
  std::shared_ptr<TokenSource> source(new TokenSource());
  source->token_ = std::move(token);
  return source;
}

Result<std::shared_ptr<TokenSource>> TokenSource::FromFile(std::string path) {
  auto read = ReadTokenFile(path);
  if (!read.ok()) return read.status();
  std::shared_ptr<TokenSource> source(new TokenSource());
  source->path_ = std::move(path);
  source->token_ = std::move(read->token);
  source->inode_ = read->identity.inode;
  source->size_ = read->identity.size;
  source->mtime_ns_ = read->identity.mtime_ns;
  return source;
}

Result<std::string> TokenSource::Token() {
  std::lock_guard<std::mutex> lock(mu_);
  if (path_.empty()) return token_;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "cannot read token file " + path_ + ": " + ErrnoText(errno));
  }
  const FileIdentity now = IdentityOf(st);
  if (now.inode == inode_ && now.size == size_ && now.mtime_ns == mtime_ns_) return token_;
  auto read = ReadTokenFile(path_);
  if (!read.ok()) return read.status();
  token_ = std::move(read->token);
  inode_ = read->identity.inode;
  size_ = read->identity.size;
  mtime_ns_ = read->identity.mtime_ns;
  return token_;
}

Result<RestConfig> LoadKubeconfig(const KubeconfigOptions& opts) {
  if (opts.path.empty()) {
    return Status(StatusCode::kInvalidArgument, "kubeconfig: no file path given");
  }
  const KubeconfigParser parser(opts.path, Trust::kOperatorFile);
  FileRead f = ReadWholeFile(opts.path, kMaxFileBytes);
  if (f.err != 0) return parser.Error("cannot read: " + ErrnoText(f.err));
  return ParseText(parser, f.data, opts.context);
}

Result<RestConfig> ParseRemoteKubeconfig(std::string_view yaml_text, const std::string& source,
                                         const std::string& context) {
  const KubeconfigParser parser(source, Trust::kTenantSecret);
  if (yaml_text.size() > kMaxFileBytes) return parser.Error("larger than 16 MiB");
  return ParseText(parser, std::string(yaml_text), context);
}

Result<RestConfig> LoadInCluster(const Getenv& getenv, const std::string& sa_dir) {
  const auto host = getenv("KUBERNETES_SERVICE_HOST");
  const auto port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  const bool numeric_port =
      port->size() <= 5 && port->find_first_not_of("0123456789") == std::string::npos;
  if (!numeric_port || std::stoi(*port) < 1 || std::stoi(*port) > 65535) {
    return Status(StatusCode::kInvalidArgument,
                  "in-cluster: KUBERNETES_SERVICE_PORT \"" + *port + "\" is not a port number");
  }
  std::string h = *host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";

  RestConfig config;
  config.server = "https://" + h + ":" + *port;
  config.source = "in-cluster";

  auto token = TokenSource::FromFile(sa_dir + "/token");
  if (!token.ok()) {
    return Status(StatusCode::kInvalidArgument, "in-cluster: " + token.status().message());
  }
  config.token = std::move(*token);

  const std::string ca_path = sa_dir + "/ca.crt";
  FileRead ca = ReadWholeFile(ca_path, kMaxFileBytes);
  if (ca.err != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "in-cluster: cannot read " + ca_path + ": " + ErrnoText(ca.err));
  }
  if (!LooksLikePem(ca.data)) {
    return Status(StatusCode::kInvalidArgument,
                  "in-cluster: " + ca_path + " is not PEM (no \"-----BEGIN\" line)");
  }
  config.ca_pem = std::move(ca.data);

  const std::string ns_path = sa_dir + "/namespace";
  FileRead ns = ReadWholeFile(ns_path, kMaxFileBytes);
  if (ns.err != 0 && ns.err != ENOENT) {
    return Status(StatusCode::kInvalidArgument,
                  "in-cluster: cannot read " + ns_path + ": " + ErrnoText(ns.err));
  }
  config.namespace_ = Trim(ns.data);
  if (config.namespace_.empty()) config.namespace_ = "default";
  return config;
}

Result<RestConfig> LoadDefault(const std::string& kubeconfig_flag, const std::string& context,
                               const Getenv& getenv) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig({kubeconfig_flag, context});

  if (const auto env = getenv("KUBECONFIG"); env && !env->empty()) {
    std::string_view rest = *env;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const std::string_view entry = rest.substr(0, colon);
      if (!entry.empty()) return LoadKubeconfig({std::string(entry), context});
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }

  if (const auto host = getenv("KUBERNETES_SERVICE_HOST"); host && !host->empty()) {
    return LoadInCluster(getenv);
  }

  if (const auto home = getenv("HOME"); home && !home->empty()) {
    const std::string path = *home + "/.kube/config";
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 || errno != ENOENT) return LoadKubeconfig({path, context});
  }
  return Status(StatusCode::kInvalidArgument,
                "no Kubernetes configuration: --kubeconfig not given, KUBECONFIG not set, "
                "KUBERNETES_SERVICE_HOST not set (not in a cluster), and no $HOME/.kube/config");
}

}  // namespace rollgate::kube
