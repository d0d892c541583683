#include <cerrno>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "core/proc/cmdline.hpp"
#include "core/proc/reader.hpp"

#ifndef COWHERD_TEST_DATA
#define COWHERD_TEST_DATA "/work/main/tests/data"
#endif

namespace cow::proc {
namespace {

// See tests/data/proc/make_fakeroots.py for the processes in these trees.
const std::string kRoot = std::string(COWHERD_TEST_DATA) + "/proc/fakeroot";
const std::string kRootNoChildren = std::string(COWHERD_TEST_DATA) + "/proc/fakeroot_nochildren";

bool ends_with(const char* path, std::string_view suffix) {
    return std::string_view(path).ends_with(suffix);
}

TEST(ProcReader, ErrnoMapping) {
    EXPECT_EQ(status_from_errno(0), ReadStatus::ok);
    EXPECT_EQ(status_from_errno(ENOENT), ReadStatus::gone);
    EXPECT_EQ(status_from_errno(ESRCH), ReadStatus::gone);
    EXPECT_EQ(status_from_errno(EACCES), ReadStatus::unreadable);
    EXPECT_EQ(status_from_errno(EPERM), ReadStatus::unreadable);
    EXPECT_EQ(status_from_errno(EIO), ReadStatus::error);
    EXPECT_EQ(status_from_errno(EMFILE), ReadStatus::error);
    EXPECT_EQ(to_string(ReadStatus::unreadable), "unreadable");
}

TEST(ProcReader, ReadsFilesOfAFakeRoot) {
    ProcReader r(kRoot);
    auto st = r.read_stat(200);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st.value.comm, "(a) (b)");
    EXPECT_EQ(st.value.ppid, 100);

    auto status = r.read_status(100);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status.value.name(), "sleep");

    auto rollup = r.read_smaps_rollup(100);
    ASSERT_TRUE(rollup.ok());
    EXPECT_EQ(rollup.value.rss, 1804u * 1024);

    auto smaps = r.read_smaps(100);
    ASSERT_TRUE(smaps.ok());
    EXPECT_EQ(smaps.value.size(), 37u);

    auto cmd = r.read_cmdline(100);
    ASSERT_TRUE(cmd.ok());
    EXPECT_EQ(cmd.value, (std::vector<std::string>{"/usr/bin/cowherd", "-c", "/etc/c.yaml"}));
    auto kthread = r.read_cmdline(2);
    ASSERT_TRUE(kthread.ok());
    EXPECT_TRUE(kthread.value.empty());

    auto raw = r.read_file(100, "task/101/children");
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw.value, "202 205 ");
}

TEST(ProcReader, MissingPidIsGone) {
    ProcReader r(kRoot);
    for (auto res : {r.read_stat(999).status, r.read_status(999).status,
                     r.read_smaps_rollup(999).status, r.read_smaps(999).status,
                     r.read_cmdline(999).status, r.read_exe(999).status, r.children(999).status}) {
        EXPECT_EQ(res, ReadStatus::gone);
    }
    EXPECT_EQ(r.read_stat(999).err, ENOENT);
    // A process whose rollup cannot be opened (zombie, kernel thread) is "gone" for memory.
    EXPECT_EQ(r.read_smaps_rollup(201).status, ReadStatus::gone);
}

TEST(ProcReader, GarbageIsAnErrorNotZero) {
    ProcReader r(kRoot);
    auto st = r.read_stat(0x10);  // not a pid directory: gone
    EXPECT_EQ(st.status, ReadStatus::gone);

    ProcIo io = system_io();
    io.open = [](const char* path, int flags) {
        if (ends_with(path, "/smaps_rollup")) {
            std::string p(path);
            p += "_garbage";
            return ::open(p.c_str(), flags);
        }
        return ::open(path, flags);
    };
    ProcReader garbled(kRoot, io);
    auto rollup = garbled.read_smaps_rollup(100);
    EXPECT_EQ(rollup.status, ReadStatus::error);
    EXPECT_EQ(rollup.err, EBADMSG);
}

// Root bypasses file modes, so permission errors are injected rather than made with chmod.
TEST(ProcReader, PermissionDeniedIsUnreadable) {
    ProcIo io = system_io();
    io.open = [](const char* path, int flags) {
        if (ends_with(path, "/smaps_rollup") || ends_with(path, "/smaps")) {
            errno = EACCES;
            return -1;
        }
        return ::open(path, flags);
    };
    io.readlink = [](const char*, char*, std::size_t) -> ssize_t {
        errno = EACCES;
        return -1;
    };
    ProcReader r(kRoot, io);
    auto rollup = r.read_smaps_rollup(100);
    EXPECT_EQ(rollup.status, ReadStatus::unreadable);
    EXPECT_EQ(rollup.err, EACCES);
    EXPECT_EQ(r.read_smaps(100).status, ReadStatus::unreadable);
    EXPECT_EQ(r.read_exe(100).status, ReadStatus::unreadable);
    EXPECT_TRUE(r.read_status(100).ok());  // status is world-readable
}

// A process reaped between open() and read(): the kernel answers the read with ESRCH.
TEST(ProcReader, ExitBetweenOpenAndReadIsGone) {
    ProcIo io = system_io();
    io.read = [](int, void*, std::size_t) -> ssize_t {
        errno = ESRCH;
        return -1;
    };
    ProcReader r(kRoot, io);
    auto st = r.read_stat(100);
    EXPECT_EQ(st.status, ReadStatus::gone);
    EXPECT_EQ(st.err, ESRCH);
    auto rollup = r.read_smaps_rollup(100);
    EXPECT_EQ(rollup.status, ReadStatus::gone);
    EXPECT_EQ(rollup.err, ESRCH);
    EXPECT_EQ(r.read_smaps(100).status, ReadStatus::gone);
    EXPECT_EQ(r.read_cmdline(100).status, ReadStatus::gone);
    EXPECT_FALSE(r.identify(100).ok());
}

TEST(ProcReader, InterruptedReadsAreRetried) {
    ProcIo io = system_io();
    io.read = [calls = 0](int fd, void* buf, std::size_t n) mutable -> ssize_t {
        if (++calls % 2 == 1) {
            errno = EINTR;
            return -1;
        }
        return ::read(fd, buf, n);
    };
    ProcReader r(kRoot, io);
    EXPECT_TRUE(r.read_stat(100).ok());
    EXPECT_TRUE(r.read_smaps_rollup(100).ok());
}

TEST(ProcReader, RollupIsOneReadAndRetriesLargerWhenFull) {
    struct Counts {
        int opens = 0;
        int reads = 0;
        std::size_t first_size = 0;
    };
    Counts counts;
    ProcIo io = system_io();
    io.open = [&counts](const char* path, int flags) {
        ++counts.opens;
        return ::open(path, flags);
    };
    io.read = [&counts](int fd, void* buf, std::size_t n) -> ssize_t {
        if (counts.reads++ == 0) {
            counts.first_size = n;
            std::memset(buf, 'x', n);  // pretend the rollup filled the buffer exactly
            return static_cast<ssize_t>(n);
        }
        return ::read(fd, buf, n);
    };
    ProcReader r(kRoot, io);
    auto rollup = r.read_smaps_rollup(100);
    ASSERT_TRUE(rollup.ok());
    EXPECT_EQ(rollup.value.rss, 1804u * 1024);  // the "xxx" generation was discarded
    EXPECT_EQ(counts.first_size, 4096u);
    EXPECT_EQ(counts.opens, 2);
    EXPECT_EQ(counts.reads, 2);
}

TEST(ProcReader, AllPidsSkipsNonNumericEntries) {
    ProcReader r(kRoot);
    EXPECT_EQ(r.all_pids(), (std::vector<pid_t>{1, 2, 100, 200, 201, 202, 205, 300, 500, 501}));
    EXPECT_TRUE(ProcReader("/nonexistent/proc").all_pids().empty());
}

TEST(ProcReader, ChildrenFromEveryThread) {
    ProcReader r(kRoot);
    auto kids = r.children(100);
    ASSERT_TRUE(kids.ok());
    // Thread 101 forked 202 (and lists 205, already reparented: callers check ppid).
    EXPECT_EQ(kids.value, (std::vector<pid_t>{200, 201, 202, 205}));
    EXPECT_EQ(r.has_children_files(), true);
    EXPECT_TRUE(r.children(300).value.empty());
}

TEST(ProcReader, ChildrenFallBackToScanningStat) {
    ProcReader r(kRootNoChildren);
    EXPECT_FALSE(r.has_children_files());
    auto kids = r.children(100);
    ASSERT_TRUE(kids.ok());
    // From ppid fields: 205 says ppid 1, so it is not listed here.
    EXPECT_EQ(kids.value, (std::vector<pid_t>{200, 201, 202}));
    EXPECT_EQ(r.has_children_files(), false);
    EXPECT_EQ(r.children(1).value, (std::vector<pid_t>{100, 205}));
    EXPECT_EQ(r.children(200).value, (std::vector<pid_t>{300}));
    EXPECT_EQ(r.children(999).status, ReadStatus::gone);
    EXPECT_EQ(r.scan_children(0), (std::vector<pid_t>{1, 2}));
}

TEST(ProcReader, IdentityIsPidPlusStartTime) {
    ProcReader r(kRoot);
    auto id = r.identify(200);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id.value, (ProcId{200, 2000}));
    EXPECT_TRUE(r.still_same(id.value));
    EXPECT_FALSE(r.still_same(ProcId{200, 1999}));  // same pid, another process
    EXPECT_FALSE(r.still_same(ProcId{999, 2000}));  // gone
}

TEST(ProcCmdline, SplitAndDisplay) {
    using V = std::vector<std::string>;
    EXPECT_EQ(split_cmdline(std::string("a\0b c\0\0d\0", 9)), (V{"a", "b c", "", "d"}));
    EXPECT_EQ(split_cmdline("nginx: worker process"), (V{"nginx: worker process"}));
    EXPECT_TRUE(split_cmdline("").empty());

    EXPECT_EQ(display_cmdline({"python3", "-m", "app"}), "python3 -m app");
    EXPECT_EQ(display_cmdline({"evil\n[fake]", "\x1b[31m"}), "evil?[fake] ?[31m");
    EXPECT_EQ(display_cmdline({}), "");

    std::string long_arg(1000, 'a');
    auto shown = display_cmdline({"prog", long_arg});
    EXPECT_EQ(shown.size(), 256u);
    EXPECT_TRUE(shown.ends_with("..."));
    EXPECT_EQ(display_cmdline({"prog", long_arg}, 10), "prog aa...");
    // Cuts never split a UTF-8 character ("é" is 2 bytes).
    std::string accents;
    for (int i = 0; i < 200; ++i)
        accents += "\xc3\xa9";
    auto cut = display_cmdline({accents}, 256);
    EXPECT_LE(cut.size(), 256u);
    EXPECT_EQ((cut.size() - 3) % 2, 0u);
}

}  // namespace
}  // namespace cow::proc
