#include "controller/rollout/docker_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/fakes/base64.h"
#include "tests/fakes/fake_clock.h"

namespace rollgate::rollout {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A document in the shape `kubectl create secret docker-registry` writes.
std::string Config(const std::string& registry, const std::string& user, const std::string& pass) {
  return R"({"auths":{")" + registry + R"(":{"username":")" + user + R"(","password":")" + pass +
         R"(","auth":")" + testing::Base64Encode(user + ":" + pass) + R"("}}})";
}

// A credential as a pair, for comparisons and readable failures.
using UserPass = std::pair<std::string, std::string>;
UserPass Of(const RegistryCredential& c) { return {c.username, c.password}; }
std::optional<UserPass> Of(const std::optional<RegistryCredential>& c) {
  if (!c) return std::nullopt;
  return Of(*c);
}

std::map<std::string, RegistryCredential> ParseOk(const std::string& text) {
  auto r = ParseDockerConfigJson(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::map<std::string, RegistryCredential>();
}

std::string ParseError(const std::string& text) {
  auto r = ParseDockerConfigJson(text);
  EXPECT_FALSE(r.ok()) << "parsed: " << text;
  if (r.ok()) return {};
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

// ---------------------------------------------------------------------------------------------
// Key normalisation

TEST(NormaliseRegistryKeyTest, EveryForm) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"docker.io", "docker.io"},
      {"index.docker.io", "docker.io"},
      {"registry-1.docker.io", "docker.io"},
      {"https://index.docker.io/v1/", "docker.io"},
      {"https://index.docker.io/v2/", "docker.io"},
      {"http://registry-1.docker.io", "docker.io"},
      {"Index.Docker.IO", "docker.io"},
      {"HTTPS://Registry.Example.com:5000/v2/", "registry.example.com:5000"},
      {"https://registry.example.com", "registry.example.com"},
      {"http://localhost:5000/", "localhost:5000"},
      {"quay.io/team/app", "quay.io"},
      {"ghcr.io/v1/", "ghcr.io"},
      {"  ghcr.io \n", "ghcr.io"},
      {"10.0.0.1:5000", "10.0.0.1:5000"},
      {"[::1]:5000", "[::1]:5000"},
      {"https://", ""},
      {"/v1/", ""},
      {"", ""},
  };
  for (const auto& [key, want] : cases) EXPECT_EQ(NormaliseRegistryKey(key), want) << key;
}

TEST(ParseDockerConfigJsonTest, KeysNormalisedInTheMap) {
  const auto creds = ParseOk(R"({"auths":{
      "https://index.docker.io/v1/": {"auth": ")" +
                             testing::Base64Encode("hub:p1") + R"("},
      "HTTPS://Registry.Example.com:5000/v2/": {"auth": ")" +
                             testing::Base64Encode("ex:p2") + R"("},
      "quay.io/team": {"username": "q", "password": "p3"}}})");
  ASSERT_EQ(creds.size(), 3U);
  EXPECT_EQ(Of(creds.at("docker.io")), UserPass("hub", "p1"));
  EXPECT_EQ(Of(creds.at("registry.example.com:5000")), UserPass("ex", "p2"));
  EXPECT_EQ(Of(creds.at("quay.io")), UserPass("q", "p3"));
}

// ---------------------------------------------------------------------------------------------
// Entries

TEST(ParseDockerConfigJsonTest, KubectlShape) {
  const auto creds = ParseOk(Config("registry.example.com", "robot$ci", "s3cret"));
  ASSERT_EQ(creds.size(), 1U);
  EXPECT_EQ(Of(creds.at("registry.example.com")), UserPass("robot$ci", "s3cret"));
}

TEST(ParseDockerConfigJsonTest, AuthSplitsAtTheFirstColon) {
  const auto creds =
      ParseOk(R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode("u:pa:ss:") + R"("}}})");
  EXPECT_EQ(Of(creds.at("r.io")), UserPass("u", "pa:ss:"));
  // An empty password is a password.
  EXPECT_EQ(Of(ParseOk(R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode("u:") + R"("}}})")
                   .at("r.io")),
            UserPass("u", ""));
}

TEST(ParseDockerConfigJsonTest, AuthWinsOverUsernameAndPassword) {
  const auto creds = ParseOk(R"({"auths":{"r.io":{"username":"plain","password":"pw",
                                 "auth":")" +
                             testing::Base64Encode("fromauth:authpw") + R"("}}})");
  EXPECT_EQ(Of(creds.at("r.io")), UserPass("fromauth", "authpw"));
}

TEST(ParseDockerConfigJsonTest, UsernameAndPasswordWhenNoAuth) {
  EXPECT_EQ(Of(ParseOk(R"({"auths":{"r.io":{"username":"u","password":"p"}}})").at("r.io")),
            UserPass("u", "p"));
  // An empty "auth" is no auth (docker writes one for username/password entries sometimes).
  EXPECT_EQ(
      Of(ParseOk(R"({"auths":{"r.io":{"auth":"","username":"u","password":"p"}}})").at("r.io")),
      UserPass("u", "p"));
  EXPECT_EQ(Of(ParseOk(R"({"auths":{"r.io":{"username":"u"}}})").at("r.io")), UserPass("u", ""));
}

TEST(ParseDockerConfigJsonTest, TokenOnlyAndEmptyEntriesAreSkipped) {
  const auto creds = ParseOk(R"({"auths":{
      "a.io": {"identitytoken": "tok"},
      "b.io": {"registrytoken": "tok"},
      "c.io": {},
      "d.io": {"auth": "", "email": "x@y"},
      "e.io": {"username": "u", "password": "p", "email": "x@y"}}})");
  ASSERT_EQ(creds.size(), 1U);
  EXPECT_EQ(creds.count("e.io"), 1U);
}

TEST(ParseDockerConfigJsonTest, EmptyAuthsIsNoCredentials) {
  EXPECT_TRUE(ParseOk(R"({"auths":{}})").empty());
  // docker's config.json fields beside "auths" are ignored.
  EXPECT_TRUE(ParseOk(R"({"auths":{},"credsStore":"desktop","credHelpers":{"x.io":"y"}})").empty());
}

TEST(ParseDockerConfigJsonTest, TwoKeysForOneRegistry) {
  // The key written as the registry wins, whatever the order ...
  const std::string normalised_first =
      R"({"auths":{"docker.io":{"auth":")" + testing::Base64Encode("a:1") +
      R"("},"https://index.docker.io/v1/":{"auth":")" + testing::Base64Encode("b:2") + R"("}}})";
  EXPECT_EQ(ParseOk(normalised_first).at("docker.io").username, "a");
  const std::string normalised_last = R"({"auths":{"https://index.docker.io/v1/":{"auth":")" +
                                      testing::Base64Encode("b:2") + R"("},"docker.io":{"auth":")" +
                                      testing::Base64Encode("a:1") + R"("}}})";
  EXPECT_EQ(ParseOk(normalised_last).at("docker.io").username, "a");
  // ... else the key that sorts first.
  const std::string neither = R"({"auths":{"registry-1.docker.io":{"auth":")" +
                              testing::Base64Encode("c:3") + R"("},"index.docker.io":{"auth":")" +
                              testing::Base64Encode("d:4") + R"("}}})";
  EXPECT_EQ(ParseOk(neither).at("docker.io").username, "d");
}

TEST(ParseDockerConfigJsonTest, LegacyDockercfg) {
  const auto creds =
      ParseOk(R"({"https://index.docker.io/v1/":{"auth":")" + testing::Base64Encode("old:pw") +
              R"(","email":"x@y"},"r.io":{"auth":")" + testing::Base64Encode("r:pw2") + R"("}})");
  ASSERT_EQ(creds.size(), 2U);
  EXPECT_EQ(Of(creds.at("docker.io")), UserPass("old", "pw"));
  EXPECT_EQ(Of(creds.at("r.io")), UserPass("r", "pw2"));
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(ParseDockerConfigJsonTest, MalformedJson) {
  EXPECT_THAT(ParseError(R"({"auths":{"r.io":{"auth":"x"})"),
              StartsWith("dockerconfigjson: not valid JSON at line 1, column"));
  EXPECT_THAT(ParseError(""), StartsWith("dockerconfigjson: not valid JSON"));
  EXPECT_THAT(ParseError("{\"auths\":\n{,}}"), HasSubstr("at line 2, column"));
}

TEST(ParseDockerConfigJsonTest, NotADockerConfig) {
  EXPECT_EQ(ParseError("[]"), "dockerconfigjson: the top level is not a JSON object");
  EXPECT_EQ(ParseError(R"("auths")"), "dockerconfigjson: the top level is not a JSON object");
  EXPECT_THAT(ParseError("{}"), HasSubstr("no \"auths\" object"));
  EXPECT_THAT(ParseError(R"({"credsStore":"desktop"})"), HasSubstr("no \"auths\" object"));
  EXPECT_THAT(ParseError(R"({"r.io":{"username":"u"}})"), HasSubstr("no \"auths\" object"));
  EXPECT_EQ(ParseError(R"({"auths":[]})"), "dockerconfigjson: \"auths\" is not an object");
  EXPECT_EQ(ParseError(R"({"auths":null})"), "dockerconfigjson: \"auths\" is not an object");
}

TEST(ParseDockerConfigJsonTest, BadEntriesNameTheKey) {
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":"x"}})"),
            "dockerconfigjson: registry \"r.io\": the entry is not an object");
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"auth":5}}})"),
            "dockerconfigjson: registry \"r.io\": \"auth\" is not a string");
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"username":["u"]}}})"),
            "dockerconfigjson: registry \"r.io\": \"username\" is not a string");
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"username":"u","password":true}}})"),
            "dockerconfigjson: registry \"r.io\": \"password\" is not a string");
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"password":"p"}}})"),
            "dockerconfigjson: registry \"r.io\": \"password\" without \"username\"");
  EXPECT_EQ(ParseError(R"({"auths":{"https://":{"auth":"x"}}})"),
            "dockerconfigjson: registry \"https://\": the key names no registry host");
}

TEST(ParseDockerConfigJsonTest, AuthNotBase64) {
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"auth":"not base64!"}}})"),
            "dockerconfigjson: registry \"r.io\": \"auth\" is not valid base64");
  // Unpadded "u:p1" (base64.StdEncoding refuses it too).
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"auth":"dTpwMQ"}}})"),
            "dockerconfigjson: registry \"r.io\": \"auth\" is not valid base64");
}

TEST(ParseDockerConfigJsonTest, AuthWithoutColon) {
  EXPECT_EQ(
      ParseError(R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode("justatoken") + R"("}}})"),
      "dockerconfigjson: registry \"r.io\": \"auth\" does not decode to user:password "
      "(no ':')");
  EXPECT_EQ(ParseError(R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode(":pw") + R"("}}})"),
            "dockerconfigjson: registry \"r.io\": \"auth\" has an empty user name");
}

// The secret, its base64 and its pieces appear in no error, wherever in the document the
// problem is.
TEST(ParseDockerConfigJsonTest, NoSecretInAnyError) {
  const std::string secret = "Hunter2Secret";
  const std::string b64 = testing::Base64Encode("user:" + secret);
  const std::vector<std::string> bad = {
      // auth: not base64 (the secret itself, and base64 broken by one character)
      R"({"auths":{"r.io":{"auth":")" + secret + R"("}}})",
      R"({"auths":{"r.io":{"auth":")" + b64 + R"(!"}}})",
      R"({"auths":{"r.io":{"auth":")" + b64.substr(0, b64.size() - 1) + R"("}}})",
      // auth: no colon, empty user
      R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode(secret) + R"("}}})",
      R"({"auths":{"r.io":{"auth":")" + testing::Base64Encode(":" + secret) + R"("}}})",
      // password without username; wrong types next to a secret
      R"({"auths":{"r.io":{"password":")" + secret + R"("}}})",
      R"({"auths":{"r.io":{"username":")" + secret + R"(","password":1}}})",
      // malformed JSON right at the secret
      R"({"auths":{"r.io":{"auth":")" + b64 + R"(\q"}}})",
      R"({"auths":{"r.io":{"password":)" + secret + R"(}}})",
      R"({"auths":{"r.io":{"auth":")" + b64,
      R"({"auths":{"r.io":{"password":"\u)" + secret + R"("}}})",
  };
  for (const std::string& doc : bad) {
    const std::string msg = ParseError(doc);
    EXPECT_THAT(msg, Not(HasSubstr(secret))) << doc;
    EXPECT_THAT(msg, Not(HasSubstr(b64.substr(0, 8)))) << doc;
    EXPECT_THAT(msg, Not(HasSubstr(testing::Base64Encode(secret).substr(0, 8)))) << doc;
  }
}

// ---------------------------------------------------------------------------------------------
// DockerConfigFile

class DockerConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "rollgate_dockercfg_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << "mkdtemp " << tmpl;
    dir_ = tmpl;
    path_ = dir_ + "/.dockerconfigjson";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `content` to a new file and renames it over `path` (a new inode, as the kubelet's
  // atomic writer gives).
  void Replace(const std::string& path, const std::string& content) {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << content;
      ASSERT_TRUE(out.good()) << tmp;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
  }

  testing::FakeClock clock_;
  std::string dir_;
  std::string path_;
};

TEST_F(DockerConfigFileTest, LoadAndLookUp) {
  Replace(path_, Config("https://index.docker.io/v1/", "hub", "pw"));
  DockerConfigFile file(path_, clock_);
  ASSERT_TRUE(file.Load().ok());
  EXPECT_EQ(Of(file.For("docker.io")), UserPass("hub", "pw"));
  EXPECT_EQ(Of(file.For("index.docker.io")), UserPass("hub", "pw"));
  EXPECT_EQ(file.For("quay.io"), std::nullopt);  // anonymous
  EXPECT_EQ(file.path(), path_);
}

TEST_F(DockerConfigFileTest, LoadErrorsNameThePathNotTheContent) {
  DockerConfigFile missing(dir_ + "/absent", clock_);
  const Status st = missing.Load();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "cannot read registry auth file " + dir_ + "/absent: No such file or directory");
  EXPECT_EQ(missing.For("docker.io"), std::nullopt);

  DockerConfigFile directory(dir_, clock_);
  EXPECT_THAT(directory.Load().message(), HasSubstr("Is a directory"));

  Replace(path_, R"({"auths":{"r.io":{"auth":"SECRETSECRET!"}}})");
  DockerConfigFile bad(path_, clock_);
  const Status bad_st = bad.Load();
  EXPECT_EQ(bad_st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_st.message(), "registry auth file " + path_ +
                                  ": dockerconfigjson: registry \"r.io\": \"auth\" is not valid "
                                  "base64");
}

TEST_F(DockerConfigFileTest, RereadsAReplacedFileAtMostOnceASecond) {
  Replace(path_, Config("r.io", "u", "one"));
  DockerConfigFile file(path_, clock_);
  ASSERT_TRUE(file.Load().ok());
  Replace(path_, Config("r.io", "u", "two"));
  EXPECT_EQ(file.For("r.io")->password, "one");  // less than a second since the last look
  clock_.Advance(std::chrono::milliseconds(999));
  EXPECT_EQ(file.For("r.io")->password, "one");
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(file.For("r.io")->password, "two");
  // A registry that left the file is anonymous from then on.
  Replace(path_, Config("other.io", "u", "three"));
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io"), std::nullopt);
  EXPECT_EQ(file.For("other.io")->password, "three");
}

// The kubelet's atomic writer: the file is a symlink through ..data, which is swapped to a new
// timestamped folder.
TEST_F(DockerConfigFileTest, FollowsASwappedSymlink) {
  fs::create_directories(dir_ + "/ts1");
  fs::create_directories(dir_ + "/ts2");
  Replace(dir_ + "/ts1/.dockerconfigjson", Config("r.io", "u", "one"));
  Replace(dir_ + "/ts2/.dockerconfigjson", Config("r.io", "u", "two"));
  fs::create_directory_symlink("ts1", dir_ + "/..data");
  fs::create_symlink("..data/.dockerconfigjson", path_);
  DockerConfigFile file(path_, clock_);
  ASSERT_TRUE(file.Load().ok());
  EXPECT_EQ(file.For("r.io")->password, "one");

  fs::create_directory_symlink("ts2", dir_ + "/..data_tmp");
  fs::rename(dir_ + "/..data_tmp", dir_ + "/..data");
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "two");
}

TEST_F(DockerConfigFileTest, KeepsTheLastGoodContentAndWarnsOncePerFailure) {
  Replace(path_, Config("r.io", "u", "good"));
  DockerConfigFile file(path_, clock_);
  ASSERT_TRUE(file.Load().ok());

  ::testing::internal::CaptureStderr();
  Replace(path_, R"({"auths":{"r.io":{"auth":"TOPSECRETVALUE"}}})");
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  // The same bad content, and another copy of it: no second warning.
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  Replace(path_, R"({"auths":{"r.io":{"auth":"TOPSECRETVALUE"}}} )");
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  // A different failure warns again.
  Replace(path_, R"({"auths":{"r.io":{"auth":)");
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  // So does a file that is gone.
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "good");
  const std::string log = ::testing::internal::GetCapturedStderr();

  EXPECT_THAT(log, Not(HasSubstr("TOPSECRET")));
  EXPECT_THAT(log, Not(HasSubstr("good")));
  std::size_t warnings = 0;
  for (auto pos = log.find("level=warning"); pos != std::string::npos;
       pos = log.find("level=warning", pos + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 3U) << log;
  EXPECT_THAT(log, HasSubstr("\\\"auth\\\" is not valid base64"));
  EXPECT_THAT(log, HasSubstr("not valid JSON"));
  EXPECT_THAT(log, HasSubstr("No such file or directory"));

  // A good file again is used again.
  Replace(path_, Config("r.io", "u", "fixed"));
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_EQ(file.For("r.io")->password, "fixed");
}

TEST_F(DockerConfigFileTest, ForWithoutLoadReadsTheFile) {
  Replace(path_, Config("r.io", "u", "lazy"));
  DockerConfigFile file(path_, clock_);
  EXPECT_EQ(file.For("r.io")->password, "lazy");
}

TEST_F(DockerConfigFileTest, RealClockConstructor) {
  Replace(path_, Config("r.io", "u", "p"));
  DockerConfigFile file(path_);
  ASSERT_TRUE(file.Load().ok());
  EXPECT_EQ(file.For("r.io")->username, "u");
}

// Lookups from several threads while the file is replaced and the clock moves: every answer is
// one of the contents written (run under TSan by the sanitizer tree).
TEST_F(DockerConfigFileTest, ConcurrentLookups) {
  Replace(path_, Config("r.io", "u", "p0"));
  DockerConfigFile file(path_, clock_);
  ASSERT_TRUE(file.Load().ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  readers.reserve(4);
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&file, &stop, &bad] {
      while (!stop.load()) {
        const auto c = file.For("r.io");
        if (!c || c->username != "u" || c->password.size() != 2) bad.fetch_add(1);
      }
    });
  }
  for (int i = 1; i < 20; ++i) {
    Replace(path_, Config("r.io", "u", "p" + std::to_string(i % 10)));
    clock_.Advance(std::chrono::seconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop.store(true);
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace rollgate::rollout
