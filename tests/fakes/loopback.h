// A TCP socket listening on 127.0.0.1 at a port the kernel picks: the start of every hand-made
// peer the tests need (a server that only counts connections, one that resets them, one that never
// answers, a plain HTTP server). Header-only.
// Thread-safety: a plain function.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rollgate::testing {

struct LoopbackListener {
  int fd = -1;  // -1 when the socket could not be made, bound or listened on
  int port = 0;
};

// Listens with `backlog` on 127.0.0.1:<free port>. The caller owns fd (close it).
inline LoopbackListener ListenLoopback(int backlog) {
  LoopbackListener l;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return l;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd, backlog) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return l;
  }
  l.fd = fd;
  l.port = ntohs(a.sin_port);
  return l;
}

}  // namespace rollgate::testing
