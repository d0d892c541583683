// Writes numbered lines for ever, for the operator soak's checks of captured output.
//
//   chatter EVERY_MS PROGRESS
//
// Every EVERY_MS ms one line "<pid> <start> <n>\n", n counting from 1, in one write(2) to
// stdout; <start> is the process's start time (/proc/self/stat, clock ticks since boot), so
// that a pid used again names another process. What it has written is kept, after every line,
// in the file PROGRESS.<pid>.<start>: two native 64-bit counters, the line about to be written
// and the last one written, so that a reader knows which lines may exist (up to the first)
// and which must (up to the second), whenever we are killed. Exits 1 when stdout fails.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static std::string start_time() {
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return "";
    buf[n] = '\0';
    // After the command's ")": state is field 3 of stat, starttime field 22.
    std::string s(buf);
    std::size_t pos = s.rfind(')');
    if (pos == std::string::npos) return "";
    pos += 2;
    for (int field = 3; field < 22; ++field) {
        pos = s.find(' ', pos);
        if (pos == std::string::npos) return "";
        ++pos;
    }
    return s.substr(pos, s.find(' ', pos) - pos);
}

int main(int argc, char** argv) {
    if (argc != 3) return 64;
    const long every_ms = std::atol(argv[1]);
    const std::string start = start_time();
    if (start.empty()) return 65;
    const std::string path = std::string(argv[2]) + "." + std::to_string(getpid()) + "." + start;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, 16) != 0) return 66;
    void* p = mmap(nullptr, 16, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 67;
    close(fd);
    volatile std::int64_t* progress = static_cast<volatile std::int64_t*>(p);
    const std::string head = std::to_string(getpid()) + " " + start + " ";
    const timespec pause{every_ms / 1000, (every_ms % 1000) * 1'000'000};
    for (std::int64_t n = 1;; ++n) {
        const std::string line = head + std::to_string(n) + "\n";
        progress[0] = n;
        // One write of a few bytes: a pipe takes it whole or not at all.
        if (write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
        progress[1] = n;
        nanosleep(&pause, nullptr);
    }
}
