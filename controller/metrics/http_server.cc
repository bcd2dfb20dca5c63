#include "controller/metrics/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "controller/common/log.h"

namespace rollgate::metrics {

using Clock = std::chrono::steady_clock;

namespace {

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string ErrnoText(int err) {
  return std::to_string(err) + " (" + std::strerror(err) + ")";  // NOLINT(concurrency-mt-unsafe)
}

std::string Lower(std::string s) {
  for (char& ch : s) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return s;
}

std::string Trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Parses "8080", "127.0.0.1:8080", "[::1]:8080" into a socket address.
bool ParseListen(const std::string& listen, sockaddr_storage& addr, socklen_t& len) {
  std::string host;
  std::string port = listen;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find("]:");
    if (close == std::string::npos) return false;
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else if (const auto colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int p = std::stoi(port);
  if (p > 65535) return false;
  addr = {};
  if (host.find(':') != std::string::npos) {
    sockaddr_in6 a6{};
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(static_cast<uint16_t>(p));
    if (inet_pton(AF_INET6, host.c_str(), &a6.sin6_addr) != 1) return false;
    std::memcpy(&addr, &a6, sizeof a6);
    len = sizeof a6;
    return true;
  }
  sockaddr_in a4{};
  a4.sin_family = AF_INET;
  a4.sin_port = htons(static_cast<uint16_t>(p));
  if (host.empty()) {
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET, host.c_str(), &a4.sin_addr) != 1) {
    return false;
  }
  std::memcpy(&addr, &a4, sizeof a4);
  len = sizeof a4;
  return true;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET6) {
    sockaddr_in6 a6{};
    std::memcpy(&a6, &addr, sizeof a6);
    return ntohs(a6.sin6_port);
  }
  sockaddr_in a4{};
  std::memcpy(&a4, &addr, sizeof a4);
  return ntohs(a4.sin_port);
}

// A POST's Content-Length: digits only, at most 9 of them; nullopt when absent or malformed.
std::optional<std::size_t> BodyLength(const HttpRequest& req) {
  const auto it = req.headers.find("content-length");
  if (it == req.headers.end() || it->second.empty() || it->second.size() > 9 ||
      it->second.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(std::stoul(it->second));
}

}  // namespace

bool ParseRequestHead(const std::string& head, HttpRequest& out) {
  const auto line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string::npos || sp1 == 0) return false;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || sp2 == sp1 + 1) return false;
  if (line.compare(sp2 + 1, 7, "HTTP/1.") != 0 || line.size() != sp2 + 9) return false;
  out.method = line.substr(0, sp1);
  out.http10 = line.back() == '0';
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.front() != '/') return false;
  const auto q = target.find('?');
  out.path = target.substr(0, q);
  out.query = q == std::string::npos ? "" : target.substr(q + 1);
  out.headers.clear();
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    auto end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    const std::string h = head.substr(pos, end - pos);
    pos = end + 2;
    if (h.empty()) continue;
    const auto colon = h.find(':');
    if (colon == std::string::npos || colon == 0 || h[0] == ' ' || h[0] == '\t') return false;
    out.headers[Lower(h.substr(0, colon))] = Trim(h.substr(colon + 1));
  }
  return true;
}

std::string SerializeResponse(const HttpResponse& r, bool head_only, bool http10) {
  std::string s = "HTTP/1.1 " + std::to_string(r.code) + " " + ReasonPhrase(r.code) + "\r\n";
  s += "Content-Type: " + r.content_type + "\r\n";
  if (r.stream) {
    // no length: the stream ends when the connection does
  } else if (r.pieces) {
    if (!http10) s += "Transfer-Encoding: chunked\r\n";  // else: the body ends with the connection
  } else {
    s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  s += "Cache-Control: no-store\r\nConnection: close\r\n";
  for (const auto& [name, value] : r.headers)
    s.append(name).append(": ").append(value).append("\r\n");
  s += "\r\n";
  if (!head_only && !r.stream && !r.pieces) s += r.body;
  return s;
}

struct HttpServer::Connection {
  enum class State { kHandshake, kReading, kWriting, kStreaming };
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::kReading;
  short want = POLLIN;
  std::string in;
  std::string out;
  std::size_t written = 0;
  bool head_only = false;
  Clock::time_point deadline;
  std::size_t head_end = std::string::npos;  // of the request head, once it is all here
  std::size_t body_len = 0;                  // of a POST body still to come
  HttpStreamPull stream;
  bool stream_done = false;
  HttpStreamPull pieces;  // of a response in pieces, until its last chunk is in `out`
  bool chunked = false;   // pieces are framed as chunks (not for an HTTP/1.0 client)
  Clock::time_point next_pull;

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (ssl != nullptr) SSL_free(ssl);
    if (fd >= 0) close(fd);
  }
};

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions opts) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!ParseListen(opts.listen, addr, len)) {
    return Status(StatusCode::kInvalidArgument,
                  opts.name + ": invalid listening address \"" + opts.listen + "\"");
  }
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(opts)));
  const std::string& name = s->opts_.name;
  s->listen_fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) {
    return Status(StatusCode::kUnavailable, name + ": socket: " + ErrnoText(errno));
  }
  const int one = 1;
  setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (bind(s->listen_fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 ||
      listen(s->listen_fd_, 128) != 0) {
    return Status(StatusCode::kUnavailable,
                  name + ": cannot bind to " + s->opts_.listen + ": " + ErrnoText(errno));
  }
  s->port_ = BoundPort(s->listen_fd_);
  std::array<int, 2> wake{-1, -1};
  if (pipe2(wake.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
    return Status(StatusCode::kUnavailable, name + ": pipe: " + ErrnoText(errno));
  }
  s->wake_read_ = wake[0];
  s->wake_write_ = wake[1];
  if (pipe2(wake.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
    return Status(StatusCode::kUnavailable, name + ": pipe: " + ErrnoText(errno));
  }
  s->notify_read_ = wake[0];
  s->notify_write_ = wake[1];
  s->thread_ = std::thread([srv = s.get()] { srv->Loop(); });
  return s;
}

HttpServer::~HttpServer() {
  if (thread_.joinable()) {
    const char byte = 0;
    while (write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  for (const int fd : {listen_fd_, wake_read_, wake_write_, notify_read_, notify_write_}) {
    if (fd >= 0) close(fd);
  }
}

void HttpServer::Notify() {
  const char byte = 0;
  // A full pipe already holds a notification: nothing is lost by dropping this one.
  while (write(notify_write_, &byte, 1) < 0 && errno == EINTR) {
  }
}

void HttpServer::Loop() {
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({notify_read_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    constexpr std::size_t kFirstConnection = 3;
    auto now = Clock::now();
    int timeout_ms = -1;
    auto until = [&](Clock::time_point t) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(t - now).count();
      const int ms = static_cast<int>(std::clamp<std::int64_t>(left, 0, 60000));
      timeout_ms = timeout_ms < 0 ? ms : std::min(timeout_ms, ms);
    };
    for (const auto& c : conns) {
      fds.push_back({c->fd, c->want, 0});
      until(c->deadline);
      if (c->state == Connection::State::kStreaming && !c->stream_done) until(c->next_pull);
    }
    const int n = poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      log::Error("http", "poll failed; the server stops", {{"server", opts_.name}});
      return;
    }
    if ((fds[0].revents & POLLIN) != 0) return;  // the destructor asks to stop
    bool notified = false;
    if ((fds[1].revents & POLLIN) != 0) {
      std::array<char, 256> drain{};
      while (read(notify_read_, drain.data(), drain.size()) > 0) {
      }
      notified = true;
    }
    now = Clock::now();
    std::vector<std::unique_ptr<Connection>> live;
    live.reserve(conns.size() + 1);
    for (std::size_t i = 0; i < conns.size(); ++i) {
      Connection& c = *conns[i];
      const short revents = fds[i + kFirstConnection].revents;
      bool keep = true;
      if (revents != 0) keep = Advance(c, revents, now);
      if (keep && c.state == Connection::State::kStreaming && (notified || now >= c.next_pull)) {
        keep = Pull(c, now);
      }
      if (keep && now >= c.deadline) keep = false;  // too slow: drop it
      if (keep) live.push_back(std::move(conns[i]));
    }
    conns = std::move(live);
    if ((fds[2].revents & POLLIN) != 0) Accept(conns, now);
  }
}

void HttpServer::Accept(std::vector<std::unique_ptr<Connection>>& conns, Clock::time_point now) {
  // A bounded number per turn, so a flood of connections cannot starve the ones already here.
  for (int i = 0; i < 64; ++i) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or an error on one pending connection: try again next turn
    if (conns.size() >= std::max<std::size_t>(opts_.max_connections, 1)) {
      conns.erase(conns.begin());  // the oldest goes, so idle connections never lock probes out
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->deadline = now + opts_.request_timeout;
    if (opts_.tls) {
      c->ssl = SSL_new(opts_.tls.get());
      if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) continue;  // closed by ~Connection
      SSL_set_accept_state(c->ssl);
      c->state = Connection::State::kHandshake;
    }
    conns.push_back(std::move(c));
  }
}

bool HttpServer::Advance(Connection& c, short revents, Clock::time_point now) {
  if ((revents & (POLLERR | POLLNVAL)) != 0) return false;
  // Maps an SSL result that is not success to "wait for this event" (true) or "give up" (false).
  auto ssl_wait = [&c](int ret) {
    const int err = SSL_get_error(c.ssl, ret);
    ERR_clear_error();
    if (err == SSL_ERROR_WANT_READ) {
      c.want = POLLIN;
      return true;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      c.want = POLLOUT;
      return true;
    }
    return false;
  };
  if (c.state == Connection::State::kHandshake) {
    const int ret = SSL_do_handshake(c.ssl);
    if (ret != 1) return ssl_wait(ret);
    c.state = Connection::State::kReading;
    c.want = POLLIN;
  }
  if (c.state == Connection::State::kStreaming && (revents & (POLLIN | POLLHUP)) != 0) {
    // A stream's client sends nothing more; reading tells when it has gone away.
    std::array<char, 512> buf{};
    const ssize_t got = recv(c.fd, buf.data(), buf.size(), 0);
    if (got == 0) return false;
    if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
  }
  if (c.state == Connection::State::kReading) {
    std::array<char, 4096> buf{};
    for (;;) {
      ssize_t got = 0;
      if (c.ssl != nullptr) {
        const int ret = SSL_read(c.ssl, buf.data(), static_cast<int>(buf.size()));
        if (ret <= 0) return ssl_wait(ret);
        got = ret;
      } else {
        got = recv(c.fd, buf.data(), buf.size(), 0);
        if (got == 0) return false;  // closed before a full request
        if (got < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c.want = POLLIN;
            return true;
          }
          return false;
        }
      }
      c.in.append(buf.data(), static_cast<std::size_t>(got));
      if (RequestComplete(c)) break;
    }
    Respond(c);
    c.want = c.state == Connection::State::kStreaming ? POLLIN | POLLOUT : POLLOUT;
    c.deadline = now + opts_.request_timeout;
    c.next_pull = now;
  }
  for (;;) {
    if (c.written == c.out.size()) {
      if (!c.pieces) break;
      if (!NextPiece(c)) return false;
      continue;
    }
    const std::size_t left = c.out.size() - c.written;
    ssize_t sent = 0;
    if (c.ssl != nullptr) {
      const int ret = SSL_write(c.ssl, c.out.data() + c.written, static_cast<int>(left));
      if (ret <= 0) return ssl_wait(ret);
      sent = ret;
    } else {
      sent = send(c.fd, c.out.data() + c.written, left, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
          c.want = POLLOUT;
          return true;
        }
        return false;
      }
    }
    c.written += static_cast<std::size_t>(sent);
    if (c.state == Connection::State::kStreaming || c.pieces) {
      c.deadline = now + opts_.request_timeout;  // progress: the next piece gets its own time
    }
  }
  if (c.state == Connection::State::kStreaming && !c.stream_done) {
    c.out.clear();  // all sent: wait for the stream's next bytes, without a deadline
    c.written = 0;
    c.want = POLLIN;
    c.deadline = Clock::time_point::max();
    return true;
  }
  if (c.ssl != nullptr) SSL_shutdown(c.ssl);  // best effort close_notify; the socket closes next
  return false;                               // done: one request per connection
}

bool HttpServer::RequestComplete(Connection& c) const {
  if (c.head_end == std::string::npos) {
    const auto end = c.in.find("\r\n\r\n");
    if (end == std::string::npos || end > opts_.max_request_bytes) {
      return c.in.size() > opts_.max_request_bytes;  // Respond answers 431
    }
    c.head_end = end;
    HttpRequest req;
    if (!opts_.allow_post || !ParseRequestHead(c.in.substr(0, end), req) || req.method != "POST") {
      return true;
    }
    const auto len = BodyLength(req);
    if (!len || *len > opts_.max_body_bytes) return true;  // Respond answers 411 or 413
    c.body_len = *len;
  }
  return c.in.size() >= c.head_end + 4 + c.body_len;
}

bool HttpServer::Pull(Connection& c, Clock::time_point now) {
  c.next_pull = now + opts_.stream_tick;
  if (c.stream_done) return true;
  std::optional<std::string> more;
  try {
    more = c.stream();
  } catch (const std::exception& e) {
    log::Error("http", "stream failed", {{"server", opts_.name}, {"error", e.what()}});
    return false;
  }
  if (!more) {
    c.stream_done = true;
    if (c.written == c.out.size()) return false;  // nothing left to send
    c.want = POLLOUT;
    return true;
  }
  if (more->empty()) return true;
  if (c.out.size() - c.written + more->size() > opts_.max_stream_backlog) {
    log::Warn("http", "a stream's client does not read; closed", {{"server", opts_.name}});
    return false;
  }
  if (c.written == c.out.size()) {
    c.out.clear();
    c.written = 0;
    c.deadline = now + opts_.request_timeout;  // from now, sending must make progress
  }
  c.out += *more;
  c.want = POLLIN | POLLOUT;
  return true;
}

bool HttpServer::NextPiece(Connection& c) {
  std::optional<std::string> piece;
  do {
    try {
      piece = c.pieces();
    } catch (const std::exception& e) {
      log::Error("http", "a response's piece failed; the body is left incomplete",
                 {{"server", opts_.name}, {"error", e.what()}});
      return false;
    }
  } while (piece && piece->empty());
  c.written = 0;
  if (!piece) {
    c.pieces = nullptr;
    c.out = c.chunked ? "0\r\n\r\n" : "";  // the last chunk
    return true;
  }
  if (!c.chunked) {
    c.out = std::move(*piece);
    return true;
  }
  std::array<char, 20> size{};
  const int n = std::snprintf(size.data(), size.size(), "%zx\r\n", piece->size());
  c.out.assign(size.data(), static_cast<std::size_t>(n));
  c.out.append(*piece).append("\r\n");
  return true;
}

void HttpServer::Respond(Connection& c) {
  const auto end = c.head_end;
  HttpRequest req;
  HttpResponse resp;
  const bool post = opts_.allow_post;
  const auto route = [&]() -> const HttpHandler* {
    if (const auto it = opts_.routes.find(req.path); it != opts_.routes.end()) return &it->second;
    return opts_.fallback ? &opts_.fallback : nullptr;
  };
  if (end == std::string::npos) {
    resp = {431, "text/plain; charset=utf-8", "request head too large\n"};
  } else if (!ParseRequestHead(c.in.substr(0, end), req)) {
    resp = {400, "text/plain; charset=utf-8", "malformed request\n"};
  } else if (req.method != "GET" && req.method != "HEAD" && !(post && req.method == "POST")) {
    resp = {405,
            "text/plain; charset=utf-8",
            "method not allowed\n",
            {{"Allow", post ? "GET, HEAD, POST" : "GET, HEAD"}}};
  } else if (req.method == "POST" && !BodyLength(req)) {
    resp = {411, "text/plain; charset=utf-8", "a POST needs a Content-Length\n"};
  } else if (req.method == "POST" && *BodyLength(req) > opts_.max_body_bytes) {
    resp = {413, "text/plain; charset=utf-8", "request body too large\n"};
  } else if (const HttpHandler* handler = route(); handler == nullptr) {
    resp = {404, "text/plain; charset=utf-8", "not found\n"};
  } else {
    if (req.method == "POST") req.body = c.in.substr(end + 4, c.body_len);
    try {
      resp = (*handler)(req);
    } catch (const std::exception& e) {
      log::Error("http", "handler failed", {{"server", opts_.name}, {"error", e.what()}});
      resp = {500, "text/plain; charset=utf-8", "internal error\n"};
    }
  }
  c.head_only = req.method == "HEAD";
  if (resp.stream && c.ssl != nullptr) {
    resp = {500, "text/plain; charset=utf-8", "streams are served over plain HTTP only\n"};
  }
  c.out = SerializeResponse(resp, c.head_only, req.http10);
  c.in.clear();
  c.state = Connection::State::kWriting;
  if (resp.stream && !c.head_only) {
    c.stream = std::move(resp.stream);
    c.state = Connection::State::kStreaming;
  } else if (resp.pieces && !c.head_only) {
    c.pieces = std::move(resp.pieces);
    c.chunked = !req.http10;
  }
}

}  // namespace rollgate::metrics
