// rollgate completion bash|zsh: a completion script for the verbs, the flags and (from
// `kubectl get containerrollouts -o name`) the rollout names. Both scripts complete
// `rollgate` and `kubectl-rollgate` (`kubectl rollgate <TAB>` would need an executable
// kubectl_complete-rollgate on PATH, kubectl 1.26+; not provided yet).
// Thread-safety: pure functions.
#pragma once

#include <string>

namespace rollgate::cli {

// The script for "bash" or "zsh"; "" for another shell.
std::string CompletionScript(const std::string& shell);

}  // namespace rollgate::cli
