// xa-msgd as a child process of a test: started on an address (127.0.0.1:0 the first time, then
// the same address again after a kill, so its clients need not learn a new one), stopped with a
// signal, its output kept in a file of its own for each start.

#ifndef XA_TESTS_MSGD_MSGD_PROCESS_H_
#define XA_TESTS_MSGD_MSGD_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>

namespace xa::test {

class MsgdProcess {
 public:
  // `config` is xa-msgd's configuration file; its `listen = ` line is rewritten on each start.
  // Output goes to `output_prefix`.<n>.out.
  MsgdProcess(std::string program, std::string config, std::string output_prefix);
  ~MsgdProcess();  // SIGKILL if still running
  MsgdProcess(const MsgdProcess&) = delete;
  MsgdProcess& operator=(const MsgdProcess&) = delete;

  // Starts it on `listen` with `env` added and waits until it serves (a test failure if it does
  // not within 10 s). Its address is then address().
  void Start(const std::string& listen, const std::map<std::string, std::string>& env = {});
  // Sends `signal` and waits; after SIGTERM a test failure unless it exited with 0.
  void Stop(int signal);
  // Waits up to `timeout` for it to end by itself (an armed crash point); true when it was
  // killed by SIGKILL.
  bool WaitKilled(std::chrono::milliseconds timeout);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:port"
  std::string url() const { return "http://" + address_; }
  std::string Output() const;  // of the last start

 private:
  std::string program_, config_, output_prefix_, output_, address_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

}  // namespace xa::test

#endif  // XA_TESTS_MSGD_MSGD_PROCESS_H_
