// Groups smaps mappings for `cowctl mem --maps`, so a user sees what is shared and why.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/proc/mem_counters.hpp"
#include "core/proc/smaps.hpp"

namespace cow::proc {

enum class MapGroup {
    binary_text,  // the main executable, executable segments
    binary_data,  // the main executable, the other segments (headers, rodata, data, relro)
    library,      // a shared object ("*.so", "*.so.N"), every segment
    heap,         // [heap]: brk memory (malloc arenas past the first live in `anon`)
    stack,        // [stack] of the main thread; other threads' stacks are plain anon
    anon,         // private anonymous memory, named "[anon:x]" or not
    shmem,        // swap-backed shared memory: /dev/shm, memfd, SysV, MAP_SHARED|MAP_ANONYMOUS
    file,         // any other file mapping, shared or private (data files, locale, caches)
    vdso_vvar,    // [vdso] [vvar] [vvar_vclock] [vsyscall]: kernel-provided, tiny
    other,        // anything unrecognised: anon_inode:*, [uprobes], future bracket names
};

std::string_view to_string(MapGroup group);

struct MapClass {
    MapGroup group = MapGroup::other;
    std::string library;  // basename of the shared object when group == library
};

// `exe_path` is the target's /proc/PID/exe link (" (deleted)" is ignored on both sides, as a
// deploy may replace the binary under a running worker); empty when unknown, in which case the
// executable lands in `file`. Precedence is documented in map_group.cpp.
MapClass classify(const Mapping& m, std::string_view exe_path);

struct MapGroupTotal {
    MapGroup group = MapGroup::other;
    std::string library;
    std::size_t mappings = 0;
    MemCounters counters;
};

// One row per (group, library), in enum order then library name, for the --maps table.
std::vector<MapGroupTotal> group_mappings(const std::vector<Mapping>& mappings,
                                          std::string_view exe_path);

}  // namespace cow::proc
