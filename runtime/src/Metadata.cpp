//===- Metadata.cpp - The parser of artifact metadata text ----------------===//
//
// A strict parser of the line-oriented metadata that an artifact exports as
// moe_artifact_metadata (docs/ArtifactFormat.md). Anything it does not
// understand is an error that names the line: a runtime that guessed could
// call an entry point with the wrong descriptors.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <climits>
#include <cstdio>
#include <cstring>

using namespace moert;

namespace {

constexpr int supportedVersion = 1;

class MetadataParser {
public:
  explicit MetadataParser(moert_artifact &artifact) : artifact(artifact) {}

  bool parse(const char *text) {
    for (const char *begin = text;;) {
      const char *end = std::strchr(begin, '\n');
      size_t length =
          end ? static_cast<size_t>(end - begin) : std::strlen(begin);
      std::string lineText(begin, length);
      ++line;
      if (!lineText.empty() && lineText[0] != '#' && !parseLine(lineText))
        return false;
      if (!end)
        break;
      begin = end + 1;
    }
    if (!sawHeader)
      return failAt(0, "no 'moe-artifact " + std::to_string(supportedVersion) +
                           "' record");
    if (current)
      return failAt(current->line,
                    "function '" + current->name + "' has no 'end'");
    if (!sawTarget)
      return failAt(0, "no 'target' record");
    return true;
  }

private:
  moert_artifact &artifact;
  int line = 0;
  bool sawHeader = false, sawTarget = false;
  moert_function *current = nullptr; ///< The function being read, if any.
  int declaredArgs = 0, declaredResults = 0;

  bool fail(const std::string &message) { return failAt(line, message); }
  bool failAt(int at, const std::string &message) {
    if (at > 0)
      setError("%s: metadata line %d: %s", artifact.path.c_str(), at,
               message.c_str());
    else
      setError("%s: metadata: %s", artifact.path.c_str(), message.c_str());
    return false;
  }

  /// Parses a non-negative decimal integer no larger than `max`.
  static bool parseNumber(const std::string &field, int64_t max, int64_t &out) {
    if (field.empty())
      return false;
    out = 0;
    for (char c : field)
      if (c < '0' || c > '9' || __builtin_mul_overflow(out, 10, &out) ||
          __builtin_add_overflow(out, c - '0', &out))
        return false;
    return out <= max;
  }

  bool parseLine(const std::string &text) {
    // A stray '\r' or tab would otherwise turn up inside a field.
    for (char c : text)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x",
                      static_cast<unsigned char>(c));
        return fail(std::string("control character ") + hex +
                    " (lines end with '\\n' alone, fields are separated by "
                    "single spaces)");
      }
    // attr's value runs to the end of the line, spaces included.
    if (sawHeader && text.compare(0, 5, "attr ") == 0)
      return parseAttr(text.substr(5));

    std::vector<std::string> fields;
    for (size_t start = 0;;) {
      size_t space = text.find(' ', start);
      fields.push_back(text.substr(start, space - start));
      if (fields.back().empty())
        return fail("empty field (fields are separated by single spaces)");
      if (space == std::string::npos)
        break;
      start = space + 1;
    }
    const std::string &kind = fields[0];

    if (!sawHeader) {
      if (kind != "moe-artifact")
        return fail("expected 'moe-artifact " +
                    std::to_string(supportedVersion) + "' first, found '" +
                    kind + "'");
      if (fields.size() != 2)
        return fail("expected 'moe-artifact VERSION'");
      if (fields[1] != std::to_string(supportedVersion))
        return fail("unsupported artifact format version '" + fields[1] +
                    "' (this runtime reads version " +
                    std::to_string(supportedVersion) + ")");
      sawHeader = true;
      return true;
    }
    if (kind == "target") {
      if (fields.size() != 2)
        return fail("expected 'target NAME'");
      if (current)
        return fail("'target' inside function '" + current->name + "'");
      if (sawTarget)
        return fail("duplicate 'target' record");
      sawTarget = true;
      artifact.target = fields[1];
      return true;
    }
    if (kind == "function")
      return parseFunction(fields);
    if (kind == "arg" || kind == "result")
      return parseTensor(fields);
    if (kind == "end") {
      if (fields.size() != 1)
        return fail("expected 'end' alone");
      if (!current)
        return fail("'end' outside a function");
      if (static_cast<int>(current->args.size()) != declaredArgs ||
          static_cast<int>(current->results.size()) != declaredResults)
        return fail("function '" + current->name + "' declares " +
                    std::to_string(declaredArgs) + " arguments and " +
                    std::to_string(declaredResults) + " results but has " +
                    std::to_string(current->args.size()) + " 'arg' and " +
                    std::to_string(current->results.size()) +
                    " 'result' records");
      current = nullptr;
      return true;
    }
    if (kind == "moe-artifact")
      return fail("duplicate 'moe-artifact' record");
    if (kind == "attr")
      return fail("expected 'attr KEY VALUE'");
    return fail("unknown record '" + kind + "'");
  }

  bool parseFunction(const std::vector<std::string> &fields) {
    if (fields.size() != 4)
      return fail("expected 'function NAME NUM_ARGS NUM_RESULTS'");
    if (current)
      return fail("'function' inside function '" + current->name +
                  "' (missing 'end')");
    int64_t numArgs, numResults;
    if (!parseNumber(fields[2], INT_MAX, numArgs) ||
        !parseNumber(fields[3], INT_MAX, numResults))
      return fail("bad argument or result count in 'function " + fields[1] +
                  "'");
    for (const moert_function &other : artifact.functions)
      if (other.name == fields[1])
        return fail("duplicate function '" + fields[1] + "'");
    artifact.functions.emplace_back();
    current = &artifact.functions.back();
    current->name = fields[1];
    current->line = line;
    declaredArgs = static_cast<int>(numArgs);
    declaredResults = static_cast<int>(numResults);
    return true;
  }

  bool parseTensor(const std::vector<std::string> &fields) {
    const std::string &kind = fields[0];
    if (!current)
      return fail("'" + kind + "' outside a function");
    if (fields.size() < 4)
      return fail("expected '" + kind + " INDEX DTYPE RANK DIMS...'");
    bool isArg = kind == "arg";
    std::vector<TensorSpec> &specs = isArg ? current->args : current->results;
    int declared = isArg ? declaredArgs : declaredResults;
    int64_t index;
    if (!parseNumber(fields[1], INT_MAX, index) ||
        index != static_cast<int64_t>(specs.size()))
      return fail("expected " + kind + " index " +
                  std::to_string(specs.size()) + ", found '" + fields[1] + "'");
    if (index >= declared)
      return fail(kind + " index " + fields[1] +
                  " is out of range: function '" + current->name +
                  "' declares " + std::to_string(declared) +
                  (isArg ? " arguments" : " results"));
    TensorSpec spec;
    if (moert_dtype_parse(fields[2].c_str(), &spec.dtype) != 0)
      return fail(moert_last_error());
    int64_t rank;
    if (!parseNumber(fields[3], MOERT_MAX_RANK, rank))
      return fail("bad rank '" + fields[3] + "' (want 0 to " +
                  std::to_string(MOERT_MAX_RANK) + ")");
    if (static_cast<int64_t>(fields.size()) != 4 + rank)
      return fail(kind + " " + fields[1] + " has rank " + fields[3] + " but " +
                  std::to_string(fields.size() - 4) + " dimensions");
    spec.rank = static_cast<int>(rank);
    for (int i = 0; i < spec.rank; ++i) {
      const std::string &dim = fields[4 + i];
      if (dim == "?")
        spec.dims[i] = MOERT_DYNAMIC;
      else if (!parseNumber(dim, INT64_MAX, spec.dims[i]))
        return fail("bad dimension '" + dim +
                    "' (want a non-negative "
                    "integer or '?')");
    }
    specs.push_back(spec);
    return true;
  }

  bool parseAttr(const std::string &rest) {
    if (!current)
      return fail("'attr' outside a function");
    size_t space = rest.find(' ');
    if (space == 0 || space == std::string::npos)
      return fail("expected 'attr KEY VALUE'");
    std::string key = rest.substr(0, space);
    for (const auto &attr : current->attrs)
      if (attr.first == key)
        return fail("duplicate attr '" + key + "'");
    current->attrs.emplace_back(key, rest.substr(space + 1));
    return true;
  }
};

} // namespace

bool moert::parseMetadata(const char *text, moert_artifact &artifact) {
  return MetadataParser(artifact).parse(text);
}
