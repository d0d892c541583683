// A cgroup v2 of its own for the daemon under test, so that whatever the daemon does to "its
// own cgroup" reaches only the daemon, its workers and a sentinel placed there on purpose, and
// never the test runner or the rest of the machine. Unused (and harmless) where cgroup v2 is not
// writable: the daemon then has no cgroups either.
#pragma once

#include <cerrno>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/soak_procs.hpp"

namespace cow::soak {

class CgroupSandbox {
  public:
    // Creates <our cgroup>/<name>; path() is "" when that is not possible.
    explicit CgroupSandbox(const std::string& name) {
        std::string mount;
        std::string info = read_proc_file("/proc/self/mountinfo");
        std::size_t pos = 0;
        while (pos < info.size() && mount.empty()) {
            std::size_t end = info.find('\n', pos);
            if (end == std::string::npos) end = info.size();
            std::string line = info.substr(pos, end - pos);
            pos = end + 1;
            auto sep = line.find(" - cgroup2 ");
            if (sep == std::string::npos) continue;
            // id parent maj:min root mountpoint ...: the root must be "/".
            std::vector<std::string> f;
            std::size_t p = 0;
            while (p < sep && f.size() < 5) {
                std::size_t q = line.find(' ', p);
                f.push_back(line.substr(p, q - p));
                p = q + 1;
            }
            if (f.size() == 5 && f[3] == "/") mount = f[4];
        }
        if (mount.empty()) return;
        std::string self = read_proc_file("/proc/self/cgroup");
        auto at = self.find("0::");
        if (at == std::string::npos) return;
        std::string rel = self.substr(at + 3, self.find('\n', at) - at - 3);
        std::string dir = mount + (rel == "/" ? "" : rel) + "/" + name;
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return;
        if (::access((dir + "/cgroup.procs").c_str(), W_OK) != 0) {
            ::rmdir(dir.c_str());
            return;
        }
        path_ = dir;
    }
    ~CgroupSandbox() { remove(); }
    CgroupSandbox(const CgroupSandbox&) = delete;
    CgroupSandbox& operator=(const CgroupSandbox&) = delete;

    const std::string& path() const { return path_; }

    // argv that joins the sandbox, then execs `argv`.
    std::vector<std::string> wrap(const std::vector<std::string>& argv) const {
        if (path_.empty()) return argv;
        std::vector<std::string> out{"/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"",
                                     path_ + "/cgroup.procs"};
        out.insert(out.end(), argv.begin(), argv.end());
        return out;
    }

    // Kills whatever is left in it (cgroup.kill) and removes it, deepest first.
    void remove() {
        if (path_.empty()) return;
        int fd = ::open((path_ + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)!::write(fd, "1", 1);
            ::close(fd);
        }
        for (int round = 0; round < 200 && rmdir_tree(path_); ++round)
            ::poll(nullptr, 0, 10);
        path_.clear();
    }

  private:
    // True while something could not be removed yet.
    static bool rmdir_tree(const std::string& dir) {
        bool left = false;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d))
                if (e->d_name[0] != '.' && e->d_type == DT_DIR)
                    left |= rmdir_tree(dir + "/" + e->d_name);
            ::closedir(d);
        }
        return (::rmdir(dir.c_str()) != 0 && errno != ENOENT) || left;
    }

    std::string path_;
};

}  // namespace cow::soak
