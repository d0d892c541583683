#include "ctl/render.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include "core/escape.hpp"
#include "core/protocol_names.hpp"
#include "core/units.hpp"

namespace cow::ctl {
namespace json = boost::json;

namespace {

std::string str(const json::value* v) {
    if (!v || v->is_null()) return "-";
    if (v->is_string()) return std::string(v->get_string());
    if (v->is_int64()) return std::to_string(v->get_int64());
    if (v->is_uint64()) return std::to_string(v->get_uint64());
    if (v->is_bool()) return v->get_bool() ? "true" : "false";
    return json::serialize(*v);
}

// str() for display: what may echo user input comes out with invisible characters escaped.
std::string text(const json::value* v) {
    return escape_invisible(str(v));
}

std::int64_t num(const json::value* v) {
    if (!v) return 0;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
    return 0;
}

std::string info_of(const json::object& w) {
    if (const auto* e = w.if_contains("error"); e && e->is_string()) return text(e);
    const auto* st = w.if_contains("state");
    std::string state = text(st);
    if (state == proto::state::running || state == proto::state::starting) {
        if (const auto* pr = w.if_contains("probe"); pr && pr->is_string())
            return "probe " + text(pr);
        if (const auto* s = w.if_contains("status_text"); s && s->is_string()) return text(s);
        return "";
    }
    if (const auto* r = w.if_contains("reason"); r && r->is_string()) return text(r);
    return "";
}

void add_worker_row(Table& t, const json::object& w, const Style& style) {
    std::string state = text(w.if_contains("state"));
    std::string uptime = "-";
    if (const auto* pid = w.if_contains("pid"); pid && !pid->is_null())
        uptime = format_duration(Millis(num(w.if_contains("uptime_ms"))));
    t.add({text(w.if_contains("name")), colored(style, state, state_color(state)),
           text(w.if_contains("pid")), uptime, text(w.if_contains("restarts")), info_of(w)});
}

void tree_lines(std::string& out, const json::object& node, const std::string& prefix, bool last,
                bool root, const Style& style) {
    std::string line = prefix;
    if (!root) line += last ? "└─ " : "├─ ";
    line += colored(style, text(node.if_contains("pid")), "1");
    line += " " + text(node.if_contains("cmd"));
    line += colored(style,
                    "  (" + text(node.if_contains("state")) + ", " +
                        format_duration(Millis(num(node.if_contains("uptime_ms")))) + ")",
                    "2");
    out += line + "\n";
    const auto* kids = node.if_contains("children");
    if (!kids || !kids->is_array()) return;
    const auto& arr = kids->get_array();
    std::string child_prefix = root ? prefix : prefix + (last ? "   " : "│  ");
    for (std::size_t i = 0; i < arr.size(); ++i)
        tree_lines(out, arr[i].as_object(), child_prefix, i + 1 == arr.size(), false, style);
}

void orphan_lines(std::string& out, const json::array& orphans, const Style& style) {
    for (const auto& ov : orphans) {
        const auto& o = ov.as_object();
        out += "  orphan from " + text(o.if_contains("from")) + ":\n";
        if (const auto* t = o.if_contains("tree"); t && t->is_object())
            tree_lines(out, t->as_object(), "    ", true, true, style);
        else
            out += "    " + text(o.if_contains("pid")) + " " + text(o.if_contains("cmd")) + "\n";
    }
}

}  // namespace

std::string render_tree(const json::value& result, const Style& style) {
    std::string out;
    const auto& r = result.as_object();
    if (const auto* pools = r.if_contains("pools"); pools && pools->is_array()) {
        for (const auto& pv : pools->get_array()) {
            const auto& p = pv.as_object();
            out += colored(style, "pool " + text(p.if_contains("name")), "1") + "\n";
            if (const auto* ws = p.if_contains("workers"); ws && ws->is_array()) {
                for (const auto& wv : ws->get_array()) {
                    const auto& w = wv.as_object();
                    std::string state = text(w.if_contains("state"));
                    out += "  " + text(w.if_contains("name")) + " " +
                           colored(style, state, state_color(state)) + "\n";
                    if (const auto* t = w.if_contains("tree"); t && t->is_object())
                        tree_lines(out, t->as_object(), "    ", true, true, style);
                }
            }
            if (const auto* os = p.if_contains("orphans"); os && os->is_array())
                orphan_lines(out, os->get_array(), style);
        }
    }
    if (const auto* os = r.if_contains("orphans");
        os && os->is_array() && !os->get_array().empty()) {
        out += colored(style, "orphans of unknown origin", "1") + "\n";
        orphan_lines(out, os->get_array(), style);
    }
    return out;
}

std::string render_progress(const json::value& item) {
    const auto& p = item.as_object();
    return text(p.if_contains("worker")) + " replaced: pid " + text(p.if_contains("old_pid")) +
           " -> " + text(p.if_contains("new_pid")) + " (" + text(p.if_contains("done")) + "/" +
           text(p.if_contains("total")) + ")\n";
}

std::string progress_bar(const json::value& item) {
    const auto& p = item.as_object();
    const std::int64_t done = num(p.if_contains("done")), total = num(p.if_contains("total"));
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(done * kWidth / total) : 0;
    return "[" + std::string(static_cast<std::size_t>(filled), '#') +
           std::string(static_cast<std::size_t>(kWidth - filled), '.') + "] " +
           std::to_string(done) + "/" + std::to_string(total);
}

std::string render_log_line(const json::value& line, const Style& style) {
    const auto& l = line.as_object();
    const bool err = str(l.if_contains("stream")) == proto::stream::err;
    std::string out =
        colored(style, str(l.if_contains("worker")) + (err ? " !" : " |"), err ? "31" : "36") +
        " " + str(l.if_contains("line"));
    if (const auto* c = l.if_contains("continued"); c && c->is_bool() && c->get_bool())
        out += colored(style, " [continues]", "2");
    return out + "\n";
}

std::string render_event(const json::value& event, const Style& style) {
    if (!event.is_object()) return {};
    const auto& e = event.get_object();
    std::string when = "--:--:--.---";
    if (const auto* ts = e.if_contains("ts_ms"); ts && (ts->is_int64() || ts->is_uint64())) {
        const auto ms = ts->to_number<std::int64_t>();
        const std::time_t secs = static_cast<std::time_t>(ms / 1000);
        std::tm tm{};
        char buf[32];
        if (localtime_r(&secs, &tm) && std::strftime(buf, sizeof buf, "%H:%M:%S", &tm) > 0)
            when = std::string(buf) + "." + std::to_string(1000 + ms % 1000).substr(1);
    }
    const std::string kind = str(e.if_contains("kind"));
    // What needs a look stands out: exits other than a clean one, probe failures, fatal.
    const char* color = nullptr;
    if (kind == "exit" && str(e.if_contains("cause")) != "exited") color = "31";
    if (kind == "probe" || kind == "recycle") color = "33";
    if (kind == "transition" && str(e.if_contains("to")) == "fatal") color = "31";
    const std::string msg = text(e.if_contains("msg"));
    return colored(style, when, "2") + " " + (color ? colored(style, msg, color) : msg) + "\n";
}

std::string render_plan(const json::value& result, PlanStage stage) {
    const auto& r = result.as_object();
    std::string out = stage == PlanStage::dry_run    ? "reload plan (dry run, nothing applied):\n"
                      : stage == PlanStage::applying ? "reload plan (applying it now):\n"
                                                     : "reload applied:\n";
    Table t({"POOL", "CHANGE", "ACTION", "SETTINGS"});
    static const json::array kNone;
    const auto* pools = r.if_contains("pools");
    for (const auto& pv : pools && pools->is_array() ? pools->get_array() : kNone) {
        if (!pv.is_object()) continue;
        const auto& p = pv.as_object();
        std::string keys;
        if (const auto* ks = p.if_contains("keys"); ks && ks->is_array())
            for (const auto& k : ks->get_array())
                keys += (keys.empty() ? "" : ", ") + text(&k);
        t.add({text(p.if_contains("name")), text(p.if_contains("change")),
               text(p.if_contains("action")), keys});
    }
    out += t.render();
    if (const auto* d = r.if_contains("daemon_changed");
        d && d->is_array() && !d->get_array().empty()) {
        std::string keys;
        for (const auto& k : d->get_array())
            keys += (keys.empty() ? "" : ", ") + text(&k);
        out += "daemon settings changed: " + keys + "\n";
    }
    if (const auto* n = r.if_contains("note")) out += text(n) + "\n";
    return out;
}

std::string render_health(const json::value& result) {
    const auto& r = result.as_object();
    std::string out;
    bool healthy = r.at("healthy").as_bool();
    out += healthy ? "healthy" : "unhealthy";
    if (const auto* c = r.if_contains("checked"); c && c->is_array()) {
        out += " (pools:";
        for (const auto& p : c->get_array())
            out += " " + text(&p);
        out += ")";
    }
    out += "\n";
    if (const auto* ps = r.if_contains("problems"); ps && ps->is_array())
        for (const auto& p : ps->get_array())
            out += "  " + text(&p) + "\n";
    return out;
}

namespace {

std::string size_of(const json::value* v) {
    if (!v || v->is_null()) return "-";
    return format_size(static_cast<std::uint64_t>(num(v)));
}

std::string size_at(const json::object& o, std::string_view key) {
    return size_of(o.if_contains(key));
}

double real(const json::value* v) {
    if (!v) return 0;
    if (v->is_double()) return v->get_double();
    return static_cast<double>(num(v));
}

// "+12.0 MiB/h", "leak?" when the daemon judged it one, and the time to max_private.
std::string trend_text(const json::value* t) {
    if (!t || !t->is_object() || t->get_object().empty()) return "-";
    const auto& o = t->get_object();
    const double per_hour = real(o.if_contains("uss_per_hour"));
    std::string out = (per_hour < 0 ? "-" : "+") +
                      format_size(static_cast<std::uint64_t>(std::fabs(per_hour))) + "/h";
    if (const auto* l = o.if_contains("leak"); l && l->is_bool() && l->get_bool()) out += " leak?";
    if (const auto* r = o.if_contains("recycle_in_s"); r && r->is_number())
        out += " recycle in " + format_duration(Millis(static_cast<std::int64_t>(real(r) * 1000)));
    return out;
}

bool utf8_locale() {
    for (const char* var : {"LC_ALL", "LC_CTYPE", "LANG"}) {
        const char* v = std::getenv(var);
        if (!v || !*v) continue;
        std::string s(v);
        for (auto& c : s)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s.find("utf-8") != std::string::npos || s.find("utf8") != std::string::npos;
    }
    return false;
}

}  // namespace

std::string render_mem(const json::value& result, const Style& style) {
    std::string out;
    const auto* pools = result.as_object().if_contains("pools");
    if (!pools || !pools->is_array()) return "no pools\n";
    for (const auto& pv : pools->get_array()) {
        const auto& p = pv.as_object();
        const auto& t = p.at("totals").as_object();
        out += colored(style, "pool " + text(p.if_contains("name")), "1") + ": footprint " +
               size_at(t, "footprint") + " (pss " + size_at(t, "pss") + " + swap_pss " +
               size_at(t, "swap_pss") + "), uss " + size_at(t, "uss") + ", saved by sharing " +
               size_at(t, "saved") +
               " (rss_sum - pss, includes libraries shared with other programs)";
        if (const auto* c = p.if_contains("cow_lost"); c && c->is_object())
            out += ", cow_lost " + size_at(c->as_object(), "private_dirty_growth");
        if (p.contains("saved_vs_exec"))
            out += ", saved vs fork-exec " + size_at(p, "saved_vs_exec") +
                   " (anonymous pages held once, not once per worker)";
        out += "\n";
        Table tb({"WORKER", "PID", "RSS", "PSS", "USS", "SHR_CLEAN", "SHR_DIRTY", "PRIV_CLEAN",
                  "PRIV_DIRTY", "SWAP_PSS", "COW_LOST", "TREE_PSS", "TREE_USS", "PROCS", "TREND"});
        for (const auto& wv : p.at("workers").as_array()) {
            const auto& w = wv.as_object();
            const auto& procs = w.at("processes").as_array();
            const auto* self = w.if_contains("self");
            auto is_orphan = [](const json::object& pr) {
                const auto* o = pr.if_contains("orphan");
                return o && o->is_bool() && o->get_bool();
            };
            std::size_t tree_procs = 0;  // like TREE_PSS, without the orphans
            for (const auto& pr : procs)
                tree_procs += !is_orphan(pr.as_object());
            if (!self || !self->is_object()) {
                tb.add({text(w.if_contains("name")), text(w.if_contains("pid")), "-", "-", "-", "-",
                        "-", "-", "-", "-", "-", "-", "-", text(w.if_contains("status")), ""});
            } else {
                const auto& m = self->as_object();
                const auto& tree = w.at("tree").as_object();
                const auto* cow = w.if_contains("cow_lost");
                std::string cow_lost = cow && cow->is_object()
                                           ? size_at(cow->as_object(), "private_dirty_growth")
                                           : "-";
                tb.add({text(w.if_contains("name")), text(w.if_contains("pid")), size_at(m, "rss"),
                        size_at(m, "pss"), size_at(m, "uss"), size_at(m, "shared_clean"),
                        size_at(m, "shared_dirty"), size_at(m, "private_clean"),
                        size_at(m, "private_dirty"), size_at(m, "swap_pss"), cow_lost,
                        size_at(tree, "pss"), size_at(tree, "uss"), std::to_string(tree_procs),
                        trend_text(w.if_contains("trend"))});
            }
            // The worker's forked children, then the orphans it left, one line each, under it.
            for (std::size_t i = 0; i < procs.size(); ++i) {
                const auto& pr = procs[i].as_object();
                const bool orphan = is_orphan(pr);
                if (!orphan && str(pr.if_contains("pid")) == str(w.if_contains("pid")))
                    continue;  // the worker itself: its line is above
                std::string name = "  " + std::string(i + 1 == procs.size() ? "└ " : "├ ") +
                                   text(pr.if_contains("cmd")) + (orphan ? " (orphan)" : "");
                if (text(pr.if_contains("status")) != "ok") {
                    tb.add({name, text(pr.if_contains("pid")), "-", "-", "-", "-", "-", "-", "-",
                            "-", "-", "", "", text(pr.if_contains("status")), ""});
                    continue;
                }
                const auto* pc = pr.if_contains("cow_lost");
                tb.add(
                    {name, text(pr.if_contains("pid")), size_at(pr, "rss"), size_at(pr, "pss"),
                     size_at(pr, "uss"), "", size_at(pr, "shared_dirty"), "",
                     size_at(pr, "private_dirty"), size_at(pr, "swap_pss"),
                     pc && pc->is_object() ? size_at(pc->as_object(), "private_dirty_growth") : "-",
                     "", "", "", ""});
            }
        }
        out += tb.render();
        if (num(p.if_contains("unreadable")) > 0)
            out += "  " + text(p.if_contains("unreadable")) +
                   " process(es) unreadable: not counted, never shown as zero\n";
        out += "\n";
    }
    out += colored(style,
                   "shared = mapped more than once, by anyone (this process included); uss = "
                   "private (freed if it exits); pss = rss with shared pages split among their "
                   "mappers; COW_LOST = private dirty gained since the process was forked, or "
                   "since it forked (copy-on-write erosion); for any other process, since its "
                   "first sample\n",
                   "2");
    return out;
}

std::string render_maps(const json::value& result, const Style& style) {
    const auto& r = result.as_object();
    const auto& t = r.at("totals").as_object();
    std::string out = colored(style, text(r.if_contains("worker")), "1") + " (pid " +
                      text(r.if_contains("pid")) + ", " + text(r.if_contains("processes")) +
                      " processes): pss " + size_at(t, "pss") + ", uss " + size_at(t, "uss") +
                      ", rss_sum " + size_at(t, "rss_sum") + "\n";
    Table tb({"GROUP", "NAME", "MAPS", "RSS", "PSS", "SHARED", "PRIVATE", "SWAP_PSS"});
    for (const auto& gv : r.at("groups").as_array()) {
        const auto& g = gv.as_object();
        tb.add({text(g.if_contains("group")), text(g.if_contains("name")),
                text(g.if_contains("mappings")), size_at(g, "rss"), size_at(g, "pss"),
                size_at(g, "shared"), size_at(g, "private"), size_at(g, "swap_pss")});
    }
    return out + tb.render();
}

std::string render_deep(const json::value& result, const Style& style) {
    const auto& r = result.as_object();
    const auto& t = r.at("totals").as_object();
    std::string out = colored(style, "pool " + text(r.if_contains("pool")), "1") +
                      " (page frames): distinct " + size_at(t, "distinct") + ", pool-only " +
                      size_at(t, "pool_only") + ", shared with other programs " +
                      size_at(t, "outside") + "; saved within the pool " +
                      size_at(t, "saved_within_pool") + "\n";
    // The partition of RESIDENT first, then the overlapping "who else maps it" counts.
    // A template pool's master is its template: the column says so.
    bool from_template = false;
    for (const auto& pv : r.at("processes").as_array())
        from_template |= pv.as_object().at("master").as_bool() &&
                         text(pv.as_object().if_contains("worker")).ends_with(".template");
    Table tb({"WORKER", "PID", "ROLE", "RESIDENT", "PRIVATE", "POOL_SHARED", "OUTSIDE_SHARED",
              from_template ? "WITH_TEMPLATE" : "WITH_MASTER", "WITH_SIBLINGS", "PSS",
              "SMAPS_DIFF"});
    for (const auto& pv : r.at("processes").as_array()) {
        const auto& p = pv.as_object();
        const bool master = p.at("master").as_bool();
        if (text(p.if_contains("status")) != "ok") {
            tb.add({text(p.if_contains("worker")), text(p.if_contains("pid")), "",
                    text(p.if_contains("status"))});
            continue;
        }
        char diff[32] = "-";
        if (const auto* d = p.if_contains("pss_diff_pct"); d && d->is_double())
            std::snprintf(diff, sizeof diff, "%.2f%%", d->as_double());
        tb.add({text(p.if_contains("worker")), text(p.if_contains("pid")),
                master ? (from_template ? "template" : "master")
                       : "group " + text(p.if_contains("group")),
                size_at(p, "resident"), size_at(p, "private"), size_at(p, "pool_shared"),
                size_at(p, "outside_shared"), master ? "" : size_at(p, "with_master"),
                size_at(p, "with_siblings"), size_at(p, "pss_pages"), diff});
    }
    out += tb.render();
    char tail[160];
    std::snprintf(tail, sizeof tail, "%s pages read in %.0f ms (%.1f M pages/s)\n",
                  text(r.if_contains("pages_read")).c_str(),
                  1000 * r.at("seconds").to_number<double>(),
                  r.at("pages_per_second").to_number<double>() / 1e6);
    out += colored(style, tail, "2");
    return out + colored(style,
                         "RESIDENT = PRIVATE (mapped once) + POOL_SHARED (mapped more than once, "
                         "only by this pool)\n"
                         "  + OUTSIDE_SHARED (mapped by a process outside the pool too).\n"
                         "WITH_MASTER, WITH_SIBLINGS: resident pages the master, or a process of "
                         "another group, maps\n"
                         "  too, of any of those kinds: they overlap, and can exceed POOL_SHARED "
                         "(a libc page counts\n"
                         "  in OUTSIDE_SHARED and in both).\n"
                         "ROLE: master = a lone worker that forked the others; group N = its Nth "
                         "child and that\n"
                         "  child's descendants (with several workers: worker N); template = the "
                         "pool's template\n"
                         "  (spawn: template), WITH_TEMPLATE what it maps too. SMAPS_DIFF: PSS "
                         "from page frames\n"
                         "  against the kernel's smaps_rollup.\n",
                         "2");
}

std::string render_status(const json::value& result, const Style& style) {
    Table t({"WORKER", "STATE", "PID", "UPTIME", "RESTARTS", "INFO"});
    const auto* pools = result.as_object().if_contains("pools");
    if (!pools || !pools->is_array()) return "no pools\n";
    for (const auto& p : pools->get_array())
        if (const auto* ws = p.as_object().if_contains("workers"); ws && ws->is_array())
            for (const auto& w : ws->get_array())
                add_worker_row(t, w.as_object(), style);
    if (t.empty()) return "no workers\n";
    std::string out = t.render();
    // spawn: template pools: where their workers are forked from.
    for (const auto& p : pools->get_array()) {
        const auto* tpl = p.as_object().if_contains("template");
        if (!tpl || !tpl->is_object()) continue;
        const auto& o = tpl->as_object();
        out += "template of " + text(p.as_object().if_contains("name")) + ": " +
               text(o.if_contains("state"));
        if (num(o.if_contains("pid")) > 0)
            out += ", pid " + text(o.if_contains("pid")) + ", up " +
                   format_duration(Millis(num(o.if_contains("uptime_ms"))));
        if (const auto* r = o.if_contains("restart_in_ms"); r && r->is_number())
            out += ", lost: a new one in " + format_duration(Millis(num(r)));
        out += ", generation " + text(o.if_contains("generation")) + "\n";
    }
    return out;
}

std::string render_workers(const json::value& result, const Style& style) {
    Table t({"WORKER", "STATE", "PID", "UPTIME", "RESTARTS", "INFO"});
    if (const auto* ws = result.as_object().if_contains("workers"); ws && ws->is_array())
        for (const auto& w : ws->get_array())
            add_worker_row(t, w.as_object(), style);
    return t.render();
}

std::string render_history(const json::value& result, const Style& style) {
    Table t({"WORKER", "PID", "ENDED", "UPTIME", "EXIT", "CAUSE", "DETAIL"});
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    for (const auto& w : result.as_object().at("workers").as_array()) {
        const auto& wo = w.as_object();
        for (const auto& e : wo.at("exits").as_array()) {
            const auto& eo = e.as_object();
            std::string exit = eo.at("code").is_null()
                                   ? "signal " + text(eo.if_contains("signal_name"))
                                   : "code " + text(eo.if_contains("code"));
            if (const auto* c = eo.if_contains("core_dumped"); c && c->is_bool() && c->get_bool())
                exit += " (core)";
            const std::string cause = text(eo.if_contains("cause"));
            const char* color = cause == "exited"              ? nullptr
                                : cause == "killed_by_cowherd" ? nullptr
                                                               : "\x1b[31m";
            const auto ago = now_ms - num(eo.if_contains("ended_ms"));
            // A kept orphan's exit says whose it was.
            std::string detail = text(eo.if_contains("detail"));
            if (const auto* o = eo.if_contains("orphan"); o && o->is_string())
                detail = "kept orphan (" + std::string(o->get_string()) + ")" +
                         (detail.empty() ? "" : ": " + detail);
            t.add({text(wo.if_contains("name")), text(eo.if_contains("pid")),
                   format_duration(Millis(ago > 0 ? ago : 0)) + " ago",
                   format_duration(Millis(num(eo.if_contains("uptime_ms")))), exit,
                   color ? colored(style, cause, color) : cause, detail});
        }
    }
    if (t.empty()) return "no exits recorded\n";
    return t.render();
}

}  // namespace cow::ctl

namespace cow::ctl {

std::string sparkline(const std::vector<double>& values, std::size_t width, bool utf8) {
    static constexpr const char* kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
    static constexpr char kAscii[] = "_.:-=+*#";  // the lowest visible: a flat line shows
    if (values.empty() || width == 0) return "";
    const std::size_t from = values.size() > width ? values.size() - width : 0;
    const auto [lo, hi] =
        std::minmax_element(values.begin() + static_cast<std::ptrdiff_t>(from), values.end());
    // A change of under 2% of the value is drawn as the small step it is, not as full scale.
    const double span = std::max(*hi - *lo, std::fabs(*hi) * 0.02);
    std::string out;
    for (std::size_t i = from; i < values.size(); ++i) {
        // A flat series sits at the bottom: no change is the news.
        const int level =
            span > 0 ? std::clamp(static_cast<int>((values[i] - *lo) / span * 7.0 + 0.5), 0, 7) : 0;
        if (utf8)
            out += kBlocks[level];
        else
            out += kAscii[level];
    }
    return out;
}

}  // namespace cow::ctl

namespace cow::ctl {

std::string render_mem_history(const json::value& result, const Style& style) {
    constexpr std::size_t kWidth = 60;
    const bool utf8 = utf8_locale();
    std::string out;
    const auto& r = result.as_object();
    const auto every = num(r.if_contains("sample_every_ms"));
    const auto* pools = r.if_contains("pools");
    if (!pools || !pools->is_array()) return "no pools\n";
    for (const auto& pv : pools->get_array()) {
        const auto& p = pv.as_object();
        out += colored(style, "pool " + text(p.if_contains("name")), "1") + " (a sample every " +
               format_duration(Millis(every)) + ")\n";
        for (const auto& wv : p.at("workers").as_array()) {
            const auto& w = wv.as_object();
            const auto& pts = w.at("points").as_array();
            bool averaged = false;
            for (const auto& pt : pts)
                if (const auto* c = pt.as_object().if_contains("coarse"); c && c->is_bool())
                    averaged = averaged || c->get_bool();
            out += "  " + colored(style, text(w.if_contains("name")), "1") + " pid " +
                   text(w.if_contains("pid")) + ", " + std::to_string(pts.size()) +
                   (averaged ? " points (samples averaged)" : " samples");
            if (!pts.empty()) {
                const auto span = num(pts.back().as_object().if_contains("at_ms")) -
                                  num(pts.front().as_object().if_contains("at_ms"));
                out += " over " + format_duration(Millis(span));
            }
            out += ", trend " + trend_text(w.if_contains("trend")) + "\n";
            for (const char* key : {"uss", "pss", "cow_lost"}) {
                std::vector<double> v;
                for (const auto& pt : pts)
                    v.push_back(static_cast<double>(num(pt.as_object().if_contains(key))));
                if (v.empty()) continue;
                const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
                char label[16];
                std::snprintf(label, sizeof label, "    %-9s", key);
                out += label + sparkline(v, kWidth, utf8) + "  " +
                       format_size(static_cast<std::uint64_t>(*lo)) + " .. " +
                       format_size(static_cast<std::uint64_t>(*hi)) + ", now " +
                       format_size(static_cast<std::uint64_t>(v.back())) + "\n";
            }
        }
    }
    return out;
}

}  // namespace cow::ctl
