#include "ctl/top_link.hpp"

#include <exception>
#include <thread>
#include <variant>

#include "core/escape.hpp"
#include "core/protocol_names.hpp"
#include "ctl/top_model.hpp"

namespace cow::ctl::top {

namespace {

namespace proto = cow::proto;
using std::chrono::milliseconds;

std::string error_text(const proto::Reply& r) {
    return cow::escape_invisible(r.error_message.empty() ? r.error_code : r.error_message);
}

}  // namespace

Outcome Link::call(std::string_view verb, const json::object& args, milliseconds wait) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool fresh = !client_;
        if (!client_) {
            auto c = Client::connect(path_, milliseconds(1000));
            if (auto* u = std::get_if<Unreachable>(&c))
                return {std::nullopt, cow::escape_invisible(u->message), true};
            client_.emplace(std::move(std::get<Client>(c)));
        }
        auto r = client_->call(verb, args, wait);
        if (auto* u = std::get_if<Unreachable>(&r)) {
            client_.reset();
            if (fresh) return {std::nullopt, cow::escape_invisible(u->message), true};
            continue;  // the daemon restarted, or dropped an idle client: once more
        }
        if (auto* t = std::get_if<TimedOut>(&r)) {
            client_.reset();  // its late reply must not answer the next request
            return {std::nullopt, cow::escape_invisible(t->message), false};
        }
        auto& reply = std::get<proto::Reply>(r);
        if (!reply.ok) return {std::nullopt, error_text(reply), false};
        return {std::move(reply.result), {}, false};
    }
    return {std::nullopt, "cannot reach cowherd at " + cow::escape_invisible(path_), true};
}

json::object top_args(std::optional<double> have_samples) {
    json::object a{{proto::arg::points, kPoints}};
    if (have_samples) a[proto::arg::have_samples] = static_cast<std::int64_t>(*have_samples);
    return a;
}

std::shared_ptr<Action> launch(const std::string& socket, std::string label, std::string verb,
                               json::object args, milliseconds wait,
                               std::string (*ok_text)(const std::string&, const json::value&)) {
    auto st = std::make_shared<Action>();
    std::thread([st, socket, label = std::move(label), verb = std::move(verb),
                 args = std::move(args), wait, ok_text] {
        std::string out;
        try {
            auto c = Client::connect(socket, milliseconds(2000));
            if (auto* u = std::get_if<Unreachable>(&c)) {
                out = label + ": " + cow::escape_invisible(u->message);
            } else {
                auto r = std::get<Client>(c).call(verb, args, wait);
                if (auto* u2 = std::get_if<Unreachable>(&r))
                    out = label + ": " + cow::escape_invisible(u2->message);
                else if (auto* t = std::get_if<TimedOut>(&r))
                    out = label + ": " + cow::escape_invisible(t->message);
                else if (auto& reply = std::get<proto::Reply>(r); !reply.ok)
                    out = label + ": " + error_text(reply);
                else
                    out = ok_text(label, reply.result);
            }
        } catch (const std::exception& e) {
            out = label + ": " + e.what();
        }
        std::lock_guard lock(st->m);
        st->result = std::move(out);
        st->done = true;
    }).detach();
    return st;
}

std::string requested(const std::string& label, const json::value&) {
    return label + ": requested";
}

std::string scaled(const std::string& label, const json::value& v) {
    if (!v.is_object()) return label + ": done";
    const auto& r = v.get_object();
    const auto from = number(r, "from"), to = number(r, "to");
    if (!from || !to) return label + ": done";
    return "pool " + cow::escape_invisible(text(r, "pool")) + ": " + count_text(from) + " -> " +
           count_text(to) + " workers";
}

}  // namespace cow::ctl::top
