#include "tests/fakes/https_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "tests/fakes/openssl_ptr.h"

namespace rollgate::testing {

// One accepted connection. The connection thread owns `ssl` and closes `fd`; other threads only
// shut the socket down (to wake the thread), under HttpsServer::mu_ while `fd` is still open.
struct Connection {
  int fd = -1;         // guarded by HttpsServer::mu_ when written or read by another thread
  bool done = false;   // guarded by HttpsServer::mu_
  SSL* ssl = nullptr;  // connection thread only
  bool is_head = false;
  std::thread thread;
};

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "HttpsServer: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  std::abort();
}

BioPtr MemBio(const std::string& data) {
  BIO* bio = BIO_new_mem_buf(data.data(), static_cast<int>(data.size()));
  if (bio == nullptr) Die("BIO_new_mem_buf");
  return BioPtr(bio);
}

void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, nullptr) != 0) Die("sigaction(SIGPIPE)");
  });
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
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
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query-string decoding as Go's url.QueryUnescape: %XX escapes and '+' as a space; a malformed
// escape is kept as it is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void ParseQuery(std::string_view query, std::map<std::string, std::string>& out) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      out[PercentDecode(pair)] = "";
    } else {
      out[PercentDecode(pair.substr(0, eq))] = PercentDecode(pair.substr(eq + 1));
    }
  }
}

enum class ReadResult { kOk, kClosedNotify, kClosed, kBad };

// Appends what SSL_read returns to `buf`. On failure, says whether the peer sent close_notify.
bool ReadMore(SSL* ssl, std::string& buf, bool& close_notify) {
  char tmp[16384];
  ERR_clear_error();
  int n = SSL_read(ssl, tmp, sizeof tmp);
  if (n <= 0) {
    close_notify = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
    return false;
  }
  buf.append(tmp, static_cast<std::size_t>(n));
  return true;
}

ReadResult ReadRequest(SSL* ssl, std::string& buf, Request& req, bool& keep_alive) {
  constexpr std::size_t kMaxHead = std::size_t{64} * 1024;
  constexpr std::size_t kMaxBody = std::size_t{256} * 1024 * 1024;
  bool close_notify = false;
  std::size_t head_end = 0;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (buf.size() > kMaxHead) return ReadResult::kBad;
    if (!ReadMore(ssl, buf, close_notify)) {
      return close_notify ? ReadResult::kClosedNotify : ReadResult::kClosed;
    }
  }
  std::string_view head(buf.data(), head_end);

  std::size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ReadResult::kBad;
  req.method = std::string(line.substr(0, sp1));
  req.path = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  // A copy: `buf` may grow (and move) while the body is read below.
  const std::string version(line.substr(sp2 + 1));
  if (req.method.empty() || req.path.empty() || version.substr(0, 5) != "HTTP/") {
    return ReadResult::kBad;
  }
  std::size_t qmark = req.path.find('?');
  req.target_path = req.path.substr(0, qmark);
  if (qmark != std::string::npos)
    ParseQuery(std::string_view(req.path).substr(qmark + 1), req.query);

  while (!head.empty()) {
    eol = head.find("\r\n");
    std::string_view header = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    std::size_t colon = header.find(':');
    if (colon == std::string_view::npos || colon == 0) return ReadResult::kBad;
    std::string name = Lower(header.substr(0, colon));
    std::string value(Trim(header.substr(colon + 1)));
    auto [it, inserted] = req.headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  if (req.headers.count("transfer-encoding") != 0) return ReadResult::kBad;  // unsupported

  std::size_t length = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
    const std::string& v = it->second;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
    if (ec != std::errc() || ptr != v.data() + v.size() || length > kMaxBody) {
      return ReadResult::kBad;
    }
  }
  std::size_t body_start = head_end + 4;
  while (buf.size() - body_start < length) {
    if (!ReadMore(ssl, buf, close_notify)) return ReadResult::kClosed;
  }
  req.body = buf.substr(body_start, length);
  buf.erase(0, body_start + length);

  std::string connection;
  if (auto it = req.headers.find("connection"); it != req.headers.end()) {
    connection = Lower(it->second);
  }
  if (version == "HTTP/1.0") {
    keep_alive = connection.find("keep-alive") != std::string::npos;
  } else {
    keep_alive = connection.find("close") == std::string::npos;
  }
  return ReadResult::kOk;
}

std::string PeerCommonName(SSL* ssl) {
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509_NAME* name = X509_get_subject_name(peer);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ResponseWriter

bool ResponseWriter::Write(std::string_view bytes) {
  if (write_failed_) return false;
  if (server_->stopping()) {
    write_failed_ = true;
    return false;
  }
  while (!bytes.empty()) {
    ERR_clear_error();
    int n = SSL_write(conn_->ssl, bytes.data(),
                      static_cast<int>(std::min<std::size_t>(bytes.size(), INT_MAX)));
    if (n <= 0) {
      write_failed_ = true;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string ResponseWriter::Head(
    int status, const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& extra_headers, bool chunked,
    std::size_t content_length) const {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
  if (!content_type.empty()) out += "Content-Type: " + content_type + "\r\n";
  if (chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (content_length != std::string::npos) {
    out += "Content-Length: " + std::to_string(content_length) + "\r\n";
  }
  for (const auto& [name, value] : extra_headers) {
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (close_) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

bool ResponseWriter::Expect(State state, const char* call) {
  if (state_ == state) return true;
  ADD_FAILURE() << "HttpsServer: ResponseWriter::" << call << " called out of order (state "
                << static_cast<int>(state_) << ")";
  return false;
}

void ResponseWriter::Respond(
    int status, const std::string& body, const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  if (!Expect(State::kNone, "Respond")) return;
  state_ = State::kResponded;
  bool no_body = status < 200 || status == 204 || status == 304;
  std::string out =
      Head(status, content_type, extra_headers, false, no_body ? std::string::npos : body.size());
  if (!no_body && !conn_->is_head) out += body;
  Write(out);
}

void ResponseWriter::StartChunked(
    int status, const std::string& content_type,
    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  if (!Expect(State::kNone, "StartChunked")) return;
  state_ = State::kChunked;
  Write(Head(status, content_type, extra_headers, true, std::string::npos));
}

bool ResponseWriter::WriteChunk(std::string_view data) {
  if (!Expect(State::kChunked, "WriteChunk")) return false;
  if (data.empty()) return !client_gone();  // an empty chunk would end the stream
  char size[32];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<std::size_t>(n));
  out.append(data);
  out += "\r\n";
  return Write(out);
}

void ResponseWriter::EndChunked() {
  if (!Expect(State::kChunked, "EndChunked")) return;
  state_ = State::kChunkedEnded;
  Write("0\r\n\r\n");
}

void ResponseWriter::Abort() {
  state_ = State::kAborted;
  write_failed_ = true;
  ::shutdown(conn_->fd, SHUT_RDWR);
}

bool ResponseWriter::WriteRaw(std::string_view bytes) {
  if (state_ == State::kAborted) return false;
  state_ = State::kRaw;
  close_ = true;
  return Write(bytes);
}

void ResponseWriter::Close() { close_ = true; }

bool ResponseWriter::stopping() const { return server_->stopping(); }

bool ResponseWriter::client_gone() const {
  if (write_failed_ || server_->stopping()) return true;
  pollfd p{conn_->fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void ResponseWriter::Finish() {
  switch (state_) {
    case State::kNone:
      close_ = true;
      Respond(500, "HttpsServer: the handler wrote no response\n", "text/plain");
      break;
    case State::kChunked:
      EndChunked();
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// HttpsServer

HttpsServer::HttpsServer(const Options& opts, Handler handler) : handler_(std::move(handler)) {
  IgnoreSigpipe();

  ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!ctx_) Die("SSL_CTX_new");
  {
    BioPtr bio = MemBio(opts.server.cert);
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) Die("PEM_read_bio_X509 (server certificate)");
    if (SSL_CTX_use_certificate(ctx_.get(), cert.get()) != 1) Die("SSL_CTX_use_certificate");
  }
  {
    BioPtr bio = MemBio(opts.server.key);
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) Die("PEM_read_bio_PrivateKey (server key)");
    if (SSL_CTX_use_PrivateKey(ctx_.get(), key.get()) != 1) Die("SSL_CTX_use_PrivateKey");
    if (SSL_CTX_check_private_key(ctx_.get()) != 1) Die("SSL_CTX_check_private_key");
  }
  static const unsigned char kSessionContext[] = "rollgate-test";
  if (SSL_CTX_set_session_id_context(ctx_.get(), kSessionContext, sizeof kSessionContext - 1) !=
      1) {
    Die("SSL_CTX_set_session_id_context");
  }
  if (!opts.client_ca_pem.empty()) {
    BioPtr bio = MemBio(opts.client_ca_pem);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx_.get());
    int count = 0;
    while (X509Ptr ca{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) Die("X509_STORE_add_cert");
      if (SSL_CTX_add_client_CA(ctx_.get(), ca.get()) != 1) Die("SSL_CTX_add_client_CA");
      ++count;
    }
    ERR_clear_error();  // the read past the last certificate
    if (count == 0) Die("PEM_read_bio_X509 (client CA)");
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    verify_clients_ = true;
  }

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) Die("socket");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(0x7f000001U);  // 127.0.0.1
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    Die("bind(127.0.0.1:0)");
  }
  if (::listen(listen_fd_, SOMAXCONN) != 0) Die("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Die("getsockname");
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

HttpsServer::~HttpsServer() {
  stopping_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();

  std::list<std::unique_ptr<Connection>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& conn : conns_) {
      if (conn->fd >= 0) ::shutdown(conn->fd, SHUT_RDWR);
    }
    conns.swap(conns_);
  }
  for (auto& conn : conns) {
    if (conn->thread.joinable()) conn->thread.join();
  }
  ::close(listen_fd_);
}

std::string HttpsServer::url() const { return "https://127.0.0.1:" + std::to_string(port_); }

std::vector<Request> HttpsServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

std::size_t HttpsServer::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.size();
}

void HttpsServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, 100);
    ReapFinished();
    if (ready <= 0 || stopping_.load()) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (stopping_.load()) {
      ::close(fd);
      break;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection* raw = conn.get();
    std::lock_guard<std::mutex> lock(mu_);
    conns_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void HttpsServer::ReapFinished() {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      auto next = std::next(it);
      if ((*it)->done) finished.splice(finished.end(), conns_, it);
      it = next;
    }
  }
  for (auto& conn : finished) {
    if (conn->thread.joinable()) conn->thread.join();
  }
}

void HttpsServer::Serve(Connection* conn) {
  SSL* ssl = SSL_new(ctx_.get());
  if (ssl == nullptr) Die("SSL_new");
  conn->ssl = ssl;
  if (SSL_set_fd(ssl, conn->fd) != 1) Die("SSL_set_fd");

  bool close_notify = false;  // end with an orderly TLS close
  ERR_clear_error();
  if (SSL_accept(ssl) != 1) {
    handshake_failures_.fetch_add(1);
  } else {
    std::string client_cn = verify_clients_ ? PeerCommonName(ssl) : "";
    const char* server_name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const std::string sni = server_name != nullptr ? server_name : "";
    std::string buf;
    while (!stopping_.load()) {
      Request req;
      bool keep_alive = true;
      ReadResult read = ReadRequest(ssl, buf, req, keep_alive);
      if (read == ReadResult::kClosedNotify) {
        close_notify = true;
        break;
      }
      if (read == ReadResult::kClosed) break;
      ResponseWriter writer(conn, this, !keep_alive);
      if (read == ReadResult::kBad) {
        writer.Close();
        writer.Respond(400, "HttpsServer: malformed or unsupported request\n", "text/plain");
        close_notify = true;
        break;
      }
      req.client_cn = client_cn;
      req.sni = sni;
      conn->is_head = req.method == "HEAD";
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
      }
      try {
        handler_(req, writer);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "HttpsServer: handler threw: " << e.what();
        writer.Close();
      } catch (...) {
        ADD_FAILURE() << "HttpsServer: handler threw";
        writer.Close();
      }
      if (writer.state_ == ResponseWriter::State::kAborted) break;
      writer.Finish();
      if (writer.write_failed_) break;
      if (writer.close_) {
        close_notify = true;
        break;
      }
    }
  }

  if (close_notify && !stopping_.load()) {
    ERR_clear_error();
    SSL_shutdown(ssl);
    ::shutdown(conn->fd, SHUT_WR);
    // Lingering close: read what the client still sends until it closes, so that closing a
    // socket with unread data (which sends a reset) cannot destroy the response in flight.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    char sink[4096];
    while (!stopping_.load() && std::chrono::steady_clock::now() < deadline) {
      pollfd p{conn->fd, POLLIN, 0};
      if (::poll(&p, 1, 50) < 0) break;
      if (p.revents == 0) continue;
      if (::recv(conn->fd, sink, sizeof sink, 0) <= 0) break;
    }
  }
  SSL_free(ssl);
  conn->ssl = nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  ::close(conn->fd);
  conn->fd = -1;
  conn->done = true;
}

}  // namespace rollgate::testing
