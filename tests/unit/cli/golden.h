// Golden files for the CLI's tests, under tests/testdata/cli/. ROLLGATE_UPDATE_GOLDEN=1 rewrites
// them from what the code produces (then review the diff).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "controller/api/codec.h"

namespace rollgate::testing {

inline std::string CliTestdata(const std::string& name) {
  return std::string(ROLLGATE_SOURCE_DIR) + "/tests/testdata/cli/" + name;
}

inline std::string ReadCliTestdata(const std::string& name) {
  std::ifstream in(CliTestdata(name));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline web::json::value CliJson(const std::string& name) {
  return web::json::value::parse(ReadCliTestdata(name));
}

inline void ExpectGolden(const std::string& name, const std::string& got) {
  const char* update = std::getenv("ROLLGATE_UPDATE_GOLDEN");  // NOLINT(concurrency-mt-unsafe)
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(CliTestdata(name)) << got;
    return;
  }
  EXPECT_EQ(got, ReadCliTestdata(name))
      << "golden file tests/testdata/cli/" << name << " (ROLLGATE_UPDATE_GOLDEN=1 rewrites it)";
}

}  // namespace rollgate::testing
