// The main() of test binaries that run PostgreSQL: PostgreSQL refuses to run as root, so as root
// the binary runs itself again as the postgres user.
#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (::geteuid() == 0) {
    std::vector<char*> args = {const_cast<char*>("runuser"), const_cast<char*>("-u"),
                               const_cast<char*>("postgres"), const_cast<char*>("--")};
    std::string self = std::filesystem::canonical("/proc/self/exe").string();
    args.push_back(self.data());
    for (int i = 1; i < argc; ++i) {
      args.push_back(argv[i]);
    }
    args.push_back(nullptr);
    ::execvp("runuser", args.data());
    perror("runuser");
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
