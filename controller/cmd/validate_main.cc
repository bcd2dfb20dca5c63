// rollgate-validate: worker startup validation (CUDA on GPU nodes). The CUDA probe itself is the
// subject of its own issue; until it lands this binary refuses to claim success.
#include <cstdio>

int main() {
  std::fputs("{\"passed\":false,\"failedCheck\":\"notImplemented\",\"message\":\"the CUDA probe is "
             "not built yet\"}\n",
             stdout);
  return 70;  // EX_SOFTWARE
}
