// Tolerant field access on API objects: absent, null and wrongly-typed fields read as "none", so
// decoders never throw on a shape the server did not promise.
// Thread-safety: pure functions.
#pragma once

#include <cpprest/json.h>

#include <cstddef>
#include <initializer_list>
#include <string>
#include <utility>

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

// Projections, for trimming what a cache keeps of an object (the informers' transforms).

// A new object holding the listed fields of `from`, moved out of it; absent fields stay absent.
inline web::json::value Keep(web::json::value&& from, std::initializer_list<const char*> names) {
  web::json::value out = web::json::value::object();
  if (!from.is_object()) return out;
  for (const char* n : names) {
    if (from.has_field(n)) out[n] = std::move(from.at(n));
  }
  return out;
}

// `f` applied to the field `name` of `obj`, when it is there.
template <typename F>
void Reshape(web::json::value& obj, const char* name, const F& f) {
  if (obj.is_object() && obj.has_field(name)) obj[name] = f(std::move(obj.at(name)));
}

// Keep(names) applied to every element of an array; anything else becomes an empty array.
inline web::json::value KeepEach(web::json::value&& arr, std::initializer_list<const char*> names) {
  web::json::value out = web::json::value::array();
  if (!arr.is_array()) return out;
  std::size_t i = 0;
  for (auto& item : arr.as_array()) out[i++] = Keep(std::move(item), names);
  return out;
}

}  // namespace rollgate::kube
