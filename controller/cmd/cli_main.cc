// rollgate: the command-line interface (grows with the engine: status, promote, abort, retry).
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc >= 2 && (std::strcmp(argv[1], "version") == 0 || std::strcmp(argv[1], "--version") == 0)) {
    std::printf("rollgate %s\n", ROLLGATE_VERSION);
    return 0;
  }
  std::fputs("usage: rollgate version\n", stderr);
  return 2;
}
