#include "daemon/spawn/template_protocol.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>

#include <sys/socket.h>

namespace cow::spawn {
namespace {

bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

// "ID REST": the id and what follows the space after it.
bool split_id(std::string_view rest, std::uint64_t& id, std::string_view& tail) {
    const auto sp = rest.find(' ');
    if (!parse_u64(rest.substr(0, sp), id)) return false;
    tail = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    return true;
}

}  // namespace

std::string encode_fork(std::uint64_t id, const std::vector<std::string>& env) {
    std::string m = "fork " + std::to_string(id);
    for (const auto& e : env) {
        if (e.find('=') == std::string::npos || e.find('\n') != std::string::npos) continue;
        m += '\n';
        m += e;
    }
    return m;
}

TemplateReply parse_reply(std::string_view m) {
    TemplateReply r;
    while (!m.empty() && (m.back() == '\n' || m.back() == '\0'))
        m.remove_suffix(1);
    std::string_view tail;
    if (m == "ready") {
        r.kind = TemplateReply::Kind::ready;
    } else if (m.starts_with("forked ") && split_id(m.substr(7), r.id, tail)) {
        std::uint64_t pid = 0;
        if (parse_u64(tail, pid) && pid > 1 && pid < (1u << 22)) {
            r.kind = TemplateReply::Kind::forked;
            r.pid = static_cast<pid_t>(pid);
        } else {
            r.why = "not a pid: \"" + std::string(tail) + "\"";
        }
    } else if (m.starts_with("failed ") && split_id(m.substr(7), r.id, tail)) {
        r.kind = TemplateReply::Kind::failed;
        r.why = tail.empty() ? "(no reason given)" : std::string(tail);
    } else {
        r.why = "not a template message: \"" + std::string(m.substr(0, 80)) + "\"";
    }
    return r;
}

int send_fork(int sock, const std::string& message, const std::vector<int>& fds) {
    iovec iov{const_cast<char*>(message.data()), message.size()};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        mh.msg_control = control.data();
        mh.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        if (!c) return EINVAL;  // not with a control buffer this size, but said so
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        if (::sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0) return 0;
        if (errno != EINTR) return errno;
    }
}

}  // namespace cow::spawn
