#include "controller/cli/completion.h"

#include <utility>

namespace rollgate::cli {
namespace {

constexpr char kVerbs[] = "list get status promote abort retry resolve completion version";
constexpr char kFlags[] =
    "-n --namespace -A --all-namespaces --context --kubeconfig -o --output -w --watch "
    "--until-done --platform --plain-http --registry-ca-file --registry-username "
    "--registry-password-file --help";

constexpr char kBash[] = R"SH(# bash completion for rollgate (and kubectl-rollgate).
#   source <(rollgate completion bash)
# or save it under /etc/bash_completion.d/. Rollout names come from
# `kubectl get containerrollouts -o name` in the namespace given with -n.
_rollgate() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local verbs="@VERBS@"
  local flags="@FLAGS@"
  case $prev in
    -o|--output) COMPREPLY=($(compgen -W "json yaml wide name" -- "$cur")); return ;;
    --kubeconfig|--registry-ca-file|--registry-password-file)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --context)
      COMPREPLY=($(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur"))
      return ;;
    -n|--namespace)
      COMPREPLY=($(compgen -W "$(kubectl get namespaces -o name 2>/dev/null | sed 's|.*/||')" \
        -- "$cur"))
      return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return
  fi
  local i verb="" ns=()
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -n|--namespace) ns=(-n "${words[i+1]}"); ((i++)) ;;
      --namespace=*) ns=(-n "${words[i]#*=}") ;;
      -o|--output|--context|--kubeconfig) ((i++)) ;;
      -*) ;;
      *) [[ -z $verb ]] && verb=${words[i]} ;;
    esac
  done
  case $verb in
    "") COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
    get|status|promote|abort|retry)
      COMPREPLY=($(compgen -W "$(kubectl get containerrollouts "${ns[@]}" -o name 2>/dev/null |
        sed 's|.*/||')" -- "$cur")) ;;
    completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
  esac
}
complete -F _rollgate rollgate kubectl-rollgate
)SH";

constexpr char kZsh[] = R"SH(#compdef rollgate kubectl-rollgate
# zsh completion for rollgate (and kubectl-rollgate).
#   source <(rollgate completion zsh)
# or save it as _rollgate in a directory of $fpath. Rollout names come from
# `kubectl get containerrollouts -o name` in the namespace given with -n.
_rollgate() {
  local -a verbs
  verbs=(@VERBS@)
  local ns_i=${words[(I)-n|--namespace]}
  local -a ns
  (( ns_i > 0 )) && ns=(-n "${words[ns_i+1]}")
  local verb i
  for ((i = 2; i < CURRENT; i++)); do
    case ${words[i]} in
      -n|--namespace|-o|--output|--context|--kubeconfig) ((i++)) ;;
      -*) ;;
      *) verb=${words[i]}; break ;;
    esac
  done
  case ${words[CURRENT-1]} in
    -o|--output) compadd json yaml wide name; return ;;
    --kubeconfig|--registry-ca-file|--registry-password-file) _files; return ;;
    --context) compadd -- ${(f)"$(kubectl config get-contexts -o name 2>/dev/null)"}; return ;;
    -n|--namespace)
      compadd -- ${${(f)"$(kubectl get namespaces -o name 2>/dev/null)"}#*/}; return ;;
  esac
  if [[ ${words[CURRENT]} == -* ]]; then
    compadd -- @FLAGS@
    return
  fi
  case $verb in
    "") compadd -- $verbs ;;
    get|status|promote|abort|retry)
      compadd -- ${${(f)"$(kubectl get containerrollouts $ns -o name 2>/dev/null)"}#*/} ;;
    completion) compadd bash zsh ;;
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _rollgate "$@"
else
  compdef _rollgate rollgate kubectl-rollgate
fi
)SH";

std::string Fill(std::string script) {
  for (const auto& [key, value] :
       {std::pair<std::string, std::string>{"@VERBS@", kVerbs}, {"@FLAGS@", kFlags}}) {
    for (auto at = script.find(key); at != std::string::npos; at = script.find(key, at)) {
      script.replace(at, key.size(), value);
      at += value.size();
    }
  }
  return script;
}

}  // namespace

std::string CompletionScript(const std::string& shell) {
  if (shell == "bash") return Fill(kBash);
  if (shell == "zsh") return Fill(kZsh);
  return "";
}

}  // namespace rollgate::cli
