// Typed reads of YAML values, each reporting "key.path: expected ..., got ..." at the value.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "config/diagnostics.hpp"
#include "config/yaml_tree.hpp"
#include "core/units.hpp"

namespace cow::config::detail {

// A value being read: the node, where an error about it should point, and its key path.
struct Field {
    const Node& node;
    Pos pos;  // the value's position, or its key's when the value was left empty
    std::string path;
};

// How a value reads in "got ...": "\"four\"", "a list", "a mapping", "nothing", "null".
std::string describe(const Node& node);

// "<path>: expected <what>, got <describe(value)><suffix>" at the value.
void report_expected(Diagnostics& diag, const Field& f, std::string_view what,
                     std::string_view suffix = "");

std::optional<std::string> read_string(Diagnostics& diag, const Field& f,
                                       std::string_view what = "a string");
// Decimal only: "0x10" and "1e3" are more likely mistakes than intent here.
std::optional<long long> read_int(Diagnostics& diag, const Field& f, long long lo, long long hi);
// true/false, and YAML 1.1's yes/no/on/off, each in lower, Title or UPPER case.
std::optional<bool> read_bool(Diagnostics& diag, const Field& f);
// cow::parse_duration; `positive` rejects 0.
std::optional<Millis> read_duration(Diagnostics& diag, const Field& f, bool positive);
// cow::parse_size: "512MiB", "2GiB", "100MB", or a byte count; `positive` rejects 0.
std::optional<std::uint64_t> read_size(Diagnostics& diag, const Field& f, bool positive);
// cow::parse_signal: "TERM", "SIGTERM", "term", "15".
std::optional<int> read_signal(Diagnostics& diag, const Field& f);
// Octal permission bits, "0600", "660" or a YAML integer 660 (read as octal digits).
std::optional<mode_t> read_mode(Diagnostics& diag, const Field& f);
// The index of the value in `choices`, compared exactly.
std::optional<std::size_t> read_choice(Diagnostics& diag, const Field& f,
                                       std::span<const std::string_view> choices);
// A filesystem path made absolute against `base_dir` and normalised lexically; the
// filesystem is not consulted, so a config can be checked on another machine.
std::optional<std::string> read_path(Diagnostics& diag, const Field& f,
                                     const std::string& base_dir);

// Calls `visit` for each entry of a mapping (an empty value counts as an empty mapping) in
// file order. Reports a value that is not a mapping (as "expected <what>"), keys that are not
// strings, and repeated keys, which are not visited. Returns false when `f` is not a mapping.
using EntryVisitor = std::function<void(const std::string& key, Pos key_pos, const Field& value)>;
bool for_each_entry(Diagnostics& diag, const Field& f, std::string_view what,
                    const EntryVisitor& visit);

// Calls `visit` for each item of a sequence; reports anything else as "expected <what>".
using ItemVisitor = std::function<void(std::size_t index, const Field& item)>;
bool for_each_item(Diagnostics& diag, const Field& f, std::string_view what,
                   const ItemVisitor& visit);

struct FieldReader {
    std::string_view key;
    std::function<void(const Field&)> read;
};

// Text to append to "unknown key" for a key the caller recognises, e.g. one written in the
// wrong section; "" to fall back to "did you mean".
using UnknownKeyHint = std::function<std::string(std::string_view key)>;

// for_each_entry for a mapping with a fixed set of keys. Other keys are errors: "unknown key;
// did you mean ...?", or "not supported by this version" for those in `planned`, which the
// design promises but this version does not implement yet.
bool read_fields(Diagnostics& diag, const Field& f, std::string_view what,
                 std::span<const FieldReader> readers,
                 std::span<const std::string_view> planned = {}, const UnknownKeyHint& hint = {});

}  // namespace cow::config::detail
