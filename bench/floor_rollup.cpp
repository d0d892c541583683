// The floor for `cowctl mem`: a bare loop that reads /proc/PID/smaps_rollup once for each pid
// named in the file argv[1] (one per line) and prints the elapsed milliseconds. Nothing is
// parsed or printed per process: this is the kernel's cost alone.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    std::vector<int> pids;
    std::ifstream in(argv[1]);
    for (int p; in >> p;) pids.push_back(p);
    char buf[4096];
    char path[64];
    auto t0 = std::chrono::steady_clock::now();
    long bytes = 0;
    for (int pid : pids) {
        std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) bytes += n;
        close(fd);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%.3f\n", ms);
    return bytes > 0 ? 0 : 1;
}
