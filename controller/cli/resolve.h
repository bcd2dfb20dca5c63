// rollgate resolve IMAGE: the registry client from the command line (the digest, media type,
// platforms and per-platform sizes a registry gives; what the controller's pre-flight sees).
// Thread-safety: one call at a time.
#pragma once

#include <string>

#include "controller/cli/args.h"

namespace rollgate::cli {

// Exit 0 resolved, 1 the registry said no (or could not be reached), 2 usage. The password is
// read from a file, never taken on the command line or printed.
int Resolve(const std::string& image, const ResolveFlags& f);

}  // namespace rollgate::cli
