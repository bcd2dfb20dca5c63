#include "controller/common/log.h"

#include <cpprest/json.h>
#include <gtest/gtest.h>

namespace rollgate::log {
namespace {

TEST(LogTest, TextQuotesValuesWithSpaces) {
  const std::string line =
      FormatRecord(OutputFormat::kText, Level::kWarning, "informer", "watch failed",
                   {{"resource", "pods"}, {"error", "a \"b\"\nc"}});
  EXPECT_NE(line.find(" level=warning component=informer msg=\"watch failed\" resource=pods "
                      "error=\"a \\\"b\\\"\\nc\""),
            std::string::npos)
      << line;
}

TEST(LogTest, JsonIsOneParsableObject) {
  const std::string line = FormatRecord(OutputFormat::kJson, Level::kInfo, "controller", "x\ty",
                                        {{"rollout", "app/r"}, {"ctl", std::string("\x01")}});
  auto v = web::json::value::parse(line);
  EXPECT_EQ(v.at("level").as_string(), "info");
  EXPECT_EQ(v.at("msg").as_string(), "x\ty");
  EXPECT_EQ(v.at("rollout").as_string(), "app/r");
  EXPECT_EQ(v.at("ctl").as_string(), "\x01");
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace rollgate::log
