// Whole-file reads for files that are re-read when they change (a kubeconfig's token file, a
// mounted Secret): the content and the identity stat() gives it, so that a caller can tell a
// changed file from the one it read. Kubelet-mounted files change by a symlink swap, so the
// identity of what was read comes from the descriptor read (fstat), and a path is checked with
// stat() (following links).
// Thread-safety: pure functions over the file system.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <optional>
#include <string>

namespace rollgate {

// Identity of a file's content as seen by stat(): a change in any part means "read again".
struct FileIdentity {
  unsigned long long inode = 0;
  long long size = -1;
  long long mtime_ns = -1;
  friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
};

FileIdentity IdentityOf(const struct stat& st);

struct FileRead {
  int err = 0;  // errno of the failure (EISDIR for a directory, EFBIG over the cap); 0: success
  std::string data;
  FileIdentity identity;
};

// Reads a whole regular file of at most `max_bytes`.
FileRead ReadWholeFile(const std::string& path, std::size_t max_bytes);

// The identity of `path` now (stat(), following links); nullopt with *err set when it cannot be
// had or names a directory.
std::optional<FileIdentity> StatIdentity(const std::string& path, int* err);

}  // namespace rollgate
