#include "daemon/memory_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <signal.h>
#include <unistd.h>

#include "core/proc/map_group.hpp"
#include "core/proc/pagemap.hpp"
#include "daemon/cgroup.hpp"
#include "daemon/parallel.hpp"

namespace cow::mem {
namespace json = boost::json;
using proc::ReadStatus;

namespace {

constexpr std::uint64_t kWorkerStamp = 1ull << 63;

std::uint64_t sat_sub(std::uint64_t a, std::uint64_t b) {
    return a > b ? a - b : 0;
}

// The contract's fields (design §1), the PSS split where the kernel gives it, and any other
// counter that is not zero (THP, KSM, locked...), new kernel fields included. Leaving the
// usual zeros out keeps a 1000-worker reply small.
json::object counters_json(const proc::MemCounters& m) {
    json::object o;
    o["rss"] = m.rss;
    o["pss"] = m.pss;
    o["uss"] = m.uss();
    o["shared_clean"] = m.shared_clean;
    o["shared_dirty"] = m.shared_dirty;
    o["private_clean"] = m.private_clean;
    o["private_dirty"] = m.private_dirty;
    o["swap"] = m.swap;
    o["swap_pss"] = m.swap_pss;
    for (const auto& f : proc::kMemFields) {
        std::string_view n = f.json_name;
        if (o.contains(n)) continue;
        const std::uint64_t v = m.*(f.member);
        if (v != 0 || n == "pss_anon" || n == "pss_file" || n == "pss_shmem") o[n] = v;
    }
    for (const auto& [name, v] : m.extra)
        o[name] = v;
    return o;
}

json::object totals_json(const Totals& t) {
    return json::object{{"pss", t.pss},           {"uss", t.uss},
                        {"swap_pss", t.swap_pss}, {"footprint", t.footprint()},
                        {"rss_sum", t.rss_sum},   {"saved", t.saved()}};
}

// What copy-on-write took back since the first sample: private dirty gained, shared lost.
struct CowLost {
    std::uint64_t private_dirty_growth = 0;
    std::uint64_t shared_lost = 0;
    void add(const ProcMem& p) {
        private_dirty_growth += sat_sub(p.now.private_dirty, p.first.private_dirty);
        shared_lost += sat_sub(p.first.shared_clean + p.first.shared_dirty,
                               p.now.shared_clean + p.now.shared_dirty);
    }
};

json::object cow_json(const CowLost& c, Clock::duration since) {
    return json::object{
        {"private_dirty_growth", c.private_dirty_growth},
        {"shared_lost", c.shared_lost},
        {"since_ms", std::chrono::duration_cast<std::chrono::milliseconds>(since).count()}};
}

}  // namespace

Sampler::Sampler(std::string proc_root) : root_(std::move(proc_root)) {
    // smaps_rollup exists since Linux 4.14; before it we sum smaps (design §4).
    has_rollup_ = ::access((root_ + "/self/smaps_rollup").c_str(), R_OK) == 0;
}

proc::Read<proc::MemCounters> Sampler::rollup(proc::ProcReader& r, pid_t pid) {
    if (has_rollup_) return r.read_smaps_rollup(pid);
    auto maps = r.read_smaps(pid);
    if (!maps.ok()) return {maps.status, maps.err, {}};
    return {ReadStatus::ok, 0, proc::sum(maps.value)};
}

// The worker and its descendants. With a cgroup we list its members and follow ppid links
// among them; without one, we walk the children files down from the worker.
std::vector<pid_t> Sampler::tree_of(proc::ProcReader& r, const Target& t,
                                    std::unordered_map<pid_t, proc::Stat>& stats) {
    std::vector<pid_t> out{t.pid};
    if (!t.cgroup.empty()) {
        auto members = cgroup::read_procs(t.cgroup);
        if (members.size() <= 1) return out;  // only the worker: no stat needed
        std::unordered_map<pid_t, std::vector<pid_t>> kids;
        for (pid_t m : members) {
            if (m == t.pid) continue;
            auto st = r.read_stat(m);
            if (!st.ok()) continue;
            kids[st.value.ppid].push_back(m);
            stats.emplace(m, std::move(st.value));
        }
        for (std::size_t i = 0; i < out.size(); ++i)
            if (auto it = kids.find(out[i]); it != kids.end())
                out.insert(out.end(), it->second.begin(), it->second.end());
        return out;
    }
    for (std::size_t i = 0; i < out.size() && out.size() < 100'000; ++i) {
        auto c = r.children(out[i]);
        if (!c.ok()) continue;
        for (pid_t k : c.value) {
            auto st = r.read_stat(k);
            if (!st.ok()) continue;
            stats.emplace(k, std::move(st.value));
            out.push_back(k);
        }
    }
    return out;
}

Sample Sampler::sample(const MemQuery& q) {
    const auto t0 = Clock::now();
    Sample s;
    ++round_;
    for (const auto& t : q.targets)
        s.workers.push_back(WorkerMem{t, {}});

    // Membership and the reads are spread over threads; each writes only its own workers.
    parallel_parts(
        q.targets.size(),
        [&](std::size_t k, std::size_t parts) {
            proc::ProcReader r(root_);
            for (std::size_t i = k; i < s.workers.size(); i += parts) {
                WorkerMem& wm = s.workers[i];
                if (wm.target.pid <= 0) continue;
                std::unordered_map<pid_t, proc::Stat> stats;
                for (pid_t pid : tree_of(r, wm.target, stats)) {
                    ProcMem pm;
                    pm.pid = pid;
                    if (pid == wm.target.pid) {
                        pm.ppid = getpid();
                        pm.cmd = wm.target.cmd;
                    } else if (auto it = stats.find(pid); it != stats.end()) {
                        pm.ppid = it->second.ppid;
                        pm.starttime = it->second.starttime;
                        pm.cmd = it->second.comm;
                    }
                    auto m = rollup(r, pid);
                    pm.status = m.status;
                    // A process that exited mid-read is skipped, never reported as zero.
                    if (m.status == ReadStatus::gone) continue;
                    if (m.ok()) pm.now = std::move(m.value);
                    wm.procs.push_back(std::move(pm));
                }
            }
        },
        64);

    // Baselines: the first sample of each process, keyed so a reused pid starts afresh.
    const auto now = Clock::now();
    for (auto& wm : s.workers) {
        for (auto& pm : wm.procs) {
            ++s.processes;
            if (pm.status != ReadStatus::ok) {
                ++s.unreadable;
                continue;
            }
            Key key{pm.pid,
                    pm.pid == wm.target.pid ? (kWorkerStamp | wm.target.generation) : pm.starttime};
            auto [it, fresh] = first_.try_emplace(key, First{pm.now, now, round_});
            it->second.seen = round_;
            pm.first = it->second.mem;
            pm.since_first = now - it->second.at;
        }
    }
    // Forget processes that are gone, lazily, once the map has grown well past what we see.
    if (first_.size() > 2 * s.processes + 1024) {
        for (auto it = first_.begin(); it != first_.end();) {
            bool gone = it->second.seen != round_ && ::kill(it->first.pid, 0) != 0;
            it = gone ? first_.erase(it) : std::next(it);
        }
    }
    s.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return s;
}

json::object Sampler::to_json(const MemQuery& q, const Sample& s, const std::string& sort) {
    json::array pools;
    for (const auto& name : q.pools) {
        Totals pool_totals;
        CowLost pool_cow;
        std::size_t unreadable = 0;
        struct Row {
            json::object obj;
            Totals tree;
            int index;
        };
        std::vector<Row> rows;
        for (const auto& wm : s.workers) {
            if (wm.target.pool != name) continue;
            json::object w;
            w["name"] = wm.target.name;
            w["pid"] = wm.target.pid > 0 ? json::value(wm.target.pid) : json::value(nullptr);
            Totals tree;
            CowLost tree_cow;
            Clock::duration since{};
            json::array procs;
            bool self_ok = false;
            std::string self_status = wm.target.pid > 0 ? "gone" : "not running";
            for (const auto& pm : wm.procs) {
                json::object p{{"pid", pm.pid}, {"ppid", pm.ppid}, {"cmd", pm.cmd}};
                if (pm.pid == wm.target.pid) self_status = proc::to_string(pm.status);
                if (pm.status != ReadStatus::ok) {
                    p["status"] = proc::to_string(pm.status);
                    ++unreadable;
                    procs.push_back(std::move(p));
                    continue;
                }
                CowLost c;
                c.add(pm);
                tree_cow.add(pm);
                tree.add(pm.now);
                p["status"] = "ok";
                p["rss"] = pm.now.rss;
                p["pss"] = pm.now.pss;
                p["uss"] = pm.now.uss();
                p["swap_pss"] = pm.now.swap_pss;
                p["shared_clean"] = pm.now.shared_clean;
                p["shared_dirty"] = pm.now.shared_dirty;
                p["private_dirty"] = pm.now.private_dirty;
                p["cow_lost"] = cow_json(c, pm.since_first);
                if (pm.pid == wm.target.pid) {
                    self_ok = true;
                    since = pm.since_first;
                    w["self"] = counters_json(pm.now);
                    w["cow_lost"] = cow_json(c, pm.since_first);
                }
                procs.push_back(std::move(p));
            }
            if (!self_ok) w["self"] = nullptr;
            w["status"] = self_status;
            w["tree"] = totals_json(tree);
            w["tree_cow_lost"] = cow_json(tree_cow, since);
            w["processes"] = std::move(procs);
            pool_totals.pss += tree.pss;
            pool_totals.uss += tree.uss;
            pool_totals.swap_pss += tree.swap_pss;
            pool_totals.rss_sum += tree.rss_sum;
            pool_cow.private_dirty_growth += tree_cow.private_dirty_growth;
            pool_cow.shared_lost += tree_cow.shared_lost;
            rows.push_back(Row{std::move(w), tree, wm.target.index});
        }
        auto key = [&](const Totals& t) {
            return sort == "uss" ? t.uss : sort == "rss" ? t.rss_sum : t.pss;
        };
        if (!sort.empty())
            std::stable_sort(rows.begin(), rows.end(),
                             [&](const Row& a, const Row& b) { return key(a.tree) > key(b.tree); });
        json::array ws;
        for (auto& r : rows)
            ws.push_back(std::move(r.obj));
        json::object po;
        po["name"] = name;
        po["totals"] = totals_json(pool_totals);
        po["cow_lost"] = json::object{{"private_dirty_growth", pool_cow.private_dirty_growth},
                                      {"shared_lost", pool_cow.shared_lost}};
        po["unreadable"] = unreadable;
        po["workers"] = std::move(ws);
        pools.push_back(std::move(po));
    }
    json::object out;
    out["pools"] = std::move(pools);
    out["processes"] = s.processes;
    out["scan_ms"] = static_cast<std::int64_t>(s.seconds * 1000.0 + 0.5);
    return out;
}

json::object Sampler::maps(const Target& t) {
    proc::ProcReader r(root_);
    std::unordered_map<pid_t, proc::Stat> stats;
    struct Acc {
        std::size_t mappings = 0;
        proc::MemCounters m;
    };
    std::map<std::pair<std::string, std::string>, Acc> groups;
    std::size_t processes = 0, unreadable = 0;
    Totals total;
    for (pid_t pid : tree_of(r, t, stats)) {
        auto maps = r.read_smaps(pid);
        if (maps.status == ReadStatus::gone) continue;
        ++processes;
        if (!maps.ok()) {
            ++unreadable;
            continue;
        }
        auto exe = r.read_exe(pid);
        for (auto& g : proc::group_mappings(maps.value, exe.ok() ? exe.value : "")) {
            auto& acc = groups[{std::string(proc::to_string(g.group)), g.library}];
            acc.mappings += g.mappings;
            acc.m += g.counters;
            total.add(g.counters);
        }
    }
    std::vector<std::pair<std::pair<std::string, std::string>, Acc>> sorted(groups.begin(),
                                                                            groups.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second.m.pss > b.second.m.pss; });
    json::array arr;
    for (const auto& [k, acc] : sorted) {
        arr.push_back(json::object{{"group", k.first},
                                   {"name", k.second},
                                   {"mappings", acc.mappings},
                                   {"rss", acc.m.rss},
                                   {"pss", acc.m.pss},
                                   {"shared", acc.m.shared_clean + acc.m.shared_dirty},
                                   {"private", acc.m.uss()},
                                   {"swap_pss", acc.m.swap_pss}});
    }
    return json::object{{"worker", t.name},
                        {"pid", t.pid},
                        {"processes", processes},
                        {"unreadable", unreadable},
                        {"totals", totals_json(total)},
                        {"groups", std::move(arr)}};
}

json::object Sampler::deep(const MemQuery& q, const std::string& pool) {
    proc::ProcReader r(root_);
    std::vector<proc::DeepMember> members;
    std::vector<std::string> owner;  // worker name per member
    std::vector<const Target*> targets;
    for (const auto& t : q.targets)
        if (t.pool == pool && t.pid > 0) targets.push_back(&t);
    // One worker that forked children is a preforking master (gunicorn, unicorn): its children
    // are the "siblings". Several workers: each worker's subtree is one group.
    pid_t master = 0;
    for (const Target* t : targets) {
        std::unordered_map<pid_t, proc::Stat> stats;
        auto pids = tree_of(r, *t, stats);
        const bool prefork = targets.size() == 1 && pids.size() > 1;
        if (prefork) master = t->pid;
        // In the prefork case, group = the child subtree each process belongs to.
        std::unordered_map<pid_t, int> group_of;
        int next_group = 0;
        for (pid_t pid : pids) {
            proc::DeepMember m;
            m.pid = pid;
            if (auto it = stats.find(pid); it != stats.end()) m.starttime = it->second.starttime;
            if (!prefork) {
                m.group = t->index;
            } else if (pid == t->pid) {
                m.group = proc::kMasterGroup;
            } else {
                pid_t pp = stats.count(pid) ? stats[pid].ppid : 0;
                if (pp == t->pid)
                    group_of[pid] = next_group++;
                else
                    group_of[pid] = group_of.count(pp) ? group_of[pp] : next_group++;
                m.group = group_of[pid];
            }
            members.push_back(m);
            owner.push_back(t->name);
        }
    }
    proc::DeepOptions opt;
    opt.proc_root = root_;
    opt.master = master;
    auto rep = proc::deep_analyze(members, opt);
    const std::uint64_t ps = rep.page_size;
    json::array procs;
    double worst = 0;
    for (std::size_t i = 0; i < rep.procs.size(); ++i) {
        const auto& p = rep.procs[i];
        json::object o{{"pid", p.pid},
                       {"worker", i < owner.size() ? owner[i] : ""},
                       {"group", p.group},
                       {"master", p.master},
                       {"status", proc::to_string(p.status)}};
        if (p.status == ReadStatus::ok) {
            o["resident"] = p.resident_pages * ps;
            o["private"] = p.private_pages * ps;
            o["pool_shared"] = p.pool_shared_pages * ps;
            o["outside_shared"] = p.outside_shared_pages * ps;
            o["with_master"] = p.with_master_pages * ps;
            o["with_siblings"] = p.with_siblings_pages * ps;
            o["pss_pages"] = p.pss_bytes();
            // The cross-check: PSS from frames and mapcounts against the kernel's own.
            auto roll = rollup(r, p.pid);
            if (roll.ok()) {
                o["pss_smaps"] = roll.value.pss;
                if (roll.value.pss > 0) {
                    double d = 100.0 *
                               std::abs(static_cast<double>(p.pss_bytes()) -
                                        static_cast<double>(roll.value.pss)) /
                               static_cast<double>(roll.value.pss);
                    o["pss_diff_pct"] = d;
                    worst = std::max(worst, d);
                }
            }
        }
        procs.push_back(std::move(o));
    }
    json::object totals{{"distinct", rep.distinct_frames * ps},
                        {"pool_only", rep.pool_only_frames * ps},
                        {"outside", rep.outside_frames * ps},
                        {"pool_shared", rep.pool_shared_frames * ps},
                        {"rss_sum", rep.rss_pages * ps},
                        {"uss", rep.uss_pages * ps},
                        {"pss", rep.pss_bytes()},
                        {"saved_within_pool", rep.saved_within_pool_pages() * ps},
                        {"anon", rep.anon_frames * ps},
                        {"shmem", rep.shmem_frames * ps},
                        {"file", rep.file_frames * ps}};
    json::object out{{"deep", true},
                     {"pool", pool},
                     {"status", proc::to_string(rep.status)},
                     {"processes", std::move(procs)},
                     {"totals", std::move(totals)},
                     {"pss_max_diff_pct", worst},
                     {"pages_read", rep.pages_read},
                     {"seconds", rep.seconds},
                     {"pages_per_second",
                      rep.seconds > 0 ? static_cast<double>(rep.pages_read) / rep.seconds : 0.0}};
    if (master) out["master"] = master;
    if (!rep.error.empty()) out["error"] = rep.error;
    return out;
}

}  // namespace cow::mem
