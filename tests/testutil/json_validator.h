// A strict RFC 8259 validator for tests of JSON output: exactly one value, optional whitespace
// around it, strings of well-formed UTF-8 with no raw control character and only the escapes
// JSON allows (a \u escape of a surrogate must be half of a pair). No parse tree: tests that
// need a field look for its escaped text.

#ifndef XA_TESTS_TESTUTIL_JSON_VALIDATOR_H_
#define XA_TESTS_TESTUTIL_JSON_VALIDATOR_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace xa::test {

class JsonValidator {
 public:
  // "" when `text` is one valid JSON document, else what is wrong and at which byte.
  static std::string Check(std::string_view text) {
    JsonValidator v(text);
    v.Whitespace();
    if (!v.Value()) return v.error_;
    v.Whitespace();
    if (v.pos_ != text.size()) v.Fail("trailing bytes after the document");
    return v.error_;
  }

 private:
  explicit JsonValidator(std::string_view text) : text_(text) {}

  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  unsigned char Peek() const { return static_cast<unsigned char>(text_[pos_]); }

  void Whitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' || Peek() == '\r')) {
      ++pos_;
    }
  }

  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return Fail("bad literal");
    pos_ += word.size();
    return true;
  }

  bool Value() {
    if (++depth_ > 200) return Fail("nested too deep");
    Whitespace();
    if (AtEnd()) return Fail("expected a value");
    bool ok = false;
    switch (Peek()) {
      case '{':
        ok = Object();
        break;
      case '[':
        ok = Array();
        break;
      case '"':
        ok = String();
        break;
      case 't':
        ok = Literal("true");
        break;
      case 'f':
        ok = Literal("false");
        break;
      case 'n':
        ok = Literal("null");
        break;
      default:
        ok = Number();
    }
    --depth_;
    return ok;
  }

  bool Object() {
    ++pos_;
    Whitespace();
    if (!AtEnd() && Peek() == '}') return ++pos_, true;
    for (;;) {
      Whitespace();
      if (AtEnd() || Peek() != '"') return Fail("expected a member name");
      if (!String()) return false;
      Whitespace();
      if (AtEnd() || Peek() != ':') return Fail("expected ':'");
      ++pos_;
      if (!Value()) return false;
      Whitespace();
      if (AtEnd()) return Fail("unterminated object");
      if (Peek() == '}') return ++pos_, true;
      if (Peek() != ',') return Fail("expected ',' or '}'");
      ++pos_;
    }
  }

  bool Array() {
    ++pos_;
    Whitespace();
    if (!AtEnd() && Peek() == ']') return ++pos_, true;
    for (;;) {
      if (!Value()) return false;
      Whitespace();
      if (AtEnd()) return Fail("unterminated array");
      if (Peek() == ']') return ++pos_, true;
      if (Peek() != ',') return Fail("expected ',' or ']'");
      ++pos_;
    }
  }

  bool Digits() {
    size_t start = pos_;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9') ++pos_;
    return pos_ > start;
  }

  bool Number() {
    if (!AtEnd() && Peek() == '-') ++pos_;
    if (AtEnd()) return Fail("expected a number");
    if (Peek() == '0') {
      ++pos_;
    } else if (!Digits()) {
      return Fail("expected a value");
    }
    if (!AtEnd() && Peek() == '.') {
      ++pos_;
      if (!Digits()) return Fail("expected digits after '.'");
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (!Digits()) return Fail("expected an exponent");
    }
    return true;
  }

  int Hex4() {
    if (pos_ + 4 > text_.size()) return -1;
    int value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_ + i];
      int digit = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  // One well-formed UTF-8 sequence of two or more bytes.
  bool Utf8Sequence() {
    unsigned char lead = Peek();
    size_t length = lead >= 0xc2 && lead <= 0xdf   ? 2
                    : lead >= 0xe0 && lead <= 0xef ? 3
                    : lead >= 0xf0 && lead <= 0xf4 ? 4
                                                   : 0;
    if (length == 0 || pos_ + length > text_.size()) return Fail("invalid UTF-8");
    for (size_t i = 1; i < length; ++i) {
      if ((static_cast<unsigned char>(text_[pos_ + i]) & 0xc0) != 0x80) {
        return Fail("invalid UTF-8");
      }
    }
    unsigned char second = static_cast<unsigned char>(text_[pos_ + 1]);
    if ((lead == 0xe0 && second < 0xa0) || (lead == 0xed && second >= 0xa0) ||
        (lead == 0xf0 && second < 0x90) || (lead == 0xf4 && second >= 0x90)) {
      return Fail("invalid UTF-8 (overlong, surrogate or beyond U+10FFFF)");
    }
    pos_ += length;
    return true;
  }

  bool String() {
    ++pos_;
    for (;;) {
      if (AtEnd()) return Fail("unterminated string");
      unsigned char c = Peek();
      if (c == '"') return ++pos_, true;
      if (c < 0x20) return Fail("raw control character in a string");
      if (c >= 0x80) {
        if (!Utf8Sequence()) return false;
        continue;
      }
      ++pos_;
      if (c != '\\') continue;
      if (AtEnd()) return Fail("unterminated escape");
      char e = static_cast<char>(Peek());
      ++pos_;
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
          e == 't') {
        continue;
      }
      if (e != 'u') return Fail("bad escape");
      int code = Hex4();
      if (code < 0) return Fail("bad \\u escape");
      if (code >= 0xdc00 && code <= 0xdfff) return Fail("lone low surrogate");
      if (code >= 0xd800 && code <= 0xdbff) {
        if (text_.substr(pos_, 2) != "\\u") return Fail("lone high surrogate");
        pos_ += 2;
        int low = Hex4();
        if (low < 0xdc00 || low > 0xdfff) return Fail("lone high surrogate");
      }
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_JSON_VALIDATOR_H_
