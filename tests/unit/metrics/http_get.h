// Test helper: plain HTTP/1.1 requests over loopback sockets, as the kubelet and Prometheus send
// them, plus idle connections that send nothing (what a port scanner leaves open).
// Thread-safety: plain functions.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace rollgate::metrics::testing {

struct HttpReply {
  int code = 0;  // 0: no complete answer within the timeout (or no connection)
  std::string headers;
  std::string body;  // decoded when the answer was chunked
  bool chunked = false;
  bool complete = true;  // a chunked body ended with its last chunk (a close-delimited one always)
};

// Decodes a chunked body (RFC 9112 7.1, without extensions or trailers) into `out`: true when it
// ends with the last (zero-size) chunk, false when it is cut short or malformed.
inline bool DecodeChunked(const std::string& raw, std::string& out) {
  std::size_t at = 0;
  for (;;) {
    const auto eol = raw.find("\r\n", at);
    if (eol == std::string::npos || eol == at) return false;
    const std::string size_text = raw.substr(at, eol - at);
    if (size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) return false;
    const std::size_t size = std::stoul(size_text, nullptr, 16);
    at = eol + 2;
    if (size == 0) return raw.compare(at, std::string::npos, "\r\n") == 0;
    if (raw.size() < at + size + 2 || raw.compare(at + size, 2, "\r\n") != 0) return false;
    out.append(raw, at, size);
    at += size + 2;
  }
}

// Splits a raw answer (what came before the peer closed) into its parts.
inline HttpReply SplitReply(const std::string& raw) {
  HttpReply r;
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.code = std::stoi(raw.substr(9, 3));
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  if (r.headers.find("\r\nTransfer-Encoding: chunked") != std::string::npos) {
    r.chunked = true;
    std::string decoded;
    r.complete = DecodeChunked(r.body, decoded);
    r.body = std::move(decoded);
  }
  return r;
}

// A connected loopback socket with `timeout` on receive and send, or -1.
inline int Connect(int port, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes (or the socket's timeout passes) and splits the answer.
inline HttpReply ReadReply(int fd) {
  std::string raw;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  return SplitReply(raw);
}

// Sends `request` verbatim on a new connection and reads the answer.
inline HttpReply Exchange(int port, const std::string& request,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const int fd = Connect(port, timeout);
  if (fd < 0) return {};
  HttpReply r;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    r = ReadReply(fd);
  }
  close(fd);
  return r;
}

inline HttpReply Get(int port, const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5),
                     const std::string& method = "GET") {
  return Exchange(port,
                  method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                  timeout);
}

}  // namespace rollgate::metrics::testing
