// In-place upgrade (cowctl upgrade, SIGUSR2): the state document one daemon image hands the
// next, and the next image's way back to the previous one if it cannot take that state up.
//
// The document is JSON with a format name and a version: a reader refuses a major version it
// does not know and ignores keys it does not know, so a minor version may add keys in either
// direction. Each room writes and reads its own section (Supervisor, Output); the daemon's
// section holds what crosses execve besides (fds, the config text, the original argv).
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/json.hpp>

namespace cow::upgrade {

inline constexpr int kMajor = 1;
inline constexpr int kMinor = 0;
inline constexpr std::string_view kFormat = "cowherd-state";
// argv options between images; not for operators.
inline constexpr std::string_view kStateOption = "--upgrade-state";
inline constexpr std::string_view kCheckOption = "--check-upgrade";
inline constexpr std::string_view kRollbackOption = "--upgrade-rollback";
// Why the image that was executed gave back: set for the previous image, which logs it.
inline constexpr const char* kFailedEnv = "COWHERD_UPGRADE_FAILED";

// The document's header, for a writer.
boost::json::object header();

// Reads the state document in fd, or says why it is no JSON object. The version is checked
// apart (check_version), after arm_rollback: the way back must work for any version, so
// daemon.exe_fd and daemon.argv mean the same in every version of the format.
std::variant<boost::json::object, std::string> read_json(int fd);
std::variant<boost::json::object, std::string> parse_json(std::string_view text);
// A section of the document (an object), or an empty one: a reader ignores what is missing.
const boost::json::object& section(const boost::json::object& o, std::string_view key);

// Why this build cannot read the document (another format, an unknown major version), or "".
std::string check_version(const boost::json::object& state);

// The image that takes a state up may fail before it is ready: a state it cannot read, a
// crash (a signal that kills), or no ready within `deadline`. Armed, each of these executes
// the previous image with the same state and a reason; only the first image of a rollback
// is armed (a rollback never rolls back). Everything the signal path needs is allocated here.
void arm_rollback(const boost::json::object& state, int state_fd, unsigned deadline_seconds);
// Ready: the new image keeps going; the previous binary's fd is closed.
void disarm_rollback();
// Executes the previous image now; returns only if that failed, and logs why.
void rollback(const std::string& why);

}  // namespace cow::upgrade
