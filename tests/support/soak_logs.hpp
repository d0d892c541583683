// The operator soak's checks of captured output. Chatter workers (tests/helpers/chatter.cpp)
// write numbered lines "<pid> <start> <n>" to a file of their own (stdout: {sink: file,
// per_worker: true}) and keep, in a progress file, which lines they wrote. After every step the
// soak reads what the files gained and checks what cowherd promises of them (README "Logs that
// lose nothing", config/README.md `log_backpressure`), whatever the step did to the workers
// (kill -9, restart, roll, reload, stop, scale) or to the disk (full_disk):
// - every line is whole and well-formed, and each process's numbers only increase;
// - under `block` nothing is lost: a process's numbers run 1, 2, 3... with no gap, and every
//   line it wrote reaches the file, also when it was killed or restarted meanwhile (its pipe
//   lives as long as its slot);
// - under `drop` what is missing is counted (drop_findings says what is checkable at rest);
// - logging goes on: the line each live process was writing when the check began reaches
//   the file (after a full disk: once the disk has room again).
// A process of an earlier daemon's life (that daemon was killed -9) lost what was in its pipes
// and in the daemon's queue: only the form and order of its lines, and that the lost ones are
// the last ones (no gap under block), are checked.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/soak_checks.hpp"
#include "tests/support/soak_cowctl.hpp"
#include "tests/support/soak_procs.hpp"
#include "tests/support/wait_for.hpp"

namespace cow::soak {

// One chatter process, as its lines and its progress file name it.
struct ChatterRun {
    std::string key;    // "<pid> <start>"
    std::string pool;   // of its progress file name
    bool drop = false;  // its pool's log_backpressure when it started
    pid_t pid = 0;
    std::uint64_t start = 0;  // clock ticks since boot
    std::string progress;     // the progress file
    std::string file;         // the log file its lines are in; "" before the first
    std::int64_t first = 0, last = 0, present = 0;
    std::int64_t gaps = 0;  // lines missing before its last one
    // From the progress file: the line it was about to write, and the last one it wrote.
    std::int64_t started = 0, done = 0;
    bool gone = false;      // the process has exited: started and done are final
    bool reported = false;  // a finding about what it lost was made
    // A reload changed its pool while its lines could still be in flight: from the first
    // spawn under the new config on, the daemon delivers what it reads from the slot's pipe
    // under the new config (its sink, its log_backpressure), whichever process wrote it.
    bool superseded = false;
};

class ChatterLedger {
  public:
    ChatterLedger() = default;
    ChatterLedger(std::string logs, std::string progress)
        : logs_(std::move(logs)), progress_(std::move(progress)) {}

    // A new daemon, started at `start` (clock ticks since boot): what a process started
    // before it lost is no longer counted.
    void new_life(std::uint64_t start) {
        life_ = start;
        tainted_.clear();
    }

    // What must hold at rest (see the top of the file); waits up to `deadline` for lines in
    // flight. Findings of the form and order of lines are made once, when the line is read.
    template <class StatusFn>
    std::vector<Finding> rest_findings(StatusFn status, std::chrono::milliseconds deadline) {
        std::vector<Finding> found;
        std::vector<Pending> pending;
        list_progress();
        if (runs_.empty()) return found;             // no chatter process yet
        std::map<std::string, std::int64_t> target;  // key -> the line it was writing at first
        bool first = true;
        test::WaitFor(
            [&] {
                pending.clear();
                const Status s0 = status();
                list_progress();
                scan(found);
                refresh();
                const Status s1 = status();
                if (!s0.ok || !s1.ok) return true;  // the other checks say why
                if (first) {
                    for (const auto& [key, r] : runs_)
                        if (ours(r) && !r.gone) target[key] = r.started;
                    first = false;
                }
                resume_findings(target, pending);
                lost_findings(pending);
                drop_findings(s0, s1, pending);
                return pending.empty();
            },
            deadline, std::chrono::milliseconds(50));
        for (auto& f : pending) {
            // Once per process or pool: what it lost stays lost.
            if (auto* r = find(f.who))
                r->reported = true;
            else if (!f.who.empty())
                tainted_.insert(f.who);
            found.push_back({f.invariant, f.detail});
        }
        return found;
    }

    // After the daemon's clean exit, which reads every pipe dry: what the last lines of each
    // file say, and that no process under block lost any line.
    std::vector<Finding> after_exit() {
        std::vector<Finding> found;
        std::vector<Pending> pending;
        list_progress();
        scan(found);
        refresh();
        lost_findings(pending);
        for (auto& f : pending)
            found.push_back({f.invariant, f.detail});
        return found;
    }

    // A reload changed `pool`: what its processes wrote may go on to another sink (the
    // console), or be dropped and counted under drop, rather than reach their file.
    void supersede(const std::string& pool) {
        list_progress();
        for (auto& [key, r] : runs_)
            if (r.pool == pool) r.superseded = true;
    }

    bool empty() const { return runs_.empty(); }
    std::size_t runs() const { return runs_.size(); }

  private:
    struct Pending {
        std::string invariant, detail, who;  // who: a run's key or a pool
    };
    struct FileState {
        std::uint64_t offset = 0;  // what was read: whole lines
    };

    using Findings = std::vector<Finding>;

    std::string logs_, progress_;
    std::uint64_t life_ = 0;
    std::map<std::string, ChatterRun> runs_;  // by key
    std::map<std::string, FileState> files_;  // by name ("p3.0.out")
    std::set<std::string> tainted_;           // pools whose counter was found wrong

    bool ours(const ChatterRun& r) const { return r.start >= life_; }

    ChatterRun* find(const std::string& key) {
        auto it = runs_.find(key);
        return it == runs_.end() ? nullptr : &it->second;
    }

    // Progress files, POOL.MODE.PID.START: every chatter process, those with no line in any
    // file too. Listed before the log files are read, so a line always has its process.
    void list_progress() {
        DIR* d = opendir(progress_.c_str());
        if (!d) return;
        while (dirent* e = readdir(d)) {
            const std::string name = e->d_name;
            std::vector<std::string> parts;
            for (std::size_t pos = 0;;) {
                auto dot = name.find('.', pos);
                parts.push_back(name.substr(pos, dot - pos));
                if (dot == std::string::npos) break;
                pos = dot + 1;
            }
            if (parts.size() != 4 || (parts[1] != "block" && parts[1] != "drop")) continue;
            const std::string key = parts[2] + " " + parts[3];
            if (runs_.count(key)) continue;
            ChatterRun r;
            r.key = key;
            r.pool = parts[0];
            r.drop = parts[1] == "drop";
            r.pid = static_cast<pid_t>(std::atol(parts[2].c_str()));
            r.start = std::strtoull(parts[3].c_str(), nullptr, 10);
            r.progress = progress_ + "/" + name;
            runs_[key] = std::move(r);
        }
        closedir(d);
    }

    // Liveness first, then the counters: those of a process found gone are final.
    void refresh() {
        for (auto& [key, r] : runs_) {
            if (r.gone) continue;
            Proc p;
            r.gone = !read_stat(r.pid, p) || p.start != r.start || p.state == 'Z';
            int fd = ::open(r.progress.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            std::int64_t c[2] = {0, 0};
            if (::pread(fd, c, sizeof c, 0) == static_cast<ssize_t>(sizeof c)) {
                r.started = c[0];
                r.done = c[1];
            }
            ::close(fd);
        }
    }

    static bool digits(std::string_view s) {
        if (s.empty() || s.size() > 19) return false;
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    }

    // Reads the whole lines each log file gained.
    void scan(Findings& found) {
        DIR* d = opendir(logs_.c_str());
        if (!d) return;
        std::vector<std::string> names;
        while (dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 4 && n.ends_with(".out")) names.push_back(n);
        }
        closedir(d);
        for (const auto& name : names) {
            auto& fs = files_[name];
            const std::string path = logs_ + "/" + name;
            int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            struct stat st {};
            if (::fstat(fd, &st) != 0) {
                ::close(fd);
                continue;
            }
            const auto size = static_cast<std::uint64_t>(st.st_size);
            if (size < fs.offset) {
                found.push_back({"log-lines-kept", path + " shrank from " +
                                                       std::to_string(fs.offset) + " to " +
                                                       std::to_string(size) + " bytes"});
                fs.offset = size;  // read on from there; what was cut is not seen again
            }
            std::string text(size - fs.offset, '\0');
            ssize_t n = text.empty()
                            ? 0
                            : ::pread(fd, text.data(), text.size(), static_cast<off_t>(fs.offset));
            ::close(fd);
            if (n <= 0) continue;
            text.resize(static_cast<std::size_t>(n));
            // Up to the last newline: the rest may be a line being written.
            const auto end = text.rfind('\n');
            if (end == std::string::npos) continue;
            std::size_t pos = 0;
            while (pos <= end) {
                const auto nl = text.find('\n', pos);
                line(name, fs.offset + pos, std::string_view(text).substr(pos, nl - pos), found);
                pos = nl + 1;
            }
            fs.offset += end + 1;
        }
    }

    void line(const std::string& file, std::uint64_t at, std::string_view l, Findings& found) {
        const std::string where = logs_ + "/" + file + " at byte " + std::to_string(at);
        const auto s1 = l.find(' ');
        const auto s2 = s1 == std::string_view::npos ? s1 : l.find(' ', s1 + 1);
        if (s2 == std::string_view::npos || !digits(l.substr(0, s1)) ||
            !digits(l.substr(s1 + 1, s2 - s1 - 1)) || !digits(l.substr(s2 + 1))) {
            std::string shown(l.substr(0, 80));
            found.push_back({"log-lines-whole",
                             where + ": \"" + shown + "\" is not a whole \"<pid> <start> <n>\""});
            return;
        }
        const std::string key = std::string(l.substr(0, s2));
        const std::int64_t n = std::atoll(std::string(l.substr(s2 + 1)).c_str());
        ChatterRun* r = find(key);
        if (!r) {
            found.push_back({"log-lines-whole",
                             where + ": \"" + std::string(l) + "\" names no chatter process"});
            return;
        }
        const std::string pool = file.substr(0, file.find('.'));
        if (r->file.empty()) r->file = file;
        if (r->file != file || r->pool != pool)
            found.push_back({"log-lines-where", where + ": a line of pid " +
                                                    std::to_string(r->pid) + " of pool " + r->pool +
                                                    ", whose lines go to " + r->file});
        const std::int64_t expected = r->present ? r->last + 1 : 1;
        if (r->present && n <= r->last) {
            found.push_back({"log-lines-ordered", where + ": line " + std::to_string(n) +
                                                      " of pid " + std::to_string(r->pid) +
                                                      " after its line " +
                                                      std::to_string(r->last)});
            return;
        }
        if (n != expected) {
            r->gaps += n - expected;
            if (!r->drop && !r->superseded)
                found.push_back(
                    {"log-nothing-lost", where + ": line " + std::to_string(n) + " of pid " +
                                             std::to_string(r->pid) + " (" + r->pool +
                                             ", log_backpressure: block) follows " +
                                             (r->present ? "its line " + std::to_string(r->last)
                                                         : std::string("none of its lines")) +
                                             ": " + std::to_string(n - expected) + " lost"});
        }
        if (!r->present) r->first = n;
        r->last = n;
        ++r->present;
    }

    // The line each process of this daemon was writing when the check began has arrived.
    void resume_findings(const std::map<std::string, std::int64_t>& target,
                         std::vector<Pending>& out) {
        for (const auto& [key, want] : target) {
            const ChatterRun* r = find(key);
            if (!r || r->reported || r->superseded || r->last >= want) continue;
            // A process that exited since: what it must have delivered is checked below.
            if (r->gone) continue;
            out.push_back(
                {"log-resumes",
                 "pid " + std::to_string(r->pid) + " of " + r->pool + " (" +
                     (r->drop ? "drop" : "block") + ") wrote line " + std::to_string(want) +
                     ", but its file " +
                     (r->file.empty() ? std::string("has none of its lines")
                                      : r->file + " ends at its line " + std::to_string(r->last)),
                 key});
        }
    }

    // Under block, a process of this daemon that exited (killed, restarted, stopped) has every
    // line it wrote in its file: its pipe outlived it.
    void lost_findings(std::vector<Pending>& out) {
        for (const auto& [key, r] : runs_) {
            if (!ours(r) || r.drop || r.superseded || !r.gone || r.reported || r.last >= r.done)
                continue;
            out.push_back(
                {"log-nothing-lost",
                 "pid " + std::to_string(r.pid) + " of " + r.pool +
                     " (log_backpressure: block) exited after writing line " +
                     std::to_string(r.done) + ", but its file " +
                     (r.file.empty() ? std::string("has none of its lines")
                                     : r.file + " ends at its line " + std::to_string(r.last)),
                 key});
        }
    }

    // Under drop, `log.dropped_lines` equals what is missing (config/README.md). What a
    // process wrote is known only up to its progress counters, and lines may be in flight
    // (in a pipe, in the writer's queue) at any moment, so equality cannot be checked at an
    // arbitrary moment. Two bounds can, for each pool, over the processes of this daemon (the
    // counter starts with it, and goes on across a removal of the pool and an identity change):
    // - the gaps in the files (lines missing before a line that arrived) were dropped, so they
    //   are counted: gaps <= dropped. The writer counts a failed write on the loop, a moment
    //   after it wrote what came next: s1, the status read after the files, may lag, which
    //   the wait absorbs.
    // - what was counted by s0, the status read before the files, is missing from them and
    //   was written (the progress counters were read after the files): dropped <= the sum of
    //   (started - present). A process whose every line was dropped counts here too, as its
    //   progress file lists it.
    void drop_findings(const Status& s0, const Status& s1, std::vector<Pending>& out) {
        std::map<std::string, std::int64_t> gaps, written_missing;
        for (const auto& [key, r] : runs_) {
            if (!ours(r)) continue;
            // Under block a gap is a finding of its own, unless a reload to drop made it.
            if (r.drop || r.superseded) gaps[r.pool] += r.gaps;
            written_missing[r.pool] += std::max<std::int64_t>(0, r.started - r.present);
        }
        for (const auto& p : s1.pools) {
            if (tainted_.count(p.name) || !gaps.count(p.name)) continue;
            if (gaps[p.name] > p.dropped_lines)
                out.push_back({"log-drop-counted",
                               p.name + ": " + std::to_string(gaps[p.name]) +
                                   " lines are missing between lines that arrived, but its "
                                   "log.dropped_lines is " +
                                   std::to_string(p.dropped_lines) + ": " + runs_of(p.name),
                               p.name});
        }
        for (const auto& p : s0.pools) {
            if (tainted_.count(p.name) || p.dropped_lines <= 0) continue;
            const std::int64_t bound = written_missing.count(p.name) ? written_missing[p.name] : 0;
            if (p.dropped_lines > bound)
                out.push_back({"log-drop-counted",
                               p.name + ": log.dropped_lines is " +
                                   std::to_string(p.dropped_lines) + ", but at most " +
                                   std::to_string(bound) +
                                   " lines its chatter processes wrote are missing from its "
                                   "files: " +
                                   runs_of(p.name),
                               p.name});
        }
    }

    // The processes of this daemon in a pool, for a finding.
    std::string runs_of(const std::string& pool) const {
        std::string out;
        int n = 0;
        for (const auto& [key, r] : runs_) {
            if (!ours(r) || r.pool != pool) continue;
            if (++n > 6) {
                out += "; ...";
                break;
            }
            out += (out.empty() ? "" : "; ") + std::string("pid ") + std::to_string(r.pid) +
                   (r.drop ? " (drop" : " (block") + (r.gone ? ", exited)" : ")") + " wrote " +
                   std::to_string(r.done) + "-" + std::to_string(r.started) + " lines, " +
                   std::to_string(r.present) + " in " + (r.file.empty() ? "no file" : r.file) +
                   (r.present ? " (" + std::to_string(r.first) + ".." + std::to_string(r.last) +
                                    ", " + std::to_string(r.gaps) + " missing)"
                              : "");
        }
        return out.empty() ? "none of its processes is of this daemon" : out;
    }
};

}  // namespace cow::soak
