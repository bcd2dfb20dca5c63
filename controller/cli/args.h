// The command line of `rollgate` (also installed as the kubectl plugin `kubectl-rollgate`):
// verbs, kubectl's flags (-n/--namespace, -A/--all-namespaces, --context, --kubeconfig,
// -o json|yaml|wide|name) and the checks that make a wrong command a usage error (exit 2) before
// anything is sent to the API server.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/common/status.h"

namespace rollgate::cli {

enum class Verb {
  kHelp,
  kList,
  kGet,
  kHistory,
  kDiff,
  kPromote,
  kAbort,
  kRetry,
  kDashboard,
  kResolve,
  kVersion,
  kCompletion,
  kClusterKubeconfig
};

// -o: kDefault is the table (list, history, diff) or the tree (get NAME).
enum class OutputFormat { kDefault, kJson, kYaml, kWide, kName };

// rollgate resolve IMAGE
struct ResolveFlags {
  std::vector<std::string> platforms;
  std::vector<std::string> plain_http;
  std::string ca_file;  // "" until parsed: then the system bundle unless given
  std::string username;
  std::string password_file;
};

// rollgate cluster kubeconfig: a kubeconfig (or a Secret holding one) for a ServiceAccount of the
// current cluster, for a hub's environments[].cluster.secretRef. Every field "" until given;
// ParseArgs fills the defaults below.
struct ClusterKubeconfigFlags {
  std::string service_account;  // default kTargetServiceAccount
  std::string duration;         // as typed: 8760h, 90m, 1h30m; default kDefaultTokenDuration
  std::int64_t expiration_seconds = 0;  // duration, parsed
  std::string server;           // the API server's URL as the hub reaches it; "": the kubeconfig's
  std::string tls_server_name;  // the name in the server's certificate, when not server's host
  std::string secret;           // non-empty: print a Secret of this name instead
  std::string name;             // the cluster, user and context name; default: secret, else below
};

// The chart's target-mode ServiceAccount (values.yaml target.serviceAccountName).
inline constexpr char kTargetServiceAccount[] = "rollgate-target";
inline constexpr char kDefaultTokenDuration[] = "8760h";
// The kubeconfig's names when neither --name nor --secret gives one.
inline constexpr char kDefaultClusterName[] = "rollgate-target";
// The TokenRequest API's minimum expirationSeconds.
inline constexpr std::int64_t kMinTokenSeconds = 600;

// A Go-style duration of hours, minutes and seconds ("8760h", "1h30m", "600s") in whole seconds;
// kInvalidArgument for anything else (other units, fractions, zero, overflow).
Result<std::int64_t> ParseTokenDuration(const std::string& text);

// Debian's CA bundle (package ca-certificates, also in the controller image).
inline constexpr char kSystemCaFile[] = "/etc/ssl/certs/ca-certificates.crt";

struct Options {
  std::string program = "rollgate";  // "kubectl rollgate" when invoked as kubectl-rollgate
  Verb verb = Verb::kHelp;
  std::string verb_word;  // as typed ("status" is get)
  std::string name;       // the rollout (get without one lists), the image, or the shell
  std::string kubeconfig;
  std::string context;
  std::string namespace_;  // "": the context's namespace
  bool all_namespaces = false;
  OutputFormat output = OutputFormat::kDefault;
  bool watch = false;
  bool until_done = false;
  std::string dashboard_address = "127.0.0.1";  // dashboard: loopback only
  int dashboard_port = 3100;
  ResolveFlags resolve;
  ClusterKubeconfigFlags cluster;
};

// How the binary was invoked: "kubectl rollgate" for a path ending in kubectl-rollgate.
std::string ProgramName(const std::string& argv0);

// argv[0] is the program's path. A usage error is kInvalidArgument naming what is wrong; --help
// (or no command at all) is Verb::kHelp.
Result<Options> ParseArgs(const std::vector<std::string>& argv);

// The help text: one usage line, the commands, the flags, the exit codes.
std::string UsageText(const std::string& program);

// "json", "yaml", "wide", "name"; "" for kDefault.
std::string OutputFormatName(OutputFormat f);

}  // namespace rollgate::cli
