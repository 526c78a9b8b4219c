// How a test asks for a branch to be finished, instead of a `bool commit` that reads as a bare
// "true" at the call site.

#ifndef XA_TESTS_TESTUTIL_FINISH_H_
#define XA_TESTS_TESTUTIL_FINISH_H_

#include <cstdint>

namespace xa::test {

enum class Finish : uint8_t { kCommit, kRollback };

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_FINISH_H_
