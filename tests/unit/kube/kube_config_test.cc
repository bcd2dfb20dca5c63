#include "controller/kube/kube_config.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/fakes/base64.h"

namespace rollgate::kube {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// Look like PEM to the loader; the inner lines stand in for secret material. Test constants are
// built before main: a failure there ends the test binary, the right outcome.
// NOLINTBEGIN(cert-err58-cpp)
const std::string kCaPem =
    "-----BEGIN CERTIFICATE-----\nQ0EtQ0VSVC1CT0RZ\n-----END CERTIFICATE-----\n";
const std::string kCertPem =
    "-----BEGIN CERTIFICATE-----\nQ0xJRU5ULUNFUlQtQk9EWQ==\n-----END CERTIFICATE-----\n";
const std::string kKeyPem =
    "-----BEGIN PRIVATE KEY-----\nS0VZLVNFQ1JFVC1NQVRFUklBTA==\n-----END PRIVATE KEY-----\n";
// NOLINTEND(cert-err58-cpp)

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

Getenv FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// A kubeconfig with one context "dev" → cluster "c1", user "u". `cluster` and `user` are field
// lines indented by four spaces; `context_extra` likewise.
std::string Config(const std::string& cluster, const std::string& user,
                   const std::string& context_extra = "") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
         "clusters:\n- name: c1\n  cluster:\n" +
         cluster + "contexts:\n- name: dev\n  context:\n    cluster: c1\n    user: u\n" +
         context_extra + "users:\n- name: u\n  user:\n" + user;
}

const std::string kServer = "    server: https://10.0.0.1:6443\n";  // NOLINT(cert-err58-cpp)

// Every test gets its own directory (mkdtemp), removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "rollgate_kcfg_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `content` to dir_/rel (creating folders) and returns the absolute path.
  std::string Write(const std::string& rel, const std::string& content) {
    const fs::path p = fs::path(dir_) / rel;
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    EXPECT_TRUE(out) << "writing " << p;
    return p.string();
  }

  std::string Path(const std::string& rel) const { return (fs::path(dir_) / rel).string(); }

  std::string dir_;
};

// ---------------------------------------------------------------------------------------------
// LoadKubeconfig

class KubeconfigTest : public TempDirTest {};

TEST_F(KubeconfigTest, CurrentContextWithInlineData) {
  const std::string path =
      Write("config", Config("    server: https://10.0.0.1:6443/\n"
                             "    certificate-authority-data: " +
                                 testing::Base64Encode(kCaPem) + "\n",
                             "    client-certificate-data: " + testing::Base64Encode(kCertPem) +
                                 "\n"
                                 "    client-key-data: " +
                                 testing::Base64Encode(kKeyPem) + "\n",
                             "    namespace: team-a\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, kCaPem);
  EXPECT_EQ(config->client_cert_pem, kCertPem);
  EXPECT_EQ(config->client_key_pem, kKeyPem);
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->token, nullptr);
  EXPECT_EQ(config->namespace_, "team-a");
  EXPECT_EQ(config->source, "kubeconfig " + path + " context dev");
}

TEST_F(KubeconfigTest, FilePathsResolveAgainstKubeconfigDirectory) {
  Write("kube/ca.pem", kCaPem);
  Write("kube/certs/client.pem", kCertPem);
  const std::string key = Write("elsewhere/key.pem", kKeyPem);
  Write("kube/token", "file-token\n");
  const std::string path =
      Write("kube/config", Config(kServer + "    certificate-authority: ca.pem\n",
                                  "    client-certificate: certs/client.pem\n"
                                  "    client-key: " +
                                      key +
                                      "\n"
                                      "    tokenFile: token\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->ca_pem, kCaPem);
  EXPECT_EQ(config->client_cert_pem, kCertPem);
  EXPECT_EQ(config->client_key_pem, kKeyPem);
  ASSERT_NE(config->token, nullptr);
  auto token = config->token->Token();
  ASSERT_TRUE(token.ok()) << token.status().message();
  EXPECT_EQ(*token, "file-token");
  EXPECT_EQ(config->namespace_, "default");
}

TEST_F(KubeconfigTest, DataWinsOverFile) {
  // The file forms point at files that do not exist: they must not even be read.
  const std::string path = Write("config", Config(kServer +
                                                      "    certificate-authority: missing-ca.pem\n"
                                                      "    certificate-authority-data: " +
                                                      testing::Base64Encode(kCaPem) + "\n",
                                                  "    client-certificate: missing-cert.pem\n"
                                                  "    client-certificate-data: " +
                                                      testing::Base64Encode(kCertPem) +
                                                      "\n"
                                                      "    client-key: missing-key.pem\n"
                                                      "    client-key-data: " +
                                                      testing::Base64Encode(kKeyPem) + "\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->ca_pem, kCaPem);
  EXPECT_EQ(config->client_cert_pem, kCertPem);
  EXPECT_EQ(config->client_key_pem, kKeyPem);
}

TEST_F(KubeconfigTest, TokenWinsOverTokenFile) {
  const std::string path = Write("config", Config(kServer,
                                                  "    token: inline-token\n"
                                                  "    tokenFile: missing-token-file\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_NE(config->token, nullptr);
  EXPECT_EQ(*config->token->Token(), "inline-token");
}

TEST_F(KubeconfigTest, ContextSelection) {
  const std::string yaml =
      "current-context: dev\n"
      "clusters:\n"
      "- name: c1\n  cluster:\n    server: https://dev.example:6443\n"
      "- name: c2\n  cluster:\n    server: http://127.0.0.1:8080///\n"
      "    insecure-skip-tls-verify: true\n"
      "contexts:\n"
      "- name: dev\n  context: {cluster: c1, user: u, namespace: dev-ns}\n"
      "- name: other\n  context: {cluster: c2, user: tok}\n"
      "- name: anonymous\n  context: {cluster: c1}\n"
      "users:\n"
      "- name: u\n  user: {token: dev-token}\n"
      "- name: tok\n  user: {token: other-token}\n";
  const std::string path = Write("config", yaml);

  auto dev = LoadKubeconfig({path, ""});
  ASSERT_TRUE(dev.ok()) << dev.status().message();
  EXPECT_EQ(dev->server, "https://dev.example:6443");
  EXPECT_EQ(*dev->token->Token(), "dev-token");
  EXPECT_EQ(dev->namespace_, "dev-ns");

  auto other = LoadKubeconfig({path, "other"});
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_EQ(other->server, "http://127.0.0.1:8080");
  EXPECT_TRUE(other->insecure_skip_tls_verify);
  EXPECT_EQ(*other->token->Token(), "other-token");
  EXPECT_EQ(other->namespace_, "default");
  EXPECT_EQ(other->source, "kubeconfig " + path + " context other");
  EXPECT_TRUE(other->ca_pem.empty());

  auto anonymous = LoadKubeconfig({path, "anonymous"});
  ASSERT_TRUE(anonymous.ok()) << anonymous.status().message();
  EXPECT_EQ(anonymous->token, nullptr);
  EXPECT_TRUE(anonymous->client_cert_pem.empty());
}

TEST_F(KubeconfigTest, ContextFlagWithoutCurrentContext) {
  const std::string path =
      Write("config", ReplaceAll(Config(kServer, "    token: t\n"), "current-context: dev\n", ""));
  auto config = LoadKubeconfig({path, "dev"});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->source, "kubeconfig " + path + " context dev");
}

TEST_F(KubeconfigTest, InsecureSkipTlsVerifyValues) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, bool>>{
           {"true", true}, {"false", false}, {"\"true\"", true}, {"", false}}) {
    SCOPED_TRACE(text);
    const std::string path = Write(
        "config",
        Config(
            std::string(kServer).append("    insecure-skip-tls-verify: ").append(text).append("\n"),
            ""));
    auto config = LoadKubeconfig({path, ""});
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(config->insecure_skip_tls_verify, want);
  }
}

// Every length modulo 3 (so no, one and two padding characters), and line-wrapped base64 as a
// YAML block scalar.
TEST_F(KubeconfigTest, Base64PaddingAndLineBreaks) {
  for (std::size_t extra = 0; extra < 6; ++extra) {
    const std::string pem = kCaPem + std::string(extra, 'x');
    const std::string b64 = testing::Base64Encode(pem);
    SCOPED_TRACE(b64);
    std::string wrapped;
    for (std::size_t i = 0; i < b64.size(); i += 16) wrapped += "      " + b64.substr(i, 16) + "\n";
    for (const std::string& field : {"    certificate-authority-data: " + b64 + "\n",
                                     "    certificate-authority-data: |\n" + wrapped}) {
      const std::string path = Write("config", Config(kServer + field, ""));
      auto config = LoadKubeconfig({path, ""});
      ASSERT_TRUE(config.ok()) << config.status().message();
      EXPECT_EQ(config->ca_pem, pem);
    }
  }
}

struct ErrorCase {
  std::string name;
  std::string yaml;  // "{dir}" stands for the test directory
  std::string want;  // the message after "kubeconfig <path>: "
  std::vector<std::pair<std::string, std::string>> files = {};
};

TEST_F(KubeconfigTest, BadInputGivesOneClearError) {
  const std::string ok_user = "    token: t\n";
  const std::string cert_data =
      "    client-certificate-data: " + testing::Base64Encode(kCertPem) + "\n";
  const std::string key_data = "    client-key-data: " + testing::Base64Encode(kKeyPem) + "\n";
  const std::string not_pem =
      "    client-key-data: " + testing::Base64Encode("just some bytes") + "\n";
  const std::vector<ErrorCase> cases = {
      {"context not found",
       ReplaceAll(Config(kServer, ok_user), "current-context: dev", "current-context: nope"),
       "context \"nope\" not found in contexts"},
      {"no contexts at all", "current-context: dev\nclusters: []\n",
       "context \"dev\" not found in contexts"},
      {"no current-context", ReplaceAll(Config(kServer, ok_user), "current-context: dev\n", ""),
       "no current-context and no --context given"},
      {"empty current-context",
       ReplaceAll(Config(kServer, ok_user), "current-context: dev", "current-context: \"\""),
       "no current-context and no --context given"},
      {"context without cluster", ReplaceAll(Config(kServer, ok_user), "    cluster: c1\n", ""),
       "contexts[dev].cluster: missing"},
      {"cluster not found", ReplaceAll(Config(kServer, ok_user), "cluster: c1", "cluster: c9"),
       R"(cluster "c9" (from context "dev") not found in clusters)"},
      {"user not found", ReplaceAll(Config(kServer, ok_user), "user: u", "user: u9"),
       R"(user "u9" (from context "dev") not found in users)"},
      {"duplicate context",
       ReplaceAll(Config(kServer, ok_user), "contexts:\n",
                  "contexts:\n- name: dev\n  context: {cluster: c1}\n"),
       "contexts: name \"dev\" appears more than once"},
      {"server missing", Config("    insecure-skip-tls-verify: false\n", ok_user),
       "clusters[c1].server: missing"},
      {"server empty", Config("    server: \"\"\n", ok_user), "clusters[c1].server: missing"},
      {"cluster body missing", Config("", ok_user), "clusters[c1].server: missing"},
      {"server without scheme", Config("    server: 10.0.0.1:6443\n", ok_user),
       "clusters[c1].server: must start with https:// or http://"},
      {"server ftp", Config("    server: ftp://10.0.0.1\n", ok_user),
       "clusters[c1].server: must start with https:// or http://"},
      {"server without host", Config("    server: https:///\n", ok_user),
       "clusters[c1].server: has no host"},
      {"cert without key", Config(kServer, cert_data),
       "users[u].client-key: missing (client-certificate and client-key go together)"},
      {"key file without cert", Config(kServer, "    client-key: key.pem\n"),
       "users[u].client-certificate: missing (client-certificate and client-key go together)"},
      {"bad base64 character",
       Config(kServer + "    certificate-authority-data: QUJD*A==\n", ok_user),
       "clusters[c1].certificate-authority-data: invalid base64"},
      {"base64 without padding",
       Config(kServer + "    certificate-authority-data: QUJDRA\n", ok_user),
       "clusters[c1].certificate-authority-data: invalid base64"},
      {"base64 padding in the middle",
       Config(kServer + "    certificate-authority-data: QQ==QUJD\n", ok_user),
       "clusters[c1].certificate-authority-data: invalid base64"},
      {"base64 three padding chars",
       Config(kServer + "    certificate-authority-data: Q===\n", ok_user),
       "clusters[c1].certificate-authority-data: invalid base64"},
      {"bad base64 cert", Config(kServer, "    client-certificate-data: '@@@@'\n" + key_data),
       "users[u].client-certificate-data: invalid base64"},
      {"bad base64 key", Config(kServer, cert_data + "    client-key-data: abc\n"),
       "users[u].client-key-data: invalid base64"},
      {"ca data not PEM",
       Config(kServer + "    certificate-authority-data: " + testing::Base64Encode("hello world") +
                  "\n",
              ok_user),
       "clusters[c1].certificate-authority-data: decoded data is not PEM (no \"-----BEGIN\" "
       "line)"},
      {"key data not PEM", Config(kServer, cert_data + not_pem),
       "users[u].client-key-data: decoded data is not PEM (no \"-----BEGIN\" line)"},
      {"cert file not PEM",
       Config(kServer, "    client-certificate: cert.txt\n" + key_data),
       "users[u].client-certificate: {dir}/cert.txt is not PEM (no \"-----BEGIN\" line)",
       {{"cert.txt", "not a certificate"}}},
      {"key file missing", Config(kServer, cert_data + "    client-key: {dir}/k.pem\n"),
       "users[u].client-key: cannot read {dir}/k.pem: No such file or directory"},
      {"ca file missing (relative)",
       Config(kServer + "    certificate-authority: sub/ca.pem\n", ok_user),
       "clusters[c1].certificate-authority: cannot read {dir}/sub/ca.pem: No such file or "
       "directory"},
      {"ca path is a directory",
       Config(kServer + "    certificate-authority: sub\n", ok_user),
       "clusters[c1].certificate-authority: cannot read {dir}/sub: Is a directory",
       {{"sub/x", "x"}}},
      {"token file missing", Config(kServer, "    tokenFile: tok\n"),
       "users[u].tokenFile: cannot read token file {dir}/tok: No such file or directory"},
      {"token file empty",
       Config(kServer, "    tokenFile: tok\n"),
       "users[u].tokenFile: token file {dir}/tok is empty",
       {{"tok", " \n\t\n"}}},
      {"token with line break", Config(kServer, "    token: \"abc\\ndef\"\n"),
       "users[u].token: contains a line break"},
      {"insecure with CA",
       Config(kServer +
                  "    insecure-skip-tls-verify: true\n"
                  "    certificate-authority-data: " +
                  testing::Base64Encode(kCaPem) + "\n",
              ok_user),
       "clusters[c1].insecure-skip-tls-verify: cannot be combined with certificate-authority or "
       "certificate-authority-data"},
      {"insecure not a bool", Config(kServer + "    insecure-skip-tls-verify: maybe\n", ok_user),
       "clusters[c1].insecure-skip-tls-verify: must be true or false"},
      {"insecure a list", Config(kServer + "    insecure-skip-tls-verify: [true]\n", ok_user),
       "clusters[c1].insecure-skip-tls-verify: must be true or false"},
      {"exec plugin", Config(kServer, "    exec: {command: aws}\n"),
       "users[u].exec: not supported"},
      {"auth-provider", Config(kServer, "    auth-provider: {name: gcp}\n"),
       "users[u].auth-provider: not supported"},
      {"basic auth", Config(kServer, "    username: admin\n    password: pw\n"),
       "users[u].username: basic authentication is not supported"},
      // Garbage structures.
      {"contexts is a number", "current-context: dev\ncontexts: 5\n", "contexts: must be a list"},
      {"contexts is a map", "current-context: dev\ncontexts: {dev: x}\n",
       "contexts: must be a list"},
      {"context entry is a number", "current-context: dev\ncontexts: [5]\n",
       "contexts[0]: must be a map"},
      {"context name is a list", "current-context: dev\ncontexts:\n- name: [dev]\n",
       "contexts[0].name: must be a string"},
      {"context body is a list", "current-context: dev\ncontexts:\n- name: dev\n  context: [a]\n",
       "contexts[dev].context: must be a map"},
      {"context namespace is a map", Config(kServer, ok_user, "    namespace: {a: b}\n"),
       "contexts[dev].namespace: must be a string"},
      {"current-context is a map", "current-context: {a: 1}\n",
       "current-context: must be a string"},
      {"clusters is a string",
       ReplaceAll(Config(kServer, ok_user), "clusters:\n- name: c1\n  cluster:\n" + kServer,
                  "clusters: oops\n"),
       "clusters: must be a list"},
      {"cluster body is a string",
       ReplaceAll(Config(kServer, ok_user), "  cluster:\n" + kServer, "  cluster: oops\n"),
       "clusters[c1].cluster: must be a map"},
      {"server is a list", Config("    server: [a, b]\n", ok_user),
       "clusters[c1].server: must be a string"},
      {"server is a map", Config("    server: {a: b}\n", ok_user),
       "clusters[c1].server: must be a string"},
      {"users is a number",
       ReplaceAll(Config(kServer, ok_user), "users:\n- name: u\n  user:\n", "users: 7\nx:\n"),
       "users: must be a list"},
      {"user body is a number", ReplaceAll(Config(kServer, ""), "  user:\n", "  user: 3\n"),
       "users[u].user: must be a map"},
      {"token is a map", Config(kServer, "    token: {a: b}\n"),
       "users[u].token: must be a string"},
      {"cert data is a list", Config(kServer, "    client-certificate-data: [a]\n" + key_data),
       "users[u].client-certificate-data: must be a string"},
      {"top level scalar", "just a string\n", "top level must be a map, not a kubeconfig"},
      {"top level list", "- a\n- b\n", "top level must be a map, not a kubeconfig"},
      {"empty file", "", "empty document, not a kubeconfig"},
      {"comments only", "# nothing here\n", "empty document, not a kubeconfig"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path sub = fs::path(dir_) / ("case" + std::to_string(&c - cases.data()));
    fs::create_directories(sub);
    for (const auto& [rel, content] : c.files) {
      Write((sub / rel).lexically_relative(dir_).string(), content);
    }
    const std::string path = (sub / "config").string();
    Write((sub / "config").lexically_relative(dir_).string(),
          ReplaceAll(c.yaml, "{dir}", sub.string()));
    auto config = LoadKubeconfig({path, ""});
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(config.status().message(),
              "kubeconfig " + path + ": " + ReplaceAll(c.want, "{dir}", sub.string()));
    EXPECT_EQ(config.status().message().find('\n'), std::string::npos);
  }
}

TEST_F(KubeconfigTest, MissingFile) {
  const std::string path = Path("nope/config");
  auto config = LoadKubeconfig({path, ""});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "kubeconfig " + path + ": cannot read: No such file or directory");
}

TEST_F(KubeconfigTest, PathIsADirectory) {
  auto config = LoadKubeconfig({dir_, ""});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "kubeconfig " + dir_ + ": cannot read: Is a directory");
}

TEST_F(KubeconfigTest, NoPathGiven) {
  auto config = LoadKubeconfig({"", "dev"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), "kubeconfig: no file path given");
}

TEST_F(KubeconfigTest, MalformedYamlNamesLineAndColumn) {
  const std::string path = Write("config", "a: b\n  c: d\n");
  auto config = LoadKubeconfig({path, ""});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "kubeconfig " + path + ": malformed YAML at line 2, column 4: illegal map value");

  const std::string flow = Write("flow", "clusters: [\n  {name: c1}\n");
  config = LoadKubeconfig({flow, ""});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(),
              MatchesRegex("kubeconfig .*/flow: malformed YAML at line [0-9]+, column [0-9]+: "
                           "end of sequence flow not found"));
}

// ---------------------------------------------------------------------------------------------
// Secrets never appear in messages.

TEST_F(KubeconfigTest, ErrorsNeverContainTokenOrKeyText) {
  const std::string token = "TOKEN-SECRET-4f9a";
  const std::string key_text = "KEY-SECRET-MATERIAL-77";
  const std::string key_not_pem = key_text + "\n";
  const std::string cert_data =
      "    client-certificate-data: " + testing::Base64Encode(kCertPem) + "\n";
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"key data not PEM",
       Config(kServer, cert_data + "    client-key-data: " + testing::Base64Encode(key_not_pem) +
                           "\n    token: " + token + "\n")},
      {"key data bad base64",
       Config(kServer, cert_data + "    client-key-data: '" + key_text + "*'\n")},
      {"key file not PEM", Config(kServer, cert_data + "    client-key: key.txt\n")},
      {"token with line break", Config(kServer, "    token: \"" + token + "\\n" + token + "\"\n")},
      {"token is a map", Config(kServer, "    token: {" + token + ": " + token + "}\n")},
      {"token bad escape", Config(kServer, "    token: \"" + token + "\\q" + token + "\"\n")},
      {"token bad unicode", Config(kServer, "    token: \"" + token + "\\uZZZZ\"\n")},
      {"token then missing server", Config("", "    token: " + token + "\n")},
      {"key inline but cert missing",
       Config(kServer, "    client-key-data: " + testing::Base64Encode(key_text) + "\n")},
      {"token file two lines", Config(kServer, "    tokenFile: tok2\n")},
      {"ca data is a key",
       Config(kServer + "    certificate-authority-data: " + testing::Base64Encode(key_text) + "\n",
              "    token: " + token + "\n")},
  };
  Write("key.txt", key_not_pem);
  Write("tok2", token + "\n" + token + "\n");
  for (const auto& [name, yaml] : configs) {
    SCOPED_TRACE(name);
    const std::string path = Write("config", yaml);
    auto config = LoadKubeconfig({path, ""});
    ASSERT_FALSE(config.ok());
    const std::string& msg = config.status().message();
    EXPECT_THAT(msg, Not(HasSubstr("SECRET")));
    EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(key_not_pem))));
    EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(key_text))));
    EXPECT_THAT(msg, StartsWith("kubeconfig " + path + ": "));
  }

  // The escape-sequence parser errors keep their fixed text only.
  const std::string path =
      Write("config", Config(kServer, "    token: \"" + token + "\\q" + token + "\"\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), ::testing::EndsWith(": unknown escape character"));

  // Token files.
  const std::string tok = Write("rotating", token + "\n");
  auto source = TokenSource::FromFile(tok);
  ASSERT_TRUE(source.ok()) << source.status().message();
  Write("rotating", token + "\nsecond line " + token + "\n");
  auto t = (*source)->Token();
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), Not(HasSubstr("SECRET")));
  EXPECT_THAT(t.status().message(), HasSubstr(tok));
}

// ---------------------------------------------------------------------------------------------
// ParseRemoteKubeconfig: a tenant's kubeconfig from a Secret, for another cluster.

// Test constants are built before main (see above).
// NOLINTBEGIN(cert-err58-cpp)
const std::string kSource = "Secret team-a/prod-eu";
const std::string kRemoteToken = "TOKEN-SECRET-4f9a";
const std::string kRemoteServer = "    server: https://prod.example:6443\n";
const std::string kCaData =
    "    certificate-authority-data: " + testing::Base64Encode(kCaPem) + "\n";
const std::string kRemoteCluster = kRemoteServer + kCaData;
const std::string kTokenUser = "    token: " + kRemoteToken + "\n";
const std::string kCertUser = "    client-certificate-data: " + testing::Base64Encode(kCertPem) +
                              "\n    client-key-data: " + testing::Base64Encode(kKeyPem) + "\n";
// NOLINTEND(cert-err58-cpp)

class RemoteKubeconfigTest : public ::testing::Test {
 protected:
  // Parses `yaml` and expects a refusal that names `source` and `field` (with `reason` when
  // given), and that carries no credential: neither the token nor any inline data.
  static void ExpectRefused(const std::string& yaml, const std::string& field,
                            const std::string& reason = "", const std::string& context = "") {
    auto config = ParseRemoteKubeconfig(yaml, kSource, context);
    ASSERT_FALSE(config.ok()) << "accepted:\n" << yaml;
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    const std::string& msg = config.status().message();
    EXPECT_THAT(msg, StartsWith("kubeconfig " + kSource + ": "));
    EXPECT_THAT(msg, HasSubstr(field));
    if (!reason.empty()) {
      EXPECT_THAT(msg, HasSubstr(reason));
    }
    ExpectNoSecrets(msg);
  }

  static void ExpectNoSecrets(const std::string& msg) {
    EXPECT_THAT(msg, Not(HasSubstr("SECRET")));
    for (const std::string& pem : {kCaPem, kCertPem, kKeyPem}) {
      EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(pem))));
    }
    EXPECT_THAT(msg, Not(HasSubstr("-----BEGIN CERTIFICATE")));
    EXPECT_THAT(msg, Not(HasSubstr("-----BEGIN PRIVATE")));
    EXPECT_THAT(msg, Not(HasSubstr("Q0xJRU5ULUNFUlQtQk9EWQ")));      // the certificate's inner line
    EXPECT_THAT(msg, Not(HasSubstr("S0VZLVNFQ1JFVC1NQVRFUklBTA")));  // the key's inner line
  }
};

// ---- Accepted forms ----

TEST_F(RemoteKubeconfigTest, TokenWithCa) {
  auto config = ParseRemoteKubeconfig(Config(kRemoteCluster, kTokenUser), kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://prod.example:6443");
  EXPECT_EQ(config->ca_pem, kCaPem);
  ASSERT_NE(config->token, nullptr);
  EXPECT_EQ(*config->token->Token(), kRemoteToken);
  EXPECT_TRUE(config->client_cert_pem.empty());
  EXPECT_TRUE(config->client_key_pem.empty());
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_TRUE(config->tls_server_name.empty());
  EXPECT_EQ(config->namespace_, "default");
  EXPECT_EQ(config->source, "kubeconfig " + kSource + " context dev");
}

TEST_F(RemoteKubeconfigTest, ClientCertificate) {
  auto config = ParseRemoteKubeconfig(Config(kRemoteCluster, kCertUser), kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->client_cert_pem, kCertPem);
  EXPECT_EQ(config->client_key_pem, kKeyPem);
  EXPECT_EQ(config->token, nullptr);
}

TEST_F(RemoteKubeconfigTest, TokenAndClientCertificateTogether) {
  auto config = ParseRemoteKubeconfig(Config(kRemoteCluster, kCertUser + kTokenUser), kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->client_cert_pem, kCertPem);
  ASSERT_NE(config->token, nullptr);
  EXPECT_EQ(*config->token->Token(), kRemoteToken);
}

TEST_F(RemoteKubeconfigTest, TlsServerName) {
  auto config = ParseRemoteKubeconfig(Config("    server: https://10.0.0.1:6443/\n" + kCaData +
                                                 "    tls-server-name: kubernetes.prod.internal\n",
                                             kTokenUser),
                                      kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->tls_server_name, "kubernetes.prod.internal");
  EXPECT_EQ(config->ca_pem, kCaPem);
}

TEST_F(RemoteKubeconfigTest, NamedContext) {
  const std::string yaml =
      "current-context: dev\n"
      "clusters:\n"
      "- name: dev\n  cluster:\n    server: https://dev.example\n" +
      kCaData + "- name: prod\n  cluster:\n    server: https://prod.example\n" + kCaData +
      "contexts:\n"
      "- name: dev\n  context: {cluster: dev, user: dev}\n"
      "- name: prod\n  context: {cluster: prod, user: hub, namespace: shop}\n"
      "users:\n"
      "- name: dev\n  user: {token: dev-token}\n"
      "- name: hub\n  user: {token: hub-token}\n";
  auto prod = ParseRemoteKubeconfig(yaml, kSource, "prod");
  ASSERT_TRUE(prod.ok()) << prod.status().message();
  EXPECT_EQ(prod->server, "https://prod.example");
  EXPECT_EQ(*prod->token->Token(), "hub-token");
  EXPECT_EQ(prod->namespace_, "shop");
  EXPECT_EQ(prod->source, "kubeconfig " + kSource + " context prod");

  auto current = ParseRemoteKubeconfig(yaml, kSource);
  ASSERT_TRUE(current.ok()) << current.status().message();
  EXPECT_EQ(current->server, "https://dev.example");
  EXPECT_EQ(*current->token->Token(), "dev-token");
}

// ---- Refusals: each names the field, never a credential ----

TEST_F(RemoteKubeconfigTest, RefusesExecPlugin) {
  ExpectRefused(
      Config(kRemoteCluster, kTokenUser + "    exec:\n      apiVersion: "
                                          "client.authentication.k8s.io/v1\n"
                                          "      command: /bin/sh\n      args: [-c, id]\n"),
      "users[u].exec", "would run a program inside the controller");
}

TEST_F(RemoteKubeconfigTest, RefusesAuthProvider) {
  ExpectRefused(
      Config(kRemoteCluster, "    auth-provider:\n      name: gcp\n      config: {access-token: " +
                                 kRemoteToken + "}\n"),
      "users[u].auth-provider", "auth-provider plugins are not supported");
}

TEST_F(RemoteKubeconfigTest, RefusesCertificateAuthorityFile) {
  ExpectRefused(Config(kRemoteServer + "    certificate-authority: "
                                       "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n",
                       kTokenUser),
                "clusters[c1].certificate-authority:", "use certificate-authority-data");
}

TEST_F(RemoteKubeconfigTest, RefusesCertificateAuthorityFileEvenWithData) {
  ExpectRefused(Config(kRemoteCluster + "    certificate-authority: /etc/ssl/ca.crt\n", kTokenUser),
                "clusters[c1].certificate-authority:", "file references are not allowed");
}

TEST_F(RemoteKubeconfigTest, RefusesClientCertificateFile) {
  ExpectRefused(Config(kRemoteCluster,
                       "    client-certificate: /etc/rollgate/tls.crt\n"
                       "    client-key-data: " +
                           testing::Base64Encode(kKeyPem) + "\n"),
                "users[u].client-certificate:", "file references are not allowed");
}

TEST_F(RemoteKubeconfigTest, RefusesClientKeyFile) {
  ExpectRefused(
      Config(kRemoteCluster, "    client-certificate-data: " + testing::Base64Encode(kCertPem) +
                                 "\n    client-key: /etc/rollgate/tls.key\n"),
      "users[u].client-key:", "file references are not allowed");
}

TEST_F(RemoteKubeconfigTest, RefusesTokenFile) {
  // The controller's own ServiceAccount token: the tenant must not make it be sent anywhere.
  ExpectRefused(Config(kRemoteCluster,
                       "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n"),
                "users[u].tokenFile:", "file references are not allowed");
}

TEST_F(RemoteKubeconfigTest, RefusesTokenFileNextToToken) {
  ExpectRefused(Config(kRemoteCluster, kTokenUser + "    tokenFile: /etc/passwd\n"),
                "users[u].tokenFile:", "file references are not allowed");
}

TEST_F(RemoteKubeconfigTest, RefusesUsername) {
  ExpectRefused(Config(kRemoteCluster, "    username: admin\n"), "users[u].username",
                "basic authentication is not supported");
}

TEST_F(RemoteKubeconfigTest, RefusesPassword) {
  ExpectRefused(Config(kRemoteCluster, kTokenUser + "    password: PASSWORD-SECRET\n"),
                "users[u].password", "basic authentication is not supported");
}

TEST_F(RemoteKubeconfigTest, RefusesImpersonation) {
  for (const std::string line : {"as: system:admin", "as-uid: \"0\"", "as-groups: [system:masters]",
                                 "as-user-extra: {scopes: [all]}", "impersonate: system:admin",
                                 "impersonate-groups: [system:masters]"}) {
    SCOPED_TRACE(line);
    const std::string key = line.substr(0, line.find(':'));
    std::string user = kTokenUser;
    user += "    ";
    user += line;
    user += "\n";
    ExpectRefused(Config(kRemoteCluster, user), "users[u]." + key,
                  "impersonation is not supported");
  }
}

TEST_F(RemoteKubeconfigTest, RefusesProxyUrl) {
  ExpectRefused(Config(kRemoteCluster + "    proxy-url: http://proxy.example:3128\n", kTokenUser),
                "clusters[c1].proxy-url", "proxies are not supported");
}

TEST_F(RemoteKubeconfigTest, RefusesPlainHttpServer) {
  ExpectRefused(Config("    server: http://prod.example:8080\n" + kCaData, kTokenUser),
                "clusters[c1].server", "must start with https://");
}

TEST_F(RemoteKubeconfigTest, RefusesServerWithoutScheme) {
  ExpectRefused(Config("    server: prod.example:6443\n" + kCaData, kTokenUser),
                "clusters[c1].server", "must start with https://");
}

TEST_F(RemoteKubeconfigTest, RefusesServerWithUserInformation) {
  ExpectRefused(
      Config("    server: https://admin:PASSWORD-SECRET@prod.example\n" + kCaData, kTokenUser),
      "clusters[c1].server", "user information");
}

TEST_F(RemoteKubeconfigTest, RefusesMissingServer) {
  ExpectRefused(Config(kCaData, kTokenUser), "clusters[c1].server: missing");
}

TEST_F(RemoteKubeconfigTest, RefusesInsecureSkipTlsVerify) {
  ExpectRefused(Config(kRemoteServer + "    insecure-skip-tls-verify: true\n", kTokenUser),
                "clusters[c1].insecure-skip-tls-verify", "set certificate-authority-data");
}

TEST_F(RemoteKubeconfigTest, AcceptsInsecureSkipTlsVerifyFalse) {
  auto config = ParseRemoteKubeconfig(
      Config(kRemoteCluster + "    insecure-skip-tls-verify: false\n", kTokenUser), kSource);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_FALSE(config->insecure_skip_tls_verify);
}

TEST_F(RemoteKubeconfigTest, RefusesMissingCa) {
  ExpectRefused(Config(kRemoteServer, kTokenUser),
                "clusters[c1].certificate-authority-data: missing");
}

TEST_F(RemoteKubeconfigTest, RefusesBadTlsServerName) {
  ExpectRefused(Config(kRemoteCluster + "    tls-server-name: \"a b\"\n", kTokenUser),
                "clusters[c1].tls-server-name", "host name or an IP address");
}

TEST_F(RemoteKubeconfigTest, RefusesMissingContext) {
  ExpectRefused(ReplaceAll(Config(kRemoteCluster, kTokenUser), "current-context: dev\n", ""),
                "no current-context");
}

TEST_F(RemoteKubeconfigTest, RefusesUnknownContext) {
  ExpectRefused(Config(kRemoteCluster, kTokenUser), "context \"prod\" not found in contexts", "",
                "prod");
}

TEST_F(RemoteKubeconfigTest, RefusesUnknownCluster) {
  ExpectRefused(ReplaceAll(Config(kRemoteCluster, kTokenUser), "cluster: c1", "cluster: c9"),
                R"(cluster "c9" (from context "dev") not found in clusters)");
}

TEST_F(RemoteKubeconfigTest, RefusesUnknownUser) {
  ExpectRefused(ReplaceAll(Config(kRemoteCluster, kTokenUser), "user: u\n", "user: nobody\n"),
                R"(user "nobody" (from context "dev") not found in users)");
}

TEST_F(RemoteKubeconfigTest, RefusesContextWithoutUser) {
  ExpectRefused(ReplaceAll(Config(kRemoteCluster, kTokenUser), "    user: u\n", ""),
                "contexts[dev].user: missing", "never reached anonymously");
}

TEST_F(RemoteKubeconfigTest, RefusesUserWithoutCredentials) {
  ExpectRefused(Config(kRemoteCluster, "    extensions: []\n"), "users[u]: no credentials");
}

TEST_F(RemoteKubeconfigTest, RefusesLoneClientCertificateOrKey) {
  ExpectRefused(Config(kRemoteCluster,
                       "    client-certificate-data: " + testing::Base64Encode(kCertPem) + "\n"),
                "users[u].client-key: missing");
  ExpectRefused(
      Config(kRemoteCluster, "    client-key-data: " + testing::Base64Encode(kKeyPem) + "\n"),
      "users[u].client-certificate: missing");
}

TEST_F(RemoteKubeconfigTest, RefusesEmptyAndMalformedDocuments) {
  ExpectRefused("", "empty document");
  ExpectRefused("- a\n- b\n", "top level must be a map");
  ExpectRefused("clusters: [\n", "malformed YAML");
}

// ---- Secrets never appear in errors ----

TEST_F(RemoteKubeconfigTest, ErrorsNeverContainTokenOrKeyBytes) {
  const std::string key_not_pem = "KEY-SECRET-MATERIAL-77\n";
  const std::vector<std::pair<std::string, std::string>> configs = {
      {"exec next to token", Config(kRemoteCluster, kCertUser + kTokenUser + "    exec: {}\n")},
      {"key data not PEM",
       Config(kRemoteCluster, "    client-certificate-data: " + testing::Base64Encode(kCertPem) +
                                  "\n    client-key-data: " + testing::Base64Encode(key_not_pem) +
                                  "\n")},
      {"key data bad base64",
       Config(kRemoteCluster, "    client-certificate-data: " + testing::Base64Encode(kCertPem) +
                                  "\n    client-key-data: '" + key_not_pem + "*'\n")},
      {"token with line break",
       Config(kRemoteCluster, "    token: \"" + kRemoteToken + "\\n" + kRemoteToken + "\"\n")},
      {"token is a map",
       Config(kRemoteCluster, "    token: {" + kRemoteToken + ": " + kRemoteToken + "}\n")},
      {"token bad escape",
       Config(kRemoteCluster, "    token: \"" + kRemoteToken + "\\q" + kRemoteToken + "\"\n")},
      {"token bad unicode", Config(kRemoteCluster, "    token: \"" + kRemoteToken + "\\uZZZZ\"\n")},
      {"token then plain http", Config("    server: http://prod.example\n" + kCaData, kTokenUser)},
      {"token then insecure",
       Config(kRemoteServer + "    insecure-skip-tls-verify: true\n", kTokenUser)},
      {"ca data is a key", Config(kRemoteServer + "    certificate-authority-data: " +
                                      testing::Base64Encode(key_not_pem) + "\n",
                                  kTokenUser)},
      {"password", Config(kRemoteCluster, "    username: u\n    password: PASSWORD-SECRET\n")},
      {"impersonation with token", Config(kRemoteCluster, kTokenUser + "    as: admin\n")},
  };
  for (const auto& [name, yaml] : configs) {
    SCOPED_TRACE(name);
    auto config = ParseRemoteKubeconfig(yaml, kSource);
    ASSERT_FALSE(config.ok());
    const std::string& msg = config.status().message();
    EXPECT_THAT(msg, StartsWith("kubeconfig " + kSource + ": "));
    ExpectNoSecrets(msg);
    EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(key_not_pem))));
    EXPECT_THAT(msg, Not(HasSubstr("4f9a")));
  }
}

// The operator's own kubeconfig file keeps what a tenant's Secret may not use.
TEST_F(KubeconfigTest, OperatorFileStillAcceptsWhatRemoteRefuses) {
  Write("tok", "file-token\n");
  const std::string path =
      Write("config", Config("    server: http://127.0.0.1:8080\n", "    tokenFile: tok\n"));
  auto config = LoadKubeconfig({path, ""});
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(*config->token->Token(), "file-token");
  EXPECT_TRUE(config->tls_server_name.empty());
}

// ---------------------------------------------------------------------------------------------
// TokenSource

class TokenSourceTest : public TempDirTest {
 protected:
  static timespec MtimeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mtim;
  }
  static void SetMtime(const std::string& path, timespec mtime) {
    const std::array<timespec, 2> times = {mtime, mtime};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times.data(), 0), 0);
  }
  static ino_t InodeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_ino;
  }
};

TEST_F(TokenSourceTest, StaticReturnsTheToken) {
  auto source = TokenSource::Static("abc");
  for (int i = 0; i < 3; ++i) {
    auto t = source->Token();
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(*t, "abc");
  }
}

TEST_F(TokenSourceTest, FromFileTrimsWhitespace) {
  for (const std::string content : {"tok-1", "tok-1\n", "tok-1\r\n", "  tok-1 \t\n\n"}) {
    SCOPED_TRACE(::testing::PrintToString(content));
    const std::string path = Write("token", content);
    auto source = TokenSource::FromFile(path);
    ASSERT_TRUE(source.ok()) << source.status().message();
    EXPECT_EQ(*(*source)->Token(), "tok-1");
  }
}

TEST_F(TokenSourceTest, FromFileErrors) {
  const std::string missing = Path("missing");
  auto source = TokenSource::FromFile(missing);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(source.status().message(),
            "cannot read token file " + missing + ": No such file or directory");

  for (const std::string content : {"", "\n", " \t\r\n "}) {
    const std::string path = Write("empty", content);
    source = TokenSource::FromFile(path);
    ASSERT_FALSE(source.ok());
    EXPECT_EQ(source.status().message(), "token file " + path + " is empty");
  }

  const std::string two = Write("two", "line-one\nline-two\n");
  source = TokenSource::FromFile(two);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().message(), "token file " + two + " holds more than one line");

  source = TokenSource::FromFile(dir_);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().message(), "cannot read token file " + dir_ + ": Is a directory");
}

TEST_F(TokenSourceTest, RereadsWhenSizeChanges) {
  const std::string path = Write("token", "token-one\n");
  auto source = TokenSource::FromFile(path);
  ASSERT_TRUE(source.ok()) << source.status().message();
  EXPECT_EQ(*(*source)->Token(), "token-one");
  const ino_t inode = InodeOf(path);
  Write("token", "token-number-two\n");  // in place: same inode
  ASSERT_EQ(InodeOf(path), inode);
  EXPECT_EQ(*(*source)->Token(), "token-number-two");
  EXPECT_EQ(*(*source)->Token(), "token-number-two");
}

TEST_F(TokenSourceTest, RereadsWhenOnlyMtimeChanges) {
  const std::string path = Write("token", "tokenAAAA\n");
  auto source = TokenSource::FromFile(path);
  ASSERT_TRUE(source.ok()) << source.status().message();
  EXPECT_EQ(*(*source)->Token(), "tokenAAAA");
  const timespec before = MtimeOf(path);

  // Same inode, same size, same mtime: the cached token is kept (the file is not re-read).
  Write("token", "tokenBBBB\n");
  SetMtime(path, before);
  EXPECT_EQ(*(*source)->Token(), "tokenAAAA");

  // Only the mtime moves, by one nanosecond where the filesystem keeps nanoseconds: re-read.
  timespec bumped = before;
  if (++bumped.tv_nsec == 1'000'000'000) {
    bumped.tv_nsec = 0;
    ++bumped.tv_sec;
  }
  SetMtime(path, bumped);
  if (MtimeOf(path).tv_nsec != bumped.tv_nsec) {
    bumped = before;
    ++bumped.tv_sec;
    SetMtime(path, bumped);
  }
  EXPECT_EQ(*(*source)->Token(), "tokenBBBB");
}

TEST_F(TokenSourceTest, RereadsWhenInodeChanges) {
  const std::string path = Write("token", "tokenAAAA\n");
  auto source = TokenSource::FromFile(path);
  ASSERT_TRUE(source.ok()) << source.status().message();
  const timespec mtime = MtimeOf(path);
  const ino_t inode = InodeOf(path);
  // Same size and mtime, new file renamed over the old one (how atomic writers replace files).
  const std::string next = Write("token.next", "tokenCCCC\n");
  SetMtime(next, mtime);
  ASSERT_EQ(std::rename(next.c_str(), path.c_str()), 0);
  ASSERT_NE(InodeOf(path), inode);
  EXPECT_EQ(*(*source)->Token(), "tokenCCCC");
}

TEST_F(TokenSourceTest, FollowsKubeletSymlinkSwap) {
  // The kubelet's projected volume: token -> ..data/token, ..data -> ..<timestamp>.
  Write("..v1/token", "first-token\n");
  Write("..v2/token", "second-token\n");
  ASSERT_EQ(::symlink("..v1", Path("..data").c_str()), 0);
  ASSERT_EQ(::symlink("..data/token", Path("token").c_str()), 0);
  auto source = TokenSource::FromFile(Path("token"));
  ASSERT_TRUE(source.ok()) << source.status().message();
  EXPECT_EQ(*(*source)->Token(), "first-token");
  ASSERT_EQ(::symlink("..v2", Path("..data_tmp").c_str()), 0);
  ASSERT_EQ(std::rename(Path("..data_tmp").c_str(), Path("..data").c_str()), 0);
  EXPECT_EQ(*(*source)->Token(), "second-token");
}

TEST_F(TokenSourceTest, FailedRereadReturnsErrorThenRecovers) {
  const std::string path = Write("token", "token-one\n");
  auto source = TokenSource::FromFile(path);
  ASSERT_TRUE(source.ok()) << source.status().message();

  ASSERT_EQ(std::remove(path.c_str()), 0);
  auto t = (*source)->Token();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(t.status().message(), "cannot read token file " + path + ": No such file or directory");
  EXPECT_THAT(t.status().message(), Not(HasSubstr("token-one")));

  Write("token", "\n");
  t = (*source)->Token();
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "token file " + path + " is empty");

  Write("token", "token-three\n");
  t = (*source)->Token();
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(*t, "token-three");
}

TEST_F(TokenSourceTest, ConcurrentCallsDuringRotation) {
  const std::string path = Write("token", "token-a\n");
  auto source = TokenSource::FromFile(path);
  ASSERT_TRUE(source.ok()) << source.status().message();
  std::shared_ptr<TokenSource> shared = *source;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto t = shared->Token();
        if (!t.ok() || (*t != "token-a" && *t != "token-bb")) bad.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    const std::string next = Write("token.next", i % 2 == 0 ? "token-bb\n" : "token-a\n");
    ASSERT_EQ(std::rename(next.c_str(), path.c_str()), 0);
  }
  stop.store(true);
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(*shared->Token(), "token-a");
}

// ---------------------------------------------------------------------------------------------
// LoadInCluster

class InClusterTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    sa_ = Path("sa");
    Write("sa/token", "sa-token\n");
    Write("sa/ca.crt", kCaPem);
    Write("sa/namespace", "prod\n");
  }
  std::string sa_;
};

TEST_F(InClusterTest, HappyPath) {
  auto config = LoadInCluster(
      FakeEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}), sa_);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_pem, kCaPem);
  ASSERT_NE(config->token, nullptr);
  EXPECT_EQ(*config->token->Token(), "sa-token");
  EXPECT_EQ(config->namespace_, "prod");
  EXPECT_EQ(config->source, "in-cluster");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_TRUE(config->client_cert_pem.empty());
  EXPECT_TRUE(config->client_key_pem.empty());

  // The token source follows rotation.
  Write("sa/token", "rotated-sa-token\n");
  EXPECT_EQ(*config->token->Token(), "rotated-sa-token");
}

TEST_F(InClusterTest, Ipv6HostInBrackets) {
  for (const std::string host : {"fd00:10:96::1", "[fd00:10:96::1]"}) {
    auto config = LoadInCluster(
        FakeEnv({{"KUBERNETES_SERVICE_HOST", host}, {"KUBERNETES_SERVICE_PORT", "6443"}}), sa_);
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(config->server, "https://[fd00:10:96::1]:6443");
  }
}

TEST_F(InClusterTest, NamespaceDefaultsWhenMissingOrEmpty) {
  const auto env =
      FakeEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  Write("sa/namespace", " \n");
  auto config = LoadInCluster(env, sa_);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->namespace_, "default");
  ASSERT_EQ(std::remove(Path("sa/namespace").c_str()), 0);
  config = LoadInCluster(env, sa_);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->namespace_, "default");
}

TEST_F(InClusterTest, MissingEnvironment) {
  const std::vector<std::map<std::string, std::string>> envs = {
      {},
      {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}},
      {{"KUBERNETES_SERVICE_PORT", "443"}},
      {{"KUBERNETES_SERVICE_HOST", ""}, {"KUBERNETES_SERVICE_PORT", "443"}},
  };
  for (const auto& env : envs) {
    auto config = LoadInCluster(FakeEnv(env), sa_);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(config.status().message(),
              "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
}

TEST_F(InClusterTest, BadPort) {
  for (const std::string port : {"https", "0", "65536", "99999999999"}) {
    auto config = LoadInCluster(
        FakeEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", port}}),
        sa_);
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().message(),
              "in-cluster: KUBERNETES_SERVICE_PORT \"" + port + "\" is not a port number");
  }
}

TEST_F(InClusterTest, MissingOrBadFiles) {
  const auto env =
      FakeEnv({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  Write("sa/ca.crt", "not pem");
  auto config = LoadInCluster(env, sa_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "in-cluster: " + sa_ + "/ca.crt is not PEM (no \"-----BEGIN\" line)");

  ASSERT_EQ(std::remove(Path("sa/ca.crt").c_str()), 0);
  config = LoadInCluster(env, sa_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            "in-cluster: cannot read " + sa_ + "/ca.crt: No such file or directory");

  ASSERT_EQ(std::remove(Path("sa/token").c_str()), 0);
  config = LoadInCluster(env, sa_);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "in-cluster: cannot read token file " + sa_ + "/token: No such file or directory");
}

// ---------------------------------------------------------------------------------------------
// LoadDefault

class LoadDefaultTest : public TempDirTest {
 protected:
  // A kubeconfig whose server names it, so that the chosen file is visible.
  std::string Kubeconfig(const std::string& rel, const std::string& host) {
    return Write(rel,
                 "current-context: a\n"
                 "clusters: [{name: c, cluster: {server: 'https://" +
                     host +
                     "'}}]\n"
                     "contexts: [{name: a, context: {cluster: c}}, "
                     "{name: b, context: {cluster: c, namespace: b-ns}}]\n");
  }
};

TEST_F(LoadDefaultTest, FlagWinsOverEverything) {
  const std::string flag = Kubeconfig("flag", "flag.example");
  const std::string env = Kubeconfig("env", "env.example");
  Kubeconfig("home/.kube/config", "home.example");
  auto config = LoadDefault(flag, "b",
                            FakeEnv({{"KUBECONFIG", env},
                                     {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                     {"KUBERNETES_SERVICE_PORT", "443"},
                                     {"HOME", Path("home")}}));
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://flag.example");
  EXPECT_EQ(config->source, "kubeconfig " + flag + " context b");
  EXPECT_EQ(config->namespace_, "b-ns");
}

TEST_F(LoadDefaultTest, KubeconfigEnvFirstEntry) {
  const std::string first = Kubeconfig("first", "first.example");
  const std::string second = Kubeconfig("second", "second.example");
  Kubeconfig("home/.kube/config", "home.example");
  const std::vector<std::string> values = {first, first + ":" + second, ":" + first + ":" + second};
  for (const std::string& value : values) {
    SCOPED_TRACE(value);
    auto config = LoadDefault("", "",
                              FakeEnv({{"KUBECONFIG", value},
                                       {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                       {"KUBERNETES_SERVICE_PORT", "443"},
                                       {"HOME", Path("home")}}));
    ASSERT_TRUE(config.ok()) << config.status().message();
    EXPECT_EQ(config->server, "https://first.example");
  }
  // A KUBECONFIG that names a missing file is an error, not a reason to fall through.
  auto config =
      LoadDefault("", "", FakeEnv({{"KUBECONFIG", Path("missing")}, {"HOME", Path("home")}}));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "kubeconfig " + Path("missing") + ": cannot read: No such file or directory");
}

TEST_F(LoadDefaultTest, InClusterWhenServiceHostSet) {
  Kubeconfig("home/.kube/config", "home.example");
  auto config = LoadDefault("", "",
                            FakeEnv({{"KUBECONFIG", ""},
                                     {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                     {"KUBERNETES_SERVICE_PORT", "443"},
                                     {"HOME", Path("home")}}));
  // The default service-account directory exists only inside a pod.
  if (config.ok()) {
    EXPECT_EQ(config->source, "in-cluster");
  } else {
    EXPECT_THAT(config.status().message(), StartsWith("in-cluster: "));
  }
}

TEST_F(LoadDefaultTest, HomeKubeconfigLast) {
  Kubeconfig("home/.kube/config", "home.example");
  auto config = LoadDefault("", "b", FakeEnv({{"HOME", Path("home")}}));
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->server, "https://home.example");
  EXPECT_EQ(config->source, "kubeconfig " + Path("home/.kube/config") + " context b");
}

TEST_F(LoadDefaultTest, NothingConfigured) {
  const std::string want =
      "no Kubernetes configuration: --kubeconfig not given, KUBECONFIG not set, "
      "KUBERNETES_SERVICE_HOST not set (not in a cluster), and no $HOME/.kube/config";
  for (const auto& env : std::vector<std::map<std::string, std::string>>{
           {}, {{"HOME", Path("empty-home")}}, {{"KUBECONFIG", ":"}, {"HOME", ""}}}) {
    auto config = LoadDefault("", "", FakeEnv(env));
    ASSERT_FALSE(config.ok());
    EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(config.status().message(), want);
  }
}

}  // namespace
}  // namespace rollgate::kube
