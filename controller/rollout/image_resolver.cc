// ImageResolver: registry lookups on a KeyedJobs pool (see image_resolver.h).
#include "controller/rollout/image_resolver.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "controller/rollout/image_ref.h"

namespace rollgate::rollout {
namespace {

KeyedJobs<std::map<std::string, ImageLookup>>::Options JobOptions(ImageResolver::Options& opts) {
  KeyedJobs<std::map<std::string, ImageLookup>>::Options o;
  o.workers = opts.workers;
  o.max_queued = opts.max_queued;
  o.on_done = std::move(opts.on_done);
  // LookUp catches per image; were anything else to throw, no image is answered and the
  // pre-flight asks again.
  o.on_exception = [](const std::string&) { return std::map<std::string, ImageLookup>{}; };
  o.name = "registry";
  return o;
}

}  // namespace

ImageResolver::ImageResolver(RegistryClient& client, Options opts)
    : client_(client), observe_(opts.observe), jobs_(JobOptions(opts)) {}

std::optional<std::map<std::string, ImageLookup>> ImageResolver::Poll(
    const std::string& rollout, const std::string& id,
    const std::map<std::string, std::string>& images) {
  return jobs_.Poll(rollout, id, [this, images] { return LookUp(images); });
}

std::map<std::string, ImageLookup> ImageResolver::LookUp(
    const std::map<std::string, std::string>& images) {
  std::map<std::string, ImageLookup> out;
  for (const auto& [logical, reference] : images) {
    const auto started = std::chrono::steady_clock::now();
    ImageLookup lookup;
    auto ref = ParseImageRef(reference);
    if (!ref.ok()) {
      lookup.status = Status(StatusCode::kInvalidArgument, ref.status().message());
    } else {
      try {
        auto resolved = client_.ResolveAll(*ref);
        if (resolved.ok()) {
          lookup.image = ToRecord(logical, reference, *resolved);
        } else {
          lookup.status = resolved.status();
        }
      } catch (const std::exception& e) {  // the client promises not to throw
        lookup.status = Status(StatusCode::kInternal, "registry lookup: " + std::string(e.what()));
      }
    }
    if (observe_) {
      observe_(LookupResult(lookup.status), std::chrono::steady_clock::now() - started);
    }
    out.emplace(logical, std::move(lookup));
  }
  return out;
}

std::string_view LookupResult(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return "resolved";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kUnauthorized:
    case StatusCode::kForbidden:
      return "auth_failed";
    case StatusCode::kMalformed:
    case StatusCode::kInvalidArgument:
      return "invalid";
    default:
      return "unreachable";
  }
}

api::ResolvedImage ToRecord(const std::string& logical, const std::string& reference,
                            const ResolvedImage& resolved) {
  api::ResolvedImage r;
  r.name = logical;
  r.reference = reference;
  r.digest = resolved.digest;
  r.media_type = resolved.media_type;
  for (const auto& image : resolved.images) {
    r.platforms.push_back({image.platform.ToString(), image.digest, image.size});
    r.size = std::max(r.size, image.size);
  }
  return r;
}

}  // namespace rollgate::rollout
