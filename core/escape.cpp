#include "core/escape.hpp"

#include <cstdint>

namespace cow {
namespace {

// Code points that render as nothing, or as a space indistinguishable from U+0020.
bool invisible(std::uint32_t cp) {
    struct Range {
        std::uint32_t lo, hi;
    };
    static constexpr Range kRanges[] = {
        {0x0080, 0x00A0},    // C1 controls, no-break space
        {0x00AD, 0x00AD},    // soft hyphen
        {0x034F, 0x034F},    // combining grapheme joiner
        {0x061C, 0x061C},    // Arabic letter mark
        {0x115F, 0x1160},    // Hangul fillers
        {0x1680, 0x1680},    // Ogham space mark
        {0x17B4, 0x17B5},    // Khmer inherent vowels
        {0x180B, 0x180F},    // Mongolian variation selectors and vowel separator
        {0x2000, 0x200F},    // spaces, zero-width space/joiners, LRM, RLM
        {0x2028, 0x202F},    // line/paragraph separators, bidi embeddings, narrow nbsp
        {0x205F, 0x206F},    // math space, word joiner, invisible operators, bidi isolates
        {0x3000, 0x3000},    // ideographic space
        {0x3164, 0x3164},    // Hangul filler
        {0xFE00, 0xFE0F},    // variation selectors
        {0xFEFF, 0xFEFF},    // byte order mark
        {0xFFA0, 0xFFA0},    // halfwidth Hangul filler
        {0xFFF0, 0xFFFB},    // interlinear annotation
        {0x1BCA0, 0x1BCA3},  // shorthand format controls
        {0x1D173, 0x1D17A},  // musical format controls
        {0xE0000, 0xE0FFF},  // tags, variation selectors supplement
    };
    for (const auto& r : kRanges)
        if (cp >= r.lo && cp <= r.hi) return true;
    return false;
}

// The length of the valid UTF-8 sequence at s[i] and its code point, or 0 when invalid.
std::size_t decode(std::string_view s, std::size_t i, std::uint32_t& cp) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

// `prefix` then `digits` lowercase hex digits of value: \x41, \u00e9, \U0001f600.
void append_hex(std::string& out, const char* prefix, int digits, std::uint32_t value) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += prefix;
    for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4)
        out += kHex[(value >> shift) & 0xF];
}

}  // namespace

std::string escape_invisible(std::string_view text, Newlines newlines) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F) {
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        if (c < 0x80) {
            if (c == '\n' && newlines == Newlines::keep)
                out += '\n';
            else if (c == '\n')
                out += "\\n";
            else if (c == '\r')
                out += "\\r";
            else if (c == '\t')
                out += "\\t";
            else
                append_hex(out, "\\x", 2, c);
            ++i;
            continue;
        }
        std::uint32_t cp = 0;
        const std::size_t len = decode(text, i, cp);
        if (len == 0) {
            append_hex(out, "\\x", 2, c);
            ++i;
        } else if (invisible(cp)) {
            append_hex(out, cp > 0xFFFF ? "\\U" : "\\u", cp > 0xFFFF ? 8 : 4, cp);
            i += len;
        } else {
            out.append(text.substr(i, len));
            i += len;
        }
    }
    return out;
}

}  // namespace cow
