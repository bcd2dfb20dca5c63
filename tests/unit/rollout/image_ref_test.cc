#include "controller/rollout/image_ref.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace rollgate::rollout {
namespace {

// Built per use, not at namespace scope (cert-err58-cpp).
std::string Hex64() { return "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"; }
std::string Hex96() { return Hex64() + std::string(Hex64(), 0, 32); }
std::string Hex128() { return Hex64() + Hex64(); }
std::string Sha256() { return "sha256:" + Hex64(); }
std::string Sha384() { return "sha384:" + Hex96(); }
std::string Sha512() { return "sha512:" + Hex128(); }

// ---------------------------------------------------------------------------------------------
// Valid references.

struct ValidCase {
  std::string input;
  std::string registry;
  std::string repository;
  std::string tag;
  std::string digest;
  std::string familiar;
};

void PrintTo(const ValidCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ImageRefValidTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ImageRefValidTest, Parses) {
  const ValidCase& c = GetParam();
  Result<ImageRef> r = ParseImageRef(c.input);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->registry, c.registry);
  EXPECT_EQ(r->repository, c.repository);
  EXPECT_EQ(r->tag, c.tag);
  EXPECT_EQ(r->digest, c.digest);
  EXPECT_EQ(r->Familiar(), c.familiar);
}

TEST_P(ImageRefValidTest, FamiliarFormParsesToTheSameRef) {
  const ValidCase& c = GetParam();
  Result<ImageRef> first = ParseImageRef(c.input);
  ASSERT_TRUE(first.ok()) << first.status().message();
  Result<ImageRef> again = ParseImageRef(first->Familiar());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(*again, *first);
}

std::string LongTag() { return std::string(128, 't'); }
// registry.io/ (12) + 243 = 255 characters of name.
std::string MaxName() { return "registry.io/" + std::string(243, 'a'); }

INSTANTIATE_TEST_SUITE_P(
    ImageRef, ImageRefValidTest,
    ::testing::Values(
        // Docker Hub, with the docker.io / library/ normalisation.
        ValidCase{"nginx", "docker.io", "library/nginx", "", "", "nginx"},
        ValidCase{"nginx:1.25", "docker.io", "library/nginx", "1.25", "", "nginx:1.25"},
        ValidCase{"nginx:latest", "docker.io", "library/nginx", "latest", "", "nginx:latest"},
        ValidCase{"library/nginx:1", "docker.io", "library/nginx", "1", "", "nginx:1"},
        ValidCase{"docker.io/nginx", "docker.io", "library/nginx", "", "", "nginx"},
        ValidCase{"docker.io/library/nginx:1.25-alpine", "docker.io", "library/nginx",
                  "1.25-alpine", "", "nginx:1.25-alpine"},
        ValidCase{"index.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", "",
                  "bitnami/redis:7"},
        ValidCase{"bitnami/redis", "docker.io", "bitnami/redis", "", "", "bitnami/redis"},
        ValidCase{"a/b/c", "docker.io", "a/b/c", "", "", "a/b/c"},
        ValidCase{"docker.io/library/a/b", "docker.io", "library/a/b", "", "", "library/a/b"},
        // Docker's grammar: without a '/', "localhost:5000" is the image "localhost", tag 5000.
        ValidCase{"localhost:5000", "docker.io", "library/localhost", "5000", "", "localhost:5000"},
        // Registries, ports, localhost, IP addresses.
        ValidCase{"registry.example.com/app/backend:2.0.0", "registry.example.com", "app/backend",
                  "2.0.0", "", "registry.example.com/app/backend:2.0.0"},
        ValidCase{"registry.example.com:5000/app/backend:2.0.0", "registry.example.com:5000",
                  "app/backend", "2.0.0", "", "registry.example.com:5000/app/backend:2.0.0"},
        ValidCase{"localhost/app", "localhost", "app", "", "", "localhost/app"},
        ValidCase{"localhost:5000/app:dev", "localhost:5000", "app", "dev", "",
                  "localhost:5000/app:dev"},
        ValidCase{"10.0.0.1:5000/x", "10.0.0.1:5000", "x", "", "", "10.0.0.1:5000/x"},
        ValidCase{"10.0.0.1/x:1", "10.0.0.1", "x", "1", "", "10.0.0.1/x:1"},
        ValidCase{"[::1]:5000/app:1", "[::1]:5000", "app", "1", "", "[::1]:5000/app:1"},
        ValidCase{"[fe80::1]/app", "[fe80::1]", "app", "", "", "[fe80::1]/app"},
        ValidCase{"my-registry.io:443/team/app", "my-registry.io:443", "team/app", "", "",
                  "my-registry.io:443/team/app"},
        ValidCase{"Registry.Example.COM/app:1", "registry.example.com", "app", "1", "",
                  "registry.example.com/app:1"},
        ValidCase{"gcr.io/a/b/c/d/e:v1", "gcr.io", "a/b/c/d/e", "v1", "", "gcr.io/a/b/c/d/e:v1"},
        // Digests, and tag plus digest.
        ValidCase{"registry.io/app@" + Sha256(), "registry.io", "app", "", Sha256(),
                  "registry.io/app@" + Sha256()},
        ValidCase{"registry.io/app:2.0@" + Sha256(), "registry.io", "app", "2.0", Sha256(),
                  "registry.io/app:2.0@" + Sha256()},
        ValidCase{"ubuntu@" + Sha256(), "docker.io", "library/ubuntu", "", Sha256(),
                  "ubuntu@" + Sha256()},
        ValidCase{"nginx@" + Sha384(), "docker.io", "library/nginx", "", Sha384(),
                  "nginx@" + Sha384()},
        ValidCase{"localhost:5000/app:1@" + Sha512(), "localhost:5000", "app", "1", Sha512(),
                  "localhost:5000/app:1@" + Sha512()},
        // Separators in path components; tag characters.
        ValidCase{"registry.io/my_app/some__thing:1", "registry.io", "my_app/some__thing", "1", "",
                  "registry.io/my_app/some__thing:1"},
        ValidCase{"registry.io/my-app/a---b:1", "registry.io", "my-app/a---b", "1", "",
                  "registry.io/my-app/a---b:1"},
        ValidCase{"registry.io/app.v2/x.y.z:1", "registry.io", "app.v2/x.y.z", "1", "",
                  "registry.io/app.v2/x.y.z:1"},
        ValidCase{"registry.io/app:_build", "registry.io", "app", "_build", "",
                  "registry.io/app:_build"},
        ValidCase{"registry.io/app:V1.0-RC_1", "registry.io", "app", "V1.0-RC_1", "",
                  "registry.io/app:V1.0-RC_1"},
        ValidCase{"registry.io/app:" + LongTag(), "registry.io", "app", LongTag(), "",
                  "registry.io/app:" + LongTag()},
        ValidCase{MaxName() + ":1", "registry.io", std::string(243, 'a'), "1", "",
                  MaxName() + ":1"},
        ValidCase{"0/1", "docker.io", "0/1", "", "", "0/1"}));

// ---------------------------------------------------------------------------------------------
// Invalid references and their messages.

struct InvalidCase {
  std::string input;
  std::string message;
};

void PrintTo(const InvalidCase& c, std::ostream* os) { *os << '"' << c.input << '"'; }

class ImageRefInvalidTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(ImageRefInvalidTest, IsRejectedWithMessage) {
  const InvalidCase& c = GetParam();
  Result<ImageRef> r = ParseImageRef(c.input);
  ASSERT_FALSE(r.ok()) << "parsed as " << r->registry << " / " << r->repository;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), c.message);
}

std::string Msg(const std::string& input, const std::string& problem) {
  return "image \"" + input + "\": " + problem;
}
InvalidCase Bad(const std::string& input, const std::string& problem) {
  return {input, Msg(input, problem)};
}

std::string UpperHex64() {
  return "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
}

INSTANTIATE_TEST_SUITE_P(
    ImageRef, ImageRefInvalidTest,
    ::testing::Values(
        Bad("", "reference is empty"), Bad("Registry.io/App:1", "repository must be lowercase"),
        Bad("Nginx", "repository must be lowercase"),
        Bad("registry.io/team/App", "repository must be lowercase"),
        Bad("https://registry.io/app:1",
            "reference must not include a scheme such as \"https://\""),
        Bad("registry.io/app:", "tag is empty (trailing ':')"),
        Bad("registry.io/app@", "digest is empty (trailing '@')"),
        Bad("registry.io/app:1@", "digest is empty (trailing '@')"),
        Bad("registry.io/app :1", "reference must not contain whitespace or control characters"),
        InvalidCase{"\tnginx",
                    "image \"\\x09nginx\": reference must not contain whitespace or control "
                    "characters"},
        InvalidCase{"registry.io/app\n",
                    "image \"registry.io/app\\x0a\": reference must not contain whitespace or "
                    "control characters"},
        Bad("registry.io//app", "repository \"/app\" has an empty path component"),
        Bad("registry.io/app/", "repository \"app/\" has an empty path component"),
        Bad("/app", "repository \"/app\" has an empty path component"),
        Bad("registry.io/", "repository is empty"), Bad(":1", "repository name is empty"),
        Bad("@" + Sha256(), "repository name is empty"),
        Bad("registry.io/app:-1", "tag must start with a letter, digit or '_'"),
        Bad("registry.io/app:.1", "tag must start with a letter, digit or '_'"),
        Bad("registry.io/app:1!", "tag contains invalid character '!'"),
        Bad("registry.io/app:" + std::string(129, 't'),
            "tag is 129 characters long; the limit is 128"),
        Bad("registry.io/app@sha256:abc", "sha256 digest must have 64 hex characters, not 3"),
        Bad("registry.io/app@sha512:" + Hex64(),
            "sha512 digest must have 128 hex characters, not 64"),
        Bad("registry.io/app@sha256:" + UpperHex64(), "digest must be lowercase hex"),
        Bad("registry.io/app@sha256:" + std::string(63, 'a') + "g",
            "digest contains invalid character 'g'"),
        Bad("registry.io/app@md5:" + Hex64(),
            "digest algorithm \"md5\" is not supported (sha256, sha384, sha512)"),
        Bad("registry.io/app@" + Hex64(),
            "digest \"" + Hex64() + "\" must be <algorithm>:<hex>, e.g. sha256:<64 hex>"),
        Bad("registry.io/a..b",
            "path component \"a..b\" has an invalid separator \"..\" "
            "(use '.', '_', '__' or dashes between letters and digits)"),
        Bad("registry.io/a___b",
            "path component \"a___b\" has an invalid separator "
            "\"___\" (use '.', '_', '__' or dashes between letters and "
            "digits)"),
        Bad("registry.io/a-_b",
            "path component \"a-_b\" has an invalid separator \"-_\" "
            "(use '.', '_', '__' or dashes between letters and digits)"),
        Bad("registry.io/-app",
            "path component \"-app\" must start and end with a lowercase letter or digit"),
        Bad("registry.io/app_",
            "path component \"app_\" must start and end with a lowercase letter or digit"),
        Bad("registry.io/ap%p", "repository contains invalid character '%'"),
        Bad("registry.io/app:1:2", "repository contains invalid character ':'"),
        Bad("registry.io:99999/app", "registry \"registry.io:99999\" has a port outside 1-65535"),
        Bad("registry.io:0/app", "registry \"registry.io:0\" has a port outside 1-65535"),
        Bad("registry.io:/app", "registry \"registry.io:\" has an empty port"),
        Bad("registry.io:http/app",
            "registry \"registry.io:http\" has a port that is not a number"),
        Bad("reg..io/app", "registry \"reg..io\" has an empty host label"),
        Bad(".io/app", "registry \".io\" has an empty host label"),
        Bad("-reg.io/app", "registry \"-reg.io\" has a host label that starts or ends with '-'"),
        Bad("reg_istry.io/app", "registry \"reg_istry.io\" contains invalid character '_'"),
        Bad("[::1/app", "registry \"[::1\" has an unterminated IPv6 address"),
        Bad("[zz::1]/app", "registry \"[zz::1]\" has an invalid IPv6 address"),
        // The name in the message is shortened to 200 characters.
        InvalidCase{"registry.io/" + std::string(244, 'a'),
                    "image \"registry.io/" + std::string(188, 'a') +
                        "...\": name is 256 characters long; the limit is 255"},
        Bad(Hex64(), "a 64-character hex string is an image ID, not a reference")));

TEST(ImageRefMessageTest, VeryLongInputIsShortenedInTheMessage) {
  const std::string input = "registry.io/" + std::string(5000, 'A');
  Result<ImageRef> r = ParseImageRef(input);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 400u);
  EXPECT_NE(r.status().message().find("...\": "), std::string::npos) << r.status().message();
}

TEST(ImageRefMessageTest, NonAsciiIsEscaped) {
  Result<ImageRef> r = ParseImageRef("registry.io/caf\xc3\xa9");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "image \"registry.io/caf\\xc3\\xa9\": repository contains invalid character '\\xc3'");
}

// ---------------------------------------------------------------------------------------------
// --allowed-registries matching.

struct AllowCase {
  std::vector<std::string> allowed;
  std::string image;
  bool allowed_result;
};

void PrintTo(const AllowCase& c, std::ostream* os) {
  *os << '"' << c.image << "\" against {";
  for (const std::string& a : c.allowed) *os << a << ' ';
  *os << '}';
}

class AllowedRegistriesMatchTest : public ::testing::TestWithParam<AllowCase> {};

TEST_P(AllowedRegistriesMatchTest, Decides) {
  const AllowCase& c = GetParam();
  Result<ImageRef> ref = ParseImageRef(c.image);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  Status st = CheckAllowedRegistry(*ref, c.allowed, c.image);
  EXPECT_EQ(st.ok(), c.allowed_result) << st.message();
  if (!st.ok()) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllowedRegistries, AllowedRegistriesMatchTest,
    ::testing::Values(
        // An empty list allows everything.
        AllowCase{{}, "nginx", true}, AllowCase{{}, "anything.io:1234/x/y:1", true},
        // Exact registry; the port must match too.
        AllowCase{{"registry.example.com"}, "registry.example.com/app:1", true},
        AllowCase{{"registry.example.com"}, "registry.example.com/a/b/c@" + Sha256(), true},
        AllowCase{{"registry.example.com"}, "registry.example.com:5000/app:1", false},
        AllowCase{{"registry.example.com"}, "other.example.com/app:1", false},
        AllowCase{{"registry.example.com"}, "registry.example.com.evil.io/app:1", false},
        AllowCase{{"registry.example.com:5000"}, "registry.example.com:5000/app:1", true},
        AllowCase{{"registry.example.com:5000"}, "registry.example.com/app:1", false},
        AllowCase{{"registry.example.com:5000"}, "registry.example.com:5001/app:1", false},
        AllowCase{{"Registry.Example.com"}, "registry.example.COM/app", true},
        AllowCase{{"a.io", "b.io"}, "b.io/app", true},
        // Wildcards: any subdomain, not the apex, not a look-alike suffix.
        AllowCase{{"*.example.com"}, "a.example.com/x", true},
        AllowCase{{"*.example.com"}, "a.b.example.com/x:1", true},
        AllowCase{{"*.example.com"}, "example.com/x", false},
        AllowCase{{"*.example.com"}, "badexample.com/x", false},
        AllowCase{{"*.example.com"}, "a.example.com.evil.io/x", false},
        AllowCase{{"*.example.com"}, "a.example.com:5000/x", false},
        AllowCase{{"*.example.com:5000"}, "a.example.com:5000/x", true},
        AllowCase{{"*.example.com:5000"}, "a.example.com/x", false},
        // Repository prefixes, on whole path components.
        AllowCase{{"registry.io/team"}, "registry.io/team/app:1", true},
        AllowCase{{"registry.io/team"}, "registry.io/team/sub/app:1", true},
        AllowCase{{"registry.io/team"}, "registry.io/team:1", true},
        AllowCase{{"registry.io/team"}, "registry.io/teamx/app:1", false},
        AllowCase{{"registry.io/team"}, "registry.io/other/app:1", false},
        AllowCase{{"registry.io/team"}, "other.io/team/app:1", false},
        AllowCase{{"registry.io/team/sub"}, "registry.io/team/app:1", false},
        AllowCase{{"*.example.com/team"}, "r.example.com/team/app", true},
        AllowCase{{"*.example.com/team"}, "r.example.com/teamx/app", false},
        // Docker Hub.
        AllowCase{{"docker.io"}, "nginx:1", true}, AllowCase{{"docker.io"}, "bitnami/redis", true},
        AllowCase{{"index.docker.io"}, "nginx", true},
        AllowCase{{"docker.io/library"}, "nginx", true},
        AllowCase{{"docker.io/library"}, "bitnami/redis", false},
        AllowCase{{"docker.io/bitnami"}, "bitnami/redis:7", true},
        AllowCase{{"registry.io"}, "nginx", false},
        // localhost and IP addresses.
        AllowCase{{"localhost:5000"}, "localhost:5000/app", true},
        AllowCase{{"localhost:5000"}, "localhost/app", false},
        AllowCase{{"10.0.0.1:5000"}, "10.0.0.1:5000/x", true},
        AllowCase{{"10.0.0.1"}, "10.0.0.1:5000/x", false},
        AllowCase{{"[::1]:5000"}, "[::1]:5000/app", true},
        // Entries that would fail validation never match.
        AllowCase{{"https://registry.io"}, "registry.io/app", false},
        AllowCase{{"*"}, "registry.io/app", false}, AllowCase{{""}, "registry.io/app", false}));

TEST(AllowedRegistriesTest, RegistryMessage) {
  Result<ImageRef> ref = ParseImageRef("x/y:1");
  ASSERT_TRUE(ref.ok());
  Status st = CheckAllowedRegistry(*ref, {"a.io", "b.io"}, "x/y:1");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(),
            "image \"x/y:1\" is from registry \"docker.io\", which is not in "
            "--allowed-registries (a.io, b.io)");
}

TEST(AllowedRegistriesTest, RepositoryMessageWhenOnlyThePathPrefixFails) {
  Result<ImageRef> ref = ParseImageRef("registry.io/teamx/app:1");
  ASSERT_TRUE(ref.ok());
  Status st = CheckAllowedRegistry(*ref, {"registry.io/team"}, "registry.io/teamx/app:1");
  EXPECT_EQ(st.message(),
            "image \"registry.io/teamx/app:1\" is from repository \"registry.io/teamx/app\", "
            "which is not in --allowed-registries (registry.io/team)");
}

TEST(AllowedRegistriesTest, MessageEscapesTheOriginal) {
  ImageRef ref{"evil.io", "app", "1", ""};
  Status st = CheckAllowedRegistry(ref, {"a.io"}, "evil.io/app:1\"\n");
  EXPECT_EQ(st.message(),
            "image \"evil.io/app:1\\\"\\x0a\" is from registry \"evil.io\", which is not in "
            "--allowed-registries (a.io)");
}

// ---------------------------------------------------------------------------------------------
// Validation of the flag entries.

TEST(AllowedRegistriesValidateTest, AcceptsValidEntries) {
  EXPECT_TRUE(ValidateAllowedRegistries({}).ok());
  Status st = ValidateAllowedRegistries(
      {"registry.example.com", "registry.example.com:5000", "*.example.com",
       "registry.example.com/team", "localhost", "localhost:5000", "10.0.0.1:5000", "[::1]:5000",
       "*.example.com:5000/team/sub", "docker.io/library", "Registry.Example.com"});
  EXPECT_TRUE(st.ok()) << st.message();
}

struct BadEntryCase {
  std::string entry;
  std::string message;
};

void PrintTo(const BadEntryCase& c, std::ostream* os) { *os << '"' << c.entry << '"'; }

class AllowedRegistriesValidateBadTest : public ::testing::TestWithParam<BadEntryCase> {};

TEST_P(AllowedRegistriesValidateBadTest, IsRejectedWithMessage) {
  const BadEntryCase& c = GetParam();
  Status st = ValidateAllowedRegistries({"ok.io", c.entry});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), c.message);
}

BadEntryCase BadEntry(const std::string& entry, const std::string& problem) {
  return {entry, "--allowed-registries entry \"" + entry + "\": " + problem};
}

INSTANTIATE_TEST_SUITE_P(
    AllowedRegistries, AllowedRegistriesValidateBadTest,
    ::testing::Values(
        BadEntryCase{"", "--allowed-registries entry 2 is empty"},
        BadEntry("https://registry.io",
                 "must not include a scheme; write the registry host, e.g. "
                 "\"registry.example.com\""),
        BadEntry(" registry.io", "must not contain whitespace or control characters"),
        BadEntry("registry.io/team:1", "must not include a tag"),
        BadEntry("registry.io/app@" + Sha256(), "must not include a digest"),
        BadEntry("*", "may use '*' only as a leading \"*.\", e.g. \"*.example.com\""),
        BadEntry("a.*.com", "may use '*' only as a leading \"*.\", e.g. \"*.example.com\""),
        BadEntry("*.*.example.com", "may use '*' only as a leading \"*.\", e.g. \"*.example.com\""),
        BadEntry("*.", "needs a domain name after \"*.\", e.g. \"*.example.com\""),
        BadEntry("nginx",
                 "\"nginx\" is not a registry host: a registry contains '.' or ':' or is "
                 "\"localhost\" (for Docker Hub images write \"docker.io/library/nginx\" or "
                 "\"docker.io/<org>\")"),
        BadEntry("registry.io:0", "registry \"registry.io:0\" has a port outside 1-65535"),
        BadEntry("registry.io:", "registry \"registry.io:\" has an empty port"),
        BadEntry("reg..io", "registry \"reg..io\" has an empty host label"),
        BadEntry("registry.io/", "repository is empty"),
        BadEntry("registry.io/team/", "repository \"team/\" has an empty path component"),
        BadEntry("registry.io/Team", "repository must be lowercase")));

}  // namespace
}  // namespace rollgate::rollout
