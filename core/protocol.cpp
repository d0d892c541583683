#include "core/protocol.hpp"

#include <array>
#include <utility>

namespace cow::proto {
namespace json = boost::json;

namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 13> kCodes{{
    {ErrorCode::bad_request, "bad_request"},
    {ErrorCode::too_large, "too_large"},
    {ErrorCode::unsupported_version, "unsupported_version"},
    {ErrorCode::unknown_verb, "unknown_verb"},
    {ErrorCode::invalid_argument, "invalid_argument"},
    {ErrorCode::no_such_pool, "no_such_pool"},
    {ErrorCode::no_such_worker, "no_such_worker"},
    {ErrorCode::denied, "denied"},
    {ErrorCode::busy, "busy"},
    {ErrorCode::failed, "failed"},
    {ErrorCode::timeout, "timeout"},
    {ErrorCode::shutting_down, "shutting_down"},
    {ErrorCode::internal, "internal"},
}};

// Parses with a depth cap and without exceptions; returns null value on failure.
bool parse_bounded(std::string_view text, json::value& out, std::string& why) {
    json::parse_options opts;
    opts.max_depth = kMaxJsonDepth;
    boost::system::error_code ec;
    json::monotonic_resource mr;
    json::stream_parser p({}, opts);
    p.write(text.data(), text.size(), ec);
    if (!ec) p.finish(ec);
    if (ec) {
        why = ec.message();
        return false;
    }
    out = p.release();
    return true;
}

// An integer that fits int64_t: to_number<int64_t> throws on a larger uint64 (found by
// fuzz_protocol: {"v":13333333333333333333,...} took the daemon down).
bool is_integral(const json::value& v) {
    return v.is_int64() || (v.is_uint64() && v.get_uint64() <= INT64_MAX);
}

}  // namespace

std::string_view to_string(ErrorCode code) {
    for (const auto& [c, s] : kCodes)
        if (c == code) return s;
    return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view s) {
    for (const auto& [c, name] : kCodes)
        if (name == s) return c;
    return std::nullopt;
}

std::variant<Request, DecodeError> decode_request(std::string_view line) {
    if (line.size() > kMaxRequestBytes)
        return DecodeError{ErrorCode::too_large,
                           "request is " + std::to_string(line.size()) + " bytes; the limit is " +
                               std::to_string(kMaxRequestBytes),
                           std::nullopt};
    json::value v;
    std::string why;
    if (!parse_bounded(line, v, why))
        return DecodeError{ErrorCode::bad_request, "request is not valid JSON: " + why,
                           std::nullopt};
    if (!v.is_object())
        return DecodeError{ErrorCode::bad_request, "request must be a JSON object", std::nullopt};
    const auto& obj = v.get_object();

    std::optional<std::int64_t> id;
    if (const auto* p = obj.if_contains("id")) {
        if (!p->is_int64() && !(p->is_uint64() && p->get_uint64() <= INT64_MAX))
            return DecodeError{ErrorCode::bad_request, "\"id\" must be an integer", std::nullopt};
        id = p->to_number<std::int64_t>();
    } else {
        return DecodeError{ErrorCode::bad_request, "request has no \"id\"", std::nullopt};
    }
    const auto* ver = obj.if_contains("v");
    if (!ver || !is_integral(*ver))
        return DecodeError{ErrorCode::bad_request, "request has no integer \"v\"", id};
    if (ver->to_number<std::int64_t>() != kVersion)
        return DecodeError{ErrorCode::unsupported_version,
                           "protocol version " + std::to_string(ver->to_number<std::int64_t>()) +
                               " is not supported; this daemon speaks " + std::to_string(kVersion),
                           id};
    const auto* cmd = obj.if_contains("cmd");
    if (!cmd || !cmd->is_string())
        return DecodeError{ErrorCode::bad_request, "request has no string \"cmd\"", id};
    Request req;
    req.id = *id;
    req.cmd = std::string(cmd->get_string());
    if (const auto* args = obj.if_contains("args")) {
        if (args->is_object()) {
            req.args = args->get_object();
        } else if (!args->is_null()) {
            return DecodeError{ErrorCode::bad_request, "\"args\" must be an object", id};
        }
    }
    return req;
}

std::string encode_request(const Request& req) {
    json::object o;
    o["v"] = kVersion;
    o["id"] = req.id;
    o["cmd"] = req.cmd;
    o["args"] = req.args;
    return json::serialize(o);
}

std::string encode_ok(std::int64_t id, json::value result) {
    json::object o;
    o["v"] = kVersion;
    o["id"] = id;
    o["ok"] = true;
    o["result"] = std::move(result);
    return json::serialize(o);
}

std::string encode_ok_raw(std::int64_t id, std::string_view result_json) {
    std::string out = "{\"v\":" + std::to_string(kVersion) + ",\"id\":" + std::to_string(id) +
                      ",\"ok\":true,\"result\":";
    out.append(result_json);
    out.push_back('}');
    return out;
}

std::optional<Reply> decode_ok_raw(std::string_view line) {
    constexpr std::string_view head = "{\"v\":1,\"id\":";
    if (!line.starts_with(head) || !line.ends_with('}')) return std::nullopt;
    std::size_t i = head.size();
    std::int64_t id = 0;
    std::size_t digits = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9' && digits < 18) {
        id = id * 10 + (line[i++] - '0');
        ++digits;
    }
    constexpr std::string_view mid = ",\"ok\":true,\"result\":";
    if (digits == 0 || line.substr(i, mid.size()) != mid) return std::nullopt;
    Reply r;
    r.id = id;
    r.ok = true;
    r.raw_result = std::string(line.substr(i + mid.size(), line.size() - i - mid.size() - 1));
    return r;
}

std::string encode_item(std::int64_t id, json::value item) {
    json::object o;
    o["v"] = kVersion;
    o["id"] = id;
    o["ok"] = true;
    o["more"] = true;
    o["result"] = std::move(item);
    return json::serialize(o);
}

std::string encode_error(std::optional<std::int64_t> id, ErrorCode code, std::string_view message) {
    json::object o;
    o["v"] = kVersion;
    if (id)
        o["id"] = *id;
    else
        o["id"] = nullptr;
    o["ok"] = false;
    json::object err;
    err["code"] = to_string(code);
    err["message"] = message;
    o["error"] = std::move(err);
    return json::serialize(o);
}

std::variant<Reply, std::string> decode_reply(std::string_view line) {
    json::value v;
    std::string why;
    if (!parse_bounded(line, v, why)) return "reply is not valid JSON: " + why;
    if (!v.is_object()) return std::string("reply is not a JSON object");
    const auto& o = v.get_object();
    Reply r;
    if (const auto* id = o.if_contains("id"); id && is_integral(*id))
        r.id = id->to_number<std::int64_t>();
    const auto* ok = o.if_contains("ok");
    if (!ok || !ok->is_bool()) return std::string("reply has no boolean \"ok\"");
    r.ok = ok->get_bool();
    if (const auto* more = o.if_contains("more"); more && more->is_bool())
        r.final = !more->get_bool();
    if (r.ok) {
        if (const auto* res = o.if_contains("result")) r.result = *res;
    } else {
        const auto* err = o.if_contains("error");
        if (!err || !err->is_object()) return std::string("error reply has no \"error\" object");
        if (const auto* c = err->get_object().if_contains("code"); c && c->is_string())
            r.error_code = std::string(c->get_string());
        if (const auto* m = err->get_object().if_contains("message"); m && m->is_string())
            r.error_message = std::string(m->get_string());
    }
    return r;
}

std::optional<std::string> get_string(const json::object& args, std::string_view key) {
    const auto* v = args.if_contains(key);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string(v->get_string());
}

std::optional<std::int64_t> get_int(const json::object& args, std::string_view key) {
    const auto* v = args.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64() && v->get_uint64() <= INT64_MAX)
        return static_cast<std::int64_t>(v->get_uint64());
    return std::nullopt;
}

std::optional<bool> get_bool(const json::object& args, std::string_view key) {
    const auto* v = args.if_contains(key);
    if (!v || !v->is_bool()) return std::nullopt;
    return v->get_bool();
}

}  // namespace cow::proto
