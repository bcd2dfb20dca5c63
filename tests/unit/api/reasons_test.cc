// Tests of the catalogue of reasons: complete, unambiguous, and documented in the README's
// troubleshooting table (so an operator who reads a reason in status finds what to do).
// Thread-safety: single-threaded tests.
#include "controller/api/reasons.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace rollgate::api {
namespace {

TEST(Reasons, EveryReasonDescribesItselfWithAUniqueCamelCaseName) {
  std::set<std::string_view> names;
  for (const ReasonInfo& info : Reasons()) {
    EXPECT_EQ(Describe(info.reason).name, info.name);
    EXPECT_EQ(ReasonName(info.reason), std::string(info.name));
    EXPECT_TRUE(names.insert(info.name).second) << "duplicate " << info.name;
    ASSERT_FALSE(info.name.empty());
    EXPECT_TRUE(info.name[0] >= 'A' && info.name[0] <= 'Z') << info.name;
    EXPECT_EQ(info.name.find(' '), std::string_view::npos) << info.name;
    EXPECT_FALSE(info.message.empty()) << info.name << " has no message pattern";
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(Reason::kAborted) + 1);
}

TEST(Reasons, KindsSeparateFailuresFromSpecErrorsAndUserActions) {
  EXPECT_EQ(Describe(Reason::kProgressDeadlineExceeded).kind, ReasonKind::kFailure);
  EXPECT_EQ(Describe(Reason::kRollbackFailed).kind, ReasonKind::kFailure);
  EXPECT_EQ(Describe(Reason::kInvalidSpec).kind, ReasonKind::kSpec);
  EXPECT_EQ(Describe(Reason::kAborted).kind, ReasonKind::kUserAction);
}

std::string TroubleshootingSection() {
  std::ifstream in(std::string(ROLLGATE_SOURCE_DIR) + "/README.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string readme = ss.str();
  const auto start = readme.find("\n## Troubleshooting");
  if (start == std::string::npos) return "";
  const auto end = readme.find("\n## ", start + 1);
  return readme.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(Reasons, TheReadmeTroubleshootingTableNamesEveryReason) {
  const std::string section = TroubleshootingSection();
  ASSERT_FALSE(section.empty()) << "README.md has no '## Troubleshooting' section";
  for (const ReasonInfo& info : Reasons()) {
    const std::string quoted = "`" + std::string(info.name) + "`";
    EXPECT_NE(section.find(quoted), std::string::npos)
        << "README.md's troubleshooting table does not name " << quoted;
  }
}

}  // namespace
}  // namespace rollgate::api
