// Shell completion of `rollgate` and of the kubectl plugin:
//  - `rollgate completion bash|zsh`: a script for `rollgate` and `kubectl-rollgate` that asks the
//    binary itself (`rollgate __complete WORDS...`) for every candidate;
//  - the completion requests: `kubectl_complete-rollgate WORDS...` (the same binary under that
//    name: kubectl 1.26+ runs it from PATH for `kubectl rollgate <TAB>`) and `rollgate __complete
//    WORDS...` (cobra's hidden command) print the candidates for the last word, one per line, then
//    cobra's directive line ":<n>". Verbs, flags (after "-"), -o's formats, the values of
//    `completion`, the subcommand of `cluster` (kubeconfig), and, for a verb that takes a rollout
//    NAME, the rollouts of the namespace that the line's -n/--namespace, --context and --kubeconfig
//    select, listed from the API server; namespaces after -n. The verbs and flags come from the
//    help text (UsageText), so a new one is completed without a change here.
// Thread-safety: pure functions, but for CompletionAnswer (reads the kubeconfig, asks the API
// server).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/common/status.h"
#include "controller/kube/kube_client.h"

namespace rollgate::cli {

// The script for "bash" or "zsh"; "" for another shell.
std::string CompletionScript(const std::string& shell);

// Cobra's ShellCompDirective values that the answers use: kubectl (and the scripts) read the last
// line ":<n>". Default: with no candidates the shell completes file names; NoFileComp: never.
inline constexpr int kDirectiveDefault = 0;
inline constexpr int kDirectiveNoFileComp = 4;

struct Completion {
  std::vector<std::string> candidates;  // those that start with the word being completed
  int directive = kDirectiveNoFileComp;
};

// A client for the API server that the kubeconfig and context typed on the line select ("": the
// defaults), and that context's namespace ("" when it names none).
struct CompletionApi {
  std::shared_ptr<kube::KubeClient> client;
  std::string context_namespace;
};
using CompletionConnect =
    std::function<Result<CompletionApi>(const std::string& kubeconfig, const std::string& context)>;

// The candidates for the last of `words` (the words after the program, as kubectl passes them: the
// last one is being completed, "" for a new word). `connect` is called only when rollout or
// namespace names are wanted; when it fails, or listing does, there are no candidates.
Completion Complete(const std::vector<std::string>& words, const CompletionConnect& connect);

// The candidates one per line, then ":<directive>".
std::string FormatCompletion(const Completion& c);

// The words of a completion request in argv: everything after argv[0] when its file name is
// kubectl_complete-rollgate, after argv[1] when that is __complete (or __completeNoDesc);
// nullopt for any other command line.
std::optional<std::vector<std::string>> CompletionWords(const std::vector<std::string>& argv);

// FormatCompletion(Complete(words, ...)) with the kubeconfig ($KUBECONFIG, ~/.kube/config, or
// the line's --kubeconfig) and a client that gives up after 5 s.
std::string CompletionAnswer(const std::vector<std::string>& words);

}  // namespace rollgate::cli
