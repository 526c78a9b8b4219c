// Overloaded: a visitor made of lambdas, one per alternative of a std::variant.
//
//   std::visit(Overloaded{[](const Vote& v) { ... }, [](const Ack& a) { ... }}, message);

#ifndef XA_SRC_BASE_OVERLOADED_H_
#define XA_SRC_BASE_OVERLOADED_H_

namespace xa::internal {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace xa::internal

#endif  // XA_SRC_BASE_OVERLOADED_H_
