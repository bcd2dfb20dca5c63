#include "controller/metrics/server_tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace rollgate::metrics {
namespace {

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Result<std::shared_ptr<SSL_CTX>> NewContext() {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), &SSL_CTX_free);
  if (!ctx) return Status(StatusCode::kInternal, "metrics TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  return ctx;
}

}  // namespace

Result<std::shared_ptr<SSL_CTX>> LoadServerTls(const std::string& cert_file,
                                               const std::string& key_file) {
  auto ctx = NewContext();
  if (!ctx.ok()) return ctx.status();
  if (SSL_CTX_use_certificate_chain_file(ctx->get(), cert_file.c_str()) != 1) {
    return Status(StatusCode::kInvalidArgument,
                  "metrics TLS: cannot load the certificate " + cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx->get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status(StatusCode::kInvalidArgument,
                  "metrics TLS: cannot load the key " + key_file + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(ctx->get()) != 1) {
    return Status(StatusCode::kInvalidArgument, "metrics TLS: the key " + key_file +
                                                    " does not match the certificate " + cert_file);
  }
  return ctx;
}

Result<std::shared_ptr<SSL_CTX>> SelfSignedServerTls(const std::string& common_name) {
  auto ctx = NewContext();
  if (!ctx.ok()) return ctx.status();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  if (!key || !cert) return Status(StatusCode::kInternal, "metrics TLS: " + OpenSslError());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): OpenSSL takes unsigned bytes
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, cn, -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  const std::string san = "DNS:" + common_name + ",DNS:localhost,IP:127.0.0.1";
  X509V3_CTX v3{};
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
  if (ext != nullptr) {
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0 ||
      SSL_CTX_use_certificate(ctx->get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx->get(), key.get()) != 1) {
    return Status(StatusCode::kInternal, "metrics TLS: self-signed certificate: " + OpenSslError());
  }
  return ctx;
}

}  // namespace rollgate::metrics
