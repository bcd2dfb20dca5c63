#include "controller/cli/completion.h"

#include <gtest/gtest.h>

namespace rollgate::cli {
namespace {

TEST(CliCompletionTest, BashAndZshNameEveryVerbAndTheRolloutSource) {
  for (const char* shell : {"bash", "zsh"}) {
    const std::string s = CompletionScript(shell);
    ASSERT_FALSE(s.empty()) << shell;
    for (const char* word : {"list get status promote abort retry resolve completion version",
                             "--namespace", "--all-namespaces", "--until-done",
                             "kubectl get containerrollouts", "kubectl-rollgate"}) {
      EXPECT_NE(s.find(word), std::string::npos) << shell << ": " << word;
    }
    EXPECT_EQ(s.find("@VERBS@"), std::string::npos) << shell;
    EXPECT_EQ(s.find("@FLAGS@"), std::string::npos) << shell;
  }
  EXPECT_EQ(CompletionScript("fish"), "");
}

}  // namespace
}  // namespace rollgate::cli
