#include "controller/cli/completion.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "controller/cli/args.h"
#include "controller/common/clock.h"
#include "controller/kube/kube_config.h"
#include "controller/kube/rest_client.h"

namespace rollgate::cli {
namespace {

constexpr char kBash[] = R"SH(# bash completion for rollgate (and kubectl-rollgate).
#   source <(rollgate completion bash)
# or save it under /etc/bash_completion.d/. The candidates come from the binary itself
# (`rollgate __complete WORDS...`): the verbs, the flags, -o's formats, and the rollouts (or
# namespaces) that the -n/--namespace, --context and --kubeconfig typed on the line select, listed
# from the API server.
_rollgate() {
  local cur words cword
  if declare -F _init_completion >/dev/null 2>&1; then
    local prev
    _init_completion -n = || return
  else
    local line=${COMP_LINE:0:COMP_POINT}
    read -ra words <<<"$line"
    [[ -z $line || $line == *[[:space:]] ]] && words+=("")
    cword=$((${#words[@]} - 1))
    cur=${words[cword]}
  fi
  local out directive cands=""
  out=$("${words[0]}" __complete "${words[@]:1:cword}" 2>/dev/null) || return
  directive=${out##*$'\n'}
  [[ $out == *$'\n'* ]] && cands=${out%$'\n'*}
  directive=${directive#:}
  [[ $directive =~ ^[0-9]+$ ]] || directive=0
  COMPREPLY=()
  [[ -n $cands ]] && mapfile -t COMPREPLY <<<"$cands"
  # No candidates and no ShellCompDirectiveNoFileComp (4): file names (--kubeconfig FILE).
  if ((${#COMPREPLY[@]} == 0 && (directive & 4) == 0)); then
    [[ $cur == -*=* ]] && cur=${cur#*=}
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -F _rollgate rollgate kubectl-rollgate
)SH";

constexpr char kZsh[] = R"SH(#compdef rollgate kubectl-rollgate
# zsh completion for rollgate (and kubectl-rollgate).
#   source <(rollgate completion zsh)
# or save it as _rollgate in a directory of $fpath. The candidates come from the binary itself
# (`rollgate __complete WORDS...`): the verbs, the flags, -o's formats, and the rollouts (or
# namespaces) that the -n/--namespace, --context and --kubeconfig typed on the line select, listed
# from the API server.
_rollgate() {
  local out directive
  local -a lines
  out=$(${(Q)words[1]} __complete "${(@Q)words[2,CURRENT]}" 2>/dev/null) || return 1
  lines=("${(@f)out}")
  directive=${lines[-1]#:}
  lines=("${(@)lines[1,-2]}")
  [[ $directive == <-> ]] || directive=0
  [[ ${words[CURRENT]} == -*=* ]] && compset -P '*='
  if (( ${#lines} )); then
    compadd -- "${lines[@]}"
  elif (( (directive & 4) == 0 )); then
    _files
  else
    return 1
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _rollgate "$@"
else
  compdef _rollgate rollgate kubectl-rollgate
fi
)SH";

// The values of -o/--output.
constexpr const char* kOutputFormats[] = {"json", "yaml", "wide", "name"};
// The flags whose value is a file name: the shell completes it.
constexpr const char* kFileFlags[] = {"kubeconfig", "registry-ca-file", "registry-password-file"};
constexpr const char* kPlatforms[] = {"linux/amd64", "linux/arm64"};

struct FlagSpec {
  std::string name;
  char letter = 0;
  bool takes_value = false;
};

struct VerbSpec {
  std::string verb;
  // As the help writes them: NAME, [NAME], IMAGE, bash|zsh, or a subcommand word (kubeconfig in
  // "cluster kubeconfig"), completed as itself.
  std::vector<std::string> args;
};

// What the command line accepts, read from the help text: the "Commands:" section's lines
// ("  get [NAME]   a rollout ...") and the flags' lines ("  -n, --namespace value",
// "      --watch").
struct Grammar {
  std::vector<VerbSpec> verbs;
  std::vector<FlagSpec> flags;
};

bool IsArgumentWord(const std::string& w) {
  if (w.empty()) return false;
  if (w.find('|') != std::string::npos) return true;  // alternatives: bash|zsh
  std::string bare = w;
  if (bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  const auto all = [&](bool lower) {
    return std::all_of(bare.begin(), bare.end(), [lower](char c) {
      return (lower ? c >= 'a' && c <= 'z' : c >= 'A' && c <= 'Z') || c == '_' || c == '-' ||
             c == '.';
    });
  };
  return !bare.empty() && (all(false) || all(true));
}

Grammar GrammarFromUsage(const std::string& usage) {
  Grammar g;
  enum class Section { kNone, kCommands, kFlags } section = Section::kNone;
  std::istringstream in(usage);
  for (std::string line; std::getline(in, line);) {
    if (line == "Commands:") {
      section = Section::kCommands;
      continue;
    }
    if (line == "Flags:") {
      section = Section::kFlags;
      continue;
    }
    if (line.empty()) {
      section = Section::kNone;
      continue;
    }
    if (section == Section::kCommands && line.size() > 2 && line.rfind("  ", 0) == 0 &&
        line[2] != ' ') {
      // The synopsis ("get [NAME]") ends where two spaces start the description.
      std::istringstream words(line.substr(2, line.find("  ", 2) - 2));
      VerbSpec v;
      words >> v.verb;
      for (std::string w; words >> w && IsArgumentWord(w);) v.args.push_back(w);
      g.verbs.push_back(std::move(v));
    } else if (section == Section::kFlags) {
      FlagSpec f;
      std::string rest;
      if (line.rfind("  -", 0) == 0 && line.size() > 8 && line.compare(4, 4, ", --") == 0) {
        f.letter = line[3];
        rest = line.substr(8);
      } else if (line.rfind("      --", 0) == 0) {
        rest = line.substr(8);
      } else {
        continue;  // a flag's help
      }
      const auto space = rest.find(' ');
      f.name = rest.substr(0, space);
      f.takes_value = space != std::string::npos && rest.compare(space, 6, " value") == 0;
      g.flags.push_back(std::move(f));
    }
  }
  return g;
}

const Grammar& TheGrammar() {
  static const Grammar g = GrammarFromUsage(UsageText("rollgate"));
  return g;
}

const FlagSpec* FindFlag(const Grammar& g, const std::string& name, char letter) {
  for (const auto& f : g.flags) {
    if ((!name.empty() && f.name == name) || (letter != 0 && f.letter == letter)) return &f;
  }
  return nullptr;
}

// A word that is a flag: the flag (null when unknown) and its value when the word holds one
// (--namespace=shop, -n=shop, -nshop).
struct FlagWord {
  const FlagSpec* flag = nullptr;
  std::optional<std::string> value;
};

FlagWord ParseFlagWord(const Grammar& g, const std::string& w) {
  FlagWord fw;
  if (w.rfind("--", 0) == 0) {
    const auto eq = w.find('=');
    fw.flag = FindFlag(g, w.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), 0);
    if (eq != std::string::npos) fw.value = w.substr(eq + 1);
  } else if (w.size() >= 2) {
    fw.flag = FindFlag(g, "", w[1]);
    if (w.size() > 2) fw.value = w.substr(w[2] == '=' ? 3 : 2);
  }
  return fw;
}

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");  // NOLINT(concurrency-mt-unsafe): no thread sets it
  return home == nullptr ? path : std::string(home) + path.substr(1);
}

// What the line has said so far about where names come from.
struct Target {
  std::string kubeconfig;
  std::string context;
  std::string namespace_;
};

void Record(const FlagSpec& f, const std::string& value, Target& t) {
  if (f.name == "kubeconfig") t.kubeconfig = ExpandHome(value);
  if (f.name == "context") t.context = value;
  if (f.name == "namespace") t.namespace_ = value;
}

Completion Filter(const std::vector<std::string>& all, const std::string& prefix, int directive) {
  Completion c;
  c.directive = directive;
  for (const auto& a : all) {
    if (a.rfind(prefix, 0) == 0) c.candidates.push_back(a);
  }
  return c;
}

// The names of `rt` in `ns` ("" for a cluster-scoped resource), or none when the kubeconfig, the
// context or the API server fails.
std::vector<std::string> Names(const kube::ResourceType& rt, bool namespaced, const Target& t,
                               const CompletionConnect& connect) {
  if (!connect) return {};
  auto api = connect(t.kubeconfig, t.context);
  if (!api.ok() || !api->client) return {};
  std::string ns;
  if (namespaced) {
    ns = !t.namespace_.empty()             ? t.namespace_
         : !api->context_namespace.empty() ? api->context_namespace
                                           : "default";
  }
  auto list = kube::ListAll(*api->client, rt, ns, {});
  if (!list.ok()) return {};
  std::vector<std::string> names;
  names.reserve(list->items.size());
  for (const auto& item : list->items) {
    if (std::string n = kube::MetaString(item, "name"); !n.empty()) names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Completion FlagValues(const FlagSpec& f, const std::string& prefix, const Target& t,
                      const CompletionConnect& connect) {
  if (f.name == "output") {
    return Filter({std::begin(kOutputFormats), std::end(kOutputFormats)}, prefix,
                  kDirectiveNoFileComp);
  }
  if (f.name == "namespace") {
    return Filter(Names(kube::resources::Namespaces(), false, t, connect), prefix,
                  kDirectiveNoFileComp);
  }
  if (f.name == "platform") {
    return Filter({std::begin(kPlatforms), std::end(kPlatforms)}, prefix, kDirectiveNoFileComp);
  }
  for (const char* name : kFileFlags) {
    if (f.name == name) return Completion{{}, kDirectiveDefault};
  }
  return Completion{};
}

}  // namespace

std::string CompletionScript(const std::string& shell) {
  if (shell == "bash") return kBash;
  if (shell == "zsh") return kZsh;
  return "";
}

Completion Complete(const std::vector<std::string>& words, const CompletionConnect& connect) {
  const Grammar& g = TheGrammar();
  const std::string cur = words.empty() ? "" : words.back();
  Target target;
  std::vector<std::string> positional;
  const FlagSpec* awaiting = nullptr;  // a flag whose value is the next word
  bool only_positional = false;        // after "--"
  for (std::size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& w = words[i];
    if (awaiting != nullptr) {
      Record(*awaiting, w, target);
      awaiting = nullptr;
    } else if (only_positional || w.size() < 2 || w[0] != '-') {
      positional.push_back(w);
    } else if (w == "--") {
      only_positional = true;
    } else if (const FlagWord fw = ParseFlagWord(g, w); fw.flag != nullptr) {
      if (fw.flag->takes_value && fw.value) Record(*fw.flag, *fw.value, target);
      if (fw.flag->takes_value && !fw.value) awaiting = fw.flag;
    }
  }
  if (awaiting != nullptr) return FlagValues(*awaiting, cur, target, connect);

  if (!only_positional && !cur.empty() && cur[0] == '-') {
    if (const auto eq = cur.find('='); eq != std::string::npos) {  // --output=js, -o=js
      const FlagWord fw = ParseFlagWord(g, cur);
      if (fw.flag == nullptr || !fw.flag->takes_value) return Completion{};
      return FlagValues(*fw.flag, cur.substr(eq + 1), target, connect);
    }
    std::vector<std::string> flags;
    for (const auto& f : g.flags) {
      flags.push_back("--" + f.name);
      if (f.letter != 0) flags.push_back(std::string("-") + f.letter);
    }
    flags.emplace_back("--help");
    std::sort(flags.begin(), flags.end());
    flags.erase(std::unique(flags.begin(), flags.end()), flags.end());
    return Filter(flags, cur, kDirectiveNoFileComp);
  }

  if (positional.empty()) {
    std::vector<std::string> verbs;
    verbs.reserve(g.verbs.size());
    for (const auto& v : g.verbs) verbs.push_back(v.verb);
    return Filter(verbs, cur, kDirectiveNoFileComp);
  }
  const auto verb = std::find_if(g.verbs.begin(), g.verbs.end(),
                                 [&](const VerbSpec& v) { return v.verb == positional[0]; });
  const std::size_t index = positional.size() - 1;  // of the argument being completed
  if (verb == g.verbs.end() || index >= verb->args.size()) return Completion{};
  std::string arg = verb->args[index];
  if (arg.size() > 2 && arg.front() == '[' && arg.back() == ']')
    arg = arg.substr(1, arg.size() - 2);
  if (arg == "NAME") {
    return Filter(Names(kube::resources::ContainerRollouts(), true, target, connect), cur,
                  kDirectiveNoFileComp);
  }
  if (arg.find('|') != std::string::npos || (arg.front() >= 'a' && arg.front() <= 'z')) {
    std::vector<std::string> choices;
    std::istringstream in(arg);
    for (std::string c; std::getline(in, c, '|');) choices.push_back(c);
    return Filter(choices, cur, kDirectiveNoFileComp);
  }
  return Completion{};
}

std::string FormatCompletion(const Completion& c) {
  std::string out;
  for (const auto& candidate : c.candidates) out += candidate + "\n";
  return out + ":" + std::to_string(c.directive) + "\n";
}

std::optional<std::vector<std::string>> CompletionWords(const std::vector<std::string>& argv) {
  if (argv.empty()) return std::nullopt;
  const auto slash = argv[0].rfind('/');
  const std::string base = slash == std::string::npos ? argv[0] : argv[0].substr(slash + 1);
  if (base == "kubectl_complete-rollgate") {
    return std::vector<std::string>(argv.begin() + 1, argv.end());
  }
  if (argv.size() >= 2 && (argv[1] == "__complete" || argv[1] == "__completeNoDesc")) {
    return std::vector<std::string>(argv.begin() + 2, argv.end());
  }
  return std::nullopt;
}

std::string CompletionAnswer(const std::vector<std::string>& words) {
  auto connect = [](const std::string& kubeconfig,
                    const std::string& context) -> Result<CompletionApi> {
    auto getenv = [](const std::string& n) -> std::optional<std::string> {
      const char* v = std::getenv(n.c_str());  // NOLINT(concurrency-mt-unsafe): one thread
      if (v == nullptr) return std::nullopt;
      return std::string(v);
    };
    auto cfg = kube::LoadDefault(kubeconfig, context, getenv);
    if (!cfg.ok()) return cfg.status();
    static const RealClock clock;
    kube::RestClientOptions opts;
    opts.request_timeout = std::chrono::seconds(5);  // the user waits at the prompt
    opts.max_retries = 0;
    auto client = kube::RestClient::FromConfig(*cfg, clock, opts);
    if (!client.ok()) return client.status();
    return CompletionApi{std::shared_ptr<kube::KubeClient>(std::move(*client)), cfg->namespace_};
  };
  return FormatCompletion(Complete(words, connect));
}

}  // namespace rollgate::cli
