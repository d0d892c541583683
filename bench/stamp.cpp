// A worker for the replacement-latency benchmark (bench/spawn.py).
//
//   bench_stamp FILE
//
// On start it reads CLOCK_MONOTONIC first thing, appends "PID MONOTONIC_NS\n" to FILE with a
// single O_APPEND write (so concurrent workers never interleave a line), then pause()s until a
// signal kills it. Only libc is used, so its own start-up cost stays small and fixed.
#include <cstdio>

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (argc < 2) {
        static const char usage[] = "usage: bench_stamp FILE\n";
        (void)!write(2, usage, sizeof usage - 1);
        return 2;
    }
    char line[64];
    const long long ns = static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
    const int len = std::snprintf(line, sizeof line, "%d %lld\n", static_cast<int>(getpid()), ns);
    const int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, line, static_cast<size_t>(len)) != len) {
        std::perror(argv[1]);
        return 1;
    }
    close(fd);
    for (;;)
        pause();
}
