#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace pgha {

std::optional<std::string> ReadAll(int fd) {
  std::string out;
  std::array<char, 8192> buffer;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n == 0) {
      return out;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::nullopt;
    }
    out.append(buffer.data(), static_cast<size_t>(n));
  }
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::nullopt;
  }
  auto content = ReadAll(fd);
  ::close(fd);
  return content;
}

}  // namespace pgha
