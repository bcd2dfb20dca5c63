// Writing the verdict to the container's termination log (/dev/termination-log by default),
// which the kubelet reads into the container status as the termination message once the
// container exits.
// Thread-safety: WriteTerminationLog may be called from any thread; concurrent writes to the same
// path interleave as the file system allows.
#pragma once

#include <string>
#include <string_view>

namespace rollgate::validator {

// Replaces the contents of the file at `path` (created if absent, mode 0644) with `content`.
// Returns "" on success, otherwise why not ("open /dev/termination-log: Permission denied").
std::string WriteTerminationLog(const std::string& path, std::string_view content);

}  // namespace rollgate::validator
