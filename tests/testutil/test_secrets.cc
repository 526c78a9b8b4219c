#include "testutil/test_secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <random>

namespace xa::test {

std::string RandomHex(size_t bytes) {
  static std::mutex mu;
  static std::mt19937_64 random{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::lock_guard<std::mutex> lock(mu);
  std::string out;
  for (size_t i = 0; i < bytes * 2; ++i) out += digits[random() % 16];
  return out;
}

void WriteSecretFile(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path);
    out << text << "\n";
    EXPECT_TRUE(out.good()) << "cannot write " << path;
  }
  EXPECT_EQ(::chmod(path.c_str(), 0600), 0) << path;
}

}  // namespace xa::test
