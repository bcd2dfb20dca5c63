#include "controller/cli/args.h"

#include <algorithm>
#include <limits>

#include "controller/common/flags.h"

namespace rollgate::cli {
namespace {

struct Declared {
  std::string output;
};

void Declare(FlagSet& fs, Options& o, Declared& d) {
  fs.String("kubeconfig", &o.kubeconfig,
            "path to a kubeconfig (default $KUBECONFIG, ~/.kube/config)");
  fs.String("context", &o.context, "the kubeconfig context to use");
  fs.String("namespace", &o.namespace_, "the namespace (default: the context's namespace)");
  fs.Short('n', "namespace");
  fs.Bool("all-namespaces", &o.all_namespaces, "list, get: every namespace");
  fs.Short('A', "all-namespaces");
  fs.String("output", &d.output,
            "list, get: json, yaml, wide or name; history, diff: json or yaml");
  fs.Short('o', "output");
  fs.Bool("watch", &o.watch, "get NAME: redraw the tree on every change until interrupted");
  fs.Short('w', "watch");
  fs.Bool("until-done", &o.until_done,
          "get NAME --watch: end when the rollout reaches a terminal phase");
  fs.String("address", &o.dashboard_address,
            "dashboard: the loopback address to listen on (127.0.0.1 or ::1)");
  fs.Int("port", &o.dashboard_port, "dashboard: the port to listen on (0: any free port)");
  fs.List("platform", &o.resolve.platforms,
          "resolve: platforms os/arch[/variant] (default linux/amd64)");
  fs.List("plain-http", &o.resolve.plain_http,
          "resolve: registries (host[:port]) spoken to over HTTP");
  fs.String("registry-ca-file", &o.resolve.ca_file,
            "resolve: PEM CAs trusted for HTTPS registries (default: the system bundle)");
  fs.String("registry-username", &o.resolve.username,
            "resolve: user name for the image's registry");
  fs.String("registry-password-file", &o.resolve.password_file,
            "resolve: file holding that user's password (never on the command line)");
  fs.String("service-account", &o.cluster.service_account,
            "cluster kubeconfig: the ServiceAccount (default rollgate-target, the chart's)");
  fs.String("duration", &o.cluster.duration,
            "cluster kubeconfig: the token's lifetime, e.g. 720h (default 8760h; min 10m)");
  fs.String("server", &o.cluster.server,
            "cluster kubeconfig: the API server's https:// URL as the hub reaches it");
  fs.String("tls-server-name", &o.cluster.tls_server_name,
            "cluster kubeconfig: the name in the server's certificate, if not --server's host");
  fs.String("secret", &o.cluster.secret,
            "cluster kubeconfig: print a Secret of this name holding it (key value)");
  fs.String("name", &o.cluster.name,
            "cluster kubeconfig: its cluster, user and context name (default: --secret)");
}

Status Usage(const std::string& message) { return {StatusCode::kInvalidArgument, message}; }

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A DNS-1123 subdomain: the names of Secrets and ServiceAccounts.
bool IsDnsSubdomain(const std::string& s) {
  return !s.empty() && s.size() <= 253 && IsLowerAlnum(s.front()) && IsLowerAlnum(s.back()) &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return IsLowerAlnum(c) || c == '-' || c == '.'; });
}

// A kubeconfig entry name or a host name: letters, digits, '-', '.', '_'.
bool IsPlainName(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' || c == '_';
  });
}

// The checks and defaults of `cluster kubeconfig`.
Status CheckCluster(Options& o) {
  ClusterKubeconfigFlags& c = o.cluster;
  if (c.service_account.empty()) c.service_account = kTargetServiceAccount;
  if (!IsDnsSubdomain(c.service_account)) {
    return Usage("--service-account \"" + c.service_account +
                 "\" is not a valid ServiceAccount name (lowercase letters, digits, '-', '.')");
  }
  if (c.duration.empty()) c.duration = kDefaultTokenDuration;
  auto seconds = ParseTokenDuration(c.duration);
  if (!seconds.ok()) return Usage("--duration: " + seconds.status().message());
  if (*seconds < kMinTokenSeconds) {
    return Usage("--duration " + c.duration + " is shorter than 10m, the API server's minimum");
  }
  c.expiration_seconds = *seconds;
  if (!c.server.empty()) {
    const std::string rest = c.server.rfind("https://", 0) == 0 ? c.server.substr(8) : "";
    const std::string host = rest.substr(0, rest.find('/'));
    if (host.empty() || host.find('@') != std::string::npos) {
      return Usage("--server must be an https:// URL with a host and no user information, not \"" +
                   c.server + "\"");
    }
  }
  if (!c.tls_server_name.empty() && !IsPlainName(c.tls_server_name)) {
    return Usage("--tls-server-name \"" + c.tls_server_name + "\" is not a host name");
  }
  if (!c.secret.empty() && !IsDnsSubdomain(c.secret)) {
    return Usage("--secret \"" + c.secret +
                 "\" is not a valid Secret name (lowercase letters, digits, '-', '.')");
  }
  if (c.name.empty()) c.name = c.secret.empty() ? kDefaultClusterName : c.secret;
  if (!IsPlainName(c.name)) {
    return Usage("--name \"" + c.name + "\" may hold only letters, digits, '-', '.' and '_'");
  }
  return Status::Ok();
}

// The first `cluster kubeconfig` flag given, as "--flag"; "" when none is.
std::string ClusterFlagGiven(const ClusterKubeconfigFlags& c) {
  if (!c.service_account.empty()) return "--service-account";
  if (!c.duration.empty()) return "--duration";
  if (!c.server.empty()) return "--server";
  if (!c.tls_server_name.empty()) return "--tls-server-name";
  if (!c.secret.empty()) return "--secret";
  if (!c.name.empty()) return "--name";
  return "";
}

}  // namespace

std::string ProgramName(const std::string& argv0) {
  const auto slash = argv0.rfind('/');
  const std::string base = slash == std::string::npos ? argv0 : argv0.substr(slash + 1);
  return base == "kubectl-rollgate" ? "kubectl rollgate" : "rollgate";
}

Result<std::int64_t> ParseTokenDuration(const std::string& text) {
  const Status bad(StatusCode::kInvalidArgument,
                   "\"" + text +
                       "\" is not a duration of hours, minutes and seconds (e.g. 8760h, "
                       "1h30m, 900s)");
  if (text.empty()) return bad;
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    const std::size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (n > (std::numeric_limits<std::int32_t>::max() - 9) / 10) return bad;
      n = n * 10 + (text[i] - '0');
    }
    if (i == start || i == text.size()) return bad;
    const char unit = text[i++];
    const std::int64_t scale = unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : 0;
    if (scale == 0) return bad;
    total += n * scale;
    if (total > std::numeric_limits<std::int32_t>::max()) return bad;
  }
  if (total == 0) return bad;
  return total;
}

std::string OutputFormatName(OutputFormat f) {
  switch (f) {
    case OutputFormat::kDefault:
      return "";
    case OutputFormat::kJson:
      return "json";
    case OutputFormat::kYaml:
      return "yaml";
    case OutputFormat::kWide:
      return "wide";
    case OutputFormat::kName:
      return "name";
  }
  return "";
}

Result<Options> ParseArgs(const std::vector<std::string>& argv) {
  Options o;
  if (!argv.empty()) o.program = ProgramName(argv[0]);
  Declared d;
  FlagSet fs(o.program);
  Declare(fs, o, d);
  std::vector<const char*> args;
  args.reserve(argv.size());
  for (const auto& a : argv) args.push_back(a.c_str());
  bool help = false;
  if (Status st = fs.Parse(static_cast<int>(args.size()), args.data(), &help); !st.ok()) {
    return st;
  }
  if (o.resolve.ca_file.empty()) o.resolve.ca_file = kSystemCaFile;
  const auto& pos = fs.positional();
  if (help || pos.empty()) {
    o.verb = Verb::kHelp;
    return o;
  }
  o.verb_word = pos[0];
  const std::string& v = o.verb_word;
  const std::size_t nargs = pos.size() - 1;
  if (nargs == 1) o.name = pos[1];
  if (v == "list") {
    o.verb = Verb::kList;
    if (nargs != 0) return Usage("list takes no arguments (get NAME shows one rollout)");
  } else if (v == "get" || v == "status") {
    o.verb = Verb::kGet;
    if (nargs > 1) return Usage(v + " takes at most one rollout name");
    if (v == "status" && nargs == 0) return Usage("status needs exactly one rollout name");
  } else if (v == "history" || v == "diff") {
    o.verb = v == "history" ? Verb::kHistory : Verb::kDiff;
    if (nargs != 1) return Usage(v + " needs exactly one rollout name");
  } else if (v == "promote" || v == "abort" || v == "retry") {
    o.verb = v == "promote" ? Verb::kPromote : v == "abort" ? Verb::kAbort : Verb::kRetry;
    if (nargs != 1) return Usage(v + " needs exactly one rollout name");
  } else if (v == "dashboard") {
    o.verb = Verb::kDashboard;
    if (nargs != 0) return Usage("dashboard takes no arguments");
    if (o.dashboard_address == "localhost") o.dashboard_address = "127.0.0.1";
    if (o.dashboard_address != "127.0.0.1" && o.dashboard_address != "::1") {
      // It acts with the user's credentials: nothing but this machine may reach it.
      return Usage("--address must be a loopback address (127.0.0.1 or ::1), not \"" +
                   o.dashboard_address + "\"");
    }
    if (o.dashboard_port < 0 || o.dashboard_port > 65535) {
      return Usage("--port must be between 0 and 65535");
    }
  } else if (v == "resolve") {
    o.verb = Verb::kResolve;
    if (nargs != 1) return Usage("resolve needs exactly one image reference");
  } else if (v == "version") {
    o.verb = Verb::kVersion;
    if (nargs != 0) return Usage("version takes no arguments");
  } else if (v == "completion") {
    o.verb = Verb::kCompletion;
    if (nargs != 1 || (o.name != "bash" && o.name != "zsh")) {
      return Usage("completion needs one shell: bash or zsh");
    }
  } else if (v == "cluster") {
    o.verb = Verb::kClusterKubeconfig;
    if (nargs == 0) return Usage("cluster needs a subcommand: cluster kubeconfig");
    if (pos[1] != "kubeconfig") {
      return Usage("unknown cluster subcommand \"" + pos[1] + "\" (there is: cluster kubeconfig)");
    }
    if (nargs != 1) return Usage("cluster kubeconfig takes no arguments");
    if (Status st = CheckCluster(o); !st.ok()) return st;
  } else {
    return Usage("unknown command \"" + v + "\" for \"" + o.program + "\"");
  }
  if (const std::string flag = ClusterFlagGiven(o.cluster);
      o.verb != Verb::kClusterKubeconfig && !flag.empty()) {
    return Usage(flag + " applies to cluster kubeconfig, not " + v);
  }

  if (d.output == "json") {
    o.output = OutputFormat::kJson;
  } else if (d.output == "yaml") {
    o.output = OutputFormat::kYaml;
  } else if (d.output == "wide") {
    o.output = OutputFormat::kWide;
  } else if (d.output == "name") {
    o.output = OutputFormat::kName;
  } else if (!d.output.empty()) {
    return Usage("unable to match a printer suitable for the output format \"" + d.output +
                 "\", allowed formats are: json,name,wide,yaml");
  }
  const bool lists = o.verb == Verb::kList || (o.verb == Verb::kGet && o.name.empty());
  const bool records = o.verb == Verb::kHistory || o.verb == Verb::kDiff;
  if (records && (o.output == OutputFormat::kWide || o.output == OutputFormat::kName)) {
    return Usage(v + " prints a table, json or yaml; not -o " + d.output);
  }
  if (o.output != OutputFormat::kDefault && o.verb != Verb::kList && o.verb != Verb::kGet &&
      !records) {
    return Usage("-o/--output applies to list, get, history and diff, not " + v);
  }
  if (o.all_namespaces && !lists && o.verb != Verb::kDashboard) {
    if (o.verb == Verb::kGet) {
      return Usage("a rollout cannot be retrieved by name across all namespaces");
    }
    return Usage("-A/--all-namespaces applies to list, get and dashboard, not " + v);
  }
  if (o.watch && (o.verb != Verb::kGet || o.name.empty())) {
    return Usage("-w/--watch applies to get NAME");
  }
  if (o.watch && o.output != OutputFormat::kDefault && o.output != OutputFormat::kWide) {
    return Usage("--watch draws the tree; it cannot be combined with -o " + d.output);
  }
  if (o.until_done && !o.watch) return Usage("--until-done applies to get NAME --watch");
  return o;
}

std::string UsageText(const std::string& program) {
  Options o;
  Declared d;
  FlagSet fs(program);
  Declare(fs, o, d);
  return "Usage: " + program + " [flags] COMMAND\n\nCommands:\n" +
         "  list                    the rollouts of the namespace (-A: of every namespace)\n"
         "  get [NAME]              a rollout as a tree: environments, Deployments, checks and\n"
         "                          what it waits for (no NAME: as list); -w redraws it live,\n"
         "                          --until-done ends the watch at a terminal phase\n"
         "  status NAME             the same as get NAME\n"
         "  history NAME            the revisions the rollout went through (images, phase,\n"
         "                          start, duration, reason), newest last, then its Events\n"
         "  diff NAME               per environment, Deployment and container: the image the\n"
         "                          spec wants (its pinned digest when the rollout pins) and\n"
         "                          the one running now; = same, ~ differs, ? Deployment or\n"
         "                          container missing (exit 0 either way)\n"
         "  promote NAME            approve the environment that awaits approval\n"
         "  abort NAME              stop the rollout (and roll back)\n"
         "  retry NAME              start a failed or aborted revision again\n"
         "  dashboard               a web UI on http://127.0.0.1:3100 (--address, --port): the\n"
         "                          rollouts of the namespace (-A: all), live, with promote,\n"
         "                          abort and retry; it acts with your kubeconfig's rights\n"
         "  resolve IMAGE           the digest, platforms and sizes a registry gives for IMAGE\n"
         "  cluster kubeconfig      a kubeconfig with which a hub reaches this cluster: a token\n"
         "                          of ServiceAccount rollgate-target in -n (the chart's\n"
         "                          mode=target; --service-account, --duration, --server);\n"
         "                          --secret NAME prints it as a Secret (key value) for the hub\n"
         "  completion bash|zsh     a shell completion script\n"
         "  version                 the client's version\n\n" +
         fs.FlagsHelp() +
         "\nExit codes: 0 done, 1 failed (not found, forbidden, unreachable), 2 usage.\n";
}

}  // namespace rollgate::cli
