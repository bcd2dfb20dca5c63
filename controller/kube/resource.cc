#include "controller/kube/resource.h"

#include <cstdio>

namespace rollgate::kube {

namespace resources {
ResourceType Deployments() { return ResourceType::Group("apps", "v1", "deployments"); }
ResourceType Jobs() { return ResourceType::Group("batch", "v1", "jobs"); }
ResourceType Pods() { return ResourceType::Core("v1", "pods"); }
ResourceType Secrets() { return ResourceType::Core("v1", "secrets"); }
ResourceType Nodes() { return ResourceType::Core("v1", "nodes", false); }
ResourceType Namespaces() { return ResourceType::Core("v1", "namespaces", false); }
ResourceType Events() { return ResourceType::Group("events.k8s.io", "v1", "events"); }
ResourceType Leases() { return ResourceType::Group("coordination.k8s.io", "v1", "leases"); }
ResourceType ContainerRollouts() {
  return ResourceType::Group("rollgate.io", "v1alpha1", "containerrollouts");
}
}  // namespace resources

std::string ResourcePath(const ResourceType& rt, std::string_view ns, std::string_view name,
                         std::string_view subresource) {
  std::string p = rt.group.empty() ? "/api/" + rt.version : "/apis/" + rt.group + "/" + rt.version;
  if (rt.namespaced && !ns.empty()) {
    p += "/namespaces/";
    p += QueryEscape(ns);
  }
  p += "/";
  p += rt.resource;
  if (!name.empty()) {
    p += "/";
    p += QueryEscape(name);
    if (!subresource.empty()) {
      p += "/";
      p += subresource;
    }
  }
  return p;
}

std::string QueryEscape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (unsigned char c : v) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace rollgate::kube
