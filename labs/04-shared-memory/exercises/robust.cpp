// Exercise 04/robust — a child dies holding the lock (~40 min).
//
// Task: --processes children move money around --accounts accounts kept in a
// conclab::SharedArray<long>: child i moves one unit from account i to the
// next, --transfers times, each transfer under the array's lock. Child
// --kill-child is killed (SIGKILL) halfway through its transfer number
// --kill-at, after the take and before the give, as a crash can strike at
// any instruction: leave that kill in. The lock is robust, so nobody hangs,
// but a unit is lost: total=399999 expected=400000. Make whoever takes the
// lock over from the dead child, a child or the parent (get_lock().owner_died()
// tells it), first put the accounts back as they were before that transfer
// (or finish it). The grader checks every balance, with 4 children, and with
// one child alone, when only the parent can repair.
//
//   scripts/grade 04/robust            grade it
//   scripts/grade --hint 04/robust     a hint
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <csignal>
#include <mutex>
#include <numeric>
#include <vector>

#include "conclab/cli.hpp"
#include "conclab/process.hpp"
#include "conclab/shm.hpp"

constexpr long kOpening = 100'000;  // every account's balance at the start

// One transfer of one unit, under the lock. `die_halfway`: the crash.
void transfer(conclab::SharedArray<long>& accounts, std::size_t from, std::size_t to, bool die_halfway) {
  std::lock_guard guard(accounts.get_lock());
  // TODO: the last holder of the lock may have died halfway through a transfer.
  accounts[from] -= 1;
  if (die_halfway) std::raise(SIGKILL);
  accounts[to] += 1;
}

int main(int argc, char** argv) {
  CLI::App app{"Exercise 04/robust: children move money under a lock, and one dies holding it."};
  int processes = 4;
  int n_accounts = 4;
  int transfers = 20'000;
  int kill_child = 0;
  int kill_at = 100;
  app.add_option("--processes", processes, "how many children")->check(conclab::int_in_range(1, 8));
  app.add_option("--accounts", n_accounts, "how many accounts")->check(conclab::int_in_range(2, 8));
  app.add_option("--transfers", transfers, "transfers per child")->check(conclab::int_in_range(1, 1'000'000));
  app.add_option("--kill-child", kill_child, "the child killed halfway through a transfer (-1: none)")
      ->check(conclab::int_in_range(-1, 7));
  app.add_option("--kill-at", kill_at, "the number of the transfer it dies in (0 is its first)")
      ->check(conclab::int_in_range(0, 1'000'000));

  return conclab::run_main(app, argc, argv, [&] {
    const auto n = static_cast<std::size_t>(n_accounts);
    conclab::SharedArray<long> accounts(n, kOpening);

    auto child = [&](int i) {
      const auto from = static_cast<std::size_t>(i) % n;
      for (int t = 0; t < transfers; ++t) transfer(accounts, from, (from + 1) % n, i == kill_child && t == kill_at);
    };
    std::vector<conclab::Process> children;
    for (int i = 0; i < processes; ++i) {
      children.emplace_back(child, i);
      children.back().start();
    }
    for (int i = 0; i < processes; ++i) {
      auto& p = children[static_cast<std::size_t>(i)];
      p.join();
      fmt::print("child {}: {}\n", i, conclab::Process::describe_status(*p.exitcode()));
    }

    // TODO: the parent, too, may be the first to take the lock after the death.
    std::vector<long> balances = accounts.snapshot();
    fmt::print("balances {}\n", balances);
    fmt::print("model=shm-robust processes={} accounts={} transfers={} total={} expected={}\n", processes, n_accounts,
               transfers, std::accumulate(balances.begin(), balances.end(), 0L), kOpening * n_accounts);
  });
}
