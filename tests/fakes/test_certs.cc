#include "tests/fakes/test_certs.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "tests/fakes/openssl_ptr.h"

namespace rollgate::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test_certs: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  std::abort();
}

template <typename T>
T* CheckPtr(T* p, const char* what) {
  if (p == nullptr) Die(what);
  return p;
}

void CheckOk(int rc, const char* what) {
  if (rc <= 0) Die(what);
}

PkeyPtr NewKey() {
  char curve[] = "P-256";  // EVP_PKEY_Q_keygen reads the variadic argument as char*
  return PkeyPtr(CheckPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), "EVP_PKEY_Q_keygen"));
}

void AddNameEntry(X509_NAME* name, const char* field, const std::string& value) {
  CheckOk(
      X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0),
      "X509_NAME_add_entry_by_txt");
}

void AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509ExtensionPtr ext(
      CheckPtr(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value), "X509V3_EXT_nconf_nid"));
  CheckOk(X509_add_ext(cert, ext.get(), -1), "X509_add_ext");
}

enum class Kind { kCa, kServer, kClient };

struct CertSpec {
  Kind kind;
  std::string cn;
  std::string org;  // empty: none
  std::string san;  // kServer only; empty: "IP:127.0.0.1,DNS:localhost"
};

// Builds a certificate for `key`, signed by `issuer_key` under `issuer` (null: self-signed).
X509Ptr MakeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(CheckPtr(X509_new(), "X509_new"));
  X509* x = cert.get();
  CheckOk(X509_set_version(x, X509_VERSION_3), "X509_set_version");

  uint64_t serial = 0;
  CheckOk(RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial), "RAND_bytes");
  serial = (serial >> 1) | 1;  // positive and non-zero
  CheckOk(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial), "ASN1_INTEGER_set_uint64");

  CheckPtr(X509_gmtime_adj(X509_getm_notBefore(x), -60L * 60), "X509_gmtime_adj");
  CheckPtr(X509_gmtime_adj(X509_getm_notAfter(x), 24L * 60 * 60), "X509_gmtime_adj");

  X509_NAME* subject = X509_get_subject_name(x);
  if (!spec.org.empty()) AddNameEntry(subject, "O", spec.org);
  AddNameEntry(subject, "CN", spec.cn);
  CheckOk(X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : subject),
          "X509_set_issuer_name");
  CheckOk(X509_set_pubkey(x, key), "X509_set_pubkey");

  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  switch (spec.kind) {
    case Kind::kCa:
      AddExt(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
      AddExt(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
      AddExt(x, &ctx, NID_subject_key_identifier, "hash");
      break;
    case Kind::kServer:
      AddExt(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
      AddExt(x, &ctx, NID_key_usage, "critical,digitalSignature");
      AddExt(x, &ctx, NID_ext_key_usage, "serverAuth");
      AddExt(x, &ctx, NID_subject_alt_name,
             spec.san.empty() ? "IP:127.0.0.1,DNS:localhost" : spec.san.c_str());
      AddExt(x, &ctx, NID_subject_key_identifier, "hash");
      AddExt(x, &ctx, NID_authority_key_identifier, "keyid:always");
      break;
    case Kind::kClient:
      AddExt(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
      AddExt(x, &ctx, NID_key_usage, "critical,digitalSignature");
      AddExt(x, &ctx, NID_ext_key_usage, "clientAuth");
      AddExt(x, &ctx, NID_subject_key_identifier, "hash");
      AddExt(x, &ctx, NID_authority_key_identifier, "keyid:always");
      break;
  }
  CheckOk(X509_sign(x, issuer_key, EVP_sha256()), "X509_sign");
  return cert;
}

std::string DrainBio(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  if (!out.empty()) {
    CheckOk(BIO_read(bio, out.data(), static_cast<int>(out.size())), "BIO_read");
  }
  return out;
}

Pem ToPem(X509* cert, EVP_PKEY* key) {
  BioPtr bio(CheckPtr(BIO_new(BIO_s_mem()), "BIO_new"));
  Pem pem;
  CheckOk(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
  pem.cert = DrainBio(bio.get());
  CheckOk(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
          "PEM_write_bio_PrivateKey");
  pem.key = DrainBio(bio.get());
  return pem;
}

}  // namespace

TestPki GenerateTestPki(const std::string& client_cn) {
  TestPki pki;

  PkeyPtr ca_key = NewKey();
  X509Ptr ca =
      MakeCert({Kind::kCa, "rollgate-test-ca", "", ""}, ca_key.get(), nullptr, ca_key.get());
  pki.ca = ToPem(ca.get(), ca_key.get());

  PkeyPtr server_key = NewKey();
  X509Ptr server = MakeCert({Kind::kServer, "rollgate-test-server", "", ""}, server_key.get(),
                            ca.get(), ca_key.get());
  pki.server = ToPem(server.get(), server_key.get());

  PkeyPtr client_key = NewKey();
  X509Ptr client = MakeCert({Kind::kClient, client_cn, "system:masters", ""}, client_key.get(),
                            ca.get(), ca_key.get());
  pki.client = ToPem(client.get(), client_key.get());

  PkeyPtr other_key = NewKey();
  X509Ptr other =
      MakeCert({Kind::kCa, "rollgate-other-ca", "", ""}, other_key.get(), nullptr, other_key.get());
  pki.other_ca = ToPem(other.get(), other_key.get());
  return pki;
}

const TestPki& SharedTestPki() {
  static const TestPki pki = GenerateTestPki();
  return pki;
}

Pem IssueServerCert(const Pem& ca, const std::string& san) {
  BioPtr cert_bio(
      CheckPtr(BIO_new_mem_buf(ca.cert.data(), static_cast<int>(ca.cert.size())), "BIO_new"));
  X509Ptr ca_cert(
      CheckPtr(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), "PEM_read_bio_X509"));
  BioPtr key_bio(
      CheckPtr(BIO_new_mem_buf(ca.key.data(), static_cast<int>(ca.key.size())), "BIO_new"));
  PkeyPtr ca_key(CheckPtr(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr),
                          "PEM_read_bio_PrivateKey"));
  PkeyPtr key = NewKey();
  X509Ptr cert = MakeCert({Kind::kServer, "rollgate-test-server", "", san}, key.get(),
                          ca_cert.get(), ca_key.get());
  return ToPem(cert.get(), key.get());
}

}  // namespace rollgate::testing
