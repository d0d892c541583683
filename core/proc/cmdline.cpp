#include "core/proc/cmdline.hpp"

namespace cow::proc {

std::vector<std::string> split_cmdline(std::string_view raw) {
    std::vector<std::string> args;
    while (!raw.empty()) {
        auto nul = raw.find('\0');
        args.emplace_back(raw.substr(0, nul));
        raw.remove_prefix(nul == std::string_view::npos ? raw.size() : nul + 1);
    }
    return args;
}

std::string display_cmdline(const std::vector<std::string>& args, std::size_t max_bytes) {
    std::string out;
    for (const auto& arg : args) {
        if (!out.empty()) out += ' ';
        for (char c : arg) {
            auto u = static_cast<unsigned char>(c);
            out += (u < 0x20 || u == 0x7f) ? '?' : c;
        }
        if (out.size() > max_bytes) break;
    }
    if (out.size() <= max_bytes) return out;

    constexpr std::string_view kEllipsis = "...";
    std::size_t keep = max_bytes > kEllipsis.size() ? max_bytes - kEllipsis.size() : 0;
    // Back off continuation bytes (10xxxxxx) so no character is split.
    while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80)
        --keep;
    out.resize(keep);
    if (max_bytes >= kEllipsis.size()) out += kEllipsis;
    return out;
}

}  // namespace cow::proc
