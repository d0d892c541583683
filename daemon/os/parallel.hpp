// Reading /proc for thousands of processes is kernel time spent formatting text (stat,
// smaps_rollup), which spreads across cores. This splits such a loop over a few threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace cow {

// Calls body(part, parts) on `parts` threads (the caller's included); part k handles the
// indexes i with i % parts == k, so each thread gets a fair mix of small and large items.
template <class Body>
void parallel_parts(std::size_t items, Body body, std::size_t per_thread_min = 128) {
    const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
    const std::size_t parts = std::min<std::size_t>({hw, 4, items / per_thread_min + 1});
    std::vector<std::thread> threads;
    for (std::size_t k = 1; k < parts; ++k)
        threads.emplace_back([&, k] { body(k, parts); });
    body(0, parts);
    for (auto& t : threads)
        t.join();
}

}  // namespace cow
