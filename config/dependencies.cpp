#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/sections.hpp"
#include "config/suggest.hpp"

namespace cow::config::detail {

void check_dependencies(Diagnostics& diag, std::span<const PoolEntry> pools) {
    const std::size_t n = pools.size();
    std::unordered_map<std::string_view, std::size_t> index;
    std::vector<std::string_view> names;
    for (std::size_t i = 0; i < n; ++i) {
        index.emplace(pools[i].pool.name, i);
        names.push_back(pools[i].pool.name);
    }
    struct Edge {
        std::size_t to;
        std::size_t item;  // position in depends_on
    };
    std::vector<std::vector<Edge>> edges(n);
    for (std::size_t i = 0; i < n; ++i) {
        const auto& pool = pools[i].pool;
        const auto& deps = pools[i].deps;
        for (std::size_t k = 0; k < pool.depends_on.size(); ++k) {
            const std::string& dep = pool.depends_on[k];
            std::string path = deps.list_path + "[" + std::to_string(k) + "]";
            if (dep == pool.name) {
                diag.error(deps.item_pos[k], path, "a pool cannot depend on itself");
            } else if (auto it = index.find(dep); it == index.end()) {
                diag.error(deps.item_pos[k], path,
                           "no pool named " + quote(dep) + did_you_mean(dep, names));
            } else {
                edges[i].push_back({it->second, k});
            }
        }
    }

    enum class Color : std::uint8_t { white, grey, black };
    std::vector<Color> color(n, Color::white);
    std::vector<std::size_t> next(n, 0);
    std::vector<std::size_t> stack;  // the grey pools, each depending on the next
    for (std::size_t root = 0; root < n; ++root) {
        if (color[root] != Color::white) continue;
        color[root] = Color::grey;
        stack.push_back(root);
        while (!stack.empty()) {
            std::size_t u = stack.back();
            if (next[u] == edges[u].size()) {
                color[u] = Color::black;
                stack.pop_back();
                continue;
            }
            std::size_t v = edges[u][next[u]++].to;
            if (color[v] == Color::white) {
                color[v] = Color::grey;
                stack.push_back(v);
            } else if (color[v] == Color::grey) {
                auto from = std::find(stack.begin(), stack.end(), v);
                std::vector<std::size_t> cycle(from, stack.end());
                auto first = std::min_element(cycle.begin(), cycle.end());
                std::rotate(cycle.begin(), first, cycle.end());
                std::string text;
                for (std::size_t p : cycle)
                    text += pools[p].pool.name + " -> ";
                text += pools[cycle.front()].pool.name;
                // Point at the entry of the first pool that names the second.
                const auto& head = pools[cycle.front()];
                std::size_t second = cycle.size() > 1 ? cycle[1] : cycle[0];
                Pos pos = head.deps.list_pos;
                for (const Edge& e : edges[cycle.front()])
                    if (e.to == second) pos = head.deps.item_pos[e.item];
                diag.error(pos, head.deps.list_path, "dependency cycle: " + text);
            }
        }
    }
}

}  // namespace cow::config::detail
