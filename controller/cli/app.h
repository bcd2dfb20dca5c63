// The `rollgate` program (also `kubectl-rollgate`): parses the command line, loads the
// kubeconfig, builds the API client and runs the verb. controller/cmd/cli_main.cc calls Main.
// Exit codes (kubectl's): 0 done, 1 failed (not found, forbidden, unreachable, a kubeconfig or
// context that cannot be used; --until-done: the rollout did not succeed), 2 usage.
// Thread-safety: called once, from main.
#pragma once

namespace rollgate::cli {

int Main(int argc, const char* const* argv);

}  // namespace rollgate::cli
