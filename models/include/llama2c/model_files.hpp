// llama2c: a small llama2.c-compatible transformer beside longrope. MIT License.
#pragma once

/// \file model_files.hpp
/// Finding stories260K (stories260K.bin + tok512.bin) for the examples:
///   1. an explicit directory (a command-line option), else
///   2. the shared folder baked in at configure time (LLAMA2C_DEFAULT_MODEL_DIR,
///      ../shared/models/stories260K beside the source tree), else
///   3. $LONGROPE_MODEL_DIR, else
///   4. a download from karpathy/tinyllamas (Hugging Face, folder stories260K)
///      into $LONGROPE_MODEL_DIR or ~/.cache/longrope/stories260K, only when
///      curl or wget is installed; the file sizes are checked.
/// find_stories260k() returns nullopt and explains every place it tried when
/// none works (no network, no files).

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace llama2c {

struct model_files {
  std::string checkpoint;  ///< stories260K.bin
  std::string tokenizer;   ///< tok512.bin
  std::string origin;      ///< where they were found
};

inline constexpr std::uintmax_t kStories260kBytes = 1056540;
inline constexpr std::uintmax_t kTok512Bytes = 6227;

namespace detail {

inline bool has_stories(const std::filesystem::path& dir) {
  std::error_code ec;
  return std::filesystem::file_size(dir / "stories260K.bin", ec) == kStories260kBytes && !ec &&
         std::filesystem::file_size(dir / "tok512.bin", ec) == kTok512Bytes && !ec;
}

inline bool have_program(const char* name) {
  const std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

}  // namespace detail

/// See the file comment. `explicit_dir` may be empty. `log` receives one line
/// per place tried. Never throws for missing files; a failed download leaves
/// no partial file behind.
inline std::optional<model_files> find_stories260k(const std::string& explicit_dir, std::vector<std::string>& log) {
  namespace fs = std::filesystem;
  auto found = [](const fs::path& d, const std::string& origin) {
    return model_files{(d / "stories260K.bin").string(), (d / "tok512.bin").string(), origin};
  };
  if (!explicit_dir.empty()) {
    if (detail::has_stories(explicit_dir)) return found(explicit_dir, "--model-dir");
    log.push_back(explicit_dir + ": no stories260K.bin (1056540 bytes) and tok512.bin (6227 bytes)");
    return std::nullopt;  // an explicit choice is not silently replaced
  }
#ifdef LLAMA2C_DEFAULT_MODEL_DIR
  if (detail::has_stories(LLAMA2C_DEFAULT_MODEL_DIR)) return found(LLAMA2C_DEFAULT_MODEL_DIR, "the shared folder");
  log.push_back(std::string(LLAMA2C_DEFAULT_MODEL_DIR) + ": not there");
#endif
  fs::path cache;
  if (const char* env = std::getenv("LONGROPE_MODEL_DIR"); env && *env) {
    if (detail::has_stories(env)) return found(env, "$LONGROPE_MODEL_DIR");
    log.push_back(std::string("$LONGROPE_MODEL_DIR=") + env + ": no stories260K files");
    cache = env;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = fs::path(home) / ".cache" / "longrope" / "stories260K";
    if (detail::has_stories(cache)) return found(cache, "the download cache");
  } else {
    log.push_back("$LONGROPE_MODEL_DIR and $HOME are unset: nowhere to download to");
    return std::nullopt;
  }
  const bool curl = detail::have_program("curl");
  const bool wget = !curl && detail::have_program("wget");
  if (!curl && !wget) {
    log.push_back("download: neither curl nor wget is installed");
    return std::nullopt;
  }
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) {
    log.push_back("download: cannot create " + cache.string() + ": " + ec.message());
    return std::nullopt;
  }
  const std::string base = "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories260K/";
  for (const char* name : {"stories260K.bin", "tok512.bin"}) {
    const fs::path dest = cache / name;
    const fs::path part = cache / (std::string(name) + ".part");
    const std::string url = base + name;
    const std::string cmd = curl ? "curl -fsSL --max-time 120 -o " + detail::shell_quote(part.string()) + " " +
                                       detail::shell_quote(url)
                                 : "wget -q --timeout=60 -O " + detail::shell_quote(part.string()) + " " +
                                       detail::shell_quote(url);
    log.push_back("download: " + url);
    if (std::system(cmd.c_str()) != 0) {
      fs::remove(part, ec);
      log.push_back("download failed (no network?)");
      return std::nullopt;
    }
    fs::rename(part, dest, ec);
    if (ec) {
      log.push_back("download: cannot move " + part.string() + ": " + ec.message());
      return std::nullopt;
    }
  }
  if (detail::has_stories(cache)) return found(cache, "downloaded from karpathy/tinyllamas");
  log.push_back("download: unexpected file sizes in " + cache.string());
  return std::nullopt;
}

}  // namespace llama2c
