// Reports how it was started, as one line of key=value pairs written to the file named by
// argv[1]: open fds, blocked and ignored signals, session, process group, COWHERD_* env, and
// its identity and limits (uid, gid, groups, CapEff, NoNewPrivs, rlimits, umask, a few env).
// Then, with --stay, it waits for a signal; otherwise it exits 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

static std::string status_field(const char* key) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return "?";
    char line[512];
    std::string out = "?";
    size_t klen = std::strlen(key);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char* v = line + klen + 1;
            while (*v == ' ' || *v == '\t')
                ++v;
            out = v;
            while (!out.empty() && (out.back() == '\n'))
                out.pop_back();
        }
    }
    std::fclose(f);
    return out;
}

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    std::string fds;
    // Listing /proc/self/fd opens one fd itself; it is excluded by comparing with dirfd.
    DIR* d = opendir("/proc/self/fd");
    if (d) {
        int self = dirfd(d);
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            if (std::atoi(e->d_name) == self) continue;
            if (!fds.empty()) fds += ",";
            fds += e->d_name;
        }
        closedir(d);
    }
    struct rlimit nofile {
    }, core{}, nproc{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_CORE, &core);
    getrlimit(RLIMIT_NPROC, &nproc);
    mode_t mask = umask(0);
    umask(mask);
    auto lim = [](const struct rlimit& r) {
        auto v = [](rlim_t x) {
            return x == RLIM_INFINITY ? std::string("inf") : std::to_string(x);
        };
        return v(r.rlim_cur) + "/" + v(r.rlim_max);
    };
    auto env = [](const char* k) {
        const char* v = std::getenv(k);
        return std::string(v ? v : "-");
    };
    auto squash = [](std::string s) {
        for (char& c : s)
            if (c == ' ' || c == '\t') c = ',';
        while (!s.empty() && s.back() == ',')
            s.pop_back();
        return s;
    };
    std::size_t env_count = 0;
    for (char** e = environ; *e; ++e)
        ++env_count;
    char mask_s[8];
    std::snprintf(mask_s, sizeof mask_s, "%04o", static_cast<unsigned>(mask));
    std::string ids =
        " uid=" + squash(status_field("Uid")) + " gid=" + squash(status_field("Gid")) +
        " groups=" + squash(status_field("Groups")) + " capeff=" + status_field("CapEff") +
        " nnp=" + status_field("NoNewPrivs") + " nofile=" + lim(nofile) + " core=" + lim(core) +
        " nproc=" + lim(nproc) + " umask=" + mask_s + " home=" + env("HOME") +
        " user=" + env("USER") + " foo=" + env("FOO") + " envcount=" + std::to_string(env_count) +
        " oom=" + [] {
            FILE* f = std::fopen("/proc/self/oom_score_adj", "r");
            int v = 0;
            if (f) {
                if (std::fscanf(f, "%d", &v) != 1) v = 0;
                std::fclose(f);
            }
            return std::to_string(v);
        }();
    const char* pool = std::getenv("COWHERD_POOL");
    const char* worker = std::getenv("COWHERD_WORKER");
    std::string line = "pid=" + std::to_string(getpid()) + " ppid=" + std::to_string(getppid()) +
                       " pgid=" + std::to_string(getpgid(0)) + " sid=" + std::to_string(getsid(0)) +
                       " fds=" + fds + " sigblk=" + status_field("SigBlk") +
                       " sigign=" + status_field("SigIgn") + " pool=" + (pool ? pool : "") +
                       " worker=" + (worker ? worker : "") + ids + "\n";
    std::string tmp = std::string(argv[1]) + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return 65;
    if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 66;
    close(fd);
    // Rename makes the report appear atomically for a test polling for it.
    if (rename(tmp.c_str(), argv[1]) != 0) return 67;
    if (argc > 2 && std::strcmp(argv[2], "--stay") == 0)
        for (;;)
            pause();
    return 0;
}
