#include "daemon/memory/memory_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "core/proc/map_group.hpp"
#include "core/proc/pagemap.hpp"
#include "core/proc/text.hpp"
#include "core/protocol_names.hpp"
#include "daemon/os/cgroup.hpp"
#include "daemon/os/parallel.hpp"

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
        private_dirty_growth += mem::private_dirty_growth(p);
        shared_lost += sat_sub(p.first.shared_clean + p.first.shared_dirty,
                               p.now.shared_clean + p.now.shared_dirty);
    }
};

json::object cow_json(const CowLost& c, Clock::duration since, bool fork) {
    return json::object{
        {"private_dirty_growth", c.private_dirty_growth},
        {"shared_lost", c.shared_lost},
        {"baseline", fork ? "fork" : "first sample"},
        {"since_ms", std::chrono::duration_cast<std::chrono::milliseconds>(since).count()}};
}

void add_totals(Totals& into, const Totals& t) {
    into.pss += t.pss;
    into.uss += t.uss;
    into.swap_pss += t.swap_pss;
    into.rss_sum += t.rss_sum;
}

void add_cow(CowLost& into, const CowLost& c) {
    into.private_dirty_growth += c.private_dirty_growth;
    into.shared_lost += c.shared_lost;
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

std::optional<Layout> parse_layout(std::string_view line) {
    auto close = line.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = line.substr(close + 1);
    // Fields as numbered in proc_pid_stat(5): the first after the comm is field 3.
    std::uint64_t f[48] = {};
    for (int i = 3; i <= 47; ++i) {
        auto tok = proc::text::next_token(rest);
        if (tok.empty()) return std::nullopt;  // before Linux 3.3: no layout, no comparison
        if ((i >= 26 && i <= 28) || i >= 45) {
            auto v = proc::text::to_number<std::uint64_t>(tok);
            if (!v) return std::nullopt;
            f[i] = *v;
        }
    }
    return Layout{f[26], f[27], f[28], f[45], f[46], f[47]};
}

// With a cgroup we list its members and follow ppid links among them; without one, we walk
// the children files down from the root.
std::vector<Sampler::Node> Sampler::walk(proc::ProcReader& r, pid_t root, const std::string& cgroup,
                                         bool root_stat) {
    auto stat_of = [&r](Node& n) {
        auto raw = r.read_file(n.pid, "stat");
        if (!raw.ok()) return;
        auto st = proc::parse_stat(raw.value);
        if (!st) return;
        n.ppid = st->ppid;
        n.starttime = st->starttime;
        n.comm = std::move(st->comm);
        n.layout = parse_layout(raw.value);
        n.stat_ok = true;
    };
    std::vector<Node> out(1);
    out[0].pid = root;
    if (root_stat) stat_of(out[0]);
    if (!cgroup.empty()) {
        auto members = cgroup::read_procs(cgroup);
        if (members.size() > 1) {
            std::vector<Node> found;
            std::unordered_map<pid_t, std::vector<std::size_t>> kids;
            for (pid_t m : members) {
                if (m == root) continue;
                Node n;
                n.pid = m;
                stat_of(n);
                if (!n.stat_ok) continue;
                kids[n.ppid].push_back(found.size());
                found.push_back(std::move(n));
            }
            for (std::size_t i = 0; i < out.size(); ++i) {
                const pid_t parent = out[i].pid;
                if (auto it = kids.find(parent); it != kids.end())
                    for (std::size_t k : it->second)
                        out.push_back(std::move(found[k]));
            }
        }
    } else {
        for (std::size_t i = 0; i < out.size() && out.size() < 100'000; ++i) {
            auto c = r.children(out[i].pid);
            if (!c.ok()) continue;
            for (pid_t k : c.value) {
                Node n;
                n.pid = k;
                stat_of(n);
                if (n.stat_ok) out.push_back(std::move(n));
            }
        }
    }
    if (out.size() > 1 && !out[0].stat_ok) stat_of(out[0]);
    return out;
}

std::vector<pid_t> Sampler::tree_of(proc::ProcReader& r, const Target& t,
                                    std::unordered_map<pid_t, proc::Stat>& stats) {
    std::vector<pid_t> out;
    for (auto& n : walk(r, t.pid, t.cgroup, false)) {
        out.push_back(n.pid);
        if (n.pid == t.pid) continue;
        proc::Stat st;
        st.pid = n.pid;
        st.ppid = n.ppid;
        st.starttime = n.starttime;
        st.comm = std::move(n.comm);
        stats.emplace(n.pid, std::move(st));
    }
    return out;
}

void Sampler::add_procs(proc::ProcReader& r, std::vector<Node> nodes, const std::string& root_cmd,
                        bool orphan, WorkerMem& wm) {
    for (auto& n : nodes) {
        ProcMem pm;
        pm.pid = n.pid;
        pm.orphan = orphan;
        pm.layout = n.layout;
        if (!orphan && n.pid == wm.target.pid) {
            pm.ppid = getpid();
            pm.cmd = root_cmd;
        } else {
            pm.ppid = n.ppid;
            pm.starttime = n.starttime;
            pm.cmd = std::move(n.comm);
        }
        auto m = rollup(r, n.pid);
        pm.status = m.status;
        // A process that exited mid-read is skipped, never reported as zero.
        if (m.status == ReadStatus::gone) continue;
        if (m.ok()) pm.now = std::move(m.value);
        wm.procs.push_back(std::move(pm));
    }
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
                if (wm.target.pid > 0)
                    add_procs(r, walk(r, wm.target.pid, wm.target.cgroup, false), wm.target.cmd,
                              false, wm);
                for (const auto& o : wm.target.orphans) {
                    auto nodes = walk(r, o.pid, o.cgroup, true);
                    // Reaped (and its pid perhaps reused) since the loop listed it: not ours.
                    if (!nodes[0].stat_ok || nodes[0].starttime != o.starttime) continue;
                    add_procs(r, std::move(nodes), o.comm, true, wm);
                }
            }
        },
        64);

    const auto now = Clock::now();
    for (auto& wm : s.workers)
        baselines(wm, s, now);
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

// The copy-on-write baseline of each process, kept from sample to sample by (pid, start
// time), or (pid, generation) for the worker, so a reused pid starts afresh.
//
// A process forked from its parent (not exec'd) held, at that instant, nothing private: every
// dirty page was shared with the parent. So its baseline is the fork, whenever we first see
// it, and all the erosion since counts even if nobody asked before. A process that forks
// (a prefork master) is rebaselined at its fork, for the same reason: the pages its children
// rewrite become private to it. Anything else (the worker exec'd by us, a program a shell
// exec'd) is measured from its first sample, taken when the worker comes up.
void Sampler::baselines(WorkerMem& wm, Sample& s, Clock::time_point now) {
    std::unordered_map<pid_t, const ProcMem*> by_pid;
    for (const auto& pm : wm.procs)
        by_pid.emplace(pm.pid, &pm);
    auto forked = [&](const ProcMem& pm) {
        if (!pm.orphan && pm.pid == wm.target.pid) return false;  // exec'd by us
        auto it = by_pid.find(pm.ppid);
        return it != by_pid.end() && pm.layout && it->second->layout &&
               *pm.layout == *it->second->layout;
    };
    // Each parent's most recent fork among its live children.
    std::unordered_map<pid_t, std::uint64_t> last_fork;
    for (const auto& pm : wm.procs)
        if (forked(pm)) last_fork[pm.ppid] = std::max(last_fork[pm.ppid], pm.starttime);

    // Start times are clock ticks since boot; a fork baseline's age is read off them.
    static const long hz = ::sysconf(_SC_CLK_TCK);
    timespec boot{};
    ::clock_gettime(CLOCK_BOOTTIME, &boot);
    const double boot_now =
        static_cast<double>(boot.tv_sec) + 1e-9 * static_cast<double>(boot.tv_nsec);
    auto at = [&](std::uint64_t start) {
        const double age = std::max(
            0.0, boot_now - static_cast<double>(start) / static_cast<double>(hz > 0 ? hz : 100));
        return now -
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(age));
    };
    auto at_fork = [](const proc::MemCounters& m) {
        proc::MemCounters b = m;
        b.shared_dirty += b.private_dirty;
        b.private_dirty = 0;
        return b;
    };

    for (auto& pm : wm.procs) {
        ++s.processes;
        if (pm.status != ReadStatus::ok) {
            ++s.unreadable;
            continue;
        }
        const bool worker = !pm.orphan && pm.pid == wm.target.pid;
        Key key{pm.pid, worker ? (kWorkerStamp | wm.target.generation) : pm.starttime};
        auto it = first_.find(key);
        // It exec'd since: nothing of the process we measured before is left.
        if (it != first_.end() && pm.layout && it->second.layout &&
            *pm.layout != *it->second.layout) {
            first_.erase(it);
            it = first_.end();
        }
        if (it == first_.end()) {
            First f;
            if (forked(pm)) {
                f.mem = at_fork(pm.now);
                f.at = at(pm.starttime);
                f.fork = true;
            } else {
                f.mem = pm.now;
                f.at = now;
            }
            it = first_.emplace(key, std::move(f)).first;
        }
        First& f = it->second;
        if (auto c = last_fork.find(pm.pid); c != last_fork.end() && !f.fork) {
            f.mem = at_fork(pm.now);
            f.at = at(c->second);
            f.fork = true;
        }
        if (pm.layout) f.layout = pm.layout;
        f.seen = round_;
        pm.first = f.mem;
        pm.fork_baseline = f.fork;
        pm.since_first = now - f.at;
    }
}

json::object Sampler::to_json(const MemQuery& q, const Sample& s, const std::string& sort,
                              const std::map<std::string, json::object>& trends) {
    json::array pools;
    for (const auto& name : q.pools) {
        Totals pool_totals;
        CowLost pool_cow;
        std::size_t unreadable = 0;
        // spawn: template: what fork-exec would cost more. Each exec'd worker would hold every
        // anonymous page it maps as its own (file pages are shared by the page cache either
        // way); here they are held once between the workers and their template.
        bool has_template = false, anon_known = true;
        std::uint64_t workers_anon = 0, pool_pss_anon = 0;
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
            // The worker's own tree, and apart from it the orphans it left (their memory is
            // not the worker's: restarting it frees none of it), both counted in the pool.
            Totals tree, orphans;
            CowLost tree_cow, orphans_cow;
            std::size_t orphan_procs = 0;
            Clock::duration since{};
            bool fork = false;
            json::array procs;
            bool self_ok = false;
            std::string self_status = wm.target.pid > 0 ? "gone" : "not running";
            for (const auto& pm : wm.procs) {
                const bool self = !pm.orphan && pm.pid == wm.target.pid;
                json::object p{{"pid", pm.pid}, {"ppid", pm.ppid}, {"cmd", pm.cmd}};
                if (pm.orphan) {
                    p["orphan"] = true;
                    ++orphan_procs;
                }
                if (self) self_status = proc::to_string(pm.status);
                if (pm.status != ReadStatus::ok) {
                    p["status"] = proc::to_string(pm.status);
                    ++unreadable;
                    procs.push_back(std::move(p));
                    continue;
                }
                if (!pm.orphan) {
                    anon_known = anon_known && pm.now.has("Pss_Anon");
                    pool_pss_anon += pm.now.pss_anon;
                    if (wm.target.index == kTemplateIndex)
                        has_template = true;
                    else
                        workers_anon += pm.now.anonymous;
                }
                CowLost c;
                c.add(pm);
                (pm.orphan ? orphans_cow : tree_cow).add(pm);
                (pm.orphan ? orphans : tree).add(pm.now);
                p["status"] = "ok";
                p["rss"] = pm.now.rss;
                p["pss"] = pm.now.pss;
                p["uss"] = pm.now.uss();
                p["swap_pss"] = pm.now.swap_pss;
                p["shared_clean"] = pm.now.shared_clean;
                p["shared_dirty"] = pm.now.shared_dirty;
                p["private_dirty"] = pm.now.private_dirty;
                p["cow_lost"] = cow_json(c, pm.since_first, pm.fork_baseline);
                if (self) {
                    self_ok = true;
                    since = pm.since_first;
                    fork = pm.fork_baseline;
                    w["self"] = counters_json(pm.now);
                    w["cow_lost"] = cow_json(c, pm.since_first, pm.fork_baseline);
                }
                procs.push_back(std::move(p));
            }
            if (!self_ok) w["self"] = nullptr;
            w["status"] = self_status;
            if (auto t = trends.find(wm.target.name); t != trends.end() && self_ok)
                w["trend"] = t->second;
            w["tree"] = totals_json(tree);
            w["tree_cow_lost"] = cow_json(tree_cow, since, fork);
            if (orphan_procs > 0) {
                json::object o = totals_json(orphans);
                o["processes"] = orphan_procs;
                o["cow_lost"] =
                    json::object{{"private_dirty_growth", orphans_cow.private_dirty_growth},
                                 {"shared_lost", orphans_cow.shared_lost}};
                w["orphans"] = std::move(o);
            }
            w["processes"] = std::move(procs);
            add_totals(pool_totals, tree);
            add_totals(pool_totals, orphans);
            add_cow(pool_cow, tree_cow);
            add_cow(pool_cow, orphans_cow);
            rows.push_back(Row{std::move(w), tree, wm.target.index});
        }
        auto key = [&](const Totals& t) {
            return sort == proto::mem_sort::uss   ? t.uss
                   : sort == proto::mem_sort::rss ? t.rss_sum
                                                  : t.pss;
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
        if (has_template && anon_known) po["saved_vs_exec"] = sat_sub(workers_anon, pool_pss_anon);
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
    // A template (spawn: template) is the master of the pool's workers, each its own group.
    pid_t master = 0;
    std::size_t workers = 0;
    for (const Target* t : targets) {
        if (t->index == kTemplateIndex)
            master = t->pid;
        else
            ++workers;
    }
    for (const Target* t : targets) {
        std::unordered_map<pid_t, proc::Stat> stats;
        auto pids = tree_of(r, *t, stats);
        const bool prefork = !master && workers == 1 && pids.size() > 1;
        if (prefork) master = t->pid;
        // In the prefork case, group = the child subtree each process belongs to.
        std::unordered_map<pid_t, int> group_of;
        int next_group = 0;
        for (pid_t pid : pids) {
            proc::DeepMember m;
            m.pid = pid;
            if (auto it = stats.find(pid); it != stats.end()) m.starttime = it->second.starttime;
            if (!prefork) {
                m.group = t->index;  // a template's is kTemplateIndex: the master group
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
