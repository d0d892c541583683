// The operator soak's invariants, as pure checks of what the soak observed against its model:
// what must hold once the system is at rest, and what a step must never have done.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "tests/support/soak_cowctl.hpp"
#include "tests/support/soak_model.hpp"
#include "tests/support/soak_procs.hpp"

namespace cow::soak {

// What a step may change: anything else must be exactly as it was.
struct Touch {
    bool all = false;
    std::set<std::string> pools;
    std::set<std::string> workers;  // "p1.2"
    std::set<pid_t> pids;           // processes the step killed itself
};

struct Finding {
    std::string invariant, detail;
};

inline std::string pool_of(const std::string& worker) {
    auto dot = worker.rfind('.');
    return dot == std::string::npos ? worker : worker.substr(0, dot);
}

// What must hold once the system is at rest; empty when it does.
inline std::vector<Finding> rest_findings(const Observation& o, const Model& m, pid_t daemon,
                                          const std::string& tag) {
    std::vector<Finding> f;
    auto add = [&](const std::string& inv, const std::string& d) { f.push_back({inv, d}); };
    if (!o.st.ok) {
        add("control-answers", o.st.err);
        return f;
    }
    // Pools, in file order, with the worker count of the file or of the last scale.
    std::string have, want;
    for (const auto& p : o.st.pools)
        have += " " + p.name;
    for (const auto& p : m.cfg.pools)
        want += " " + p.name;
    if (have != want)
        add("status-matches-config", "pools [" + have + " ] but the config has [" + want + " ]");
    std::set<pid_t> allowed;
    for (const auto& p : o.st.pools)
        for (const auto& w : p.workers) {
            if (w.pid) allowed.insert(w.pid);
            if (w.replacing) allowed.insert(w.replacing);
        }
    for (const auto& spec : m.cfg.pools) {
        const PStat* ps = o.st.find(spec.name);
        if (!ps) continue;
        static const std::vector<bool> none;
        auto upit = m.up.find(spec.name);
        const auto& ups = upit == m.up.end() ? none : upit->second;
        if (ps->workers.size() != ups.size())
            add("status-matches-config", spec.name + " has " + std::to_string(ps->workers.size()) +
                                             " workers, expected " + std::to_string(ups.size()));
        const bool deps_ok = m.deps_up(spec);
        for (const auto& w : ps->workers) {
            if (w.index < 0 || static_cast<std::size_t>(w.index) >= ups.size()) {
                add("status-matches-config", w.name + " should not exist (" + w.state + ")");
                continue;
            }
            const bool want_up = ups[static_cast<std::size_t>(w.index)];
            if (w.replacing)
                add("status-matches-config",
                    w.name + " is still replacing pid " + std::to_string(w.replacing));
            bool ok;
            std::string expected;
            if (spec.kind == Kind::crash) {
                ok = want_up
                         ? (w.state == "running" || w.state == "starting" || w.state == "backoff")
                         : w.state == "stopped";
                expected = want_up ? "crash-looping" : "stopped";
            } else if (want_up && deps_ok) {
                ok = w.state == "running";
                expected = "running";
            } else if (want_up) {
                ok = w.state == "running" || w.state == "stopped";
                expected = "running or waiting for depends_on";
            } else {
                ok = w.state == "stopped";
                expected = "stopped";
            }
            if (!ok)
                add("status-matches-config",
                    w.name + " is " + w.state + " (" + w.reason + "), expected " + expected);
            // The process runs the config the file has now.
            if (w.pid && w.state == "running" && spec.kind != Kind::crash) {
                auto it = o.snap.procs.find(w.pid);
                if (it == o.snap.procs.end())
                    add("process-accounted",
                        w.name + " pid " + std::to_string(w.pid) + " is not a child of the daemon");
                else if (it->second.cfg != cfg_tag(spec))
                    add("config-applied", w.name + " pid " + std::to_string(w.pid) +
                                              " runs an old config of " + spec.name +
                                              " (SOAK_CFG " + it->second.cfg + ", the file's is " +
                                              cfg_tag(spec) + ": " + spec.identity() + ")");
            }
        }
    }
    // Every process directly under the daemon is a worker, a rolling predecessor or a
    // listed orphan.
    if (!o.tree_ok) add("control-answers", "cowctl tree --json failed");
    for (const Proc* c : o.snap.children_of(daemon)) {
        if (c->state == 'Z' || allowed.count(c->pid) || o.orphans.count(c->pid)) continue;
        if (proc_state(c->pid) == 0 || proc_state(c->pid) == 'Z') continue;  // just died
        add("process-accounted",
            "pid " + std::to_string(c->pid) + " (" + c->cmdline + ", " + c->pool + "." +
                std::to_string(c->worker) +
                ") is under the daemon but neither a worker nor a listed orphan");
    }
    // Orphans: kept only by a pool with orphans: keep, or as the daemonized child of a worker
    // that still runs (as it would be in the worker's cgroup).
    for (const auto& [pid, from] : o.orphans) {
        auto pit = o.snap.procs.find(pid);
        if (pit == o.snap.procs.end() || pit->second.state == 'Z') continue;
        const std::string pname = pool_of(from);
        const PoolSpec* spec = m.cfg.find(pname);
        if (from == "unknown") {
            add("orphan-policy", "orphan pid " + std::to_string(pid) + " (" + pit->second.cmdline +
                                     ", of " + pit->second.pool + "." +
                                     std::to_string(pit->second.worker) +
                                     ") is attributed to no worker");
            continue;
        }
        if (!spec || spec->keep || m.kept_ever.count(pname))
            continue;  // removed pools: stopped-means-gone below
        const WStat* w = o.st.worker(from);
        bool daemonized_child = false;
        if (w && w->pid && w->state == "running") {
            auto wit = o.snap.procs.find(w->pid);
            daemonized_child = wit != o.snap.procs.end() && wit->second.start <= pit->second.start;
        }
        if (!daemonized_child)
            add("orphan-policy", "orphan pid " + std::to_string(pid) + " (" + pit->second.cmdline +
                                     ") from " + from +
                                     " outlived stop_timeout under orphans: kill");
    }
    // A stopped, scaled-away or removed worker leaves nothing running.
    for (const auto& [pid, p] : o.snap.procs) {
        if (p.state == 'Z' || p.run != tag) continue;
        const std::string who = p.pool + "." + std::to_string(p.worker);
        const std::string what = "pid " + std::to_string(pid) + " (" + p.cmdline + ") of " + who;
        auto it = m.up.find(p.pool);
        if (it == m.up.end())
            add("stopped-means-gone", what + " runs, but pool " + p.pool + " was removed");
        else if (p.worker < 0 || static_cast<std::size_t>(p.worker) >= it->second.size())
            add("stopped-means-gone", what + " runs, but " + who + " was scaled away");
        else if (!it->second[static_cast<std::size_t>(p.worker)])
            add("stopped-means-gone", what + " runs, but " + who + " was stopped");
    }
    // A daemonizing worker keeps its daemonized child while it runs, in either kill_mode.
    for (const auto& spec : m.cfg.pools) {
        if (spec.kind != Kind::daemonize) continue;
        const PStat* ps = o.st.find(spec.name);
        if (!ps) continue;
        for (const auto& w : ps->workers) {
            if (w.state != "running" || !w.pid || m.child_lost_on_purpose.count(w.pid)) continue;
            auto wit = o.snap.procs.find(w.pid);
            if (wit == o.snap.procs.end()) continue;
            const Proc* kid = nullptr;
            for (const auto& [pid, p] : o.snap.procs)
                if (p.pool == spec.name && p.worker == w.index && p.state != 'Z' &&
                    p.cmdline == "sleep 100001" && p.start >= wit->second.start)
                    kid = &p;
            if (!kid)
                add("daemonized-child-kept", w.name + " (pid " + std::to_string(w.pid) +
                                                 ", kill_mode " + (spec.group ? "group" : "auto") +
                                                 ") runs but its daemonized child is gone");
            else if (o.orphans.count(kid->pid) && o.orphans.at(kid->pid) != w.name)
                add("daemonized-child-kept", "the daemonized child pid " +
                                                 std::to_string(kid->pid) + " of " + w.name +
                                                 " is attributed to " + o.orphans.at(kid->pid));
        }
    }
    // A pool runs only while what it depends on runs.
    for (const auto& spec : m.cfg.pools) {
        const PStat* ps = o.st.find(spec.name);
        if (!ps || spec.deps.empty()) continue;
        bool runs = false;
        for (const auto& w : ps->workers)
            runs |= w.state == "running";
        if (!runs) continue;
        for (const auto& d : spec.deps) {
            const PStat* ds = o.st.find(d);
            if (!ds) continue;
            for (const auto& dw : ds->workers)
                if (dw.state != "running" && !m.solo_stopped.count(dw.name)) {
                    add("depends-on",
                        spec.name + " runs while its dependency " + dw.name + " is " + dw.state);
                    break;
                }
        }
    }
    // health agrees with status: every essential pool's workers run.
    if (o.health.code != 0 && o.health.code != 1) {
        add("control-answers",
            "cowctl health exit " + std::to_string(o.health.code) + ": " + o.health.err);
    } else {
        bool healthy = true;
        for (const auto& spec : m.cfg.pools) {
            if (!spec.essential()) continue;
            if (const PStat* ps = o.st.find(spec.name))
                for (const auto& w : ps->workers)
                    healthy &= w.state == "running";
        }
        if ((o.health.code == 0) != healthy) {
            std::string ps;
            for (const auto& p : o.health.problems)
                ps += (ps.empty() ? "" : "; ") + p;
            add("health-consistent",
                std::string("health says ") +
                    (o.health.code == 0 ? "healthy" : "unhealthy (" + ps + ")") +
                    " while status says " + (healthy ? "healthy" : "unhealthy"));
        }
    }
    return f;
}

// No worker or process of a pool the step did not touch was restarted, signalled or killed.
inline std::vector<Finding> untouched_findings(const Observation& before, const Observation& after,
                                               const Touch& t, const Model& m,
                                               const std::string& tag) {
    std::vector<Finding> f;
    auto add = [&](const std::string& inv, const std::string& d) { f.push_back({inv, d}); };
    if (!t.all && before.st.ok && after.st.ok) {
        for (const auto& p : before.st.pools) {
            const PoolSpec* spec = m.cfg.find(p.name);
            if (t.pools.count(p.name) || (spec && spec->kind == Kind::crash) || p.name == "crash")
                continue;
            for (const auto& w : p.workers) {
                if (t.workers.count(w.name)) continue;
                const WStat* w2 = after.st.worker(w.name);
                if (!w2) {
                    add("untouched-workers", w.name + " vanished");
                    continue;
                }
                if (w2->pid != w.pid || w2->generation != w.generation ||
                    w2->restarts != w.restarts)
                    add("untouched-workers",
                        w.name + " changed though the step did not touch it: pid " +
                            std::to_string(w.pid) + " -> " + std::to_string(w2->pid) +
                            ", generation " + std::to_string(w.generation) + " -> " +
                            std::to_string(w2->generation) + ", restarts " +
                            std::to_string(w.restarts) + " -> " + std::to_string(w2->restarts) +
                            ", now " + w2->state + " (" + w2->reason + ")");
            }
        }
        for (const auto& [pid, p] : before.snap.procs) {
            if (p.state == 'Z' || p.run != tag || p.pool == "crash") continue;
            const std::string who = p.pool + "." + std::to_string(p.worker);
            if (t.pools.count(p.pool) || t.workers.count(who) || t.pids.count(pid)) continue;
            if (!after.snap.has(pid, p.start) && proc_state(pid) != 'T')
                add("untouched-processes", "pid " + std::to_string(pid) + " (" + p.cmdline +
                                               ") of " + who +
                                               " died though the step did not touch " + who);
        }
    }
    return f;
}

// Nothing of this run's pools (processes tagged `tag`) lives below `self` outside the
// daemon's tree: no predecessor's leftovers, no worker that escaped.
inline std::vector<Finding> stray_findings(pid_t self, pid_t daemon, const std::string& tag) {
    std::vector<Finding> f;
    // One snapshot, so that a worker that exits meanwhile is not taken for a stray.
    Snapshot mine = Snapshot::below(self);
    for (const auto& [pid, p] : mine.procs) {
        if (p.state == 'Z' || p.run != tag || mine.below_of(pid, daemon)) continue;
        f.push_back({"no-strays", "pid " + std::to_string(pid) + " (" + p.cmdline + ") of " +
                                      p.pool + "." + std::to_string(p.worker) +
                                      " runs outside the daemon's tree (parent " +
                                      std::to_string(p.ppid) + ")"});
    }
    return f;
}

}  // namespace cow::soak
