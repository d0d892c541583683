#include "core/proc/map_group.hpp"

#include <algorithm>
#include <map>
#include <utility>

namespace cow::proc {
namespace {

std::string_view strip_deleted(std::string_view p) {
    constexpr std::string_view kDeleted = " (deleted)";
    if (p.ends_with(kDeleted)) p.remove_suffix(kDeleted.size());
    return p;
}

std::string_view basename(std::string_view p) {
    auto slash = p.rfind('/');
    return slash == std::string_view::npos ? p : p.substr(slash + 1);
}

// "libc.so.6", "ld-linux-x86-64.so.2", "_ssl.cpython-311-x86_64-linux-gnu.so", but not
// "notes.sources": ".so" must end the name or be followed by a version dot.
bool is_shared_object(std::string_view name) {
    for (auto at = name.find(".so"); at != std::string_view::npos; at = name.find(".so", at + 1)) {
        auto after = at + 3;
        if (after == name.size() || name[after] == '.') return true;
    }
    return false;
}

bool starts_with_any(std::string_view p, std::initializer_list<std::string_view> prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](std::string_view pre) { return p.starts_with(pre); });
}

}  // namespace

std::string_view to_string(MapGroup group) {
    switch (group) {
        case MapGroup::binary_text:
            return "binary_text";
        case MapGroup::binary_data:
            return "binary_data";
        case MapGroup::library:
            return "library";
        case MapGroup::heap:
            return "heap";
        case MapGroup::stack:
            return "stack";
        case MapGroup::anon:
            return "anon";
        case MapGroup::shmem:
            return "shmem";
        case MapGroup::file:
            return "file";
        case MapGroup::vdso_vvar:
            return "vdso_vvar";
        case MapGroup::other:
            return "other";
    }
    return "other";
}

// Precedence, first match wins:
//  1. Bracket names from the kernel: [heap], [stack] (and [stack:TID] of old kernels),
//     [vdso]/[vvar]/[vvar_vclock]/[vsyscall], [anon:NAME] (PR_SET_VMA_ANON_NAME) -> anon,
//     [anon_shmem:NAME] -> shmem; any other bracket name -> other.
//  2. No pathname: MAP_SHARED anonymous memory ('s') -> shmem, else anon. (Kernels usually
//     show shared anonymous memory as "/dev/zero (deleted)"; rule 3 covers that.)
//  3. Swap-backed shared memory by name: /dev/shm/ (POSIX shm), /memfd: (memfd_create),
//     /SYSV (SysV shm), /dev/zero (deleted) (shared anonymous) -> shmem. A tmpfs file elsewhere
//     (say /run or /tmp) cannot be told from a disk file by name and lands in `file`; its
//     memory still shows as Pss_Shmem in the rollup.
//  4. The main executable -> binary_text if executable, else binary_data.
//  5. A shared object by basename -> library.
//  6. Any other absolute path -> file; anything else (anon_inode:...) -> other.
MapClass classify(const Mapping& m, std::string_view exe_path) {
    std::string_view name = m.pathname;
    if (name.starts_with('[')) {
        if (name == "[heap]") return {MapGroup::heap, {}};
        if (name == "[stack]" || name.starts_with("[stack:")) return {MapGroup::stack, {}};
        if (name == "[vdso]" || name == "[vvar]" || name == "[vvar_vclock]" ||
            name == "[vsyscall]") {
            return {MapGroup::vdso_vvar, {}};
        }
        if (name.starts_with("[anon_shmem:")) return {MapGroup::shmem, {}};
        if (name.starts_with("[anon:")) return {MapGroup::anon, {}};
        return {MapGroup::other, {}};
    }
    if (name.empty()) return {m.shared() ? MapGroup::shmem : MapGroup::anon, {}};
    if (starts_with_any(name, {"/dev/shm/", "/memfd:", "/SYSV", "/dev/zero (deleted)"})) {
        return {MapGroup::shmem, {}};
    }
    std::string_view path = strip_deleted(name);
    std::string_view exe = strip_deleted(exe_path);
    if (!exe.empty() && path == exe) {
        return {m.executable() ? MapGroup::binary_text : MapGroup::binary_data, {}};
    }
    if (path.starts_with('/') && is_shared_object(basename(path))) {
        return {MapGroup::library, std::string(basename(path))};
    }
    if (path.starts_with('/')) return {MapGroup::file, {}};
    return {MapGroup::other, {}};
}

std::vector<MapGroupTotal> group_mappings(const std::vector<Mapping>& mappings,
                                          std::string_view exe_path) {
    std::map<std::pair<MapGroup, std::string>, MapGroupTotal> rows;
    for (const auto& m : mappings) {
        MapClass c = classify(m, exe_path);
        auto& row = rows[{c.group, c.library}];
        row.group = c.group;
        if (row.mappings++ == 0) row.library = std::move(c.library);
        row.counters += m.counters;
    }
    std::vector<MapGroupTotal> out;
    out.reserve(rows.size());
    for (auto& [key, row] : rows)
        out.push_back(std::move(row));
    return out;
}

}  // namespace cow::proc
