// Test PKI: in-memory X.509 certificates and EC P-256 keys for HTTPS transport tests. A CA, a
// server certificate for 127.0.0.1/localhost, a client certificate (mTLS, CN=client_cn,
// O=system:masters) and an unrelated second CA for "wrong CA is refused" tests, all PEM-encoded
// and valid from one hour ago to one day from now. Generation aborts the process on any OpenSSL
// failure (test code only).
// Thread-safety: GenerateTestPki may be called concurrently; SharedTestPki generates once per
// process (thread-safe static) and returns an immutable object.
#pragma once

#include <string>

namespace rollgate::testing {

struct Pem {
  std::string cert;  // "-----BEGIN CERTIFICATE-----..."
  std::string key;   // PKCS#8 "-----BEGIN PRIVATE KEY-----..."
};

struct TestPki {
  Pem ca;        // self-signed, basicConstraints CA:TRUE, keyUsage keyCertSign
  Pem server;    // signed by `ca`; SAN IP:127.0.0.1, DNS:localhost; extendedKeyUsage serverAuth
  Pem client;    // signed by `ca`; CN=client_cn, O=system:masters; extendedKeyUsage clientAuth
  Pem other_ca;  // an unrelated self-signed CA: trusts nothing above, is trusted by nothing
};

// Generates a fresh PKI (four EC P-256 keys, a few milliseconds).
TestPki GenerateTestPki(const std::string& client_cn = "rollgate-test");

// The PKI with the default client CN, generated on first use and shared by the whole process.
const TestPki& SharedTestPki();

// A server certificate (fresh key, extendedKeyUsage serverAuth) signed by `ca` (a CA of a TestPki)
// whose only names are `san`, in OpenSSL's subjectAltName syntax: "DNS:remote.example",
// "DNS:a.example,IP:10.0.0.1". For tests of the name a client verifies.
Pem IssueServerCert(const Pem& ca, const std::string& san);

}  // namespace rollgate::testing
