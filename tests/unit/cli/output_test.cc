#include "controller/cli/output.h"

#include <gtest/gtest.h>

#include "controller/api/codec.h"
#include "tests/unit/cli/golden.h"

namespace rollgate::cli {
namespace {

using testing::CliJson;
using testing::ExpectGolden;

std::vector<Json> Items() { return {CliJson("midflight.json"), CliJson("failed.json")}; }

TEST(CliOutputTest, JsonAndYamlOfOneObjectGolden) {
  const Json obj = CliJson("midflight.json");
  const std::string json = FormatObject(obj, OutputFormat::kJson);
  ExpectGolden("midflight.out.json", json);
  EXPECT_EQ(Json::parse(json), obj);  // what is printed is the object
  ExpectGolden("midflight.out.yaml", FormatObject(obj, OutputFormat::kYaml));
  EXPECT_EQ(FormatObject(obj, OutputFormat::kName), "containerrollout.rollgate.io/web\n");
  EXPECT_EQ(FormatObject(obj, OutputFormat::kDefault), "");
}

TEST(CliOutputTest, ListsInEveryFormat) {
  ExpectGolden("list.txt", FormatList(Items(), OutputFormat::kDefault, false));
  ExpectGolden("list-all-namespaces.txt", FormatList(Items(), OutputFormat::kDefault, true));
  ExpectGolden("list-wide.txt", FormatList(Items(), OutputFormat::kWide, false));
  EXPECT_EQ(FormatList(Items(), OutputFormat::kName, false),
            "containerrollout.rollgate.io/web\ncontainerrollout.rollgate.io/trainer\n");
  const Json list = Json::parse(FormatList(Items(), OutputFormat::kJson, true));
  EXPECT_EQ(list.at("kind").as_string(), "List");
  EXPECT_EQ(list.at("items").size(), 2U);
  EXPECT_EQ(list.at("items").at(1), CliJson("failed.json"));
  const std::string yaml = FormatList({}, OutputFormat::kYaml, false);
  EXPECT_EQ(yaml, "apiVersion: v1\nkind: List\nitems: []\nmetadata:\n  resourceVersion: \"\"\n");
}

TEST(CliOutputTest, YamlQuotesWhatWouldReadAsSomethingElse) {
  Json v = Json::object(true);
  v["plain"] = Json::string("registry.example/api:2.0");
  v["bool"] = Json::string("true");
  v["version"] = Json::string("1.10");
  v["empty"] = Json::string("");
  v["colon"] = Json::string("a: b");
  v["multi"] = Json::string("line1\nline2");
  v["num"] = Json::number(3);
  v["list"] = Json::array({Json::string("a"), Json::object()});
  v["weird key"] = Json::boolean(false);
  EXPECT_EQ(ToYaml(v),
            "plain: \"registry.example/api:2.0\"\n"
            "bool: \"true\"\n"
            "version: \"1.10\"\n"
            "empty: \"\"\n"
            "colon: \"a: b\"\n"
            "multi: \"line1\\nline2\"\n"
            "num: 3\n"
            "list:\n"
            "- a\n"
            "- {}\n"
            "weird key: false\n");
  EXPECT_EQ(PrettyJson(Json::parse(R"({"a":[1,{"b":[]}],"c":{}})")),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": []\n        }\n    ],\n"
            "    \"c\": {}\n}\n");
}

}  // namespace
}  // namespace rollgate::cli
