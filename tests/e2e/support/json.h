// JSON for the e2e tests: tolerant accessors for the objects the API server and Prometheus return
// (a dotted path that yields nothing when any step is missing), and terse constructors for the
// objects the scenario builders assemble. The value type is cpprest's web::json::value, as in the
// controller.
// Thread-safety: every function is reentrant; the values belong to the caller.
#pragma once

#include <cpprest/json.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace rollgate::e2e {

using Json = web::json::value;

// The value at a dotted path ("status.environments.0.phase": object fields and array indexes), or
// nullptr when any step is missing or null.
const Json* At(const Json& j, std::string_view path);

// The string at `path`, or "" when it is missing or not a string.
std::string Str(const Json& j, std::string_view path);

// The integer at `path`, or `def` when it is missing or not an integer.
std::int64_t Int(const Json& j, std::string_view path, std::int64_t def = -1);

// The string members of the object at `path` (others skipped); empty when it is not an object.
std::map<std::string, std::string> StrMap(const Json& j, std::string_view path);

// The element of the array at `path` whose `key` field equals `value`, or nullptr.
const Json* Find(const Json& j, std::string_view path, std::string_view key,
                 const std::string& value);

// {"k": v, ...}.
Json Obj(std::initializer_list<std::pair<std::string, Json>> fields);

// A JSON string.
Json S(const std::string& s);

// An object of strings.
Json StrObj(const std::map<std::string, std::string>& m);

// "{k: v, k2: v2}", for failure messages.
std::string Render(const std::map<std::string, std::string>& m);

}  // namespace rollgate::e2e
