// Names and secrets for tests that start real servers' clients and daemons: random hex for table
// prefixes, queues and tokens (each test its own, so tests never see each other's rows), and
// secret files written the way the daemons demand them (mode 0600).

#ifndef XA_TESTS_TESTUTIL_TEST_SECRETS_H_
#define XA_TESTS_TESTUTIL_TEST_SECRETS_H_

#include <cstddef>
#include <string>

namespace xa::test {

// 2 * `bytes` random lower-case hex characters.
std::string RandomHex(size_t bytes);
// Writes `text` and a newline to `path`, mode 0600; a test failure when it cannot.
void WriteSecretFile(const std::string& path, const std::string& text);

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_TEST_SECRETS_H_
