// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// Library version, kept equal to project(longrope VERSION ...) in CMakeLists.txt
/// (a test checks both agree).
#define LONGROPE_VERSION_MAJOR 0
#define LONGROPE_VERSION_MINOR 1
#define LONGROPE_VERSION_PATCH 0
#define LONGROPE_VERSION_STRING "0.1.0"

namespace longrope {

struct version_info {
  int major;
  int minor;
  int patch;
};

/// The version of the headers in use. constexpr, no allocation.
constexpr version_info version() noexcept {
  return {LONGROPE_VERSION_MAJOR, LONGROPE_VERSION_MINOR, LONGROPE_VERSION_PATCH};
}

}  // namespace longrope
