// What the TCC shop worker (shop_worker.cc) writes, for the tests that check it.

#ifndef XA_TESTS_TCC_SHOP_TABLES_H_
#define XA_TESTS_TCC_SHOP_TABLES_H_

#include <cstdint>
#include <string>

namespace xa::test::shop {

constexpr int64_t kInitialBalance = 1000000;  // account 1's funds after --reset
constexpr int64_t kOrderAmount = 10;          // funds one order spends
constexpr int64_t kOrderPoints = 1;           // points one order grants

}  // namespace xa::test::shop

#endif  // XA_TESTS_TCC_SHOP_TABLES_H_
