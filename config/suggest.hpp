// "did you mean" for misspelt keys, enum values and pool names.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace cow::config::detail {

// Optimal-string-alignment distance: Levenshtein plus adjacent transposition, so "wokrers"
// is one edit from "workers", as a typist would expect.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate `input` most likely meant: one that differs only in case, or else the
// nearest within two edits (one for very short inputs, where two edits reach anything), or
// else one that `input` cuts short or extends ("warning" -> "warn"). Ties go to the earlier
// candidate.
std::optional<std::string_view> suggest(std::string_view input,
                                        std::span<const std::string_view> candidates);

// "; did you mean \"workers\"?" or "" when nothing is close.
std::string did_you_mean(std::string_view input, std::span<const std::string_view> candidates);

}  // namespace cow::config::detail
