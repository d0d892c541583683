// `cowctl top`'s requests: the refreshes, on one connection kept across them, and the write
// requests, each on a thread and a connection of its own.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json.hpp>

#include "ctl/client.hpp"

namespace cow::ctl::top {

namespace json = boost::json;

inline constexpr std::chrono::milliseconds kCallTimeout{5000};

struct Outcome {
    std::optional<json::value> result;  // set when ok
    std::string error;                  // else why not
    bool unreachable = false;
};

// One connection, kept across refreshes; a call on a dropped one reconnects once.
class Link {
  public:
    // `first`: the connection the first request went on.
    Link(std::string path, Client first) : path_(std::move(path)) {
        client_.emplace(std::move(first));
    }

    Outcome call(std::string_view verb, const json::object& args,
                 std::chrono::milliseconds wait = kCallTimeout);

  private:
    std::string path_;
    std::optional<Client> client_;
};

// The `top` request's arguments: as many USS points as the sparkline shows.
// have_samples: the "samples" of the last reply, if any (see proto::arg::have_samples).
json::object top_args(std::optional<double> have_samples = std::nullopt);

// A write request runs on a thread of its own, on a connection of its own: `scale` replies
// only once the pool has settled, and the screen goes on meanwhile.
struct Action {
    std::mutex m;
    bool done = false;
    std::string result;
};

std::shared_ptr<Action> launch(const std::string& socket, std::string label, std::string verb,
                               json::object args, std::chrono::milliseconds wait,
                               std::string (*ok_text)(const std::string&, const json::value&));

// launch()'s ok_text: the status line once a restart, stop or start was taken...
std::string requested(const std::string& label, const json::value&);
// ...and once a scale has settled: the pool's size before and after.
std::string scaled(const std::string& label, const json::value& v);

}  // namespace cow::ctl::top
