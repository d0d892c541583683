// curses.h would otherwise define move(), clear(), erase()... as macros, and std::move with
// them.
#define NCURSES_NOMACROS 1

#include "ctl/top_screen.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <cwchar>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <curses.h>
#include <unistd.h>

#include "core/escape.hpp"
#include "core/protocol_names.hpp"
#include "ctl/render.hpp"

namespace cow::ctl::top {

namespace {

namespace proto = cow::proto;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string clock_text() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

std::string interval_text(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%gs", s);
    return buf;
}

// ---- drawing helpers -------------------------------------------------------------------------

// attrset, not attr_set: attr_set takes the colour pair apart and would drop COLOR_PAIR bits.
void set_attr(attr_t a) {
    attrset(static_cast<int>(a));
}

// Bytes of `s` that fit in `cols` terminal columns; `used` gets the columns they take.
std::size_t fit(std::string_view s, int cols, int& used) {
    std::mbstate_t st{};
    std::size_t i = 0;
    used = 0;
    while (i < s.size()) {
        wchar_t wc = 0;
        std::size_t n = std::mbrtowc(&wc, s.data() + i, s.size() - i, &st);
        int w = 1;
        if (n == static_cast<std::size_t>(-1) || n == static_cast<std::size_t>(-2) || n == 0) {
            n = 1;
            st = std::mbstate_t{};
        } else {
            w = std::max(0, wcwidth(wc));
        }
        if (used + w > cols) break;
        used += w;
        i += n;
    }
    return i;
}

int width_of(std::string_view s) {
    int used = 0;
    fit(s, 1 << 20, used);
    return used;
}

// Writes `s` at (y, x), at most `cols` columns and never past the right edge; returns the
// columns written.
int put(int y, int x, std::string_view s, int cols, attr_t attr = A_NORMAL) {
    cols = std::min(cols, COLS - x);
    if (cols <= 0 || y < 0 || y >= LINES) return 0;
    int used = 0;
    const std::size_t n = fit(s, cols, used);
    set_attr(attr);
    mvaddnstr(y, x, s.data(), static_cast<int>(n));
    set_attr(A_NORMAL);
    return used;
}

// A line of the screen's width in `attr` (the selection's reverse video), then text over it.
void fill_line(int y, attr_t attr) {
    if (y < 0 || y >= LINES) return;
    mvhline(y, 0, static_cast<chtype>(' ') | attr, COLS);
}

enum Pair : short { p_none, p_green, p_red, p_yellow, p_cyan };

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
    g_stop = 1;
}

// ---- the live view ---------------------------------------------------------------------------

class TopUi {
  public:
    TopUi(std::string socket, const TopOptions& o, Link& link, Snapshot first, bool utf8)
        : socket_(std::move(socket)),
          interval_(o.interval_s),
          link_(link),
          snap_(std::move(first)),
          filter_(o.pool),
          utf8_(utf8) {}

    void run();

  private:
    struct Line {
        enum Kind { pool, worker, tree, note } kind;
        std::size_t ref = 0;  // into snap_.pools or snap_.workers
        std::string text;
    };
    struct Tree {
        std::optional<double> pid;  // the pid it was read for
        Clock::time_point read_at;
        std::vector<std::string> lines;
    };
    enum class Confirm { none, restart, stop, start, grow, shrink };

    void fetch();
    void rebuild();
    void clamp_selection();
    const Worker* selected() const;
    void move_selection(long delta);
    bool handle_key(int ch);  // false: quit
    void handle_prompt_key(int ch);
    void handle_pager_key(int ch);
    void confirm_key(int ch);
    void ask(Confirm what);
    void toggle_tree();
    std::vector<std::string> read_tree(const Worker& w);
    void open_logs();
    bool poll_action();  // true when an action has just answered

    void draw();
    void draw_main();
    void draw_worker(int y, const Worker& w, bool sel);
    void draw_pager();
    void draw_help();
    void draw_status();
    std::string hints() const;
    int body_height() const { return std::max(1, LINES - 4); }

    std::string socket_;
    double interval_;
    Link& link_;
    Snapshot snap_;
    std::string problem_;  // the last refresh's failure, shown instead of the workers
    bool unreachable_ = false;
    std::string fetched_at_;

    Sort sort_ = Sort::name;
    bool reversed_ = false;
    std::string filter_;
    std::vector<Line> lines_;
    std::vector<std::size_t> order_;    // worker indexes, in display order
    std::vector<std::size_t> line_of_;  // order_ position -> lines_ index
    std::size_t sel_ = 0;
    std::string sel_name_;
    std::size_t scroll_ = 0;
    std::map<std::string, Tree> trees_;  // expanded workers
    std::array<int, kCols> widths_{};

    bool help_ = false;
    bool prompting_ = false;
    std::string prompt_buf_;
    Confirm confirm_ = Confirm::none;
    std::string confirm_target_;  // worker, or pool for grow/shrink
    int confirm_size_ = 0;
    std::string message_;
    Clock::time_point message_at_{};
    std::shared_ptr<Action> action_;
    std::string action_label_;

    bool pager_ = false;
    std::string pager_title_;
    std::vector<std::string> pager_lines_;
    std::size_t pager_top_ = 0;

    bool utf8_;
    bool color_ = false;

    void say(std::string m) {
        message_ = std::move(m);
        message_at_ = Clock::now();
    }
};

void TopUi::fetch() {
    auto r = link_.call(proto::verb::top, top_args(snap_.samples));
    fetched_at_ = clock_text();
    if (!r.result) {
        unreachable_ = r.unreachable;
        problem_ =
            r.unreachable ? "daemon unreachable: " + r.error + " (retrying)" : "top: " + r.error;
        if (r.unreachable) snap_ = Snapshot{};
        rebuild();
        return;
    }
    unreachable_ = false;
    problem_.clear();
    Snapshot next = parse(*r.result);
    // No sample since the last reply: the daemon left the USS points out; ours still hold.
    std::unordered_map<std::string_view, const Worker*> before;
    for (const auto& old : snap_.workers)
        before.emplace(old.name, &old);
    for (auto& w : next.workers) {
        if (w.points_sent) continue;
        if (auto it = before.find(w.name); it != before.end() && it->second->pid == w.pid)
            w.points = it->second->points;
    }
    snap_ = std::move(next);
    // An open tree is read again when its process was replaced, and every few seconds (its
    // children come and go, their uptimes grow): a `tree` request costs a /proc walk.
    for (auto& [name, tree] : trees_)
        for (const auto& w : snap_.workers)
            if (w.name == name &&
                (w.pid != tree.pid || Clock::now() - tree.read_at >= std::chrono::seconds(5))) {
                tree.pid = w.pid;
                tree.read_at = Clock::now();
                tree.lines = read_tree(w);
            }
    rebuild();
}

void TopUi::rebuild() {
    lines_.clear();
    order_.clear();
    line_of_.clear();
    const auto& ws = snap_.workers;
    auto push_worker = [&](std::size_t i) {
        line_of_.push_back(lines_.size());
        order_.push_back(i);
        lines_.push_back({Line::worker, i, {}});
        if (auto t = trees_.find(ws[i].name); t != trees_.end())
            for (const auto& l : t->second.lines)
                lines_.push_back({Line::tree, i, l});
    };
    if (!filter_.empty() && !has_pool(snap_, filter_) && problem_.empty()) {
        lines_.push_back({Line::note, 0, "no pool named " + cow::escape_invisible(filter_)});
    } else if (sort_ == Sort::name) {
        // Grouped under their pools, in the config's order (reversed with S).
        std::vector<std::size_t> pools(snap_.pools.size());
        for (std::size_t i = 0; i < pools.size(); ++i)
            pools[i] = i;
        if (reversed_) std::ranges::reverse(pools);
        std::vector<std::vector<std::size_t>> members(snap_.pools.size());
        for (std::size_t i = 0; i < ws.size(); ++i)
            members[ws[i].pool_order].push_back(i);
        for (std::size_t p : pools) {
            if (!filter_.empty() && snap_.pools[p].name != filter_) continue;
            lines_.push_back({Line::pool, p, {}});
            auto& m = members[p];
            std::ranges::stable_sort(m, [&](std::size_t a, std::size_t b) {
                return sorted_before(ws[a], ws[b], Sort::name, reversed_);
            });
            for (std::size_t i : m)
                push_worker(i);
        }
    } else {
        // One list across pools, as htop does: the WORKER column names the pool.
        std::vector<std::size_t> idx;
        for (std::size_t i = 0; i < ws.size(); ++i)
            if (filter_.empty() || ws[i].pool == filter_) idx.push_back(i);
        std::ranges::stable_sort(idx, [&](std::size_t a, std::size_t b) {
            return sorted_before(ws[a], ws[b], sort_, reversed_);
        });
        for (std::size_t i : idx)
            push_worker(i);
    }
    // Column widths over every worker, not just the visible ones: steady while scrolling.
    for (int c = 0; c < kCols; ++c)
        widths_[c] = static_cast<int>(std::strlen(kTitles[c]));
    for (const auto& w : ws)
        for (int c = 0; c < c_spark; ++c)
            widths_[c] = std::max(widths_[c], width_of(w.cells[c]));
    widths_[c_worker] = std::min(widths_[c_worker], 32);
    widths_[c_exit] = std::min(widths_[c_exit], 28);
    widths_[c_trend] = std::min(widths_[c_trend], 36);
    clamp_selection();
}

void TopUi::clamp_selection() {
    if (order_.empty()) {
        sel_ = 0;
        return;
    }
    for (std::size_t i = 0; i < order_.size(); ++i)
        if (snap_.workers[order_[i]].name == sel_name_) {
            sel_ = i;
            return;
        }
    sel_ = std::min(sel_, order_.size() - 1);  // it went away: its neighbour
    sel_name_ = snap_.workers[order_[sel_]].name;
}

const Worker* TopUi::selected() const {
    if (order_.empty() || sel_ >= order_.size()) return nullptr;
    return &snap_.workers[order_[sel_]];
}

void TopUi::move_selection(long delta) {
    if (order_.empty()) return;
    const long last = static_cast<long>(order_.size()) - 1;
    const long to = std::clamp(static_cast<long>(sel_) + delta, 0L, last);
    sel_ = static_cast<std::size_t>(to);
    sel_name_ = snap_.workers[order_[sel_]].name;
}

std::vector<std::string> TopUi::read_tree(const Worker& w) {
    // `tree` takes a pool (or all): read the pool's, keep this worker's.
    auto r = link_.call(proto::verb::tree, json::object{{proto::arg::target, w.pool}});
    const std::string pad = "      ";
    if (!r.result) return {pad + "tree: " + r.error};
    const json::object* node = nullptr;
    bool found = false;
    if (r.result->is_object())
        if (const auto* pools = array(r.result->get_object(), "pools"))
            for (const auto& p : *pools)
                if (p.is_object())
                    if (const auto* ws = array(p.get_object(), "workers"))
                        for (const auto& wv : *ws)
                            if (wv.is_object() && text(wv.get_object(), "name") == w.name) {
                                found = true;
                                node = object(wv.get_object(), "tree");
                            }
    if (!found || !node) return {pad + "(no process)"};
    std::vector<std::string> out;
    const char* tee = utf8_ ? "├─ " : "|- ";
    const char* elbow = utf8_ ? "└─ " : "`- ";
    const char* bar = utf8_ ? "│  " : "|  ";
    auto walk = [&](auto& self, const json::object& n, const std::string& prefix, bool last,
                    bool root) -> void {
        std::string label = count_text(number(n, "pid")) + " " +
                            cow::escape_invisible(text(n, "cmd")) + "  (" +
                            cow::escape_invisible(text(n, "state"));
        if (auto up = number(n, "uptime_ms")) label += ", " + duration_text(*up);
        label += ")";
        out.push_back(pad + (root ? "" : prefix + (last ? elbow : tee)) + label);
        const auto* kids = array(n, "children");
        if (!kids) return;
        const std::string next = root ? "" : prefix + (last ? "   " : bar);
        for (std::size_t i = 0; i < kids->size(); ++i)
            if ((*kids)[i].is_object())
                self(self, (*kids)[i].get_object(), next, i + 1 == kids->size(), false);
    };
    walk(walk, *node, "", true, true);
    return out;
}

void TopUi::toggle_tree() {
    const Worker* w = selected();
    if (!w) return;
    if (trees_.erase(w->name)) {
        rebuild();
        return;
    }
    Tree t;
    t.pid = w->pid;
    t.read_at = Clock::now();
    t.lines = read_tree(*w);
    trees_[w->name] = std::move(t);
    rebuild();
}

void TopUi::open_logs() {
    const Worker* w = selected();
    if (!w) return;
    auto r = link_.call(proto::verb::logs, json::object{{proto::arg::target, w->name},
                                                        {proto::arg::lines, 200},
                                                        {proto::arg::follow, false}});
    if (!r.result) {
        say("logs " + cow::escape_invisible(w->name) + ": " + r.error);
        return;
    }
    pager_lines_.clear();
    if (r.result->is_object())
        if (const auto* ls = array(r.result->get_object(), "lines"))
            for (const auto& lv : *ls) {
                if (!lv.is_object()) continue;
                const auto& l = lv.get_object();
                std::string ts;
                if (auto t = number(l, "ts_ms")) {
                    std::time_t secs = static_cast<std::time_t>(*t / 1000);
                    std::tm tm{};
                    localtime_r(&secs, &tm);
                    char buf[16];
                    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
                    ts = std::string(buf) + " ";
                }
                const bool err = text(l, "stream") == proto::stream::err;
                pager_lines_.push_back(ts + (err ? "! " : "| ") +
                                       cow::escape_invisible(text(l, "line")));
            }
    if (pager_lines_.empty()) pager_lines_.push_back("(no output yet)");
    pager_title_ = "log of " + cow::escape_invisible(w->name) + ", last " +
                   std::to_string(pager_lines_.size()) + " lines";
    const std::size_t h = static_cast<std::size_t>(body_height() + 1);
    pager_top_ = pager_lines_.size() > h ? pager_lines_.size() - h : 0;  // the newest
    pager_ = true;
}

void TopUi::ask(Confirm what) {
    if (snap_.readonly) {
        say("read-only: this client may only look");
        return;
    }
    if (action_) {
        say("busy: " + action_label_ + " has not finished");
        return;
    }
    const Worker* w = selected();
    if (!w) {
        say("no worker selected");
        return;
    }
    if (what == Confirm::grow || what == Confirm::shrink) {
        int size = 0;
        for (const auto& p : snap_.pools)
            if (p.name == w->pool)
                size = static_cast<int>(p.size ? std::llround(*p.size)
                                               : static_cast<long long>(p.workers));
        if (what == Confirm::shrink && size == 0) {
            say("pool " + cow::escape_invisible(w->pool) + " has no workers");
            return;
        }
        confirm_target_ = w->pool;
        confirm_size_ = what == Confirm::grow ? size + 1 : size - 1;
    } else {
        confirm_target_ = w->name;
    }
    confirm_ = what;
}

void TopUi::confirm_key(int ch) {
    const Confirm what = confirm_;
    confirm_ = Confirm::none;
    const std::string shown = cow::escape_invisible(confirm_target_);
    std::string verb, label;
    switch (what) {
        case Confirm::restart:
            verb = proto::verb::restart;
            break;
        case Confirm::stop:
            verb = proto::verb::stop;
            break;
        case Confirm::start:
            verb = proto::verb::start;
            break;
        case Confirm::grow:
        case Confirm::shrink:
            verb = proto::verb::scale;
            break;
        case Confirm::none:
            return;
    }
    label = verb == proto::verb::scale ? "scale " + shown + " to " + std::to_string(confirm_size_)
                                       : verb + " " + shown;
    if (ch != 'y' && ch != 'Y') {
        say(label + ": cancelled");
        return;
    }
    if (verb == proto::verb::scale) {
        action_ = launch(
            socket_, label, verb,
            json::object{{proto::arg::target, confirm_target_}, {proto::arg::size, confirm_size_}},
            std::chrono::minutes(10), scaled);
    } else {
        action_ =
            launch(socket_, label, verb,
                   json::object{{proto::arg::target, confirm_target_}, {proto::arg::wait, false}},
                   std::chrono::seconds(30), requested);
    }
    action_label_ = label;
    say(label + " ...");
}

bool TopUi::poll_action() {
    if (!action_) return false;
    std::string result;
    {
        std::lock_guard lock(action_->m);
        if (!action_->done) return false;
        result = action_->result;
    }
    action_.reset();
    say(std::move(result));
    return true;
}

void TopUi::handle_prompt_key(int ch) {
    if (ch == 27) {
        prompting_ = false;
    } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        prompting_ = false;
        filter_ = prompt_buf_;
        scroll_ = 0;
        rebuild();
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        // One UTF-8 character back.
        while (!prompt_buf_.empty() && (prompt_buf_.back() & 0xC0) == 0x80)
            prompt_buf_.pop_back();
        if (!prompt_buf_.empty()) prompt_buf_.pop_back();
    } else if (ch >= 0x20 && ch < 0x100 && ch != 127 && prompt_buf_.size() < 200) {
        prompt_buf_ += static_cast<char>(ch);
    }
}

void TopUi::handle_pager_key(int ch) {
    const long h = body_height() + 1;
    const long total = static_cast<long>(pager_lines_.size());
    long top = static_cast<long>(pager_top_);
    switch (ch) {
        case 'q':
        case 27:
        case KEY_LEFT:
            pager_ = false;
            return;
        case KEY_UP:
        case 'k':
            --top;
            break;
        case KEY_DOWN:
        case 'j':
            ++top;
            break;
        case KEY_PPAGE:
            top -= h - 1;
            break;
        case KEY_NPAGE:
        case ' ':
            top += h - 1;
            break;
        case KEY_HOME:
        case 'g':
            top = 0;
            break;
        case KEY_END:
        case 'G':
            top = total;
            break;
        default:
            return;
    }
    pager_top_ = static_cast<std::size_t>(std::clamp(top, 0L, std::max(0L, total - h)));
}

bool TopUi::handle_key(int ch) {
    if (ch == KEY_RESIZE) return true;
    if (help_) {
        help_ = false;
        return true;
    }
    if (pager_) {
        handle_pager_key(ch);
        return true;
    }
    if (prompting_) {
        handle_prompt_key(ch);
        return true;
    }
    if (confirm_ != Confirm::none) {
        confirm_key(ch);
        return true;
    }
    message_.clear();
    const long page = std::max(1, body_height() - 1);
    switch (ch) {
        case 'q':
        case 'Q':
            return false;
        case KEY_UP:
        case 'k':
            move_selection(-1);
            break;
        case KEY_DOWN:
        case 'j':
            move_selection(1);
            break;
        case KEY_PPAGE:
            move_selection(-page);
            scroll_ -= std::min(scroll_, static_cast<std::size_t>(page));  // a page at a time
            break;
        case KEY_NPAGE:
            move_selection(page);
            scroll_ += static_cast<std::size_t>(page);
            break;
        case KEY_HOME:
        case 'g':
            move_selection(-static_cast<long>(order_.size()));
            break;
        case KEY_END:
        case 'G':
            move_selection(static_cast<long>(order_.size()));
            break;
        case 's':
            sort_ = kSorts[(sort_pos(sort_) + 1) % kSorts.size()];
            reversed_ = false;
            rebuild();
            break;
        case 'S':
            reversed_ = !reversed_;
            rebuild();
            break;
        case 'u':
            sort_ = Sort::uss;
            reversed_ = false;
            rebuild();
            break;
        case 'c':
            sort_ = Sort::cpu;
            reversed_ = false;
            rebuild();
            break;
        case 'f':
        case '/':
            prompting_ = true;
            prompt_buf_ = filter_;
            break;
        case '\n':
        case '\r':
        case KEY_ENTER:
            toggle_tree();
            break;
        case 'l':
            open_logs();
            break;
        case 'r':
            ask(Confirm::restart);
            break;
        case 'x':
            ask(Confirm::stop);
            break;
        case 'a':
            ask(Confirm::start);
            break;
        case '+':
        case '=':
            ask(Confirm::grow);
            break;
        case '-':
            ask(Confirm::shrink);
            break;
        case '?':
        case 'h':
            help_ = true;
            break;
        default:
            break;
    }
    return true;
}

std::string TopUi::hints() const {
    std::string h = "q quit  ? help  ";
    h += utf8_ ? "↑↓" : "j/k";
    h += " select  s/S sort  u uss  c cpu  f filter  Enter tree  l logs";
    if (!snap_.readonly) h += "  r restart  x stop  a start  +/- scale";
    return h;
}

void TopUi::draw_worker(int y, const Worker& w, bool sel) {
    const attr_t base = sel ? A_REVERSE : A_NORMAL;
    fill_line(y, base);
    put(y, 0, sel ? ">" : " ", 1, base);  // the selection, without colours too
    int x = 2;
    for (int c = 0; c < c_spark; ++c) {
        const std::string& s = w.cells[c];
        attr_t a = base;
        if (c == c_state && color_) {
            const auto st = std::string_view(w.state);
            namespace S = proto::state;
            if (st == S::running)
                a |= COLOR_PAIR(p_green);
            else if (st == S::backoff || st == S::fatal)
                a |= COLOR_PAIR(p_red) | A_BOLD;
            else if (st == S::starting || st == S::stopping)
                a |= COLOR_PAIR(p_yellow);
        }
        if (c == c_trend && w.leak) a |= (color_ ? COLOR_PAIR(p_red) : A_NORMAL) | A_BOLD;
        const int pad = kRight[c] ? std::max(0, widths_[c] - width_of(s)) : 0;
        put(y, x + pad, s, widths_[c] - pad, a);
        x += widths_[c] + 2;
        if (x >= COLS) return;
    }
    const int room = std::min(static_cast<int>(kPoints), COLS - x);
    if (room > 0)
        put(y, x,
            w.points.empty() ? std::string("-")
                             : sparkline(w.points, static_cast<std::size_t>(room), utf8_),
            room, base);
}

void TopUi::draw_main() {
    // Line 0: where, how often, when, how much.
    std::string head = "cowherd " + cow::escape_invisible(socket_) + "  every " +
                       interval_text(interval_) + "  " + fetched_at_ + "  " +
                       std::to_string(snap_.pools.size()) + " pools, " +
                       std::to_string(snap_.workers.size()) + " workers";
    int x = put(0, 0, head, COLS, A_BOLD);
    if (snap_.readonly) put(0, x + 2, "readonly", COLS, A_BOLD | A_REVERSE);
    // Line 1: memory sampling, sort, filter; or what is wrong.
    if (!problem_.empty()) {
        put(1, 0, problem_, COLS, A_BOLD | (color_ ? COLOR_PAIR(p_red) : A_REVERSE));
    } else {
        std::string info = sampling_text(snap_) + "  sort: " + kSortNames[sort_pos(sort_)] +
                           ((descending_first(sort_) != reversed_) ? " (descending)" : "");
        if (!filter_.empty()) info += "  filter: pool " + cow::escape_invisible(filter_);
        put(1, 0, info, COLS);
    }
    // Line 2: the column titles, the sorted one underlined.
    fill_line(2, A_REVERSE);
    x = 2;
    for (int c = 0; c < kCols && x < COLS; ++c) {
        const bool sorted = kSortCols[sort_pos(sort_)] == c;
        const int w = c == c_spark ? static_cast<int>(kPoints) : widths_[c];
        const int pad = kRight[c] ? std::max(0, w - static_cast<int>(std::strlen(kTitles[c]))) : 0;
        put(2, x + pad, kTitles[c], w - pad, A_REVERSE | (sorted ? A_BOLD | A_UNDERLINE : 0));
        x += w + 2;
    }
    // The body: only its visible lines are drawn.
    const int h = body_height();
    const std::size_t hs = static_cast<std::size_t>(h);
    if (unreachable_) {
        put(3 + h / 2, 2, "daemon unreachable: retrying every " + interval_text(interval_),
            COLS - 2, A_BOLD);
        return;
    }
    if (!order_.empty()) {
        std::size_t at = line_of_[sel_];
        // In name order, keep the selected worker's pool line in sight when it is first.
        std::size_t want_top = at;
        if (at > 0 && lines_[at - 1].kind == Line::pool) want_top = at - 1;
        if (want_top < scroll_) scroll_ = want_top;
        if (at >= scroll_ + hs) scroll_ = at - hs + 1;
    }
    if (lines_.size() <= hs)
        scroll_ = 0;
    else
        scroll_ = std::min(scroll_, lines_.size() - hs);
    for (std::size_t i = scroll_; i < lines_.size() && i < scroll_ + hs; ++i) {
        const int y = 3 + static_cast<int>(i - scroll_);
        const Line& l = lines_[i];
        switch (l.kind) {
            case Line::pool:
                put(y, 0, pool_line(snap_.pools[l.ref]), COLS,
                    A_BOLD | (color_ ? COLOR_PAIR(p_cyan) : A_NORMAL));
                break;
            case Line::worker:
                draw_worker(y, snap_.workers[l.ref], !order_.empty() && order_[sel_] == l.ref);
                break;
            case Line::tree:
            case Line::note:
                put(y, 0, l.text, COLS, l.kind == Line::note ? A_BOLD : A_DIM);
                break;
        }
    }
    if (lines_.size() > hs) {
        const std::string more = " " + std::to_string(scroll_ + 1) + "-" +
                                 std::to_string(std::min(lines_.size(), scroll_ + hs)) + "/" +
                                 std::to_string(lines_.size()) + " ";
        put(0, std::max(0, COLS - static_cast<int>(more.size())), more, COLS);
    }
}

void TopUi::draw_pager() {
    fill_line(0, A_REVERSE);
    put(0, 0, pager_title_ + "  (q or Esc: back)", COLS, A_REVERSE | A_BOLD);
    const std::size_t h = static_cast<std::size_t>(body_height() + 1);
    for (std::size_t i = pager_top_; i < pager_lines_.size() && i < pager_top_ + h; ++i)
        put(1 + static_cast<int>(i - pager_top_), 0, pager_lines_[i], COLS);
}

void TopUi::draw_help() {
    const char* move_keys = utf8_ ? "↑ ↓ j k PgUp PgDn Home End" : "Up Down j k PgUp PgDn Home End";
    std::vector<std::pair<std::string, std::string>> rows = {
        {move_keys, "select a worker"},
        {"s / S", "sort by the next column / reverse the order"},
        {"u / c", "sort by USS / by CPU, biggest first"},
        {"f or /", "show one pool (empty: all)"},
        {"Enter", "show or hide the worker's process tree"},
        {"l", "the worker's recent output (q or Esc: back)"},
    };
    if (snap_.readonly) {
        rows.emplace_back("", "this client may only look: no keys change anything");
    } else {
        rows.emplace_back("r", "restart the worker (asks first)");
        rows.emplace_back("x", "stop the worker (asks first)");
        rows.emplace_back("a", "start the worker (asks first)");
        rows.emplace_back("+ / -", "scale its pool by one worker (asks first)");
    }
    rows.emplace_back("?", "this help");
    rows.emplace_back("q", "quit");
    int key_w = 0, text_w = 0;
    for (const auto& [k, t] : rows) {
        key_w = std::max(key_w, width_of(k));
        text_w = std::max(text_w, width_of(t));
    }
    const std::string title = "cowctl top: keys";
    const std::string foot = "any key closes this help";
    const int w = std::min(COLS, key_w + text_w + 7);
    const int h = std::min(LINES, static_cast<int>(rows.size()) + 5);
    const int y0 = std::max(0, (LINES - h) / 2), x0 = std::max(0, (COLS - w) / 2);
    for (int y = y0; y < y0 + h; ++y) {
        mvhline(y, x0, ' ', w);
    }
    set_attr(A_BOLD);
    mvhline(y0, x0, ACS_HLINE, w);
    mvhline(y0 + h - 1, x0, ACS_HLINE, w);
    mvvline(y0, x0, ACS_VLINE, h);
    mvvline(y0, x0 + w - 1, ACS_VLINE, h);
    mvaddch(y0, x0, ACS_ULCORNER);
    mvaddch(y0, x0 + w - 1, ACS_URCORNER);
    mvaddch(y0 + h - 1, x0, ACS_LLCORNER);
    mvaddch(y0 + h - 1, x0 + w - 1, ACS_LRCORNER);
    set_attr(A_NORMAL);
    put(y0 + 1, x0 + 2, title, w - 4, A_BOLD);
    int y = y0 + 2;
    for (const auto& [k, t] : rows) {
        if (y >= y0 + h - 2) break;
        put(y, x0 + 2, k, key_w, A_BOLD);
        put(y, x0 + 4 + key_w, t, w - key_w - 6);
        ++y;
    }
    put(y0 + h - 2, x0 + 2, foot, w - 4, A_DIM);
}

void TopUi::draw_status() {
    const int y = LINES - 1;
    curs_set(0);
    if (prompting_) {
        const std::string p = "pool to show (empty: all): ";
        const int x = put(y, 0, p, COLS, A_BOLD);
        const int used = put(y, x, prompt_buf_, COLS - x);
        move(y, std::min(COLS - 1, x + used));
        curs_set(1);
        return;
    }
    if (confirm_ != Confirm::none) {
        const std::string t = cow::escape_invisible(confirm_target_);
        std::string q;
        switch (confirm_) {
            case Confirm::restart:
                q = "restart " + t + "? [y/N]";
                break;
            case Confirm::stop:
                q = "stop " + t + "? [y/N]";
                break;
            case Confirm::start:
                q = "start " + t + "? [y/N]";
                break;
            case Confirm::grow:
            case Confirm::shrink:
                q = "scale pool " + t + " to " + std::to_string(confirm_size_) + " workers? [y/N]";
                break;
            case Confirm::none:
                break;
        }
        put(y, 0, q, COLS, A_BOLD | A_REVERSE);
        return;
    }
    if (pager_) {
        const std::size_t h = static_cast<std::size_t>(body_height() + 1);
        put(y, 0,
            "lines " + std::to_string(pager_top_ + 1) + "-" +
                std::to_string(std::min(pager_lines_.size(), pager_top_ + h)) + " of " +
                std::to_string(pager_lines_.size()) + "  " + (utf8_ ? "↑↓" : "j/k") +
                " PgUp PgDn Home End  q back",
            COLS, A_DIM);
        return;
    }
    // A message stays until the next key, or 10 s; an action in flight, until it ends.
    if (!message_.empty() && (action_ || Clock::now() - message_at_ < std::chrono::seconds(10))) {
        put(y, 0, message_, COLS, A_BOLD);
        return;
    }
    put(y, 0, hints(), COLS, A_DIM);
}

void TopUi::draw() {
    erase();
    if (pager_)
        draw_pager();
    else
        draw_main();
    if (help_) draw_help();
    draw_status();
    refresh();
}

// ncurses in, and out on every path.
struct Screen {
    Screen() {
        initscr();
        cbreak();
        noecho();
        nonl();
        keypad(stdscr, TRUE);
        set_escdelay(25);
        curs_set(0);
    }
    ~Screen() {
        curs_set(1);
        endwin();
    }
    Screen(const Screen&) = delete;
    Screen& operator=(const Screen&) = delete;
};

void TopUi::run() {
    // Ctrl-C and SIGTERM leave through endwin(), not with the terminal in raw mode.
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);

    Screen screen;
    const char* no_color = std::getenv("NO_COLOR");
    color_ = has_colors() && !(no_color && no_color[0]);
    if (color_) {
        start_color();
        const short bg = use_default_colors() == OK ? -1 : COLOR_BLACK;
        init_pair(p_green, COLOR_GREEN, bg);
        init_pair(p_red, COLOR_RED, bg);
        init_pair(p_yellow, COLOR_YELLOW, bg);
        init_pair(p_cyan, COLOR_CYAN, bg);
    }
    fetched_at_ = clock_text();
    rebuild();
    const auto period = milliseconds(std::llround(interval_ * 1000.0));
    auto next = Clock::now() + period;
    while (!g_stop) {
        if (poll_action()) next = Clock::now();  // show what the write did at once
        if (Clock::now() >= next) {
            fetch();
            next = Clock::now() + period;
            if (g_stop) break;
        }
        draw();
        auto left = std::chrono::duration_cast<milliseconds>(next - Clock::now()).count();
        left = std::clamp<long long>(left, 0, action_ ? 50 : 1000);
        timeout(static_cast<int>(left));
        const int ch = getch();
        if (ch == ERR) continue;
        if (!handle_key(ch)) break;
    }
}

}  // namespace

void run_live(const std::string& socket, const TopOptions& o, Link& link, Snapshot first,
              bool utf8) {
    TopUi ui(socket, o, link, std::move(first), utf8);
    ui.run();
}

}  // namespace cow::ctl::top

// Last, for its macros (`lines`, `columns`...), which would break any code below them.
#include <term.h>

namespace cow::ctl::top {

bool terminal_can_address_cursor() {
    int err = 0;
    if (setupterm(nullptr, STDOUT_FILENO, &err) != 0 || err != 1) return false;
    const char* cup = tigetstr("cup");
    const bool ok = cup != nullptr && cup != reinterpret_cast<char*>(-1);
    del_curterm(cur_term);
    return ok;
}

}  // namespace cow::ctl::top
