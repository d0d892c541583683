#include "core/proc/stat.hpp"

#include "core/proc/text.hpp"

namespace cow::proc {

std::optional<Stat> parse_stat(std::string_view line) {
    auto open = line.find('(');
    auto close = line.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        return std::nullopt;
    }
    Stat st;
    auto pid = text::to_number<pid_t>(text::trim(line.substr(0, open)));
    if (!pid || *pid <= 0) return std::nullopt;
    st.pid = *pid;
    st.comm = std::string(line.substr(open + 1, close - open - 1));

    // Fields are numbered as in proc_pid_stat(5): state is field 3, rss field 24.
    std::string_view rest = line.substr(close + 1);
    std::string_view f[25];
    for (int i = 3; i <= 24; ++i) {
        f[i] = text::next_token(rest);
        if (f[i].empty()) return std::nullopt;
    }
    if (f[3].size() != 1) return std::nullopt;
    st.state = f[3][0];

    auto ppid = text::to_number<pid_t>(f[4]);
    auto pgrp = text::to_number<pid_t>(f[5]);
    auto session = text::to_number<pid_t>(f[6]);
    auto flags = text::to_number<std::uint32_t>(f[9]);
    auto utime = text::to_number<std::uint64_t>(f[14]);
    auto stime = text::to_number<std::uint64_t>(f[15]);
    auto threads = text::to_number<std::int64_t>(f[20]);
    auto start = text::to_number<std::uint64_t>(f[22]);
    auto vsize = text::to_number<std::uint64_t>(f[23]);
    auto rss = text::to_number<std::uint64_t>(f[24]);
    if (!ppid || !pgrp || !session || !flags || !utime || !stime || !threads || !start || !vsize ||
        !rss) {
        return std::nullopt;
    }
    st.ppid = *ppid;
    st.pgrp = *pgrp;
    st.session = *session;
    st.flags = *flags;
    st.utime = *utime;
    st.stime = *stime;
    st.num_threads = *threads;
    st.starttime = *start;
    st.vsize = *vsize;
    st.rss_pages = *rss;
    return st;
}

}  // namespace cow::proc
