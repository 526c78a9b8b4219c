// Not compiled: the layering check's control case. A driver that reaches into the transaction
// manager's internals must make tests/layering/layering_check.cmake fail.
#include "src/tm/manager_core.h"
