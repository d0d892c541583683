#include "config/suggest.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "config/diagnostics.hpp"

namespace cow::config::detail {
namespace {

// Past this, a "key" is not a typo of anything and the quadratic distance is wasted work.
constexpr std::size_t kMaxSuggestInput = 64;

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = lower(c);
    return out;
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size(), m = b.size();
    // Three rows suffice: transposition looks back two rows.
    std::vector<std::size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
    for (std::size_t j = 0; j <= m; ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= m; ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                cur[j] = std::min(cur[j], prev2[j - 2] + 1);
        }
        std::swap(prev2, prev);
        std::swap(prev, cur);
    }
    return prev[m];
}

std::optional<std::string_view> suggest(std::string_view input,
                                        std::span<const std::string_view> candidates) {
    if (input.empty() || input.size() > kMaxSuggestInput) return std::nullopt;
    const std::string in = lowered(input);
    const std::size_t limit = std::min<std::size_t>(2, (input.size() + 1) / 2);
    std::optional<std::string_view> best;
    std::size_t best_distance = limit + 1;
    for (std::string_view c : candidates) {
        if (c == input) continue;
        const std::string cand = lowered(c);
        // "warning" for "warn", "work" for "workers": a whole word cut or extended.
        const std::string& shorter = cand.size() < in.size() ? cand : in;
        const std::string& longer = cand.size() < in.size() ? in : cand;
        if (shorter.size() >= 3 && longer.starts_with(shorter) && !best) best = c;
        std::size_t d = edit_distance(in, cand);
        if (d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    return best;
}

std::string did_you_mean(std::string_view input, std::span<const std::string_view> candidates) {
    auto s = suggest(input, candidates);
    return s ? "; did you mean " + quote(*s, 0) + "?" : std::string();
}

}  // namespace cow::config::detail
