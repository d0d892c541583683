// The control protocol: newline-delimited JSON over a Unix stream socket (design §1).
//   request: {"v":1,"id":7,"cmd":"status","args":{...}}
//   reply:   {"v":1,"id":7,"ok":true,"result":{...}}
//            {"v":1,"id":7,"ok":false,"error":{"code":"no_such_pool","message":"..."}}
// Decoding is strict and bounded: the daemon must survive any byte sequence a client sends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json.hpp>

namespace cow::proto {

inline constexpr int kVersion = 1;
inline constexpr std::size_t kMaxRequestBytes = 64 * 1024;
inline constexpr std::size_t kMaxJsonDepth = 16;

enum class ErrorCode {
    bad_request,          // not JSON, wrong field types, missing fields
    too_large,            // request line over kMaxRequestBytes
    unsupported_version,  // "v" is not 1
    unknown_verb,         // "cmd" not in the verb table
    invalid_argument,     // args fail validation
    no_such_pool,
    no_such_worker,
    denied,   // peer credentials not allowed
    busy,     // too many clients, or an operation already in progress
    failed,   // the operation ran and failed (e.g. a worker did not come up)
    timeout,  // the operation did not finish within its deadline
    shutting_down,
    internal,
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view s);

struct Request {
    std::int64_t id = 0;
    std::string cmd;
    boost::json::object args;
};

struct DecodeError {
    ErrorCode code;
    std::string message;
    std::optional<std::int64_t> id;  // echoed back when the request carried a usable one
};

std::variant<Request, DecodeError> decode_request(std::string_view line);
std::string encode_request(const Request& req);  // without the trailing newline

struct Reply {
    std::int64_t id = 0;
    bool ok = false;
    boost::json::value result;  // when ok
    std::string error_code;     // when !ok
    std::string error_message;  // when !ok
    bool final = true;          // false for the intermediate lines of a streaming verb
    std::string raw_result;     // set instead of `result` by decode_ok_raw
};

// The fast path for printing a large result verbatim (`cowctl mem --json`): when the line is
// a final ok reply as our encoder writes it, returns the result's JSON text without parsing
// it; otherwise nullopt, and the caller decodes normally.
std::optional<Reply> decode_ok_raw(std::string_view line);

std::string encode_ok(std::int64_t id, boost::json::value result);
// The same, around a result that is already serialized JSON (built off the loop).
std::string encode_ok_raw(std::int64_t id, std::string_view result_json);
std::string encode_error(std::optional<std::int64_t> id, ErrorCode code, std::string_view message);
// An intermediate line of a streaming reply ("more":true); the stream ends with encode_ok/error.
std::string encode_item(std::int64_t id, boost::json::value item);

std::variant<Reply, std::string> decode_reply(std::string_view line);

// Helpers for reading args with type checks; they return nullopt when absent and throw nothing.
std::optional<std::string> get_string(const boost::json::object& args, std::string_view key);
std::optional<std::int64_t> get_int(const boost::json::object& args, std::string_view key);
std::optional<bool> get_bool(const boost::json::object& args, std::string_view key);

}  // namespace cow::proto
