// The cpprestsdk implementation of HttpTransport: the only file that includes cpprest's HTTP
// client headers (see http_transport.h). TLS is configured from memory with OpenSSL: the default
// certificate store is replaced by one holding only the configured CA(s).
//
// Destruction is deterministic: cpprest finishes a request on its thread pool after the caller
// has its result (the request task completes first; then the response body stream is closed by a
// chain of pplx continuations, each scheduled as a heap-allocated chore). A chore still queued
// when the process exits is dropped with the pool and leaks (LeakSanitizer reports it). So the
// transport counts the chores (ChoreCounter, pplx's ambient scheduler) and remembers each
// client's communicator, which every request in flight keeps alive; its destructor waits until
// the communicators are gone (every request has run its last handler, so its chores are
// scheduled) and then until no chore is pending (each chore schedules its successors before it
// ends, so the count reaches zero only when the chains are done).
// Boost.Asio's socket code (instantiated here by SetKeepalive's socket open) trips GCC's
// -Wnull-dereference inside Asio's own scheduler: silence it for the library's headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#pragma GCC diagnostic pop
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pplx/threadpool.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "controller/common/log.h"
#include "controller/kube/http_transport.h"

namespace rollgate::kube {
namespace {

namespace http = web::http;
namespace client = web::http::client;

// How long a transport's destructor waits for cpprest to finish its requests' work.
constexpr std::chrono::seconds kDrainTimeout{10};

// pplx's ambient scheduler: forwards every chore to cpprest's default scheduler (its thread pool)
// and counts the chores scheduled but not yet finished. Installed once per process, before the
// first request; never destroyed (pool threads may run chores during exit).
// Thread-safety: schedule and WaitIdle may be called from any thread.
// pplx::scheduler_interface has no virtual destructor; a ChoreCounter is only ever destroyed
// through its own type (it is not destroyed at all), so the warning does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class ChoreCounter final : public pplx::scheduler_interface {
 public:
  ChoreCounter() : next_(std::make_shared<pplx::default_scheduler_t>()) {}
  ChoreCounter(const ChoreCounter&) = delete;
  ChoreCounter& operator=(const ChoreCounter&) = delete;
  virtual ~ChoreCounter() = default;

  void schedule(pplx::TaskProc_t proc, void* param) override {
    auto chore = std::make_unique<Chore>(Chore{proc, param, this});
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_;
    }
    try {
      next_->schedule(&Run, chore.get());
      static_cast<void>(chore.release());  // Run owns it now
    } catch (...) {
      Finished();
      throw;
    }
  }

  // Waits until no chore is pending but the ones the calling thread is running (a transport may
  // be destroyed from inside a continuation). False when `deadline` passed first.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    const int own = running_here_;
    return idle_.wait_until(lock, deadline, [&] { return pending_ <= own; });
  }

 private:
  struct Chore {
    pplx::TaskProc_t proc;
    void* param;
    ChoreCounter* counter;
  };

  static void Run(void* p) {
    const std::unique_ptr<Chore> chore(static_cast<Chore*>(p));
    ++running_here_;
    try {
      chore->proc(chore->param);
    } catch (...) {
      --running_here_;
      chore->counter->Finished();
      throw;
    }
    --running_here_;
    chore->counter->Finished();
  }

  void Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    --pending_;
    idle_.notify_all();
  }

  static thread_local int running_here_;  // chores running on this thread (nested: inlined)
  std::shared_ptr<pplx::scheduler_interface> next_;
  std::mutex mu_;
  std::condition_variable idle_;
  int pending_ = 0;  // guarded by mu_
};
#pragma GCC diagnostic pop
thread_local int ChoreCounter::running_here_ = 0;

// The process's ChoreCounter, or null when pplx's ambient scheduler was already in use before the
// first transport (then destruction waits for the requests' handlers only).
ChoreCounter* g_chores = nullptr;

// Installs the ChoreCounter; called once, before the first request.
void InstallChoreCounter() {
  // Never destroyed: pplx keeps its own reference, and chores may run while the process exits.
  static auto* const counter = new std::shared_ptr<ChoreCounter>(std::make_shared<ChoreCounter>());
  try {
    pplx::set_ambient_scheduler(*counter);
    g_chores = counter->get();
  } catch (const std::exception& e) {
    log::Debug("transport", "pplx scheduler already in use: destruction waits for handlers only",
               {{"error", e.what()}});
  }
}

// A pass-through pipeline stage added to every client. Its next stage is the client's
// communicator, which each request in flight holds (through its request context) until its last
// handler has run: a weak reference to it tells when the client's last request is over.
class CommunicatorHandle final : public http::http_pipeline_stage {
 public:
  pplx::task<http::http_response> propagate(http::http_request request) override {
    return next_stage()->propagate(request);
  }
  std::weak_ptr<http::http_pipeline_stage> communicator() const { return next_stage(); }
};

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioDeleter> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Parses every certificate of a PEM bundle; empty on malformed input.
std::vector<std::unique_ptr<X509, X509Deleter>> ParseCerts(const std::string& pem) {
  std::vector<std::unique_ptr<X509, X509Deleter>> out;
  auto bio = MemBio(pem);
  while (bio) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    out.emplace_back(x);
  }
  ERR_clear_error();  // the loop ends on "no start line"
  return out;
}

bool KeyParses(const std::string& pem) {
  auto bio = MemBio(pem);
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  return key != nullptr;
}

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The body of a response that is larger than a request's max_body_bytes.
class BodyTooLarge final : public std::runtime_error {
 public:
  explicit BodyTooLarge(size_t max) : std::runtime_error("response larger than " + Human(max)) {}

 private:
  static std::string Human(size_t n) {
    if (n >= (size_t{1} << 20) && n % (size_t{1} << 20) == 0) {
      return std::to_string(n >> 20) + " MiB";
    }
    return std::to_string(n) + " bytes";
  }
};

// Reads a response body of at most `max` bytes, chunk by chunk as it arrives; a longer one cancels
// the request (closing the connection, so nothing more is read into memory) and fails
// BodyTooLarge.
pplx::task<std::string> ReadCapped(
    const concurrency::streams::istream& body,
    const std::shared_ptr<concurrency::streams::container_buffer<std::string>>& buf, size_t total,
    size_t max, const pplx::cancellation_token_source& cts) {
  constexpr size_t kChunk = size_t{64} * 1024;
  return body.read(*buf, kChunk)
      .then([body, buf, total, max, cts](size_t n) -> pplx::task<std::string> {
        const size_t read = total + n;  // the buffer's size may run ahead of what was written
        if (read > max) {
          cts.cancel();
          throw BodyTooLarge(max);
        }
        if (n == 0) {
          std::string out = std::move(buf->collection());
          out.resize(read);
          return pplx::task_from_result(std::move(out));
        }
        return ReadCapped(body, buf, read, max, cts);
      });
}

// Enables TCP keepalive on a connection's socket (the native handle cpprest's asio client passes:
// the ssl stream for https, the socket for http). A socket not yet connected is opened first, in
// the address family of the server's first address, which cpprest connects to first.
void SetKeepalive(const KeepaliveOptions& ka, bool tls, const std::string& host,
                  client::native_handle handle) {
  using boost::asio::ip::tcp;
  tcp::socket* sock =
      tls ? &static_cast<boost::asio::ssl::stream<tcp::socket&>*>(handle)->next_layer()
          : static_cast<tcp::socket*>(handle);
  if (!sock->is_open()) {
    const std::string name =
        host.size() > 1 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(name.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
      return;  // cpprest reports the resolution failure itself
    }
    const bool v6 = found->ai_family == AF_INET6;
    freeaddrinfo(found);
    boost::system::error_code ec;
    sock->open(v6 ? tcp::v6() : tcp::v4(), ec);
    if (ec) return;
  }
  const int fd = sock->native_handle();
  const int on = 1;
  const int idle = static_cast<int>(ka.idle.count());
  const int interval = static_cast<int>(ka.interval.count());
  const int count = ka.count;
  // Best effort: a failure leaves the connection without keepalive, as before.
  (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

bool IsIpAddress(const std::string& name) {
  in6_addr addr{};
  return inet_pton(AF_INET, name.c_str(), &addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), &addr) == 1;
}

// Leaves OpenSSL's verdict on each certificate as it is.
int KeepVerdict(int ok, X509_STORE_CTX* /*store_ctx*/) { return ok; }

// OpenSSL's application verification function for a transport with TlsConfig::server_name: it
// replaces the chain verification of every handshake, so that the leaf certificate's name is
// checked against `server_name` (by OpenSSL itself, as part of the chain verification) instead of
// the URL's host. cpprest's own verify callback, which checks the URL's host, is dropped for this
// verification only; the chain is still verified against the configured CA(s).
int VerifyAgainstServerName(X509_STORE_CTX* store_ctx, void* arg) {
  const std::string& name = *static_cast<const std::string*>(arg);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(store_ctx);
  if (IsIpAddress(name)) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) return 0;
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, name.data(), name.size()) != 1) return 0;
  }
  X509_STORE_CTX_set_verify_cb(store_ctx, &KeepVerdict);
  return X509_verify_cert(store_ctx);
}

// Sends `name` as the TLS server name (SNI) of a connection not yet handshaken; the handle is the
// ssl stream cpprest passes to the native-handle options.
void SetSni(const std::string& name, client::native_handle handle) {
  using boost::asio::ip::tcp;
  SSL* ssl = static_cast<boost::asio::ssl::stream<tcp::socket&>*>(handle)->native_handle();
  if (SSL_is_init_finished(ssl) != 0) return;  // a pooled connection: handshaken already
  // SSL_set_tlsext_host_name without its C cast; OpenSSL copies the name.
  std::string copy = name;
  (void)SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, copy.data());
}

class CpprestTransport final : public HttpTransport {
 public:
  explicit CpprestTransport(TransportOptions opts)
      : opts_(std::move(opts)),
        server_name_(std::make_unique<std::string>(opts_.tls.server_name)) {}
  CpprestTransport(const CpprestTransport&) = delete;
  CpprestTransport& operator=(const CpprestTransport&) = delete;

  // Waits (at most kDrainTimeout) until cpprest has finished all the work of this transport's
  // requests, so that nothing of it is pending when the transport, or the process, goes away.
  // Every Send and Stream call must have returned.
  ~CpprestTransport() override {
    std::vector<std::weak_ptr<http::http_pipeline_stage>> communicators;
    {
      std::lock_guard<std::mutex> lock(mu_);
      clients_.clear();
      communicators.swap(communicators_);
    }
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    bool drained = true;
    for (const auto& c : communicators) {
      while (!c.expired() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      drained = drained && c.expired();
    }
    if (g_chores != nullptr) drained = g_chores->WaitIdle(deadline) && drained;
    if (!drained) {
      log::Warn("transport", "cpprest work still pending when the transport was destroyed",
                {{"server", opts_.server}});
    }
  }

  Result<HttpResponse> Send(const HttpRequest& req, const CancelToken* cancel) override {
    pplx::cancellation_token_source cts;
    CancelToken::Registration reg;
    if (cancel != nullptr) reg = cancel->OnCancel([&cts] { cts.cancel(); });
    try {
      auto c = ClientFor(req.timeout);
      // The whole exchange, body included, within req.timeout: cpprest's own timer restarts with
      // every byte, so a server dripping its response would hold the request (and the reconcile
      // worker waiting on it) for ever.
      const size_t max = req.max_body_bytes;
      pplx::task<HttpResponse> exchange =
          c->request(BuildRequest(req), cts.get_token())
              .then([max, cts](const http::http_response& resp) {
                if (max == 0) {
                  return resp.extract_string(true).then([resp](const std::string& body) {
                    HttpResponse out = ResponseHead(resp);
                    out.body = body;
                    return out;
                  });
                }
                if (resp.headers().content_length() > max) {  // known too large: not read at all
                  cts.cancel();
                  throw BodyTooLarge(max);
                }
                auto buf = std::make_shared<concurrency::streams::container_buffer<std::string>>();
                return ReadCapped(resp.body(), buf, 0, max, cts).then([resp](std::string body) {
                  HttpResponse out = ResponseHead(resp);
                  out.body = std::move(body);
                  return out;
                });
              });
      auto finished = std::make_shared<std::promise<void>>();
      std::future<void> done = finished->get_future();
      exchange.then([finished](const pplx::task<HttpResponse>& t) {
        try {
          (void)t.get();  // observed here, so a failure after the deadline is not "unobserved"
        } catch (...) {   // NOLINT(bugprone-empty-catch): reported by exchange.get() below
        }
        finished->set_value();
      });
      if (done.wait_for(req.timeout) == std::future_status::timeout) {
        cts.cancel();  // closes the connection; the exchange then ends at once
        (void)done.wait_for(kDrainTimeout);
        if (cancel != nullptr && cancel->cancelled()) {
          return Status(StatusCode::kCancelled, req.method + " cancelled");
        }
        return Status(StatusCode::kTimeout, req.method + " " + opts_.server +
                                                ": no complete response within " +
                                                std::to_string(req.timeout.count()) + "ms");
      }
      return exchange.get();
    } catch (const std::exception& e) {
      return Failure(req, e, cancel != nullptr && cancel->cancelled());
    }
  }

  Result<HttpResponse> Stream(const HttpRequest& req,
                              const std::function<bool(std::string_view)>& on_line,
                              const CancelToken& cancel) override {
    pplx::cancellation_token_source cts;
    auto reg = cancel.OnCancel([&cts] { cts.cancel(); });
    try {
      // A stream gets a client of its own: its inactivity timeout is the stream's, and its
      // connection is never shared with short requests.
      client::http_client c(base_uri(), Config(req.timeout));
      {
        std::lock_guard<std::mutex> lock(mu_);
        Track(c);
      }
      http::http_response resp = c.request(BuildRequest(req), cts.get_token()).get();
      HttpResponse out = ResponseHead(resp);
      if (out.status < 200 || out.status > 299) {
        out.body = resp.extract_string(true).get();
        return out;
      }
      concurrency::streams::istream body = resp.body();
      while (true) {
        concurrency::streams::container_buffer<std::string> line;
        const size_t n = body.read_line(line).get();
        if (cancel.cancelled()) return Status(StatusCode::kCancelled, "stream cancelled");
        if (n == 0 && body.is_eof()) break;
        std::string& text = line.collection();
        if (!text.empty() && text.back() == '\r') text.pop_back();
        if (text.empty()) continue;
        if (!on_line(text)) {
          cts.cancel();  // closes the connection
          break;
        }
      }
      return out;
    } catch (const std::exception& e) {
      return Failure(req, e, cancel.cancelled());
    }
  }

  // Configures the TLS context: only the configured CA is trusted; client cert/key from memory.
  void SetupTls(boost::asio::ssl::context& ctx) const {
    SSL_CTX* native = ctx.native_handle();
    X509_STORE* store = X509_STORE_new();
    for (auto& cert : ParseCerts(opts_.tls.ca_pem)) X509_STORE_add_cert(store, cert.get());
    SSL_CTX_set_cert_store(native, store);  // takes ownership; the default paths are gone
    if (!opts_.tls.client_cert_pem.empty()) {
      ctx.use_certificate_chain(
          boost::asio::buffer(opts_.tls.client_cert_pem.data(), opts_.tls.client_cert_pem.size()));
      ctx.use_private_key(
          boost::asio::buffer(opts_.tls.client_key_pem.data(), opts_.tls.client_key_pem.size()),
          boost::asio::ssl::context::pem);
    }
    if (!server_name_->empty()) {
      SSL_CTX_set_cert_verify_callback(native, &VerifyAgainstServerName, server_name_.get());
    }
  }

 private:
  web::uri base_uri() const { return web::uri(opts_.server); }

  client::http_client_config Config(std::chrono::milliseconds timeout) const {
    client::http_client_config cfg;
    cfg.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    cfg.set_validate_certificates(!opts_.tls.insecure_skip_verify);
    // Never follow a redirect: credentials (the bearer token, basic auth) would follow a Location
    // to another host. A 3xx is returned to the caller as it is.
    cfg.set_max_redirects(0);
    cfg.set_https_to_http_redirects(false);
    const web::uri base = base_uri();
    const bool tls = base.scheme() == "https";
    std::string sni;  // sent by SetSni instead of cpprest, which would send the URL's host
    if (tls && !server_name_->empty()) {
      cfg.set_tlsext_sni_enabled(false);
      if (!IsIpAddress(*server_name_)) sni = *server_name_;  // RFC 6066: no IP addresses
    }
    if (opts_.keepalive.enabled || !sni.empty()) {
      cfg.set_nativehandle_options([ka = opts_.keepalive, tls, host = base.host(),
                                    sni = std::move(sni)](client::native_handle h) {
        if (!sni.empty()) SetSni(sni, h);
        if (ka.enabled) SetKeepalive(ka, tls, host, h);
      });
    }
    cfg.set_ssl_context_callback([this](boost::asio::ssl::context& ctx) { SetupTls(ctx); });
    return cfg;
  }

  // Plain requests share one client (and its connection pool) per distinct timeout.
  std::shared_ptr<client::http_client> ClientFor(std::chrono::milliseconds timeout) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = clients_[timeout.count()];
    if (!slot) {
      slot = std::make_shared<client::http_client>(base_uri(), Config(timeout));
      Track(*slot);
    }
    return slot;
  }

  // Remembers the client's communicator for the destructor. Called with mu_ held.
  void Track(client::http_client& c) {
    auto handle = std::make_shared<CommunicatorHandle>();
    c.add_handler(handle);
    std::erase_if(communicators_, [](const auto& w) { return w.expired(); });
    communicators_.push_back(handle->communicator());
  }

  http::http_request BuildRequest(const HttpRequest& req) const {
    http::http_request r(http::method(req.method));
    r.set_request_uri(web::uri(req.path));
    auto& h = r.headers();
    if (!opts_.user_agent.empty()) h.add("User-Agent", opts_.user_agent);
    for (const auto& [k, v] : req.headers) h.add(k, v);
    if (!req.body.empty() || !req.content_type.empty()) {
      r.set_body(req.body,
                 req.content_type.empty() ? std::string("application/json") : req.content_type);
    }
    return r;
  }

  static HttpResponse ResponseHead(const http::http_response& resp) {
    HttpResponse out;
    out.status = resp.status_code();
    for (const auto& [k, v] : resp.headers()) out.headers[Lower(k)] = v;
    return out;
  }

  Status Failure(const HttpRequest& req, const std::exception& e, bool cancelled) const {
    if (const auto* big = dynamic_cast<const BodyTooLarge*>(&e)) {
      return Status(StatusCode::kMalformed, req.method + " " + opts_.server + ": " + big->what());
    }
    if (cancelled) return Status(StatusCode::kCancelled, req.method + " cancelled");
    std::string what = e.what();
    if (const auto* he = dynamic_cast<const http::http_exception*>(&e)) {
      const auto& ec = he->error_code();
      if (ec == std::errc::timed_out) {  // refused and reset stay kTransport: different failures
        return Status(StatusCode::kTimeout, req.method + " " + opts_.server +
                                                ": no response within " +
                                                std::to_string(req.timeout.count()) + "ms");
      }
      // cpprest loses OpenSSL's error category: render the queued OpenSSL errors when present.
      std::string ssl = OpenSslErrors();
      if (!ssl.empty()) what += " (" + ssl + ")";
    }
    if (dynamic_cast<const pplx::task_canceled*>(&e) != nullptr) {
      return Status(StatusCode::kCancelled, req.method + " cancelled");
    }
    return Status(StatusCode::kTransport, req.method + " " + opts_.server + ": " + what);
  }

  TransportOptions opts_;
  // opts_.tls.server_name, at an address OpenSSL's verification function receives (as void*).
  const std::unique_ptr<std::string> server_name_;
  std::mutex mu_;
  std::map<long long, std::shared_ptr<client::http_client>> clients_;  // guarded by mu_
  // The communicators of every client made, while requests may hold them; guarded by mu_.
  std::vector<std::weak_ptr<http::http_pipeline_stage>> communicators_;
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> NewCpprestTransport(const TransportOptions& opts) {
  if (opts.server.rfind("https://", 0) != 0 && opts.server.rfind("http://", 0) != 0) {
    return Status(StatusCode::kInvalidArgument,
                  "server \"" + opts.server + "\" must start with https:// or http://");
  }
  try {
    web::uri u(opts.server);
    if (u.host().empty()) throw std::invalid_argument("no host");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInvalidArgument,
                  "server \"" + opts.server + "\" is not a valid URL: " + e.what());
  }
  if (!opts.tls.ca_pem.empty() && ParseCerts(opts.tls.ca_pem).empty()) {
    return Status(StatusCode::kInvalidArgument, "certificate authority data is not valid PEM");
  }
  if (opts.tls.client_cert_pem.empty() != opts.tls.client_key_pem.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  "a client certificate and a client key must be given together");
  }
  if (!opts.tls.client_cert_pem.empty()) {
    if (ParseCerts(opts.tls.client_cert_pem).empty()) {
      return Status(StatusCode::kInvalidArgument, "client certificate data is not valid PEM");
    }
    if (!KeyParses(opts.tls.client_key_pem)) {
      return Status(StatusCode::kInvalidArgument, "client key data is not a valid PEM key");
    }
  }
  if (opts.tls.insecure_skip_verify) {
    log::Warn("transport", "TLS certificate verification is disabled by the kubeconfig",
              {{"server", opts.server}});
  }
  // cpprest's pool is process-wide; size it once before the first request (default 40 threads).
  static std::once_flag pool_once;
  std::call_once(pool_once, [&] {
    InstallChoreCounter();
    try {
      crossplat::threadpool::initialize_with_threads(
          static_cast<size_t>(std::max(2, opts.threads)));
    } catch (const std::exception&) {
      // Already initialised by an earlier user of cpprest in this process: keep that pool.
    }
  });
  return std::unique_ptr<HttpTransport>(std::make_unique<CpprestTransport>(opts));
}

}  // namespace rollgate::kube
