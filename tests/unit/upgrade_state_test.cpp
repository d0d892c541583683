// The upgrade state: its version rules, and the supervisor's slots written by one image and
// taken up by the next (over a fake Sys and a manual clock, as supervisor_test does).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "daemon/supervise/supervisor.hpp"
#include "daemon/upgrade.hpp"
#include "tests/support/fake_sys.hpp"

using namespace cow;
using namespace std::chrono_literals;
using fsm::State;
namespace json = boost::json;

namespace {

TEST(UpgradeState, AReaderRefusesAnotherMajorAndIgnoresKeysItDoesNotKnow) {
    auto ours = upgrade::header();
    EXPECT_EQ(upgrade::check_version(ours), "");
    ours["a_key_of_a_later_minor"] = json::object{{"x", 1}};
    ours["minor"] = upgrade::kMinor + 7;
    EXPECT_EQ(upgrade::check_version(ours), "") << "a later minor only adds keys";

    auto later = upgrade::header();
    later["major"] = upgrade::kMajor + 1;
    later["version"] = "9.0.0";
    const auto why = upgrade::check_version(later);
    EXPECT_NE(why.find("format version " + std::to_string(upgrade::kMajor + 1)), std::string::npos)
        << why;
    EXPECT_NE(why.find("written by cowherd 9.0.0"), std::string::npos) << why;

    EXPECT_EQ(upgrade::check_version(json::object{{"major", 1}}), "not a cowherd state");
    auto parsed = upgrade::parse_json("{\"format\": ");
    ASSERT_EQ(parsed.index(), 1u);
    EXPECT_NE(std::get<1>(parsed).find("not JSON"), std::string::npos);
    // Worker output travels byte for byte, invalid UTF-8 included.
    auto bytes = upgrade::parse_json("{\"line\": \"\xff\xfe ok\"}");
    ASSERT_EQ(bytes.index(), 0u);
    EXPECT_EQ(std::get<0>(bytes).at("line").as_string(), "\xff\xfe ok");
}

std::shared_ptr<const config::Config> make_config() {
    auto cfg = std::make_shared<config::Config>();
    config::PoolConfig p;
    p.name = "web";
    p.command = {"/bin/true"};
    p.workers = 3;
    p.start_timeout = 1s;
    p.backoff = {2s, 2s};
    p.max_restarts = {2, 1h};
    p.stop_timeout = 5s;
    cfg->pools.push_back(p);
    return cfg;
}

struct Handover : ::testing::Test {
    test::FakeSys sys;
    std::shared_ptr<const config::Config> cfg = make_config();
    std::unique_ptr<Supervisor> sup;
    Worker& w(int i) { return *sup->pools()[0]->workers[static_cast<std::size_t>(i)]; }
    void reap(pid_t pid, int status) {
        sup->on_reaped(pid, status);
        sup->after_reap();
        sup->settle();
    }
    void advance(Millis d) {
        sys.t += d;
        sup->on_timers();
        sup->settle();
    }
    // What the next image makes of this one's state.
    void hand_over() {
        const auto state = sup->save_state();
        auto next = std::make_unique<Supervisor>(sys, cfg);
        ASSERT_EQ(next->restore_state(state), "");
        EXPECT_EQ(json::serialize(next->save_state()), json::serialize(state));
        sup = std::move(next);
    }
};

TEST_F(Handover, SlotsCountsDeadlinesAndWindowsCarryOver) {
    sup = std::make_unique<Supervisor>(sys, cfg);
    sup->boot();
    advance(1s);
    const pid_t keep0 = w(0).pid;
    // web.1 dies once and restarts (one restart in its window); web.2 dies, then fails to
    // start, and waits in backoff.
    reap(w(1).pid, W_EXITCODE(0, SIGKILL));
    advance(2s);
    reap(w(2).pid, W_EXITCODE(3, 0));  // from running: restarted at once
    reap(w(2).pid, W_EXITCODE(3, 0));  // a failed start: backoff
    ASSERT_EQ(w(2).slot.state, State::backoff);
    const auto restarts1 = w(1).restarts;
    ASSERT_EQ(restarts1, 1u);

    hand_over();
    EXPECT_EQ(w(0).pid, keep0);
    EXPECT_EQ(w(0).slot.state, State::running);
    EXPECT_EQ(w(1).restarts, restarts1);
    ASSERT_EQ(w(2).slot.state, State::backoff);

    // The backoff deadline is the same instant: not a moment earlier, not later.
    advance(1999ms);
    EXPECT_EQ(w(2).slot.state, State::backoff);
    advance(1ms);
    EXPECT_EQ(w(2).slot.state, State::starting);

    // Its pid is known to the new image: the exit is the slot's, counted once.
    hand_over();
    const pid_t p1 = w(1).pid;
    reap(p1, W_EXITCODE(0, SIGKILL));
    EXPECT_EQ(w(1).restarts, restarts1 + 1);
    ASSERT_TRUE(w(1).last_exit);
    EXPECT_EQ(w(1).last_exit->signal, SIGKILL);
    EXPECT_EQ(w(1).last_main_exit()->cause.cause, ExitCause::killed_externally);

    // The max_restarts window came along: a third failure within the hour is fatal.
    hand_over();
    advance(2s);
    reap(w(1).pid, W_EXITCODE(0, SIGKILL));
    EXPECT_EQ(w(1).slot.state, State::fatal);
}

TEST_F(Handover, AStateThatDoesNotFitTheConfigIsRefused) {
    sup = std::make_unique<Supervisor>(sys, cfg);
    sup->boot();
    auto state = sup->save_state();
    state["pools"].as_array()[0].as_object()["name"] = "gone";
    Supervisor next(sys, cfg);
    EXPECT_NE(next.restore_state(state).find("pool gone of the state is not in the config"),
              std::string::npos);
    auto strange = sup->save_state();
    strange["workers"].as_array()[0].as_object()["slot"].as_object()["state"] = "hovering";
    Supervisor other(sys, cfg);
    EXPECT_NE(other.restore_state(strange).find("a state this version does not know"),
              std::string::npos);
}

}  // namespace
