// The OCI Distribution API's answers decoded (issue 16): image indexes and manifests in the OCI
// and Docker v2 media types, platform selection (variants, attestation entries), layer-size
// arithmetic, digest checks, WWW-Authenticate challenges, token answers, and byte quantities.
#include "controller/rollout/oci_manifest.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "controller/common/digest.h"

namespace rollgate::rollout {
namespace {

std::string Digest(char c) { return "sha256:" + std::string(64, c); }

// A two-platform OCI index as `skopeo copy --all` pushes it, with a BuildKit attestation entry.
std::string Index() {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)"
         R"("manifests":[)"
         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         Digest('a') +
         R"(","size":1051,"platform":{"architecture":"amd64","os":"linux"}},)"
         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         Digest('b') +
         R"(","size":1051,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},)"
         R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
         Digest('c') + R"(","size":566,"platform":{"architecture":"unknown","os":"unknown"}}]})";
}

// A Docker v2 image manifest (docker-registry serves these for images pushed by docker).
std::string DockerImage() {
  return R"({"schemaVersion":2,"mediaType":)"
         R"("application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":)"
         R"("application/vnd.docker.container.image.v1+json","size":1470,"digest":")" +
         Digest('d') +
         R"("},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",)"
         R"("size":29124181,"digest":")" +
         Digest('e') +
         R"("},{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip",)"
         R"("size":900000000,"digest":")" +
         Digest('f') + R"("}]})";
}

TEST(OciManifest, AnIndexListsItsPlatformsWithoutAttestations) {
  auto m = DecodeManifest(Index(), "application/vnd.oci.image.index.v1+json");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->kind, Manifest::Kind::kIndex);
  EXPECT_EQ(m->media_type, kOciIndexType);
  ASSERT_EQ(m->manifests.size(), 3U);
  auto platforms = m->Platforms();
  ASSERT_EQ(platforms.size(), 2U);
  EXPECT_EQ(platforms[0].ToString(), "linux/amd64");
  EXPECT_EQ(platforms[1].ToString(), "linux/arm64/v8");
}

TEST(OciManifest, SelectPlatformMatchesVariantsAsContainerdDoes) {
  auto m = DecodeManifest(Index(), "");
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Descriptor* amd = SelectPlatform(*m, Platform{"linux", "amd64", ""});
  ASSERT_NE(amd, nullptr);
  EXPECT_EQ(amd->digest, Digest('a'));
  const Descriptor* arm = SelectPlatform(*m, Platform{"linux", "arm64", ""});
  ASSERT_NE(arm, nullptr);
  EXPECT_EQ(arm->digest, Digest('b'));
  EXPECT_NE(SelectPlatform(*m, Platform{"linux", "arm64", "v8"}), nullptr);
  EXPECT_EQ(SelectPlatform(*m, Platform{"linux", "arm64", "v9"}), nullptr);
  EXPECT_EQ(SelectPlatform(*m, Platform{"linux", "s390x", ""}), nullptr);
  EXPECT_EQ(SelectPlatform(*m, Platform{"windows", "amd64", ""}), nullptr);
}

TEST(OciManifest, AnImagesSizeIsTheSumOfItsLayers) {
  auto m = DecodeManifest(DockerImage(), "application/vnd.docker.distribution.manifest.v2+json");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->kind, Manifest::Kind::kImage);
  EXPECT_EQ(m->config.size, 1470);
  EXPECT_EQ(m->LayersSize(), 929124181) << "config excluded";
  EXPECT_EQ(HumanBytes(m->LayersSize()), "886.1 MiB");
}

TEST(OciManifest, TheMediaTypeComesFromTheHeaderOrTheFields) {
  std::string untyped = Index();
  untyped.erase(untyped.find(R"("mediaType":"application/vnd.oci.image.index.v1+json",)"),
                std::string(R"("mediaType":"application/vnd.oci.image.index.v1+json",)").size());
  auto by_header = DecodeManifest(
      untyped, "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8");
  ASSERT_TRUE(by_header.ok()) << by_header.status().message();
  EXPECT_EQ(by_header->media_type, kDockerListType);
  auto by_fields = DecodeManifest(untyped, "application/json");
  ASSERT_TRUE(by_fields.ok()) << by_fields.status().message();
  EXPECT_EQ(by_fields->kind, Manifest::Kind::kIndex);

  auto mismatch = DecodeManifest(DockerImage(), "application/vnd.oci.image.index.v1+json");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("served as"), std::string::npos);
}

TEST(OciManifest, EveryMalformedShapeIsAnErrorNamingIt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{not json", "not JSON"},
      {"[1]", "not a JSON object"},
      {R"({"schemaVersion":1,"name":"app","fsLayers":[]})", "schema 1"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.artifact.v1+json"})",
       "unsupported media type"},
      {R"({"schemaVersion":2,"manifests":[]})", "without manifests"},
      {R"({"schemaVersion":2,"manifests":{}})", "manifests is not a list"},
      {R"({"schemaVersion":2,"manifests":[{"digest":"sha256:12","size":1}]})",
       "manifests[0] has no valid digest"},
      {R"({"schemaVersion":2,"manifests":[{"digest":")" + Digest('a') + R"(","size":-1}]})",
       "manifests[0] has no valid size"},
      {R"({"schemaVersion":2,"manifests":[{"digest":")" + Digest('A') + R"(","size":1}]})",
       "no valid digest"},
      {R"({"schemaVersion":2,"layers":[]})", "without config"},
      {R"({"schemaVersion":2,"config":{"digest":")" + Digest('a') + R"(","size":1},"layers":[]})",
       "without layers"},
      {R"({"schemaVersion":2,"config":{"digest":")" + Digest('a') +
           R"(","size":1},"layers":[{"digest":")" + Digest('b') + R"(","size":1.5}]})",
       "layers[0] has no valid size"},
  };
  for (const auto& [body, want] : cases) {
    auto m = DecodeManifest(body, "");
    ASSERT_FALSE(m.ok()) << body;
    EXPECT_EQ(m.status().code(), StatusCode::kMalformed) << body;
    EXPECT_NE(m.status().message().find(want), std::string::npos)
        << body << " -> " << m.status().message();
  }
  std::string huge = R"({"schemaVersion":2,"manifests":[)";
  for (int i = 0; i < 1025; ++i) {
    huge += (i ? "," : "") + std::string(R"({"digest":")") + Digest('a') + R"(","size":1})";
  }
  huge += "]}";
  auto m = DecodeManifest(huge, "");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("more than 1024"), std::string::npos);
}

TEST(OciManifest, LayerSizesSaturateInsteadOfOverflowing) {
  Manifest m;
  m.layers = {Descriptor{"", Digest('a'), std::numeric_limits<std::int64_t>::max() - 1, {}},
              Descriptor{"", Digest('b'), 5, {}}};
  EXPECT_EQ(m.LayersSize(), std::numeric_limits<std::int64_t>::max());
}

TEST(OciManifest, DigestMatchesOnlyTheSha256OfTheBody) {
  const std::string body = Index();
  EXPECT_TRUE(DigestMatches(body, "sha256:" + Sha256Hex(body)));
  EXPECT_FALSE(DigestMatches(body + " ", "sha256:" + Sha256Hex(body)));
  EXPECT_FALSE(DigestMatches(body, "sha512:" + Sha256Hex(body)));
  EXPECT_FALSE(DigestMatches(body, Sha256Hex(body)));
}

TEST(OciManifest, ParsePlatform) {
  auto p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, (Platform{"linux", "arm64", "v8"}));
  EXPECT_EQ(ParsePlatform("linux/amd64")->ToString(), "linux/amd64");
  for (const char* bad :
       {"", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "Linux/amd64", "linux//amd64"}) {
    EXPECT_FALSE(ParsePlatform(bad).ok()) << bad;
  }
}

TEST(OciManifest, ParseAuthChallenge) {
  auto c = ParseAuthChallenge(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",)"
      R"(scope="repository:team/app:pull")");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params.at("realm"), "https://auth.example.com/token");
  EXPECT_EQ(c->params.at("service"), "registry.example.com");
  EXPECT_EQ(c->params.at("scope"), "repository:team/app:pull");

  auto basic = ParseAuthChallenge(R"(Basic realm="Registry Realm")");
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->scheme, "basic");
  EXPECT_EQ(basic->params.at("realm"), "Registry Realm");

  auto escaped = ParseAuthChallenge(R"(Bearer realm="a\"b", error=invalid_token)");
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ(escaped->params.at("realm"), "a\"b");
  EXPECT_EQ(escaped->params.at("error"), "invalid_token");

  for (const char* bad : {"", "   ", R"(Bearer realm)", R"(Bearer realm="open)", "Bearer =x"}) {
    EXPECT_FALSE(ParseAuthChallenge(bad).ok()) << bad;
  }
}

TEST(OciManifest, DecodeTokenResponseNeverQuotesTheToken) {
  EXPECT_EQ(DecodeTokenResponse(R"({"token":"s3cr3t","expires_in":300})").value(), "s3cr3t");
  EXPECT_EQ(DecodeTokenResponse(R"({"access_token":"s3cr3t"})").value(), "s3cr3t");
  auto none = DecodeTokenResponse(R"({"tok":"s3cr3t"})");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message().find("s3cr3t"), std::string::npos);
  auto junk = DecodeTokenResponse("s3cr3t");
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().message().find("s3cr3t"), std::string::npos);
}

TEST(OciManifest, ParseByteQuantity) {
  EXPECT_EQ(ParseByteQuantity("900Mi").value(), 900LL << 20);
  EXPECT_EQ(ParseByteQuantity("2Gi").value(), 2LL << 30);
  EXPECT_EQ(ParseByteQuantity("1G").value(), 1'000'000'000);
  EXPECT_EQ(ParseByteQuantity("52428800").value(), 52428800);
  EXPECT_EQ(ParseByteQuantity("0").value(), 0);
  for (const char* bad :
       {"", "Mi", "1.5Gi", "-1", "1mi", "1 Mi", "1Pi", "9223372036854775808", "8589934592Gi"}) {
    EXPECT_FALSE(ParseByteQuantity(bad).ok()) << bad;
  }
}

TEST(OciManifest, HumanBytes) {
  EXPECT_EQ(HumanBytes(900), "900 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3LL << 30), "3.0 GiB");
  EXPECT_NE(ManifestAccept().find(kDockerListType), std::string::npos);
  EXPECT_EQ(ManifestAccept().find(kOciIndexType), 0U) << "indexes first";
}

}  // namespace
}  // namespace rollgate::rollout
