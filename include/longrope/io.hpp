// longrope: header-only LongRoPE positional interpolation. MIT License.
#pragma once

/// \file io.hpp
/// The one way longrope (and its CLI, models and examples) reads and writes
/// files, so every file argument fails the same clear way:
///   "<path> is a directory", "cannot read <path>: <errno text>",
///   "<path> is larger than the <N>-byte limit", "cannot write <path>: <errno text>",
/// each as longrope::error with id "longrope.io".
///
/// read_file / read_file_bytes: the whole file. The size is never taken on
/// trust: regular files are read up to their stat size, other files (pipes,
/// devices) in chunks, and anything above max_bytes is refused before it is
/// allocated. O(size).
///
/// write_file_atomic: durable replacement. The data goes to "<path>.tmp",
/// which is flushed and fsync()ed, renamed over path, and then the directory
/// holding it is fsync()ed, so after a crash or power loss path holds either
/// the old or the new contents, never an empty or truncated file. (On systems
/// without POSIX fsync the rename is still atomic, the flushes are best effort.)

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define LONGROPE_POSIX_IO 1
#else
#include <filesystem>
#include <fstream>
#define LONGROPE_POSIX_IO 0
#endif

namespace longrope {

/// Default read limit: 4 GiB, far above any config, checkpoint or toy model.
inline constexpr std::uint64_t kDefaultMaxFileBytes = std::uint64_t{1} << 32;

/// The bytes of `path`. Throws longrope::error ("longrope.io"): "<path> is a
/// directory", "cannot read <path>: <errno text>", or "<path> is larger than
/// the <max_bytes>-byte limit".
std::vector<unsigned char> read_file_bytes(const std::string& path, std::uint64_t max_bytes = kDefaultMaxFileBytes);

/// read_file_bytes as a std::string (text, JSON).
std::string read_file(const std::string& path, std::uint64_t max_bytes = kDefaultMaxFileBytes);

/// Replaces `path` by `data` durably and atomically (see the file comment).
/// Throws longrope::error ("longrope.io"): "cannot write <path>: <errno text>"
/// (also for a directory path: "<path> is a directory"). Leaves no temporary
/// file behind on failure.
void write_file_atomic(const std::string& path, std::string_view data);

// ---------------------------------------------------------------------------
// Implementation

namespace detail {

[[noreturn]] inline void io_error(const std::string& message) {
  LONGROPE_THROW("longrope.io", message);
#if !LONGROPE_HAS_EXCEPTIONS
  std::abort();
#endif
}

inline std::string errno_text(int e) { return std::generic_category().message(e); }

template <class Buffer>
Buffer read_whole_file(const std::string& path, std::uint64_t max_bytes) {
  Buffer out;
  auto too_big = [&] {
    io_error(path + " is larger than the " + std::to_string(max_bytes) + "-byte limit");
  };
#if LONGROPE_POSIX_IO
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error("cannot read " + path + ": " + errno_text(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) io_error("cannot read " + path + ": " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) io_error(path + " is a directory");
  // One byte beyond the limit (and beyond the stat size) is read to detect
  // files that are too large or grew since fstat.
  const std::uint64_t cap = max_bytes < (std::uint64_t{1} << 62) ? max_bytes + 1 : max_bytes;
  std::uint64_t initial = 65536;
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    if (static_cast<std::uint64_t>(st.st_size) > max_bytes) too_big();
    initial = static_cast<std::uint64_t>(st.st_size) + 1;
  }
  out.resize(static_cast<std::size_t>(std::min(initial, cap)));
  std::size_t have = 0;
  for (;;) {
    if (have == out.size()) {
      if (out.size() >= cap) too_big();
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, 2 * static_cast<std::uint64_t>(out.size()))));
    }
    const ssize_t n = ::read(fd, &out[have], out.size() - have);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("cannot read " + path + ": " + errno_text(errno));
    }
    have += static_cast<std::size_t>(n);
  }
  if (have > max_bytes) too_big();
  out.resize(have);
#else
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) io_error(path + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) io_error("cannot read " + path + ": " + errno_text(errno));
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    if (out.size() + static_cast<std::uint64_t>(in.gcount()) > max_bytes) too_big();
    out.insert(out.end(), buf, buf + in.gcount());
  }
  if (in.bad()) io_error("cannot read " + path + ": read error");
#endif
  return out;
}

}  // namespace detail

inline std::vector<unsigned char> read_file_bytes(const std::string& path, std::uint64_t max_bytes) {
  return detail::read_whole_file<std::vector<unsigned char>>(path, max_bytes);
}

inline std::string read_file(const std::string& path, std::uint64_t max_bytes) {
  return detail::read_whole_file<std::string>(path, max_bytes);
}

inline void write_file_atomic(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
#if LONGROPE_POSIX_IO
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) detail::io_error(path + " is a directory");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) detail::io_error("cannot write " + path + ": " + detail::errno_text(errno) + " (creating " + tmp + ")");
  auto fail = [&](const std::string& step) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    detail::io_error("cannot write " + path + ": " + detail::errno_text(e) + " (" + step + ")");
  };
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync");  // the data is on disk before the name points at it
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    detail::io_error("cannot write " + path + ": " + detail::errno_text(e) + " (close)");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    detail::io_error("cannot write " + path + ": " + detail::errno_text(e) + " (rename from " + tmp + ")");
  }
  // The rename itself is durable once the directory entry is on disk.
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) detail::io_error("cannot write " + path + ": " + detail::errno_text(errno) + " (opening " + dir + " to fsync it)");
  const int rc = ::fsync(dfd);
  const int e = errno;
  ::close(dfd);
  // Some file systems refuse fsync on directories (EINVAL): the rename is then as durable as they allow.
  if (rc != 0 && e != EINVAL) detail::io_error("cannot write " + path + ": " + detail::errno_text(e) + " (fsync of " + dir + ")");
#else
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) detail::io_error(path + " is a directory");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) detail::io_error("cannot write " + path + ": " + detail::errno_text(errno));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      detail::io_error("cannot write " + path + ": write failed");
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    detail::io_error("cannot write " + path + ": " + ec.message());
  }
#endif
}

}  // namespace longrope
