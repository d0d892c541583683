// A worker whose memory grows at a known rate, for the trend tests of `cowctl mem --history`.
//
//   leaker KIB_PER_S [--only INDEX] [--base MIB]
//
// Holds --base MiB of private memory, then makes KIB_PER_S more of it its own every second,
// linearly in time (every 10 ms it touches the pages due by then), up to 1 GiB. With --only,
// only the worker whose COWHERD_WORKER is INDEX grows; its siblings hold their base and idle.
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr std::size_t kMax = std::size_t{1} << 30;

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    const double rate = std::strtod(argv[1], nullptr) * 1024.0;  // bytes per second
    std::string only;
    std::size_t base = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string opt = argv[i];
        if (opt == "--only") only = argv[i + 1];
        if (opt == "--base") base = std::strtoul(argv[i + 1], nullptr, 10) << 20;
    }
    const char* me = std::getenv("COWHERD_WORKER");
    const bool grows = only.empty() || (me && only == me);
    void* m = mmap(nullptr, kMax, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return 70;
    // No transparent huge pages: growth must come a page at a time, as the rate says.
    madvise(m, kMax, MADV_NOHUGEPAGE);
    auto* p = static_cast<unsigned char*>(m);
    std::size_t touched = 0;
    auto touch_to = [&](std::size_t upto) {
        for (upto = upto < kMax ? upto : kMax; touched < upto; touched += 4096)
            p[touched] = 1;
    };
    touch_to(base);
    const double t0 = now_s();
    timespec next{};
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        if (grows) touch_to(base + static_cast<std::size_t>(rate * (now_s() - t0)));
        next.tv_nsec += 10'000'000;
        if (next.tv_nsec >= 1'000'000'000) {
            next.tv_nsec -= 1'000'000'000;
            ++next.tv_sec;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
    }
}
