// How many times a test repeats a race against a real server.
//
// The fence tests repeat a race (a session being killed while another commits its prepared
// branch) a couple of hundred times, because the window they hunt opens in only some of the
// iterations. Under a sanitizer each iteration costs three to four times as much and the
// server-side timing that opens the window is no longer the production timing anyway, so the
// sanitizer builds repeat a quarter as often: they are there to check memory and undefined
// behaviour along the path, which a few dozen iterations cover; build/ still runs the full count
// on every CI run.
#ifndef XA_TESTS_TESTUTIL_RACE_REPETITIONS_H_
#define XA_TESTS_TESTUTIL_RACE_REPETITIONS_H_

namespace xa::test {

// XA_TEST_UNDER_SANITIZER is set on every test program of a sanitizer build (tests/CMakeLists.txt).
constexpr int RaceRepetitions(int full_count) {
#if defined(XA_TEST_UNDER_SANITIZER)
  return full_count / 4 > 0 ? full_count / 4 : 1;
#else
  return full_count;
#endif
}

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_RACE_REPETITIONS_H_
