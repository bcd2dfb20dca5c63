#include "controller/common/file_read.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace rollgate {

FileIdentity IdentityOf(const struct stat& st) {
  return {static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
          static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL +
              static_cast<long long>(st.st_mtim.tv_nsec)};
}

FileRead ReadWholeFile(const std::string& path, std::size_t max_bytes) {
  FileRead out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out.err = errno;
    return out;
  }
  struct Closer {
    explicit Closer(int f) : fd(f) {}
    Closer(const Closer&) = delete;
    Closer& operator=(const Closer&) = delete;
    ~Closer() { ::close(fd); }
    int fd;
  } closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    out.err = errno;
    return out;
  }
  if (S_ISDIR(st.st_mode)) {
    out.err = EISDIR;
    return out;
  }
  out.identity = IdentityOf(st);
  std::array<char, 8192> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      out.err = errno;
      out.data.clear();
      return out;
    }
    if (n == 0) break;
    out.data.append(buf.data(), static_cast<std::size_t>(n));
    if (out.data.size() > max_bytes) {
      out.err = EFBIG;
      out.data.clear();
      return out;
    }
  }
  return out;
}

std::optional<FileIdentity> StatIdentity(const std::string& path, int* err) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *err = errno;
    return std::nullopt;
  }
  if (S_ISDIR(st.st_mode)) {
    *err = EISDIR;
    return std::nullopt;
  }
  return IdentityOf(st);
}

}  // namespace rollgate
