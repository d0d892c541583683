// The operator soak's model of a cowherd config: pools of a few kinds of worker, the settings an
// operator toggles, random edits of a config, and the reload plan the daemon should follow.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

namespace cow::soak {

// What a pool runs. Every kind but `crash` stays up until told otherwise.
enum class Kind {
    sleeper,    // sleep: no children
    family,     // forker family 2: two children that exit on TERM
    daemonize,  // sh that double-forks a setsid `sleep 100001`, then execs sleep
    notifier,   // notifier ready-after: READY=1 a second after start (under ready: notify)
    http,       // cow-http on the pool's socket (always has sockets)
    crash,      // sh that exits 1 after half a second, for ever (pool "crash" only)
    chatter,    // chatter: a numbered line every 10 ms, to a file per worker (see soak_logs.hpp)
};

inline const char* kind_name(Kind k) {
    switch (k) {
        case Kind::sleeper:
            return "sleeper";
        case Kind::family:
            return "family";
        case Kind::daemonize:
            return "daemonize";
        case Kind::notifier:
            return "notifier";
        case Kind::http:
            return "http";
        case Kind::crash:
            return "crash";
        case Kind::chatter:
            return "chatter";
    }
    return "?";
}

struct PoolSpec {
    std::string name;
    Kind kind = Kind::sleeper;
    int workers = 1;
    bool memory = false;            // memory: {max_private: 1GiB, check_every: 100ms}
    bool notify = false;            // ready: notify (notifier and http only)
    bool sockets = false;           // a unix socket under the run's directory (http always)
    bool group = false;             // kill_mode: group (else auto)
    bool keep = false;              // orphans: keep (else kill)
    bool drop = false;              // log_backpressure: drop (else block; chatter only)
    std::vector<std::string> deps;  // depends_on, sorted

    // Everything but `workers`: a difference here makes a reload restart the pool.
    std::string identity() const {
        std::string s = std::string(kind_name(kind)) + (memory ? " mem" : "") +
                        (notify ? " notify" : "") + (sockets ? " sockets" : "") +
                        (group ? " group" : "") + (keep ? " keep" : "") + (drop ? " drop" : "");
        for (const auto& d : deps)
            s += " dep:" + d;
        return s;
    }
    std::string describe() const {
        return name + "[" + identity() + " x" + std::to_string(workers) + "]";
    }
    bool rolls() const { return sockets || notify; }
    bool essential() const { return kind != Kind::crash; }
};

inline std::uint32_t fnv32(const std::string& s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s)
        h = (h ^ c) * 16777619u;
    return h;
}

// Hash of a pool's identity, put in its environment (SOAK_CFG) so that the soak can read, from
// /proc, which config each running worker was started with.
inline std::string cfg_tag(const PoolSpec& p) {
    return std::to_string(fnv32(p.identity()));
}

struct ConfigSpec {
    std::vector<PoolSpec> pools;  // file order

    const PoolSpec* find(const std::string& name) const {
        for (const auto& p : pools)
            if (p.name == name) return &p;
        return nullptr;
    }
    PoolSpec* find(const std::string& name) {
        for (auto& p : pools)
            if (p.name == name) return &p;
        return nullptr;
    }
    std::string describe() const {
        std::string s;
        for (const auto& p : pools)
            s += (s.empty() ? "" : " ") + p.describe();
        return s;
    }
    // Pools that depend on `name`, directly or not.
    std::set<std::string> dependents(const std::string& name) const {
        std::set<std::string> out;
        for (bool grew = true; grew;) {
            grew = false;
            for (const auto& p : pools)
                for (const auto& d : p.deps)
                    if ((d == name || out.count(d)) && !out.count(p.name)) {
                        out.insert(p.name);
                        grew = true;
                    }
        }
        return out;
    }
    // What `name` depends on, directly or not.
    std::set<std::string> dependencies(const std::string& name) const {
        std::set<std::string> out;
        std::vector<std::string> todo{name};
        while (!todo.empty()) {
            const PoolSpec* p = find(todo.back());
            todo.pop_back();
            if (!p) continue;
            for (const auto& d : p->deps)
                if (out.insert(d).second) todo.push_back(d);
        }
        return out;
    }
};

// Which settings and worker kinds the generator may use; names are the ones of
// COWHERD_SOAK_SKIP (see the test).
struct Features {
    bool memory = true, notify = true, sockets = true, group = true, keep = true, depends_on = true,
         crash = true, daemonize = true, family = true, http = true, chatter = true;
};

struct Paths {
    std::string bin;       // COWHERD_BIN_DIR
    std::string dir;       // the run's directory: sockets, and the SOAK_RUN tag
    std::string logs;      // daemon.log_dir, where chatter pools write
    std::string progress;  // where chatter workers say what they wrote
};

// Where a chatter worker of `pool` keeps its progress: PREFIX.<pid>.<start>.
inline std::string progress_prefix(const PoolSpec& p, const Paths& paths) {
    return paths.progress + "/" + p.name + "." + (p.drop ? "drop" : "block");
}

inline std::string command_of(const PoolSpec& p, const Paths& paths) {
    switch (p.kind) {
        case Kind::sleeper:
            return "[sleep, \"100000\"]";
        case Kind::family:
            return "[\"" + paths.bin + "/forker\", family, \"2\"]";
        case Kind::daemonize:
            // The subshell forks the setsid child and exits at once: a real daemon's double
            // fork, with nothing left that links the child to its worker but the cgroup.
            return "[/bin/sh, -c, \"(setsid sleep 100001 &); exec sleep 100000\"]";
        case Kind::notifier:
            return "[\"" + paths.bin + "/notifier\", ready-after, \"1000\"]";
        case Kind::http:
            return "[\"" + paths.bin + "/cow-http\"]";
        case Kind::crash:
            return "[/bin/sh, -c, \"sleep 0.5; exit 1\"]";
        case Kind::chatter:
            return "[\"" + paths.bin + "/chatter\", \"10\", \"" + progress_prefix(p, paths) + "\"]";
    }
    return "";
}

inline std::string render_pools(const ConfigSpec& c, const Paths& paths) {
    std::string y;
    for (const auto& p : c.pools) {
        y += "  " + p.name + ":\n";
        y += "    command: " + command_of(p, paths) + "\n";
        y += "    workers: " + std::to_string(p.workers) + "\n";
        y += std::string("    start_timeout: ") +
             (p.notify                ? "10s"
              : p.kind == Kind::crash ? "100ms"
                                      : "200ms") +
             "\n";
        y += "    stop_timeout: 3s\n";
        y += "    backoff: {initial: 50ms, max: 500ms}\n";
        y += "    max_restarts: {count: 10000, within: 1s}\n";
        if (p.essential()) y += "    essential: true\n";
        y += "    env: {SOAK_RUN: \"" + paths.dir + "\", SOAK_CFG: \"" + cfg_tag(p) + "\"}\n";
        if (p.group) y += "    kill_mode: group\n";
        if (p.keep) y += "    orphans: keep\n";
        if (p.memory) y += "    memory: {max_private: 1GiB, check_every: 100ms}\n";
        if (p.kind == Kind::chatter) {
            y += "    stdout: {sink: file, per_worker: true, max_size: 0}\n";
            y += std::string("    log_backpressure: ") + (p.drop ? "drop" : "block") + "\n";
        }
        if (p.notify) y += "    ready: notify\n";
        if (p.sockets)
            y += "    sockets: [{name: s, listen: \"unix:" + paths.dir + "/" + p.name +
                 ".sock\"}]\n";
        if (!p.deps.empty()) {
            y += "    depends_on: [";
            for (std::size_t i = 0; i < p.deps.size(); ++i)
                y += (i ? ", " : "") + p.deps[i];
            y += "]\n";
        }
    }
    return y;
}

// ---- random configs ----

inline const std::vector<std::string>& pool_names() {
    static const std::vector<std::string> names{"p0", "p1", "p2", "p3", "p4", "p5"};
    return names;
}

inline int name_rank(const std::string& n) {
    return n == "crash" ? 100 : std::atoi(n.c_str() + 1);
}

template <class Rng>
int pick(Rng& rng, int n) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng));
}
template <class Rng>
bool chance(Rng& rng, double p) {
    return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

// Makes a spec valid: readiness only where the program speaks sd_notify, sockets on http,
// dependencies only on existing, steady pools of a lower rank (so never a cycle).
inline void normalize(ConfigSpec& c, const Features& f) {
    for (auto& p : c.pools) {
        if (p.kind == Kind::http) p.sockets = true;
        if (p.kind != Kind::notifier && p.kind != Kind::http) p.notify = false;
        if (p.kind == Kind::crash) p.deps.clear();
        if (p.kind != Kind::chatter) p.drop = false;
        if (!f.memory) p.memory = false;
        if (!f.notify) p.notify = false;
        if (!f.sockets && p.kind != Kind::http) p.sockets = false;
        if (!f.group) p.group = false;
        if (!f.keep) p.keep = false;
        std::erase_if(p.deps, [&](const std::string& d) {
            const PoolSpec* dp = c.find(d);
            return !f.depends_on || !dp || dp->kind == Kind::crash ||
                   name_rank(d) >= name_rank(p.name);
        });
        std::sort(p.deps.begin(), p.deps.end());
        p.deps.erase(std::unique(p.deps.begin(), p.deps.end()), p.deps.end());
    }
}

// Mostly 1 to 3; now and then a pool defined with no workers.
template <class Rng>
int random_workers(Rng& rng) {
    return chance(rng, 0.1) ? 0 : 1 + pick(rng, 3);
}

template <class Rng>
Kind random_kind(Rng& rng, const Features& f) {
    std::vector<Kind> ks{Kind::sleeper, Kind::notifier};
    if (f.family) ks.push_back(Kind::family);
    if (f.daemonize) ks.push_back(Kind::daemonize);
    if (f.http) ks.push_back(Kind::http);
    // Rare: its output is checked line by line after every step, and one or two such pools
    // at a time are enough for that.
    if (f.chatter && chance(rng, 0.1)) return Kind::chatter;
    return ks[static_cast<std::size_t>(pick(rng, static_cast<int>(ks.size())))];
}

template <class Rng>
void randomize_settings(PoolSpec& p, Rng& rng) {
    p.memory = chance(rng, 0.3);
    p.notify = chance(rng, 0.6);
    p.sockets = chance(rng, 0.3);
    p.group = chance(rng, 0.3);
    p.keep = chance(rng, 0.3);
    p.drop = chance(rng, 0.5);
}

// A pool `p` may depend on: steady, of a lower rank (so never a cycle); "" when none.
template <class Rng>
std::string some_dependency(const ConfigSpec& c, const PoolSpec& p, Rng& rng, const Features& f) {
    if (!f.depends_on) return "";
    std::vector<std::string> ok;
    for (const auto& d : c.pools)
        if (d.kind != Kind::crash && name_rank(d.name) < name_rank(p.name)) ok.push_back(d.name);
    return ok.empty() ? "" : ok[static_cast<std::size_t>(pick(rng, static_cast<int>(ok.size())))];
}

template <class Rng>
PoolSpec random_pool(const std::string& name, Rng& rng, const Features& f,
                     const ConfigSpec& others) {
    PoolSpec p;
    p.name = name;
    if (name == "crash") {
        p.kind = Kind::crash;
        p.workers = 1;
        p.group = chance(rng, 0.3);
        p.keep = chance(rng, 0.3);
        return p;
    }
    p.kind = random_kind(rng, f);
    p.workers = random_workers(rng);
    randomize_settings(p, rng);
    if (chance(rng, 0.25))
        if (auto d = some_dependency(others, p, rng, f); !d.empty()) p.deps.push_back(d);
    return p;
}

// One to three operator edits of a config: add, remove, reorder, resize, toggle a setting,
// change a dependency or a command, add or remove the crash-looping pool.
template <class Rng>
ConfigSpec mutate(const ConfigSpec& cur, Rng& rng, const Features& f, std::string& what) {
    ConfigSpec c = cur;
    const int edits = 1 + pick(rng, 3);
    for (int e = 0; e < edits; ++e) {
        const int op = pick(rng, 10);
        std::vector<std::string> free;
        for (const auto& n : pool_names())
            if (!c.find(n)) free.push_back(n);
        auto some = [&]() -> PoolSpec* {
            std::vector<PoolSpec*> ps;
            for (auto& p : c.pools)
                if (p.kind != Kind::crash) ps.push_back(&p);
            return ps.empty()
                       ? nullptr
                       : ps[static_cast<std::size_t>(pick(rng, static_cast<int>(ps.size())))];
        };
        if (op == 0 && !free.empty()) {
            auto n = free[static_cast<std::size_t>(pick(rng, static_cast<int>(free.size())))];
            auto p = random_pool(n, rng, f, c);
            c.pools.insert(c.pools.begin() + pick(rng, static_cast<int>(c.pools.size()) + 1), p);
            what += " add " + n;
        } else if (op == 1 && std::count_if(c.pools.begin(), c.pools.end(), [](const PoolSpec& x) {
                                  return x.kind != Kind::crash;
                              }) > 1) {
            auto* p = some();
            if (!p) continue;
            what += " remove " + p->name;
            std::string n = p->name;
            std::erase_if(c.pools, [&](const PoolSpec& x) { return x.name == n; });
        } else if (op == 2) {
            std::shuffle(c.pools.begin(), c.pools.end(), rng);
            what += " reorder";
        } else if (op == 3 || op == 4) {
            if (auto* p = some()) {
                p->workers = random_workers(rng);
                what += " resize " + p->name + "=" + std::to_string(p->workers);
            }
        } else if (op == 5 || op == 6) {
            if (auto* p = some()) {
                // Only the settings that apply to this pool and are not left out.
                std::vector<std::pair<const char*, bool*>> keys;
                if (f.memory) keys.emplace_back("memory", &p->memory);
                if (f.notify && (p->kind == Kind::notifier || p->kind == Kind::http))
                    keys.emplace_back("ready", &p->notify);
                if (f.sockets && p->kind != Kind::http) keys.emplace_back("sockets", &p->sockets);
                if (f.group) keys.emplace_back("kill_mode", &p->group);
                if (f.keep) keys.emplace_back("orphans", &p->keep);
                if (p->kind == Kind::chatter) keys.emplace_back("log_backpressure", &p->drop);
                if (keys.empty()) continue;
                auto& [key, flag] =
                    keys[static_cast<std::size_t>(pick(rng, static_cast<int>(keys.size())))];
                *flag = !*flag;
                what += std::string(" toggle ") + p->name + "." + key;
            }
        } else if (op == 7) {
            if (auto* p = some()) {
                if (!p->deps.empty()) {
                    p->deps.clear();
                    what += " " + p->name + ".depends_on=[]";
                } else if (auto d = some_dependency(c, *p, rng, f); !d.empty()) {
                    p->deps.push_back(d);
                    what += " " + p->name + ".depends_on=[" + d + "]";
                }
            }
        } else if (op == 8) {
            if (auto* p = some()) {
                p->kind = random_kind(rng, f);
                what += " " + p->name + ".command=" + kind_name(p->kind);
            }
        } else if (op == 9 && f.crash) {
            if (c.find("crash")) {
                std::erase_if(c.pools, [](const PoolSpec& x) { return x.kind == Kind::crash; });
                what += " remove crash";
            } else {
                c.pools.push_back(random_pool("crash", rng, f, c));
                what += " add crash";
            }
        }
    }
    normalize(c, f);
    if (what.empty()) what = " (no change)";
    return c;
}

// The config every daemon of a run starts from, and the one checkpoints return to: one pool of
// each steady kind, readiness on, so that the daemon opens its notify socket at start, and a
// memory limit past the first pool, so that the daemon starts with a memory check that a reload
// can move or remove; and a chatter pool, so that captured output is checked all along.
template <class Rng>
ConfigSpec base_config(Rng& rng, const Features& f) {
    ConfigSpec c;
    PoolSpec a{.name = "p0", .kind = Kind::sleeper, .workers = 2};
    PoolSpec b{.name = "p1", .kind = Kind::notifier, .workers = 1, .memory = true, .notify = true};
    PoolSpec d{.name = "p2",
               .kind = f.family ? Kind::family : Kind::sleeper,
               .workers = 1,
               .memory = true};
    c.pools = {a, b, d};
    if (f.chatter)
        c.pools.push_back(
            {.name = "p3", .kind = Kind::chatter, .workers = 1, .drop = chance(rng, 0.5)});
    normalize(c, f);
    return c;
}

// ---- what a reload does, pool by pool (config/plan.cpp, on the soak's own model) ----

enum class Change { added, removed, unchanged, resized, changed };

inline const char* change_name(Change c) {
    switch (c) {
        case Change::added:
            return "added";
        case Change::removed:
            return "removed";
        case Change::unchanged:
            return "unchanged";
        case Change::resized:
            return "resized";
        case Change::changed:
            return "changed";
    }
    return "?";
}

// `running`: each pool's size now (after `scale`), which a reload compares with the file.
inline std::map<std::string, Change> plan(
    const ConfigSpec& from, const ConfigSpec& to,
    const std::map<std::string, std::vector<bool>>* running = nullptr) {
    std::map<std::string, Change> out;
    for (const auto& p : to.pools) {
        const PoolSpec* o = from.find(p.name);
        const bool scaled = running && running->count(p.name) &&
                            running->at(p.name).size() != static_cast<std::size_t>(p.workers);
        if (!o)
            out[p.name] = Change::added;
        else if (o->identity() != p.identity())
            out[p.name] = Change::changed;
        else if (o->workers != p.workers || scaled)
            out[p.name] = Change::resized;
        else
            out[p.name] = Change::unchanged;
    }
    for (const auto& p : from.pools)
        if (!to.find(p.name)) out[p.name] = Change::removed;
    return out;
}

// ---- the model: what the daemon should be doing ----

struct Model {
    ConfigSpec cfg;                               // what the config file says
    std::map<std::string, std::vector<bool>> up;  // per pool, per index: the operator wants it up
    // Pools that had orphans: keep in this daemon's life: orphans it kept may stay after the
    // pool switches to kill (what stop and removal do to them is checked apart).
    std::set<std::string> kept_ever;
    // Worker main pids whose daemonized child the soak killed itself.
    std::set<pid_t> child_lost_on_purpose;
    // Workers the operator stopped one by one ("stop p0.1"): that leaves the pools depending
    // on theirs running (config/README, depends_on), until the worker or its pool is started.
    std::set<std::string> solo_stopped;

    void started(const std::string& target) {
        std::erase_if(solo_stopped, [&](const std::string& w) {
            return w == target || w.rfind(target + ".", 0) == 0;
        });
    }

    void note_keep() {
        for (const auto& p : cfg.pools)
            if (p.keep) kept_ever.insert(p.name);
    }

    // Every worker of the file, wanted up (a daemon that just started; a checkpoint).
    void reset() {
        note_keep();
        up.clear();
        solo_stopped.clear();
        for (const auto& p : cfg.pools)
            up[p.name] = std::vector<bool>(static_cast<std::size_t>(p.workers), true);
    }

    // Everything `p` depends on is wanted up (so `p` should run, not wait).
    bool deps_up(const PoolSpec& p) const {
        for (const auto& d : cfg.dependencies(p.name)) {
            const PoolSpec* dp = cfg.find(d);
            if (!dp || dp->kind == Kind::crash) return false;
            auto it = up.find(d);
            if (it == up.end()) return false;
            for (bool u : it->second)
                if (!u) return false;
        }
        return true;
    }

    std::size_t total_slots() const {
        std::size_t n = 0;
        for (const auto& [name, v] : up)
            n += v.size();
        return n;
    }

    // A reload to `next`: added pools start, removed ones go, and every other pool gets the
    // file's worker count (new indexes up): a `scale` lasts until the next reload.
    void apply_reload(const ConfigSpec& next, const std::map<std::string, Change>& pl) {
        for (const auto& [name, ch] : pl) {
            if (ch == Change::removed) {
                up.erase(name);
                continue;
            }
            const int nw = next.find(name)->workers;
            if (ch == Change::added) {
                up[name] = std::vector<bool>(static_cast<std::size_t>(nw), true);
            } else {
                up[name].resize(static_cast<std::size_t>(nw), true);
            }
        }
        cfg = next;
        note_keep();
    }
};

}  // namespace cow::soak
