#include "controller/common/base64.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "tests/fakes/base64.h"

namespace rollgate {
namespace {

// OpenSSL's encoder, as an independent reference.
TEST(Base64Test, KnownVectors) {
  // RFC 4648 §10.
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("Zg=="), "f");
  EXPECT_EQ(DecodeBase64("Zm8="), "fo");
  EXPECT_EQ(DecodeBase64("Zm9v"), "foo");
  EXPECT_EQ(DecodeBase64("Zm9vYg=="), "foob");
  EXPECT_EQ(DecodeBase64("Zm9vYmE="), "fooba");
  EXPECT_EQ(DecodeBase64("Zm9vYmFy"), "foobar");
}

// Every length modulo 3 and every byte value, against OpenSSL's encoding.
TEST(Base64Test, RoundTripsEveryByte) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= all.size(); len += 7) {
    const std::string in = all.substr(all.size() - len);
    EXPECT_EQ(DecodeBase64(testing::Base64Encode(in)), in) << "length " << len;
  }
  EXPECT_EQ(DecodeBase64(testing::Base64Encode(all)), all);
}

TEST(Base64Test, IgnoresWhitespace) {
  EXPECT_EQ(DecodeBase64(" Zm9v\nYmFy\r\n"), "foobar");
  EXPECT_EQ(DecodeBase64("Zm\t9v Yg\v=\f="), "foob");
}

TEST(Base64Test, RejectsWhatGoStdEncodingRejects) {
  EXPECT_EQ(DecodeBase64("Zm9"), std::nullopt);       // no padding
  EXPECT_EQ(DecodeBase64("Zg"), std::nullopt);        // no padding
  EXPECT_EQ(DecodeBase64("Zg=a"), std::nullopt);      // padding in the middle
  EXPECT_EQ(DecodeBase64("Zg==Zm9v"), std::nullopt);  // padding before the end
  EXPECT_EQ(DecodeBase64("Z==="), std::nullopt);      // three padding characters
  EXPECT_EQ(DecodeBase64("===="), std::nullopt);      // only padding
  EXPECT_EQ(DecodeBase64("Zm9v!mFy"), std::nullopt);  // outside the alphabet
  EXPECT_EQ(DecodeBase64("-_-_"), std::nullopt);      // the URL-safe alphabet
  EXPECT_EQ(DecodeBase64(std::string("Zm9v\0", 5)), std::nullopt);
}

// EncodeBase64 against OpenSSL's encoding, for every length modulo 3 and every byte value.
TEST(Base64Test, EncodesAsOpenSsl) {
  EXPECT_EQ(EncodeBase64(""), "");
  EXPECT_EQ(EncodeBase64("f"), "Zg==");
  EXPECT_EQ(EncodeBase64("fo"), "Zm8=");
  EXPECT_EQ(EncodeBase64("foo"), "Zm9v");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t len = 0; len <= all.size(); ++len) {
    const std::string in = all.substr(all.size() - len);
    EXPECT_EQ(EncodeBase64(in), testing::Base64Encode(in)) << "length " << len;
    EXPECT_EQ(DecodeBase64(EncodeBase64(in)), in) << "length " << len;
  }
}

}  // namespace
}  // namespace rollgate
