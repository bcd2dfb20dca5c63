// The -o formats of `rollgate list` and `rollgate get`: the objects as the API server returned
// them in JSON (indented as kubectl does) or YAML, the table (and its wide form), and
// `containerrollout.rollgate.io/NAME` lines.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <string>
#include <vector>

#include "controller/api/types.h"
#include "controller/cli/args.h"

namespace rollgate::cli {

using Json = web::json::value;

// JSON indented by 4 spaces, keys in the object's order, with a trailing newline.
std::string PrettyJson(const Json& v);
// Block YAML; strings that could read as another type (or need escapes) are double-quoted.
std::string ToYaml(const Json& v);

// "containerrollout.rollgate.io/NAME"
std::string ResourceName(const std::string& name);

// The table of `list`: NAME PHASE ENVIRONMENT REVISION MESSAGE, with NAMESPACE first for -A;
// wide adds IMAGES. Columns padded to their widest cell.
std::string RolloutTable(const std::vector<api::Rollout>& rollouts, bool all_namespaces, bool wide);

// Rows (the header first) as columns padded to their widest cell (in bytes) and 3 spaces apart,
// each line without trailing spaces.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

// `items` printed in `format`: json/yaml as a v1 List, name as lines; kDefault and kWide as the
// table (the objects that do not decode as rollouts are left out of the table).
std::string FormatList(const std::vector<Json>& items, OutputFormat format, bool all_namespaces);

// One object as json, yaml or name ("" for the other formats: the caller draws the tree).
std::string FormatObject(const Json& obj, OutputFormat format);

}  // namespace rollgate::cli
