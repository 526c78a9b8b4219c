#include "tests/msgd/msgd_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "tests/recovery/crash_harness.h"

namespace xa::test {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

MsgdProcess::MsgdProcess(std::string program, std::string config, std::string output_prefix)
    : program_(std::move(program)),
      config_(std::move(config)),
      output_prefix_(std::move(output_prefix)) {}

MsgdProcess::~MsgdProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

void MsgdProcess::Start(const std::string& listen, const std::map<std::string, std::string>& env) {
  std::string text = ReadWhole(config_);
  size_t at = text.find("listen = ");
  ASSERT_NE(at, std::string::npos) << config_ << " has no listen line";
  at += 9;
  text.replace(at, text.find('\n', at) - at, listen);
  std::ofstream(config_) << text;
  output_ = output_prefix_ + "." + std::to_string(++starts_) + ".out";
  pid_ = Spawn({program_, "--config", config_}, env, output_);
  address_.clear();
  for (int i = 0; i < 400 && address_.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(output_);
    for (std::string line; std::getline(in, line);) {
      const std::string mark = "serving on http://";
      size_t found = line.find(mark);
      if (found != std::string::npos) {
        address_ = line.substr(found + mark.size());
        address_ = address_.substr(0, address_.find(' '));
      }
    }
  }
  EXPECT_FALSE(address_.empty()) << "xa-msgd did not start: " << Output();
}

void MsgdProcess::Stop(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  if (signal == SIGTERM) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Output();
  }
  pid_ = -1;
}

bool MsgdProcess::WaitKilled(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (done == 0 && std::chrono::steady_clock::now() < deadline) {
    done = ::waitpid(pid_, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  if (done != pid_) return false;
  pid_ = -1;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

std::string MsgdProcess::Output() const { return ReadWhole(output_); }

}  // namespace xa::test
