// libFuzzer: the /proc parsers (stat, status, smaps, smaps_rollup, cmdline) on arbitrary
// bytes, and the mapping classifier on whatever smaps yields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/proc/cmdline.hpp"
#include "core/proc/map_group.hpp"
#include "core/proc/smaps.hpp"
#include "core/proc/stat.hpp"
#include "core/proc/status.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)cow::proc::parse_stat(text);
    auto st = cow::proc::parse_status(text);
    (void)st.vm_rss();
    (void)st.groups();
    (void)cow::proc::parse_smaps_rollup(text);
    auto maps = cow::proc::parse_smaps(text);
    (void)cow::proc::sum(maps);
    (void)cow::proc::group_mappings(maps, "/usr/bin/x");
    (void)cow::proc::display_cmdline(cow::proc::split_cmdline(text));
    return 0;
}
