// deep_analyze over real processes: a master that touches A bytes of private anonymous memory
// and S bytes of MAP_SHARED|MAP_ANONYMOUS memory, then forks K children that each rewrite
// their own W-byte slice of A and read all of S. Everyone reports ready through a pipe and
// blocks reading another one until the test closes it. Needs root (pagemap frame numbers,
// /proc/kpagecount); skipped otherwise.
//
// The expectations are about the memory the test creates, nothing else. Every member also maps
// its binary, libc, a heap and a stack, and how those pages divide between pool-shared and
// outside depends on what else maps the same files: the kernel's smaps of the members' other
// mappings bound that part instead of a fixed allowance. And whether the master's read of Z
// maps the zero page is the kernel's choice: some VM kernels have no zero page
// (pvm_no_zero_page) and back every read fault with a frame of its own, which the children
// then share as they share A.
#include "core/proc/pagemap.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/proc/reader.hpp"
#include "tests/support/wait_for.hpp"

namespace cow::proc {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define COW_PAGEMAP_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COW_PAGEMAP_TEST_ASAN 1
#endif
#endif
#ifdef COW_PAGEMAP_TEST_ASAN
// ASan's allocator and shadow pages are in every process, inherited and shared like the rest,
// and its shadow reservations are TiBs of sparse VMAs.
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#if defined(__SANITIZE_THREAD__)
// TSan shadows every touched byte of application memory, so each page the pool writes costs
// several more: the exact frame budgets below cannot hold. The ASan and Release tiers check
// them; the TSan tier is there for the threads.
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

constexpr std::uint64_t kMiB = 1u << 20;
constexpr std::uint64_t kHuge = 2 * kMiB;

struct PoolSpec {
    std::uint64_t anon = 64 * kMiB;    // A: touched by the master before the forks
    std::uint64_t write = 8 * kMiB;    // W: rewritten by each child (its own slice; all if == A)
    std::uint64_t shared = 16 * kMiB;  // S: MAP_SHARED|MAP_ANONYMOUS, touched by everyone
    std::uint64_t zero = 4 * kMiB;     // Z: private anonymous, only read by the master
    int children = 3;                  // K
    bool thp = false;                  // madvise(MADV_HUGEPAGE) on A
};

bool thp_available() {
    std::string mode = test::slurp("/sys/kernel/mm/transparent_hugepage/enabled");
    return mode.find("[never]") == std::string::npos && !mode.empty();
}

bool deep_possible() {
    return ::geteuid() == 0 && ::access("/proc/kpagecount", R_OK) == 0;
}

// Writes every page of [p, p+n) with a non-zero byte, so none is the zero page.
void touch(char* p, std::uint64_t n, char value) {
    for (std::uint64_t i = 0; i < n; i += 4096)
        p[i] = value;
}

// Reads every page (the shared region must be faulted in by each child: fork does not copy
// the PTEs of shared mappings).
std::uint64_t read_all(const char* p, std::uint64_t n) {
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; i += 4096)
        sum += static_cast<unsigned char>(*static_cast<const volatile char*>(p + i));
    return sum;
}

// What each member writes to the ready pipe, in one piece (< PIPE_BUF): who it is, and where
// the test's regions are (the same addresses in every member, inherited through fork).
struct Ready {
    pid_t pid = 0;
    std::uint64_t anon = 0, shared = 0, zero = 0;  // 0: no such region
};

[[noreturn]] void block_and_exit(Ready ready, int ready_w, int go_r) {
    ready.pid = ::getpid();
    if (::write(ready_w, &ready, sizeof ready) != sizeof ready) ::_exit(3);
    ::close(ready_w);
    char c;
    while (::read(go_r, &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
}

// `size` bytes at a multiple of `align` with `prot`, in a VMA of their own: PROT_NONE guards
// on both sides keep the kernel from merging it with a neighbour (a heap arena, a sanitizer's
// mapping), so that smaps shows the region exactly. nullptr on failure.
char* isolated_map(std::uint64_t size, std::uint64_t align, int prot, int flags) {
    const std::uint64_t page = 4096;
    const std::uint64_t span = size + 2 * align + 2 * page;
    void* raw = ::mmap(nullptr, span, PROT_NONE, flags, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const auto lo = reinterpret_cast<std::uintptr_t>(raw) + page;  // at least a page of guard
    auto* p = reinterpret_cast<char*>((lo + align - 1) & ~(std::uintptr_t{align} - 1));
    if (::mprotect(p, size, prot) != 0) return nullptr;
    return p;
}

// Runs in the forked master; never returns.
[[noreturn]] void master_main(const PoolSpec& spec, int ready_w, int go_r) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A, 2 MiB aligned so that THP can back it.
    char* a = isolated_map(spec.anon, kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (a == nullptr) ::_exit(4);
    if (spec.thp) ::madvise(a, spec.anon, MADV_HUGEPAGE);
    touch(a, spec.anon, 1);
    char* sh = nullptr;
    if (spec.shared > 0) {
        sh = isolated_map(spec.shared, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
        if (sh == nullptr) ::_exit(5);
        touch(sh, spec.shared, 2);
    }
    char* z = nullptr;
    if (spec.zero > 0) {
        // Read faults on private anonymous memory map the shared zero page, where the kernel
        // has one.
        z = isolated_map(spec.zero, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
        if (z == nullptr) ::_exit(5);
        if (read_all(z, spec.zero) != 0) ::_exit(5);
    }
    const auto addr = [](const char* p) { return reinterpret_cast<std::uintptr_t>(p); };
    Ready ready{0, addr(a), addr(sh), addr(z)};
    const pid_t me = ::getpid();
    std::vector<pid_t> kids;
    for (int k = 0; k < spec.children; ++k) {
        pid_t pid = ::fork();
        if (pid < 0) ::_exit(6);
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != me) ::_exit(7);
            const std::uint64_t off = spec.write == spec.anon ? 0 : k * spec.write;
            touch(a + off, spec.write, static_cast<char>(10 + k));
            if (sh) read_all(sh, spec.shared);
            block_and_exit(ready, ready_w, go_r);
        }
        kids.push_back(pid);
    }
    ready.pid = me;
    if (::write(ready_w, &ready, sizeof ready) != sizeof ready) ::_exit(3);
    ::close(ready_w);
    char c;
    while (::read(go_r, &c, 1) < 0 && errno == EINTR) {
    }
    for (pid_t kid : kids)
        ::waitpid(kid, nullptr, 0);
    ::_exit(0);
}

constexpr const char* kMasterEnv = "COWHERD_PAGEMAP_TEST_MASTER";

// The master runs in a fresh image of this binary, so that it does not inherit the heap of the
// test process: pages that no PoolSpec accounts for (pool-shared once the test process frees
// or rewrites its copies). This runs before main() there, and never returns.
[[maybe_unused]] const bool kIsMaster = [] {
    const char* env = std::getenv(kMasterEnv);
    if (!env) return false;
    unsigned long long a = 0, w = 0, s = 0, z = 0;
    int k = 0, thp = 0, ready_w = -1, go_r = -1;
    if (std::sscanf(env, "%llu %llu %llu %llu %d %d %d %d", &a, &w, &s, &z, &k, &thp, &ready_w,
                    &go_r) != 8)
        ::_exit(8);
    ::unsetenv(kMasterEnv);
    PoolSpec spec{a, w, s, z, k, thp != 0};
    master_main(spec, ready_w, go_r);
}();

// The master and its children, blocked until destruction. Always cleans up: closing the go
// pipe releases everyone; a master that does not exit in time is killed, and its children
// die with it (PR_SET_PDEATHSIG), as does the master if the test process dies.
class Pool {
  public:
    explicit Pool(const PoolSpec& spec) {
        int ready[2], go[2];
        if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(go, O_CLOEXEC) != 0) return;
        master_ = ::fork();
        if (master_ == 0) {
            ::close(ready[0]);
            ::close(go[1]);
            ::fcntl(ready[1], F_SETFD, 0);
            ::fcntl(go[0], F_SETFD, 0);
            char env[256];
            std::snprintf(env, sizeof env, "%llu %llu %llu %llu %d %d %d %d",
                          static_cast<unsigned long long>(spec.anon),
                          static_cast<unsigned long long>(spec.write),
                          static_cast<unsigned long long>(spec.shared),
                          static_cast<unsigned long long>(spec.zero), spec.children,
                          spec.thp ? 1 : 0, ready[1], go[0]);
            ::setenv(kMasterEnv, env, 1);
            ::execl("/proc/self/exe", "pagemap-test-master", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(ready[1]);
        ::close(go[0]);
        go_w_ = go[1];
        if (master_ < 0) {
            ::close(ready[0]);
            return;
        }
        // K + 1 reports, each written in one piece.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (static_cast<int>(members_.size()) < spec.children + 1) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd p{ready[0], POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            Ready r;
            ssize_t n = ::read(ready[0], &r, sizeof r);
            if (n != sizeof r) break;  // EOF: someone died before reporting
            members_.push_back(r.pid);
            regions_ = r;
        }
        ::close(ready[0]);
        ready_ = static_cast<int>(members_.size()) == spec.children + 1;
    }
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool() {
        if (go_w_ >= 0) ::close(go_w_);
        if (master_ <= 0) return;
        int status = 0;
        if (!test::WaitFor([&] { return ::waitpid(master_, &status, WNOHANG) == master_; })) {
            ::kill(master_, SIGKILL);
            ::waitpid(master_, &status, 0);
        }
    }

    bool ready() const { return ready_; }
    pid_t master() const { return master_; }
    // Where A, S and Z start, in every member.
    const Ready& regions() const { return regions_; }
    std::vector<pid_t> children() const {
        std::vector<pid_t> out;
        for (pid_t p : members_)
            if (p != master_) out.push_back(p);
        std::sort(out.begin(), out.end());
        return out;
    }

  private:
    pid_t master_ = -1;
    int go_w_ = -1;
    std::vector<pid_t> members_;
    Ready regions_;
    bool ready_ = false;
};

std::vector<DeepMember> members_of(const Pool& pool) {
    std::vector<DeepMember> m{{pool.master(), kMasterGroup, 0}};
    int k = 0;
    for (pid_t kid : pool.children())
        m.push_back({kid, k++, 0});
    return m;
}

double mib(std::uint64_t pages) {
    return static_cast<double>(pages * 4096) / static_cast<double>(kMiB);
}

double tolerance(std::uint64_t want) {
    return 0.02 * static_cast<double>(want) + static_cast<double>(kMiB);
}

// |got - want| <= 2% of want + 1 MiB, in bytes.
void expect_near_bytes(std::uint64_t got, std::uint64_t want, const char* what) {
    EXPECT_NEAR(static_cast<double>(got), static_cast<double>(want), tolerance(want))
        << what << ": got " << static_cast<double>(got) / kMiB << " MiB, want "
        << static_cast<double>(want) / kMiB << " MiB";
}

// lo <= got <= hi, each bound with the tolerance above, in bytes.
void expect_between_bytes(std::uint64_t got, std::uint64_t lo, std::uint64_t hi, const char* what) {
    const auto g = static_cast<double>(got);
    EXPECT_TRUE(g >= static_cast<double>(lo) - tolerance(lo) &&
                g <= static_cast<double>(hi) + tolerance(hi))
        << what << ": got " << g / kMiB << " MiB, want " << static_cast<double>(lo) / kMiB << " to "
        << static_cast<double>(hi) / kMiB << " MiB";
}

// One member's memory as the kernel's smaps counts it (bytes), split into the test's regions
// and everything else (binary, libraries, heap, stack, a sanitizer's runtime): what the test
// did not create, and whose split between pool-shared and outside depends on who else maps the
// same files, so it only bounds the expectations.
struct Split {
    std::uint64_t test_private = 0;  // mapcount 1, in A, S and Z
    std::uint64_t test_shared = 0;   // mapcount > 1, in A, S and Z
    std::uint64_t zero_rss = 0;      // Z's frames: 0 where the kernel maps the zero page
    std::uint64_t other_rss = 0;
    std::uint64_t other_private = 0;
    std::uint64_t other_shared = 0;
};

// Fails (ADD_FAILURE) and returns nullopt if a region is not one VMA of its exact size.
std::optional<Split> split_of(ProcReader& reader, pid_t pid, const Ready& at,
                              const PoolSpec& spec) {
    auto maps = reader.read_smaps(pid);
    if (!maps.ok()) {
        ADD_FAILURE() << "smaps of " << pid << ": " << std::strerror(maps.err);
        return std::nullopt;
    }
    const struct {
        std::uint64_t start, size;
    } regions[] = {{at.anon, spec.anon}, {at.shared, spec.shared}, {at.zero, spec.zero}};
    Split out;
    int found = 0;
    for (const Mapping& m : maps.value) {
        const MemCounters& c = m.counters;
        const std::uint64_t priv = c.private_clean + c.private_dirty;
        const std::uint64_t shared = c.shared_clean + c.shared_dirty;
        bool ours = false;
        for (const auto& r : regions) {
            if (r.start == 0 || m.start != r.start) continue;
            if (m.end != r.start + r.size) {
                ADD_FAILURE() << "pid " << pid << ": the region at " << std::hex << r.start
                              << " is not one VMA of its own (it ends at " << m.end << ")";
                return std::nullopt;
            }
            ours = true;
        }
        if (!ours) {
            out.other_rss += c.rss;
            out.other_private += priv;
            out.other_shared += shared;
            continue;
        }
        ++found;
        out.test_private += priv;
        out.test_shared += shared;
        if (m.start == at.zero) out.zero_rss = c.rss;
    }
    const int want = (at.anon != 0) + (at.shared != 0) + (at.zero != 0);
    if (found != want) {
        ADD_FAILURE() << "pid " << pid << ": found " << found << " of the test's " << want
                      << " regions in smaps";
        return std::nullopt;
    }
    return out;
}

class DeepPool : public ::testing::TestWithParam<bool> {};

TEST_P(DeepPool, AttributesCopyOnWriteSharing) {
    if (!deep_possible()) GTEST_SKIP() << "needs root and /proc/kpagecount";
    if (kTsan) GTEST_SKIP() << "TSan shadow memory breaks the frame budgets";
    PoolSpec spec;
    spec.thp = GetParam();
    if (spec.thp && !thp_available()) GTEST_SKIP() << "THP disabled";
    Pool pool(spec);
    ASSERT_TRUE(pool.ready());
    const auto kids = pool.children();
    ASSERT_EQ(kids.size(), 3u);

    DeepOptions opt;
    opt.master = pool.master();
    // Everyone is blocked, but the kernel may still move their pages (khugepaged collapsing or
    // splitting a huge page, DAMON): a walk counts only if the rollups read just before and
    // just after it agree. CI once saw the master's PSS off by 1.2% in the THP case.
    ProcReader reader;
    auto rollups_of = [&](const std::vector<DeepMember>& ms) {
        std::vector<Read<MemCounters>> out;
        for (const auto& m : ms)
            out.push_back(reader.read_smaps_rollup(m.pid));
        return out;
    };
    auto same = [](const std::vector<Read<MemCounters>>& a,
                   const std::vector<Read<MemCounters>>& b) {
        for (std::size_t i = 0; i < a.size(); ++i) {
            const auto &x = a[i].value, &y = b[i].value;
            if (!a[i].ok() || !b[i].ok() || x.rss != y.rss || x.pss != y.pss ||
                x.shared_clean != y.shared_clean || x.shared_dirty != y.shared_dirty ||
                x.private_clean != y.private_clean || x.private_dirty != y.private_dirty)
                return false;
        }
        return true;
    };
    const auto members = members_of(pool);
    DeepReport r;
    std::vector<Read<MemCounters>> rollups;
    std::vector<Split> splits;
    int attempts = 0;
    for (bool stable = false; !stable && attempts < 10; ++attempts) {
        auto before = rollups_of(members);
        r = deep_analyze(members, opt);
        splits.clear();
        for (const auto& m : members) {
            auto split = split_of(reader, m.pid, pool.regions(), spec);
            ASSERT_TRUE(split.has_value());
            splits.push_back(*split);
        }
        rollups = rollups_of(members);
        stable = same(before, rollups);
    }
    std::printf("  stable walk after %d attempt(s)\n", attempts);

    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    ASSERT_EQ(r.procs.size(), 4u);
    for (std::size_t i = 0; i < r.procs.size(); ++i)
        ASSERT_EQ(r.procs[i].pid, members[i].pid) << "the report keeps the members' order";
    const std::uint64_t page = r.page_size;
    const std::uint64_t A = spec.anon, W = spec.write, S = spec.shared;
    const std::uint64_t K = kids.size();
    // Z's frames, where the kernel has no zero page: the master's, inherited by the children.
    const std::uint64_t Zf = splits[0].zero_rss;
    std::printf("  Z: %.1f MiB of frames (%s)\n", static_cast<double>(Zf) / kMiB,
                Zf == 0 ? "the zero page" : "this kernel has no zero page");

    for (std::size_t i = 0; i < r.procs.size(); ++i) {
        const auto& p = r.procs[i];
        SCOPED_TRACE("pid " + std::to_string(p.pid) + (p.master ? " (master)" : ""));
        ASSERT_EQ(p.status, ReadStatus::ok);
        EXPECT_EQ(p.private_pages + p.pool_shared_pages + p.outside_shared_pages, p.resident_pages);
        // PSS from pages against the kernel's own rollup, within 1%.
        ASSERT_TRUE(rollups[i].ok());
        const double rollup_pss = static_cast<double>(rollups[i].value.pss);
        EXPECT_NEAR(static_cast<double>(p.pss_bytes()), rollup_pss, 0.01 * rollup_pss);
        EXPECT_NEAR(static_cast<double>(p.resident_pages * page),
                    static_cast<double>(rollups[i].value.rss),
                    0.01 * static_cast<double>(rollups[i].value.rss));
        std::printf(
            "  %s pid %d: resident %.1f MiB, private %.1f, pool-shared %.1f "
            "(master %.1f, siblings %.1f), outside %.1f; pss %.0f kB vs rollup %.0f kB\n",
            p.master ? "master" : "child ", p.pid, mib(p.resident_pages), mib(p.private_pages),
            mib(p.pool_shared_pages), mib(p.with_master_pages), mib(p.with_siblings_pages),
            mib(p.outside_shared_pages), static_cast<double>(p.pss_bytes()) / 1024,
            rollup_pss / 1024);
        const Split& sp = splits[i];
        if (p.master) {
            EXPECT_GE(p.zero_pages * page + Zf, spec.zero) << "the zero page is skipped";
            continue;
        }
        // What the kernel says of the test's regions in this child: its rewritten slice is its
        // own, and everything else of them is shared, with pool members only (the master made
        // them after its exec, so only its children can map them).
        expect_near_bytes(sp.test_private, W, "fixture: the child's slice of A in smaps");
        const std::uint64_t shared = A - W + S + Zf;
        expect_near_bytes(sp.test_shared, shared, "fixture: A, S and Z shared in smaps");
        expect_near_bytes(sp.zero_rss, Zf, "fixture: Z inherited from the master");

        expect_near_bytes(p.private_pages * page, W + sp.other_private, "child private");
        // The test's shared pages are pool-shared, with the master and with a sibling (every
        // unwritten page of A is still mapped by a sibling that did not write it); of the
        // child's other shared pages (libraries, the binary, its heap), any part may be.
        const std::uint64_t most = shared + sp.other_shared;
        expect_between_bytes(p.pool_shared_pages * page, shared, most, "child pool-shared");
        expect_between_bytes(p.with_master_pages * page, shared, most, "child w/ master");
        expect_between_bytes(p.with_siblings_pages * page, shared, most, "child w/ siblings");
        expect_between_bytes(p.outside_shared_pages * page, 0, sp.other_shared, "child outside");
    }

    std::printf(
        "  D %.1f MiB, U %.1f, O %.1f, shmem %.1f, thp %.1f, ΣRSS %.1f, ΣPSS %.1f; "
        "%llu pagemap entries, %llu kpage reads, %.1f ms\n",
        mib(r.distinct_frames), mib(r.pool_only_frames), mib(r.outside_frames), mib(r.shmem_frames),
        mib(r.thp_frames), mib(r.rss_pages), static_cast<double>(r.pss_bytes()) / kMiB,
        static_cast<unsigned long long>(r.pages_read),
        static_cast<unsigned long long>(r.kpage_reads), r.seconds * 1000);

    // Distinct frames: A once, each child's rewritten slice, the shared region once, Z's
    // frames if any; and at most every page of the members' other mappings.
    const std::uint64_t expect_d = A + K * W + S + Zf;
    std::uint64_t other_rss = 0;
    for (const Split& sp : splits)
        other_rss += sp.other_rss;
    EXPECT_GE(r.distinct_frames * page, expect_d);
    EXPECT_LE(r.distinct_frames * page, expect_d + other_rss);
    // The MAP_SHARED region: one frame per page although four processes map it.
    expect_near_bytes(r.shmem_frames * page, S, "shmem frames");
    EXPECT_GE(r.pool_only_frames * page, expect_d);
    EXPECT_LE(r.uss_pages, r.pool_only_frames);
    EXPECT_LE(r.pool_only_frames, r.distinct_frames);
    EXPECT_LE(r.pss_fixed, r.distinct_frames * (page << kPssShift));
    // Everyone is blocked, but khugepaged or compaction may still move a page meanwhile.
    EXPECT_LE(r.anomalies, r.distinct_frames / 100);
    if (spec.thp) {
        EXPECT_GT(r.thp_frames * page, A / 2) << "THP did not back A";
    }

    // Per worker group: what stopping it frees is its rewritten slice and its own pages.
    for (const auto& g : r.groups) {
        if (g.group == kMasterGroup) continue;
        ASSERT_LT(static_cast<std::size_t>(g.group) + 1, splits.size());
        const Split& sp = splits[static_cast<std::size_t>(g.group) + 1];  // members_of's order
        expect_near_bytes(g.group_only_frames * page, W + sp.other_private, "group-only frames");
    }

    // Reading every VMA whole, without PAGEMAP_SCAN, finds the same pages.
    EXPECT_GT(r.scan_calls, 0u);
    if (kAsan) return;  // minutes of reading shadow reservations
    opt.scan_min_pages = 0;
    auto full = deep_analyze(members_of(pool), opt);
    ASSERT_EQ(full.status, ReadStatus::ok) << full.error;
    EXPECT_EQ(full.scan_calls, 0u);
    EXPECT_GT(full.pages_read, r.pages_read);
    // The second walk comes later: the kernel may have moved or reclaimed a few pages of the
    // blocked processes meanwhile (khugepaged, compaction, DAMON; a loaded CI machine once saw
    // 2 pages of 27,730 differ), so the walks agree to the same small budget as anomalies above.
    // A scan that skipped or misread a mapping differs by thousands of pages.
    const auto slack = static_cast<double>(r.distinct_frames / 1000 + 4);
    auto near = [slack](std::uint64_t a, std::uint64_t b) {
        return std::abs(static_cast<double>(a) - static_cast<double>(b)) <= slack;
    };
    for (std::size_t i = 0; i < r.procs.size(); ++i) {
        EXPECT_PRED2(near, full.procs[i].resident_pages, r.procs[i].resident_pages);
        EXPECT_PRED2(near, full.procs[i].private_pages, r.procs[i].private_pages);
        EXPECT_PRED2(near, full.procs[i].with_master_pages, r.procs[i].with_master_pages);
        EXPECT_PRED2(near, full.procs[i].zero_pages, r.procs[i].zero_pages);
    }
    EXPECT_PRED2(near, full.pool_only_frames, r.pool_only_frames);
}

INSTANTIATE_TEST_SUITE_P(Pagemap, DeepPool, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Thp" : "Small"; });

TEST(DeepPoolErrors, ExitedMemberIsGone) {
    if (!deep_possible()) GTEST_SKIP() << "needs root and /proc/kpagecount";
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ::_exit(0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    auto r = deep_analyze({{::getpid(), 0, 0}, {pid, 1, 0}});
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    EXPECT_EQ(r.procs[0].status, ReadStatus::ok);
    EXPECT_GT(r.procs[0].resident_pages, 0u);
    EXPECT_EQ(r.procs[1].status, ReadStatus::gone);
    EXPECT_EQ(r.procs[1].resident_pages, 0u);
}

TEST(DeepPoolErrors, UnprivilegedIsUnreadable) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop privileges";
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        // nobody: pagemap shows no frame numbers, kpagecount is 0400 root.
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
            ::_exit(2);
        auto r = deep_analyze({{::getpid(), 0, 0}});
        int out[3] = {static_cast<int>(r.status), r.err,
                      r.procs.empty() ? -1 : static_cast<int>(r.procs[0].status)};
        ::_exit(::write(fds[1], out, sizeof out) == sizeof out ? 0 : 3);
    }
    ::close(fds[1]);
    int out[3] = {-1, -1, -1};
    ssize_t n = ::read(fds[0], out, sizeof out);
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_EQ(n, static_cast<ssize_t>(sizeof out)) << "child status " << status;
    EXPECT_EQ(out[0], static_cast<int>(ReadStatus::unreadable));
    EXPECT_EQ(out[1], EACCES);
    EXPECT_EQ(out[2], static_cast<int>(ReadStatus::unreadable));
}

TEST(DeepPoolErrors, SparseReservationIsCheap) {
    if (!deep_possible()) GTEST_SKIP() << "needs root and /proc/kpagecount";
    // 1 TiB reserved, 3 pages touched: read whole, its pagemap alone would be 2 GiB.
    const std::uint64_t size = std::uint64_t{1} << 40;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) GTEST_SKIP() << "cannot reserve 1 TiB: " << std::strerror(errno);
    auto* c = static_cast<char*>(p);
    c[0] = 1;
    c[size / 2] = 2;
    c[size - 1] = 3;
    auto r = deep_analyze({{::getpid(), 0, 0}});
    ::munmap(p, size);
    ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
    ASSERT_EQ(r.procs[0].status, ReadStatus::ok);
    EXPECT_GT(r.scan_calls, 0u);
    EXPECT_LT(r.pages_read, 1u << 20);
    EXPECT_GE(r.procs[0].private_pages, 3u);
}

// Throughput, for the numbers at the top of core/proc/pagemap.hpp. Run in a Release build:
//   process_tests --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
TEST(DeepPoolBench, DISABLED_Throughput) {
    if (!deep_possible()) GTEST_SKIP() << "needs root and /proc/kpagecount";
    if (kAsan) GTEST_SKIP() << "measure a Release build";
    for (bool rewrite : {true, false}) {
        PoolSpec spec;
        spec.anon = 256 * kMiB;
        spec.write = rewrite ? spec.anon : 0;
        spec.shared = 0;
        spec.zero = 0;
        Pool pool(spec);
        ASSERT_TRUE(pool.ready());
        DeepOptions opt;
        opt.master = pool.master();
        // DEEP_MAX_GAP=n / DEEP_SCAN_MIN=n try other batching gaps / scan thresholds.
        if (const char* m = std::getenv("DEEP_SCAN_MIN"))
            opt.scan_min_pages = std::strtoull(m, nullptr, 10);
        if (const char* g = std::getenv("DEEP_MAX_GAP"))
            opt.max_gap = std::strtoull(g, nullptr, 10);
        DeepReport best;
        best.seconds = 1e9;
        for (int i = 0; i < 5; ++i) {
            auto r = deep_analyze(members_of(pool), opt);
            ASSERT_EQ(r.status, ReadStatus::ok) << r.error;
            if (r.seconds < best.seconds) best = std::move(r);
        }
        std::printf(
            "children %s: D %.0f MiB, ΣRSS %.0f MiB, %llu pagemap entries, %llu kpage reads of "
            "%llu "
            "entries; best %.1f ms (walk %.1f, frames %.1f), %.2f M pages/s\n",
            rewrite ? "rewrote all" : "only read", mib(best.distinct_frames), mib(best.rss_pages),
            static_cast<unsigned long long>(best.pages_read),
            static_cast<unsigned long long>(best.kpage_reads),
            static_cast<unsigned long long>(best.kpage_entries), best.seconds * 1000,
            best.walk_seconds * 1000, best.frames_seconds * 1000,
            static_cast<double>(best.pages_read) / best.seconds / 1e6);
    }
}

}  // namespace
}  // namespace cow::proc
