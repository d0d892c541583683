// cowherd: runs in the foreground (no self-daemonising); see README.md.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/config.hpp"
#include "config/summary.hpp"
#include "daemon/daemon.hpp"
#include "daemon/logs/log_setup.hpp"
#include "daemon/logs/log_writer.hpp"
#include "daemon/upgrade.hpp"

namespace {

std::string find_config(const std::string& given) {
    if (!given.empty()) return given;
    // The install's config directory (it follows the prefix), then /etc/cowherd, where a
    // container image or an admin puts it whatever the prefix was.
    for (const char* p :
         {"./cowherd.yaml", COWHERD_CONFDIR "/cowherd.yaml", "/etc/cowherd/cowherd.yaml"})
        if (std::filesystem::exists(p)) return p;
    return {};
}

// --check cannot know the host the config will run on, so a command it cannot find here is a
// warning (on stderr, naming the path), and the exit code stays 0.
void warn_about_commands(const cow::config::Config& cfg) {
    const char* path = std::getenv("PATH");
    for (const auto& w : cow::config::command_warnings(cfg, path ? path : ""))
        std::fprintf(stderr, "cowherd: warning: %s\n", w.c_str());
}

namespace json = boost::json;
using cow::upgrade::section;

std::string text_of(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The config a previous image ran, from its state: the text it loaded, as from its file.
std::variant<std::shared_ptr<const cow::config::Config>, std::string> config_of(
    const json::object& state) {
    const auto& d = section(state, "daemon");
    auto loaded = cow::config::load_as_file(text_of(d, "config_text"), text_of(d, "config_path"));
    if (!loaded.ok())
        return "its config no longer loads: " +
               (loaded.errors.empty() ? std::string("?") : loaded.errors.front().to_string());
    return loaded.config;
}

// --check-upgrade FD: can this binary take up the state in FD (a copy) and its config?
int check_upgrade(int fd) {
    auto doc = cow::upgrade::read_json(fd);
    if (auto* why = std::get_if<std::string>(&doc)) {
        std::printf("%s\n", why->c_str());
        return 1;
    }
    const auto& state = std::get<json::object>(doc);
    if (auto why = cow::upgrade::check_version(state); !why.empty()) {
        std::printf("%s\n", why.c_str());
        return 1;
    }
    auto cfg = config_of(state);
    if (auto* why = std::get_if<std::string>(&cfg)) {
        std::printf("%s\n", why->c_str());
        return 1;
    }
    const auto& config = *std::get<0>(cfg);
    const auto* pools = section(state, "supervisor").if_contains("pools");
    if (pools && pools->is_array())
        for (const auto& pv : pools->as_array()) {
            if (!pv.is_object()) continue;
            std::string name = text_of(pv.as_object(), "name");
            bool known = false;
            for (const auto& pc : config.pools)
                known |= pc.name == name;
            if (!known) {
                std::printf("pool %s of the state is not in its config\n", name.c_str());
                return 1;
            }
        }
    std::printf("cowherd %s can take over from cowherd %s\n", COWHERD_VERSION,
                text_of(state, "version").c_str());
    return 0;
}

// A previous image of this daemon executed this one with its state (cowctl upgrade). Until the
// new image is ready, any failure executes the previous image again with the same state.
int take_over(int fd, bool rolled_back, std::vector<std::string> args, const std::string& level) {
    auto doc = cow::upgrade::read_json(fd);
    if (auto* why = std::get_if<std::string>(&doc)) {
        std::fprintf(stderr, "cowherd: cannot read the state of the previous image: %s\n",
                     why->c_str());
        return 1;
    }
    auto state = std::get<json::object>(std::move(doc));
    if (!rolled_back) cow::upgrade::arm_rollback(state, fd, 10);
    if (auto why = cow::upgrade::check_version(state); !why.empty()) {
        cow::upgrade::rollback(why);
        return 1;
    }
    auto cfg = config_of(state);
    if (auto* why = std::get_if<std::string>(&cfg)) {
        cow::upgrade::rollback(*why);
        return 1;
    }
    auto config = std::get<0>(std::move(cfg));
    // systemd's variables, which the previous image took out of the environment.
    const auto& sd = section(section(state, "daemon"), "sd");
    if (auto addr = text_of(sd, "address"); !addr.empty()) {
        ::setenv("NOTIFY_SOCKET", addr.c_str(), 1);
        if (const auto* wd = sd.if_contains("watchdog_usec"); wd && wd->is_int64()) {
            ::setenv("WATCHDOG_USEC", std::to_string(wd->as_int64()).c_str(), 1);
            ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
        }
    }
    const auto& d = config->daemon;
    if (auto err =
            cow::setup_daemon_log(level.empty() ? d.log_level : level, d.log_format, d.log_file);
        !err.empty()) {
        cow::upgrade::rollback(err);
        return 1;
    }
    if (const char* why = std::getenv(cow::upgrade::kFailedEnv))
        spdlog::error("upgrade failed: {}; cowherd {} goes on", why, COWHERD_VERSION);
    cow::Daemon daemon(config, std::move(args), std::move(state), fd, rolled_back);
    return daemon.run();
}

int cowherd(int argc, char** argv) {
    CLI::App app{"cowherd: a process supervisor for pools of workers"};
    std::string config_path, log_level;
    bool check = false, version = false;
    app.add_option("-c,--config", config_path,
                   "config file (default: ./cowherd.yaml, then " COWHERD_CONFDIR
                   "/cowherd.yaml, then /etc/cowherd/cowherd.yaml)");
    app.add_flag("--check", check, "validate the config, print a summary and exit (0 ok, 2 bad)");
    app.add_option("--log-level", log_level, "override daemon.log_level")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
    app.add_flag("--version", version, "print the version and exit");
    // Between images of one daemon (cowctl upgrade); not for operators, hence hidden.
    int state_fd = -1, check_fd = -1;
    bool rolled_back = false;
    app.add_option(std::string(cow::upgrade::kStateOption), state_fd)->group("");
    app.add_option(std::string(cow::upgrade::kCheckOption), check_fd)->group("");
    app.add_flag(std::string(cow::upgrade::kRollbackOption), rolled_back)->group("");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    if (version) {
        std::printf("cowherd %s\n", COWHERD_VERSION);
        return 0;
    }
    if (check_fd >= 0) return check_upgrade(check_fd);
    // The command line the next image is started with: this one, less the options above.
    std::vector<std::string> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == cow::upgrade::kStateOption) {
            ++i;
            continue;
        }
        if (a == cow::upgrade::kRollbackOption ||
            a.starts_with(std::string(cow::upgrade::kStateOption) + "="))
            continue;
        args.emplace_back(a);
    }
    if (state_fd >= 0) return take_over(state_fd, rolled_back, std::move(args), log_level);

    std::string path = find_config(config_path);
    if (path.empty()) {
        std::fprintf(stderr,
                     "cowherd: no config file: pass -c FILE, or create ./cowherd.yaml or "
                     "%s/cowherd.yaml\n",
                     COWHERD_CONFDIR);
        return 2;
    }
    auto loaded = cow::config::load_file(path);
    if (!loaded.ok()) {
        for (const auto& e : loaded.errors)
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        std::fprintf(stderr, "cowherd: %s: %zu error%s; nothing started\n", path.c_str(),
                     loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
        return 2;
    }
    // A log_dir that cannot be used is a config error, found now rather than as output lost
    // at a pool's first line (--check creates it too, as startup would).
    if (auto err = cow::prepare_log_dir(*loaded.config); !err.empty()) {
        std::fprintf(stderr, "cowherd: %s: %s; nothing started\n", path.c_str(), err.c_str());
        return 2;
    }
    if (check) {
        std::fputs(cow::config::summarize(*loaded.config).c_str(), stdout);
        warn_about_commands(*loaded.config);
        return 0;
    }
    const auto& d = loaded.config->daemon;
    if (auto err = cow::setup_daemon_log(log_level.empty() ? d.log_level : log_level, d.log_format,
                                         d.log_file);
        !err.empty()) {
        std::fprintf(stderr, "cowherd: %s\n", err.c_str());
        return 1;
    }
    cow::Daemon daemon(loaded.config, std::move(args));
    return daemon.run();
}

}  // namespace

// Whatever escapes would otherwise reach std::terminate: an abort that says nothing of why.
int main(int argc, char** argv) {
    try {
        return cowherd(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cowherd: internal error: %s\n", e.what());
    } catch (...) {
        std::fputs("cowherd: internal error: an exception of unknown type\n", stderr);
    }
    return 1;
}
