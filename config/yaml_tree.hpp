// A small, immutable YAML tree built from yaml-cpp's parser events. Building it ourselves
// (rather than YAML::Load) lets us keep duplicate keys (yaml-cpp drops them silently), stop
// an alias bomb at the alias that tips it over, enforce depth exactly, and give every node,
// empty ones included, a 1-based position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/diagnostics.hpp"

namespace cow::config::detail {

struct Node;
using NodePtr = std::shared_ptr<const Node>;

struct Node {
    enum class Kind : std::uint8_t { null, scalar, sequence, mapping };

    Kind kind = Kind::null;
    Pos pos;
    // Scalar text. A null keeps how it was spelt: "" when the value was left empty, else
    // "~" or "null" (unquoted only; a quoted "null" is the string).
    std::string text;
    std::vector<NodePtr> items;                        // sequence
    std::vector<std::pair<NodePtr, NodePtr>> entries;  // mapping, in file order, duplicates kept
    // Nodes in this subtree, counting what aliases point to each time they are used.
    std::size_t weight = 1;

    bool is_null() const { return kind == Kind::null; }
    bool is_scalar() const { return kind == Kind::scalar; }
    bool is_sequence() const { return kind == Kind::sequence; }
    bool is_mapping() const { return kind == Kind::mapping; }
};

// Parses exactly one YAML document. Syntax errors (with yaml-cpp's position made 1-based),
// a second document, nesting past kMaxConfigDepth, more than kMaxConfigNodes values and
// aliases expanding past kMaxAliasExpansion nodes are reported to `diag` and the result is null.
// Tags other than YAML's standard ones are reported too, but the tree is still returned so that the
// rest of the file gets checked. An empty document yields a null node at 1:1.
NodePtr parse_yaml(std::string_view text, Diagnostics& diag);

}  // namespace cow::config::detail
