// Hostile config input (design §3.8): depth bombs, alias bombs, oversize and binary input
// must be refused quickly with a clean error, never a crash or a hang.
#include <chrono>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config/prescan.hpp"

namespace cow::config {
namespace {

using Clock = std::chrono::steady_clock;

LoadResult load(std::string_view yaml) {
    return load_text(yaml, "t.yaml", "/base");
}

std::string only_error(const LoadResult& r) {
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.errors.size(), 1u);
    return r.errors.empty() ? std::string("(no error)") : r.errors[0].to_string();
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// A sanitizer's overhead (5-10x, more on a loaded machine) would be what the limits measure:
// a sanitizer build checks what `f` asserts, the Release build also how long it takes.
constexpr bool kTimed = false;
#else
constexpr bool kTimed = true;
#endif

// Fails the test when `f` takes longer than `limit`; hostile input must not be slow either.
template <class F>
void within(std::chrono::milliseconds limit, F&& f) {
    auto start = Clock::now();
    f();
    if (kTimed) {
        EXPECT_LT(Clock::now() - start, limit);
    }
}

int depth(std::string_view yaml) {
    return detail::estimate_depth(yaml, 1000).depth;
}

TEST(ConfigHostile, DeepFlowSequencesRejectedBeforeParsing) {
    within(std::chrono::milliseconds(1000), [] {
        EXPECT_EQ(only_error(load(std::string(10000, '['))),
                  "t.yaml:1:33: nesting is deeper than 32 levels");
        EXPECT_EQ(only_error(load(std::string(kMaxConfigBytes, '['))),
                  "t.yaml:1:33: nesting is deeper than 32 levels");
    });
}

TEST(ConfigHostile, DeepFlowMappingsRejected) {
    std::string yaml;
    for (int i = 0; i < 5000; ++i)
        yaml += "{a: ";
    within(std::chrono::milliseconds(1000), [&] {
        EXPECT_EQ(only_error(load(yaml)), "t.yaml:1:129: nesting is deeper than 32 levels");
    });
}

TEST(ConfigHostile, DeepBlockNestingRejected) {
    std::string yaml = "pools:\n";
    for (int i = 0; i < 200; ++i)
        yaml += std::string(2 * (i + 1), ' ') + "k:\n";
    within(std::chrono::milliseconds(1000), [&] {
        // Line 33 opens the 33rd mapping (the document's own mapping is the first).
        EXPECT_EQ(only_error(load(yaml)), "t.yaml:33:65: nesting is deeper than 32 levels");
    });
}

TEST(ConfigHostile, DeepCompactSequencesRejected) {
    std::string yaml;
    for (int i = 0; i < 50000; ++i)
        yaml += "- ";
    yaml += "x\n";
    within(std::chrono::milliseconds(1000), [&] {
        EXPECT_EQ(only_error(load(yaml)), "t.yaml:1:65: nesting is deeper than 32 levels");
    });
}

TEST(ConfigHostile, DepthLimitIsExact) {
    // The document's mapping plus 31 sequences: 32 levels, allowed (then a schema error).
    std::string ok = "x: " + std::string(31, '[') + std::string(31, ']') + "\n";
    for (const auto& e : load(ok).errors)
        EXPECT_EQ(e.message.find("nesting"), std::string::npos);
    std::string deep = "x: " + std::string(32, '[') + std::string(32, ']') + "\n";
    EXPECT_EQ(only_error(load(deep)), "t.yaml:1:35: nesting is deeper than 32 levels");
}

TEST(ConfigHostile, DepthEstimateMatchesYaml) {
    EXPECT_EQ(depth(""), 0);
    EXPECT_EQ(depth("a: 1\n"), 1);
    EXPECT_EQ(depth("a: {b: [1]}\n"), 3);
    EXPECT_EQ(depth("a:\n  b:\n    c: 1\n"), 3);
    EXPECT_EQ(depth("a:\n  b: 1\n  c: [x, {d: 1}]\nz: 1\n"), 4);
    EXPECT_EQ(depth("- - - x\n"), 3);
    EXPECT_EQ(depth("- a: 1\n  b: [1]\n"), 3);
    // A sequence at its parent key's column is still one level deeper.
    EXPECT_EQ(depth("a:\n- b:\n  - c\n"), 4);
    EXPECT_EQ(depth("a:\n- 1\nb:\n  c: 1\n"), 2);
    // Multi-line flow collections.
    EXPECT_EQ(depth("a: [\n  [1,\n   {b: 2}],\n]\n"), 4);
}

TEST(ConfigHostile, DepthEstimateIgnoresBracketsInText) {
    std::string many(100, '[');
    EXPECT_EQ(depth("a: \"" + many + "\"\n"), 1);
    EXPECT_EQ(depth("a: '" + many + "'\n"), 1);
    EXPECT_EQ(depth("a: 'it''s " + many + "'\n"), 1);
    EXPECT_EQ(depth("a: \"\\\"" + many + "\"\n"), 1);
    EXPECT_EQ(depth("a: x" + many + "\n"), 1);  // a plain scalar in block context
    EXPECT_EQ(depth("a: 1 # " + many + "\n"), 1);
    EXPECT_EQ(depth("# " + many + "\na: 1\n"), 1);
    EXPECT_EQ(depth("a: |\n  " + many + "\n  " + many + "\nb: 1\n"), 1);
    EXPECT_EQ(depth("a: >-\n\n   " + many + "\nb: 1\n"), 1);
    EXPECT_EQ(depth("a: \"multi\n  line " + many + "\"\nb: 1\n"), 1);
    // A quote inside a plain scalar that continues on the next line is text, not a quote.
    EXPECT_EQ(depth("a: it's\n  still a\nb: [[[1]]]\n"), 4);
    EXPECT_EQ(depth("a: x\n  'y\nb: [[[1]]]\nc: z'\n"), 4);
    // In flow context a bracket after text still opens a collection.
    EXPECT_EQ(depth("a: [x'y, [[1]]]\n"), 4);
    // Anchors and tags before a collection do not hide it.
    EXPECT_EQ(depth("a: &x [[1]]\nb: !!seq [[2]]\n"), 3);
    // Whatever yaml-cpp would make of these, they cannot hide nesting from the count.
    EXPECT_GT(depth("a: \"" + many), 0);
    EXPECT_EQ(depth("a: x # y\n  " + many + "\n"), 101);
}

TEST(ConfigHostile, ThePrescanRunsBeforeYaml) {
    // Malformed YAML that is also too deep reports the depth, so yaml-cpp never saw it.
    EXPECT_EQ(only_error(load("a: " + std::string(40, '{') + " : : ]]\n")),
              "t.yaml:1:35: nesting is deeper than 32 levels");
}

TEST(ConfigHostile, BillionLaughsRejected) {
    std::string yaml = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n";
    for (char c = 'b'; c <= 'i'; ++c) {
        std::string prev(1, static_cast<char>(c - 1));
        yaml += std::string(1, c) + ": &" + c + " [";
        for (int i = 0; i < 9; ++i)
            yaml += (i ? ",*" : "*") + prev;
        yaml += "]\n";
    }
    yaml += "pools: {x: {command: *i}}\n";
    within(std::chrono::milliseconds(1000), [&] {
        LoadResult r = load(yaml);
        ASSERT_FALSE(r.ok());
        ASSERT_EQ(r.errors.size(), 1u);
        // a is 10 nodes, b 91, c 820, d 7381: e's first alias takes the total past 10000.
        EXPECT_EQ(r.errors[0].to_string(),
                  "t.yaml:5:8: e[0]: aliases expand to more than 10000 nodes; refusing what looks "
                  "like an alias bomb");
    });
}

TEST(ConfigHostile, ManyAliasesToOneBigNodeRejected) {
    std::string yaml = "x: &big [";
    for (int i = 0; i < 2000; ++i)
        yaml += "1,";
    yaml += "1]\ny: [";
    for (int i = 0; i < 10; ++i)
        yaml += "*big,";
    yaml += "]\n";
    LoadResult r = load(yaml);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.errors[0].message.find("alias"), std::string::npos) << r.errors[0].to_string();
}

TEST(ConfigHostile, SelfReferentialAliasRejected) {
    LoadResult r = load("a: &a [1, *a]\n");
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 1);
}

TEST(ConfigHostile, UndefinedAliasIsASyntaxError) {
    EXPECT_EQ(only_error(load("pools: {a: {command: *nope}}\n")),
              "t.yaml:1:22: invalid YAML: the referenced anchor is not defined");
}

TEST(ConfigHostile, OversizeRejected) {
    std::string yaml(kMaxConfigBytes + 1, '#');
    within(std::chrono::milliseconds(1000), [&] {
        EXPECT_EQ(only_error(load(yaml)),
                  "t.yaml: larger than 1048576 bytes (1 MiB), the most a config may be");
    });
    // Exactly at the limit is fine as far as size goes.
    std::string at_limit = "pools: {a: {command: x}}\n";
    at_limit += std::string(kMaxConfigBytes - at_limit.size(), '#');
    EXPECT_TRUE(load(at_limit).ok());
}

TEST(ConfigHostile, TooManyNodesRejected) {
    std::string yaml = "x: [";
    for (std::size_t i = 0; i < kMaxConfigNodes; ++i)
        yaml += "1,";
    yaml += "1]\n";
    ASSERT_LE(yaml.size(), kMaxConfigBytes);
    within(std::chrono::milliseconds(5000), [&] {
        EXPECT_EQ(only_error(load(yaml)),
                  "t.yaml:1:399999: x[199997]: more than 200000 YAML values; no sensible config "
                  "has that many");
    });
}

TEST(ConfigHostile, NulByteRejected) {
    std::string yaml = "pools:\n  a: {command: x@y}\n";
    yaml[yaml.find('@')] = '\0';
    EXPECT_EQ(only_error(load(yaml)),
              "t.yaml:2:17: NUL byte in the file; a config must be UTF-8 text");
}

// Not a fuzzer (fuzz/ has that), but a guard that odd input never throws or crashes.
TEST(ConfigHostile, RandomInputNeverThrows) {
    static constexpr char kAlphabet[] = "[]{}:,-?&*!|>'\"#\\ \n\n\tabc01~.%@`";
    std::mt19937 rng(12345);
    std::uniform_int_distribution<std::size_t> pick(0, sizeof kAlphabet - 2);
    std::uniform_int_distribution<int> length(0, 200);
    for (int round = 0; round < 3000; ++round) {
        std::string yaml;
        int n = length(rng);
        for (int i = 0; i < n; ++i)
            yaml += kAlphabet[pick(rng)];
        LoadResult r;
        ASSERT_NO_THROW(r = load(yaml)) << yaml;
        EXPECT_EQ(r.ok(), r.errors.empty());
    }
}

}  // namespace
}  // namespace cow::config
