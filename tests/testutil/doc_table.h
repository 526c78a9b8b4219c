// Reading a format document (a .md beside a header) in tests that keep the two in step.

#ifndef XA_TESTS_TESTUTIL_DOC_TABLE_H_
#define XA_TESTS_TESTUTIL_DOC_TABLE_H_

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace xa::test {

// The file at `relative` under the source tree `source_dir`; empty when it cannot be read.
inline std::string ReadSourceFile(const std::string& source_dir, const std::string& relative) {
  std::ifstream in(source_dir + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The text of the section "## <title>" of `md`, up to the next "## " heading; empty when there is
// none. For a document whose tables share a name (kAbort is a message type and a state).
inline std::string MarkdownSection(const std::string& md, const std::string& title) {
  size_t start = md.find("\n## " + title + "\n");
  if (start == std::string::npos) return "";
  start += 1;
  size_t end = md.find("\n## ", start);
  return md.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The rows "| kName | 123 | ..." of every Markdown table in `md`: name -> value. (Parsed by
// hand: std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.)
inline std::map<std::string, uint64_t> TableConstants(const std::string& md) {
  auto trim = [](const std::string& s) {
    size_t b = s.find_first_not_of(' ');
    size_t e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  std::map<std::string, uint64_t> out;
  std::istringstream lines(md);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') continue;
    size_t second = line.find('|', 1);
    if (second == std::string::npos) continue;
    size_t third = line.find('|', second + 1);
    if (third == std::string::npos) continue;
    std::string name = trim(line.substr(1, second - 1));
    std::string value = trim(line.substr(second + 1, third - second - 1));
    if (name.size() < 2 || name[0] != 'k' || value.empty() ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    out[name] = std::stoull(value);
  }
  return out;
}

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_DOC_TABLE_H_
