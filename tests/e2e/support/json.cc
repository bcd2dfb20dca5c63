#include "tests/e2e/support/json.h"

#include <cstdlib>

namespace rollgate::e2e {

const Json* At(const Json& j, std::string_view path) {
  const Json* cur = &j;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string part(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (cur->is_object()) {
      if (!cur->has_field(part)) return nullptr;
      cur = &cur->at(part);
    } else if (cur->is_array()) {
      char* end = nullptr;
      const unsigned long i = std::strtoul(part.c_str(), &end, 10);
      if (part.empty() || *end != '\0' || i >= cur->size()) return nullptr;
      cur = &cur->at(i);
    } else {
      return nullptr;
    }
    if (cur->is_null()) return nullptr;
  }
  return cur;
}

std::string Str(const Json& j, std::string_view path) {
  const Json* v = At(j, path);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

std::int64_t Int(const Json& j, std::string_view path, std::int64_t def) {
  const Json* v = At(j, path);
  return v != nullptr && v->is_integer() ? v->as_number().to_int64() : def;
}

std::map<std::string, std::string> StrMap(const Json& j, std::string_view path) {
  std::map<std::string, std::string> out;
  const Json* v = At(j, path);
  if (v == nullptr || !v->is_object()) return out;
  for (const auto& [k, val] : v->as_object()) {
    if (val.is_string()) out[k] = val.as_string();
  }
  return out;
}

const Json* Find(const Json& j, std::string_view path, std::string_view key,
                 const std::string& value) {
  const Json* arr = At(j, path);
  if (arr == nullptr || !arr->is_array()) return nullptr;
  for (const auto& e : arr->as_array()) {
    if (Str(e, key) == value) return &e;
  }
  return nullptr;
}

Json Obj(std::initializer_list<std::pair<std::string, Json>> fields) {
  Json o = Json::object();
  for (const auto& [k, v] : fields) o[k] = v;
  return o;
}

Json S(const std::string& s) { return Json::string(s); }

Json StrObj(const std::map<std::string, std::string>& m) {
  Json o = Json::object();
  for (const auto& [k, v] : m) o[k] = Json::string(v);
  return o;
}

std::string Render(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ", ";
    out += k;
    out += ": ";
    out += v;
  }
  return out + "}";
}

}  // namespace rollgate::e2e
