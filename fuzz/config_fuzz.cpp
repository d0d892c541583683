// libFuzzer: YAML text -> Config or errors. Must never crash, hang or blow the stack
// (yaml-cpp has had stack-overflow CVEs on deep nesting; config/prescan caps it first).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = cow::config::load_text(text, "fuzz.yaml", "/tmp");
    if (r.ok()) (void)cow::config::summarize(*r.config);
    for (const auto& e : r.errors)
        (void)e.to_string();
    return 0;
}
