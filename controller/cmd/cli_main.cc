// rollgate: the command-line interface for ContainerRollouts, also installed as the kubectl
// plugin kubectl-rollgate (`kubectl rollgate get NAME --watch`). The program lives in
// controller/cli/ (app.h: Main); `rollgate --help` lists the commands and flags.
#include "controller/cli/app.h"

int main(int argc, char** argv) { return rollgate::cli::Main(argc, argv); }
