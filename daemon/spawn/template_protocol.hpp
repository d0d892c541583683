// cowherd's side of the template protocol (`spawn: template`; the protocol itself is described
// in template/cowtemplate.h): fork requests out, with their fds, and the template's answers in.
// Pure encoding and decoding, plus the one sendmsg that carries the fds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace cow::spawn {

struct TemplateReply {
    enum class Kind { ready, forked, failed, bad };
    Kind kind = Kind::bad;
    std::uint64_t id = 0;
    pid_t pid = 0;
    std::string why;  // failed: the template's sentence; bad: what was wrong with the message
};

// "fork ID\nKEY=VALUE\n...": every entry must hold '=' and no '\n' (checked by the caller's
// config; an entry that does not is dropped rather than corrupting the message).
std::string encode_fork(std::uint64_t id, const std::vector<std::string>& env);

TemplateReply parse_reply(std::string_view message);

// One packet with `fds` attached (the go pipe's read end, stdout, stderr, listening sockets).
// Returns 0, or an errno.
int send_fork(int sock, const std::string& message, const std::vector<int>& fds);

}  // namespace cow::spawn
