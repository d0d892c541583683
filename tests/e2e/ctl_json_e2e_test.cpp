// `cowctl --json`: the whole stdout of every verb is exactly one JSON document, whatever the
// outcome (issue 11), so that `cowctl --json VERB | jq` always works. Progress is a stream
// asked for with --progress, on stderr.
#include <set>
#include <variant>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

// The text as exactly one JSON document (whitespace around it allowed), or why not.
std::variant<json::value, std::string> one_document(const std::string& text) {
    json::stream_parser p;
    boost::system::error_code ec;
    p.write(text.data(), text.size(), ec);
    if (!ec) p.finish(ec);
    if (ec) return ec.message() + " in: " + text;
    return p.release();
}

class CtlJson : public DaemonFixture {
  protected:
    int port = free_port();

    std::string web_pool(const std::string& tag, int workers) {
        return "  web:\n    command: [\"" + bin("cow-http") +
               "\"]\n    workers: " + std::to_string(workers) +
               "\n    ready: notify\n    start_timeout: 5s\n    stop_timeout: 5s\n"
               "    env: {COW_HTTP_TAG: " +
               tag +
               "}\n    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) +
               "\"}]\n";
    }
    static std::string tick_pool() {
        return "  tick:\n    command: [sleep, \"100000\"]\n    workers: 2\n"
               "    start_timeout: 100ms\n";
    }

    // Runs `cowctl --json ARGS...`, expects `code`, and returns the one document on stdout.
    json::object doc(std::vector<std::string> args, int code = 0) {
        args.insert(args.begin(), "--json");
        auto r = ctl(args, std::chrono::seconds(60));
        std::string what;
        for (const auto& a : args)
            what += a + " ";
        EXPECT_EQ(r.code, code) << what << "\nstdout: " << r.out << "\nstderr: " << r.err;
        auto d = one_document(r.out);
        if (auto* why = std::get_if<std::string>(&d)) {
            ADD_FAILURE() << what << ": stdout is not one JSON document: " << *why;
            return {};
        }
        auto& v = std::get<json::value>(d);
        if (!v.is_object()) {
            ADD_FAILURE() << what << ": not an object: " << r.out;
            return {};
        }
        return v.as_object();
    }
};

TEST(CtlJsonHelper, OneDocumentRejectsTwo) {
    EXPECT_TRUE(std::holds_alternative<json::value>(one_document("{\"a\":1}\n")));
    EXPECT_FALSE(std::holds_alternative<json::value>(one_document("{\"a\":1}\n{\"b\":2}\n")));
    EXPECT_FALSE(std::holds_alternative<json::value>(one_document("")));
}

TEST_F(CtlJson, ARollingRestartPrintsOneDocument) {
    start(web_pool("v1", 3));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    auto r = doc({"restart", "web"});
    ASSERT_TRUE(r.contains("workers")) << json::serialize(r);
    EXPECT_EQ(r["workers"].as_array().size(), 3u);
    // The same with the flags that change how it rolls.
    r = doc({"restart", "web", "--batch", "2"});
    EXPECT_EQ(r["workers"].as_array().size(), 3u) << json::serialize(r);
    r = doc({"restart", "web.1"});
    EXPECT_EQ(r["workers"].as_array().size(), 1u) << json::serialize(r);
}

TEST_F(CtlJson, ProgressIsAskedForAndGoesToStderrAsJsonLines) {
    start(web_pool("v1", 3));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    auto r = ctl({"--json", "restart", "web", "--progress"}, std::chrono::seconds(60));
    ASSERT_EQ(r.code, 0) << r.err;
    auto d = one_document(r.out);
    ASSERT_TRUE(std::holds_alternative<json::value>(d)) << std::get<std::string>(d);
    EXPECT_TRUE(std::get<json::value>(d).as_object().contains("workers"));
    std::istringstream lines(r.err);
    std::set<std::string> replaced;
    for (std::string line; std::getline(lines, line);) {
        auto item = one_document(line);
        ASSERT_TRUE(std::holds_alternative<json::value>(item)) << "stderr line: " << line;
        auto& o = std::get<json::value>(item).as_object();
        replaced.insert(std::string(o.at("worker").as_string()));
        EXPECT_EQ(as_int(o.at("total")), 3);
    }
    EXPECT_EQ(replaced, (std::set<std::string>{"web.0", "web.1", "web.2"})) << r.err;

    // Without --json, progress stays the human lines it always was.
    r = ctl({"restart", "web", "--progress"}, std::chrono::seconds(60));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("web.2 replaced: pid"), std::string::npos) << r.out;
}

TEST_F(CtlJson, AReloadThatRollsPrintsOneDocument) {
    start(web_pool("v1", 2) + tick_pool());
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    auto r = doc({"reload", "--dry-run"});
    EXPECT_TRUE(r.contains("pools")) << json::serialize(r);
    write_config(web_pool("v2", 2) + tick_pool());
    r = doc({"reload"});
    ASSERT_TRUE(r.contains("pools")) << json::serialize(r);
    bool rolled = false;
    for (auto& p : r["pools"].as_array())
        rolled |= p.as_object()["name"].as_string() == "web" &&
                  p.as_object()["action"].as_string() == "rolling restart";
    EXPECT_TRUE(rolled) << json::serialize(r);
    // A reload that fails (an invalid file) is one error document.
    write_config(web_pool("v3", 2) + tick_pool() + "  bad: {}\n");
    r = doc({"reload"}, 1);
    EXPECT_TRUE(r.contains("error")) << json::serialize(r);
}

TEST_F(CtlJson, EveryOtherVerbPrintsOneDocument) {
    start(web_pool("v1", 2) + tick_pool());
    ASSERT_TRUE(WaitFor([&] { return count_state("tick", "running") == 2; }));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));

    EXPECT_TRUE(doc({"status"}).contains("pools"));
    EXPECT_TRUE(doc({"status", "tick.1"}).contains("pools"));
    EXPECT_TRUE(doc({"stop", "tick"}).contains("workers"));
    EXPECT_TRUE(doc({"start", "tick"}).contains("workers"));
    doc({"stop", "tick.0", "--no-wait"});
    EXPECT_TRUE(doc({"start", "tick.0"}).contains("workers"));
    EXPECT_TRUE(doc({"restart", "tick"}).contains("workers"));
    EXPECT_TRUE(doc({"restart", "web", "--all-at-once"}).contains("workers"));
    doc({"restart", "tick", "--no-wait"});
    ASSERT_TRUE(WaitFor([&] { return count_state("tick", "running") == 2; }));
    EXPECT_EQ(as_int(doc({"scale", "tick", "3"})["to"]), 3);
    EXPECT_EQ(as_int(doc({"signal", "CONT", "tick"})["signalled"]), 3);
    EXPECT_TRUE(doc({"signal", "CONT", "tick", "--tree"}).contains("signalled"));
    EXPECT_TRUE(doc({"tree"}).contains("pools"));
    EXPECT_TRUE(doc({"tree", "tick", "--args"}).contains("pools"));
    EXPECT_TRUE(doc({"mem"}).contains("pools"));
    EXPECT_TRUE(doc({"mem", "tick", "--sort", "rss"}).contains("pools"));
    EXPECT_TRUE(doc({"mem", "--maps", "tick.0"}).contains("groups"));
    if (geteuid() == 0) {
        EXPECT_TRUE(doc({"mem", "tick", "--deep"}).contains("processes"));
    }
    EXPECT_TRUE(doc({"logs", "web", "-n", "5"}).contains("lines"));
    EXPECT_TRUE(doc({"logs", "web.0", "--stderr", "--since", "5m"}).contains("lines"));
    doc({"reopen"});
    EXPECT_TRUE(doc({"health"}).contains("healthy"));
    EXPECT_TRUE(doc({"version"}).contains("version"));

    // Failures are one document too: {"error":{"code","message"}}.
    auto e = doc({"status", "nosuch"}, 1);
    EXPECT_EQ(e["error"].as_object()["code"].as_string(), "no_such_pool") << json::serialize(e);
    e = doc({"stop", "bad name"}, 2);
    EXPECT_EQ(e["error"].as_object()["code"].as_string(), "invalid_argument");
    e = doc({"signal", "NOSUCHSIG", "tick"}, 2);
    EXPECT_TRUE(e.contains("error")) << json::serialize(e);
    ASSERT_EQ(ctl({"stop", "tick"}).code, 0);
    e = doc({"health"}, 1);
    EXPECT_FALSE(e["healthy"].as_bool()) << "unhealthy is a verdict, still one document";

    doc({"shutdown"});
}

TEST_F(CtlJson, NoDaemonIsOneErrorDocumentAndExitThree) {
    auto r = ctl({"--json", "status"});
    EXPECT_EQ(r.code, 3) << r.err;
    auto d = one_document(r.out);
    ASSERT_TRUE(std::holds_alternative<json::value>(d)) << std::get<std::string>(d);
    auto& e = std::get<json::value>(d).as_object().at("error").as_object();
    EXPECT_EQ(e.at("code").as_string(), "unreachable");
    EXPECT_NE(std::string(e.at("message").as_string()).find(socket), std::string::npos);
    EXPECT_NE(r.err.find("cannot reach cowherd"), std::string::npos) << r.err;
}

}  // namespace
