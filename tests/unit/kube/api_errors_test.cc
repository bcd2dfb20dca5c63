#include "controller/kube/api_errors.h"

#include <gtest/gtest.h>

namespace rollgate::kube {
namespace {

std::string StatusBody(int code, const std::string& reason, const std::string& message,
                       const std::string& details = "") {
  std::string b = R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":)" +
                  std::to_string(code) + R"(,"reason":")" + reason + R"(","message":")" + message +
                  "\"";
  if (!details.empty()) b += R"(,"details":)" + details;
  return b + "}";
}

struct Case {
  int http;
  std::string reason;
  StatusCode want;
};

TEST(ApiErrorsTest, MapsEveryApiStatus) {
  const std::vector<Case> cases = {
      {400, "BadRequest", StatusCode::kBadRequest},
      {401, "Unauthorized", StatusCode::kUnauthorized},
      {403, "Forbidden", StatusCode::kForbidden},
      {404, "NotFound", StatusCode::kNotFound},
      {405, "MethodNotAllowed", StatusCode::kMethodNotAllowed},
      {409, "AlreadyExists", StatusCode::kAlreadyExists},
      {409, "Conflict", StatusCode::kConflict},
      {410, "Expired", StatusCode::kGone},
      {422, "Invalid", StatusCode::kInvalid},
      {429, "TooManyRequests", StatusCode::kTooManyRequests},
      {500, "InternalError", StatusCode::kInternal},
      {502, "", StatusCode::kInternal},
      {503, "ServiceUnavailable", StatusCode::kUnavailable},
      {504, "Timeout", StatusCode::kTimeout},
  };
  for (const auto& c : cases) {
    Status st = StatusFromResponse(c.http, StatusBody(c.http, c.reason, "boom"), {}, "get x");
    EXPECT_EQ(st.code(), c.want) << c.http << " " << c.reason;
    EXPECT_EQ(st.http_status(), c.http);
    EXPECT_EQ(st.reason(), c.reason);
    EXPECT_EQ(st.message(), "get x: boom");
  }
}

TEST(ApiErrorsTest, InvalidCarriesFieldCauses) {
  Status st = StatusFromResponse(
      422,
      StatusBody(
          422, "Invalid", "ContainerRollout.rollgate.io r is invalid",
          R"({"name":"r","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Bad\": must be DNS-1123","field":"spec.environments[0].name"}]})"),
      {}, "create r");
  ASSERT_EQ(st.code(), StatusCode::kInvalid);
  ASSERT_EQ(st.causes().size(), 1u);
  EXPECT_EQ(st.causes()[0].field, "spec.environments[0].name");
  EXPECT_EQ(st.causes()[0].reason, "FieldValueInvalid");
  EXPECT_NE(st.ToString().find("spec.environments[0].name: Invalid value"), std::string::npos)
      << st.ToString();
}

TEST(ApiErrorsTest, RetryAfterFromHeaderAndDetails) {
  Status a = StatusFromResponse(429, StatusBody(429, "TooManyRequests", "slow down"),
                                {{"retry-after", "7"}}, "list");
  ASSERT_TRUE(a.retry_after().has_value());
  EXPECT_EQ(*a.retry_after(), std::chrono::seconds(7));
  Status b = StatusFromResponse(
      503, StatusBody(503, "ServiceUnavailable", "x", R"({"retryAfterSeconds":3})"), {}, "get");
  ASSERT_TRUE(b.retry_after().has_value());
  EXPECT_EQ(*b.retry_after(), std::chrono::seconds(3));
  Status c = StatusFromResponse(429, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}, "g");
  EXPECT_FALSE(c.retry_after().has_value()) << "HTTP-date form is ignored, not misparsed";
}

TEST(ApiErrorsTest, NonJsonBodiesAreSummarised) {
  const std::string html = "<html>\n<body>" + std::string(5000, 'x') + "</body></html>";
  Status st = StatusFromResponse(502, html, {}, "get y");
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(st.message(), "get y: HTTP 502: <html>");
  Status big = StatusFromResponse(500, std::string(5000, 'z'), {}, "get z");
  EXPECT_LT(big.message().size(), 260u);
  Status truncated = StatusFromResponse(404, R"({"kind":"Status","code":4)", {}, "get w");
  EXPECT_EQ(truncated.code(), StatusCode::kNotFound);
}

TEST(ApiErrorsTest, WatchErrorEventStatus) {
  Status st = StatusFromStatusObject(
      StatusBody(410, "Expired", "too old resource version: 1 (200)"), "watch pods");
  EXPECT_EQ(st.code(), StatusCode::kGone);
  EXPECT_EQ(StatusFromStatusObject("[1,2", "watch").code(), StatusCode::kMalformed);
  EXPECT_EQ(StatusFromStatusObject(R"({"kind":"Pod"})", "watch").code(), StatusCode::kMalformed);
}

TEST(StatusTest, RetryableClassification) {
  EXPECT_TRUE(Status(StatusCode::kConflict, "").IsRetryable());
  EXPECT_TRUE(Status(StatusCode::kTransport, "").IsRetryable());
  EXPECT_TRUE(Status(StatusCode::kTooManyRequests, "").IsRetryable());
  EXPECT_FALSE(Status(StatusCode::kInvalid, "").IsRetryable());
  EXPECT_FALSE(Status(StatusCode::kForbidden, "").IsRetryable());
  EXPECT_FALSE(Status(StatusCode::kNotFound, "").IsRetryable());
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok()) << "a Result built from OK without a value is an error, not a value";
}

}  // namespace
}  // namespace rollgate::kube
