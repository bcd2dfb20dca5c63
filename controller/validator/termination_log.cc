// WriteTerminationLog. See termination_log.h.
// Thread-safety: see termination_log.h.
#include "controller/validator/termination_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace rollgate::validator {
namespace {

// strerror, thread-safely.
std::string ErrnoText(int error) { return std::generic_category().message(error); }

}  // namespace

std::string WriteTerminationLog(const std::string& path, std::string_view content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "open " + path + ": " + ErrnoText(errno);
  std::size_t written = 0;
  while (written < content.size()) {
    ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string why = "write " + path + ": " + ErrnoText(n < 0 ? errno : EIO);
      ::close(fd);
      return why;
    }
    written += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return "close " + path + ": " + ErrnoText(errno);
  return "";
}

}  // namespace rollgate::validator
