// Writes numbered, checksummed lines as fast as it can, for the log-capture tests.
//
//   flood N [--payload BYTES] [--progress FILE] [--every-ms MS] [--batch K]
//
// Line i goes to stdout when i is even and to stderr when odd:
//   "o <seq> <payload> <checksum>\n" or "e <seq> ...", seq counting per stream from 0.
// Each line is one write(2), so a pipe never sees half of one. With --progress, the number of
// lines written so far is stored (after each write) in FILE, which the test reads after
// killing us to know what must have arrived (FILE.<pid>, one per process). --every-ms paces the
// lines. --batch K gathers K lines of a stream into one write(2) (for benchmarks: a writer that
// is not itself the bottleneck); the reader then sees lines split across reads. Exits 0 when
// done.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static std::uint32_t fnv(const std::string& s) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : s) {
        h ^= c;
        h *= 16777619u;
    }
    return h;
}

static bool write_all(int fd, const std::string& data) {
    const char* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w <= 0) return false;
        p += w;
        left -= static_cast<std::size_t>(w);
    }
    return true;
}

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    const long n = std::atol(argv[1]);
    std::size_t payload = 16;
    long every_ms = 0;
    long batch = 1;
    volatile std::int64_t* progress = nullptr;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--payload" && i + 1 < argc) payload = std::strtoul(argv[++i], nullptr, 10);
        if (a == "--every-ms" && i + 1 < argc) every_ms = std::atol(argv[++i]);
        if (a == "--batch" && i + 1 < argc) batch = std::max(1L, std::atol(argv[++i]));
        if (a == "--progress" && i + 1 < argc) {
            // One file per process: FILE.<pid>, so a restarted flood keeps the old count.
            std::string path = std::string(argv[++i]) + "." + std::to_string(getpid());
            int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || ftruncate(fd, 8) != 0) return 65;
            void* p = mmap(nullptr, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED) return 66;
            progress = static_cast<volatile std::int64_t*>(p);
        }
    }
    std::string fill(payload, 'x');
    long seq[2] = {0, 0};
    std::string pending[2];
    long queued[2] = {0, 0};
    long written = 0;
    for (long i = 0; i < n; ++i) {
        const int s = static_cast<int>(i & 1);
        for (std::size_t k = 0; k < payload; ++k)
            fill[k] = static_cast<char>('a' + (i + k) % 26);
        std::string body = std::to_string(seq[s]) + " " + fill;
        std::string line =
            std::string(s ? "e " : "o ") + body + " " + std::to_string(fnv(body)) + "\n";
        pending[s] += line;
        ++seq[s];
        if (++queued[s] < batch && i + 1 < n) continue;
        if (!write_all(s ? 2 : 1, pending[s])) return 67;
        written += queued[s];
        queued[s] = 0;
        pending[s].clear();
        if (progress) *progress = written;
        if (every_ms > 0) {
            timespec ts{every_ms / 1000, (every_ms % 1000) * 1'000'000};
            nanosleep(&ts, nullptr);
        }
    }
    for (int s = 0; s < 2; ++s)  // the other stream's last partial batch
        if (queued[s] > 0) {
            if (!write_all(s ? 2 : 1, pending[s])) return 67;
            written += queued[s];
            if (progress) *progress = written;
        }
    return 0;
}
