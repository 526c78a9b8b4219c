// A call that must return within a bound: a hang is a test failure with a message, not a ctest
// timeout that says nothing.

#ifndef XA_TESTS_DRIVERS_ODBC_BOUNDED_CALL_H_
#define XA_TESTS_DRIVERS_ODBC_BOUNDED_CALL_H_

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>

namespace xa::test {

// Runs `work` on a thread of its own and waits at most `limit` for it. Returns whether it
// returned in time. A call that does not is left running on its detached thread for the rest of
// the process, with everything it uses: nothing can stop a thread blocked inside a driver, so
// whatever `work` captures must not be destroyed by the caller after a timeout (capture owners,
// not references to locals).
inline bool ReturnsWithin(std::chrono::milliseconds limit, std::function<void()> work) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread runner([done, work = std::move(work)]() mutable {
    work();
    done->set_value();
  });
  if (finished.wait_for(limit) == std::future_status::ready) {
    runner.join();
    return true;
  }
  runner.detach();
  return false;
}

}  // namespace xa::test

#endif  // XA_TESTS_DRIVERS_ODBC_BOUNDED_CALL_H_
