// `cowctl top`: one `top` request per refresh on one connection (reconnected when it drops),
// drawn with ncurses; or, without a terminal that can address its cursor, one plain snapshot.
// The model of the reply, the connection and the live view are top_model, top_link and
// top_screen.
#include "ctl/top.hpp"

#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/json.hpp>
#include <langinfo.h>
#include <unistd.h>

#include "core/escape.hpp"
#include "core/protocol_names.hpp"
#include "ctl/client.hpp"
#include "ctl/render.hpp"
#include "ctl/table.hpp"
#include "ctl/top_link.hpp"
#include "ctl/top_model.hpp"
#include "ctl/top_screen.hpp"

namespace cow::ctl {

namespace top {
namespace {

namespace proto = cow::proto;

constexpr int kOk = 0, kFailed = 1, kUnreachable = 3, kTimedOut = 4;

// ---- the plain snapshot ----------------------------------------------------------------------

bool utf8_locale() {
    const char* cs = nl_langinfo(CODESET);
    return cs && (std::strcmp(cs, "UTF-8") == 0 || std::strcmp(cs, "utf8") == 0);
}

std::string render_plain(const Snapshot& s, const std::string& socket, const std::string& pool,
                         bool utf8) {
    const Style style = detect_style();
    std::size_t shown_workers = 0;
    for (const auto& w : s.workers)
        shown_workers += pool.empty() || w.pool == pool;
    std::string out = "cowherd " + cow::escape_invisible(socket) + "  " +
                      std::to_string(pool.empty() ? s.pools.size() : 1) + " pools, " +
                      std::to_string(shown_workers) + " workers  " + sampling_text(s) +
                      (s.readonly ? "  readonly" : "") + "\n";
    for (const auto& p : s.pools)
        if (pool.empty() || p.name == pool) out += pool_line(p) + "\n";
    Table t(std::vector<std::string>(kTitles.begin(), kTitles.end()));
    for (const auto& w : s.workers) {
        if (!pool.empty() && w.pool != pool) continue;
        std::vector<std::string> row(w.cells.begin(), w.cells.end());
        row[c_state] = colored(style, row[c_state], state_color(w.state));
        row[c_spark] = w.points.empty() ? "-" : sparkline(w.points, kPoints, utf8);
        t.add(std::move(row));
    }
    return out + t.render();
}

// Prints a failure like the rest of cowctl: a line on stderr, and the error document under
// --json.
int fail(bool as_json, int rc, std::string_view code, const std::string& message) {
    if (as_json) {
        json::object e{{"error", json::object{{"code", code}, {"message", message}}}};
        std::printf("%s\n", json::serialize(e).c_str());
    }
    std::fprintf(stderr, "cowctl: %s\n", cow::escape_invisible(message).c_str());
    return rc;
}

}  // namespace
}  // namespace top

void add_top_options(CLI::App& top, TopOptions& o) {
    top.add_option("--interval", o.interval_s, "seconds between refreshes (default 1)")
        ->check(CLI::Range(0.1, 60.0));
    top.add_flag("--once", o.once, "print one snapshot as text and exit");
    top.add_option("--pool", o.pool, "show only this pool (f changes it)");
}

int run_top(const TopConnection& conn, const TopOptions& o) {
    using namespace top;
    std::setlocale(LC_ALL, "");
    std::setlocale(LC_NUMERIC, "C");  // numbers print with a dot, whatever the language
    const bool utf8 = utf8_locale();

    auto c = Client::connect(conn.socket, std::chrono::seconds(2));
    if (auto* u = std::get_if<Unreachable>(&c))
        return fail(conn.json, kUnreachable, "unreachable", u->message);
    auto& client = std::get<Client>(c);

    // --json prints the reply as it came, unless --pool keeps that pool's entry only.
    const bool raw = conn.json && o.pool.empty();
    auto r = client.call(proto::verb::top, top_args(), std::chrono::seconds(10), {}, raw);
    if (auto* u = std::get_if<Unreachable>(&r))
        return fail(conn.json, kUnreachable, "unreachable", u->message);
    if (auto* t = std::get_if<TimedOut>(&r))
        return fail(conn.json, kTimedOut, "client_timeout", t->message);
    auto& reply = std::get<proto::Reply>(r);
    if (!reply.ok) return fail(conn.json, kFailed, reply.error_code, "top: " + reply.error_message);
    if (conn.json) {
        if (!o.pool.empty() && reply.result.is_object()) {
            auto& doc = reply.result.as_object();
            json::array kept;
            if (auto* ps = doc.if_contains("pools"); ps && ps->is_array())
                for (auto& p : ps->as_array())
                    if (p.is_object() && p.as_object().if_contains("name") &&
                        p.as_object().at("name") == json::value(o.pool))
                        kept.push_back(p);
            if (kept.empty())
                return fail(true, kFailed, "no_such_pool",
                            "top: no pool named " + cow::escape_invisible(o.pool));
            doc["pools"] = std::move(kept);
        }
        if (!reply.raw_result.empty()) {
            std::fwrite(reply.raw_result.data(), 1, reply.raw_result.size(), stdout);
            std::fputc('\n', stdout);
        } else {
            std::printf("%s\n", json::serialize(reply.result).c_str());
        }
        return kOk;
    }
    Snapshot first = parse(reply.result);

    const bool live =
        !o.once && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO) && terminal_can_address_cursor();
    if (!live) {
        if (!o.pool.empty() && !has_pool(first, o.pool))
            return fail(false, kFailed, "no_such_pool",
                        "top: no pool named " + cow::escape_invisible(o.pool));
        std::fputs(render_plain(first, conn.socket, o.pool, utf8).c_str(), stdout);
        return kOk;
    }
    Link link(conn.socket, std::move(client));
    run_live(conn.socket, o, link, std::move(first), utf8);
    return kOk;
}

}  // namespace cow::ctl
