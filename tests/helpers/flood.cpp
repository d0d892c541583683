// Writes numbered, checksummed lines as fast as it can, for the log-capture tests.
//
//   flood N [--payload BYTES] [--progress FILE] [--every-ms MS] [--batch K]
//         [--pregen [--sizes FILE]]
//
// Line i goes to stdout when i is even and to stderr when odd:
//   "o <seq> <payload> <checksum>\n" or "e <seq> ...", seq counting per stream from 0.
// Each line is one write(2), so a pipe never sees half of one. With --progress, the number of
// lines written so far is stored (after each write) in FILE, which the test reads after
// killing us to know what must have arrived (FILE.<pid>, one per process). --every-ms paces the
// lines. --batch K gathers K lines of a stream into one write(2) (for benchmarks: a writer that
// is not itself the bottleneck); the reader then sees lines split across reads. --pregen
// formats every line in memory before the first write, so what is measured is the capture,
// not the formatting (the checksums alone cost more than a pipe write); with --sizes, the two
// streams' byte counts ("OUT ERR\n") go to FILE, written and renamed into place just before
// the first write. Exits 0 when done.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

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

// Line i of the whole run, as the plain loop in main() formats it.
static void append_line(std::string& out, long i, long seq, std::string& fill) {
    for (std::size_t k = 0; k < fill.size(); ++k)
        fill[k] = static_cast<char>('a' + (i + static_cast<long>(k)) % 26);
    out += (i & 1) ? "e " : "o ";
    const std::size_t body = out.size();
    out += std::to_string(seq);
    out += ' ';
    out += fill;
    std::uint32_t h = 2166136261u;
    for (std::size_t k = body; k < out.size(); ++k) {
        h ^= static_cast<unsigned char>(out[k]);
        h *= 16777619u;
    }
    out += ' ';
    out += std::to_string(h);
    out += '\n';
}

// --pregen: every line formatted first, then `batch` whole lines per write(2), the streams
// taking turns, so the reader is the only thing that can be slow.
static int pregen_run(long n, std::size_t payload, long batch, const std::string& sizes) {
    std::string all[2];
    std::vector<std::size_t> cuts[2];  // where each write ends
    std::string fill(payload, 'x');
    const std::size_t guess = static_cast<std::size_t>(n / 2 + 1) * (payload + 24);
    for (auto& a : all)
        a.reserve(guess);
    long seq[2] = {0, 0};
    for (long i = 0; i < n; ++i) {
        const int s = static_cast<int>(i & 1);
        append_line(all[s], i, seq[s], fill);
        if (++seq[s] % batch == 0 || i + 2 >= n) cuts[s].push_back(all[s].size());
    }
    if (!sizes.empty()) {
        const std::string tmp = sizes + ".tmp";
        FILE* f = std::fopen(tmp.c_str(), "w");
        if (!f) return 68;
        std::fprintf(f, "%zu %zu\n", all[0].size(), all[1].size());
        if (std::fclose(f) != 0 || std::rename(tmp.c_str(), sizes.c_str()) != 0) return 68;
    }
    std::size_t at[2] = {0, 0}, next[2] = {0, 0};
    while (next[0] < cuts[0].size() || next[1] < cuts[1].size()) {
        for (int s = 0; s < 2; ++s) {
            if (next[s] >= cuts[s].size()) continue;
            const std::size_t end = cuts[s][next[s]++];
            const char* p = all[s].data() + at[s];
            std::size_t left = end - at[s];
            while (left > 0) {
                ssize_t w = write(s ? 2 : 1, p, left);
                if (w <= 0) return 67;
                p += w;
                left -= static_cast<std::size_t>(w);
            }
            at[s] = end;
        }
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 2) return 64;
    const long n = std::atol(argv[1]);
    std::size_t payload = 16;
    long every_ms = 0;
    long batch = 1;
    volatile std::int64_t* progress = nullptr;
    bool pregen = false;
    std::string sizes;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--payload" && i + 1 < argc) payload = std::strtoul(argv[++i], nullptr, 10);
        if (a == "--every-ms" && i + 1 < argc) every_ms = std::atol(argv[++i]);
        if (a == "--batch" && i + 1 < argc) batch = std::max(1L, std::atol(argv[++i]));
        if (a == "--pregen") pregen = true;
        if (a == "--sizes" && i + 1 < argc) sizes = argv[++i];
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
    if (pregen) return pregen_run(n, payload, batch, sizes);
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
