#include "daemon/logs/log_setup.hpp"

#include <chrono>
#include <ctime>

#include <boost/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/utf8.hpp"

namespace cow {
namespace {

// {"ts":"2026-11-27T19:00:00.123Z","level":"info","msg":"..."} per line, for log shippers.
class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                      .count();
        time_t secs = static_cast<time_t>(ms / 1000);
        struct tm tm {};
        gmtime_r(&secs, &tm);
        char ts[64];
        std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ms % 1000));
        boost::json::object o{
            {"ts", ts},
            {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                  spdlog::level::to_string_view(msg.level).size())},
            {"msg", valid_utf8(std::string_view(msg.payload.data(), msg.payload.size()))}};
        std::string line = boost::json::serialize(o);
        line += '\n';
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

}  // namespace

std::string setup_daemon_log(const std::string& level, const std::string& format,
                             const std::string& file) {
    std::shared_ptr<spdlog::logger> logger;
    try {
        if (file.empty()) {
            logger = spdlog::stderr_color_mt("cowherd");
        } else {
            // 10 MiB x 5: the daemon's own log must not fill a disk either.
            logger = spdlog::rotating_logger_mt("cowherd", file, 10u << 20, 5);
        }
    } catch (const spdlog::spdlog_ex& e) {
        return std::string("cannot open the daemon log: ") + e.what();
    }
    if (format == "json")
        logger->set_formatter(std::make_unique<JsonFormatter>());
    else
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(level));
    spdlog::flush_on(spdlog::level::info);
    return {};
}

}  // namespace cow
