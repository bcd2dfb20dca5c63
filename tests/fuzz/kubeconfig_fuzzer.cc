// Fuzz target: kubeconfig YAML, loaded by kube::LoadKubeconfig. The loader reads a file, so each
// input is written to a file in a directory of this process's own (relative certificate and
// token paths resolve there, and find nothing but the input itself).
// Input: the YAML document. It is loaded twice: with its current-context and with --context
// "fuzz".
// Invariants: no exception escapes (yaml-cpp's included); the result is a usable config (an
// http(s) server without a trailing slash, a namespace) or kInvalidArgument naming the file;
// certificate and key data only ever come out as PEM.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "controller/kube/kube_config.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// The per-process scratch file; its directory is removed at exit.
const std::string& InputPath() {
  static const std::string path = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/rollgate-fuzz-kubeconfig.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string dir = templ;
    std::atexit([] {
      std::remove((dir + "/config").c_str());
      ::rmdir(dir.c_str());
    });
    return templ + "/config";
  }();
  return path;
}

void WriteInput(const std::string& path, const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("open");
    std::abort();
  }
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      std::perror("write");
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

bool LooksLikePem(const std::string& s) { return s.find("-----BEGIN") != std::string::npos; }

void Load(const std::string& path, const std::string& context) {
  auto cfg = rollgate::kube::LoadKubeconfig({path, context});
  if (!cfg.ok()) {
    const rollgate::Status& st = cfg.status();
    FUZZ_CHECK(st.code() == rollgate::StatusCode::kInvalidArgument, st.ToString());
    FUZZ_CHECK(rollgate::fuzz::StartsWith(st.message(), "kubeconfig " + path + ": "), st.message());
    return;
  }
  const std::string& server = cfg->server;
  FUZZ_CHECK(rollgate::fuzz::StartsWith(server, "https://") ||
                 rollgate::fuzz::StartsWith(server, "http://"),
             server);
  FUZZ_CHECK(server.back() != '/', server);
  FUZZ_CHECK(server != "https://" && server != "http://", server);
  FUZZ_CHECK(!cfg->namespace_.empty(), cfg->source);
  FUZZ_CHECK(cfg->ca_pem.empty() || LooksLikePem(cfg->ca_pem), cfg->source);
  FUZZ_CHECK(cfg->client_cert_pem.empty() == cfg->client_key_pem.empty(), cfg->source);
  FUZZ_CHECK(cfg->client_cert_pem.empty() || LooksLikePem(cfg->client_cert_pem), cfg->source);
  FUZZ_CHECK(cfg->client_key_pem.empty() || LooksLikePem(cfg->client_key_pem), cfg->source);
  FUZZ_CHECK(!(cfg->insecure_skip_tls_verify && !cfg->ca_pem.empty()), cfg->source);
  if (cfg->token) {
    auto token = cfg->token->Token();
    // A static token is returned as is; a token file may be the input itself, rewritten since.
    if (token.ok()) {
      FUZZ_CHECK(token->find_first_of(std::string("\r\n\0", 3)) == std::string::npos, *token);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kFuzzMaxInput) return -1;
  const std::string& path = InputPath();
  WriteInput(path, data, size);
  Load(path, "");
  Load(path, "fuzz");
  return 0;
}
