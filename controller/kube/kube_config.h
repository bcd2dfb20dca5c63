// Connection settings for the Kubernetes API: loaded from a kubeconfig file (current context or a
// named one) or from the in-cluster service-account mount. Bad input yields one clear error that
// names the file and the field; certificate and token contents never appear in errors or logs.
// Thread-safety: RestConfig is a value type. TokenSource is safe to call from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "controller/common/status.h"

namespace rollgate::kube {

// Supplies the current bearer token; re-reads a token file when it changes on disk (bound
// service-account tokens are rotated by the kubelet).
class TokenSource {
 public:
  // A fixed token (kubeconfig `token`).
  static std::shared_ptr<TokenSource> Static(std::string token);
  // A token file (kubeconfig `tokenFile`, in-cluster token). The file is read now; later calls
  // re-read it whenever its inode, size or modification time changed.
  static Result<std::shared_ptr<TokenSource>> FromFile(std::string path);

  // The current token, or an error (naming the path, never the token) when the file has become
  // unreadable or empty.
  Result<std::string> Token();

 private:
  TokenSource() = default;
  std::mutex mu_;
  std::string path_;
  std::string token_;
  // Identity of the file content last read: (inode, size, mtime in ns).
  unsigned long long inode_ = 0;
  long long size_ = -1;
  long long mtime_ns_ = -1;
};

struct RestConfig {
  std::string server;                     // "https://127.0.0.1:6443" (no trailing slash)
  std::string ca_pem;                     // CA bundle (PEM); empty: the system store is NOT used
  std::string client_cert_pem;            // client certificate chain (PEM), for mTLS
  std::string client_key_pem;             // client private key (PEM), for mTLS
  bool insecure_skip_tls_verify = false;  // only ever true when the kubeconfig says so
  // The name the server's certificate is verified against (and sent as SNI) when it differs from
  // the host in `server`; empty: that host. Set only by ParseRemoteKubeconfig so far.
  std::string tls_server_name;
  std::shared_ptr<TokenSource> token;  // bearer token, or null
  std::string namespace_;  // default namespace (context namespace, in-cluster namespace)
  std::string source;      // where this came from ("kubeconfig /path context x", ...)
};

struct KubeconfigOptions {
  std::string path;     // explicit file; required
  std::string context;  // empty: current-context
};

// Parses a kubeconfig. Relative file paths inside it resolve against the file's directory.
// Errors: kInvalidArgument with messages like
//   "kubeconfig /x/config: context \"dev\" not found in contexts"
//   "kubeconfig /x/config: users[admin].client-key: cannot read /x/admin.key: No such file..."
Result<RestConfig> LoadKubeconfig(const KubeconfigOptions& opts);

// Parses a kubeconfig that a tenant supplied (a Secret's `value` key, as Flux uses it) and that the
// controller would use to reach another cluster. Because it is tenant input used inside the
// controller, it is strict. Accepted: an https:// server with certificate-authority-data (the only
// CA trusted for it), optionally tls-server-name; a user with token and/or
// client-certificate-data + client-key-data. Refused (kInvalidArgument naming `source` and the
// field, never a credential): exec and auth-provider plugins (they would run programs inside the
// controller); every file reference (certificate-authority, client-certificate, client-key,
// tokenFile: they would read the controller's own files, e.g. its ServiceAccount token); basic
// auth; impersonation (as*, impersonate*); proxy-url; a server that is not https:// or carries
// user information; insecure-skip-tls-verify: true; a missing CA; a context that is missing or
// names a missing cluster or user; a user without credentials. `context` empty: current-context.
//   "kubeconfig Secret team-a/prod-eu: users[hub].exec: not supported: it would run a program ..."
Result<RestConfig> ParseRemoteKubeconfig(std::string_view yaml_text, const std::string& source,
                                         const std::string& context = "");

// In-cluster configuration: KUBERNETES_SERVICE_HOST/PORT and the service-account directory
// (token, ca.crt, namespace). `getenv` and `sa_dir` are injectable for tests.
Result<RestConfig> LoadInCluster(
    const std::function<std::optional<std::string>(const std::string&)>& getenv,
    const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// What a controller does for `--kubeconfig`/`--context`: the flag's file when given, else
// $KUBECONFIG (first entry), else in-cluster when KUBERNETES_SERVICE_HOST is set, else
// ~/.kube/config.
Result<RestConfig> LoadDefault(
    const std::string& kubeconfig_flag, const std::string& context,
    const std::function<std::optional<std::string>(const std::string&)>& getenv);

}  // namespace rollgate::kube
