// ResourceType names a Kubernetes resource (group, version, plural) and builds its REST paths.
// Thread-safety: value types and pure functions.
#pragma once

#include <string>
#include <string_view>

namespace rollgate::kube {

struct ResourceType {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural: "deployments"
  bool namespaced = true;

  static ResourceType Core(std::string version, std::string resource, bool namespaced = true) {
    return {"", std::move(version), std::move(resource), namespaced};
  }
  static ResourceType Group(std::string group, std::string version, std::string resource,
                            bool namespaced = true) {
    return {std::move(group), std::move(version), std::move(resource), namespaced};
  }
  // "deployments.apps" (for messages)
  std::string Name() const { return group.empty() ? resource : resource + "." + group; }
};

// Well-known resources used by Rollgate.
namespace resources {
ResourceType Deployments();
ResourceType Jobs();  // batch/v1: smoke checks
ResourceType Pods();
ResourceType Secrets();  // only the kubeconfig Secrets of remote clusters, by name
ResourceType Nodes();
ResourceType Namespaces();
ResourceType Events();
ResourceType Leases();
ResourceType ContainerRollouts();
}  // namespace resources

// "/apis/apps/v1/namespaces/ns/deployments/name/status". Empty `ns` on a namespaced resource means
// all namespaces (list/watch); empty `name` gives the collection path.
std::string ResourcePath(const ResourceType& rt, std::string_view ns, std::string_view name = {},
                         std::string_view subresource = {});

// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
std::string QueryEscape(std::string_view v);

}  // namespace rollgate::kube
