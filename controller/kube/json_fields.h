// Tolerant field access on API objects: absent, null and wrongly-typed fields read as "none", so
// decoders never throw on a shape the server did not promise.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <string>

namespace rollgate::kube {

// The field `name` of `obj`, or null when `obj` is not an object or the field is absent or null.
inline const web::json::value* Field(const web::json::value& obj, const char* name) {
  if (!obj.is_object() || !obj.has_field(name)) return nullptr;
  const web::json::value& v = obj.at(name);
  return v.is_null() ? nullptr : &v;
}

// The string field `name` of `obj`, or "" when it is absent or not a string.
inline std::string StringField(const web::json::value& obj, const char* name) {
  const web::json::value* v = Field(obj, name);
  return v != nullptr && v->is_string() ? v->as_string() : std::string();
}

}  // namespace rollgate::kube
