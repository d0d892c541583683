#include "daemon/memory/tree_view.hpp"

#include <algorithm>
#include <thread>
#include <unordered_set>

#include <time.h>
#include <unistd.h>

#include "core/proc/tree.hpp"
#include "daemon/os/cgroup.hpp"
#include "daemon/os/parallel.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {
namespace json = boost::json;

namespace {

// Milliseconds since boot on the clock /proc/PID/stat starttime counts from.
std::int64_t boot_ms() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

json::object node_json(const proc::ProcNode& n, std::int64_t now_ms, long hz) {
    json::object o;
    o["pid"] = n.pid;
    o["ppid"] = n.ppid;
    o["cmd"] = n.cmdline;
    if (n.comm != n.cmdline) o["comm"] = n.comm;
    o["state"] = std::string(1, n.state);
    o["uptime_ms"] =
        now_ms - static_cast<std::int64_t>(n.starttime * 1000 / static_cast<std::uint64_t>(hz));
    json::array kids;
    kids.reserve(n.children.size());
    for (const auto& c : n.children)
        kids.push_back(node_json(c, now_ms, hz));
    o["children"] = std::move(kids);
    return o;
}

// The stats of thousands of processes, read on several threads (daemon/os/parallel.hpp). Halves
// a 4000-process tree on 2 cores (bench/trees.py).
proc::ProcSnapshot parallel_snapshot(const std::vector<pid_t>& pids) {
    std::vector<proc::ProcSnapshot> snaps(4);
    parallel_parts(
        pids.size(),
        [&](std::size_t k, std::size_t parts) {
            proc::ProcReader reader;
            std::vector<pid_t> mine;
            for (std::size_t i = k; i < pids.size(); i += parts)
                mine.push_back(pids[i]);
            snaps[k] = proc::snapshot_of(reader, mine);
        },
        256);
    proc::ProcSnapshot out = std::move(snaps[0]);
    for (std::size_t k = 1; k < snaps.size(); ++k) {
        for (auto& [pid, e] : snaps[k].procs)
            out.procs.emplace(pid, std::move(e));
        for (auto& [ppid, kids] : snaps[k].children) {
            auto& dst = out.children[ppid];
            dst.insert(dst.end(), kids.begin(), kids.end());
        }
    }
    for (auto& [ppid, kids] : out.children)
        std::sort(kids.begin(), kids.end());
    return out;
}

}  // namespace

TreeQuery make_tree_query(const Supervisor& sup, const std::string& pool, bool cmdlines) {
    TreeQuery q;
    q.cmdlines = cmdlines;
    q.cgroups_cover_all = true;
    std::unordered_set<std::string> cgroups;
    for (const auto& p : sup.pools()) {
        if (!pool.empty() && p->name() != pool) continue;
        q.pools.push_back(p->name());
        for (const auto& w : p->workers) {
            q.workers.push_back({p->name(), w->name, std::string(fsm::to_string(w->slot.state)),
                                 w->alive() ? w->pid : 0});
            if (!w->alive()) continue;
            if (w->cgroup.empty())
                q.cgroups_cover_all = false;
            else
                cgroups.insert(w->cgroup);
        }
    }
    for (const auto& [pid, o] : sup.orphans()) {
        const Worker* w = o.worker_id ? sup.find_worker(o.worker_id) : nullptr;
        std::string opool = w ? w->pool->name() : "";
        if (!pool.empty() && opool != pool) continue;
        q.orphans.push_back({pid, o.from, o.comm, o.worker_id, opool});
        if (o.cgroup.empty())
            q.cgroups_cover_all = false;
        else
            cgroups.insert(o.cgroup);
    }
    q.cgroups.assign(cgroups.begin(), cgroups.end());
    return q;
}

json::object read_trees(const TreeQuery& q) {
    proc::ProcReader reader;
    const long hz = sysconf(_SC_CLK_TCK);
    const std::int64_t now = boot_ms();
    // Reading /proc/PID/stat is the cost (~5-10 us each). With cgroups we read only the
    // members of our cgroups; otherwise, for many roots, one pass over all of /proc beats a
    // children-file walk per process (core/proc/tree); for a few, the walk wins.
    std::size_t roots = q.workers.size() + q.orphans.size();
    std::optional<proc::ProcSnapshot> snap;
    if (q.cgroups_cover_all) {
        std::vector<pid_t> members;
        for (const auto& cg : q.cgroups) {
            auto m = cgroup::read_procs(cg);
            members.insert(members.end(), m.begin(), m.end());
        }
        snap = parallel_snapshot(members);
    } else if (roots > 32) {
        snap = proc::build_all(reader);
    }
    proc::TreeLimits limits;
    limits.cmdlines = q.cmdlines;
    auto subtree = [&](pid_t pid) -> std::optional<proc::ProcNode> {
        if (pid <= 0) return std::nullopt;
        auto r = snap ? proc::build_subtree(*snap, reader, pid, limits)
                      : proc::build_subtree(reader, pid, limits);
        if (!r.ok()) return std::nullopt;
        return std::move(r.value.root);
    };

    json::array pools;
    for (const auto& name : q.pools) {
        json::object po;
        po["name"] = name;
        json::array ws;
        for (const auto& w : q.workers) {
            if (w.pool != name) continue;
            json::object wo;
            wo["name"] = w.name;
            wo["state"] = w.state;
            if (w.pid > 0)
                wo["pid"] = w.pid;
            else
                wo["pid"] = nullptr;
            if (auto t = subtree(w.pid))
                wo["tree"] = node_json(*t, now, hz);
            else
                wo["tree"] = nullptr;
            ws.push_back(std::move(wo));
        }
        po["workers"] = std::move(ws);
        json::array os;
        for (const auto& o : q.orphans) {
            if (o.pool != name) continue;
            json::object oo{{"pid", o.pid}, {"from", o.from}, {"cmd", o.comm}};
            if (auto t = subtree(o.pid)) {
                oo["cmd"] = t->cmdline;
                oo["tree"] = node_json(*t, now, hz);
            }
            os.push_back(std::move(oo));
        }
        po["orphans"] = std::move(os);
        pools.push_back(std::move(po));
    }
    json::array unknown;
    for (const auto& o : q.orphans) {
        if (!o.pool.empty()) continue;
        json::object oo{{"pid", o.pid}, {"from", o.from}, {"cmd", o.comm}};
        if (auto t = subtree(o.pid)) oo["tree"] = node_json(*t, now, hz);
        unknown.push_back(std::move(oo));
    }
    json::object out;
    out["pools"] = std::move(pools);
    out["orphans"] = std::move(unknown);
    return out;
}

}  // namespace cow
