#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "core/proc/map_group.hpp"

#ifndef COWHERD_TEST_DATA
#define COWHERD_TEST_DATA "/work/main/tests/data"
#endif

namespace cow::proc {
namespace {

std::string slurp(const std::string& name) {
    std::ifstream in(std::string(COWHERD_TEST_DATA) + "/proc/" + name, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

Mapping map(std::string perms, std::string pathname) {
    Mapping m;
    m.perms = std::move(perms);
    m.pathname = std::move(pathname);
    return m;
}

MapGroup group(std::string perms, std::string pathname, std::string_view exe = "/usr/bin/app") {
    return classify(map(std::move(perms), std::move(pathname)), exe).group;
}

TEST(ProcMapGroup, KernelBracketNames) {
    EXPECT_EQ(group("rw-p", "[heap]"), MapGroup::heap);
    EXPECT_EQ(group("rw-p", "[stack]"), MapGroup::stack);
    EXPECT_EQ(group("rw-p", "[stack:1234]"), MapGroup::stack);
    EXPECT_EQ(group("r-xp", "[vdso]"), MapGroup::vdso_vvar);
    EXPECT_EQ(group("r--p", "[vvar]"), MapGroup::vdso_vvar);
    EXPECT_EQ(group("r--p", "[vvar_vclock]"), MapGroup::vdso_vvar);
    EXPECT_EQ(group("--xp", "[vsyscall]"), MapGroup::vdso_vvar);
    EXPECT_EQ(group("rw-p", "[anon:libc_malloc]"), MapGroup::anon);
    EXPECT_EQ(group("rw-s", "[anon_shmem:ring]"), MapGroup::shmem);
    EXPECT_EQ(group("r-xp", "[uprobes]"), MapGroup::other);
}

TEST(ProcMapGroup, AnonymousAndShared) {
    EXPECT_EQ(group("rw-p", ""), MapGroup::anon);
    EXPECT_EQ(group("---p", ""), MapGroup::anon);  // guard pages
    EXPECT_EQ(group("rw-s", ""), MapGroup::shmem);
    EXPECT_EQ(group("rw-s", "/dev/zero (deleted)"), MapGroup::shmem);
    EXPECT_EQ(group("rw-s", "/dev/shm/pg.123"), MapGroup::shmem);
    EXPECT_EQ(group("rw-s", "/memfd:wayland-shm (deleted)"), MapGroup::shmem);
    EXPECT_EQ(group("rw-p", "/memfd:jit (deleted)"), MapGroup::shmem);
    EXPECT_EQ(group("rw-s", "/SYSV0052e2c1 (deleted)"), MapGroup::shmem);
    // A MAP_SHARED disk file is page cache, not shmem.
    EXPECT_EQ(group("rw-s", "/var/lib/db/data.mdb"), MapGroup::file);
    EXPECT_EQ(group("rw-p", "anon_inode:[perf_event]"), MapGroup::other);
}

TEST(ProcMapGroup, BinaryAndLibraries) {
    EXPECT_EQ(group("r-xp", "/usr/bin/app"), MapGroup::binary_text);
    EXPECT_EQ(group("r--p", "/usr/bin/app"), MapGroup::binary_data);
    EXPECT_EQ(group("rw-p", "/usr/bin/app"), MapGroup::binary_data);
    // Replaced under a running worker: both sides carry " (deleted)", or only one.
    EXPECT_EQ(group("r-xp", "/usr/bin/app (deleted)", "/usr/bin/app (deleted)"),
              MapGroup::binary_text);
    EXPECT_EQ(group("r-xp", "/usr/bin/app (deleted)", "/usr/bin/app"), MapGroup::binary_text);
    // Unknown executable path: the binary is just a file.
    EXPECT_EQ(group("r-xp", "/usr/bin/app", ""), MapGroup::file);

    auto libc = classify(map("r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6"), "/usr/bin/app");
    EXPECT_EQ(libc.group, MapGroup::library);
    EXPECT_EQ(libc.library, "libc.so.6");
    auto ext = classify(map("rw-p", "/usr/lib/python3/_ssl.cpython-311-x86_64-linux-gnu.so"), "");
    EXPECT_EQ(ext.group, MapGroup::library);
    EXPECT_EQ(ext.library, "_ssl.cpython-311-x86_64-linux-gnu.so");
    auto gone = classify(map("r-xp", "/opt/my app/lib odd.so.2 (deleted)"), "");
    EXPECT_EQ(gone.group, MapGroup::library);
    EXPECT_EQ(gone.library, "lib odd.so.2");
    EXPECT_EQ(group("r--p", "/usr/lib/ld-linux-x86-64.so.2"), MapGroup::library);
    // ".so" inside a name is not a shared object.
    EXPECT_EQ(group("r--p", "/etc/apt/notes.sources"), MapGroup::file);
    EXPECT_EQ(group("r--p", "/usr/lib/locale/C.utf8/LC_CTYPE"), MapGroup::file);
}

TEST(ProcMapGroup, StringsAreStable) {
    EXPECT_EQ(to_string(MapGroup::binary_text), "binary_text");
    EXPECT_EQ(to_string(MapGroup::vdso_vvar), "vdso_vvar");
    EXPECT_EQ(to_string(MapGroup::shmem), "shmem");
}

TEST(ProcMapGroup, GroupsCapturedSleep) {
    auto maps = parse_smaps(slurp("sleep.smaps"));
    std::string exe = slurp("sleep.exe");
    exe.pop_back();  // newline
    auto rows = group_mappings(maps, exe);

    std::size_t mappings = 0;
    MemCounters total;
    bool libc = false, text = false, data = false, heap = false, stack = false;
    for (const auto& r : rows) {
        mappings += r.mappings;
        total += r.counters;
        libc |= r.group == MapGroup::library && r.library == "libc.so.6";
        text |= r.group == MapGroup::binary_text;
        data |= r.group == MapGroup::binary_data;
        heap |= r.group == MapGroup::heap;
        stack |= r.group == MapGroup::stack;
        if (r.group != MapGroup::library) {
            EXPECT_EQ(r.library, "");
        }
    }
    EXPECT_TRUE(libc && text && data && heap && stack);
    EXPECT_EQ(mappings, maps.size());
    EXPECT_EQ(total, sum(maps));  // grouping loses nothing
    for (std::size_t i = 1; i < rows.size(); ++i) {
        EXPECT_LE(rows[i - 1].group, rows[i].group);
    }
}

}  // namespace
}  // namespace cow::proc
