#include "core/proc/pagemap.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <numeric>
#include <string_view>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/proc/smaps.hpp"

namespace cow::proc {
namespace {

constexpr std::uint32_t kNoMember = std::numeric_limits<std::uint32_t>::max();

// PAGEMAP_SCAN (include/uapi/linux/fs.h, 6.7+); the build's kernel headers may predate it.
struct PmPageRegion {
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t categories;
};
struct PmScanArg {
    std::uint64_t size;
    std::uint64_t flags;
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t walk_end;
    std::uint64_t vec;
    std::uint64_t vec_len;
    std::uint64_t max_pages;
    std::uint64_t category_inverted;
    std::uint64_t category_mask;
    std::uint64_t category_anyof_mask;
    std::uint64_t return_mask;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
constexpr std::uint64_t kPageIsPresent = 1u << 3;
constexpr std::uint64_t kPageIsSwapped = 1u << 4;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

  private:
    int fd_;
};

// Internal member order: by group, then caller order, so that in a sorted run of keys of one
// frame the members of a group are adjacent, and a key's low bits are that internal index.
struct Layout {
    std::vector<std::uint32_t> internal;    // caller index -> internal index
    std::vector<std::uint32_t> caller;      // internal index -> caller index
    std::vector<std::uint32_t> group_slot;  // internal index -> index into `groups`
    std::vector<int> groups;                // distinct, ascending
    std::uint32_t master = kNoMember;       // internal index
    unsigned bits = 1;                      // low bits of a key that hold the internal index
};

Layout make_layout(std::span<const MemberRole> roles) {
    Layout l;
    const std::size_t n = roles.size();
    l.caller.resize(n);
    std::iota(l.caller.begin(), l.caller.end(), 0u);
    std::stable_sort(l.caller.begin(), l.caller.end(), [&](std::uint32_t a, std::uint32_t b) {
        return roles[a].group < roles[b].group;
    });
    l.internal.resize(n);
    l.group_slot.resize(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        const MemberRole& role = roles[l.caller[i]];
        l.internal[l.caller[i]] = i;
        if (l.groups.empty() || l.groups.back() != role.group) l.groups.push_back(role.group);
        l.group_slot[i] = static_cast<std::uint32_t>(l.groups.size() - 1);
        if (role.master && l.master == kNoMember) l.master = i;
    }
    l.bits = static_cast<unsigned>(std::bit_width(n > 1 ? n - 1 : std::size_t{1}));
    return l;
}

// Largest pfn a key can hold next to `bits` of member index.
std::uint64_t max_pfn_for(unsigned bits) {
    return (std::uint64_t{1} << (64 - bits)) - 1;
}

// One pass over keys sorted ascending ((pfn << bits) | internal index, one per mapping).
// `pfns` are ascending and distinct with `frames` aligned; they may hold pfns no key refers to
// any more (a member dropped after the counts were read). `procs` is in internal order.
void classify_sorted(std::span<const std::uint64_t> keys, const Layout& l,
                     std::span<const std::uint64_t> pfns, std::span<const FrameInfo> frames,
                     std::uint64_t page_size, std::vector<DeepProcess>& procs, DeepReport& r) {
    const std::uint64_t mask = (std::uint64_t{1} << l.bits) - 1;
    const std::uint64_t unit = page_size << kPssShift;
    r.groups.clear();
    for (int g : l.groups)
        r.groups.push_back(DeepGroup{g, 0, 0, 0});

    std::size_t fi = 0;
    for (std::size_t i = 0; i < keys.size();) {
        const std::uint64_t pfn = keys[i] >> l.bits;
        std::size_t end = i + 1;
        while (end < keys.size() && (keys[end] >> l.bits) == pfn)
            ++end;
        while (fi < pfns.size() && pfns[fi] < pfn)
            ++fi;
        // A pfn without counts cannot happen when called as intended; treat it as no page.
        const FrameInfo f = (fi < pfns.size() && pfns[fi] == pfn)
                                ? frames[fi]
                                : FrameInfo{0, std::uint64_t{1} << kKpfNoPage};
        const std::uint64_t g = end - i;

        std::uint64_t DeepProcess::*skipped = nullptr;
        if (has_flag(f.flags, kKpfZeroPage)) {
            skipped = &DeepProcess::zero_pages;
            r.zero_pages += g;
        } else if (has_flag(f.flags, kKpfNoPage)) {
            skipped = &DeepProcess::special_pages;
        } else if (has_flag(f.flags, kKpfHuge)) {
            skipped = &DeepProcess::hugetlb_pages;
        }
        if (skipped) {
            for (std::size_t k = i; k < end; ++k)
                ++(procs[keys[k] & mask].*skipped);
            i = end;
            continue;
        }

        std::uint64_t m = f.mapcount;
        const bool anomalous = m < g;
        if (anomalous) {
            m = g;
            ++r.anomalies;
        }
        ++r.distinct_frames;
        const bool pool_only = g == m;
        if (pool_only) {
            ++r.pool_only_frames;
            if (g >= 2) ++r.pool_shared_frames;
        } else {
            ++r.outside_frames;
        }
        if (has_flag(f.flags, kKpfAnon)) {
            ++r.anon_frames;
        } else if (has_flag(f.flags, kKpfSwapBacked)) {
            ++r.shmem_frames;
        } else {
            ++r.file_frames;
        }
        if (has_flag(f.flags, kKpfThp)) ++r.thp_frames;
        if (has_flag(f.flags, kKpfKsm)) ++r.ksm_frames;

        const std::uint64_t share = unit / m;
        std::uint64_t master_n = 0;
        if (l.master != kNoMember) {
            for (std::size_t k = i; k < end; ++k)
                master_n += (keys[k] & mask) == l.master;
        }
        const std::uint64_t nonmaster_n = g - master_n;

        for (std::size_t a = i; a < end;) {  // one group's mappings
            const std::uint32_t slot = l.group_slot[keys[a] & mask];
            std::size_t b = a;
            std::uint64_t seg_master = 0;
            while (b < end && l.group_slot[keys[b] & mask] == slot) {
                seg_master += (keys[b] & mask) == l.master;
                ++b;
            }
            const std::uint64_t cg = b - a;
            DeepGroup& group = r.groups[slot];
            ++group.frames;
            if (cg == m) ++group.group_only_frames;
            group.pss_fixed += cg * share;
            // Some non-master mapping lies outside this group.
            const bool siblings = nonmaster_n > cg - seg_master;

            for (std::size_t c = a; c < b;) {  // one member's mappings
                const auto idx = static_cast<std::uint32_t>(keys[c] & mask);
                std::size_t d = c;
                while (d < b && (keys[d] & mask) == idx)
                    ++d;
                const std::uint64_t p = d - c;
                DeepProcess& proc = procs[idx];
                proc.resident_pages += p;
                if (m == 1) {
                    proc.private_pages += p;
                } else if (pool_only) {
                    proc.pool_shared_pages += p;
                } else {
                    proc.outside_shared_pages += p;
                }
                proc.pss_fixed += p * share;
                if (master_n > 0 && idx != l.master) proc.with_master_pages += p;
                if (siblings) proc.with_siblings_pages += p;
                if (cg > p) proc.with_group_pages += p;
                if (anomalous) proc.anomalies += p;
                c = d;
            }
            a = b;
        }
        i = end;
    }

    for (const DeepProcess& p : procs) {
        r.rss_pages += p.resident_pages;
        r.uss_pages += p.private_pages;
        r.pss_fixed += p.pss_fixed;
        r.swapped_pages += p.swapped_pages;
    }
}

// LSD radix sort over the bits the largest key uses: 11-bit digits, so the counts fit in L1.
// A pool's keys (25-45 bits) take 3-4 passes; measured 3-4x faster than std::sort on 270 Ki to
// 4 Mi keys, at the price of a second buffer of the same size while sorting.
void sort_keys(std::vector<std::uint64_t>& keys) {
    if (keys.size() < 4096) {
        std::sort(keys.begin(), keys.end());
        return;
    }
    constexpr unsigned kDigit = 11;
    constexpr std::size_t kBuckets = std::size_t{1} << kDigit;
    const std::uint64_t top = *std::max_element(keys.begin(), keys.end());
    const auto bits = static_cast<unsigned>(std::bit_width(top));
    std::vector<std::uint64_t> tmp(keys.size());
    std::vector<std::size_t> at(kBuckets);
    for (unsigned shift = 0; shift < bits; shift += kDigit) {
        std::fill(at.begin(), at.end(), 0);
        for (std::uint64_t k : keys)
            ++at[(k >> shift) & (kBuckets - 1)];
        std::size_t sum = 0;
        for (std::size_t& c : at) {
            const std::size_t n = c;
            c = sum;
            sum += n;
        }
        for (std::uint64_t k : keys)
            tmp[at[(k >> shift) & (kBuckets - 1)]++] = k;
        keys.swap(tmp);
    }
}

// Distinct pfns of sorted keys.
std::vector<std::uint64_t> distinct_pfns(std::span<const std::uint64_t> keys, unsigned bits) {
    std::vector<std::uint64_t> pfns;
    for (std::uint64_t k : keys) {
        std::uint64_t pfn = k >> bits;
        if (pfns.empty() || pfns.back() != pfn) pfns.push_back(pfn);
    }
    return pfns;
}

// pread until `count` bytes or EOF; the rest is left to the caller. Returns bytes or -errno.
ssize_t pread_full(int fd, void* buf, std::size_t count, off_t offset) {
    std::size_t done = 0;
    auto* p = static_cast<char*>(buf);
    while (done < count) {
        ssize_t n = ::pread(fd, p + done, count - done, offset + static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<ssize_t>(done);
}

// Kernel-provided mappings without struct pages in smaps' sense: Rss 0 there, and vsyscall
// lies beyond the user address space that pagemap covers.
bool skip_vma(const Mapping& m) {
    std::string_view name = m.pathname;
    return name == "[vsyscall]" || name == "[vvar]" || name == "[vvar_vclock]";
}

bool is_dead(const Stat& st) {
    return st.state == 'Z' || st.state == 'X' || st.state == 'x';
}

struct WalkState {
    const DeepOptions* options;
    std::uint64_t page_size;
    unsigned bits;
    std::vector<std::uint64_t>* keys;
    std::vector<std::uint64_t>* swaps;
    std::vector<std::uint64_t> buf;
    std::vector<PmPageRegion> regions;
    std::uint64_t pages_read = 0;
    std::uint64_t scan_calls = 0;
    bool scan_unsupported = false;
};

// Reads pagemap entries of virtual pages [first, last) into keys. Returns 0 or an errno.
int read_pagemap(int fd, std::uint64_t first, std::uint64_t last, std::uint32_t idx, WalkState& w,
                 DeepProcess& out) {
    const std::uint64_t max_pfn = max_pfn_for(w.bits);
    const std::uint64_t chunk = w.buf.size();
    for (std::uint64_t v = first; v < last;) {
        const std::uint64_t want = std::min(chunk, last - v);
        ssize_t got = pread_full(fd, w.buf.data(), want * 8, static_cast<off_t>(v * 8));
        if (got < 0) return static_cast<int>(-got);
        // pagemap reads as empty once the mm is gone: the process exited under us.
        if (got == 0) return ESRCH;
        if (got % 8 != 0) return EIO;
        const auto n = static_cast<std::uint64_t>(got) / 8;
        w.pages_read += n;
        for (std::uint64_t k = 0; k < n; ++k) {
            const std::uint64_t e = w.buf[k];
            if (e & kPmPresent) {
                const std::uint64_t pfn = e & kPmPfnMask;
                if (pfn == 0) return EPERM;  // frame numbers hidden: no CAP_SYS_ADMIN
                if (pfn > max_pfn) return EOVERFLOW;
                w.keys->push_back((pfn << w.bits) | idx);
            } else if (e & kPmSwapped) {
                ++out.swapped_pages;
                w.swaps->push_back(e & kPmPfnMask);
            }
        }
        v += n;
    }
    return 0;
}

// Reads the populated parts of [start, end) (bytes) found by PAGEMAP_SCAN. Returns 0, an errno,
// or -1 when the kernel has no PAGEMAP_SCAN (the caller then reads the whole range).
int scan_and_read(int fd, std::uint64_t start, std::uint64_t end, std::uint32_t idx, WalkState& w,
                  DeepProcess& out) {
    if (w.regions.empty()) w.regions.resize(1024);
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = start;
    arg.end = end;
    arg.vec = reinterpret_cast<std::uintptr_t>(w.regions.data());
    arg.vec_len = w.regions.size();
    arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
    arg.return_mask = kPageIsPresent | kPageIsSwapped;
    for (;;) {
        arg.walk_end = 0;
        int n = ::ioctl(fd, kPagemapScan, &arg);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && w.scan_calls == 0 && (errno == ENOTTY || errno == EINVAL)) {
            w.scan_unsupported = true;
            return -1;
        }
        if (n < 0) return errno;
        ++w.scan_calls;
        for (int i = 0; i < n; ++i) {
            const PmPageRegion& reg = w.regions[static_cast<std::size_t>(i)];
            int err = read_pagemap(fd, reg.start / w.page_size, reg.end / w.page_size, idx, w, out);
            if (err != 0) return err;
        }
        // walk_end == end: done. Short of it, the vector filled up; go on from there.
        if (arg.walk_end >= end || arg.walk_end <= arg.start) return 0;
        arg.start = arg.walk_end;
    }
}

// Reads one member's pagemap into keys. Returns 0 or the errno that describes the failure;
// the caller drops what was appended.
int walk_member(ProcReader& reader, pid_t pid, std::uint32_t idx, WalkState& w, DeepProcess& out) {
    auto maps_text = reader.read_file(pid, "maps");
    if (!maps_text.ok()) return maps_text.err != 0 ? maps_text.err : EIO;
    std::vector<Mapping> vmas = parse_smaps(maps_text.value);

    std::string path = reader.root() + "/" + std::to_string(pid) + "/pagemap";
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return errno;

    const std::uint64_t chunk = std::max<std::uint64_t>(w.options->pagemap_chunk, 1);
    if (w.buf.size() != chunk) w.buf.resize(chunk);
    const std::uint64_t scan_min = w.options->scan_min_pages;
    for (const Mapping& vma : vmas) {
        if (skip_vma(vma)) continue;
        const std::uint64_t first = vma.start / w.page_size;
        const std::uint64_t last = vma.end / w.page_size;
        int err = -1;
        if (scan_min > 0 && last - first >= scan_min && !w.scan_unsupported) {
            err = scan_and_read(fd.get(), vma.start, vma.end, idx, w, out);
        }
        if (err == -1) err = read_pagemap(fd.get(), first, last, idx, w, out);
        if (err != 0) return err;
    }
    return 0;
}

void fail(DeepReport& r, int err, std::string what) {
    r.status = status_from_errno(err);
    if (r.status == ReadStatus::ok || r.status == ReadStatus::gone) r.status = ReadStatus::error;
    r.err = err;
    r.error = std::move(what) + ": " + std::strerror(err);
}

}  // namespace

PagemapEntry decode_pagemap(std::uint64_t raw) {
    PagemapEntry e;
    e.present = raw & kPmPresent;
    e.swapped = raw & kPmSwapped;
    e.file_or_shared_anon = raw & kPmFileOrSharedAnon;
    e.exclusive = raw & kPmExclusive;
    e.soft_dirty = raw & kPmSoftDirty;
    if (e.present) {
        e.pfn = raw & kPmPfnMask;
    } else if (e.swapped) {
        e.swap_type = static_cast<unsigned>(raw & 0x1f);
        e.swap_offset = (raw & kPmPfnMask) >> 5;
    }
    return e;
}

std::vector<PfnRange> batch_pfns(std::span<const std::uint64_t> sorted_pfns, std::uint64_t max_gap,
                                 std::uint64_t max_len) {
    std::vector<PfnRange> out;
    max_len = std::max<std::uint64_t>(max_len, 1);
    for (std::uint64_t pfn : sorted_pfns) {
        if (!out.empty()) {
            PfnRange& r = out.back();
            const std::uint64_t next = r.first + r.count;  // first pfn not yet covered
            if (pfn >= next && pfn - next <= max_gap && pfn - r.first < max_len) {
                r.count = pfn - r.first + 1;
                continue;
            }
        }
        out.push_back({pfn, 1});
    }
    return out;
}

DeepReport classify_refs(std::span<const MemberRole> roles, std::span<const PageRef> refs,
                         const std::function<FrameInfo(std::uint64_t pfn)>& frame,
                         std::uint64_t page_size) {
    DeepReport r;
    r.status = ReadStatus::ok;
    r.page_size = page_size;
    Layout l = make_layout(roles);
    std::vector<std::uint64_t> keys;
    keys.reserve(refs.size());
    for (const PageRef& ref : refs) {
        if (ref.member >= roles.size() || ref.pfn > max_pfn_for(l.bits)) {
            ++r.anomalies;  // not a mapping the caller could have seen; ignore it
            continue;
        }
        keys.push_back((ref.pfn << l.bits) | l.internal[ref.member]);
    }
    sort_keys(keys);
    std::vector<std::uint64_t> pfns = distinct_pfns(keys, l.bits);
    std::vector<FrameInfo> frames;
    frames.reserve(pfns.size());
    for (std::uint64_t pfn : pfns)
        frames.push_back(frame(pfn));

    std::vector<DeepProcess> procs(roles.size());
    for (std::uint32_t i = 0; i < roles.size(); ++i) {
        DeepProcess& p = procs[i];
        const MemberRole& role = roles[l.caller[i]];
        p.group = role.group;
        p.master = i == l.master;
        p.status = ReadStatus::ok;
    }
    classify_sorted(keys, l, pfns, frames, page_size, procs, r);
    r.procs.resize(roles.size());
    for (std::uint32_t i = 0; i < roles.size(); ++i)
        r.procs[l.caller[i]] = procs[i];
    return r;
}

DeepReport deep_analyze(const std::vector<DeepMember>& members, const DeepOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    DeepReport r;
    const long ps = ::sysconf(_SC_PAGESIZE);
    r.page_size = ps > 0 ? static_cast<std::uint64_t>(ps) : 4096;

    // The member list, the master appended if the caller left it out; duplicates are errors,
    // as they would count every mapping twice.
    std::vector<DeepMember> list = members;
    if (options.master > 0 && std::none_of(list.begin(), list.end(), [&](const DeepMember& m) {
            return m.pid == options.master;
        })) {
        list.push_back(DeepMember{options.master, kMasterGroup, 0});
    }
    std::vector<MemberRole> roles;
    std::vector<DeepProcess> procs(list.size());  // caller order for now
    for (std::size_t i = 0; i < list.size(); ++i) {
        roles.push_back({list[i].group, list[i].pid == options.master && options.master > 0});
        procs[i].pid = list[i].pid;
        procs[i].group = list[i].group;
        procs[i].master = roles.back().master;
        procs[i].status = ReadStatus::ok;
        for (std::size_t j = 0; j < i; ++j) {
            if (list[j].pid == list[i].pid) {
                procs[i].status = ReadStatus::error;
                procs[i].err = EINVAL;
                roles.back().master = false;
            }
        }
    }
    auto finish = [&] {
        r.procs = std::move(procs);
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };

    const std::string& root = options.proc_root;
    Fd counts(::open((root + "/kpagecount").c_str(), O_RDONLY | O_CLOEXEC));
    if (counts.get() < 0) {
        fail(r, errno, root + "/kpagecount");
        for (auto& p : procs)
            p.status = r.status;
        finish();
        return r;
    }
    Fd flags(::open((root + "/kpageflags").c_str(), O_RDONLY | O_CLOEXEC));
    if (flags.get() < 0) {
        fail(r, errno, root + "/kpageflags");
        for (auto& p : procs)
            p.status = r.status;
        finish();
        return r;
    }

    const Layout l = make_layout(roles);
    ProcReader reader(root);
    std::vector<std::uint64_t> keys;
    std::vector<std::uint64_t> swaps;
    std::vector<std::uint64_t> starttimes(list.size(), 0);
    // Each member's swap entries are contiguous: [swap_begin, swap_end).
    std::vector<std::size_t> swap_begin(list.size(), 0), swap_end(list.size(), 0);
    WalkState w{&options, r.page_size, l.bits, &keys, &swaps};

    // 1. Page tables.
    for (std::size_t i = 0; i < list.size(); ++i) {
        DeepProcess& p = procs[i];
        if (p.status != ReadStatus::ok) continue;
        auto st = reader.read_stat(list[i].pid);
        int err = 0;
        if (!st.ok()) {
            err = st.err != 0 ? st.err : EIO;
        } else if (is_dead(st.value) ||
                   (list[i].starttime != 0 && st.value.starttime != list[i].starttime)) {
            err = ESRCH;
        } else {
            starttimes[i] = st.value.starttime;
            const std::size_t keys_before = keys.size();
            swap_begin[i] = swaps.size();
            err = walk_member(reader, list[i].pid, l.internal[i], w, p);
            if (err != 0) {
                keys.resize(keys_before);
                swaps.resize(swap_begin[i]);
                p.swapped_pages = 0;
            }
            swap_end[i] = swaps.size();
        }
        if (err != 0) {
            p.status = status_from_errno(err);
            p.err = err;
        }
    }
    r.pages_read = w.pages_read;
    r.scan_calls = w.scan_calls;
    const auto t1 = std::chrono::steady_clock::now();
    r.walk_seconds = std::chrono::duration<double>(t1 - t0).count();

    // 2. Frames: sort the mappings, read counts and flags of each distinct frame, by ranges.
    sort_keys(keys);
    std::vector<std::uint64_t> pfns = distinct_pfns(keys, l.bits);
    std::vector<FrameInfo> frames(pfns.size());
    const std::uint64_t max_batch = std::max<std::uint64_t>(options.max_batch, 1);
    std::vector<std::uint64_t> cbuf(max_batch), fbuf(max_batch);
    std::size_t j = 0;
    for (const PfnRange& range : batch_pfns(pfns, options.max_gap, max_batch)) {
        const std::size_t bytes = range.count * 8;
        const auto offset = static_cast<off_t>(range.first * 8);
        ssize_t nc = pread_full(counts.get(), cbuf.data(), bytes, offset);
        if (nc < 0) {
            fail(r, static_cast<int>(-nc), root + "/kpagecount");
            finish();
            return r;
        }
        ssize_t nf = pread_full(flags.get(), fbuf.data(), bytes, offset);
        if (nf < 0) {
            fail(r, static_cast<int>(-nf), root + "/kpageflags");
            finish();
            return r;
        }
        ++r.kpage_reads;
        r.kpage_entries += range.count;
        // Past the end of memory the files end: no page there.
        for (std::size_t k = static_cast<std::size_t>(nc) / 8; k < range.count; ++k)
            cbuf[k] = 0;
        for (std::size_t k = static_cast<std::size_t>(nf) / 8; k < range.count; ++k)
            fbuf[k] = std::uint64_t{1} << kKpfNoPage;
        for (; j < pfns.size() && pfns[j] < range.first + range.count; ++j) {
            const std::uint64_t at = pfns[j] - range.first;
            frames[j] = FrameInfo{cbuf[at], fbuf[at]};
        }
    }

    r.frames_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();

    // 3. Whoever exited (or was reaped and replaced) meanwhile no longer holds its mappings,
    // and kpagecount did not count them: drop its keys.
    std::vector<bool> dropped(list.size(), false);
    bool any_dropped = false;
    for (std::size_t i = 0; i < list.size(); ++i) {
        DeepProcess& p = procs[i];
        if (p.status != ReadStatus::ok) continue;
        auto st = reader.read_stat(list[i].pid);
        if (!st.ok() || is_dead(st.value) || st.value.starttime != starttimes[i]) {
            p.status = ReadStatus::gone;
            p.err = st.ok() ? ESRCH : st.err;
            dropped[l.internal[i]] = true;
            any_dropped = true;
        }
    }
    if (any_dropped) {
        const std::uint64_t mask = (std::uint64_t{1} << l.bits) - 1;
        std::erase_if(keys, [&](std::uint64_t k) { return dropped[k & mask]; });
        std::vector<bool> swap_dropped(swaps.size(), false);
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (!dropped[l.internal[i]]) continue;
            procs[i].swapped_pages = 0;
            for (std::size_t k = swap_begin[i]; k < swap_end[i]; ++k)
                swap_dropped[k] = true;
        }
        std::size_t out = 0;
        for (std::size_t k = 0; k < swaps.size(); ++k) {
            if (!swap_dropped[k]) swaps[out++] = swaps[k];
        }
        swaps.resize(out);
    }

    // 4. Classification, in internal order.
    std::vector<DeepProcess> internal(list.size());
    for (std::size_t i = 0; i < list.size(); ++i)
        internal[l.internal[i]] = procs[i];
    r.status = ReadStatus::ok;
    classify_sorted(keys, l, pfns, frames, r.page_size, internal, r);
    for (std::size_t i = 0; i < list.size(); ++i)
        procs[i] = internal[l.internal[i]];

    std::sort(swaps.begin(), swaps.end());
    r.distinct_swap_slots =
        static_cast<std::uint64_t>(std::unique(swaps.begin(), swaps.end()) - swaps.begin());
    finish();
    return r;
}

}  // namespace cow::proc
