#include "controller/metrics/bind_address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rollgate::metrics {
namespace {

TEST(MetricsBindAddressTest, Accepted) {
  const std::pair<const char*, const char*> cases[] = {
      {":8080", "8080"},
      {":0", "0"},
      {"0.0.0.0:8081", "0.0.0.0:8081"},
      {"127.0.0.1:0", "127.0.0.1:0"},
      {"localhost:9090", "127.0.0.1:9090"},
      {"[::1]:8080", "[::1]:8080"},
      {"[::]:8080", "[::]:8080"},
      {":08080", "8080"},
  };
  for (const auto& [in, want] : cases) {
    auto got = ParseBindAddress(in);
    ASSERT_TRUE(got.ok()) << in << ": " << got.status().message();
    ASSERT_TRUE(got->has_value()) << in;
    EXPECT_EQ(**got, want) << in;
  }
}

TEST(MetricsBindAddressTest, ZeroDisables) {
  auto got = ParseBindAddress("0");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST(MetricsBindAddressTest, Rejected) {
  for (const char* in : {"", "8080", ":", ":http", ":65536", ":-1", "example.com:80", "1.2.3:80",
                         "[::1]8080", "[::1]", "[nope]:80", "127.0.0.1:80x", ":123456"}) {
    auto got = ParseBindAddress(in);
    ASSERT_FALSE(got.ok()) << in;
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << in;
    EXPECT_THAT(got.status().message(), ::testing::HasSubstr("\"" + std::string(in) + "\""));
  }
}

}  // namespace
}  // namespace rollgate::metrics
