// Compiled, not linked, by the SyncPointNames ctest tests: with XA_MISSPELL_THE_NAME the point's
// name is misspelled and the compiler must refuse it; without, the same file compiles.

#include "src/testing/sync_points.h"

void PassAPoint() {
#if defined(XA_MISSPELL_THE_NAME)
  XA_TEST_SYNC_POINT(kNetMesageQueued);
#else
  XA_TEST_SYNC_POINT(kNetMessageQueued);
#endif
}
