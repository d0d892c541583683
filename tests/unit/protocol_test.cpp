// The control protocol: round trips and hostile input.
#include "core/protocol.hpp"

#include <gtest/gtest.h>

#include "core/protocol_names.hpp"

using namespace cow::proto;
namespace json = boost::json;

TEST(Protocol, RequestRoundTrip) {
    Request r;
    r.id = 42;
    r.cmd = "status";
    r.args["target"] = "web.2";
    auto d = decode_request(encode_request(r));
    ASSERT_TRUE(std::holds_alternative<Request>(d));
    const auto& back = std::get<Request>(d);
    EXPECT_EQ(back.id, 42);
    EXPECT_EQ(back.cmd, "status");
    EXPECT_EQ(get_string(back.args, "target"), "web.2");
}

TEST(Protocol, ReplyRoundTrip) {
    auto ok = decode_reply(encode_ok(7, json::object{{"x", 1}}));
    ASSERT_TRUE(std::holds_alternative<Reply>(ok));
    EXPECT_TRUE(std::get<Reply>(ok).ok);
    EXPECT_EQ(std::get<Reply>(ok).id, 7);
    EXPECT_TRUE(std::get<Reply>(ok).final);
    EXPECT_EQ(std::get<Reply>(ok).result.as_object().at("x").as_int64(), 1);

    auto err = decode_reply(encode_error(8, ErrorCode::no_such_pool, "no pool named \"x\""));
    const auto& e = std::get<Reply>(err);
    EXPECT_FALSE(e.ok);
    EXPECT_EQ(e.error_code, "no_such_pool");
    EXPECT_EQ(e.error_message, "no pool named \"x\"");

    auto item = decode_reply(encode_item(9, json::string("line")));
    EXPECT_FALSE(std::get<Reply>(item).final);
}

TEST(Protocol, MalformedRequestsGiveTypedErrors) {
    struct Case {
        std::string line;
        ErrorCode code;
        bool has_id;
    };
    std::vector<Case> cases = {
        {"", ErrorCode::bad_request, false},
        {"not json", ErrorCode::bad_request, false},
        {"[1,2]", ErrorCode::bad_request, false},
        {"{}", ErrorCode::bad_request, false},
        {R"({"id":"x","v":1,"cmd":"status"})", ErrorCode::bad_request, false},
        {R"({"id":1,"cmd":"status"})", ErrorCode::bad_request, true},
        {R"({"id":1,"v":2,"cmd":"status"})", ErrorCode::unsupported_version, true},
        // A version past int64 once threw out of the decoder (fuzz_protocol).
        {R"({"v":13333333333333333333,"id":4,"cmd":"status"})", ErrorCode::bad_request, true},
        {R"({"id":1,"v":1})", ErrorCode::bad_request, true},
        {R"({"id":1,"v":1,"cmd":5})", ErrorCode::bad_request, true},
        {R"({"id":1,"v":1,"cmd":"x","args":[1]})", ErrorCode::bad_request, true},
        {R"({"id":1,"v":1,"cmd":"status"} trailing)", ErrorCode::bad_request, false},
        {std::string("{\"id\":1,\"v\":1,\"cmd\":\"\xff\xfe\"}"), ErrorCode::bad_request, false},
    };
    for (const auto& c : cases) {
        auto d = decode_request(c.line);
        ASSERT_TRUE(std::holds_alternative<DecodeError>(d)) << c.line;
        EXPECT_EQ(std::get<DecodeError>(d).code, c.code) << c.line;
        EXPECT_EQ(std::get<DecodeError>(d).id.has_value(), c.has_id) << c.line;
    }
}

TEST(Protocol, OversizeInputIsRefused) {
    std::string big(kMaxRequestBytes + 1, ' ');
    EXPECT_EQ(std::get<DecodeError>(decode_request(big)).code, ErrorCode::too_large);
}

// A request whose deepest value sits at `depth`, counting the request object as 1: "args" is
// 2, and the arrays inside it take it further.
static std::string request_nested_to(std::size_t depth) {
    const std::size_t arrays = depth - 2;
    return R"({"id":1,"v":1,"cmd":"status","args":{"a":)" + std::string(arrays, '[') +
           std::string(arrays, ']') + "}}";
}

// One level past our cap, and so far within every other limit (the byte limit, Boost.JSON's
// own default depth) that only our cap can be what refuses it.
TEST(Protocol, InputDeeperThanOurCapIsRefused) {
    ASSERT_LT(kMaxJsonDepth + 1, json::parse_options{}.max_depth);
    const auto at_cap = decode_request(request_nested_to(kMaxJsonDepth));
    ASSERT_TRUE(std::holds_alternative<Request>(at_cap)) << std::get<DecodeError>(at_cap).message;

    const std::string deep = request_nested_to(kMaxJsonDepth + 1);
    ASSERT_LT(deep.size(), kMaxRequestBytes);
    const auto d = decode_request(deep);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(d))
        << "accepted at depth " << kMaxJsonDepth + 1;
    EXPECT_EQ(std::get<DecodeError>(d).code, ErrorCode::bad_request);
    const std::string too_deep = json::make_error_code(json::error::too_deep).message();
    EXPECT_NE(std::get<DecodeError>(d).message.find(too_deep), std::string::npos)
        << std::get<DecodeError>(d).message;
}

TEST(Protocol, ErrorCodesRoundTrip) {
    for (auto c : {ErrorCode::bad_request, ErrorCode::unknown_verb, ErrorCode::no_such_pool,
                   ErrorCode::denied, ErrorCode::timeout, ErrorCode::internal})
        EXPECT_EQ(error_code_from_string(to_string(c)), c);
    EXPECT_FALSE(error_code_from_string("nope"));
}

TEST(Protocol, RawFastPathOnlyForOurOwnOkReplies) {
    auto line = encode_ok(12, json::object{{"pools", json::array{}}});
    auto fast = decode_ok_raw(line);
    ASSERT_TRUE(fast);
    EXPECT_EQ(fast->id, 12);
    EXPECT_TRUE(fast->ok);
    EXPECT_EQ(fast->raw_result, R"({"pools":[]})");
    EXPECT_EQ(decode_ok_raw(encode_ok_raw(3, R"({"a":1})"))->raw_result, R"({"a":1})");
    EXPECT_FALSE(decode_ok_raw(encode_error(1, ErrorCode::failed, "no")));
    EXPECT_FALSE(decode_ok_raw(encode_item(1, json::string("x"))));
    EXPECT_FALSE(decode_ok_raw(R"({"v":1,"id":x,"ok":true,"result":{}})"));
    EXPECT_FALSE(decode_ok_raw("garbage"));
}

// The names are shared by both sides, so a changed spelling would still agree with itself;
// what it would break is every script, and every cowctl or cowherd of another version.
TEST(Protocol, WireNamesKeepTheirSpelling) {
    const std::pair<std::string_view, std::string_view> names[] = {
        {verb::status, "status"},
        {verb::logs, "logs"},
        {verb::reopen, "reopen"},
        {verb::reload, "reload"},
        {verb::scale, "scale"},
        {verb::mem, "mem"},
        {verb::tree, "tree"},
        {verb::health, "health"},
        {verb::start, "start"},
        {verb::stop, "stop"},
        {verb::restart, "restart"},
        {verb::signal, "signal"},
        {verb::shutdown, "shutdown"},
        {verb::version, "version"},
        {verb::history, "history"},
        {arg::target, "target"},
        {arg::wait, "wait"},
        {arg::timeout_ms, "timeout_ms"},
        {arg::all_at_once, "all_at_once"},
        {arg::cancel, "cancel"},
        {arg::batch, "batch"},
        {arg::size, "size"},
        {arg::signal, "signal"},
        {arg::tree, "tree"},
        {arg::args, "args"},
        {arg::maps, "maps"},
        {arg::deep, "deep"},
        {arg::sort, "sort"},
        {arg::lines, "lines"},
        {arg::stream, "stream"},
        {arg::since_ms, "since_ms"},
        {arg::follow, "follow"},
        {arg::dry_run, "dry_run"},
        {kAllTargets, "all"},
        {stream::out, "stdout"},
        {stream::err, "stderr"},
        {stream::both, "both"},
        {mem_sort::pss, "pss"},
        {mem_sort::uss, "uss"},
        {mem_sort::rss, "rss"},
        {state::starting, "starting"},
        {state::running, "running"},
        {state::backoff, "backoff"},
        {state::stopping, "stopping"},
        {state::stopped, "stopped"},
        {state::exited, "exited"},
        {state::fatal, "fatal"},
        {want::up, "up"},
        {want::down, "down"},
    };
    for (const auto& [name, wire] : names)
        EXPECT_EQ(name, wire);
}

// Who may change what: a verb added to kReadOnlyVerbs is handed to every readonly_group member.
TEST(Protocol, ReadOnlyVerbsChangeNothing) {
    for (auto v : {verb::status, verb::tree, verb::mem, verb::logs, verb::health, verb::version,
                   verb::history})
        EXPECT_TRUE(read_only_verb(v)) << v;
    for (auto v : {verb::start, verb::stop, verb::restart, verb::scale, verb::signal, verb::reload,
                   verb::reopen, verb::shutdown})
        EXPECT_FALSE(read_only_verb(v)) << v;
    EXPECT_FALSE(read_only_verb("STATUS"));
    EXPECT_FALSE(read_only_verb(""));
}
